"""Checks of category hw (being written)."""
