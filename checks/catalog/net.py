"""Checks of category net (being written)."""
