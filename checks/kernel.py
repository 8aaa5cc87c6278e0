"""Kernel facts of a root: release, command line, modules, kernel log."""

from __future__ import annotations

import errno
import os
import re

from .host import Host
from .record import FrozenRecord, Record


class KernelInfo(Record):
    def __init__(self, release: str | None = None, release_source: str | None = None,
                 cmdline: list[str] | None = None, cmdline_source: str | None = None):
        self.release = release
        self.release_source = release_source
        self.cmdline = [] if cmdline is None else cmdline
        self.cmdline_source = cmdline_source

    def param(self, name: str) -> str | None:
        """Last value of ``name=`` on the command line ('' for a bare flag)."""
        value = None
        alt = name.replace("-", "_")
        for tok in self.cmdline:
            if tok == "--":
                break  # the rest goes to init
            key, sep, val = tok.partition("=")
            if key.replace("-", "_") == alt:
                value = val if sep else ""
        return value

    def to_dict(self) -> dict:
        return {"release": self.release, "cmdline": " ".join(self.cmdline) or None}


_VERSION_RX = r"Linux version (\S+)"  # compiled on first use, not at import


def version_key(release: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[.\-+_~]", release))


def detect_kernel(host: Host) -> KernelInfo:
    info = KernelInfo()
    text = host.read_text("/proc/version")
    if text and (m := re.search(_VERSION_RX, text)):
        info.release, info.release_source = m.group(1), "/proc/version"
    elif host.live:
        info.release, info.release_source = os.uname().release, "uname -r"
    else:
        releases = [r for r in host.listdir("/lib/modules") if host.is_dir(f"/lib/modules/{r}")]
        if releases:
            info.release = max(releases, key=version_key)
            info.release_source = "/lib/modules (newest installed)"
    cmd = host.read_text("/proc/cmdline")
    if cmd is not None:
        info.cmdline, info.cmdline_source = cmd.split(), "/proc/cmdline"
    return info


def norm_module(name: str) -> str:
    return name.replace("-", "_")


class ModuleIndex(Record):
    """What lib/modules/<release> says: built-in and loadable module names."""

    def __init__(self, builtin: frozenset[str] = frozenset(), available: frozenset[str] = frozenset(),
                 present: bool = False, path: str = ""):
        self.builtin = builtin
        self.available = available
        self.present = present  # lib/modules/<release> exists
        self.path = path


def _names_from(lines: str | None) -> frozenset[str]:
    out = set()
    for line in (lines or "").splitlines():
        path = line.split(":", 1)[0].strip()
        if not path:
            continue
        base = os.path.basename(path)
        base = re.sub(r"\.ko(\.(xz|gz|zst))?$", "", base)
        out.add(norm_module(base))
    return frozenset(out)


def module_index(host: Host, release: str | None) -> ModuleIndex:
    if not release:
        return ModuleIndex()
    base = f"/lib/modules/{release}"
    if not host.is_dir(base):
        return ModuleIndex(path=base)
    return ModuleIndex(
        builtin=_names_from(host.read_text(f"{base}/modules.builtin")),
        available=_names_from(host.read_text(f"{base}/modules.dep")),
        present=True,
        path=base,
    )


class ModuleState(FrozenRecord):
    def __init__(self, name: str, state: str, source: str):
        # state: loaded | builtin | available | absent | unknown
        self._fields(name=name, state=state, source=source)

    @property
    def active(self) -> bool:
        return self.state in ("loaded", "builtin")


def module_state(host: Host, index: ModuleIndex, name: str) -> ModuleState:
    """Loaded, built in, loadable, or absent: /sys/module first, then lib/modules.

    /proc/modules is not used: it misses built-in modules and may not exist.
    """
    name = norm_module(name)
    sysdir = f"/sys/module/{name}"
    if host.is_dir(sysdir):
        if host.exists(f"{sysdir}/initstate"):
            return ModuleState(name, "loaded", sysdir)
        return ModuleState(name, "builtin", f"{sysdir} (no initstate: built in)")
    if name in index.builtin:
        return ModuleState(name, "builtin", f"{index.path}/modules.builtin")
    if host.live and host.is_dir("/sys/module"):
        # a live host whose sysfs lacks it: not loaded now
        if name in index.available:
            return ModuleState(name, "available", f"{index.path}/modules.dep")
        if index.present:
            return ModuleState(name, "absent", f"{sysdir}, {index.path}")
        return ModuleState(name, "absent", f"{sysdir} (no {index.path or '/lib/modules'})")
    if name in index.available:
        return ModuleState(name, "available", f"{index.path}/modules.dep")
    if index.present:
        return ModuleState(name, "absent", index.path)
    return ModuleState(name, "unknown", "no /sys/module and no /lib/modules for this kernel")


def read_kernel_log(host: Host) -> tuple[list[str], str]:
    """Kernel messages and where they came from.

    Live: /dev/kmsg read without blocking (needs root where dmesg_restrict is
    set). Offline: the root's saved logs.
    """
    if host.live:
        try:
            fd = os.open(host.path("/dev/kmsg"), os.O_RDONLY | os.O_NONBLOCK)
        except PermissionError:
            if not host.is_root:
                from .errors import NeedsRoot

                raise NeedsRoot("/dev/kmsg (kernel log)")
            return [], "/dev/kmsg (not readable)"
        except OSError:
            fd = None
        if fd is not None:
            lines = []
            try:
                while True:
                    try:
                        rec = os.read(fd, 8192)
                    except OSError as exc:
                        if exc.errno == errno.EPIPE:  # overwritten record: go on
                            continue
                        break
                    if not rec:
                        break
                    text = rec.decode("utf-8", "replace")
                    lines.append(text.split(";", 1)[-1].split("\n", 1)[0])
            finally:
                os.close(fd)
            return lines, "/dev/kmsg"
    for path in ("/var/log/dmesg", "/var/log/kern.log", "/var/log/messages"):
        text = host.read_text(path)
        if text:
            return text.splitlines()[-20000:], path
    return [], "no kernel log found"
