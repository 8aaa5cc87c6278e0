"""Scenario 2 of issue 9: the SSH session drops while apt installs the packages.

Over a real ssh login (a logind session) the admin runs ``kvmprep apply --fix
install-virtualization-packages --yes``. kvmprep must run the apply in a
transient systemd unit (``systemd-run``), outside the login session, and
follow its output. The session is cut while dpkg is unpacking:

- ``loginctl terminate-session ID``: logind kills every process of the
  session's scope (the ssh client sees the connection end: status 255);
- killing the ssh client: the connection is gone without a word.

the first as root, the second through ``sudo`` (how the README tells an admin
to run it; sudo drops SSH_CONNECTION from the environment, and kvmprep used to
apply in the session then, which the dropped connection killed mid-dpkg).

The same for the wizard's apply (the session terminated under it).

Then the real outcomes: apt-get was running in the unit's cgroup, not the
session's; the unit ran to its end and exited 0; a new session's ``kvmprep
apply --attach`` shows the whole output, plan to result; dpkg has every
package installed and nothing half-configured; libvirtd is active.
"""

from __future__ import annotations

import re

import pytest

from lab_root import ADMIN
from lab_state import Phases, wait_until
from lab_wizard import to_the_apply

pytestmark = pytest.mark.lab

PACKAGES = ("qemu-system-x86", "libvirt-daemon-system", "libvirt-clients", "virtinst", "qemu-utils", "dnsmasq-base", "ovmf",
            "bridge-utils")


def _processes(host, pattern: str) -> list:
    """PIDs (in the container) of processes whose command line matches ``pattern``."""
    r = host.nsenter("pgrep", "-f", "--", pattern)
    return [int(p) for p in r.stdout.split()]


def _cgroup(host, pid: int) -> str:
    return host.nsenter("cat", f"/proc/{pid}/cgroup").stdout


def _alive(host, pid: int) -> bool:
    return host.nsenter("test", "-e", f"/proc/{pid}").returncode == 0


@pytest.mark.parametrize("cut,user", [("terminate-session", "root"), ("kill-client", "sudo")])
def test_apply_survives_the_ssh_session(lab, tmp_path, cut, user):
    phase = Phases(f"ssh drop ({cut}, {user})")
    host = lab.boot(f"drop-{cut[:4]}-{user}")
    login = "root" if user == "root" else "admin"
    pyz = lab.put_kvmprep(host, user=login)
    run = f"/usr/bin/python3 {pyz}" if user == "root" else f"sudo /usr/bin/python3 {pyz}"
    out = tmp_path / "client.out"
    with open(out, "wb") as fh:
        client = host.popen_ssh(f"{run} apply --fix install-virtualization-packages --yes", user=login, stdout=fh)

    # dpkg is unpacking: the moment an interrupted apply would do the most harm
    wait_until(lambda: "Unpacking " in out.read_text(errors="replace") or client.poll() is not None,
               "dpkg to start unpacking", timeout=240)
    assert client.poll() is None, "the ssh client ended before the cut:\n" + out.read_text(errors="replace")
    apt = _processes(host, "apt-get .*install")
    assert apt, "no apt-get install process while dpkg unpacks"
    unit = re.search(r"/(kvmprep-apply-[0-9-]+\.service)", _cgroup(host, apt[0]))
    assert unit, f"apt-get does not run in a kvmprep-apply unit:\n{_cgroup(host, apt[0])}"
    followers = [p for p in _processes(host, "kvmprep.pyz apply --fix") if p not in apt]
    assert followers, "no kvmprep following the apply in the ssh session"
    session = re.search(r"/session-(\d+)\.scope", _cgroup(host, followers[0]))
    assert session, f"the ssh command is not in a logind session:\n{_cgroup(host, followers[0])}"

    phase("boot, start the apply, wait for dpkg to unpack")
    if cut == "terminate-session":
        host.nsenter("loginctl", "terminate-session", session.group(1))
        assert client.wait(30) == 255, "the ssh client did not see its session end"
    else:
        client.kill()
        client.wait(10)
    # the drop reached the server: the session's kvmprep is gone
    wait_until(lambda: not any(_alive(host, p) for p in followers), "the cut session's kvmprep to end", timeout=60)
    assert _processes(host, "apt-get .*install") or _unit_done(host, unit.group(1)), \
        "the apply stopped with the session"

    phase("cut the session")
    attach = host.ssh(f"{run} apply --attach", user=login, timeout=600)
    phase("apply --attach until the apply ends")
    assert attach.returncode == 0, attach.stdout + attach.stderr
    text = attach.stdout
    # the whole output, from the plan to the result
    assert "[1] install-virtualization-packages" in text, text[:2000]
    assert "Unpacking " in text and "Setting up libvirt-daemon-system" in text, text[-3000:]
    assert "Result:" in text and "check packages.virtualization: PASS" in text, text[-3000:]

    wait_until(lambda: _unit_done(host, unit.group(1)), f"{unit.group(1)} to end", timeout=60)
    log = host.ssh(f"journalctl --no-pager -o cat -u {unit.group(1)}", check=True).stdout
    assert "Deactivated successfully" in log, log  # the unit's process exited 0

    status = host.ssh("dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " + " ".join(PACKAGES), check=True)
    for name in PACKAGES:
        assert f"{name} ii " in status.stdout, status.stdout
    audit = host.ssh("dpkg --audit", check=True)
    assert audit.stdout.strip() == "", "half-installed packages:\n" + audit.stdout
    assert host.ssh("systemctl is-active libvirtd.service").stdout.strip() == "active"


