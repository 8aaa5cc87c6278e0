"""fleet.cpu-compatible: can a guest live-migrate between every pair of hosts?

Migration keeps the guest's CPU as it was at start: every feature the guest
was given must exist on the target. With libvirt's ``host-passthrough`` (Nova
``cpu_mode=host-passthrough``) the guest gets all of its first host's features;
with ``host-model`` the closest named model plus that host's extra features.
Either way, a guest started on a host with more features cannot move to one
with fewer. So this check finds the features every host has (the fleet's
baseline), for each host what it has beyond it (what such a guest would lose),
and the newest named CPU model inside the baseline (``cpumodels.MODELS``), which
``cpu_mode=custom`` gives every guest whatever host it starts on.

Different CPU vendors (Intel/AMD) do not migrate guests between each other in
practice, and neither do architectures: those fail. Hosts are grouped by their
feature set first (a dict keyed on the frozenset), so a fleet of 1000 identical
hosts is one comparison, not 1000.
"""

from __future__ import annotations

from ..cpuinfo import X86_LEVELS
from .cpumodels import best_model, guest_features
from .report import HostReport
from .result import FleetResult, grouped, listed, on_every, plural

_FLAG_LIMIT = 10  # flags named in the detail; the JSON has all of them


def _rank(flag: str) -> tuple:
    """x86-64 level flags first (by level: what decides which guest OS runs),
    then the others by name."""
    for i, need in enumerate(X86_LEVELS):
        if flag in need:
            return (i, flag)
    return (len(X86_LEVELS), flag)


def _flags(flags, limit: int = _FLAG_LIMIT) -> str:
    flags = sorted(flags, key=_rank)
    if len(flags) <= limit:
        return " ".join(flags)
    return " ".join(flags[:limit]) + f" (+{len(flags) - limit} more)"


def _level(flags: frozenset) -> int:
    level = 0
    for need in X86_LEVELS:
        if not need <= flags:
            break
        level += 1
    return level


def _model_xml(name: str) -> str:
    return f"<cpu mode='custom' match='exact'><model fallback='forbid'>{name}</model></cpu>"


def _recommend_model(vendor: str | None, common: frozenset, level: int) -> tuple[str, str | None]:
    """(recommendation, the model's name or None)."""
    found = best_model(vendor, common)
    verify = ("confirm it with virsh hypervisor-cpu-baseline over each host's virsh domcapabilities "
              "(libvirt sees CPUID bits /proc/cpuinfo does not show)")
    if found is None:
        return (f"no named model in kvmprep's table fits the features common to all ({vendor or 'unknown vendor'}, "
                f"x86-64-v{level}): compute one with virsh hypervisor-cpu-baseline over each host's "
                "virsh domcapabilities and give it to every guest (libvirt cpu mode='custom'; "
                "Nova [libvirt] cpu_mode = custom, cpu_models = that model)"), None
    name, model_level, tsx = found
    also = f" ({tsx} also fits: TSX is on every host)" if tsx else ""
    return (f"give every guest the named model {name}{also}, which every host can run (guests get "
            f"x86-64-v{model_level}): libvirt {_model_xml(name)}; OpenStack Nova [libvirt] cpu_mode = custom, "
            f"cpu_models = {name}; {verify}"), name


def _non_x86(hosts: list[HostReport], arch: str) -> FleetResult:
    models: dict[str, list[str]] = {}
    for h in hosts:
        models.setdefault(h.cpu.model or "unknown model", []).append(h.name)
    groups = grouped(models)
    data = {"arch": arch, "models": dict(groups)}
    note = f"CPU flags are compared on x86 only; {arch} hosts are compared by CPU model"
    if len(groups) == 1:
        return FleetResult("fleet.cpu-compatible", "pass", f"{groups[0][0]} {on_every(len(hosts))} ({note})",
                           data=data,
                           recommendation="libvirt <cpu mode='host-model'/> (Nova cpu_mode = host-model) "
                                          "migrates between identical CPUs")
    parts = "; ".join(f"{m} on {listed(names, 3)}" for m, names in groups)
    return FleetResult("fleet.cpu-compatible", "warn", f"{plural(len(groups), 'CPU model')}: {parts} ({note})",
                       hosts=[n for _, names in groups[1:] for n in names], data=data,
                       recommendation="give guests a CPU model every host has (virsh hypervisor-cpu-baseline "
                                      "over each host's virsh domcapabilities), not host-passthrough")


