"""kvmprep's own files inside a root, opened without following a symlink.

An image under ``--root`` is someone else's: a ``var/lib/kvmprep/lock``
symlink to ``/etc/shadow`` must not get that file truncated, and a
``backups`` symlink to ``/`` must not put backups on the machine kvmprep
runs on. Directories are walked one component at a time from the root with
O_NOFOLLOW (openat), files are opened relative to their directory's fd with
O_NOFOLLOW and must be regular files.
"""

from __future__ import annotations

import errno
import os
import stat

from checks.files import NotRegular
from checks.host import Host


class Escape(OSError):
    """A path that would leave the root, or is not what kvmprep made there."""

    def __init__(self, path: str, why: str):
        super().__init__(errno.ELOOP, why, path)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def real_dir(host: Host, path: str) -> tuple[str, str]:
    """(trusted top, path below it) for absolute ``path`` inside the root: the
    root itself is the admin's choice (trusted as given); below it every
    component is checked. On the running system ("/") the path is the real one."""
    if host.root == "/":
        return "/", os.path.realpath(path).lstrip("/")
    real = host.path(path)
    return host.root, os.path.relpath(real, host.root)


def open_dir(top: str, rel: str, create: bool = False, mode: int = 0o700) -> int:
    """A directory fd for ``top/rel``; each component below ``top`` is a real
    directory (never a symlink), created with ``mode`` when ``create``."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                raise Escape(os.path.join(top, rel), "'..' in a path kvmprep made")
            if create:
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Escape(os.path.join(top, rel), f"{part} is not a directory (a symlink?): "
                                 "kvmprep does not follow it") from None
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_file(dir_fd: int, name: str, flags: int, mode: int = 0o600) -> int:
    """``name`` in the directory ``dir_fd``: never through a symlink, and only
    a regular file (a FIFO opened for reading does not block)."""
    if "/" in name or name in ("", ".", ".."):
        raise Escape(name, "not a plain file name")
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Escape(name, "is a symlink: kvmprep does not follow it") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotRegular(name, "not a regular file")
    os.set_blocking(fd, True)
    return fd


def read_fd(fd: int, cap: int) -> bytes:
    chunks, got = [], 0
    while got <= cap:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > cap:
        raise OSError(errno.EFBIG, f"larger than {cap >> 20} MiB")
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ---- tools that write into a root without chrooting ------------------------------------

_PACKAGE_TREE = ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "usr/bin", "usr/sbin", "usr/lib",
                 "usr/lib64", "usr/libexec", "usr/share", "usr/local", "usr/lib/systemd", "usr/lib/systemd/system",
                 "etc", "etc/systemd", "etc/systemd/system", "etc/apt", "etc/yum.repos.d", "var", "var/lib",
                 "var/log", "var/cache", "var/lib/dpkg", "var/lib/apt", "var/cache/apt", "var/lib/rpm",
                 "var/cache/dnf", "usr/lib/sysimage", "usr/lib/sysimage/rpm", "opt", "boot", "srv", "run", "tmp")
_UNIT_TREE = ("etc", "etc/systemd", "etc/systemd/system", "usr", "usr/lib", "usr/lib/systemd",
              "usr/lib/systemd/system", "lib", "lib/systemd", "lib/systemd/system", "run", "run/systemd")
# dpkg, rpm and the package managers unpack files under the root by path (they
# chroot only for maintainer scripts); systemctl --root writes its symlinks by path
WRITES = {"apt-get": _PACKAGE_TREE, "dpkg": _PACKAGE_TREE, "dnf": _PACKAGE_TREE, "yum": _PACKAGE_TREE,
          "rpm": _PACKAGE_TREE, "zypper": _PACKAGE_TREE, "systemctl": _UNIT_TREE}


def leaves_root(root: str, tool: str) -> list[str]:
    """The places ``tool`` writes under ``root`` that resolve outside it (an
    absolute symlink such as usr/lib/systemd/system -> /usr/lib/...), shown
    as "rel -> where": the tool would follow them onto this machine."""
    top = os.path.realpath(root)
    out = []
    for rel in WRITES.get(os.path.basename(tool), ()):
        where = os.path.realpath(os.path.join(root, rel))
        if where != top and not where.startswith(top.rstrip("/") + "/"):
            out.append(f"{rel} -> {where}")
    return out
