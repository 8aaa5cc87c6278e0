"""The wizard, walked with Textual's Pilot at 80x24 on throwaway roots.

Each root is the fix tests' Debian 12 root (tests/wizard_roots.py): a real
dpkg database, apt sources pointing at the session's stub repository, cpuinfo,
lib/modules and an enforcing SELinux config. The apply the wizard starts is
the real detached ``kvmprep apply`` running apt-get into that root; nothing
here touches this machine's own root.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pkgroots import deb_repo, dpkg_installed  # noqa: F401  (session fixture)
from wizard_roots import (
    debian_wizard_root, kill_apply, make_app, plain, screen_text, site_profile, tree_state,
    wait_for, wait_screen, wait_text,
)

SIZE = (80, 24)
APPLY_TIMEOUT = 120
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="kvmprep apply refuses to run without root")


@pytest.fixture
def wroot(tmp_path, deb_repo):
    return debian_wizard_root(tmp_path / "root", deb_repo)


@pytest.fixture
def profile(tmp_path):
    return site_profile(tmp_path)


# ------------------------------------------------------------------ helpers


async def to_results(pilot):
    assert type(pilot.app.screen).__name__ == "WelcomeScreen"
    await pilot.press("enter")
    return await wait_screen(pilot, "ResultsScreen", timeout=30)


async def to_fixes(pilot):
    await to_results(pilot)
    return await to_fixes_from_results(pilot)


async def to_fixes_from_results(pilot):
    await pilot.press("enter")
    screen = await wait_screen(pilot, "FixesScreen")
    app = pilot.app
    await wait_for(pilot, lambda: app.state.plan is not None and screen.query_one("#fixes-table").row_count,
                   30, "the plan")
    await pilot.pause()
    return screen


async def cursor_to(pilot, table, key: str, limit: int = 60):
    """Move a DataTable's cursor with Down/Up (as the admin does) to the row ``key``."""
    target = table.get_row_index(key)
    for _ in range(limit):
        if table.cursor_row == target:
            return
        await pilot.press("down" if table.cursor_row < target else "up")
    raise AssertionError(f"could not reach row {key}")


def cell(table, row: str, column: str) -> str:
    return table.get_cell(row, column).plain


async def run_apply(pilot):
    """From the preview: Enter, y, and wait for the detached apply's final event."""
    app = pilot.app
    await pilot.press("enter")
    confirm = await wait_screen(pilot, "ConfirmScreen")
    await wait_text(pilot, f"Apply {len(app.screen_stack[-2].plan.actions)} actions?")
    assert "Nothing has been changed yet" in plain(confirm.query_one("#dialog Static"))
    assert app.focused.id == "no"  # the default
    await pilot.press("y")
    apply = await wait_screen(pilot, "ApplyScreen")
    if apply.finished is None:  # keys only when possible: no Summary or Undo while it runs
        assert not apply.check_action("next", ()) and not apply.check_action("undo", ())
    await wait_for(pilot, lambda: apply.finished is not None, APPLY_TIMEOUT, "the apply to finish", step=0.2)
    await pilot.pause(0.3)  # the last poll's rows and log lines
    return apply


# -------------------------------------------------------------- 1. the flow


