"""The one object through which every check reads the host.

Rooted at ``/`` (the running machine, "live") or at ``--root DIR`` (a mounted
disk, a chroot or a captured dump, "offline"). Paths given to it are always
absolute paths *inside* the root; symlinks are resolved inside the root too,
so ``etc/resolv.conf -> /run/...`` in an image never escapes to the machine
kvmprep runs on.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat as stat_mod
import threading
from collections.abc import Mapping, Sequence

from .errors import NeedsRoot, ProbeError, ToolMissing
from .record import FrozenRecord

_MAX_LINKS = 40


class CommandResult(FrozenRecord):
    def __init__(self, argv: tuple[str, ...], returncode: int, stdout: str, stderr: str):
        self._fields(argv=argv, returncode=returncode, stdout=stdout, stderr=stderr)

    @property
    def text(self) -> str:
        return " ".join(self.argv)


class Host:
    def __init__(
        self,
        root: str | os.PathLike = "/",
        env: Mapping[str, str] | None = None,
        euid: int | None = None,
        live: bool | None = None,
    ):
        self.root = os.path.abspath(os.fspath(root))
        # live: the root is the running system, so runtime probes (ioctls,
        # the process table, /dev/kmsg) describe it. Tests may force it.
        self.live = os.path.realpath(self.root) == "/" if live is None else live
        self.env = dict(os.environ if env is None else env)
        self.euid = os.geteuid() if euid is None else euid
        self._cache: dict[tuple, object] = {}
        self._lock = threading.Lock()

    # ---- identity -----------------------------------------------------
    @property
    def is_root(self) -> bool:
        return self.euid == 0

    def display(self, path: str) -> str:
        """How a path inside the root is shown to the admin."""
        if self.root == "/":
            return path
        return self.root + path

    # ---- paths ----------------------------------------------------------
    def path(self, p: str) -> str:
        """The real filesystem path for absolute path ``p`` inside the root."""
        if not p.startswith("/"):
            raise ValueError(f"host paths are absolute: {p!r}")
        if self.root == "/":
            return p
        return self._resolve(p)

    def _resolve(self, p: str) -> str:
        parts = [x for x in p.split("/") if x and x != "."]
        resolved: list[str] = []
        links = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.root, *resolved, part)
            is_link = os.path.islink(candidate)
            if is_link:
                links += 1
                if links > _MAX_LINKS:
                    raise ProbeError(self.display(p), "too many levels of symbolic links")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = [x for x in target.split("/") if x and x != "."] + parts
                continue
            resolved.append(part)
        return os.path.join(self.root, *resolved)

    # ---- reads ----------------------------------------------------------
    def _oserror(self, p: str, exc: OSError):
        if isinstance(exc, PermissionError) and not self.is_root:
            raise NeedsRoot(self.display(p)) from exc
        raise ProbeError(self.display(p), exc.strerror or str(exc)) from exc

    def read_bytes(self, p: str, limit: int | None = None) -> bytes | None:
        """Contents of regular file ``p``, or None when it does not exist. A
        FIFO, device or socket, or a file over 32 MiB, is a ProbeError for the
        check that reads it (checks/files.py)."""
        from .files import read_regular

        try:
            return read_regular(self.path(p), limit, nofollow=self.root != "/")
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENODEV, errno.ENXIO):
                return None
            self._oserror(p, exc)

    def read_text(self, p: str, limit: int | None = None, errors: str = "replace") -> str | None:
        """``p`` decoded as UTF-8. ``errors="replace"`` (checks: a stray byte reads as
        U+FFFD) or ``"surrogateescape"`` (a file kvmprep rewrites: encoding the text the
        same way gives back every byte, so lines a fix does not change stay as they are)."""
        data = self.read_bytes(p, limit)
        if data is None:
            return None
        return data.decode("utf-8", errors=errors)

    def read_first_line(self, p: str) -> str | None:
        text = self.read_text(p, limit=4096)
        if text is None:
            return None
        return text.splitlines()[0].strip() if text.strip() else ""

    def exists(self, p: str) -> bool:
        try:
            return os.path.exists(self.path(p))
        except ProbeError:
            return False

    def is_dir(self, p: str) -> bool:
        try:
            return os.path.isdir(self.path(p))
        except ProbeError:
            return False

    def is_file(self, p: str) -> bool:
        try:
            return os.path.isfile(self.path(p))
        except ProbeError:
            return False

    def stat(self, p: str) -> os.stat_result | None:
        try:
            return os.stat(self.path(p))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self._oserror(p, exc)

    def is_char_device(self, p: str) -> bool:
        st = self.stat(p)
        return st is not None and stat_mod.S_ISCHR(st.st_mode)

    def listdir(self, p: str) -> list[str]:
        """Sorted names in directory ``p``; empty when it does not exist."""
        try:
            return sorted(os.listdir(self.path(p)))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as exc:
            self._oserror(p, exc)
            return []

    def glob(self, directory: str, pattern: str) -> list[str]:
        """Host paths in ``directory`` whose names match ``pattern``."""
        base = directory.rstrip("/")
        return [f"{base}/{n}" for n in self.listdir(directory) if fnmatch.fnmatch(n, pattern)]

    def readlink(self, p: str) -> str | None:
        try:
            parent = self.path(os.path.dirname(p) or "/")
            return os.readlink(os.path.join(parent, os.path.basename(p)))
        except (FileNotFoundError, NotADirectoryError, OSError):
            return None

    # ---- commands -------------------------------------------------------
    def which(self, tool: str) -> str | None:
        """A tool on the machine kvmprep runs on (it is pointed at the root)."""
        path = self.env.get("PATH", os.defpath) + ":/usr/sbin:/sbin"
        for d in path.split(":"):
            exe = os.path.join(d or ".", tool)
            if os.path.isfile(exe) and os.access(exe, os.X_OK):
                return exe
        return None

    def run(
        self,
        argv: Sequence[str],
        timeout: float = 20,
        env: Mapping[str, str] | None = None,
    ) -> CommandResult:
        """Run argv (no shell), capture text; raises ToolMissing / ProbeError."""
        from .spawn import Timeout, run_captured  # not subprocess: see checks/spawn.py

        exe = self.which(argv[0]) if "/" not in argv[0] else argv[0]
        if exe is None:
            raise ToolMissing(argv[0])
        run_env = dict(self.env)
        run_env.update({"LC_ALL": "C", "LANG": "C"})
        if env:
            run_env.update(env)
        try:
            rc, out, err = run_captured([exe, *argv[1:]], run_env, timeout)
        except Timeout:
            raise ProbeError(" ".join(argv), f"timed out after {timeout:g}s") from None
        except OSError as exc:
            raise ProbeError(" ".join(argv), exc.strerror or str(exc)) from exc
        return CommandResult(tuple(argv), rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    # ---- memo -------------------------------------------------------------
    def memo(self, key: tuple, compute):
        """Compute once per host (thread-safe); used for shared facts."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            lock = self._cache.setdefault(("lock",) + key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            value = compute()
            with self._lock:
                self._cache[key] = value
            return value
