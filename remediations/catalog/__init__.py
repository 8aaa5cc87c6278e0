"""Every remediation, one module per area; importing registers them."""

from . import (  # noqa: F401
    modules,
    packages,
    services,
    security,
    users,
    bootargs,
    network,
    nova,
)
