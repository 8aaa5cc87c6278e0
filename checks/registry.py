"""The check catalogue: every check registers itself with a stable id."""

from __future__ import annotations

from collections.abc import Callable

from .facts import Facts
from .host import Host
from .model import CheckSpec, Outcome
from .record import Record

# Display order and names of categories (the part of the id before the dot
# unless a check says otherwise).
CATEGORIES = {
    "cpu": "CPU",
    "kernel": "Kernel",
    "kvm": "KVM",
    "cgroups": "Control groups",
    "iommu": "IOMMU",
    "security": "Security",
    "tpm": "TPM",
    "packages": "Packages",
    "services": "Services",
    "containers": "Containers",
    "os": "Operating system",
    "hw": "Hardware",
    "time": "Time",
    "net": "Network",
    "user": "Users",
    "openstack": "OpenStack",
}

_REGISTRY: dict[str, CheckSpec] = {}


class Ctx(Record):
    """What a check function gets: the host, shared facts, its parameters."""

    def __init__(self, host: Host, facts: Facts, params: dict[str, object], spec: CheckSpec):
        self.host = host
        self.facts = facts
        self.params = params
        self.spec = spec

    def show(self, path: str) -> str:
        return self.host.display(path)


def check(
    id: str,
    *,
    title: str,
    why: str,
    source: str,
    category: str | None = None,
    remediations: tuple[str, ...] | list[str] = (),
    needs_root: bool = False,
    root_reads: str = "",
    params: dict[str, object] | None = None,
) -> Callable[[Callable[[Ctx], Outcome]], Callable[[Ctx], Outcome]]:
    """Register a check function ``f(ctx) -> Outcome`` under a stable id.

    ``params`` are the defaults a profile may override (their types are the
    schema profiles are validated against).
    """
    cat = category or id.split(".", 1)[0]
    if cat not in CATEGORIES:
        raise ValueError(f"{id}: unknown category {cat!r}")

    def deco(func):
        if id in _REGISTRY:
            raise ValueError(f"check id registered twice: {id}")
        _REGISTRY[id] = CheckSpec(
            id=id, title=title, category=cat, why=why, source=source, func=func,
            remediations=tuple(remediations), needs_root=needs_root,
            root_reads=root_reads, params=dict(params or {}),
        )
        return func

    return deco


def all_checks() -> dict[str, CheckSpec]:
    """Every registered check, in catalogue order (category, then definition)."""
    from . import catalog  # noqa: F401  (registers on import)

    order = list(CATEGORIES)
    return dict(sorted(_REGISTRY.items(), key=lambda kv: order.index(kv[1].category)))
