"""The lab itself: what the scenarios rely on holds on a booted host.

systemd is PID 1 and the system is up, an ssh login is a logind session
(what the SSH-drop scenario cuts), the admin has sudo, the kvmprep.pyz an
admin copies in runs on the host's own Python, and power-off leaves none of
the host's processes behind.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.lab


def test_booted_host_over_ssh_and_power_off(lab):
    host = lab.boot("harness")
    assert host.ssh("ps -p 1 -o comm=", check=True).stdout.strip() == "systemd"
    assert host.ssh("systemctl is-system-running").stdout.strip() in ("running", "degraded")
    session = host.ssh('loginctl show-session "$XDG_SESSION_ID" -p Remote -p Service --value', check=True)
    assert session.stdout.split() == ["yes", "sshd"], session.stdout
    assert host.ssh("sudo -n id -u", user="admin", check=True).stdout.strip() == "0"
    assert host.ssh("python3 -c 'import sys; print(sys.version_info[:2])'", check=True).stdout.strip() == "(3, 11)"

    pyz = lab.put_kvmprep(host)
    r = host.ssh(f"/usr/bin/python3 {pyz} --version", check=True)
    assert "kvmprep" in r.stdout, r.stdout

    nspawn, init = host.proc.pid, host.init_pid
    host.poweroff()
    assert host.proc.returncode is not None
    for pid in (nspawn, init):
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid), f"pid {pid} is still running"


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