def cpu_compatible(hosts: list[HostReport]) -> FleetResult:
    unknown = [h.name for h in hosts if h.cpu is None or (h.cpu.arch in ("x86_64", "i686") and not h.cpu.flags)]
    unknown_set = set(unknown)
    known = [h for h in hosts if h.name not in unknown_set]
    unknown_note = f"; CPU unknown on {listed(unknown)} (not compared)" if unknown else ""
    if not known:
        return FleetResult("fleet.cpu-compatible", "warn", f"no report has CPU facts{unknown_note}",
                           hosts=unknown, data={"unknown": unknown})

    archs: dict[str, list[str]] = {}
    vendors: dict[str, list[str]] = {}
    for h in known:
        archs.setdefault(h.cpu.arch or "unknown", []).append(h.name)
        vendors.setdefault(h.cpu.vendor or "unknown", []).append(h.name)
    if len(archs) > 1:
        groups = grouped(archs)
        return FleetResult(
            "fleet.cpu-compatible", "fail",
            "different architectures: " + "; ".join(f"{a} on {listed(n, 3)}" for a, n in groups)
            + f": a guest cannot migrate between them{unknown_note}",
            hosts=[n for _, names in groups[1:] for n in names], data={"archs": dict(groups), "unknown": unknown},
            recommendation="keep each architecture's hosts in their own cluster")
    arch = next(iter(archs))
    if arch not in ("x86_64", "i686"):
        result = _non_x86(known, arch)
        if unknown:
            result.status = "warn" if result.status == "pass" else result.status
            result.detail += unknown_note
            result.hosts += unknown
        return result

    # group hosts by their guest-visible features (and virtualization flags)
    by_flags: dict[frozenset, list[HostReport]] = {}
    for h in known:
        by_flags.setdefault(h.cpu.flags, []).append(h)
    # key: (guest-visible features, virtualization flags)
    feature_groups: dict[tuple, list[HostReport]] = {}
    for flags, members in by_flags.items():
        g = guest_features(flags)
        for m in members:
            feature_groups.setdefault((g, m.cpu.virt_flags - {"hypervisor"}), []).append(m)
    sets = [g for g, _ in feature_groups]
    common = frozenset.intersection(*sets)
    union = frozenset.union(*sets)
    virt_common = frozenset.intersection(*(v for _, v in feature_groups))
    virt_union = frozenset.union(*(v for _, v in feature_groups))
    level = _level(common)
    vendor_groups = grouped(vendors)

    groups_data = []
    lack_parts, extra_parts, virt_parts, involved = [], [], [], []
    for (g, virt), members in sorted(feature_groups.items(), key=lambda kv: -len(kv[1])):
        names = [m.name for m in members]
        lacks, extra, virt_lacks = union - g, g - common, virt_union - virt
        models = sorted({m.cpu.model or "?" for m in members})
        groups_data.append({"hosts": names, "models": models, "lacks": sorted(lacks), "extra": sorted(extra),
                            "virt_lacks": sorted(virt_lacks),
                            "x86_64_level": _level(g)})
        if lacks:
            lack_parts.append(f"{listed(names, 3)} lack{'s' if len(names) == 1 else ''} {_flags(lacks)}")
            involved += [n for n in names if n not in involved]
        if extra:
            extra_parts.append((names, extra))
        if virt_lacks:
            virt_parts.append(f"{listed(names, 3)} lack{'s' if len(names) == 1 else ''} {' '.join(sorted(virt_lacks))}")
            involved += [n for n in names if n not in involved]
    hypervisor = [h.name for h in known if "hypervisor" in h.cpu.virt_flags]
    data = {"vendors": dict(vendor_groups), "x86_64_level": level, "common_flags": sorted(common),
            "virt_flags_common": sorted(virt_common), "groups": groups_data, "unknown": unknown,
            "virtual_machines": hypervisor}

    if len(vendor_groups) > 1:
        recs = []
        for vendor, names in vendor_groups:
            vsets = [g for (g, _), members in feature_groups.items() if members[0].cpu.vendor == vendor]
            vcommon = frozenset.intersection(*vsets)
            found = best_model(vendor, vcommon)
            recs.append(f"{vendor} ({plural(len(names), 'host')}): "
                        + (f"cpu_models = {found[0]}" if found else
                           f"no named model fits (x86-64-v{_level(vcommon)}): virsh hypervisor-cpu-baseline"))
        data["model_per_vendor"] = recs
        return FleetResult(
            "fleet.cpu-compatible", "fail",
            "different CPU vendors: " + "; ".join(f"{v} on {listed(n, 3)}" for v, n in vendor_groups)
            + f": guests do not live-migrate between Intel and AMD hosts{unknown_note}",
            hosts=[n for _, names in vendor_groups[1:] for n in names], data=data,
            recommendation="keep each vendor's hosts in their own migration group (Nova: a host aggregate per "
                           "vendor, each with its own cpu_models); per vendor: " + "; ".join(recs))

    vendor = vendor_groups[0][0]
    virt_text = " ".join(sorted(virt_common)) or "none"
    base = f"{vendor}; common to all: x86-64-v{level}, virtualization flags {virt_text}"
    vm_note = ""
    if hypervisor:
        vm_note = f"; {listed(hypervisor, 3)} {'is a virtual machine' if len(hypervisor) == 1 else 'are virtual machines'}"
    recommendation, model = _recommend_model(vendor, common, level)
    data["model"] = model
    if len(feature_groups) == 1 and not virt_parts:
        signatures = {h.cpu.signature for h in known}
        model_names = {h.cpu.model for h in known}
        same_cpu = len(signatures) == 1 and len(model_names) == 1
        passthrough = ("host-passthrough migrates too while their microcode stays the same" if same_cpu else
                       "not host-passthrough: the CPU models/steppings differ")
        status = "warn" if unknown else "pass"
        return FleetResult(
            "fleet.cpu-compatible", status,
            f"the same guest-visible CPU features {on_every(len(known))} ({base}){vm_note}"
            f"{unknown_note}", hosts=unknown, data=data,
            recommendation=f"libvirt <cpu mode='host-model'/> (Nova [libvirt] cpu_mode = host-model) migrates "
                           f"between them; {passthrough}; for hosts added later: {recommendation}")
    detail = [f"{plural(len(set(sets)), 'CPU feature set')} on {plural(len(known), 'host')} ({base})"]
    if lack_parts:
        detail.append("; ".join(lack_parts))
    if extra_parts:
        # what a host has beyond the common set; spelled out unless it is exactly
        # what another group was just said to lack (two kinds of CPU: one sentence)
        said = {frozenset(union - g) for g, _ in feature_groups}
        own = "; ".join(f"{listed(names, 3)}: {_flags(extra)}" for names, extra in extra_parts
                        if frozenset(extra) not in said)
        richer = listed([n for names, _ in extra_parts for n in names], 3)
        detail.append(f"A guest given more than the common set (host-model, host-passthrough) on {richer} "
                      "cannot migrate to a host that lacks it" + (f"; beyond the common set: {own}" if own else ""))
    if virt_parts:
        detail.append("Virtualization flags differ (nested guests cannot migrate there): " + "; ".join(virt_parts))
    return FleetResult("fleet.cpu-compatible", "warn", ". ".join(detail) + vm_note + unknown_note,
                       hosts=involved + unknown, data=data, recommendation=recommendation)
