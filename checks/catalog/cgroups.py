"""Control groups: the controllers libvirt uses to confine and account guests."""

from __future__ import annotations

import re

from ..model import failed, passed, skipped
from ..registry import Ctx, check

V1_WANTED = ["cpu", "cpuacct", "cpuset", "memory", "devices", "blkio"]
V2_WANTED = ["cpu", "cpuset", "memory", "io", "pids"]
# v1 subsystem names (for mounts where /proc/cgroups is not readable)
V1_KNOWN = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
            "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"}


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def parse_mounts(text: str) -> list[tuple[str, str, list[str]]]:
    """(mount point, fs type, options) of cgroup and cgroup2 mounts."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 4 or parts[2] not in ("cgroup", "cgroup2"):
            continue
        out.append((_unescape(parts[1]), parts[2], parts[3].split(",")))
    return out


def parse_proc_cgroups(text: str) -> dict[str, tuple[int, bool]]:
    """subsystem -> (hierarchy id, enabled) from /proc/cgroups."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 4 or not parts[1].isdigit() or parts[3] not in ("0", "1"):
            continue
        out[parts[0]] = (int(parts[1]), parts[3] == "1")
    return out


@check(
    "cgroups.controllers",
    title="cgroup controllers",
    why="libvirt confines and accounts each guest with cgroup controllers (CPU shares and pinning, memory limits, "
        "disk I/O throttling, device access); a missing controller makes those guest settings fail.",
    source="libvirt virt-host-validate (cgroup controllers; kvmprep reads cgroup v2 correctly)",
    params={"v1_controllers": list(V1_WANTED), "v2_controllers": list(V2_WANTED)},
)
def cgroups_controllers(ctx: Ctx):
    host = ctx.host
    mounts_path = "/proc/self/mounts" if host.live else "/proc/mounts"
    text = host.read_text(mounts_path)
    if text is None:
        if not host.live:
            return skipped("offline root: no /proc/mounts to show which cgroup hierarchies are mounted")
        return failed(f"cannot read {mounts_path}", (ctx.show(mounts_path), "missing"))
    mounts = parse_mounts(text)
    proc_text = host.read_text("/proc/cgroups")
    proc = parse_proc_cgroups(proc_text or "")
    known = set(proc) | V1_KNOWN
    ev = []

    v1: dict[str, str] = {}  # controller -> mount point
    v2_mounts = []
    for point, fstype, opts in mounts:
        if fstype == "cgroup":
            for opt in opts:
                if opt in known:
                    v1.setdefault(opt, point)
        else:
            v2_mounts.append(point)
    v2: set[str] = set()
    v2_point = None
    for point in v2_mounts:
        path = point.rstrip("/") + "/cgroup.controllers"
        listed = host.read_text(path)
        if listed is None:
            ev.append((ctx.show(path), "missing"))
            continue
        names = set(listed.split())
        ev.append((ctx.show(path), " ".join(sorted(names)) or "(empty)"))
        if v2_point is None or len(names) > len(v2):
            v2, v2_point = names, point
    if v1:
        by_point: dict[str, list[str]] = {}
        for c, p in v1.items():
            by_point.setdefault(p, []).append(c)
        ev.insert(0, (ctx.show(mounts_path), "; ".join(f"{p}: {','.join(sorted(cs))}" for p, cs in sorted(by_point.items()))
                      + (f"; cgroup2 at {', '.join(v2_mounts)}" if v2_mounts else "")))
    elif v2_mounts:
        ev.insert(0, (ctx.show(mounts_path), f"cgroup2 at {', '.join(v2_mounts)}"))

    if not v1 and not v2_mounts:
        return failed("no cgroup filesystem is mounted", (ctx.show(mounts_path), "no cgroup or cgroup2 mounts"),
                      hint="mount cgroup2 on /sys/fs/cgroup (systemd does this at boot): mount -t cgroup2 none /sys/fs/cgroup")

    if v1:
        mode = "v1" + (f" (hybrid: cgroup2 at {v2_point or v2_mounts[0]})" if v2_mounts else "")
        wanted = list(ctx.params["v1_controllers"])
    else:
        mode = "v2"
        wanted = list(ctx.params["v2_controllers"])

    def have(c: str) -> bool:
        if c in v1 or c in v2:
            return True
        if v2_mounts:
            if c == "devices":
                return True  # BPF device programs: always there on v2
            if c == "cpuacct" and "cpu" in v2:
                return True  # accounting is part of cpu on v2
            if c == "blkio" and "io" in v2:
                return True
        if c == "io" and "blkio" in v1:
            return True
        return False

    missing = [c for c in wanted if not have(c)]
    if proc_text is not None:
        ev.append((ctx.show("/proc/cgroups"), "disabled: " + (", ".join(c for c, (_, on) in sorted(proc.items()) if not on) or "none")))
    if not missing:
        return passed(f"cgroup {mode}: {', '.join(wanted)} available", *ev)
    reasons = []
    for c in missing:
        name = "blkio" if c == "io" and "blkio" in proc else c
        if name in proc and not proc[name][1]:
            reasons.append(f"{c} (disabled at boot)")
        elif mode != "v2" and name in proc:
            reasons.append(f"{c} (not mounted)")
        else:
            reasons.append(c)
    disabled = [c for c in missing if c in proc and not proc[c][1]]
    if disabled:
        hint = f"remove cgroup_disable={','.join(disabled)} from the kernel command line (or add cgroup_enable={','.join(disabled)}) and reboot"
    elif mode == "v2":
        hint = f"a kernel built with the {', '.join(missing)} controller(s) is needed; or a v1 hierarchy holds them: boot with systemd.unified_cgroup_hierarchy=1"
    else:
        first = missing[0]
        hint = f"mkdir -p /sys/fs/cgroup/{first} && mount -t cgroup -o {first} cgroup /sys/fs/cgroup/{first}"
    return failed(f"cgroup {mode}: missing {', '.join(reasons)}", *ev, hint=hint)
