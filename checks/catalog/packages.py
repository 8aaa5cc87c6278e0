"""Checks of category packages (being written)."""
