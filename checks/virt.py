"""Is this host a virtual machine, and under what? Read from files only."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .host import Host

_DMI_VMS = [
    (re.compile(r"QEMU|KVM|Bochs|OpenStack|oVirt|RHEV|Nutanix AHV", re.I), "kvm"),
    (re.compile(r"VMware", re.I), "vmware"),
    (re.compile(r"VirtualBox|innotek", re.I), "oracle"),
    (re.compile(r"Xen|HVM domU", re.I), "xen"),
    (re.compile(r"Amazon EC2", re.I), "amazon"),
    (re.compile(r"Google Compute Engine", re.I), "google"),
    (re.compile(r"Parallels", re.I), "parallels"),
    (re.compile(r"BHYVE", re.I), "bhyve"),
]
_DMI_FILES = ("sys_vendor", "product_name", "board_vendor", "bios_vendor", "product_version")
_LOG_RX = re.compile(r"Hypervisor detected: (\S+)")


@dataclass
class VirtInfo:
    kind: str | None = None  # None: bare metal as far as can be seen
    is_vm: bool | None = None  # None: cannot tell
    container: str | None = None
    evidence: list[tuple[str, str]] = field(default_factory=list)

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
        for rx, kind in _DMI_VMS:
            if rx.search(value) or (name == "product_name" and value == "Virtual Machine"):
                info.kind = info.kind or (kind if rx.search(value) else "microsoft")
                info.is_vm = True
                ev.append((p, value))
                break
    hv_type = host.read_first_line("/sys/hypervisor/type")
    if hv_type:
        caps = host.read_text("/proc/xen/capabilities") or ""
        if "control_d" not in caps:
            info.kind, info.is_vm = info.kind or hv_type, True
            ev.append(("/sys/hypervisor/type", hv_type))
    for line in kernel_log:
        m = _LOG_RX.search(line)
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
    for marker, kind in (("/run/.containerenv", "podman"), ("/.dockerenv", "docker")):
        if host.live and host.exists(marker):
            info.container = kind
            ev.append((marker, "present"))
    if info.is_vm is None and seen_any:
        info.is_vm = False
    return info
