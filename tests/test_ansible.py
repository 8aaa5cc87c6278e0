"""``kvmprep ansible`` (issue 10): the project it writes, run by the real
ansible-playbook (ansible-core, a test dependency only).

Three "hosts" are three throwaway Debian 12 roots on this machine (Ansible's
local connection, ``kvmprep_root`` per host): the equivalent inventory the
issue allows until the lab hosts run it over SSH. What is proved:
- ``--check --diff`` shows each host's preview and changes nothing (checksums
  of every file of each root);
- a run applies the answers; a second run reports changed=0 on every host;
- a failing host does not stop the others;
- the fleet checks run at the end, and a host given another kernel release
  (through its report) makes fleet.same-kernel fail naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pkgroots import deb_repo  # noqa: F401  (session fixture)
from ansible_run import PLAYBOOK, playbook, tree_digest
from wizard_roots import debian_wizard_root

TOP = Path(__file__).resolve().parent.parent
needs_ansible = pytest.mark.skipif(PLAYBOOK is None, reason="ansible-core is not installed (pip install '.[test]')")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="kvmprep apply refuses to run without root")

ANSWERS = """kvmprep_answers: 1
profile: generic
fixes: [install-virtualization-packages, enable-libvirt]
declined: [install-tools]
"""


@needs_ansible
@needs_root
def test_fleet_playbook_check_apply_idempotent(tmp_path, deb_repo):
    roots = {}
    for name in ("kvm01", "kvm02", "kvm03"):
        root = debian_wizard_root(tmp_path / name, deb_repo)
        (root / "etc/hostname").write_text(f"{name}\n")
        roots[name] = root
    answers = tmp_path / "answers.yaml"
    answers.write_text(ANSWERS)
    project = tmp_path / "project"
    r = subprocess.run([sys.executable, "-m", "app", "ansible", "-o", str(project), "--answers", str(answers)],
                       cwd=TOP, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for name in ("site.yml", "inventory.ini", "README.md", "answers.yaml", "kvmprep.pyz"):
        assert (project / name).is_file(), name
    hosts = "\n".join(f"{n} kvmprep_root={root} kvmprep_dir={tmp_path / (n + '-kvmprep')}"
                      for n, root in roots.items())
    (project / "test.ini").write_text(
        f"[kvm_hosts]\n{hosts}\nbroken kvmprep_root={tmp_path / 'no-such-root'} kvmprep_dir={tmp_path / 'b'}\n"
        f"[kvm_hosts:vars]\nansible_connection=local\nkvmprep_become=false\n"
        f"ansible_python_interpreter={sys.executable}\nkvmprep_python={sys.executable}\n")

    # 1. check only (the default): reports collected, the roots untouched, the broken host alone fails
    digests = {n: tree_digest(r) for n, r in roots.items()}
    first, rows = playbook(project, "test.ini")
    assert rows["broken"]["failed"] == 1, first.stdout
    assert all(rows[n]["failed"] == 0 for n in roots), first.stdout  # the others went on
    assert sorted(p.name for p in (project / "reports").glob("*.json")) == [f"{n}.json" for n in roots]
    assert {n: tree_digest(r) for n, r in roots.items()} == digests
    assert "fleet.same-kernel" in first.stdout  # the fleet checks ran at the end

    # 2. --check --diff: each host's preview, nothing changed
    check, _ = playbook(project, "test.ini", "-e", "kvmprep_apply=true", "--check", "--diff")
    assert "install-virtualization-packages" in check.stdout and "apt-get" in check.stdout, check.stdout
    assert check.stdout.count("Plan: 1 fix, 1 action") == 3, check.stdout
    assert {n: tree_digest(r) for n, r in roots.items()} == digests, "--check changed a root"

    # 3. apply; 4. again: changed=0
    applied, rows = playbook(project, "test.ini", "-e", "kvmprep_apply=true")
    assert all(rows[n]["changed"] >= 1 and rows[n]["failed"] == 0 for n in roots), applied.stdout
    for n, root in roots.items():
        report = json.loads((project / "reports" / f"{n}.json").read_text())
        status = {c["id"]: c["status"] for c in report["checks"]}
        assert status["packages.virtualization"] == "pass" and status["services.libvirt"] == "pass", (n, status)
        assert status["packages.tools"] == "fail"  # declined in the answers
    again, rows = playbook(project, "test.ini", "-e", "kvmprep_apply=true")
    assert all(rows[n]["changed"] == 0 for n in list(roots) + ["localhost"]), again.stdout

    # 5. one host with another kernel (through its report): fleet.same-kernel names it
    bad = project / "reports" / "kvm02.json"
    doc = json.loads(bad.read_text())
    doc["host"]["kernel"]["release"] = "6.1.0-99-amd64"
    bad.write_text(json.dumps(doc))
    fleet = subprocess.run([sys.executable, str(project / "kvmprep.pyz"), "fleet", "--profile", "deckhouse",
                            "--format", "json", *sorted(str(p) for p in (project / "reports").glob("*.json"))],
                           capture_output=True, text=True, timeout=120)
    assert fleet.returncode == 1, fleet.stderr
    same = next(c for c in json.loads(fleet.stdout)["fleet"] if c["id"] == "fleet.same-kernel")
    assert same["status"] == "fail" and "kvm02" in json.dumps(same), same


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "a.yaml"
    bad.write_text("kvmprep_answers: 1\nprofile: generic\nfixes: [nope]\n")
    for args in (["--answers", str(bad)], ["--profile", "no-such-profile"],
                 ["--answers", str(bad), "--profile", "generic"]):
        r = subprocess.run([sys.executable, "-m", "app", "ansible", "-o", str(tmp_path / "p"), *args], cwd=TOP,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.startswith("kvmprep: ") and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
