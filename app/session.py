"""Is this kvmprep running in an SSH session? Also under sudo.

kvmprep asks ``SSH_CONNECTION`` whether an apply must detach from the login
session (so that a dropped connection does not kill apt halfway), whether the
wizard gives its SSH advice, and whether starting nftables could cut the
admin off. But ``sudo kvmprep``, the way the README says to run it, resets
the environment: SSH_CONNECTION is gone, the apply ran inside the SSH session
and died with it (found in the lab, issue 9: dpkg left packages unconfigured
and the journal an interrupted apply). The processes kvmprep was started from
still have it: sudo itself keeps the environment it was started with.
"""

from __future__ import annotations

import os

MAX_ANCESTORS = 32


def ssh_connection_of_ancestors(pid: int | None = None) -> str | None:
    """SSH_CONNECTION from the nearest ancestor process that has it (sudo,
    su, the login shell), or None. Only processes this user may read (root:
    all); stops at PID 1 (a systemd unit, cron: not an SSH session)."""
    pid = os.getppid() if pid is None else pid
    for _ in range(MAX_ANCESTORS):
        if pid <= 1:
            return None
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                for item in fh.read().split(b"\0"):
                    if item.startswith(b"SSH_CONNECTION="):
                        value = item.split(b"=", 1)[1].decode("ascii", "replace").strip()
                        if value:
                            return value
            with open(f"/proc/{pid}/stat", "rb") as fh:
                pid = int(fh.read().rsplit(b")", 1)[1].split()[1])  # the ppid field, after "(comm)"
        except (OSError, ValueError, IndexError):
            return None
    return None


def inherit_ssh_connection() -> None:
    """Put the login session's SSH_CONNECTION back into the environment when
    sudo dropped it, so that every decision that asks it (and the apply
    kvmprep starts again, which must plan the same) sees the truth.

    Only under sudo (SUDO_USER set): a process that removed SSH_CONNECTION
    itself (the tests' "not over SSH" runs) means it."""
    if os.environ.get("SSH_CONNECTION") or not os.environ.get("SUDO_USER"):
        return
    found = ssh_connection_of_ancestors()
    if found:
        os.environ["SSH_CONNECTION"] = found
