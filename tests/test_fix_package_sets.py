"""An install is the whole set the package manager added, and the units its
packages enabled: the apply records both, undo takes both back.

Found on a real Debian 12: ``apply --fix install-virtualization-packages,enable-libvirt``
installed 419 packages for 5 named; ``undo --remove-packages`` ran ``dpkg --remove``
on the 5, dpkg refused ("qemu-system-gui depends on qemu-system-x86", pulled in by
apt) and qemu stayed; libvirtd, enabled by the package's postinst, stayed enabled.

Here with the real tools on throwaway roots, from stub repositories shaped like
that: a named package depends on one that depends on a third, a package pulled
in depends back on a named one (a dependency cycle on Debian, a metapackage on EL), a
Recommends that kvmprep's apt-get does not install (EL's weak dependencies it does), and
the libvirt daemon package ships the enablement link a postinst
``deb-systemd-helper enable`` (or rpm's preset) leaves. What is installed is
asked of dpkg-query --admindir / rpm --root, never of kvmprep's words.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checks import pkgdb
from checks.facts import Facts
from checks.host import Host
from pkgroots import (SYSTEMD_DIR_DEB, SYSTEMD_DIR_EL, LIBVIRTD_SERVICE, LIBVIRTD_SOCKET, Stub,
                      build_deb_repo, build_rpm_repo, debian_root, dpkg_install, dpkg_installed, dpkg_remove,
                      el_root, require, rpm_erase, rpm_install, rpm_installed, run, systemctl)
from remediations.executor import apply_plan, undo_last
from remediations.plan import build_plan, render_preview

TOP = Path(__file__).resolve().parent.parent
VIRT = "install-virtualization-packages"
WANTS = "/etc/systemd/system/multi-user.target.wants/libvirtd.service"


def _daemon(name: str, unit_dir: str, **kw) -> Stub:
    """The libvirt daemon package: its units and the link its postinst/preset leaves."""
    return Stub(name, "9.0.0", files={f"{unit_dir}/libvirtd.service": LIBVIRTD_SERVICE,
                                      f"{unit_dir}/libvirtd.socket": LIBVIRTD_SOCKET},
                links={WANTS: f"{unit_dir}/libvirtd.service"}, **kw)


DEB_STUBS = [
    # qemu-system-gui is pulled in as a dependency here (Debian: a Recommends, which kvmprep's
    # apt-get no longer installs); virt-viewer stays a Recommends that must not be installed
    Stub("qemu-system-x86", "1:7.2+dfsg-7", requires=("qemu-system-common", "qemu-system-gui")),
    Stub("qemu-system-common", "1:7.2+dfsg-7", requires=("qemu-system-data",)),
    Stub("qemu-system-data", "1:7.2+dfsg-7"),
    Stub("qemu-system-gui", "1:7.2+dfsg-7", requires=("qemu-system-x86",)),  # the package dpkg tripped on
    Stub("libvirt-daemon-system", "9.0.0-4", requires=("libvirt-daemon", "libvirt-clients")),
    _daemon("libvirt-daemon", SYSTEMD_DIR_DEB),
    Stub("libvirt-clients", "9.0.0-4"),  # installed before the apply: stays
    Stub("virtinst", "1:4.1.0-2", recommends=("virt-viewer",)),
    Stub("virt-viewer", "11.0-3"),
    Stub("qemu-utils", "1:7.2+dfsg-7"),
    Stub("dnsmasq-base", "2.90-4"),
    Stub("ovmf", "2022.11-6"),
    Stub("bridge-utils", "1.7.1-1"),
    Stub("virt-manager", "1:4.1.0-2", requires=("virtinst",)),  # the admin installs it after the apply
]
DEB_MISSING = ["qemu-system-x86", "libvirt-daemon-system", "virtinst", "qemu-utils", "dnsmasq-base", "ovmf", "bridge-utils"]
DEB_ADDED = sorted(DEB_MISSING + ["qemu-system-common", "qemu-system-data", "qemu-system-gui", "libvirt-daemon"])

EL_STUBS = [
    Stub("qemu-kvm", "6.2.0", requires=("qemu-kvm-core",)),
    Stub("qemu-kvm-core", "6.2.0", requires=("qemu-kvm-common",)),
    Stub("qemu-kvm-common", "6.2.0"),
    Stub("qemu-kvm-ui-opengl", "6.2.0", requires=("qemu-kvm",)),
    Stub("libvirt", "8.0.0", requires=("libvirt-daemon", "qemu-kvm-ui-opengl", "libvirt-client")),  # a metapackage
    _daemon("libvirt-daemon", SYSTEMD_DIR_EL),
    Stub("libvirt-client", "8.0.0"),
    Stub("virt-install", "3.2.0"),
    Stub("virt-manager", "3.2.0", requires=("virt-install",)),
]
EL_MISSING = ["qemu-kvm", "libvirt", "virt-install"]
EL_ADDED = sorted(EL_MISSING + ["qemu-kvm-core", "qemu-kvm-common", "qemu-kvm-ui-opengl", "libvirt-daemon"])
BEFORE = {"debian": "libvirt-clients", "el": "libvirt-client"}


@pytest.fixture(scope="session")
def set_repos(tmp_path_factory) -> dict[str, Path]:
    require("dpkg-deb", "dpkg-scanpackages", "rpmbuild", "createrepo_c")
    return {"debian": build_deb_repo(tmp_path_factory.mktemp("debsets"), DEB_STUBS),
            "el": build_rpm_repo(tmp_path_factory.mktemp("rpmsets"), EL_STUBS)}


@pytest.fixture(params=["debian", "el"])
def family(request) -> str:
    return request.param


def make_root(path: Path, family: str, repos) -> Path:
    require("systemctl", *(("apt-get", "dpkg") if family == "debian" else ("dnf", "rpm")))
    if os.geteuid() != 0:
        pytest.skip("apply and undo need root")
    if family == "debian":
        debian_root(path, repos["debian"])
        dpkg_install(path, repos["debian"], [BEFORE["debian"]])
    else:
        el_root(path, repos["el"])
        rpm_install(path, repos["el"], [BEFORE["el"]])
    return path


def installed(path: Path, family: str) -> set[str]:
    """What the root's own database says (dpkg-query --admindir / rpm --root -qa)."""
    return set(dpkg_installed(path) if family == "debian" else rpm_installed(path))


