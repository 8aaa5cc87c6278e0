"""Remediations (being written)."""
