"""kvmprep on the machine the tests run on: the verdict must be the truth.

On this project's build machine KVM works through kvm_pvm without vmx/svm
flags, so virt-host-validate and kvm-ok both say KVM cannot be used; kvmprep
must say it can.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checks.kvmprobe import probe_kvm

TOP = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.live


def run_check(*args):
    return subprocess.run([sys.executable, "-m", "app", "check", *args], capture_output=True,
                          text=True, cwd=TOP, timeout=120)


@pytest.fixture(scope="module")
def live_doc():
    r = run_check("--format", "json")
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr
    return r.returncode, json.loads(r.stdout)


def test_every_check_decides_without_error(live_doc):
    _, doc = live_doc
    errors = [(c["id"], c["detail"]) for c in doc["checks"] if c["status"] == "error"]
    assert errors == []


def test_exit_status_matches_verdict(live_doc):
    rc, doc = live_doc
    assert doc["summary"]["ready"] == (rc == 0)
    blocking = [c["id"] for c in doc["checks"] if c["severity"] == "required" and c["status"] == "fail"]
    assert (rc == 1) == bool(blocking)


def test_kvm_usable_is_decided_by_probing(live_doc):
    _, doc = live_doc
    usable = next(c for c in doc["checks"] if c["id"] == "kvm.usable")
    probe = probe_kvm()
    if probe.ok:
        assert usable["status"] == "pass", usable
        assert doc["host"]["virtualization"]["kvm"]["outcome"] == "ok"
    elif probe.outcome == "denied":
        assert usable["status"] == "skip"
    else:
        assert usable["status"] == "fail"


@pytest.mark.skipif(not shutil.which("virt-host-validate"), reason="virt-host-validate not installed")
def test_more_truthful_than_virt_host_validate(live_doc):
    """Where KVM works without vmx/svm, virt-host-validate fails it; kvmprep must pass it."""
    _, doc = live_doc
    probe = probe_kvm()
    vhv = subprocess.run(["virt-host-validate", "qemu"], capture_output=True, text=True, timeout=60)
    says_no_hw = "hardware virtualization" in vhv.stdout and \
        any("hardware virtualization" in l and ": FAIL" in l for l in vhv.stdout.splitlines())
    if not (probe.ok and says_no_hw):
        pytest.skip("virt-host-validate agrees with the probe on this machine")
    ext = next(c for c in doc["checks"] if c["id"] == "cpu.virt-extensions")
    usable = next(c for c in doc["checks"] if c["id"] == "kvm.usable")
    assert ext["status"] == "pass" and usable["status"] == "pass"


def test_table_on_this_machine_prints_a_verdict():
    r = subprocess.run([sys.executable, "-m", "app", "check"], capture_output=True, text=True,
                       cwd=TOP, timeout=120, env={**os.environ, "TERM": "linux"})
    assert r.returncode in (0, 1)
    assert r.stdout.isascii() and "Verdict: " in r.stdout
    verdict = r.stdout[r.stdout.index("Verdict: "):]
    assert verdict.startswith("Verdict: READY" if r.returncode == 0 else "Verdict: NOT READY")
