"""Checks of category openstack (being written)."""
