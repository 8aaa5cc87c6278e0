"""Is another package transaction running? Read, never removed.

Before each package command the executor asks :func:`lock_holder` whether a
lock that command would need is held, and by whom. Two kinds of lock:

- lock files held with fcntl/flock (dpkg's lock-frontend and lock, apt's
  lists and archives locks, rpm's .rpm.lock): the holder comes from
  /proc/locks (POSIX and flock locks carry the pid); open file description
  locks show pid -1 there, so their holder is found by the processes that
  have the file open (/proc/PID/fd). These are real for any root, also an
  offline one (another apt-get or dnf pointed at the same directory).
- pid files (dnf's *_lock.pid, yum.pid, zypp.pid): a running process of that
  pid. Only on the running system: in an offline root they are leftovers whose
  pid means nothing here.

Nothing here ever deletes or changes a lock file.
"""

from __future__ import annotations

import os

from checks.host import Host

# lock files by the command that would need them
_DPKG = ["/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"]
_APT = _DPKG + ["/var/lib/apt/lists/lock", "/var/cache/apt/archives/lock"]
_RPM = ["/var/lib/rpm/.rpm.lock", "/usr/lib/sysimage/rpm/.rpm.lock"]
_DNF = _RPM + ["/var/lib/dnf/rpmdb_lock.pid", "/var/cache/dnf/metadata_lock.pid",
               "/var/cache/dnf/download_lock.pid"]
_ZYPP = _RPM + ["/run/zypp.pid", "/var/run/zypp.pid"]
LOCKS = {
    "apt-get": _APT,
    "apt": _APT,
    "dpkg": _DPKG,
    "dnf": _DNF,
    "yum": _RPM + ["/var/run/yum.pid", "/run/yum.pid"],
    "rpm": _RPM,
    "zypper": _ZYPP,
}


def _proc_locks() -> dict[tuple[int, int, int], list[int]]:
    """(major, minor, inode) -> pids of POSIX/FLOCK/OFD lock holders, from /proc/locks
    (-1 for an open file description lock, whose owner the kernel does not name)."""
    out: dict[tuple[int, int, int], list[int]] = {}
    try:
        with open("/proc/locks") as fh:
            lines = fh.readlines()
    except OSError:
        return out
    for line in lines:
        f = line.split()
        if len(f) < 6 or f[1] == "->":
            continue  # a waiter, not a holder
        try:
            pid = int(f[4])
            major, minor, inode = f[5].split(":")
            out.setdefault((int(major, 16), int(minor, 16), int(inode)), []).append(pid)
        except ValueError:
            continue
    return out


def _openers(dev: int, ino: int) -> list[int]:
    """Pids of the processes that have the file (dev, ino) open."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        fd_dir = f"/proc/{entry}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if st.st_dev == dev and st.st_ino == ino:
                pids.append(int(entry))
                break
    return sorted(pids)


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip() or "unknown"
    except OSError:
        return "unknown"


def _describe(pids: list[int]) -> str:
    return " and ".join(f"{_comm(p)} (pid {p})" for p in pids)


def lock_holder(host: Host, argv: list[str]) -> str | None:
    """'/var/lib/dpkg/lock-frontend is held by apt (pid 123)', or None."""
    tool = os.path.basename(argv[0]) if argv else ""
    paths = LOCKS.get(tool)
    if not paths:
        return None
    locks = None
    for p in paths:
        try:
            real = host.path(p)
        except Exception:  # a symlink loop inside the root: not a lock we can judge
            continue
        if p.endswith(".pid"):
            if not host.live:
                continue
            try:
                with open(real) as fh:
                    pid = int(fh.read().strip() or 0)
            except (OSError, ValueError):
                continue
            if pid > 0 and pid != os.getpid() and os.path.exists(f"/proc/{pid}"):
                return f"{host.display(p)} names a running {_comm(pid)} (pid {pid})"
            continue
        try:
            st = os.stat(real)
        except OSError:
            continue
        if locks is None:
            locks = _proc_locks()
        holders = locks.get((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
        if not holders:
            # btrfs subvolumes and overlayfs report another st_dev than the
            # superblock /proc/locks names: same inode, and the holder must
            # have this very file open
            same_inode = [pid for (_, _, ino), pids in locks.items() if ino == st.st_ino for pid in pids]
            if not same_inode:
                continue
            openers = _openers(st.st_dev, st.st_ino)
            holders = [pid for pid in same_inode if pid in openers]
            if any(pid <= 0 for pid in same_inode) and not holders:
                holders = openers
            if not holders:
                continue
        pids = sorted({h for h in holders if h > 0 and h != os.getpid()})
        if any(h <= 0 for h in holders):  # an open file description lock: who has the file open
            pids = sorted(set(pids) | set(_openers(st.st_dev, st.st_ino)))
            if not pids:
                return f"{host.display(p)} is locked (the holder could not be named)"
        if pids:
            return f"{host.display(p)} is held by {_describe(pids)}"
    return None
