"""Checks of category containers (being written)."""
