"""Atomic file writes that keep owner, mode and SELinux label, and backups
kept outside drop-in directories (a backup named *.conf inside
/etc/modprobe.d would itself be loaded as configuration)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass

SELINUX_XATTR = "security.selinux"

# A file kvmprep edits is decoded so that every byte comes back exactly when the
# text is encoded again: UTF-8, and each byte that is not (Latin-1, a stray
# 0xff) as a lone surrogate U+DC80..U+DCFF. Only the lines a fix changes differ.
TEXT_ERRORS = "surrogateescape"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_text(data: bytes) -> str:
    """The text of a file kvmprep may rewrite: ``encode_text`` gives back ``data`` exactly."""
    return data.decode("utf-8", TEXT_ERRORS)


def encode_text(text: str) -> bytes:
    """The bytes of a file's text (``decode_text``'s inverse)."""
    return text.encode("utf-8", TEXT_ERRORS)


_UNSHOWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|\r(?!\n)")


def _shown(m: re.Match) -> str:
    c = ord(m.group())
    if 0xDC80 <= c <= 0xDCFF:
        return f"\\x{c - 0xDC00:02x}"  # a byte that is not UTF-8, as it is in the file
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def readable(text: str) -> str:
    """``text`` safe to show on a terminal: a byte that is not UTF-8 as ``\\xe9``,
    control characters (escape sequences, a lone carriage return) as ``\\x1b``;
    tabs and line ends stay."""
    return _UNSHOWABLE.sub(_shown, text)


def text_lines(text: str) -> list[str]:
    """``text`` cut after each \\n, as the programs that read configuration count lines
    (str.splitlines also cuts at a lone \\r, \\v, \\f, \\x1c..\\x1e, \\x85, U+2028)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


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


# ---- temp files left by a killed write ---------------------------------------------

_TEMP_NAME = re.compile(r"\A\..+\.kvmprep-([0-9]{1,10})\.tmp\Z", re.S)
_PID_MAX = 1 << 22  # the kernel's largest pid_max


def _kvmprep_running(pid: int) -> bool:
    """Whether process ``pid`` (of this machine's pid namespace) runs kvmprep now.
    When that cannot be told (no /proc, a process /proc hides), it counts as running."""
    if pid <= 0 or pid > _PID_MAX:
        return False
    others = False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        others = True  # it runs, as another user
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
    except FileNotFoundError:
        # it ended meanwhile; unless there is no /proc, or it hides other users' processes
        return others or not os.path.isdir("/proc/self")
    except OSError:
        return True
    # the console script or the bundle (kvmprep, kvmprep.pyz, ~/.cache/kvmprep/...),
    # or python -m app (how kvmprep starts itself again); a zombie has no argv
    if any(b"kvmprep" in arg for arg in argv):
        return True
    return b"-mapp" in argv or any(a == b"-m" and b == b"app" for a, b in zip(argv, argv[1:]))


def clean_stale_temps(directory: str) -> list[str]:
    """Remove the temp files an ``atomic_write`` killed between its write and its rename
    left in ``directory`` (a real path, not a root's), and return their paths.

    Only ``.NAME.kvmprep-PID.tmp`` entries that are regular files (a symlink is never
    followed, nor removed), owned by this process's effective uid, and whose PID is not
    a running kvmprep (it ended, or the number now belongs to another program). Best
    effort: a missing or unreadable directory, or an entry that cannot be removed, is
    skipped, never an error."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    euid = os.geteuid()
    running: dict[int, bool] = {}
    removed: list[str] = []
    try:
        try:
            names = sorted(os.listdir(dfd))
        except OSError:
            return []
        for name in names:
            m = _TEMP_NAME.match(name)
            if not m:
                continue
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_uid != euid:
                continue
            pid = int(m.group(1))
            if pid not in running:
                running[pid] = _kvmprep_running(pid)
            if running[pid]:
                continue
            try:
                os.unlink(name, dir_fd=dfd)  # unlink never follows a symlink
            except OSError:
                continue
            removed.append(os.path.join(directory, name))
        if removed:
            try:
                os.fsync(dfd)
            except OSError:
                pass
    finally:
        os.close(dfd)
    return removed
