"""The check catalogue: importing this package registers every check.

One module per category; each check is a small function decorated with
``@check`` (see ``checks.registry``).
"""

from . import (  # noqa: F401
    cpu,
    kernel,
    kvm,
    cgroups,
    iommu,
    security,
    tpm,
    packages,
    services,
    containers,
    system,
    hw,
    timesync,
    net,
    user,
    openstack,
)
