"""Is another package transaction running? Read, never removed."""

from __future__ import annotations

import os

from checks.host import Host

# lock files by the command that would need them
LOCKS = {
    "apt-get": ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"],
    "dpkg": ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"],
    "dnf": ["/var/lib/rpm/.rpm.lock", "/usr/lib/sysimage/rpm/.rpm.lock"],
    "yum": ["/var/lib/rpm/.rpm.lock", "/var/run/yum.pid"],
    "rpm": ["/var/lib/rpm/.rpm.lock", "/usr/lib/sysimage/rpm/.rpm.lock"],
    "zypper": ["/run/zypp.pid", "/var/run/zypp.pid"],
}


def _proc_locks() -> dict[tuple[int, int, int], int]:
    """(major, minor, inode) -> pid of a POSIX/FLOCK lock holder, from /proc/locks."""
    out = {}
    try:
        with open("/proc/locks") as fh:
            lines = fh.readlines()
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) < 6 or f[1] == "->":
            continue
        try:
            pid = int(f[4])
            major, minor, inode = f[5].split(":")
            out[(int(major, 16), int(minor, 16), int(inode))] = pid
        except ValueError:
            continue
    return out


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def lock_holder(host: Host, argv: list[str]) -> str | None:
    """'/var/lib/dpkg/lock-frontend is held by apt (pid 123)', or None."""
    tool = os.path.basename(argv[0]) if argv else ""
    paths = LOCKS.get(tool)
    if not paths or not host.live:
        return None
    locks = None
    for p in paths:
        real = host.path(p)
        if p.endswith(".pid"):
            try:
                with open(real) as fh:
                    pid = int(fh.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid and pid != os.getpid() and os.path.exists(f"/proc/{pid}"):
                return f"{p} names a running {_comm(pid)} (pid {pid})"
            continue
        try:
            st = os.stat(real)
        except OSError:
            continue
        if locks is None:
            locks = _proc_locks()
        pid = locks.get((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
        if pid and pid != os.getpid():
            return f"{p} is held by {_comm(pid)} (pid {pid})"
    return None
