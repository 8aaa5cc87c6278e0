"""Host facts collected once and shared by every check.

Each fact is computed on first use (thread-safe, memoized on the host), so
concurrent checks never read the same thing twice and a fact no selected
check needs is never read.
"""

from __future__ import annotations

import os
import re

from .accounts import invoking_user
from .record import FrozenRecord, Record
from .cpuinfo import VIRT_FLAGS, CpuInfo, elf_arch, parse_cpuinfo
from .errors import NeedsRoot, ProbeError, ToolMissing
from .host import Host
from .kernel import KernelInfo, ModuleIndex, ModuleState, detect_kernel, module_index, module_state, read_kernel_log
from .kvmprobe import KvmProbe, probe_kvm
from .osrelease import OsInfo, detect_os
from .virt import VirtInfo, detect_virt


class MemInfo(Record):
    def __init__(self, total_kib: int | None, available_kib: int | None):
        self.total_kib = total_kib
        self.available_kib = available_kib

    @property
    def total_gib(self) -> float | None:
        return None if self.total_kib is None else self.total_kib / 1024 / 1024


class Process(FrozenRecord):
    def __init__(self, pid: int, comm: str, cmdline: tuple[str, ...]):
        self._fields(pid=pid, comm=comm, cmdline=cmdline)


def _proc_file(proc: str, name: str) -> bytes | None:
    """``proc``/NAME (a live host's /proc/PID: the running system, not someone's
    image), read directly: the process table is ~140 small files, and
    Host.read_bytes' checks (regular file, size cap) cost ~10 us each."""
    try:
        fd = os.open(os.path.join(proc, name), os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)


def _quietly(job) -> None:
    try:
        job()
    except Exception:  # the check that needs the fact reports the problem itself
        pass