def added_of(family: str) -> list[str]:
    return DEB_ADDED if family == "debian" else EL_ADDED


def kvmprep(*args):
    env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    r = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                       env=env, stdin=subprocess.DEVNULL, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def journal(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "var/lib/kvmprep/journal").read_text().splitlines()]


def install_after(path: Path) -> dict:
    """The journal's "after" state of the install action."""
    records = journal(path)
    start = next(r for r in records if r["event"] == "start")
    steps = start["plan"]["steps"]
    key = next((si, ai) for si, s in enumerate(steps) for ai, a in enumerate(s["actions"])
               if a["kind"] == "install-packages")
    return next(r for r in records if r["event"] == "after" and (r["step"], r["action"]) == key
                and r["apply"] == start["apply"])["after"]


def enabled(path: Path, unit: str = "libvirtd.service") -> str:
    return systemctl(path, "is-enabled", unit).strip()


def apply_cli(path: Path) -> subprocess.CompletedProcess:
    r = kvmprep("apply", "--root", str(path), "--fix", f"{VIRT},enable-libvirt", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    return r


# ------------------------------------------------------------------ the defect, end to end


def test_apply_records_every_package_added_and_undo_removes_them_all(tmp_path, family, set_repos):
    path = make_root(tmp_path / "root", family, set_repos)
    r = apply_cli(path)
    added = added_of(family)
    assert set(added) <= installed(path, family)
    after = install_after(path)
    assert after["added"] == added  # dependencies, and the dependent pulled in, included
    if family == "debian":  # installed without Recommends: no virt-viewer on a server
        assert "virt-viewer" not in installed(path, family)
    assert after["enabled_units"] == ["libvirtd.service"]
    assert enabled(path) == "enabled"
    assert f"added {len(added)} packages (" in r.stdout
    assert "the packages enabled these units on their own: libvirtd.service" in r.stdout
    assert "enable-libvirt: nothing to do (libvirtd (monolithic) is already enabled)" in r.stdout

    u = kvmprep("undo", "--root", str(path), "--yes", "--remove-packages")
    assert u.returncode == 0, u.stdout + u.stderr
    have = installed(path, family)
    assert not set(added) & have, set(added) & have
    assert BEFORE[family] in have  # installed before the apply (and a dependency of an added one): stays
    assert not (path / WANTS.lstrip("/")).is_symlink()
    assert f"removed in one transaction: {len(added)} packages" in u.stdout
    assert "disabled libvirtd.service (enabled by the packages themselves)" in u.stdout


def test_plain_undo_disables_the_units_and_gives_the_command_that_removes_every_package(tmp_path, family,
                                                                                         set_repos):
    path = make_root(tmp_path / "root", family, set_repos)
    apply_cli(path)
    added = added_of(family)
    u = kvmprep("undo", "--root", str(path), "--yes")
    assert u.returncode == 0, u.stdout + u.stderr
    assert set(added) <= installed(path, family)  # left in place
    assert enabled(path) == "disabled"  # enabled by this apply's packages: disabled again
    assert f"left in place: {len(added)} packages (asked for: " in u.stdout
    undone = next(r for r in journal(path) if r["event"] == "undone" and "details" in r)
    assert undone["details"]["left_in_place"] == added
    argv = undone["details"]["removal_command"]
    assert argv[-len(added):] == added
    if family == "el":
        # this machine's rpm keeps its database elsewhere: the command needs the root's
        assert "with HOME at a directory whose .rpmmacros says %_dbpath /var/lib/rpm" in u.stdout
        return
    assert argv[:3] == ["apt-get", "-o", f"Dir={path}"] and argv[-len(added) - 3:-len(added)] == ["remove", "-y", "--"]
    assert " ".join(argv) in u.stdout
    # the command undo gave removes them all, in one go
    run(argv, env={"DEBIAN_FRONTEND": "noninteractive"})
    assert not set(added) & installed(path, family)
    assert BEFORE[family] in installed(path, family)


def test_packages_gone_since_are_left_out_and_dependents_installed_since_are_reported(tmp_path, family,
                                                                                       set_repos):
    path = make_root(tmp_path / "root", family, set_repos)
    apply_cli(path)
    gone = "bridge-utils" if family == "debian" else "qemu-kvm-common"
    if family == "debian":
        dpkg_remove(path, [gone])
        dpkg_install(path, set_repos["debian"], ["virt-manager"])
    else:
        rpm_erase(path, [gone])
        rpm_install(path, set_repos["el"], ["virt-manager"])
    u = undo_last(Host(path), remove_packages=True)
    assert u.ok, u.left
    text = "\n".join(u.reverted)
    assert f"no longer installed (removed since the apply), left out: {gone}" in text
    assert "the package manager also removed 1 package installed since that depend on them: virt-manager" in text
    have = installed(path, family)
    assert not (set(added_of(family)) | {"virt-manager"}) & have
    assert BEFORE[family] in have


def test_what_the_removal_leaves_fails_the_undo_and_is_named(tmp_path, set_repos):
    """A held package: apt-get refuses the transaction; undo says what is still
    installed, exits non-zero, and the next undo (hold released) finishes it."""
    path = make_root(tmp_path / "root", "debian", set_repos)
    apply_cli(path)
    selections = ["dpkg", f"--admindir={path}/var/lib/dpkg", "--set-selections"]
    subprocess.run(selections, input="qemu-system-gui hold\n", text=True, check=True)
    u = kvmprep("undo", "--root", str(path), "--yes", "--remove-packages")
    assert u.returncode == 1, u.stdout + u.stderr
    assert f"still installed: {len(DEB_ADDED)} of the {len(DEB_ADDED)} packages this apply installed: " in u.stdout
    assert ("(apt-get remove exited with status 100: E: Held packages were changed and -y was used "
            "without --allow-change-held-packages.)") in u.stdout
    assert set(DEB_ADDED) <= installed(path, "debian")
    subprocess.run(selections, input="qemu-system-gui install\n", text=True, check=True)
    again = kvmprep("undo", "--root", str(path), "--yes", "--remove-packages")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not set(DEB_ADDED) & installed(path, "debian")


def test_a_journal_without_the_added_set_still_undoes_through_the_resolver(tmp_path, set_repos):
    """A journal written before "added" existed names only the packages asked
    for: apt-get remove takes what depends on them along (dpkg --remove refused)."""
    path = make_root(tmp_path / "root", "debian", set_repos)
    apply_cli(path)
    f = path / "var/lib/kvmprep/journal"
    records = journal(path)
    for r in records:
        for state in ("before", "after"):
            if isinstance(r.get(state), dict) and "installed" in r[state]:
                r[state] = {"installed": r[state]["installed"]}
    f.write_text("".join(json.dumps(r) + "\n" for r in records))
    u = undo_last(Host(path), remove_packages=True)
    assert u.ok, u.left
    have = installed(path, "debian")
    assert not set(DEB_MISSING + ["qemu-system-gui"]) & have
    assert "also removed 1 package installed since that depend on them: qemu-system-gui" in "\n".join(u.reverted)


@pytest.mark.parametrize("field, bad, says", [
    ("added", "-oAPT::Get::Remove=0", "starts with '-'"),
    ("added", "../x", "is not a Debian package name"),
    ("enabled_units", "../../etc/passwd", "is not a unit name"),
])
def test_a_bad_name_in_the_journal_is_refused_and_nothing_is_touched(tmp_path, set_repos, field, bad, says):
    path = make_root(tmp_path / "root", "debian", set_repos)
    apply_cli(path)
    f = path / "var/lib/kvmprep/journal"
    records = journal(path)
    for r in records:
        if r["event"] == "after" and field in r["after"]:
            r["after"][field].append(bad)
    f.write_text("".join(json.dumps(r) + "\n" for r in records))
    u = kvmprep("undo", "--root", str(path), "--yes", "--remove-packages")
    assert u.returncode == 1, u.stdout + u.stderr
    line = next(l for l in u.stdout.splitlines() if "NOT reverted: install " in l)
    assert "the journal's record of this install is not what kvmprep writes" in line and says in line
    assert "nothing removed or disabled" in line
    assert set(DEB_ADDED) <= installed(path, "debian")
    assert enabled(path) == "enabled"


# ------------------------------------------------------------------ the plan says it


def test_the_plan_says_what_the_packages_enable_on_their_own(tmp_path, set_repos):
    path = make_root(tmp_path / "deb", "debian", set_repos)
    host = Host(path)
    preview = render_preview(build_plan(host, Facts(host), None, [VIRT]))
    assert ("note: Debian's packages enable their services on install: libvirt-daemon-system enables "
            "libvirtd; the apply records the units they enable, and undo disables them again") in preview

    el = make_root(tmp_path / "el", "el", set_repos)
    (el / "usr/lib/systemd/system-preset").mkdir(parents=True)
    (el / "usr/lib/systemd/system-preset/90-default.preset").write_text("enable libvirtd.service\n")
    host = Host(el)
    preview = render_preview(build_plan(host, Facts(host), None, [VIRT]))
    assert "note: the root's presets enable libvirtd.service when their packages install" in preview


# ------------------------------------------------------------------ the listing


def test_installed_names_lists_every_package_present_in_one_go(tmp_path, set_repos):
    require("dpkg", "dpkg-query", "rpm")
    deb = debian_root(tmp_path / "deb")
    assert pkgdb.installed_names(Host(deb), "dpkg") == set()  # an empty database
    dpkg_install(deb, set_repos["debian"], ["virtinst"])
    # unpacked, not configured: what a transaction that failed midway leaves, still to remove
    run(["dpkg", f"--root={deb}", f"--admindir={deb}/var/lib/dpkg", "--force-script-chrootless",
         "--unpack", str(next(set_repos["debian"].glob("bridge-utils_*.deb")))])
    assert pkgdb.installed_names(Host(deb), "dpkg") == {"virtinst", "bridge-utils"}
    assert "bridge-utils" not in pkgdb.dpkg_listing(Host(deb))[0]

    el = el_root(tmp_path / "el")
    assert pkgdb.installed_names(Host(el), "rpm") == set()  # no database: nothing, and none created
    assert not (el / "var/lib/rpm").exists()
    rpm_install(el, set_repos["el"], ["virt-install", "libvirt-client"])
    assert pkgdb.installed_names(Host(el), "rpm") == {"virt-install", "libvirt-client"}


def test_the_apply_message_counts_what_was_pulled_in(tmp_path, set_repos):
    path = make_root(tmp_path / "root", "debian", set_repos)
    host = Host(path)
    plan = build_plan(host, Facts(host), None, [VIRT])
    result = apply_plan(Host(path), plan)
    assert result.ok, result.failed
    pulled = sorted(set(DEB_ADDED) - set(DEB_MISSING))
    assert result.actions[-1].message == (
        f"added 11 packages (7 asked for, 4 pulled in: {' '.join(pulled)}); the packages enabled these units "
        "on their own: libvirtd.service (undo disables them again)")
