"""Checks of category time (being written)."""
