"""The truth test for KVM: open /dev/kvm, check the API, create a VM.

CPU flags only explain a failure; this decides. Works as any user that can
open /dev/kvm; never loads a module.
"""

from __future__ import annotations

import errno
import os

from .record import Record

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_API_VERSION = 12

# modules whose presence explains an EBUSY from KVM_CREATE_VM
OTHER_HYPERVISORS = {
    "vboxdrv": "VirtualBox (vboxdrv)",
    "vmmon": "VMware Workstation/Player (vmmon)",
    "vmx86": "VMware (vmx86)",
    "haxm": "Intel HAXM",
}


class KvmProbe(Record):
    def __init__(self, outcome: str, detail: str, api_version: int | None = None, errno: int | None = None):
        self.outcome = outcome  # ok | no-device | denied | busy | bad-api | failed | offline
        self.detail = detail
        self.api_version = api_version
        self.errno = errno

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "detail": self.detail, "api_version": self.api_version}


def probe_kvm(device: str = "/dev/kvm") -> KvmProbe:
    import fcntl

    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return KvmProbe("no-device", f"{device} does not exist", errno=errno.ENOENT)
    except PermissionError as exc:
        return KvmProbe("denied", f"cannot open {device}: permission denied", errno=exc.errno)
    except OSError as exc:
        return KvmProbe("failed", f"cannot open {device}: {exc.strerror}", errno=exc.errno)
    try:
        try:
            api = fcntl.ioctl(fd, KVM_GET_API_VERSION, 0)
        except OSError as exc:
            return KvmProbe("failed", f"KVM_GET_API_VERSION failed: {exc.strerror}", errno=exc.errno)
        if api != KVM_API_VERSION:
            return KvmProbe("bad-api", f"KVM_GET_API_VERSION returned {api}, expected {KVM_API_VERSION}", api)
        try:
            vm = fcntl.ioctl(fd, KVM_CREATE_VM, 0)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                return KvmProbe("busy", "KVM_CREATE_VM failed: device busy (another hypervisor holds the CPU's virtualization)", api, exc.errno)
            return KvmProbe("failed", f"KVM_CREATE_VM failed: {exc.strerror}", api, exc.errno)
        os.close(vm)
        return KvmProbe("ok", f"opened {device}, API version {api}, KVM_CREATE_VM succeeded", api)
    finally:
        os.close(fd)
