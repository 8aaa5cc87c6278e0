"""The installed ``kvmprep`` in a real terminal: tmux at 80x24 with TERM=linux.

Snapshot and pilot tests render in-process and cannot see what a VGA console
would draw, so this drives the console script an admin types, on a throwaway
Debian 12 root (``--root``: the real machine is never touched), and reads the
screen back with ``tmux capture-pane``:

- welcome -> Enter -> detection -> results ("3/8 Results");
- every captured screen is pure ASCII (the console font has nothing else);
- status words are spelled out (FAIL / WARN / PASS);
- keys navigate: Down changes the details pane, f filters to problems, Enter
  reaches "4/8 Fixes", Esc comes back, ? opens the help and Esc closes it;
- q then y exits with status 0 and no traceback.

Also: without a terminal plain ``kvmprep`` prints the check table and says how
to start the wizard; a 60x20 window shows the "resize" message.

Every wait polls capture-pane with a timeout; nothing sleeps a fixed time.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from pkgroots import debian_root
from terminal import non_ascii, quit_cleanly

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def root(tmp_path) -> Path:
    """A Debian-12-like offline root with a real CPU's /proc/cpuinfo (no packages: checks fail)."""
    r = debian_root(tmp_path / "root")
    (r / "proc").mkdir(exist_ok=True)
    (r / "proc/cpuinfo").write_text((FIXTURES / "cpu/x86_64-64cpu-linux6.2/proc/cpuinfo").read_text())
    return r


@pytest.fixture
def kvmprep(installed) -> str:
    """The console script of the non-editable install (tests/installed.py)."""
    return installed.script


def details_pane(screen: str) -> str:
    """The results screen's lower pane: the lines between its ASCII top border and the footer."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if len(line) >= 40 and set(line) == {"-"}:
            return "\n".join(lines[i + 1:-1])
    raise AssertionError(f"no details pane (a line of '-') on the screen:\n{screen}")


def table_part(screen: str) -> str:
    """The results table: the lines above the details pane."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if len(line) >= 40 and set(line) == {"-"}:
            return "\n".join(lines[:i])
    return screen


def _details_or_empty(screen: str) -> str:
    try:
        return details_pane(screen).strip()
    except AssertionError:
        return ""


def _words(text: str) -> set[str]:
    return {w for w in ("PASS", "FAIL", "WARN", "SKIP", "ERROR") if w in text}


