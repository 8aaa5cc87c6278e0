"""Fleet checks on what must be equal (the kernel) or must differ (names,
addresses, machine ids) across hosts. Each is one pass over the hosts with a
dict from the value to the hosts that have it: linear in the fleet's size."""

from __future__ import annotations

from .report import HostReport
from .result import FleetResult, grouped, listed, on_every, plural


def _unknown_note(unknown: list[str], what: str) -> str:
    return f"; {what} unknown on {listed(unknown)}" if unknown else ""


def same_kernel(hosts: list[HostReport]) -> FleetResult:
    """Deckhouse wants one kernel release on every node: modules, eBPF programs
    and the platform's own components are built and tested against it."""
    by_release: dict[str, list[str]] = {}
    unknown = []
    for h in hosts:
        if h.kernel:
            by_release.setdefault(h.kernel, []).append(h.name)
        else:
            unknown.append(h.name)
    groups = grouped(by_release)
    data = {"releases": {rel: names for rel, names in groups}, "unknown": unknown}
    if len(groups) > 1:
        ref, _ = groups[0]
        odd = [n for _, names in groups[1:] for n in names]
        parts = "; ".join(f"{rel} on {listed(names)}" for rel, names in groups)
        return FleetResult(
            "fleet.same-kernel", "fail",
            f"{plural(len(groups), 'kernel release')}: {parts}{_unknown_note(unknown, 'the kernel')}",
            hosts=odd, data=data,
            recommendation=f"install kernel {ref} (the most common) on {listed(odd)} and reboot into it, "
                           "or move every node to one newer release")
    if unknown:
        known = f"{groups[0][0]} on the others" if groups else "no report names its kernel"
        return FleetResult("fleet.same-kernel", "warn",
                           f"kernel release unknown on {listed(unknown)} ({known})", hosts=unknown, data=data)
    return FleetResult("fleet.same-kernel", "pass",
                       f"{groups[0][0]} {on_every(len(hosts))}", data=data)


def unique_names(hosts: list[HostReport]) -> FleetResult:
    """Clusters name nodes by hostname (Kubernetes node names, Nova's compute
    service, libvirt migration URIs): two hosts with one name collide. Names
    are compared as DNS does (case-insensitive, without a final dot); two
    different FQDNs with the same first label only warn."""
    by_name: dict[str, list[str]] = {}
    by_short: dict[str, set] = {}
    missing = []
    for h in hosts:
        if not h.hostname:
            missing.append(h.name)
            continue
        full = h.hostname.lower().rstrip(".")
        by_name.setdefault(full, []).append(h.file)
        by_short.setdefault(full.split(".")[0], set()).add(full)
    dups = {name: files for name, files in by_name.items() if len(files) > 1}
    data = {"duplicates": dups, "missing": missing}
    if dups:
        parts = "; ".join(f"{name} in {listed(files, 4)}" for name, files in dups.items())
        return FleetResult("fleet.unique-names", "fail", f"the same hostname on more than one host: {parts}",
                           hosts=sorted({h.name for h in hosts if h.hostname
                                         and h.hostname.lower().rstrip(".") in dups}), data=data,
                           recommendation="give each host its own name (hostnamectl set-hostname NAME), "
                                          "then run kvmprep check on it again")
    shared = {short: sorted(fulls) for short, fulls in by_short.items() if len(fulls) > 1}
    data["short_name_shared"] = shared
    if shared or missing:
        parts = [f"{', '.join(fulls)} share the short name {short}" for short, fulls in shared.items()]
        if missing:
            parts.append(f"no hostname in the reports of {listed(missing)}")
        return FleetResult("fleet.unique-names", "warn", "; ".join(parts),
                           hosts=missing + [f for fulls in shared.values() for f in fulls], data=data)
    return FleetResult("fleet.unique-names", "pass", f"{plural(len(hosts), 'distinct hostname')}", data=data)


