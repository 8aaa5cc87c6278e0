"""Checks of category os (distribution, bare metal, minimal install; being written)."""
