"""Scenario 1 of issue 9: a fresh Debian 12 server, prepared over real SSH.

The admin copies kvmprep.pyz to the server and runs ``sudo python3
kvmprep.pyz`` in ``ssh -t`` (tmux, 80x24, TERM=linux): detect, fixes,
preview, confirm, apply the default selection. Then, judged by the server
itself, not by kvmprep's words:

- libvirt is active, ``virsh -c qemu:///system`` answers, and the admin is in
  groups kvm and libvirt, so that virsh works for them without sudo;
- ``kvmprep check`` passes every required check, and what a container cannot
  have (kernel modules: it shares this machine's kernel) is not claimed;
- after a reboot, libvirt comes up again.

From that applied state (the powered-off root, copied twice):

- ``kvmprep undo`` brings /etc back: every file kvmprep wrote is byte for byte
  what it was, the admin's groups are what they were, and anything else in
  /etc that differs from before is something the packages' own installation
  changes. "The packages' own installation" is measured, not listed: a third
  fresh host installs exactly the packages the apply added, with apt-get
  alone (without Recommends, as kvmprep does), and what that changes in its /etc is what undo may leave (plain undo
  leaves the packages installed), plus the SysV kill links of services whose
  start links that made (undo disables what the packages enabled; for a
  service with an init script, Debian records "disabled" as K links);
- ``kvmprep undo --remove-packages`` leaves exactly the packages there were
  before (every package the apply added is gone, dependencies included) and
  no libvirt unit enabled.
"""

from __future__ import annotations

import json

import pytest

from lab_root import ADMIN
from lab_state import (
    Phases, changed, enabled_libvirt_units, etc_state, explained_by, files_kvmprep_wrote, groups_of,
    installed_packages, journal_records,
)
from lab_wizard import to_the_apply, to_the_end
from terminal import non_ascii

pytestmark = pytest.mark.lab


def test_fresh_server_over_ssh_wizard_apply_and_undo(lab, terminal):
    phase = Phases("fresh server")
    host = lab.boot("fresh")
    pyz = lab.put_kvmprep(host, user=ADMIN)
    etc0, packages0, groups0 = etc_state(host), installed_packages(host), groups_of(host, ADMIN)
    phase("boot, copy kvmprep.pyz, record /etc and packages")
    assert "libvirt" not in groups0 and "libvirt-daemon-system" not in packages0

    t = terminal(host.ssh_argv(f"sudo /usr/bin/python3 {pyz}", user=ADMIN, tty=True))
    to_the_apply(t)
    to_the_end(t)
    phase("the wizard: detect, fixes, preview, confirm, apply")

    assert_kvm_host(host)
    assert_check_verdict(host, pyz)
    packages1 = installed_packages(host)
    added = sorted(set(packages1) - set(packages0))
    assert {"qemu-system-x86", "libvirt-daemon-system"} <= set(added), added
    applied = host.root
    host.poweroff()
    phase("check the outcomes, power off")

    # ---- kvmprep undo: /etc as it was, but for what the packages did themselves
    undo = lab.boot("undo", root=applied)
    assert undo.ssh("systemctl is-active libvirtd.service").stdout.strip() == "active", "not active after a reboot"
    written = files_kvmprep_wrote(journal_records(undo))
    assert written, "the journal names no file kvmprep wrote (add-hosts-entry writes /etc/hosts here)"
    r = undo.ssh(f"/usr/bin/python3 {pyz} undo --yes")
    assert r.returncode == 0, r.stdout + r.stderr
    etc2 = etc_state(undo)
    phase("reboot a copy, kvmprep undo")
    assert groups_of(undo, ADMIN) == groups0
    for path in written:
        assert etc2.get(path) == etc0.get(path), f"{path}, written by kvmprep, is not what it was before the apply"
    by_packages = changes_of_installing(lab, added)
    phase("reference host: apt-get install of the same packages")
    left = sorted(p for p in changed(etc0, etc2) if not explained_by(p, by_packages))
    assert not left, "undo left /etc changes that installing the packages does not make:\n" + "\n".join(
        f"  {p}: before {etc0.get(p)}, after undo {etc2.get(p)}" for p in left)
    undo.poweroff()

    # ---- kvmprep undo --remove-packages: the packages there were, no libvirt unit enabled
    remove = lab.boot("remove", root=applied)
    r = remove.ssh(f"/usr/bin/python3 {pyz} undo --remove-packages --yes", timeout=600)
    phase("reboot another copy, kvmprep undo --remove-packages")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr
    packages3 = installed_packages(remove)
    still = sorted(set(packages3) - set(packages0))
    gone = sorted(set(packages0) - set(packages3))
    assert not still and not gone, (f"{len(still)} packages the apply added are still installed: {still[:40]}; "
                                    f"removed that were there before: {gone}")
    assert packages3 == packages0  # versions too
    assert enabled_libvirt_units(remove) == []
    etc3 = etc_state(remove)
    for path in written:
        assert etc3.get(path) == etc0.get(path), f"{path}, written by kvmprep, is not what it was before the apply"
    assert groups_of(remove, ADMIN) == groups0

    # last, so that a stray glyph does not hide the outcomes above; the apply log
    # quotes commands (systemctl's "Created symlink a -> b" is an arrow in UTF-8)
    bad = [(non_ascii(f), f) for f in t.frames if non_ascii(f)]
    assert not bad, f"non-ASCII on a TERM=linux screen: {bad[0][0]}\n{bad[0][1]}"