@needs_root
async def test_whole_flow_on_debian_root(wroot, profile, tmp_path):
    app = make_app(wroot, profile=profile)
    async with app.run_test(size=SIZE) as pilot:
        try:
            # 1 welcome: the root's distribution, root mode, the admin's profile highlighted
            welcome = app.screen
            summary = plain(welcome.query_one("#host-summary"))
            assert "Debian GNU/Linux 12" in summary
            assert "root: detection and fixes" in summary and "READ-ONLY" not in summary
            assert f"{wroot} (an offline system" in " ".join(summary.split())  # wrapped under its label
            assert "\n         (an offline system" in summary or len(str(wroot)) < 40
            profiles = welcome.query_one("#profiles")
            assert profiles.get_option_at_index(profiles.highlighted).id == profile

            # 2-3 detection (a worker: the screen shows its progress) -> results by itself
            pushed, push = [], app.push_screen
            app.push_screen = lambda screen, *a, **kw: (pushed.append(screen), push(screen, *a, **kw))[1]
            await pilot.press("enter")
            results = await wait_screen(pilot, "ResultsScreen", timeout=30)
            del app.push_screen
            detection = pushed[0]
            assert type(detection).__name__ == "DetectionScreen"
            assert detection.total == len(app.state.profile.checks) == len(app.state.report.results)
            assert detection not in app.screen_stack  # switched, not stacked: Esc goes back to welcome
            verdict = plain(results.query_one("#verdict"))
            assert "NOT READY" in verdict
            for cid in ("packages.virtualization", "services.libvirt", "security.selinux"):
                assert cid in verdict
            table = results.query_one("#results-table")
            for cid in ("packages.virtualization", "services.libvirt", "security.selinux"):
                assert cell(table, cid, "status") == "FAIL", cid
            assert cell(table, "os.distribution", "status") == "PASS"
            # failing first: the highlighted row is a failing required check, and the pane explains it
            first = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            assert results.row_checks[first].status.value == "fail"
            assert results.row_checks[first].severity == "required"
            details = plain(results.query_one("#details"))
            assert f"FAIL {first}" in details
            for label in ("Found: ", "Why: ", "Required by: ", "kvmprep can fix it: "):
                assert label in details, label
            # the details follow the cursor
            await cursor_to(pilot, table, "packages.virtualization")
            details = plain(results.query_one("#details"))
            assert "FAIL packages.virtualization" in details
            assert "qemu-system-x86" in details and "Why: " in details and "Required by: " in details
            assert "Fix: " in details and "apt-get install" in details
            assert "kvmprep can fix it: install-virtualization-packages" in details

            # 4 fixes: pre-selected; drop enable-time-sync with Space (the stub chrony has no unit file)
            fixes = await to_fixes_from_results(pilot)
            ftable = fixes.query_one("#fixes-table")
            assert "install-virtualization-packages" in app.state.selected
            assert app.state.selected == {s.remediation for s in app.state.plan.steps}
            assert cell(ftable, "fix:install-virtualization-packages", "use") == "[x]"
            assert "enable-time-sync" in app.state.selected
            assert "manual:net.hostname" in [k.value for k in ftable.rows]
            banner = plain(fixes.query_one("#fixes-banner"))
            assert "READ-ONLY" not in banner
            await cursor_to(pilot, ftable, "fix:enable-time-sync")
            assert "enable-time-sync: Enable the time daemon" in plain(fixes.query_one("#fix-details"))
            await pilot.press("space")
            assert cell(ftable, "fix:enable-time-sync", "use") == "[ ]"
            assert "enable-time-sync" not in app.state.selected
            assert cell(ftable, "fix:install-virtualization-packages", "use") == "[x]"

            # 5 preview: the diff and the exact commands, without the dropped fix; nothing written
            await pilot.press("enter")
            preview = await wait_screen(pilot, "PreviewScreen")
            text = plain(preview.query_one("#preview-text"))
            flat = "".join(text.split())  # the preview wraps long commands with hanging indents
            assert "+SELINUX=disabled" in text and "-SELINUX=enforcing" in text
            assert ("install-y--no-install-recommends--qemu-system-x86libvirt-daemon-systemvirtinstqemu-utils"
                    "dnsmasq-baseovmfbridge-utils") in flat
            assert f"Dir={wroot}" in flat and "install-y--no-install-recommends--dmidecodepython3" in flat
            assert "]enable-time-sync:" not in flat and "--chrony" not in flat
            assert "] install-virtualization-packages:" in text
            assert not [l for l in text.splitlines() if l and not l.startswith((" ", "[", "Plan:", "Nothing"))], \
                "a wrapped line started at column 0"
            await wait_text(pilot, "Nothing is written until you confirm")
            assert not (wroot / "var/lib/kvmprep").exists()

            # 6-7 confirm (y) and apply
            apply = await run_apply(pilot)
            assert apply.finished["ok"], apply.finished
            assert "DONE" in plain(apply.query_one("#apply-status"))
            atable = apply.query_one("#apply-table")
            states = [cell(atable, key, "state") for key in apply.rows]
            assert states and all(s in ("DONE", "PENDING-REBOOT") for s in states), states
            assert not app.apply_running

            # 8 summary: the re-run checks pass
            await pilot.press("enter")
            summ = await wait_screen(pilot, "SummaryScreen")
            # KVMPREP_OUTPUT_DIR (make_app): the report and the answers beside the root, not in /var/log
            assert summ.query_one("#save-path").value.startswith(f"{wroot}-output/kvmprep-report-")
            assert Path(summ.answers_file).parent == Path(f"{wroot}-output")
            await wait_for(pilot, lambda: "checks as they are now" in plain(summ.query_one("#summary-text")),
                           60, "the checks run again")
            stext = plain(summ.query_one("#summary-text"))
            assert "APPLIED" in stext
            for cid in ("packages.virtualization", "services.libvirt", "security.selinux", "packages.tools"):
                assert f"check {cid}: PASS" in stext, stext
            assert "enable-time-sync" not in stext and "time.sync" not in stext
            assert f"kvmprep undo --root {wroot}" in " ".join(stext.split())  # wrapped under its label
            assert "Waits for a reboot" in stext  # SELinux off takes a reboot

            # on disk: the real package database has the stack (and not the dropped fix's tools)
            installed = dpkg_installed(wroot)
            stack = {"qemu-system-x86", "libvirt-daemon-system", "virtinst", "bridge-utils", "dmidecode"}
            assert stack <= set(installed), installed
            assert "chrony" not in installed
            assert "SELINUX=disabled" in (wroot / "etc/selinux/config").read_text()

            # s saves the report to the path typed into the Input
            report = tmp_path / "out" / "report.json"
            report.parent.mkdir()
            await pilot.press("tab")
            assert app.focused is summ.query_one("#save-path")
            await pilot.press("ctrl+a", "ctrl+k", *str(report), "tab")
            assert summ.query_one("#save-path").value == str(report)
            assert app.focused is not summ.query_one("#save-path")
            await pilot.press("s")
            doc = await wait_for(pilot, lambda: _json(report), 30, "the saved report")
            assert {"tool", "root", "profile", "host", "checks", "summary"} <= set(doc)
            assert doc["root"] == str(wroot)
            status = {c["id"]: c["status"] for c in doc["checks"]}
            assert status["packages.virtualization"] == "pass" and status["security.selinux"] == "pass"
            assert oct(report.stat().st_mode & 0o777) == oct(0o600)
        finally:
            kill_apply(app)


