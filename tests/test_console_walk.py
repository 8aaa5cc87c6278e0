"""The console admin's first walk, end to end, as issue 11 tells it.

The installed ``kvmprep`` in tmux at 80x24 with TERM=linux (tests/terminal.py)
on a throwaway Debian 12 root whose apt source lacks chrony, so that one action
of the apply fails: welcome, results, fixes, preview, confirm, apply (one
failing action), undo, summary, save the report, quit. Every byte the program
writes to its terminal is recorded (tests/traffic.py), and each cursor move on
the three list screens must send at most 1 KB.

What the walk must not show:
- keys for actions that cannot happen (Summary and Undo while the apply runs;
  Undo after the undo);
- a screen stating the host as it was (the summary after an undo: STOPPED,
  DONE, "waits for a reboot", checks as they were after the apply);
- lines that wrap to column 0 (preview, details, apply log);
- a report saved to wherever the wizard was started from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from pkgroots import deb_repo  # noqa: F401  (session fixture)
from terminal import quit_cleanly
from traffic import (
    FIXES, RESULTS, WELCOME, Recorder, at_welcome, cursor_row, details, fix_of, summary, to_fixes, to_results,
    walk_page,
)
from wizard_roots import debian_wizard_root, site_profile

BUDGET = 1024  # bytes per cursor move
MOVES = 6

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="kvmprep apply refuses to run without root")


@pytest.fixture
def walk_root(tmp_path, deb_repo) -> Path:
    # the stub repository lacks chrony: enable-time-sync's install fails
    return debian_wizard_root(tmp_path / "root", deb_repo, without=("chrony",))


def footer(screen: str) -> str:
    return screen.rstrip("\n").splitlines()[-1]


def body(screen: str) -> list[str]:
    """The lines between the header and the footer."""
    return screen.rstrip("\n").splitlines()[1:-1]


def assert_hanging(lines: list[str], where: str, screen: str) -> None:
    """A wrapped line goes on indented: no line of text starts at column 0
    right after a line that was cut at the right edge."""
    for prev, line in zip(lines, lines[1:]):
        if len(prev.rstrip()) >= 70 and set(prev) != {"-"} and line.strip() and not line.startswith((" ", "|")):
            raise AssertionError(f"{where}: a line continues at column 0:\n  {prev}\n  {line}\n{screen}")


LABEL = re.compile(r"^ (?:Found|Why|Required by|Fix|What to do|note|kvmprep can(?:not)? fix it(?: here)?): |^ - ")


def assert_labels_hang(screen: str, where: str) -> None:
    """In a details pane, a "Label: text" or "- item" line that wraps goes on
    under its text, not under the label."""
    lines = screen.splitlines()
    top = next(i for i, x in enumerate(lines) if len(x) >= 40 and set(x) == {"-"})
    pane = lines[top + 1:-1]
    for prev, line in zip(pane, pane[1:]):
        m = LABEL.match(prev)
        if m and len(prev.rstrip()) >= 70 and line.strip() and not LABEL.match(line):
            indent = len(line) - len(line.lstrip())
            assert indent >= len(m.group(0)), f"{where}: {line!r} continues {prev!r} under its label\n{screen}"


def test_console_walk_apply_fails_undo_summary(terminal, walk_root, installed, tmp_path, request):
    selinux_before = (walk_root / "etc/selinux/config").read_bytes()
    profile = site_profile(tmp_path)
    # where the summary saves (never this machine's /var/log); short, so the field shows it all
    out = Path(tempfile.mkdtemp(prefix="kvmprep-walk-"))
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    t = terminal(["env", f"KVMPREP_OUTPUT_DIR={out}", installed.script, "--root", str(walk_root),
                  "--profile", profile])
    rec = Recorder(t, tmp_path / "terminal-output")

    # 1. welcome: the profiles list, a user profile without description says where it is from
    welcome = at_welcome(t)
    joined = re.sub(r"\s*\n\|\s+", "", welcome)  # the row's wrapped lines, joined
    assert "| site             (from" in welcome and f"(from{profile})" in joined, welcome
    moves = {"welcome": walk_page(t, rec, WELCOME, MOVES)}

    # 2. results (the highlighted profile is still site: the walk ends where it began)
    while "site" not in (cursor_row(t.capture_styled()) or ""):
        t.keys("Up")
        time.sleep(0.2)
    results = to_results(t)
    assert "NOT READY" in results
    seen_labels = 0
    for _ in range(MOVES):  # the details of several checks
        screen = t.capture()
        assert_labels_hang(screen, "results details")
        seen_labels += len(re.findall(r"^ (?:Found|Why): ", screen, re.M))
        t.keys("Down")
        time.sleep(0.3)
    assert seen_labels >= 2  # not vacuous: labelled lines were on the screen
    t.keys("Home")
    moves["results"] = walk_page(t, rec, RESULTS, MOVES)
    pane = details(t.capture())
    offered = re.findall(r"kvmprep can fix it: (\S+)", pane.replace("\n", " "))

    # 3. fixes: the offers of the results are here; drop install-tools
    fixes = to_fixes(t)
    for rid in offered:
        assert rid.rstrip(",") in fixes, (rid, fixes)
    for _ in range(10):
        if fix_of(cursor_row(t.capture_styled()) or "") == "install-tools":
            break
        t.keys("Down")
        time.sleep(0.3)
    t.keys("Space")
    t.wait_for(lambda s: re.search(r"\[ \]\s+install-tools", s), "install-tools dropped")
    assert_labels_hang(t.capture(), "fixes details")
    moves["fixes"] = walk_page(t, rec, FIXES, MOVES)

    # 4. preview: wrapped commands keep their indentation
    t.keys("Enter")
    preview = t.wait_for(lambda s: "5/8 Preview" in s and "$ " in s, "the preview")
    assert "4 actions: 1 file, " in preview, preview
    lines = body(preview)[1:]
    assert_hanging(lines, "preview", preview)
    for line in lines:
        assert line.startswith(("[", " ")) or not line.strip(), f"preview line at column 0: {line!r}\n{preview}"

    # 5. confirm, default No; y applies
    t.keys("Enter")
    t.wait_text("Apply 4 actions?")
    assert "They change 1 file and run" in t.capture()
    t.keys("y")

    # 6. the apply: no Summary/Undo keys while it runs; one action fails
    running = []
    end = time.monotonic() + 120
    while time.monotonic() < end:
        screen = t.capture()
        if "7/8 Apply" in screen and "FAILED:" in body(screen)[0]:
            break
        if "7/8 Apply" in screen and "Applying..." in screen:
            running.append(screen)
            assert "Summary" not in footer(screen) and "Undo" not in footer(screen), screen
        time.sleep(0.05)
    else:
        raise AssertionError("the apply did not fail as planned:\n" + t.capture())
    assert running, "never saw the apply running"
    failed = t.settle()
    assert "Enter Summary" in footer(failed) and "u Undo" in footer(failed), failed
    assert re.search(r"FAILED\s+enable-time-sync: install chrony", failed), failed
    log = failed.split("-" * 80)[-1]
    assert log.count("FAILED: ") == 1, failed  # said once
    assert_hanging(body(failed), "apply log", failed)

    # 7. undo: u, y; the rows say what the undo did; no Undo key after it
    t.keys("u")
    t.wait_text("Undo what this apply did")
    t.keys("y")
    undone = t.wait_for(lambda s: "UNDONE:" in s, "the undo", timeout=120)
    undone = t.settle()
    assert "u Undo" not in footer(undone) and "Enter Summary" in footer(undone), undone
    assert re.search(r"UNDONE\s+disable-selinux: edit /etc/selinux/config", undone), undone
    assert re.search(r"KEPT\s+install-virtualization-packages", undone), undone
    assert "PENDING-REBOOT" not in undone and "DONE  " not in undone.replace("UNDONE", ""), undone
    assert (walk_root / "etc/selinux/config").read_bytes() == selinux_before

    # 8. the summary states the host as it is now
    t.keys("Enter")
    summary_screen = t.wait_for(lambda s: "8/8 Summary" in s and "checks as they are now" in s,
                                "the summary, checked again", timeout=60)
    text = summary_screen
    for _ in range(6):  # read it all: page down until it stops changing
        t.keys("PageDown")
        time.sleep(0.6)
        more = t.capture()
        text += more
    assert "UNDONE" in text and "STOPPED" not in text, text
    assert "check security.selinux: FAIL" in text, text
    assert "Waits for a reboot" not in text and "PENDING-REBOOT" not in text, text
    assert "Report file:" in summary_screen and f"{out}/kvmprep-report-" in summary_screen
    # the answers of this walk, saved with the command that replays them
    saved = sorted(out.glob("kvmprep-answers-*.yaml"))
    assert len(saved) == 1, list(out.iterdir())
    assert f"kvmprep apply --answers {saved[0]} --yes" in re.sub(r"\s*\n\s*", " ", text), text
    from remediations.answers import load_answers

    answers = load_answers(str(saved[0]))
    assert answers.fixes == ["install-virtualization-packages", "disable-selinux", "enable-time-sync",
                             "enable-libvirt"], answers  # with the one planned after the packages
    assert answers.declined == ["install-tools"] and answers.profile == "site" and answers.profile_yaml

    # save the report somewhere of this test's: the path is shown, editable, then written
    report = tmp_path / "report.json"
    t.keys("Tab")
    time.sleep(0.3)
    t.keys("C-u")
    t.keys("-l", str(report))
    t.keys("Enter")
    t.wait_text("Report saved to", timeout=60)
    doc = json.loads(report.read_text())
    assert doc["summary"]["ready"] is False and doc["root"] == str(walk_root)

    # 9. back to the apply screen (Esc alone: a key right after it would read as Alt+key), quit
    t.keys("Escape")
    t.wait_for(lambda s: "7/8 Apply" in s, "the apply screen again")
    quit_cleanly(t)

    report_text = "\n".join(f"{name} screen, bytes per cursor move (80x24, TERM=linux; budget {BUDGET} B):\n"
                            f"{summary(ms)}" for name, ms in moves.items())
    print(report_text)
    for name, ms in moves.items():
        assert len(ms) == MOVES and all(m.nbytes > 0 for m in ms), report_text
        assert max(m.nbytes for m in ms) <= BUDGET, f"{name}: a move over {BUDGET} B\n{report_text}"
