"""Issue #3's "done when", through the CLI an admin types, on AlmaLinux 8 and
Debian 12 roots built here with real stub repositories:

    kvmprep plan --root R --fix ... -o plan.yaml
    kvmprep apply plan.yaml --root R --yes      -> installs the stack, writes the module
                                           and SELinux files, enables libvirt
    kvmprep check --root R              -> those checks pass
    kvmprep undo --root R --yes         -> every file back, byte for byte
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pkgroots import (  # noqa: F401  (session fixtures)
    debian_root, deb_repo, dpkg_install, dpkg_installed, el_root, require, rpm_install, rpm_installed,
    rpm_repo, systemctl,
)

TOP = Path(__file__).resolve().parent.parent
FIXTURES = TOP / "tests" / "fixtures"
RELEASE = os.uname().release  # modprobe -d ROOT looks under ROOT/lib/modules/$(uname -r)
FIXES = "install-virtualization-packages,load-kvm-modules,enable-nested,disable-selinux,enable-libvirt"
SELINUX = ("# This file controls the state of SELinux on the system.\n"
           "# SELINUX= can take one of these three values:\n"
           "SELINUX=enforcing\n"
           "# SELINUXTYPE= can take one of these two values:\n"
           "SELINUXTYPE=targeted\n")
CHECKS = ["packages.virtualization", "services.libvirt", "kvm.modules", "kvm.nested", "security.selinux"]


@pytest.fixture
def kvmprep(installed, tmp_path):
    """The ``kvmprep`` script of the non-editable install (tests/installed.py), run
    outside the source tree as an admin would."""
    def run(*args):
        r = installed.run(*args, cwd=tmp_path)
        assert "Traceback" not in r.stderr, r.stderr
        return r

    return run


def snapshot(root: Path) -> dict[str, bytes | str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root / "etc"):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            out[rel] = ("-> " + os.readlink(p)) if os.path.islink(p) else Path(p).read_bytes()
    return out


def build(family, path: Path, rpm_repo, deb_repo) -> Path:
    require("modprobe", "depmod", "systemctl", "augtool")
    if family == "el":
        require("dnf", "rpm")
        el_root(path, rpm_repo)
        rpm_install(path, rpm_repo, ["libvirt-client"])
    else:
        require("apt-get", "dpkg")
        debian_root(path, deb_repo)
        dpkg_install(path, deb_repo, ["libvirt-clients"])
    (path / "proc").mkdir(exist_ok=True)
    (path / "proc/cpuinfo").write_text((FIXTURES / "cpu/x86_64-64cpu-linux6.2/proc/cpuinfo").read_text())
    (path / "proc/version").write_text(f"Linux version {RELEASE} (builder@) (gcc) #1 SMP\n")
    mods = path / "lib/modules" / RELEASE / "kernel"
    for rel in ("arch/x86/kvm/kvm.ko", "arch/x86/kvm/kvm-intel.ko", "arch/x86/kvm/kvm-amd.ko",
                "drivers/net/tun.ko", "drivers/vhost/vhost_net.ko"):
        (mods / rel).parent.mkdir(parents=True, exist_ok=True)
        (mods / rel).write_bytes(b"")
    subprocess.run(["depmod", "-b", str(path), RELEASE], capture_output=True)
    (path / "etc/selinux").mkdir(parents=True, exist_ok=True)
    (path / "etc/selinux/config").write_text(SELINUX)
    return path


@pytest.fixture
def profile_file(tmp_path):
    """The admin's profile: generic, with SELinux wanted off (as VMmanager asks)."""
    f = tmp_path / "site.yaml"
    f.write_text("name: site\nextends: generic\nchecks:\n  security.selinux: {severity: required, want: disabled}\n")
    return str(f)


@pytest.mark.parametrize("family", ["el", "debian"])
def test_plan_apply_check_undo(family, tmp_path, rpm_repo, deb_repo, profile_file, kvmprep):
    root = build(family, tmp_path / "root", rpm_repo, deb_repo)
    before = snapshot(root)
    plan_file = tmp_path / "plan.yaml"

    r = kvmprep("plan", "--root", str(root), "--profile", profile_file, "--fix", FIXES, "-o", str(plan_file))
    assert r.returncode == 0, r.stderr
    for needle in ("+SELINUX=disabled", "+options kvm_intel nested=1", "+++ b/etc/modules-load.d/kvm.conf",
                   "--installroot" if family == "el" else "Dir=", "enable-libvirt: nothing to do"):
        assert needle in r.stdout, needle

    r = kvmprep("apply", str(plan_file), "--root", str(root), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Now that the packages are installed" in r.stdout  # enable-libvirt's second round

    # installed for real, enabled for real, files the real tools read
    if family == "el":
        assert {"qemu-kvm", "libvirt", "virt-install"} <= set(rpm_installed(root))
    else:
        assert {"qemu-system-x86", "libvirt-daemon-system", "virtinst"} <= set(dpkg_installed(root))
    assert systemctl(root, "is-enabled", "libvirtd.service").strip() == "enabled"
    show = subprocess.run(["modprobe", "-d", str(root), "-C", str(root / "etc/modprobe.d"),
                           "--show-depends", "kvm_intel"], capture_output=True, text=True)
    assert "nested=1" in show.stdout, show.stdout + show.stderr
    aug = subprocess.run(["augtool", "-r", str(root), "get", "/files/etc/selinux/config/SELINUX"],
                         capture_output=True, text=True)
    assert aug.stdout.strip().endswith("= disabled"), aug.stdout
    assert (root / "etc/selinux/config").read_text() == SELINUX.replace("SELINUX=enforcing", "SELINUX=disabled")

    r = kvmprep("check", "--root", str(root), "--profile", profile_file, "--format", "json")
    status = {c["id"]: c["status"] for c in json.loads(r.stdout)["checks"]}
    assert {c: status[c] for c in CHECKS} == {c: "pass" for c in CHECKS}, r.stdout

    # a fresh plan after the apply is empty
    r = kvmprep("plan", "--root", str(root), "--profile", profile_file, "--fix", FIXES)
    assert "Nothing to do: the plan is empty." in r.stdout, r.stdout

    r = kvmprep("undo", "--root", str(root), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed by this apply and left in place" in r.stdout
    after = snapshot(root)
    changed = {p for p in before if after.get(p) != before[p]}
    added = set(after) - set(before)
    assert changed == set(), changed
    # only what the packages themselves put under /etc may remain
    assert not [p for p in added if "kvm" in p or "selinux" in p or "modprobe" in p or ".wants" in p], added
