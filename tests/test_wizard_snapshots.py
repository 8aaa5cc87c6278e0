"""SVG snapshots of every wizard screen at 80x24 (pytest-textual-snapshot).

The root is rebuilt at a fixed path with fixed content, so what the screens
show is the same on every machine. Update with: pytest --snapshot-update.
The apply and summary screens are fed a recorded event stream instead of a
live apply (whose ids and timings differ every run).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.wizard_state import WizardOptions

FIXTURES = Path(__file__).parent / "fixtures"
SNAP_ROOT = Path("/tmp/kvmprep-snapshot-root")
SIZE = (80, 24)
SELINUX = "SELINUX=enforcing\nSELINUXTYPE=targeted\n"


@pytest.fixture(autouse=True)
def _scrollbars_as_they_were():
    """An ASCII app swaps Textual's scrollbar renderer for the whole process
    (one app per process in real use): put it back for the next snapshot."""
    from textual.scrollbar import ScrollBar

    saved = ScrollBar.renderer
    yield
    ScrollBar.renderer = saved


@pytest.fixture(scope="module")
def snap_root():
    if SNAP_ROOT.exists():
        shutil.rmtree(SNAP_ROOT)
    shutil.copytree(FIXTURES / "os/debian_10", SNAP_ROOT, dirs_exist_ok=True)
    shutil.copytree(FIXTURES / "cpu/x86_64-epyc_7451", SNAP_ROOT, dirs_exist_ok=True)
    files = {
        "etc/hostname": "kvm01\n",
        "etc/hosts": "127.0.0.1 localhost\n10.0.0.5 kvm01.example.net kvm01\n",
        "etc/selinux/config": SELINUX,
        "proc/meminfo": "MemTotal:       65843200 kB\nMemAvailable:   60000000 kB\n",
        "proc/version": "Linux version 4.19.0-6-amd64 (debian-kernel@lists.debian.org) #1 SMP\n",
        "var/lib/dpkg/status": "",
    }
    for rel, text in files.items():
        p = SNAP_ROOT / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    yield SNAP_ROOT


def make_app(root, euid=0, **kw):
    from app.tui import build_app

    # PATH without tools: package and unit state come out the same on every machine
    return build_app(WizardOptions(root=str(root), euid=euid, env={"PATH": "/nonexistent"}, **kw))


async def until(pilot, cond, timeout=30.0):
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("timed out waiting in the wizard")
        await pilot.pause(0.05)


async def to_results(pilot):
    from screens.results import ResultsScreen

    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, ResultsScreen))
    await until(pilot, lambda: pilot.app.state.plan is not None)  # worked out while the results show
    await pilot.pause()


async def to_fixes(pilot):
    from screens.fixes import FixesScreen

    await to_results(pilot)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, FixesScreen) and pilot.app.state.plan is not None)
    await pilot.pause()


def test_welcome(snap_compare, snap_root):
    assert snap_compare(make_app(snap_root), terminal_size=SIZE)


def test_welcome_not_root_ascii(snap_compare, snap_root):
    assert snap_compare(make_app(snap_root, euid=1000, ascii=True), terminal_size=SIZE)


def test_detection(snap_compare, snap_root, monkeypatch):
    """Detection mid-way: the worker is held back and three results are fed in."""
    from screens import detection

    from screens import welcome

    monkeypatch.setattr(detection.DetectionScreen, "run_detection", lambda self: None)
    # no detection started on the welcome screen: the detection screen would open the results at once
    monkeypatch.setattr(welcome.WelcomeScreen, "start_early_detection", lambda self: None)

    async def run_before(pilot):
        from checks.facts import Facts
        from checks.registry import all_checks
        from checks.runner import run_one

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, detection.DetectionScreen))
        host = pilot.app.state.host
        facts = Facts(host)
        for i, cid in enumerate(["cpu.arch", "cpu.virt-extensions", "cpu.64bit"], 1):
            pilot.app.screen.add_result(run_one(all_checks()[cid], "required", {}, host, facts), i)
        pilot.app.screen.flush()
        await pilot.pause()

    assert snap_compare(make_app(snap_root), run_before=run_before, terminal_size=SIZE)


def test_results(snap_compare, snap_root):
    assert snap_compare(make_app(snap_root), run_before=to_results, terminal_size=SIZE)


def test_results_problems_only(snap_compare, snap_root):
    async def run_before(pilot):
        await to_results(pilot)
        await pilot.press("f", "down", "down")
        await pilot.pause()

    assert snap_compare(make_app(snap_root), run_before=run_before, terminal_size=SIZE)


def test_fixes(snap_compare, snap_root):
    assert snap_compare(make_app(snap_root), run_before=to_fixes, terminal_size=SIZE)


def test_preview(snap_compare, snap_root):
    async def run_before(pilot):
        await to_fixes(pilot)
        await pilot.press("enter")
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.2)  # the scroll area's layout (its scrollbar) settles

    assert snap_compare(make_app(snap_root), run_before=run_before, terminal_size=SIZE)


def test_confirm(snap_compare, snap_root):
    async def run_before(pilot):
        await to_fixes(pilot)
        await pilot.press("enter")
        await pilot.pause(0.2)  # the preview's layout settles under the dialog
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(make_app(snap_root), run_before=run_before, terminal_size=SIZE)


FINISHED = {
    "event": "finished", "ok": True, "apply_id": "0123456789ab",
    "journal": "/var/lib/kvmprep/journal", "log": "/var/log/kvmprep/kvmprep.log",
    "backups": "/var/lib/kvmprep/backups/0123456789ab",
    "actions": [{"remediation": "disable-selinux", "summary": "edit /etc/selinux/config",
                 "status": "pending-reboot", "message": "", "output": "", "returncode": None}],
    "verification": {"security.selinux": {"status": "pass", "detail": "SELinux disabled (config disabled)"}},
    "fixes": {"disable-selinux": ["security.selinux"]},
}


def _recorded_apply(monkeypatch):
    """ApplyScreen follows a recorded event stream instead of starting an apply."""
    from screens import apply as apply_mod

    def start(self):
        self.app.apply_running = False
        events = [
            {"event": "action-start", "report": {"step": 0, "index": 0, "remediation": "disable-selinux",
                                                 "summary": "edit /etc/selinux/config", "status": "not-run",
                                                 "message": "", "output": "", "returncode": None}},
            {"event": "line", "text": "wrote /etc/selinux/config (40 bytes)"},
            {"event": "action", "report": {"step": 0, "index": 0, "remediation": "disable-selinux",
                                           "summary": "edit /etc/selinux/config", "status": "pending-reboot",
                                           "message": "", "output": "", "returncode": None}},
            FINISHED,
        ]
        for e in events:
            self.on_apply_event(e)
        self.events_path = "/nonexistent"

    monkeypatch.setattr(apply_mod.ApplyScreen, "start", start)


async def _to_apply(pilot):
    from remediations.actions import WriteFile
    from remediations.plan import Plan, Step
    from screens.apply import ApplyScreen

    await to_results(pilot)
    plan = Plan("/", "generic", "now", [Step("disable-selinux", "Disable SELinux", ["security.selinux"],
                                              [WriteFile(path="/etc/selinux/config", content="SELINUX=disabled\n",
                                                         original_sha256="x", reboot=True)])])
    await pilot.app.push_screen(ApplyScreen(plan))
    await pilot.pause()


def test_apply(snap_compare, snap_root, monkeypatch):
    _recorded_apply(monkeypatch)
    assert snap_compare(make_app(snap_root), run_before=_to_apply, terminal_size=SIZE)


def test_summary(snap_compare, snap_root, monkeypatch):
    import shutil

    from app.wizard_state import WizardState

    _recorded_apply(monkeypatch)
    out = "/tmp/kvmprep-snapshot-output"  # a fixed path: it shows on the screen
    shutil.rmtree(out, ignore_errors=True)
    monkeypatch.setattr(WizardState, "answers_path", lambda self, stamp: f"{out}/kvmprep-answers.yaml")

    async def run_before(pilot):
        from textual.widgets import Input

        await _to_apply(pilot)
        await pilot.press("enter")
        await pilot.pause()
        for _ in range(200):  # the checks run again when the summary opens: wait for their answer
            if getattr(pilot.app.screen, "now", None) is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause()
        field = pilot.app.screen.query_one(Input)
        field.cursor_blink = False
        field.value = "/root/kvmprep-report.json"
        await pilot.pause()

    assert snap_compare(make_app(snap_root), run_before=run_before, terminal_size=SIZE)


def test_help(snap_compare, snap_root):
    async def run_before(pilot):
        await to_results(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app(snap_root), run_before=run_before, terminal_size=SIZE)


def test_quit_dialog(snap_compare, snap_root):
    assert snap_compare(make_app(snap_root), press=["q"], terminal_size=SIZE)


def test_too_small(snap_compare, snap_root):
    assert snap_compare(make_app(snap_root), terminal_size=(60, 20))