def _json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # not there yet, or being written


# ------------------------------------------------------- 2. read-only mode


async def test_not_root_is_read_only(wroot, profile):
    before = tree_state(wroot)
    app = make_app(wroot, profile=profile, euid=1000)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        summary = plain(app.screen.query_one("#host-summary"))
        assert "READ-ONLY" in summary
        assert f"sudo kvmprep --root {wroot} --profile {profile}" in " ".join(summary.split())

        results = await to_results(pilot)
        assert "NOT READY" in plain(results.query_one("#verdict"))
        table = results.query_one("#results-table")
        assert cell(table, "packages.virtualization", "status") == "FAIL"
        assert "Why: " in plain(results.query_one("#details"))

        fixes = await to_fixes_from_results(pilot)
        banner = plain(fixes.query_one("#fixes-banner"))
        assert "READ-ONLY" in banner and "sudo kvmprep" in banner
        assert "install-virtualization-packages" in app.state.selected

        await pilot.press("enter")
        preview = await wait_screen(pilot, "PreviewScreen")
        assert "qemu-system-x86" in plain(preview.query_one("#preview-text"))
        await pilot.press("enter")
        await wait_text(pilot, "Read-only mode: to apply these fixes")
        assert f"sudo kvmprep --root {wroot}" in next(iter(app._notifications)).message
        assert app.screen is preview  # no confirm modal
        await pilot.press("a")  # the other apply key too
        await pilot.pause(0.2)
        assert app.screen is preview
    assert not (wroot / "var/lib/kvmprep").exists()
    assert tree_state(wroot) == before


# ------------------------------------------------------------- 3. cancel paths


