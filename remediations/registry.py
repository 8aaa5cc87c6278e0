"""Remediations register here: a stable id, the checks it fixes, a planner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from checks.facts import Facts
from checks.host import Host

from .actions import Action


@dataclass
class Proposal:
    """What a remediation would do here: actions, or why there is nothing to do."""

    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said to the admin (skipped runtime steps...)
    nothing: str | None = None  # set when there is nothing to do, with the reason
    # "Nothing yet": what it needs is installed by another fix of this plan
    # (libvirt's units exist only once its packages are in); apply plans it
    # again once the plan has run, and shows that second plan before running it.
    after_packages: bool = False
    # checks among the remediation's ``fixes`` it will not fix here, with why
    # (load-kvm-modules on a kernel without tun: not kvm.tun); a fix is
    # offered for a check only where the planner really acts for it
    cannot: dict = field(default_factory=dict)


def nothing(reason: str) -> Proposal:
    return Proposal(nothing=reason)


def after_packages(reason: str) -> Proposal:
    return Proposal(nothing=reason, after_packages=True)


@dataclass
class PlanCtx:
    """What a planner gets: the host (root-relative), its facts, check results, params."""

    host: Host
    facts: Facts
    results: dict  # check id -> CheckResult (may be empty when planning by --fix)
    params: dict  # check id -> that check's profile params

    @property
    def offline(self) -> bool:
        return not self.host.live


@dataclass(frozen=True)
class RemediationSpec:
    id: str
    title: str
    fixes: tuple[str, ...]
    description: str
    planner: Callable[[PlanCtx], Proposal]
    manual: bool = False  # only explains (BIOS switches...), never acts


_REGISTRY: dict[str, RemediationSpec] = {}


def remediation(id: str, *, title: str, fixes: tuple[str, ...] | list[str], description: str):
    def deco(func):
        if id in _REGISTRY:
            raise ValueError(f"remediation registered twice: {id}")
        _REGISTRY[id] = RemediationSpec(id, title, tuple(fixes), description, func)
        return func
    return deco


def all_remediations() -> dict[str, RemediationSpec]:
    from . import catalog  # noqa: F401  (registers on import)

    return dict(_REGISTRY)
