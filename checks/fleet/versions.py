"""fleet.versions: QEMU and libvirt across hosts.

QEMU migrates a guest to the same or a newer QEMU (a newer one keeps the old
machine types, an older one cannot know a newer one's), and libvirt likewise.
So mixed versions are a warning that says which way guests can move. The
upstream version decides ("1:7.2+dfsg-7+deb12u6" and "7.2.0-14.el9" are both
QEMU 7.2); builds of one upstream version only differ in patches. QEMU of
different distributions is another matter: RHEL's QEMU has its own machine
types (pc-q35-rhel9.4.0) and does not accept upstream ones, so migrating
between a Debian and a RHEL host is not supported even at equal versions.
"""

from __future__ import annotations

import re

from .report import HostReport
from .result import FleetResult, listed

_UPSTREAM = r"\d+(?:\.\d+)*"
_COMPONENTS = (("qemu", "QEMU"), ("libvirt", "libvirt"))


def upstream(version: str) -> tuple[int, ...] | None:
    """(7, 2, 0) of "1:7.2+dfsg-7+deb12u6" (epoch and Debian/RPM release left out)."""
    m = re.match(_UPSTREAM, version.split(":", 1)[-1])
    if not m:
        return None
    parts = [int(x) for x in m.group(0).split(".")]
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts)


def _text(key: tuple[int, ...]) -> str:
    parts = list(key)
    while len(parts) > 2 and parts[-1] == 0:
        parts.pop()
    return ".".join(map(str, parts))


def _component(hosts: list[HostReport], key: str, label: str) -> tuple[str, str, list[str], dict]:
    """(status, detail, hosts involved, data) for one of QEMU/libvirt."""
    by_version: dict[tuple, list[str]] = {}
    builds: dict[tuple, set] = {}
    missing, unknown, unparsed = [], [], []
    for h in hosts:
        if h.packages is None:
            unknown.append(h.name)
            continue
        pkg = h.packages.get(key)
        if pkg is None:
            missing.append(h.name)
            continue
        up = upstream(pkg.version)
        if up is None:
            unparsed.append(f"{h.name} ({pkg.version})")
            continue
        by_version.setdefault(up, []).append(h.name)
        builds.setdefault(up, set()).add(pkg.version)
    ordered = sorted(by_version.items())
    data = {"versions": {_text(v): names for v, names in ordered},
            "builds": {_text(v): sorted(b) for v, b in builds.items()},
            "not_installed": missing, "unknown": unknown, "unparsed": unparsed}
    if not ordered:
        if unknown and not missing:
            return "warn", f"{label}: package database not read on {listed(unknown)}", unknown, data
        return "pass", f"{label} is not installed on any host" + (
            f" (unknown on {listed(unknown)})" if unknown else ""), [], data
    notes = []
    if missing:
        notes.append(f"not installed on {listed(missing)}")
    if unknown:
        notes.append(f"unknown on {listed(unknown)}")
    if unparsed:
        notes.append(f"version not understood on {listed(unparsed)}")
    if len(ordered) == 1:
        version, names = ordered[0]
        several = len(builds[version]) > 1
        detail = (f"{label} {_text(version)} on {len(names) if len(names) > 1 else 'the'} "
                  f"host{'s' if len(names) > 1 else ''}"
                  + (f" ({len(builds[version])} builds of it)" if several else ""))
        if notes:
            return "warn", f"{detail}; {'; '.join(notes)}", missing + unknown, data
        return "pass", detail, [], data
    chain = " -> ".join(f"{_text(v)} ({listed(names, 3)})" for v, names in ordered)
    older = [n for _, names in ordered[:-1] for n in names]
    data["newest"] = _text(ordered[-1][0])
    detail = f"{label} {chain}"
    if notes:
        detail += "; " + "; ".join(notes)
    return "mixed", detail, older + missing + unknown, data


def versions(hosts: list[HostReport]) -> FleetResult:
    status, details, involved, data = "pass", [], [], {}
    mixed = []
    for key, label in _COMPONENTS:
        s, detail, names, d = _component(hosts, key, label)
        data[key] = d
        details.append(detail)
        involved += [n for n in names if n not in involved]
        if s == "mixed":
            mixed.append((label, names, d["newest"]))
        if s in ("warn", "mixed"):
            status = "warn"
    upgrade = " and ".join(f"{label} on {listed(names, 3)} to {newest}" for label, names, newest in mixed)
    if mixed:
        details.append("guests migrate only to the same or a newer version (left to right), never back")
    # QEMU builds of different distributions do not share machine types
    dists: dict[str, list[str]] = {}
    for h in hosts:
        if h.packages and h.packages.get("qemu") and h.os:
            dists.setdefault(h.os[0] or h.os[2] or "unknown", []).append(h.name)
    data["qemu_distributions"] = dists
    recommendation = None
    if len(dists) > 1:
        status = "warn"
        details.append("QEMU builds of different distributions (" +
                       "; ".join(f"{d}: {listed(names, 3)}" for d, names in dists.items()) +
                       "): their machine types differ (RHEL's pc-q35-rhel*), so guests do not migrate "
                       "between them")
        recommendation = "keep each distribution's hosts in their own migration group"
    if mixed:
        recommendation = (f"upgrade {upgrade} so that guests can move in every direction"
                          + (f"; {recommendation}" if recommendation else ""))
    elif status == "warn" and recommendation is None:
        recommendation = "install the same QEMU/libvirt on every host that runs guests"
    return FleetResult("fleet.versions", status, "; ".join(details), hosts=involved,
                       recommendation=recommendation, data=data)
