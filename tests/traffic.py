"""Bytes the wizard writes to its terminal per cursor move on its list screens,
counted in a real terminal: the program runs in tmux (tests/terminal.py) and
``tmux pipe-pane`` appends every byte it writes to a file. Used by
tests/test_wizard_traffic.py (asserts) and tests/benchmark_wizard.py (prints).

A move is measured from an idle app (no byte for ``QUIET`` seconds) to an idle
app again, after the screen shows the move: the highlight on the next row and,
for a row with details, the details pane showing that row.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from terminal import TIMEOUT, Terminal

QUIET = 0.5  # seconds without a byte: idle again (TERM=linux draws at most 10 frames a second)
SGR = re.compile(r"\x1b\[[0-9;]*m")
HIGHLIGHT = re.compile(r"\x1b\[(?:\d+;)*47(?:;\d+)*m")  # the cursor row: white background (ANSI theme)
BAUD = 9600  # a serial console: 10 bits a byte


class ByteCount:
    """The size of a file that grows by every byte sent to a terminal."""

    def __init__(self, path: Path):
        self.path = path

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def quiet(self, quiet: float = QUIET, timeout: float = TIMEOUT) -> int:
        """Wait until no byte came for ``quiet`` seconds; the byte count then."""
        end = time.monotonic() + timeout
        last, since = self.size(), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.05)
            now = self.size()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return now
        raise AssertionError(f"the program never went quiet for {quiet} s (it keeps writing)")


class Recorder(ByteCount):
    """The byte count of everything the program in ``t`` writes from now on."""

    def __init__(self, t: Terminal, path: Path):
        super().__init__(path)
        t.record_output(path)


def plain(styled: str) -> str:
    return SGR.sub("", styled)


def cells(styled: str, width: int = 80) -> list[list[tuple]]:
    """The screen as cells (character, colours and attributes), every line ``width``
    cells: what the terminal shows, whatever escape sequences tmux prints for it
    (and whether it counts a blank cell as written or as never touched)."""
    screen = []
    state: dict = {}  # tmux carries the attributes from one line to the next
    for line in styled.split("\n"):
        row: list[tuple] = []
        for m in re.finditer(r"\x1b\[([0-9;]*)m|([^\x1b])", line):
            if m.group(2) is not None:
                row.append((m.group(2), tuple(sorted(state.items(), key=str))))
                continue
            codes = [int(c) if c else 0 for c in m.group(1).split(";")]
            while codes:
                c = codes.pop(0)
                if c == 0:
                    state.clear()
                elif c in (38, 48):  # 38;5;N or 38;2;R;G;B
                    n = 1 if codes[:1] == [5] else 3
                    state["fg" if c == 38 else "bg"] = tuple(codes[:n + 1])
                    del codes[:n + 1]
                elif c == 39 or c == 49:
                    state.pop("fg" if c == 39 else "bg", None)
                elif 30 <= c <= 37 or 90 <= c <= 97:
                    state["fg"] = c
                elif 40 <= c <= 47 or 100 <= c <= 107:
                    state["bg"] = c
                elif 21 <= c <= 29:  # attribute off
                    state.pop({22: 1, 23: 3, 24: 4, 25: 5, 27: 7, 28: 8, 29: 9}.get(c, c), None)
                    if c == 22:
                        state.pop(2, None)
                else:
                    state[c] = True
        row += [(" ", ())] * (width - len(row))
        screen.append(row)
    while screen and screen[-1] == [(" ", ())] * width:
        screen.pop()
    return screen


def differences(a: str, b: str) -> str:
    """The lines whose cells differ, both ways (for an assertion message)."""
    ca, cb = cells(a), cells(b)
    out = []
    for i in range(max(len(ca), len(cb))):
        if (ca[i:i + 1] or [None]) != (cb[i:i + 1] or [None]):
            la, lb = (a.split("\n") + [""] * len(ca))[i], (b.split("\n") + [""] * len(cb))[i]
            out.append(f"line {i + 1}:\n  {la!r}\n  {lb!r}")
    return "\n".join(out)


def _border_index(lines: list[str]) -> int:
    """The details pane's ASCII top border: a line of '-' across the screen."""
    for i, line in enumerate(lines):
        if len(line) >= 40 and set(line) == {"-"}:
            return i
    raise AssertionError("no details pane (a line of '-') on the screen:\n" + "\n".join(lines))


