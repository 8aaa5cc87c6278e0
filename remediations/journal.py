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

from checks.host import Host

STATE_DIR = "/var/lib/kvmprep"
LOG_FILE = "/var/log/kvmprep/kvmprep.log"


class LockHeld(Exception):
    pass


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class Journal:
    def __init__(self, host: Host):
        self.host = host
        self.dir = host.path(STATE_DIR)
        self.path = os.path.join(self.dir, "journal")
        self.backups = os.path.join(self.dir, "backups")
        self.log_path = host.path(LOG_FILE)
        self._lock_fd: int | None = None

    # ---- lock ---------------------------------------------------------------
    def lock(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
        path = os.path.join(self.dir, "lock")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
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
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        record = {"time": now(), **record}
        line = json.dumps(record, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def records(self) -> list[dict]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                lines = fh.readlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash: the records before it still count
        return out

    def applies(self) -> list[str]:
        return [r["apply"] for r in self.records() if r.get("event") == "start" and "apply" in r]

    def last_undoable_group(self) -> list[str]:
        """The apply ids of the last apply group not undone yet, in apply order."""
        last = self.last_undoable()
        if last is None:
            return []
        records = self.records()
        group = next((r.get("group", last) for r in records if r.get("apply") == last and r.get("event") == "start"), last)
        undone = {r["apply"] for r in records if r.get("event") == "undo-end"}
        return [r["apply"] for r in records if r.get("event") == "start"
                and r.get("group", r["apply"]) == group and r["apply"] not in undone
                and any(x.get("apply") == r["apply"] and x.get("event") == "after" for x in records)]

    def last_undoable(self) -> str | None:
        records = self.records()
        undone = {r["apply"] for r in records if r.get("event") == "undo-end"}
        for apply_id in reversed([r["apply"] for r in records if r.get("event") == "start"]):
            if apply_id in undone:
                continue
            if any(r.get("apply") == apply_id and r.get("event") == "after" for r in records):
                return apply_id
        return None

    # ---- log ----------------------------------------------------------------
    def log(self, text: str) -> None:
        os.makedirs(os.path.dirname(self.log_path), mode=0o700, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, "".join(f"{now()} {line}\n" for line in text.splitlines() or [""]).encode())
        finally:
            os.close(fd)
