"""Checks of category cgroups (being written)."""