async def test_back_and_cancel_paths(wroot, profile):
    before = tree_state(wroot)
    app = make_app(wroot, profile=profile)
    async with app.run_test(size=SIZE) as pilot:
        results = await to_results(pilot)
        await pilot.press("escape")  # results -> welcome
        await wait_screen(pilot, "WelcomeScreen")

        results = await to_results(pilot)  # detect again
        fixes = await to_fixes_from_results(pilot)
        await pilot.press("escape")  # fixes -> results
        assert await wait_screen(pilot, "ResultsScreen") is results
        fixes = await to_fixes_from_results(pilot)  # the plan is kept, the table filled again
        assert fixes.query_one("#fixes-table").row_count

        await pilot.press("enter")
        preview = await wait_screen(pilot, "PreviewScreen")
        for key in ("escape", "n"):  # the confirm modal: Esc and n both say No
            await pilot.press("enter")
            await wait_screen(pilot, "ConfirmScreen")
            await pilot.press(key)
            assert await wait_screen(pilot, "PreviewScreen") is preview
        await pilot.press("enter")  # Enter on the modal presses the focused button: No (the default)
        await wait_screen(pilot, "ConfirmScreen")
        assert app.focused.id == "no"
        await pilot.press("enter")
        assert await wait_screen(pilot, "PreviewScreen") is preview

        await pilot.press("escape")  # preview -> fixes
        assert await wait_screen(pilot, "FixesScreen") is fixes
    assert not (wroot / "var/lib/kvmprep").exists()
    assert tree_state(wroot) == before


async def test_help_and_quit(wroot, profile):
    app = make_app(wroot, profile=profile)
    async with app.run_test(size=SIZE) as pilot:
        results = await to_results(pilot)
        await pilot.press("question_mark")
        help_screen = await wait_screen(pilot, "HelpScreen")
        text = plain(help_screen.query_one("#help-text Static"))
        assert "3/8 Results" in text and "evidence" in text
        keys = {tuple(line.split(None, 1)) for line in text.split("Keys:\n", 1)[1].splitlines() if line.strip()}
        for key, what in (("⏎/n", "Fixes"), ("f", "Problems/all"), ("r", "Re-run"), ("esc/b", "Back"),
                          ("q/f10", "Quit"), ("?", "Help")):
            assert (key, what) in keys, (key, what, text)
        await wait_text(pilot, "Keys:")
        await pilot.press("escape")
        assert await wait_screen(pilot, "ResultsScreen") is results

        # f: problems only, then all again
        table = results.query_one("#results-table")
        every = len(results.row_checks)
        await pilot.press("f")
        assert 0 < len(results.row_checks) < every
        assert {r.status.value for r in results.row_checks.values()} <= {"fail", "warn", "skip", "error"}
        await pilot.press("f")
        assert len(results.row_checks) == every and cell(table, "os.distribution", "status") == "PASS"

        await pilot.press("q")
        await wait_screen(pilot, "QuitScreen")
        await wait_text(pilot, "Quit kvmprep?")
        await pilot.press("n")
        assert await wait_screen(pilot, "ResultsScreen") is results
        assert app.is_running

        await pilot.press("f10")
        await wait_screen(pilot, "QuitScreen")
        await pilot.press("escape")
        assert await wait_screen(pilot, "ResultsScreen") is results

        await pilot.press("q")
        await wait_screen(pilot, "QuitScreen")
        await pilot.press("y")
    assert app.return_code == 0
    assert app.return_value == 0


# ---------------------------------------------------------- 4. a failing action


