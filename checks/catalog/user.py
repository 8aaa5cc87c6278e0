"""Checks of category user (being written)."""
