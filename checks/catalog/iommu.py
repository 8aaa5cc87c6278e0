"""Checks of category iommu (being written)."""