def details(screen: str) -> str:
    """The lower pane: the lines between its border and the footer."""
    lines = screen.splitlines()
    return "\n".join(line.strip() for line in lines[_border_index(lines) + 1:-1]).strip("\n")


def list_rows(screen: str) -> list[str]:
    """The rows of the list on the screen (a DataTable: lines after its column
    headers that start with the focus edge '|' and show something)."""
    lines = screen.splitlines()[:_border_index(screen.splitlines())]
    for i, line in enumerate(lines):
        if line.startswith("|") and ("Status" in line or "Use " in line):  # the column headers
            return [x.rstrip() for x in lines[i + 1:] if x.startswith("|") and x[1:].strip()]
    raise AssertionError("no list with column headers on the screen:\n" + screen)


def cursor_row(styled: str) -> Optional[str]:
    """The highlighted row of the list (its plain text; the lines of a wrapped
    option joined with newlines), or None."""
    lines = [plain(x).rstrip() for x in styled.splitlines()[:-1] if HIGHLIGHT.search(x)]  # not the footer
    return "\n".join(lines) if lines else None


def profile_rows(screen: str) -> list[str]:
    """The welcome screen's profiles (an OptionList: '| name  description', wrapped
    descriptions continue on lines of their own)."""
    lines = screen.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("Profile ("):
            rows: list[str] = []
            for x in lines[i + 1:-1]:
                if not x.startswith("|") or not x[1:].strip():
                    break
                if x[1:2] == " " and x[2:3] != " ":
                    rows.append(x.rstrip())
                elif rows:
                    rows[-1] += "\n" + x.rstrip()
            return rows
    raise AssertionError("no profile list on the screen:\n" + screen)


@dataclass
class Move:
    key: str
    nbytes: int
    row_before: str
    row_after: str
    details_before: str
    details_after: str
    item: Optional[str]  # what the row names, if it has details (a check, a fix), else None

    @property
    def details_changed(self) -> bool:
        return self.details_before != self.details_after


def bounce(n_rows: int, start: int, count: int) -> list[str]:
    """``count`` Up/Down keys that stay within rows 0..n_rows-1 from ``start``:
    down to the last row, up to the first, and so on (no move scrolls the list)."""
    keys, pos, step = [], start, 1
    if n_rows < 2:
        raise AssertionError(f"a list of {n_rows} row(s) has no cursor moves to measure")
    while len(keys) < count:
        if not 0 <= pos + step < n_rows:
            step = -step
        pos += step
        keys.append("Down" if step > 0 else "Up")
    return keys


@dataclass
class ListScreen:
    """How to read one list screen."""

    name: str
    rows: Callable[[str], list[str]]  # the rows of the list on the screen (plain text)
    item_of: Callable[[str], Optional[str]] = lambda row: None  # what a row's details show, or None
    shows: Callable[[str, str], bool] = lambda item, pane: True  # do the details show the item?
    details: Callable[[str], str] = lambda screen: ""  # the details pane


def walk(t: Terminal, rec: Recorder, keys: list[str], screen_kind: ListScreen) -> list[Move]:
    """Press each key; wait until the highlight moved to the neighbouring row and the
    details show that row's item, then until the app is quiet; count the bytes."""
    moves = []
    start = rec.quiet()
    for key in keys:
        styled = t.capture_styled()
        screen = plain(styled)
        rows, row_before = screen_kind.rows(screen), cursor_row(styled)
        details_before = screen_kind.details(screen)
        assert row_before in rows, f"the highlighted row {row_before!r} is not in the list {rows}:\n{screen}"
        target = rows.index(row_before) + (1 if key == "Down" else -1)
        assert 0 <= target < len(rows), f"{key} from {row_before!r} would leave the page:\n{screen}"
        expected = rows[target]
        item = screen_kind.item_of(expected)
        t.keys(key)
        end_wait = time.monotonic() + TIMEOUT
        while True:
            styled = t.capture_styled()
            screen = plain(styled)
            now = cursor_row(styled)
            if now == expected and (item is None or screen_kind.shows(item, screen_kind.details(screen))):
                break
            if time.monotonic() > end_wait:
                raise AssertionError(f"after {key} the highlight is on {now!r}, not {expected!r}"
                                     f"{'' if item is None else f', or the details do not show {item}'}:\n"
                                     f"{screen}")
            time.sleep(0.05)
        end = rec.quiet()
        final = plain(t.capture_styled())
        assert screen_kind.rows(final) == rows, f"the list scrolled or changed on {key}:\n{final}"
        moves.append(Move(key, end - start, row_before, expected, details_before, screen_kind.details(final), item))
        start = end
    return moves


