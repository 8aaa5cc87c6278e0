"""Where apply keeps its records, inside the root it changes:
/var/lib/kvmprep/journal (one JSON object a line, fsynced before and after
each action), /var/lib/kvmprep/backups/<apply id>/ (originals, byte for
byte, outside every drop-in directory), /var/lib/kvmprep/lock (one apply at
a time) and /var/log/kvmprep/kvmprep.log (mode 0600)."""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import stat

from checks.host import Host

from .confined import Escape, open_dir, open_file, read_fd, real_dir, write_all

STATE_DIR = "/var/lib/kvmprep"
LOG_FILE = "/var/log/kvmprep/kvmprep.log"


_APPLY_ID = re.compile(r"[0-9a-f]{12}")


class LockHeld(Exception):
    pass


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Journal:
    """The state of one root. Every entry is opened inside the root without
    following symlinks (remediations/confined.py); ``dir``, ``path``,
    ``backups`` and ``log_path`` are for messages."""

    MAX_BYTES = 64 << 20

    def __init__(self, host: Host):
        self.host = host
        self.dir = host.path(STATE_DIR)
        self.path = os.path.join(self.dir, "journal")
        self.backups = os.path.join(self.dir, "backups")
        self.log_path = host.path(LOG_FILE)
        self._lock_fd: int | None = None

    # ---- the state directory, confined to the root ---------------------------------
    def _dir_fd(self, create: bool) -> int | None:
        top, rel = real_dir(self.host, STATE_DIR)
        try:
            return open_dir(top, rel, create=create, mode=0o700)
        except FileNotFoundError:
            if create:
                raise
            return None

    def open_entry(self, name: str, flags: int, mode: int = 0o600) -> int:
        """An fd for ``name`` in the state directory (created 0700 if needed)."""
        dfd = self._dir_fd(create=True)
        try:
            return open_file(dfd, name, flags, mode)
        finally:
            os.close(dfd)

    def entry_path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def read_entry(self, name: str, cap: int = MAX_BYTES) -> bytes | None:
        dfd = self._dir_fd(create=False)
        if dfd is None:
            return None
        try:
            fd = open_file(dfd, name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        finally:
            os.close(dfd)
        try:
            return read_fd(fd, cap)
        finally:
            os.close(fd)

    def backup_dir(self, apply_id: str, host_dir: str, create: bool) -> int:
        """The fd of backups/<apply id>/<host_dir> inside the state directory."""
        if not _APPLY_ID.fullmatch(apply_id):
            raise Escape(apply_id, "not an apply id kvmprep makes")
        top, rel = real_dir(self.host, STATE_DIR)
        sub = "/".join(["backups", apply_id, host_dir.strip("/")]).rstrip("/")
        if create:
            dfd = open_dir(top, rel, create=True, mode=0o700)
            os.close(dfd)
        return open_dir(top, f"{rel}/{sub}", create=create, mode=0o700)

    # ---- lock ---------------------------------------------------------------
    def lock(self) -> None:
        fd = self.open_entry("lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockHeld(f"another kvmprep apply or undo is running (pid {holder}); "
                           "wait for it, or watch it with: kvmprep apply --attach") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def running_pid(self) -> int | None:
        """The pid of an apply holding the lock now, if any."""
        try:
            dfd = self._dir_fd(create=False)
        except OSError:
            return None
        if dfd is None:
            return None
        try:
            fd = open_file(dfd, "lock", os.O_RDWR)
        except OSError:
            return None
        finally:
            os.close(dfd)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 64, 0).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    # ---- records --------------------------------------------------------------
    def append(self, record: dict) -> None:
        record = {"time": now(), **record}
        line = json.dumps(record, sort_keys=True) + "\n"
        fd = self.open_entry("journal", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            write_all(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict]:
        """Every record, in order. A line that is not a JSON object of UTF-8
        (cut by a crash, or edited) becomes {"event": "corrupt", ...}: it
        counts for nothing, and the records around it still do."""
        data = self.read_entry("journal")
        if data is None:
            return []
        out = []
        for n, raw in enumerate(data.splitlines(), 1):
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                out.append({"event": "corrupt", "line": n})
                continue
            out.append(record if isinstance(record, dict) else {"event": "corrupt", "line": n})
        return out

    def applies(self) -> list[str]:
        return [r["apply"] for r in self.records() if r.get("event") == "start" and isinstance(r.get("apply"), str)]

    def last_undoable_group(self) -> list[str]:
        """The apply ids of the last apply group not undone yet, in apply order."""
        last = self.last_undoable()
        if last is None:
            return []
        records = self.records()
        group = next((r.get("group", last) for r in records if r.get("apply") == last and r.get("event") == "start"), last)
        done = self._finished_undos(records)
        return [r["apply"] for r in records if r.get("event") == "start" and isinstance(r.get("apply"), str)
                and r.get("group", r["apply"]) == group and r["apply"] not in done
                and _touched(records, r["apply"])]

    def last_undoable(self) -> str | None:
        records = self.records()
        done = self._finished_undos(records)
        for apply_id in reversed([r["apply"] for r in records if r.get("event") == "start"
                                  and isinstance(r.get("apply"), str)]):
            if apply_id in done:
                continue
            if _touched(records, apply_id):
                return apply_id
        return None

    @staticmethod
    def _finished_undos(records: list[dict]) -> set:
        """Applies whose undo finished (every action reverted, or the rest given
        up with --skip-broken). An undo that left actions is not finished: the
        next undo tries those again."""
        return {r.get("apply") for r in records if r.get("event") == "undo-end"
                and (r.get("ok", True) is True or r.get("skipped_broken"))}

    # ---- log ----------------------------------------------------------------
    def log(self, text: str) -> None:
        top, rel = real_dir(self.host, os.path.dirname(LOG_FILE))
        dfd = open_dir(top, rel, create=True, mode=0o700)
        try:
            fd = open_file(dfd, os.path.basename(LOG_FILE), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        finally:
            os.close(dfd)
        try:
            os.fchmod(fd, 0o600)
            write_all(fd, "".join(f"{now()} {line}\n" for line in text.splitlines() or [""]).encode())
        finally:
            os.close(fd)


def _touched(records: list[dict], apply_id: str) -> bool:
    """Whether an apply began changing anything (an action started)."""
    return any(r.get("apply") == apply_id and r.get("event") in ("before", "after") for r in records)


# ---- backups: originals, byte for byte, under backups/<apply id>/<path> --------------

def write_backup(journal: Journal, apply_id: str, host_path: str, real_path: str) -> str:
    """Copy the original at ``real_path`` (never through a symlink) to its
    place under the state directory; return where, for messages. The place is
    computed from the apply id and the path, never read back from the journal."""
    src = os.open(real_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(src)
        data = read_fd(src, Journal.MAX_BYTES)
    finally:
        os.close(src)
    dfd = journal.backup_dir(apply_id, os.path.dirname(host_path), create=True)
    try:
        fd = open_file(dfd, os.path.basename(host_path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, data)
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(fd)
        finally:
            os.close(fd)
    finally:
        os.close(dfd)
    return backup_path(journal, apply_id, host_path)


def backup_path(journal: Journal, apply_id: str, host_path: str) -> str:
    return os.path.join(journal.backups, apply_id, host_path.lstrip("/"))


def read_backup(journal: Journal, apply_id: str, host_path: str) -> tuple[bytes, int]:
    """(bytes, mode) of the original kept for ``host_path`` by apply ``apply_id``."""
    dfd = journal.backup_dir(apply_id, os.path.dirname(host_path), create=False)
    try:
        fd = open_file(dfd, os.path.basename(host_path), os.O_RDONLY)
    finally:
        os.close(dfd)
    try:
        return read_fd(fd, Journal.MAX_BYTES), stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
