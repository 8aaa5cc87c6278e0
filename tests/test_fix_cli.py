"""`kvmprep plan / apply / undo` as an admin types them (on throwaway roots)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from app.cli import main
from checks.host import Host
from pkgroots import debian_root, deb_repo, dpkg_installed, repo_without, require  # noqa: F401
from remediations.journal import Journal

TOP = Path(__file__).resolve().parent.parent


def kvmprep(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, timeout=120, **kw)


def test_plan_shows_the_diff_and_changes_nothing(kvm_root):
    r = kvmprep("plan", "--root", str(kvm_root.path), "--fix", "load-kvm-modules")
    assert r.returncode == 0, r.stderr
    assert "+++ b/etc/modules-load.d/kvm.conf" in r.stdout
    assert "+kvm_intel" in r.stdout and "+tun" in r.stdout
    assert "modprobe kvm now: skipped" in r.stdout  # runtime step on an offline root
    assert not (kvm_root.path / "etc/modules-load.d").exists()


def test_plan_file_round_trip_apply_and_undo(kvm_root, tmp_path):
    plan_file = tmp_path / "plan.yaml"
    r = kvmprep("plan", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "-o", str(plan_file))
    assert r.returncode == 0 and plan_file.exists()
    data = yaml.safe_load(plan_file.read_text())
    assert data["kvmprep_plan"] == 1 and data["steps"][0]["remediation"] == "load-kvm-modules"
    r = kvmprep("apply", str(plan_file), "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    conf = kvm_root.path / "etc/modules-load.d/kvm.conf"
    assert conf.read_text().splitlines()[-3:] == ["kvm", "kvm_intel", "tun"]
    assert "journal:" in r.stdout and "undo: kvmprep undo --root" in r.stdout
    # a fresh plan after a successful apply is empty
    r = kvmprep("plan", "--root", str(kvm_root.path), "--fix", "load-kvm-modules")
    assert "Nothing to do" in r.stdout and "load-kvm-modules: nothing to do" in r.stdout
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not conf.exists()


def test_apply_without_a_terminal_refuses_unless_yes(kvm_root):
    r = kvmprep("apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules")
    assert r.returncode == 2 and "--yes" in r.stderr
    assert not (kvm_root.path / "etc/modules-load.d").exists()


def test_dry_run_shows_the_plan_and_exits(kvm_root):
    r = kvmprep("apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "--dry-run")
    assert r.returncode == 0 and "Dry run: nothing was changed." in r.stdout
    assert not (kvm_root.path / "etc/modules-load.d").exists()


def test_apply_and_undo_need_root(kvm_root, monkeypatch, capsys):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    rc = main(["apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "--yes"])
    assert rc == 2 and "needs root" in capsys.readouterr().err
    assert not (kvm_root.path / "etc/modules-load.d").exists()
    assert not (kvm_root.path / "var/lib/kvmprep").exists()


def test_unknown_fix_id_is_a_usage_error(kvm_root):
    r = kvmprep("plan", "--root", str(kvm_root.path), "--fix", "rm-rf-slash")
    assert r.returncode == 2 and "unknown remediation rm-rf-slash" in r.stderr


def test_bad_plan_file(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("hello: world\n")
    r = kvmprep("apply", str(f), "--yes")
    assert r.returncode == 2 and "not a kvmprep plan" in r.stderr and "Traceback" not in r.stderr


def test_plan_for_another_root_is_refused(kvm_root, tmp_path):
    plan_file = tmp_path / "plan.json"
    kvmprep("plan", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "--format", "json", "-o", str(plan_file))
    other = tmp_path / "other"
    other.mkdir()
    r = kvmprep("apply", str(plan_file), "--root", str(other), "--yes")
    assert r.returncode == 2 and "was made for root" in r.stderr


def _tools_root(path: Path, repo: Path) -> Path:
    """A Debian 12 root without the profile's tools, its apt sources at ``repo``."""
    require("apt-get", "dpkg", "dpkg-scanpackages")
    return debian_root(path, repo)


def test_failed_action_exit_1_and_says_how_to_undo(tmp_path, deb_repo):
    """A real failure: apt-get cannot find dmidecode in the root's repository."""
    broken = repo_without(deb_repo, tmp_path / "repo", ["dmidecode"])
    root = _tools_root(tmp_path / "r", broken)
    r = kvmprep("apply", "--root", str(root), "--fix", "install-tools", "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAILED at: install" in r.stdout and "kvmprep undo --root" in r.stdout, r.stdout


def test_over_ssh_the_apply_survives_the_session_dropping(tmp_path, deb_repo):
    root = _tools_root(tmp_path / "r", deb_repo)
    env = {**os.environ, "SSH_CONNECTION": "192.0.2.9 50000 192.0.2.2 22"}
    proc = subprocess.Popen([sys.executable, "-m", "app", "apply", "--root", str(root), "--fix", "install-tools",
                             "--yes"], cwd=TOP, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    seen = []
    while not any("runs detached" in l for l in seen):
        line = proc.stdout.readline()
        assert line, "".join(seen)
        seen.append(line)
    journal = Journal(Host(root))
    for _ in range(400):
        if journal.running_pid() or any(r.get("event") == "end" for r in journal.records()):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGHUP)  # the SSH session drops
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(1200):
        if any(r.get("event") == "end" for r in journal.records()):
            break
        time.sleep(0.05)
    assert dpkg_installed(root).get("dmidecode"), "the detached apply did not finish"
    # started anew, kvmprep shows the (finished) apply's output
    r = kvmprep("apply", "--attach", "--root", str(root))
    assert r.returncode == 0
    assert "apt-get" in r.stdout
