"""A real terminal for tests: one program in its own tmux server (a private
socket), read back with ``tmux capture-pane``. Every wait polls with a
timeout; nothing sleeps a fixed time."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

TIMEOUT = 30.0  # seconds for any one state (a loaded CI machine); polls end much sooner


def need_tmux() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("needs tmux installed on this machine (CI: apt-get install tmux)")


class Terminal:
    """One kvmprep in its own tmux server (private socket), read with capture-pane."""

    def __init__(self, tmp_path: Path, argv: list[str], width: int = 80, height: int = 24):
        self.name = f"kvmprep-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.exit_file = tmp_path / f"{self.name}.exit"
        self.frames: list[str] = []  # every screen captured, for the ASCII check
        env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        env["LANG"] = env["LC_ALL"] = "C.UTF-8"  # a UTF-8 locale: a stray glyph would really be drawn
        self.env = env
        cmd = " ".join(shlex.quote(a) for a in argv)
        # the shell keeps the pane open after kvmprep ends, so a traceback would stay visible
        shell = (f"env TERM=linux LANG=C.UTF-8 LC_ALL=C.UTF-8 {cmd}; rc=$?; "
                 f"echo EXIT=$rc > {shlex.quote(str(self.exit_file))}; echo KVMPREP-EXITED rc=$rc; sleep 120")
        self._tmux("new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height), shell)

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-u", "-L", self.name, *args], capture_output=True, text=True,
                              env=self.env, stdin=subprocess.DEVNULL, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args[:1])} failed: {proc.stderr}")
        return proc.stdout

    def capture(self, history: bool = False) -> str:
        extra = ["-S", "-"] if history else []
        screen = self._tmux("capture-pane", "-p", "-t", self.name, *extra)
        self.frames.append(screen)
        return screen

    def capture_styled(self) -> str:
        """The screen with its colours and attributes as escape sequences, every cell
        (``capture-pane -e -N``: trailing blanks too, whatever their colour)."""
        return self._tmux("capture-pane", "-p", "-e", "-N", "-t", self.name)

    def record_output(self, path: Path) -> None:
        """From now on, append every byte the program writes to its terminal to ``path``
        (``tmux pipe-pane``: the pty's output as a serial line would carry it)."""
        path.touch()
        self._tmux("pipe-pane", "-o", "-t", self.name, f"cat >> {shlex.quote(str(path))}")

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.name, "-x", str(width), "-y", str(height))

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, condition, what: str, timeout: float = TIMEOUT) -> str:
        """Poll the screen until ``condition(screen)`` holds; return that screen."""
        end = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < end:
            screen = self.capture()
            if condition(screen):
                return screen
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; the screen is:\n{screen}\n{self.exit_text()}")

    def wait_text(self, text: str, timeout: float = TIMEOUT) -> str:
        return self.wait_for(lambda s: text in s, repr(text), timeout)

    def settle(self, timeout: float = TIMEOUT) -> str:
        """Wait until two captures 0.4 s apart are the same (the app is idle again)."""
        end = time.monotonic() + timeout
        last = self.capture()
        while time.monotonic() < end:
            time.sleep(0.4)  # TERM=linux runs at 4 frames per second
            screen = self.capture()
            if screen == last:
                return screen
            last = screen
        return last

    def exit_text(self) -> str:
        return self.exit_file.read_text().strip() if self.exit_file.exists() else "(kvmprep still running)"

    def wait_exit(self, timeout: float = TIMEOUT) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.exit_file.exists() and self.exit_file.read_text().strip():
                return self.exit_file.read_text().strip()
            time.sleep(0.05)
        raise AssertionError(f"kvmprep did not exit; the screen is:\n{self.capture()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True, env=self.env,
                       stdin=subprocess.DEVNULL, timeout=30)
        _remove_socket(self.name)


def _remove_socket(name: str) -> None:
    """kill-server leaves the socket file of a ``-L`` server behind."""
    tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
    try:
        os.unlink(os.path.join(tmpdir, f"tmux-{os.getuid()}", name))
    except OSError:
        pass


def quit_cleanly(t: Terminal) -> None:
    """q, y: kvmprep exits 0, no traceback anywhere, and no screen it drew had a
    glyph the console font lacks."""
    t.keys("q")
    t.wait_text("Quit kvmprep?")
    t.keys("y")
    assert t.wait_exit() == "EXIT=0"
    assert "Traceback" not in t.capture(history=True)
    bad = [(non_ascii(f), f) for f in t.frames if non_ascii(f)]
    assert not bad, f"non-ASCII glyphs on a TERM=linux screen: {bad[0][0]}\n{bad[0][1]}"


def non_ascii(screen: str) -> list[str]:
    return sorted({f"{c!r} U+{ord(c):04X}" for c in screen if ord(c) > 127})


