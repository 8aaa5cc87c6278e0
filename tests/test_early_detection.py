"""Detection that starts on the welcome screen (checks/background.py) and
is joined by the detection screen only while it is fresh."""

from __future__ import annotations

import threading

import pytest

from checks.background import BackgroundRun
from checks.facts import Facts
from checks.model import Status
from checks.profile import load_profile

from pkgroots import deb_repo  # noqa: F401  (session fixture)
from wizard_roots import debian_wizard_root, make_app, site_profile, wait_for, wait_screen


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def run_on(root, clock=None, gate=None):
    """A BackgroundRun on a copy of the cpu fixture; ``gate`` holds every check
    until it is set, so a test can join a run that is still going."""
    host = root.host()
    facts = Facts(host)
    profile = load_profile("generic")
    run = BackgroundRun(host, facts, profile, clock=clock or Clock())
    if gate is not None:
        real = run._decided

        def held(result, done, total):
            gate.wait(10)
            real(result, done, total)
        run._decided = held
    return run


def test_join_replays_what_was_decided_then_the_rest_in_order(root):
    root.use("cpu/x86_64-epyc_7451")
    gate = threading.Event()
    run = run_on(root, gate=gate).start()
    got = []

    def joiner():
        got.append(run.join(lambda r, done, total: got.append((r.id, done, total))))

    t = threading.Thread(target=joiner)
    t.start()
    gate.set()
    t.join(30)
    report = got.pop()
    assert [g[1] for g in got] == list(range(1, len(report.results) + 1))  # each once, in order
    assert sorted(g[0] for g in got) == sorted(r.id for r in report.results)
    # a late second joiner gets the same results, all replayed
    late = []
    assert run.join(lambda r, d, t: late.append(r.id)) is report
    assert sorted(late) == sorted(g[0] for g in got)


def test_fresh_only_for_its_own_profile_and_for_a_while(root):
    root.use("cpu/x86_64-epyc_7451")
    clock = Clock()
    run = run_on(root, clock=clock)
    assert run.fresh(run.profile, 30)
    assert not run.fresh(load_profile("generic"), 30)  # another profile object: its own params
    clock.now += 30.5
    assert not run.fresh(run.profile, 30)


def test_an_error_in_the_run_reaches_the_joiner(root, monkeypatch):
    import checks.background as bg

    def broken(*a, **k):
        raise RuntimeError("the catalogue is broken")

    monkeypatch.setattr(bg, "run_checks", broken)
    run = run_on(root).start()
    with pytest.raises(RuntimeError, match="catalogue is broken"):
        run.join()
    assert run.done


# ------------------------------------------------------------ in the wizard


@pytest.fixture
def wroot(tmp_path, deb_repo):
    return debian_wizard_root(tmp_path / "root", deb_repo)


async def early_run_done(pilot):
    """The welcome screen shown, and the detection it started finished."""
    app = pilot.app
    await wait_screen(pilot, "WelcomeScreen")
    await wait_for(pilot, lambda: app.state.early is not None and app.state.early.done, 30, "the early detection")
    return app.state.early


async def test_wizard_joins_the_welcome_screens_detection(wroot, tmp_path):
    app = make_app(wroot, profile=site_profile(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        early = await early_run_done(pilot)
        await pilot.press("enter")
        await wait_screen(pilot, "ResultsScreen", timeout=30)
        assert app.state.report is early.report and app.state.facts is early.facts
        assert app.state.early is None  # joined once


async def test_wizard_detects_again_when_the_welcome_screen_sat_too_long(wroot, tmp_path):
    """Enter long after the welcome screen showed: the results are of the
    host as it is now (a new run on fresh facts), not of launch time."""
    app = make_app(wroot, profile=site_profile(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        early = await early_run_done(pilot)
        early.started -= app.state.EARLY_FRESH_FOR + 1
        # meanwhile the admin fixed something by hand: a new run must see it
        (wroot / "etc/selinux/config").write_text("SELINUX=disabled\nSELINUXTYPE=targeted\n")
        await pilot.press("enter")
        await wait_screen(pilot, "ResultsScreen", timeout=30)
        report = app.state.report
        assert report is not early.report and app.state.facts is not early.facts
        assert early.report.result("security.selinux").status is not Status.PASS
        assert report.result("security.selinux").status is Status.PASS
