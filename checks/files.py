"""Reading files kvmprep did not write: images under ``--root``, profiles,
plan files. Only regular files, never more than a cap, never blocking.

A FIFO at ``etc/hostname`` would hang a plain ``open().read()``; ``/dev/zero``
given as a profile would be read until memory runs out; a block device's
bytes would end up in a diff. Each is "not a regular file" here instead.
"""

from __future__ import annotations

import os
import stat

MAX_BYTES = 32 << 20  # far above any real configuration file or /proc/cpuinfo


class NotRegular(OSError):
    """The path exists but is a FIFO, device, socket or directory."""

    def __init__(self, path: str, kind: str):
        super().__init__(0, f"not a regular file ({kind})", path)

    def __str__(self) -> str:
        return self.strerror


class TooLarge(OSError):
    def __init__(self, path: str, cap: int):
        super().__init__(0, f"larger than {cap >> 20} MiB", path)

    def __str__(self) -> str:
        return self.strerror


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def read_regular(path: str, limit: int | None = None, cap: int = MAX_BYTES,
                 nofollow: bool = False) -> bytes:
    """The bytes of regular file ``path``: at most ``limit`` of them, and an
    error (TooLarge) when a whole read would pass ``cap``. Opening does not
    block (a FIFO), and with ``nofollow`` a symlink is refused (ELOOP)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(path, _kind(mode))
        want = cap + 1 if limit is None else min(limit, cap)
        chunks, got = [], 0
        while got < want:
            chunk = os.read(fd, min(want - got, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if limit is None and len(data) > cap:
        raise TooLarge(path, cap)
    return data


def load_yaml_untrusted(text: str):
    """YAML from someone else (a profile, a plan file): safe types only, and
    no aliases (``*name``), whose nesting can blow a small file up into
    gigabytes. Raises yaml.YAMLError."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not accepted here", event.start_mark)
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliases)


def yaml_error_text(exc: Exception) -> str:
    """A YAML error in one line: where and what ("line 3: aliases ... here")."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (f"line {mark.line + 1}: " if mark is not None else "") + problem