class Facts:
    def __init__(self, host: Host):
        self.host = host

    def prefetch(self) -> None:
        """Start the slow shared probes in background threads.

        They wait on the kernel or on child processes (KVM_CREATE_VM, the
        kernel log, dpkg-query, systemctl), so they overlap with the checks;
        a check that needs one waits for it through the memo.
        """
        import threading

        from . import pkgdb, units

        def dpkg():
            if pkgdb.database_kind(self.host, self.os.family) == "dpkg" and pkgdb.dpkg_status(self.host) is None:
                pkgdb.dpkg_listing(self.host)  # dpkg-query must answer: start it early

        jobs = [lambda: self.kvm, lambda: self.kernel_log, dpkg,
                lambda: units.enabled_states(self.host, sorted(units.KNOWN_UNITS))]
        for job in jobs:
            threading.Thread(target=_quietly, args=(job,), daemon=True, name="kvmprep-prefetch").start()

    def _memo(self, name, compute):
        return self.host.memo(("fact", name), compute)

    # ---- distribution -------------------------------------------------
    @property
    def os(self) -> OsInfo:
        return self._memo("os", lambda: detect_os(self.host.read_text, self.host.exists))

    # ---- CPU ------------------------------------------------------------
    @property
    def cpuinfo_text(self) -> str | None:
        return self._memo("cpuinfo_text", lambda: self.host.read_text("/proc/cpuinfo"))

    @property
    def cpu(self) -> CpuInfo:
        def compute():
            info = self._parsed_cpuinfo() if self.cpuinfo_state == "ok" else parse_cpuinfo("")
            info.arch = self._arch_and_source(info.arch)[0]
            return info
        return self._memo("cpu", compute)

    def _parsed_cpuinfo(self) -> CpuInfo:
        """/proc/cpuinfo parsed once: judged by cpuinfo_state, used by cpu."""
        return self._memo("cpuinfo_parsed", lambda: parse_cpuinfo(self.cpuinfo_text or ""))

    @property
    def cpuinfo_state(self) -> str:
        """"ok", "missing", or "garbled": present but not cpuinfo text (binary
        bytes, no "processor" line). A garbled one counts as unreadable for
        every CPU check alike, never as a CPU without features."""
        def compute():
            text = self.cpuinfo_text
            if not text or not text.strip():
                return "missing"
            keys = self._parsed_cpuinfo().raw_keys
            if "\ufffd" in text or "\0" in text or not ("processor" in keys or "# processors" in keys):
                return "garbled"
            return "ok"
        return self._memo("cpuinfo_state", compute)

    def cpuinfo_unseen(self) -> tuple[str, str]:
        """Why the CPU cannot be seen, and the evidence value for /proc/cpuinfo."""
        if self.cpuinfo_state == "garbled":
            return "/proc/cpuinfo in the root is not cpuinfo text (binary or garbled bytes)", "unreadable"
        return "no /proc/cpuinfo in the root to read", "missing"

    def _arch_and_source(self, cpuinfo_arch: str | None) -> tuple[str | None, str]:
        """The root's architecture and where it was read: uname when live, else
        the ELF header of its shell, else the guess from cpuinfo."""
        def compute():
            if self.host.live:
                return os.uname().machine, "uname -m"
            for p in ("/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/env", "/bin/busybox"):
                arch = elf_arch(self.host.read_bytes(p, limit=64))
                if arch:
                    return arch, f"{self.host.display(p)} (ELF header)"
            return cpuinfo_arch, self.host.display("/proc/cpuinfo")
        return self._memo("arch", compute)

    @property
    def arch_source(self) -> str:
        return self._arch_and_source(self.cpu.arch)[1]

    # ---- kernel -------------------------------------------------------
    @property
    def kernel(self) -> KernelInfo:
        return self._memo("kernel", lambda: detect_kernel(self.host))

    @property
    def modules(self) -> ModuleIndex:
        return self._memo("modules", lambda: module_index(self.host, self.kernel.release))

    def module(self, name: str) -> ModuleState:
        return self._memo(("module", name), lambda: module_state(self.host, self.modules, name))

    def module_param(self, module: str, param: str) -> str | None:
        return self.host.read_first_line(f"/sys/module/{module}/parameters/{param}")

    @property
    def kernel_log(self) -> tuple[list[str], str]:
        def compute():
            try:
                return read_kernel_log(self.host)
            except NeedsRoot as exc:
                return [], f"{exc.what}: needs root"
        return self._memo("kernel_log", compute)

    # ---- virtualization -------------------------------------------------
    @property
    def kvm(self) -> KvmProbe:
        def compute():
            if not self.host.live:
                return KvmProbe("offline", "an offline root cannot be probed: /dev/kvm belongs to the running kernel")
            return probe_kvm(self.host.path("/dev/kvm"))
        return self._memo("kvm", compute)

    @property
    def virt(self) -> VirtInfo:
        return self._memo("virt", lambda: detect_virt(
            self.host, self.cpu.flags, self.cpu.platform, self.kernel_log[0]))

    @property
    def vendor_module(self) -> str | None:
        """The KVM module for this CPU, or one already active (kvm_pvm...)."""
        for mod in ("kvm_intel", "kvm_amd", "kvm_hv", "kvm_pvm"):
            if self.host.is_dir(f"/sys/module/{mod}"):
                return mod
        cpu = self.cpu
        if cpu.arch in ("x86_64", "i686"):
            if "vmx" in cpu.flags or cpu.vendor in ("intel", "centaur", "zhaoxin"):
                return "kvm_intel"
            if "svm" in cpu.flags or cpu.vendor in ("amd", "hygon"):
                return "kvm_amd"
        if cpu.arch and cpu.arch.startswith("ppc"):
            return "kvm_hv"
        return None

    # ---- memory, processes, people -----------------------------------
    @property
    def memory(self) -> MemInfo:
        def compute():
            text = self.host.read_text("/proc/meminfo") or ""
            vals = {}
            for line in text.splitlines():
                m = re.match(r"(\w+):\s+(\d+)", line)
                if m:
                    vals[m.group(1)] = int(m.group(2))
            return MemInfo(vals.get("MemTotal"), vals.get("MemAvailable"))
        return self._memo("memory", compute)

    @property
    def processes(self) -> list[Process]:
        def compute():
            if not self.host.live:
                return []
            out = []
            for name in self.host.listdir("/proc"):
                if not name.isdigit():
                    continue
                proc = os.path.join(self.host.root, "proc", name)
                raw, comm = _proc_file(proc, "cmdline"), _proc_file(proc, "comm")
                if raw is None or comm is None:  # processes come and go
                    continue
                argv = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)
                out.append(Process(int(name), comm.decode("utf-8", "replace").strip(), argv))
            return out
        return self._memo("processes", compute)

    def running(self, *names: str) -> list[Process]:
        return [p for p in self.processes
                if p.comm in names or (p.cmdline and os.path.basename(p.cmdline[0]) in names)]

    @property
    def guests(self) -> list[Process]:
        # QEMU under its own names; "kvm" is Debian's old wrapper name (kernel
        # threads such as kvm-nx-lpage-recovery have no command line).
        return [p for p in self.processes if p.cmdline and (
                p.comm.startswith(("qemu-system", "qemu-kvm")) or p.comm == "kvm"
                or os.path.basename(p.cmdline[0]).startswith(("qemu-system", "qemu-kvm")))]

    @property
    def user(self) -> tuple[str | None, str]:
        return self._memo("user", lambda: invoking_user(self.host))

    @property
    def hostname(self) -> str | None:
        def compute():
            if self.host.live:
                return os.uname().nodename
            name = self.host.read_first_line("/etc/hostname")
            return name or None
        return self._memo("hostname", compute)

    def safe(self, name: str, default=None):
        """A fact for display (the table's host line, the welcome screen): its
        value, or ``default`` when it cannot be read (the checks that need it
        say why)."""
        try:
            return getattr(self, name)
        except (ProbeError, NeedsRoot, ToolMissing):
            return default

    # ---- the document's "host" section ---------------------------------
    def to_dict(self) -> dict:
        """Each section on its own: a fact that cannot be read (a FIFO for
        /etc/hostname in an image, say) is {"error": why} there, and the
        checks that need it say so; the document is still written."""
        def cpu():
            c = self.cpu
            # the flags themselves, not only the verdicts: kvmprep fleet compares them
            # across hosts (what a migrating guest may use), and so can anyone else
            return {"arch": c.arch, "vendor": c.vendor, "model": c.model, "count": c.count,
                    "virt_extension": c.virt_extension, "x86_64_level": c.x86_64_level,
                    "signature": c.signature, "flags": sorted(c.flags),
                    "virt_flags": sorted(c.flags & VIRT_FLAGS), "vmx_flags": sorted(c.vmx_flags)}

        def network():
            from .netinfo import addresses, management_address

            found = addresses(self.host)
            return {"management": management_address(self.host, found),
                    "addresses": [{"interface": i, "address": a} for i, a in found]}

        def packages():
            from .virtstack import stack_versions

            return stack_versions(self.host, self.os.family, self.cpu.arch)

        def memory():
            return {"total_kib": self.memory.total_kib, "available_kib": self.memory.available_kib}

        sections = {
            "hostname": lambda: self.hostname,
            "machine_id": lambda: self.machine_id,
            "os": lambda: self.os.to_dict(),
            "cpu": cpu,
            "kernel": lambda: self.kernel.to_dict(),
            "packages": packages,
            "network": network,
            "virtualization": lambda: {**self.virt.to_dict(), "kvm": self.kvm.to_dict(),
                                       "kvm_module": self.vendor_module},
            "memory": memory,
            "running_guests": lambda: [{"pid": p.pid, "name": p.comm} for p in self.guests],
            "user": lambda: {"name": self.user[0], "euid": self.host.euid, "root": self.host.is_root},
        }
        out = {}
        for key, compute in sections.items():
            try:
                out[key] = compute()
            except (ProbeError, NeedsRoot, ToolMissing) as exc:
                out[key] = {"error": str(exc)}
        return out

    @property
    def machine_id(self) -> str | None:
        """/etc/machine-id (32 hex digits; systemd's, or dbus's on older systems):
        hosts cloned from one image share it (and with it DHCP client ids and
        journal names) until it is regenerated. None when missing or not an id
        (empty until first boot in images)."""
        def compute():
            for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
                value = (self.host.read_first_line(path) or "").lower()
                if len(value) == 32 and all(ch in "0123456789abcdef" for ch in value):
                    return value
            return None
        return self._memo("machine_id", compute)