# Interfaces that carry the same address on every host by design: libvirt's NAT
# bridge (virbr0 192.168.122.1), Docker/Podman/LXC bridges, Kubernetes' CNI
# bridges, tunnels and service dummies (kube-ipvs0 holds every ClusterIP,
# nodelocaldns 169.254.20.10 on each node).
SHARED_IFACE_PREFIXES = ("virbr", "docker", "br-", "podman", "cni", "flannel", "cali", "cilium",
                         "kube-ipvs", "kube-bridge", "nodelocaldns", "lxcbr", "lxdbr", "vxlan", "tunl",
                         "weave", "genev_sys", "ovn-k8s", "veth", "nerdctl")


def _shared(iface: str | None, addr: str) -> bool:
    return (iface is not None and iface.startswith(SHARED_IFACE_PREFIXES)) or addr.startswith("169.254.")


def unique_addresses(hosts: list[HostReport]) -> FleetResult:
    """An address on two hosts breaks whichever reaches it (migration, the
    cluster's API, storage). Addresses of interfaces that are the same on every
    host by design (SHARED_IFACE_PREFIXES) and IPv4 link-local ones are left
    out; the management address (the default route's) always counts."""
    by_addr: dict[str, list[str]] = {}
    unknown, skipped = [], 0
    for h in hosts:
        if h.addresses is None or (not h.addresses and h.management is None):
            unknown.append(h.name)
            continue
        mine = set()
        for iface, addr in h.addresses:
            if _shared(iface, addr):
                skipped += 1
            else:
                mine.add(addr)
        if h.management:
            mine.add(h.management[1])
        for addr in mine:
            by_addr.setdefault(addr, []).append(h.name)
    dups = {a: names for a, names in by_addr.items() if len(names) > 1}
    data = {"duplicates": dups, "unknown": unknown, "shared_by_design": skipped,
            "management": {h.name: h.management[1] for h in hosts if h.management}}
    skipped_note = (f" ({plural(skipped, 'address', 'addresses')} of bridges/CNI interfaces that are the same "
                    "everywhere by design left out)") if skipped else ""
    if dups:
        parts = "; ".join(f"{a} on {listed(names, 4)}" for a, names in sorted(dups.items()))
        return FleetResult("fleet.unique-addresses", "fail",
                           f"the same address on more than one host: {parts}{skipped_note}",
                           hosts=sorted({n for names in dups.values() for n in names}), data=data,
                           recommendation="give each host its own address (a cloned network configuration "
                                          "keeps the address of the image it was cloned from)")
    if unknown:
        return FleetResult("fleet.unique-addresses", "warn",
                           f"no addresses in the reports of {listed(unknown)} (an offline --root has no "
                           f"kernel tables): not compared; "
                           f"{plural(len(by_addr), 'address', 'addresses')} on the others are distinct",
                           hosts=unknown, data=data)
    return FleetResult("fleet.unique-addresses", "pass",
                       f"{plural(len(by_addr), 'address', 'addresses')} on {plural(len(hosts), 'host')}, "
                       f"all distinct{skipped_note}", data=data)


def unique_machine_ids(hosts: list[HostReport]) -> FleetResult:
    """Hosts cloned from one image share /etc/machine-id until it is made
    again: systemd derives DHCP client ids (so the same leased address), the
    journal's and some clusters' node identities from it."""
    by_id: dict[str, list[str]] = {}
    missing = []
    for h in hosts:
        if h.machine_id:
            by_id.setdefault(h.machine_id, []).append(h.name)
        else:
            missing.append(h.name)
    dups = {mid: names for mid, names in by_id.items() if len(names) > 1}
    data = {"duplicates": dups, "missing": missing}
    note = f"; no machine id in the reports of {listed(missing)}" if missing else ""
    if dups:
        parts = "; ".join(f"{mid} on {listed(names, 4)}" for mid, names in dups.items())
        return FleetResult("fleet.unique-machine-ids", "fail",
                           f"the same machine id on more than one host (cloned from one image): {parts}{note}",
                           hosts=sorted({n for names in dups.values() for n in names}), data=data,
                           recommendation="on each clone: rm -f /etc/machine-id && systemd-machine-id-setup, "
                                          "then reboot")
    return FleetResult("fleet.unique-machine-ids", "pass",
                       f"{plural(len(by_id), 'distinct machine id')}{note}", data=data)
