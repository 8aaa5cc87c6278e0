"""Checks of category tpm (being written)."""