def assert_kvm_host(host) -> None:
    active = {u: host.ssh(f"systemctl is-active {u}").stdout.strip()
              for u in ("libvirtd.service", "virtqemud.socket", "virtqemud.service")}
    assert active["libvirtd.service"] == "active" or active["virtqemud.socket"] == "active", active
    version = host.ssh("virsh -c qemu:///system version", check=True).stdout
    assert "Using library: libvirt" in version and "Running hypervisor: QEMU" in version, version
    groups = groups_of(host, ADMIN)
    assert {"kvm", "libvirt"} <= groups, groups
    # what the groups are for: the admin reaches qemu:///system without sudo (a new login)
    mine = host.ssh("virsh -c qemu:///system list --all", user=ADMIN)
    assert mine.returncode == 0, mine.stdout + mine.stderr


def assert_check_verdict(host, pyz: str) -> None:
    """``kvmprep check`` through sudo (so that it judges the admin, as the
    wizard did): every required check passes; what the container cannot have
    is not claimed."""
    r = host.ssh(f"sudo /usr/bin/python3 {pyz} check --format json", user=ADMIN)
    doc = json.loads(r.stdout)
    checks = {c["id"]: c for c in doc["checks"]}
    failing = [f"{c['id']}: {c['status']}: {c['detail']}" for c in checks.values()
               if c["severity"] == "required" and c["status"] != "pass"]
    assert not failing, "\n".join(failing)
    assert r.returncode == 0 and doc["summary"]["ready"] is True, doc["summary"]
    for cid in ("packages.virtualization", "services.libvirt", "kvm.usable", "user.groups"):
        assert checks[cid]["status"] == "pass", checks[cid]
    # the container runs this machine's kernel: its kvm is built in (no initstate), never "loaded"
    modules = checks["kvm.modules"]
    built_in = host.ssh("test -e /sys/module/kvm && ! test -e /sys/module/kvm/initstate").returncode == 0
    if modules["status"] == "pass":
        assert built_in and "built in" in modules["detail"], modules
    else:
        assert modules["status"] in ("skip", "warn"), modules
    assert checks["os.bare-metal"]["status"] == "warn" and "container" in checks["os.bare-metal"]["detail"]


def changes_of_installing(lab, packages) -> set:
    """Paths of /etc that installing ``packages`` with apt-get alone changes, on a fresh host."""
    ref = lab.boot("reference")
    before = etc_state(ref)
    ref.ssh("DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -q --no-install-recommends -- " + " ".join(packages), timeout=900, check=True)
    after = etc_state(ref)
    ref.poweroff()
    return changed(before, after)