@needs_root
async def test_failed_action_stops_and_undo(tmp_path, deb_repo, profile):
    # the stub repository lacks chrony: enable-time-sync's install fails after the SELinux file is written
    wroot = debian_wizard_root(tmp_path / "root", deb_repo, without=("chrony",))
    selinux_before = (wroot / "etc/selinux/config").read_bytes()
    app = make_app(wroot, profile=profile)
    async with app.run_test(size=SIZE) as pilot:
        try:
            fixes = await to_fixes(pilot)
            ftable = fixes.query_one("#fixes-table")
            for rid in ("install-tools",):  # fewer installs: faster; the failure is the same
                await cursor_to(pilot, ftable, f"fix:{rid}")
                await pilot.press("space")
            assert app.state.selected == {"install-virtualization-packages", "disable-selinux", "enable-time-sync"}
            await pilot.press("enter")
            await wait_screen(pilot, "PreviewScreen")

            apply = await run_apply(pilot)
            assert not apply.finished["ok"]
            atable = apply.query_one("#apply-table")
            states = {cell(atable, key, "action"): cell(atable, key, "state") for key in apply.rows}
            failed = [a for a, s in states.items() if s == "FAILED"]
            assert len(failed) == 1 and failed[0].startswith("enable-time-sync: install chrony"), states
            state = {a.split(" (")[0]: s for a, s in states.items()}
            assert state["install-virtualization-packages: install qemu-system-x86, libvirt-daemon-system, "
                         "virtinst, qemu-utils, dnsmasq-base, ovmf, bridge-utils"] == "DONE", states
            assert state["disable-selinux: edit /etc/selinux/config"] == "PENDING-REBOOT", states
            assert state["enable-time-sync: enable chrony.service"] == "NOT-RUN", states  # stopped before it
            status = plain(apply.query_one("#apply-status"))
            assert status.startswith("FAILED:") and "u: undo" in status
            log = "\n".join(apply.query_one("#apply-log").lines)
            assert "FAILED:" in log and "chrony" in log
            assert (wroot / "etc/selinux/config").read_bytes() != selinux_before

            # u, then y: undo what was done
            await pilot.press("u")
            await wait_screen(pilot, "ConfirmScreen")
            await wait_text(pilot, "Undo what this apply did")
            assert app.focused.id == "no"
            await pilot.press("y")
            assert await wait_screen(pilot, "ApplyScreen") is apply
            await wait_for(pilot, lambda: plain(apply.query_one("#apply-status")).startswith("UNDO"), 60,
                           "the undo")
            assert plain(apply.query_one("#apply-status")).startswith("UNDONE"), \
                "\n".join(apply.query_one("#apply-log").lines)
            assert "--- undo ---" in apply.query_one("#apply-log").lines
            assert (wroot / "etc/selinux/config").read_bytes() == selinux_before
            # keys only when possible: nothing left to undo
            assert not apply.check_action("undo", ()) and apply.check_action("next", ())

            await pilot.press("enter")
            summ = await wait_screen(pilot, "SummaryScreen")
            # the summary states the host as it is now: undone, the checks run again
            await wait_for(pilot, lambda: "checks as they are now" in plain(summ.query_one("#summary-text")),
                           60, "the checks run again")
            stext = plain(summ.query_one("#summary-text"))
            assert "UNDONE" in stext and "STOPPED" not in stext
            assert "failed during apply" in stext and "install chrony" in stext
            # each action as the undo left it: nothing waits for a reboot any more
            assert "UNDONE  edit /etc/selinux/config" in stext and "Waits for a reboot" not in stext, stext
            assert "check security.selinux: FAIL" in stext, stext  # SELinux is enforcing again
        finally:
            kill_apply(app)


# ------------------------------------------------------------- 5. too small


async def test_too_small_then_resized(wroot, profile):
    app = make_app(wroot, profile=profile)
    async with app.run_test(size=(70, 20)) as pilot:
        await wait_screen(pilot, "TooSmallScreen")
        text = await wait_text(pilot, "The terminal is 70x20; kvmprep needs at least 80x24.")
        assert "Make the window larger" in text
        await pilot.resize_terminal(80, 24)
        welcome = await wait_screen(pilot, "WelcomeScreen")
        await wait_text(pilot, "Profile (Up/Down, Enter to detect):")
        await pilot.resize_terminal(79, 24)  # and back again: one column short is too small
        await wait_screen(pilot, "TooSmallScreen")
        await wait_text(pilot, "79x24")
        await pilot.resize_terminal(80, 24)
        assert await wait_screen(pilot, "WelcomeScreen") is welcome


async def test_results_offer_only_fixes_that_act(wroot, profile):
    """The details pane offers a fix from the planner's answer: a kernel
    without tun gets no 'kvmprep can fix it: load-kvm-modules' for kvm.tun."""
    from remediations.plan import Plan, Step
    from screens.results import details_text

    app = make_app(wroot, profile=profile)
    async with app.run_test(size=SIZE) as pilot:
        results = await to_results(pilot)
        r = next(r for r in app.state.report.results if r.remediations and r.status.value != "pass")
        plan = Plan(str(wroot), "generic", "now",
                    [Step(r.remediations[0], "t", [r.id], [], [], {r.id: "tun: not available in this kernel"})])
        text = details_text(r, plan).plain
        assert "kvmprep can fix it" not in text
        assert f"kvmprep cannot fix it here: {r.remediations[0]}: tun: not available in this kernel" in text
        await wait_for(pilot, lambda: app.state.plan is not None, 60, "the plan worked out on the results")
        assert results is app.screen
