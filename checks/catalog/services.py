"""Checks of category services (being written)."""
