"""Run one argv (never a shell string) and stream its output line by line."""

from __future__ import annotations

import os
from dataclasses import dataclass
from collections.abc import Callable


@dataclass
class CommandOutcome:
    argv: list[str]
    returncode: int
    output: str  # stdout and stderr interleaved, as the admin would have seen it


def run_streaming(
    argv: list[str],
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    cwd: str | None = None,
) -> CommandOutcome:
    """Run ``argv`` through sh without a terminal (no progress bars drawn
    into the log) in a new session (no prompts on the admin's terminal)."""
    import sh  # lazily: only apply spawns commands

    full_env = dict(os.environ)
    full_env.update({"LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    if env:
        full_env.update(env)
    try:
        command = sh.Command(argv[0])
    except sh.CommandNotFound:
        message = f"{argv[0]}: command not found"
        if on_line:
            on_line(message)
        return CommandOutcome(list(argv), 127, message + "\n")
    lines: list[str] = []
    devnull = open(os.devnull, "rb")
    proc = command(
        *argv[1:],
        _iter=True,
        _err_to_out=True,
        _tty_out=False,
        _new_session=True,
        _env=full_env,
        _cwd=cwd,
        _ok_code=list(range(256)),
        _decode_errors="replace",
        _in=devnull,  # nothing may wait for an answer from the admin
    )
    try:
        for line in proc:
            text = line.rstrip("\n")
            lines.append(text)
            if on_line:
                on_line(text)
        proc.wait()
    finally:
        devnull.close()
    return CommandOutcome(list(argv), proc.exit_code, "\n".join(lines) + ("\n" if lines else ""))