def test_wizard_apply_survives_the_ssh_session(lab, terminal):
    """The wizard's apply, under sudo over ``ssh -t``: the session is
    terminated while dpkg unpacks. README: "quitting, or losing the SSH
    connection, does not stop it (kvmprep apply --attach follows it again)"."""
    phase = Phases("ssh drop (wizard, terminate-session)")
    host = lab.boot("drop-wizard")
    pyz = lab.put_kvmprep(host, user=ADMIN)
    t = terminal(host.ssh_argv(f"sudo /usr/bin/python3 {pyz}", user=ADMIN, tty=True))
    to_the_apply(t)
    t.wait_for(lambda s: "Unpacking " in s, "dpkg to start unpacking", timeout=240)
    apt = _processes(host, "apt-get .*install")
    assert apt, "no apt-get install process while dpkg unpacks"
    unit = re.search(r"/(kvmprep-apply-[0-9-]+\.service)", _cgroup(host, apt[0]))
    assert unit, f"the wizard's apt-get does not run in a kvmprep-apply unit:\n{_cgroup(host, apt[0])}"
    wizard = _processes(host, f"python3 {pyz}$")
    session = re.search(r"/session-(\d+)\.scope", _cgroup(host, wizard[0])) if wizard else None
    assert session, "the wizard is not in a logind session"
    phase("boot, the wizard to its apply, dpkg unpacking")

    host.nsenter("loginctl", "terminate-session", session.group(1))
    t.wait_exit(timeout=30)
    wait_until(lambda: not any(_alive(host, p) for p in wizard), "the wizard to end with its session", timeout=60)
    attach = host.ssh(f"sudo /usr/bin/python3 {pyz} apply --attach", user=ADMIN, timeout=600)
    phase("cut the session, apply --attach until the apply ends")
    assert attach.returncode == 0, attach.stdout[-3000:] + attach.stderr
    assert "Setting up libvirt-daemon-system" in attach.stdout and "Result:" in attach.stdout, attach.stdout[-3000:]
    wait_until(lambda: _unit_done(host, unit.group(1)), f"{unit.group(1)} to end", timeout=60)
    log = host.ssh(f"journalctl --no-pager -o cat -u {unit.group(1)}", check=True).stdout
    assert "Deactivated successfully" in log, log
    status = host.ssh("dpkg-query -W -f='${Package} ${db:Status-Abbrev}\\n' " + " ".join(PACKAGES), check=True)
    for name in PACKAGES:
        assert f"{name} ii " in status.stdout, status.stdout
    assert host.ssh("dpkg --audit", check=True).stdout.strip() == ""
    assert {"kvm", "libvirt"} <= set(host.ssh(f"id -nG {ADMIN}", check=True).stdout.split())


def _unit_done(host, unit: str) -> bool:
    state = host.nsenter("systemctl", "is-active", unit).stdout.strip()
    return state in ("inactive", "failed", "unknown")
