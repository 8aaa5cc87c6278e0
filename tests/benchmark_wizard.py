#!/usr/bin/env python3
"""On-demand benchmark: time from launching the wizard to a fully populated results screen.

Two measurements, several rounds each (alternating), medians printed:

  headless   a fresh Python process that builds the App, runs it with
             ``App.run_test(size=(80, 24))``, presses Enter on the welcome
             screen as soon as it is up and waits until the ResultsScreen is
             mounted with its table filled; timed from process start.
  terminal   the installed ``kvmprep`` console script in tmux at 80x24 with
             TERM=linux; capture-pane is polled from the moment the session
             is started, Enter is sent as soon as the welcome screen shows,
             and the clock stops when "3/8 Results" shows with its rows.

And the terminal traffic of the console admin's walk (``--what traffic``):

  bytes per  the installed ``kvmprep`` in tmux at 80x24 with TERM=linux, every
  cursor     byte it writes recorded with ``tmux pipe-pane`` (tests/traffic.py):
  move       10 Up/Down moves on the first page of the welcome, results and
             fixes lists, and 5 Downs past the end of the results' first page
             (each scrolls the table: all of it is drawn again); median and
             maximum bytes per move, and what that takes at 9600 baud.

The wizard runs on a throwaway Debian 12 root (``--root``) unless
``--root DIR`` is given (``--root /`` measures this host; only detection runs,
nothing is changed). Not a test: run it by hand after installing the project:

    /tmp/venv/bin/python tests/benchmark_wizard.py [--rounds 7] [--root DIR] [--what time|traffic]

The targets: under one second to the filled results; at most 1 KB per cursor
move on a list (tests/test_wizard_traffic.py asserts it for the first pages).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
FIXTURES = TOP / "tests" / "fixtures"

# The child of the headless measurement: prints WELCOME and RESULTS as they happen.
HEADLESS = r"""
import asyncio, sys
sys.path.insert(0, {top!r})
from app.tui import build_app
from app.wizard_state import WizardOptions

async def main():
    app = build_app(WizardOptions(root={root!r}, profile=None, ascii=False, slow=False, euid=None, env=None))
    from screens.results import ResultsScreen
    from screens.welcome import WelcomeScreen
    from textual.widgets import DataTable
    async with app.run_test(size=(80, 24)) as pilot:
        while not isinstance(app.screen, WelcomeScreen):
            await asyncio.sleep(0.002)
        print("WELCOME", flush=True)
        await pilot.press("enter")
        while True:
            screen = app.screen
            if isinstance(screen, ResultsScreen) and screen.is_mounted:
                table = screen.query_one(DataTable)
                if table.row_count and screen.row_checks:
                    break
            await asyncio.sleep(0.002)
        await pilot.pause()  # one refresh: the filled table is drawn
        print("RESULTS", table.row_count, flush=True)
    print("DONE", flush=True)

