"""Answers files (issue 10): the wizard saves what the admin chose; ``apply
--answers`` and ``wizard --answers`` plan afresh from it on another host.

The round trip is real: the wizard applies on one Debian 12 root (real
apt-get, stub repository), its answers are replayed with ``kvmprep apply
--answers FILE --yes`` on a second root, and both roots then pass the same
checks (and fail the same declined one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from remediations.answers import Answers, AnswersError, load_answers, parse_answers

from pkgroots import deb_repo  # noqa: F401  (session fixture)
from wizard_roots import debian_wizard_root, kill_apply, make_app, site_profile, wait_for, wait_screen

TOP = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="kvmprep apply refuses to run without root")


def kvmprep(*args, env=None):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                          stdin=subprocess.DEVNULL, timeout=300, env={**os.environ, **(env or {})})


# ---------------------------------------------------------------- the file


def test_round_trip_of_the_file_format(tmp_path):
    a = Answers("site", ["install-virtualization-packages", "disable-selinux"], ["install-tools"],
                ["cpu.virt-extensions"], "alice", profile_yaml="name: site\nextends: generic\n")
    f = tmp_path / "a.yaml"
    f.write_text(a.to_yaml())
    assert load_answers(str(f)) == a
    assert f.read_text().startswith("# kvmprep answers")


@pytest.mark.parametrize("doc, key, reason", [
    ("profile: generic\nfixes: []\n", "kvmprep_answers", "not a kvmprep answers file"),
    ("kvmprep_answers: 2\nprofile: generic\nfixes: []\n", "kvmprep_answers", "this kvmprep reads 1"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: []\ncommands: [rm -rf /]\n", "commands", "unknown key"),
    ("kvmprep_answers: 1\nfixes: []\n", "profile", "a profile name"),
    ("kvmprep_answers: 1\nprofile: /etc/site.yaml\nfixes: []\n", "profile", "profile_yaml"),
    ("kvmprep_answers: 1\nprofile: generic\n", "fixes", "missing"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: install-tools\n", "fixes", "a list of ids"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: [rm-everything]\n", "fixes", "unknown fix 'rm-everything'"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: [install-tools]\ndeclined: [install-tools]\n", "declined",
     "also in fixes"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: []\nuser: '-oProxyCommand=x'\n", "user", "user name"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: []\nuser: ../root\n", "user", "user name"),
    ("kvmprep_answers: 1\nprofile: generic\nfixes: []\nprofile_yaml: [a]\n", "profile_yaml", "YAML string"),
])
def test_bad_answers_name_the_key_and_the_reason(tmp_path, doc, key, reason):
    f = tmp_path / "answers.yaml"
    f.write_text(doc)
    with pytest.raises(AnswersError) as err:
        load_answers(str(f))
    assert err.value.key == key and reason in err.value.reason, str(err.value)
    assert str(err.value).startswith(f"{f}: {key}: ")


def test_bad_files(tmp_path):
    with pytest.raises(AnswersError, match="No such file"):
        load_answers(str(tmp_path / "missing.yaml"))
    (tmp_path / "alias.yaml").write_text("a: &x [1]\nb: *x\n")
    with pytest.raises(AnswersError, match="not YAML"):
        load_answers(str(tmp_path / "alias.yaml"))
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(AnswersError, match="not UTF-8"):
        load_answers(str(tmp_path / "bin.yaml"))
    os.mkfifo(tmp_path / "fifo.yaml")
    with pytest.raises(AnswersError):
        load_answers(str(tmp_path / "fifo.yaml"))
    (tmp_path / "big.yaml").write_bytes(b"#" * (2 << 20))
    with pytest.raises(AnswersError):
        load_answers(str(tmp_path / "big.yaml"))


def test_cli_says_file_key_reason_and_exits_2(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("kvmprep_answers: 1\nprofile: generic\nfixes: [nope]\n")
    for cmd in (["plan"], ["apply", "--yes"]):
        r = kvmprep(*cmd, "--root", str(tmp_path), "--answers", str(f))
        assert r.returncode == 2, r
        assert r.stderr.strip() == f"kvmprep: {f}: fixes: unknown fix 'nope' (see 'kvmprep plan')", r.stderr
        assert "Traceback" not in r.stderr
    f.write_text("kvmprep_answers: 1\nprofile: generic\nfixes: []\nignore: [no.such-check]\n")
    r = kvmprep("plan", "--root", str(tmp_path), "--answers", str(f))
    assert r.returncode == 2 and f"{f}: ignore: " in r.stderr and "no.such-check" in r.stderr, r.stderr
    r = kvmprep("plan", "--root", str(tmp_path), "--answers", str(f), "--fix", "install-tools")
    assert r.returncode == 2 and "without --fix" in r.stderr


# ------------------------------------------------------ the round trip


async def to_fixes(pilot):
    """Welcome -> results -> fixes, the plan worked out."""
    app = pilot.app
    await pilot.press("enter")
    await wait_screen(pilot, "ResultsScreen", timeout=30)
    await pilot.press("enter")
    fixes = await wait_screen(pilot, "FixesScreen")
    await wait_for(pilot, lambda: app.state.plan is not None and fixes.query_one("#fixes-table").row_count,
                   30, "the plan")
    return fixes


def check_statuses(root: Path, profile: str) -> dict[str, str]:
    r = kvmprep("check", "--root", str(root), "--profile", profile, "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    return {c["id"]: c["status"] for c in json.loads(r.stdout)["checks"]}


@needs_root
async def test_wizard_answers_replayed_on_a_second_root(tmp_path, deb_repo):
    first = debian_wizard_root(tmp_path / "first", deb_repo)
    second = debian_wizard_root(tmp_path / "second", deb_repo)
    profile = site_profile(tmp_path)
    before = check_statuses(second, profile)
    assert before["packages.virtualization"] == "fail" and before["security.selinux"] == "fail"

    app = make_app(first, profile=profile)
    async with app.run_test(size=(80, 24)) as pilot:
        try:
            fixes = await to_fixes(pilot)
            # the admin drops two fixes (the stub chrony has no unit file to enable)
            app.state.selected -= {"install-tools", "enable-time-sync"}
            fixes.fill()
            await pilot.press("enter")
            await wait_screen(pilot, "PreviewScreen")
            await pilot.press("enter")
            await wait_screen(pilot, "ConfirmScreen")
            await pilot.press("y")
            apply = await wait_screen(pilot, "ApplyScreen")
            await wait_for(pilot, lambda: apply.finished is not None, 180, "the apply", step=0.2)
            assert apply.finished["ok"], json.dumps(apply.finished, indent=1)[:3000]
            await pilot.press("enter")
            summary = await wait_screen(pilot, "SummaryScreen")
            saved = summary.answers_file
            assert saved and Path(saved).parent == first.parent / "first-output", saved
        finally:
            kill_apply(app)

    answers = load_answers(saved)
    assert "install-tools" in answers.declined and "install-virtualization-packages" in answers.fixes
    assert answers.profile_yaml == Path(profile).read_text()  # the admin's own profile travels along

    r = kvmprep("apply", "--root", str(second), "--answers", saved, "--yes", env={"SSH_CONNECTION": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    after_first, after_second = check_statuses(first, profile), check_statuses(second, profile)
    for cid in ("packages.virtualization", "security.selinux", "services.libvirt", "time.sync"):
        assert after_first[cid] == after_second[cid], (cid, after_first[cid], after_second[cid])
    assert after_second["packages.virtualization"] == "pass" and after_second["security.selinux"] == "pass"
    # the declined fix was not applied on either root
    assert after_first["packages.tools"] == after_second["packages.tools"] == "fail"
    # replayed once more: nothing left to do
    r = kvmprep("plan", "--root", str(second), "--answers", saved)
    assert r.returncode == 0 and "Plan: 0 fixes" in r.stdout, r.stdout


async def test_wizard_with_answers_preselects_their_fixes(tmp_path, deb_repo):
    root = debian_wizard_root(tmp_path / "root", deb_repo)
    answers = parse_answers({"kvmprep_answers": 1, "profile": "generic",
                             "fixes": ["install-virtualization-packages"], "declined": ["install-tools"]})
    app = make_app(root, profile="generic", answers=answers)
    async with app.run_test(size=(80, 24)) as pilot:
        await to_fixes(pilot)
        offered = {s.remediation for s in app.state.plan.steps}
        assert {"install-virtualization-packages", "install-tools"} <= offered
        assert app.state.selected == {"install-virtualization-packages"}


def test_where_the_wizard_saves_its_files(tmp_path):
    """Root: /var/log/kvmprep (with the journal); not root: the home; KVMPREP_OUTPUT_DIR wins."""
    from app.wizard_state import WizardOptions, WizardState
    from checks.host import Host

    for euid, env, want in ((0, {}, "/var/log/kvmprep"), (1000, {}, os.path.expanduser("~")),
                            (0, {"KVMPREP_OUTPUT_DIR": str(tmp_path)}, str(tmp_path))):
        state = WizardState(WizardOptions(root=str(tmp_path), env=env))
        state.host = Host(tmp_path, env=env, euid=euid)
        assert state.report_path("S") == f"{want}/kvmprep-report-S.json"
        assert state.answers_path("S") == f"{want}/kvmprep-answers-S.yaml"
