"""Run a command and capture its output, without the subprocess module.

The check path spawns a few short tools (systemctl, rpm). Importing
subprocess costs about 4 ms of a ~50 ms check run (it pulls in selectors,
signal handling and locale code it then does not need); os.posix_spawn and
select.poll do the same job here. The child gets stdin from /dev/null, its
own stdout and stderr pipes, and SIGPIPE/SIGXFSZ at their defaults (Python
ignores SIGPIPE, and a child would inherit that, as subprocess also undoes).
"""

from __future__ import annotations

import os
import select
import time

try:  # the signal numbers; the signal module builds enums at import (~0.6 ms)
    from _signal import SIGKILL, SIGPIPE, SIGXFSZ
except ImportError:  # another Python implementation
    from signal import SIGKILL, SIGPIPE, SIGXFSZ
from collections.abc import Mapping, Sequence


class Timeout(Exception):
    """The command ran longer than allowed; it was killed."""


def run_captured(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of ``argv`` (argv[0] a path). A status
    below 0 is the signal that ended it, as subprocess reports it. Raises
    OSError when it cannot be started, Timeout after ``timeout`` seconds."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(
            argv[0], list(argv), dict(env),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setsigdef=(SIGPIPE, SIGXFSZ),
        )
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    try:
        out, err = _read_both(out_r, err_r, time.monotonic() + timeout)
    except Timeout:
        os.kill(pid, SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(out_r)
        os.close(err_r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out, err


def _read_both(out_fd: int, err_fd: int, deadline: float) -> tuple[bytes, bytes]:
    """Both pipes read to their end, as the child writes them (neither can fill up and block it)."""
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    open_fds = set(chunks)
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        for fd, _ in poller.poll(left * 1000):
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                open_fds.discard(fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])

