"""Atomic file writes that keep owner, mode and SELinux label, and backups
kept outside drop-in directories (a backup named *.conf inside
/etc/modprobe.d would itself be loaded as configuration)."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass

SELINUX_XATTR = "security.selinux"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileState:
    exists: bool
    sha256: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    label: bytes | None = None


def file_state(real_path: str) -> FileState:
    try:
        st = os.stat(real_path)
        with open(real_path, "rb") as fh:
            digest = sha256(fh.read())
    except FileNotFoundError:
        return FileState(False)
    label = None
    try:
        label = os.getxattr(real_path, SELINUX_XATTR)
    except OSError:
        pass
    return FileState(True, digest, st.st_mode & 0o7777, st.st_uid, st.st_gid, label)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(real_path: str, data: bytes, like: FileState | None = None, mode: int = 0o644) -> None:
    """Write ``data`` to ``real_path`` so that a reader (or a crash) sees the
    old content or the new, never a mix: temp file in the same directory,
    owner/mode/label of the original, fsync, rename, fsync of the directory."""
    directory = os.path.dirname(real_path) or "."
    os.makedirs(directory, exist_ok=True)
    # The temp name does not end in .conf, so drop-in readers ignore it.
    tmp = os.path.join(directory, f".{os.path.basename(real_path)}.kvmprep-{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if like is not None and like.exists:
            os.fchmod(fd, like.mode)
            try:
                os.fchown(fd, like.uid, like.gid)
            except PermissionError:
                pass
            if like.label:
                try:
                    os.setxattr(tmp, SELINUX_XATTR, like.label)
                except OSError:
                    pass
        else:
            os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, real_path)
        _fsync_dir(directory)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def backup_file(real_path: str, backup_root: str, host_path: str) -> str:
    """Copy the original byte for byte (mode and times kept) under backup_root."""
    dest = os.path.join(backup_root, host_path.lstrip("/"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.copy2(real_path, dest)
    with open(dest, "rb") as fh:
        os.fsync(fh.fileno())
    return dest
