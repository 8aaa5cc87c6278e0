"""Checks of category security (being written)."""
