"""Is this host a virtual machine, and under what? Read from files only."""

from __future__ import annotations

import re

from .errors import NeedsRoot, ProbeError
from .host import Host
from .record import Record

# Patterns (case-insensitive) are compiled on first use (re's cache), not at import.
_DMI_VMS = [
    (r"QEMU|KVM|Bochs|OpenStack|oVirt|RHEV|Nutanix AHV", "kvm"),
    (r"VMware", "vmware"),
    (r"VirtualBox|innotek", "oracle"),
    (r"Xen|HVM domU", "xen"),
    (r"Amazon EC2", "amazon"),
    (r"Google Compute Engine", "google"),
    (r"Parallels", "parallels"),
    (r"BHYVE", "bhyve"),
]
_DMI_FILES = ("sys_vendor", "product_name", "board_vendor", "bios_vendor", "product_version")
_LOG_RX = r"Hypervisor detected: (\S+)"
_CGROUP_RX = r"docker|containerd|kubepods|libpod|lxc|crio|garden|nspawn"
_CONTAINER_ROOT_FS = {"overlay", "aufs", "fuse-overlayfs", "shiftfs"}


def dmi_vm_kind(value: str) -> str | None:
    """The hypervisor a DMI string (vendor, product, board) names, if any."""
    if value.strip() == "Virtual Machine":  # Hyper-V's product_name
        return "microsoft"
    for rx, kind in _DMI_VMS:
        if re.search(rx, value, re.I):
            return kind
    return None


class VirtInfo(Record):
    def __init__(self, kind: str | None = None, is_vm: bool | None = None, container: str | None = None,
                 evidence: list[tuple[str, str]] | None = None):
        self.kind = kind  # None: bare metal as far as can be seen
        self.is_vm = is_vm  # None: cannot tell
        self.container = container
        self.evidence = [] if evidence is None else evidence

    def to_dict(self) -> dict:
        return {"vm": self.is_vm, "hypervisor": self.kind, "container": self.container}


def detect_virt(host: Host, cpu_flags: frozenset[str], platform: str | None,
                kernel_log: list[str]) -> VirtInfo:
    info = VirtInfo()
    ev = info.evidence
    seen_any = False
    if cpu_flags:
        seen_any = True
        if "hypervisor" in cpu_flags:
            info.is_vm = True
            ev.append(("/proc/cpuinfo flags", "hypervisor flag set"))
        else:
            ev.append(("/proc/cpuinfo flags", "no hypervisor flag"))
    for name in _DMI_FILES:
        p = f"/sys/class/dmi/id/{name}"
        value = host.read_first_line(p)
        if not value:
            continue
        seen_any = True
        kind = dmi_vm_kind(value)
        if kind:
            info.kind = info.kind or kind
            info.is_vm = True
            ev.append((p, value))
    hv_type = host.read_first_line("/sys/hypervisor/type")
    if hv_type:
        caps = host.read_text("/proc/xen/capabilities") or ""
        if "control_d" not in caps:
            info.kind, info.is_vm = info.kind or hv_type, True
            ev.append(("/sys/hypervisor/type", hv_type))
    for line in kernel_log:
        m = re.search(_LOG_RX, line)
        if m:
            info.kind = info.kind or m.group(1).lower()
            info.is_vm = True
            ev.append(("kernel log", line.strip()))
            break
    if platform:
        seen_any = True
        if platform.lower() == "pseries":
            info.is_vm, info.kind = True, info.kind or "powervm"
            ev.append(("/proc/cpuinfo platform", "pSeries (PowerVM logical partition)"))
    compat = host.read_text("/proc/device-tree/hypervisor/compatible")
    if compat and "kvm" in compat:
        info.is_vm, info.kind = True, info.kind or "kvm"
        ev.append(("/proc/device-tree/hypervisor/compatible", compat.strip("\0\n")))
    sysinfo = host.read_text("/proc/sysinfo")
    if sysinfo:
        seen_any = True
        m = re.search(r"Control Program:\s*(.+)", sysinfo)
        if m:
            info.is_vm, info.kind = True, info.kind or m.group(1).split()[0].lower()
            ev.append(("/proc/sysinfo", m.group(0).strip()))
    info.container = _detect_container(host, ev)
    if info.is_vm is None and seen_any:
        info.is_vm = False
    return info


def root_fstype(host: Host) -> tuple[str | None, str | None]:
    """Filesystem type and source of ``/`` from /proc/self/mountinfo (live hosts)."""
    text = host.read_text("/proc/self/mountinfo") or ""
    found = (None, None)
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[4] != "/" or " - " not in line:
            continue
        after = line.split(" - ", 1)[1].split()
        if after:
            found = (after[0], after[1] if len(after) > 1 else None)  # the last one is on top
    return found


def _detect_container(host: Host, ev: list) -> str | None:
    """The container manager this live host runs under, or None.

    Like systemd-detect-virt, but /.dockerenv and /run/.containerenv alone
    are not trusted: images built with Docker keep /.dockerenv when they are
    booted as VMs. They count only with a second sign (an overlay root or a
    container cgroup path for PID 1).
    """
    if not host.live:
        return None
    for p in ("/run/systemd/container", "/run/host/container-manager"):
        value = host.read_first_line(p)
        if value:
            ev.append((p, value))
            return value.lower()
    try:
        environ = host.read_bytes("/proc/1/environ")
    except (NeedsRoot, ProbeError):
        environ = None
    for item in (environ or b"").split(b"\0"):
        if item.startswith(b"container="):
            value = item[len(b"container="):].decode("utf-8", "replace") or "container"
            ev.append(("/proc/1/environ", f"container={value}"))
            return value.lower()
    if host.is_dir("/proc/vz") and not host.is_dir("/proc/bc"):
        ev.append(("/proc/vz", "present without /proc/bc (OpenVZ/Virtuozzo container)"))
        return "openvz"
    markers = [(m, kind) for m, kind in (("/run/.containerenv", "podman"), ("/.dockerenv", "docker"))
               if host.exists(m)]
    if host.env.get("KUBERNETES_SERVICE_HOST"):
        markers.append(("KUBERNETES_SERVICE_HOST", "kubernetes"))
    if not markers:
        return None
    signs = []
    try:
        cgroup = host.read_text("/proc/1/cgroup") or ""
    except (NeedsRoot, ProbeError):
        cgroup = ""
    for line in cgroup.splitlines():
        if re.search(_CGROUP_RX, line, re.I):
            signs.append(("/proc/1/cgroup", line.strip()))
            break
    fstype, source = root_fstype(host)
    if fstype in _CONTAINER_ROOT_FS:
        signs.append(("/proc/self/mountinfo", f"/ is {fstype}"))
    marker_ev = [(m if m.startswith("/") else f"environment {m}", "present") for m, _ in markers]
    if signs:
        ev.extend(marker_ev + signs)
        return markers[0][1]
    root_desc = f"{fstype} on {source}" if fstype else "not an overlay"
    ev.append((marker_ev[0][0], f"present, but / is {root_desc} and PID 1's cgroup names no "
               "container: left over from building the image, not a container"))
    return None
