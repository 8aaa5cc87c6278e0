"""Checks of category kvm (being written)."""
