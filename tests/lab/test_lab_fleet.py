"""Issue 10's lab fleet: three booted Debian 12 hosts (systemd-nspawn, sshd on
127.0.0.1) prepared by the real ansible-playbook from ``kvmprep ansible``.

- ``--check --diff`` shows each host's preview and changes nothing (checksums
  of /etc and of the package database of every host);
- a run applies the answers (real apt-get from Debian's archive: libvirt and
  QEMU installed, libvirtd enabled, checked over ssh, not in kvmprep's words);
- a second run reports changed=0 on every host;
- a host whose report names another kernel release makes fleet.same-kernel
  fail with that host named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_run import PLAYBOOK, playbook, tree_digest

pytestmark = pytest.mark.lab


ANSWERS = """kvmprep_answers: 1
profile: generic
fixes: [install-virtualization-packages, enable-libvirt]
declined: [install-tools]
"""


def digest(root: Path) -> str:
    """/etc and the dpkg database of a host's root, hashed (what an apply would change)."""
    return tree_digest(root, ("etc", "var/lib/dpkg/status"))


def test_lab_fleet_with_ansible(lab, installed, tmp_path):
    if PLAYBOOK is None:
        pytest.skip("ansible-core is not installed (pip install '.[test]')")
    hosts = {f"kvm0{i}": lab.boot(f"fleet{i}") for i in (1, 2, 3)}
    answers = tmp_path / "answers.yaml"
    answers.write_text(ANSWERS)
    project = tmp_path / "project"
    r = installed.run("ansible", "-o", str(project), "--answers", str(answers), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [f"{n} ansible_host=127.0.0.1 ansible_port={h.port}" for n, h in hosts.items()]
    (project / "lab.ini").write_text(
        "[kvm_hosts]\n" + "\n".join(lines) + "\n[kvm_hosts:vars]\nansible_user=root\n"
        f"ansible_ssh_private_key_file={lab.key}\nansible_python_interpreter=/usr/bin/python3\n"
        "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n"
        "kvmprep_become=false\n")
    def play(*args):
        # one host at a time: the lab's hosts share one apt archive folder (and its lock)
        return playbook(project, "lab.ini", "--forks", "1", *args)

    before = {n: digest(h.root) for n, h in hosts.items()}
    checked, rows = play()
    assert all(rows[n]["failed"] == 0 for n in hosts), checked.stdout[-4000:]
    preview, rows = play("-e", "kvmprep_apply=true", "--check", "--diff")
    assert preview.stdout.count("install-virtualization-packages: Install") >= 3, preview.stdout[-4000:]
    assert "apt-get" in preview.stdout
    assert {n: digest(h.root) for n, h in hosts.items()} == before, "--check --diff changed a host"

    applied, rows = play("-e", "kvmprep_apply=true")
    assert all(rows[n]["changed"] >= 1 and rows[n]["failed"] == 0 for n in hosts), applied.stdout[-6000:]
    for n, h in hosts.items():  # what really happened, asked of each host
        assert h.ssh("dpkg-query -W -f '${db:Status-Status}' libvirt-daemon-system qemu-system-x86").stdout \
            == "installedinstalled", n
        assert h.ssh("systemctl is-enabled libvirtd").stdout.strip() == "enabled", n
        assert h.ssh("virsh -c qemu:///system version").returncode == 0, n
    again, rows = play("-e", "kvmprep_apply=true")
    assert all(rows[n]["changed"] == 0 for n in list(hosts) + ["localhost"]), again.stdout[-4000:]

    reports = sorted((project / "reports").glob("*.json"))
    assert [p.stem for p in reports] == sorted(hosts)
    doc = json.loads(reports[1].read_text())
    doc["host"]["kernel"]["release"] = "6.1.0-99-amd64"
    reports[1].write_text(json.dumps(doc))
    fleet = installed.run("fleet", "--profile", "deckhouse", "--format", "json", *map(str, reports), cwd=tmp_path)
    assert fleet.returncode == 1, fleet.stderr
    same = next(c for c in json.loads(fleet.stdout)["fleet"] if c["id"] == "fleet.same-kernel")
    assert same["status"] == "fail" and reports[1].stem in json.dumps(same), same