asyncio.run(main())
"""


def make_root(where: Path) -> Path:
    sys.path.insert(0, str(TOP / "tests"))
    from pkgroots import debian_root

    root = debian_root(where / "root")
    (root / "proc").mkdir(exist_ok=True)
    (root / "proc/cpuinfo").write_text((FIXTURES / "cpu/x86_64-64cpu-linux6.2/proc/cpuinfo").read_text())
    return root


def headless_once(root: str) -> tuple[float, float]:
    """(seconds to the welcome screen, seconds to the filled results), from process start."""
    code = HEADLESS.format(top=str(TOP), root=root)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, cwd=TOP)
    welcome = results = None
    for line in proc.stdout:
        if line.startswith("WELCOME"):
            welcome = time.perf_counter() - t0
        elif line.startswith("RESULTS"):
            results = time.perf_counter() - t0
    err = proc.stderr.read()
    proc.wait()
    if proc.returncode != 0 or welcome is None or results is None:
        raise SystemExit(f"headless run failed (status {proc.returncode}):\n{err}")
    return welcome, results


def terminal_once(kvmprep: str, root: str) -> tuple[float, float]:
    """(seconds to the welcome screen, seconds to the filled results), from tmux new-session."""
    name = f"kvmprep-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
    tmux = ["tmux", "-u", "-L", name]

    def capture() -> str:
        return subprocess.run(tmux + ["capture-pane", "-p", "-t", name], capture_output=True, text=True,
                              env=env).stdout

    cmd = f"env TERM=linux {shlex.quote(kvmprep)} --root {shlex.quote(root)}; sleep 60"
    try:
        t0 = time.perf_counter()
        subprocess.run(tmux + ["new-session", "-d", "-s", name, "-x", "80", "-y", "24", cmd], env=env,
                       check=True, stdin=subprocess.DEVNULL)
        welcome = results = None
        deadline = t0 + 60
        while time.perf_counter() < deadline:
            screen = capture()
            now = time.perf_counter() - t0
            if welcome is None and "1/8 Welcome" in screen and "Enter Detect" in screen:
                welcome = now
                subprocess.run(tmux + ["send-keys", "-t", name, "Enter"], env=env)
            elif welcome is not None and "3/8 Results" in screen and "-- " in screen and "Enter Fixes" in screen:
                results = now
                break
            time.sleep(0.005)
        if results is None:
            raise SystemExit(f"the results screen never showed; the screen is:\n{capture()}")
        return welcome, results
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True, env=env)
        try:  # kill-server leaves the socket file behind
            os.unlink(os.path.join(os.environ.get("TMUX_TMPDIR") or "/tmp", f"tmux-{os.getuid()}", name))
        except OSError:
            pass


def traffic(kvmprep: str, root: str) -> list[str]:
    """Bytes per cursor move on the list screens (one walk: the bytes do not vary)."""
    sys.path.insert(0, str(TOP / "tests"))
    import traffic as tr
    from terminal import Terminal

    def line(what: str, sizes: list[int]) -> str:
        med, top = statistics.median(sizes), max(sizes)
        return (f"{what:<44} median {med:5.0f} B  max {top:5d} B  "
                f"({med * 10 / tr.BAUD:.2f} s / {top * 10 / tr.BAUD:.2f} s at {tr.BAUD} baud)")

    with tempfile.TemporaryDirectory(prefix="kvmprep-traffic-") as tmp:
        t = Terminal(Path(tmp), [kvmprep, "--root", root])
        try:
            rec = tr.Recorder(t, Path(tmp) / "terminal-output")
            tr.at_welcome(t)
            welcome = tr.walk_page(t, rec, tr.WELCOME, 10)
            for m in reversed(welcome):  # back to the profile it started on
                tr.press(t, rec, "Up" if m.key == "Down" else "Down")
            tr.to_results(t)
            results = tr.walk_page(t, rec, tr.RESULTS, 10)
            while tr.cursor_row(t.capture_styled()) != tr.list_rows(tr.plain(t.capture_styled()))[-1]:
                tr.press(t, rec, "Down")  # to the last row of the page
            scrolling = [tr.press(t, rec, "Down") for _ in range(5)]
            for _ in scrolling:
                tr.press(t, rec, "Up")
            tr.to_fixes(t)
            fixes = tr.walk_page(t, rec, tr.FIXES, 10)
        finally:
            t.close()
    on_checks = [m.nbytes for m in results if m.details_changed]
    return [line("welcome: profiles", [m.nbytes for m in welcome]),
            line("results: first page", [m.nbytes for m in results]),
            line("results: first page, onto a check", on_checks),
            line("results: Down past the page (scrolls)", scrolling),
            line("fixes: first page", [m.nbytes for m in fixes])]


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:6.0f} ms  (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--root", default=None, help="the root to detect (default: a throwaway Debian 12 root)")
    ap.add_argument("--what", choices=("all", "time", "traffic"), default="all",
                    help="time to the results, bytes per cursor move, or both (default)")
    args = ap.parse_args()

    kvmprep = os.path.join(os.path.dirname(sys.executable), "kvmprep")
    have_tmux = shutil.which("tmux") is not None and os.path.exists(kvmprep)
    if not have_tmux:
        print("skipping the terminal measurement: needs tmux and the installed kvmprep script", file=sys.stderr)

    timing = args.what in ("all", "time")
    with tempfile.TemporaryDirectory(prefix="kvmprep-bench-") as tmp:
        root = args.root or str(make_root(Path(tmp)))
        hl, tm = [], []
        if timing:
            headless_once(root)  # warm: page cache, .pyc files
            if have_tmux:
                terminal_once(kvmprep, root)
            for _ in range(args.rounds):
                hl.append(headless_once(root))
                if have_tmux:
                    tm.append(terminal_once(kvmprep, root))
        moves = traffic(kvmprep, root) if args.what in ("all", "traffic") and have_tmux else []

    rounds = f"; rounds: {args.rounds} (alternating)" if timing else ""
    print(f"root: {args.root or 'throwaway Debian 12 root'}{rounds}")
    if timing:
        print(f"headless (run_test 80x24), launch -> welcome:          {ms([w for w, _ in hl])}")
        print(f"headless (run_test 80x24), launch -> filled results:   {ms([r for _, r in hl])}")
        print(f"headless (run_test 80x24), Enter -> filled results:    {ms([r - w for w, r in hl])}")
    if tm:
        print(f"terminal (tmux TERM=linux), launch -> welcome:         {ms([w for w, _ in tm])}")
        print(f"terminal (tmux TERM=linux), launch -> filled results:  {ms([r for _, r in tm])}")
        print(f"terminal (tmux TERM=linux), Enter -> filled results:   {ms([r - w for w, r in tm])}")
    if timing:
        print("target: under 1000 ms to the filled results")
    if moves:
        print("bytes per cursor move (tmux 80x24, TERM=linux, pipe-pane), 10 moves each:")
        for line in moves:
            print("  " + line)
        print("target: at most 1024 B per cursor move on a list")
    return 0


if __name__ == "__main__":
    sys.exit(main())