def walk_page(t: Terminal, rec: Recorder, screen_kind: ListScreen, count: int) -> list[Move]:
    """``count`` moves up and down the list's first page, from the highlighted row."""
    styled = t.capture_styled()
    rows = screen_kind.rows(plain(styled))
    return walk(t, rec, bounce(len(rows), rows.index(cursor_row(styled)), count), screen_kind)


def press(t: Terminal, rec: Recorder, key: str) -> int:
    """Bytes written for one key that changes the screen (any change), idle to idle."""
    start = rec.quiet()
    before = t.capture_styled()
    t.keys(key)
    end_wait = time.monotonic() + TIMEOUT
    while t.capture_styled() == before:
        if time.monotonic() > end_wait:
            raise AssertionError(f"{key} changed nothing on the screen:\n{plain(before)}")
        time.sleep(0.05)
    return rec.quiet() - start


def summary(moves: list[Move]) -> str:
    """One line per move, then the median and the maximum."""
    sizes = [m.nbytes for m in moves]
    lines = []
    for m in moves:
        label = m.item or " ".join(m.row_after.splitlines()[0].strip("| ").split())[:34]
        change = "" if not (m.details_before or m.details_after) else (
            "details changed" if m.details_changed else "details kept")
        lines.append(f"  {m.key:<4} {m.nbytes:5d} B  {label:<34} {change}".rstrip())
    lines.append(f"  median {statistics.median(sizes):.0f} B, max {max(sizes)} B per move "
                 f"({statistics.median(sizes) * 10 / BAUD:.2f} s / {max(sizes) * 10 / BAUD:.2f} s at {BAUD} baud)")
    return "\n".join(lines)


# --------------------------------------------------------------- the screens

STATUS_ROW = re.compile(r"^\|?\s*(PASS|WARN|FAIL|SKIP|ERROR)\s+(\S+)")
FIX_ROW = re.compile(r"^\|?\s*\[.\]\s+(\S+)")


def check_of(row: str) -> Optional[str]:
    """'FAIL packages.tools' for a check's row of the results; None for a category."""
    m = STATUS_ROW.match(row)
    return f"{m.group(1)} {m.group(2)}" if m else None


def fix_of(row: str) -> Optional[str]:
    m = FIX_ROW.match(row)
    return m.group(1) if m else None


WELCOME = ListScreen("welcome", profile_rows)
RESULTS = ListScreen("results", list_rows, check_of,
                     lambda item, pane: pane.startswith(item + " ") or pane.startswith(item + "\n"), details)
FIXES = ListScreen("fixes", list_rows, fix_of, lambda item, pane: pane.startswith(item + ":"), details)


def at_welcome(t: Terminal, timeout: float = TIMEOUT) -> str:
    return t.wait_for(lambda s: "1/8 Welcome" in s and "Enter Detect" in s
                      and cursor_row(t.capture_styled()) is not None, "the welcome screen", timeout)


def to_results(t: Terminal) -> str:
    """From the welcome screen: Enter (the highlighted profile), the filled results."""
    at_welcome(t)
    t.keys("Enter")
    return t.wait_for(lambda s: "3/8 Results" in s and "Enter Fixes" in s and "-- " in s
                      and "working out the plan" not in s  # the plan's answer is in the details pane
                      and check_of(cursor_row(t.capture_styled()) or "") is not None, "the filled results")


def to_fixes(t: Terminal) -> str:
    """From the results: Enter, the fixes worked out."""
    t.keys("Enter")
    return t.wait_for(lambda s: "4/8 Fixes" in s and "[x]" in s
                      and fix_of(cursor_row(t.capture_styled()) or "") is not None, "the filled fixes")