def test_console_walk_ascii_keys_and_quit(terminal, root, kvmprep):
    t = terminal([kvmprep, "--root", str(root)])

    welcome = t.wait_text("1/8 Welcome")
    t.wait_text("generic")  # the profile list is there
    assert "Debian GNU/Linux 12" in t.settle(), welcome
    t.keys("Enter")

    # detection runs in a worker and switches to the results by itself
    results = t.wait_for(lambda s: "3/8 Results" in s and "-- Packages --" in s and "Enter Fixes" in s
                         and "FAIL packages.virtualization" in _details_or_empty(s), "the filled results screen")
    assert "NOT READY" in results, results
    assert "FAIL    packages.virtualization" in results, results
    assert "FAIL packages.tools" not in details_pane(results), results

    # Down: the details pane follows the highlighted check
    t.keys("Down")
    moved = t.wait_for(lambda s: "FAIL packages.tools" in _details_or_empty(s),
                       "the details pane to show the next check after Down")
    assert "3/8 Results" in moved and "FAIL packages.virtualization" not in details_pane(moved), moved

    # the status words are spelled out: page down to the end of the table, collecting them
    t.keys("C-End")
    bottom = t.wait_for(lambda s: "PASS" in table_part(s), "PASS rows at the end of the full table")
    bottom = table_part(t.settle())
    t.keys("C-Home")
    view = t.wait_for(lambda s: "-- Packages --" in table_part(s), "the top of the table again")
    words = _words(table_part(view))
    for _ in range(30):
        if table_part(view) == bottom:
            break
        before = table_part(view)
        t.keys("PageDown")
        view = t.wait_for(lambda s: table_part(s) != before, "PageDown to scroll the table")
        words |= _words(table_part(view))
    else:
        raise AssertionError(f"PageDown never reached the end of the table:\n{view}")
    assert {"PASS", "FAIL", "WARN"} <= words, words

    # f: problems only -- the table is filled again and passing checks are gone
    t.keys("f")
    t.wait_for(lambda s: "showing problems only" in s and "-- Packages --" in table_part(s), "the filter")
    t.keys("C-End")
    t.wait_for(lambda s: "-- Packages --" not in table_part(s), "the end of the filtered table")
    filtered = t.settle()
    assert "PASS" not in table_part(filtered), filtered
    assert "SKIP" in table_part(filtered) or "WARN" in table_part(filtered), filtered
    t.keys("f")
    t.wait_text("showing all checks")

    # Enter: the fixes for the failing checks
    t.keys("Enter")
    fixes = t.wait_for(lambda s: "4/8 Fixes" in s and "install-virtualization-packages" in s, "the fixes screen")
    assert "[x]" in t.settle(), fixes

    # Enter: the preview of every command (the whole fix path of the installed package)
    t.keys("Enter")
    preview = t.wait_for(lambda s: "5/8 Preview" in s and "$ " in s, "the preview screen")
    assert "apt-get" in t.settle(), preview
    assert "Could not" not in preview, preview

    # Esc, Esc: back to the results
    t.keys("Escape")
    t.wait_for(lambda s: "4/8 Fixes" in s and "5/8 Preview" not in s, "the fixes screen after Esc")
    t.keys("Escape")
    t.wait_for(lambda s: "3/8 Results" in s and "4/8 Fixes" not in s, "the results screen after Esc")

    # ?: the step's help; Esc closes it
    t.keys("?")
    help_screen = t.wait_for(lambda s: "Keys:" in s and "Problems/all" in s and "Every check of the profile" in s,
                             "the help of the results step")
    assert "+----" in help_screen, help_screen  # an ASCII frame
    t.keys("Escape")
    t.wait_for(lambda s: "Keys:" not in s and "3/8 Results" in s and "Enter Fixes" in s, "the help to close")

    # q asks (default No), y quits
    t.keys("q")
    t.wait_text("Quit kvmprep?")
    t.keys("y")
    assert t.wait_exit() == "EXIT=0"
    after = t.wait_text("KVMPREP-EXITED")
    full = t.capture(history=True)
    assert "Traceback" not in after and "Traceback" not in full, full

    bad = [(non_ascii(f), f) for f in t.frames if non_ascii(f)]
    assert not bad, f"non-ASCII glyphs on a TERM=linux screen: {bad[0][0]}\n{bad[0][1]}"
    assert len(t.frames) > 10


def test_too_small_terminal_says_resize(terminal, root, kvmprep):
    t = terminal([kvmprep, "--root", str(root)], width=60, height=20)
    screen = t.wait_text("needs at least 80x24")
    assert "60x20" in screen, screen
    assert "1/8 Welcome" not in screen, screen
    # growing the window brings the wizard back
    t._tmux("resize-window", "-t", t.name, "-x", "80", "-y", "24")
    t.wait_for(lambda s: "1/8 Welcome" in s and "needs at least" not in s, "the welcome screen after resizing")
    quit_cleanly(t)


def test_without_a_terminal_prints_the_check_table(root, kvmprep):
    env = {**os.environ, "TERM": "linux"}
    proc = subprocess.run([kvmprep, "--root", str(root)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.returncode == 1  # nothing is installed in this root: a required check fails
    assert "Verdict:" in proc.stdout, proc.stdout
    assert "packages.virtualization" in proc.stdout
    assert "\x1b[?1049h" not in proc.stdout + proc.stderr  # no full-screen UI was started
    assert "wizard" in proc.stderr and "terminal" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
