"""install-virtualization-packages and install-tools, driven end to end with the
real package managers (dnf into an AlmaLinux 8 root, apt-get into a Debian 12
root, both from local stub repositories), and the package-lock guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checks.errors import NeedsRoot, ProbeError, ToolMissing
from checks.facts import Facts
from checks.host import Host
from checks.profile import Entry, Profile
from checks.runner import run_checks
from pkgroots import deb_repo, rpm_repo  # noqa: F401  (session fixtures)
from pkgroots import (debian_root, dpkg_install, dpkg_installed, el_root, repo_without, require,
                      rpm_install, rpm_installed)
from remediations import executor as executor_mod
from remediations.actions import Cmd, InstallPackages, WriteFile
from remediations.catalog import packages as fixmod
from remediations.executor import apply_plan, undo_last
from remediations.packagelocks import lock_holder
from remediations.plan import Plan, Step, build_plan, render_preview

VIRT = "install-virtualization-packages"
TOOLS = "install-tools"

EL_MISSING = ["qemu-kvm", "libvirt", "virt-install"]  # libvirt-client is preinstalled
DEB_MISSING = ["qemu-system-x86", "libvirt-daemon-system", "virtinst", "qemu-utils", "dnsmasq-base", "ovmf", "bridge-utils"]  # libvirt-clients is


def plan_for(path, fix_ids, report=None, **host_kw) -> Plan:
    host = Host(path, **host_kw)
    return build_plan(host, Facts(host), report, fix_ids)


def the_install(plan: Plan) -> InstallPackages:
    found = [a for a in plan.actions if isinstance(a, InstallPackages)]
    assert len(found) == 1, render_preview(plan)
    return found[0]


def alma8(root, repo, installed=("libvirt-client",)):
    require("dnf", "rpm")
    el_root(root.path, repo)
    if installed:
        rpm_install(root.path, repo, list(installed))
    return root.path


def debian12(root, repo, installed=("libvirt-clients",)):
    require("apt-get", "dpkg", "dpkg-query")
    debian_root(root.path, repo)
    if installed:
        dpkg_install(root.path, repo, list(installed))
    return root.path


def installed_in(path: Path, family: str) -> dict[str, str]:
    return rpm_installed(path) if family == "el" else dpkg_installed(path)


def build(family, root, rpm_repo, deb_repo, **kw):
    return alma8(root, rpm_repo, **kw) if family == "el" else debian12(root, deb_repo, **kw)


def profile_of(*check_ids, **params) -> Profile:
    return Profile("test", "test", "", checks={c: Entry("required", params.get(c.replace(".", "_"), {}))
                                              for c in check_ids})


# --------------------------------------------------------- the "Done when" path


@pytest.mark.parametrize("family", ["el", "debian"])
def test_plan_apply_installs_the_missing_stack_then_check_passes_and_replan_is_empty(
        family, root, rpm_repo, deb_repo, monkeypatch):
    path = build(family, root, rpm_repo, deb_repo)
    assert root.check("packages.virtualization").status.value == "fail"

    # the plan starts from the failing check, as `kvmprep plan` does
    host = Host(path)
    profile = profile_of("packages.virtualization")
    report = run_checks(host, profile)
    plan = build_plan(host, Facts(host), report)
    assert [s.remediation for s in plan.steps] == [VIRT]
    action = the_install(plan)
    missing = EL_MISSING if family == "el" else DEB_MISSING
    assert action.packages == missing
    preview = render_preview(plan)

    # what runs is what the preview showed, byte for byte
    ran = []
    real = executor_mod.run_streaming

    def spy(argv, env=None, on_line=None, cwd=None):
        ran.append(Cmd(list(argv), dict(env or {})).display())
        return real(argv, env=env, on_line=on_line, cwd=cwd)

    monkeypatch.setattr(executor_mod, "run_streaming", spy)
    result = apply_plan(Host(path), plan, verify_profile=profile)
    assert result.ok, result.failed
    assert ran == [l.strip()[2:] for l in preview.splitlines() if l.strip().startswith("$ ")]
    assert result.verification["packages.virtualization"]["status"] == "pass"

    have = installed_in(path, family)
    assert set(missing) <= set(have)
    # a fresh Host and check: the check itself passes now
    assert root.check("packages.virtualization").status.value == "pass"
    # and a new plan is empty
    again = plan_for(path, [VIRT])
    assert again.empty and VIRT in again.nothing_to_do

    # undo lists the packages (with what the package manager pulled in) and leaves them installed
    undone = undo_last(Host(path))
    assert undone.ok, undone.left
    text = "\n".join(undone.reverted)
    added = sorted(set(missing) | ({"libvirt-daemon"} if family == "el" else set()))  # libvirt needs it
    assert f"left in place: {len(added)} packages (asked for: {' '.join(sorted(missing))}; pulled in: " in text
    assert ("remove -y -- " if family == "debian" else "remove ") + " ".join(added) in text
    assert set(missing) <= set(installed_in(path, family))
    assert not list(path.glob("var/lib/kvmprep/rpm/*/.rpmmacros"))  # the helper file is gone again


@pytest.mark.parametrize("family", ["el", "debian"])
def test_undo_with_remove_packages_removes_exactly_what_was_installed(family, root, rpm_repo, deb_repo):
    path = build(family, root, rpm_repo, deb_repo)
    plan = plan_for(path, [VIRT])
    assert apply_plan(Host(path), plan).ok
    undone = undo_last(Host(path), remove_packages=True)
    assert undone.ok, undone.left
    missing = EL_MISSING if family == "el" else DEB_MISSING
    pulled = "libvirt-daemon" if family == "el" else "none"
    assert (f"removed in one transaction: {len(missing) + (family == 'el')} packages "
            f"(asked for: {' '.join(sorted(missing))}; pulled in: {pulled})") in "\n".join(undone.reverted)
    have = installed_in(path, family)
    assert not set(missing) & set(have)
    assert ("libvirt-client" if family == "el" else "libvirt-clients") in have  # was there before: kept
    assert root.check("packages.virtualization").status.value == "fail"


def test_el_plan_text_points_dnf_at_the_root_and_its_rpm_database(root, rpm_repo):
    path = alma8(root, rpm_repo)
    plan = plan_for(path, [VIRT], live=False)
    preview = render_preview(plan)
    home = f"{path}/var/lib/kvmprep/rpm/{VIRT}"
    host_db = subprocess.run(["rpm", "--eval", "%_dbpath"], capture_output=True, text=True).stdout.strip()
    if host_db != "/var/lib/rpm":  # a Debian host: ~/.rpmdb, so the plan pins the root's database
        assert f"$ HOME={home} dnf -y --installroot={path} --releasever=8 install qemu-kvm libvirt virt-install" \
            in preview
        macros = plan.actions[0]
        assert isinstance(macros, WriteFile) and macros.path == f"/var/lib/kvmprep/rpm/{VIRT}/.rpmmacros"
        assert macros.content == "%_dbpath /var/lib/rpm\n"
        assert "+%_dbpath /var/lib/rpm" in preview
    else:
        assert f"$ dnf -y --installroot={path} --releasever=8 install qemu-kvm libvirt virt-install" in preview
    assert "update" not in preview


def test_debian_plan_text_points_apt_at_the_root(root, deb_repo):
    path = debian12(root, deb_repo)
    plan = plan_for(path, [VIRT])
    cmds = the_install(plan).commands()
    opts = ["-o", f"Dir={path}", "-o", f"Dir::State::status={path}/var/lib/dpkg/status",
            "-o", f"DPkg::Options::=--root={path}", "-o", f"DPkg::Options::=--admindir={path}/var/lib/dpkg",
            "-o", f"DPkg::Options::=--log={path}/var/log/dpkg.log",
            "-o", "APT::Sandbox::User=root"]  # the sources are a local file: repository
    assert [c.argv for c in cmds] == [["apt-get", *opts, "update"],
                                      ["apt-get", *opts, "install", "-y", "--no-install-recommends", "--", *DEB_MISSING]]
    assert all(c.env == {"DEBIAN_FRONTEND": "noninteractive"} for c in cmds)
    assert "Debug::NoLocking" not in render_preview(plan)
    # once the indexes are there, no update
    lists = path / "var/lib/apt/lists"
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("")
    assert [c.argv[-1] for c in the_install(plan_for(path, [VIRT])).commands()] == ["bridge-utils"]


def test_plan_round_trips_through_a_plan_file_with_the_same_commands(root, rpm_repo):
    path = alma8(root, rpm_repo)
    host = Host(path)
    plan = plan_for(path, [VIRT, TOOLS])
    loaded = Plan.from_dict(plan.to_dict(), host)
    assert render_preview(loaded) == render_preview(plan)


# ------------------------------------------------------------- only what is missing


def test_nothing_to_do_when_the_stack_is_installed(root, rpm_repo):
    path = alma8(root, rpm_repo, installed=("qemu-kvm-core", "libvirt-daemon-kvm", "libvirt-client", "virt-install"))
    plan = plan_for(path, [VIRT])
    assert plan.empty
    assert plan.nothing_to_do[VIRT] == "QEMU/KVM, libvirt and virt-install are installed"


def test_an_installed_alternative_counts(root, deb_repo):
    path = debian12(root, deb_repo, installed=("qemu-kvm", "libvirt-clients", "bridge-utils"))
    assert the_install(plan_for(path, [VIRT])).packages == ["libvirt-daemon-system", "virtinst", "qemu-utils",
                                                            "dnsmasq-base", "ovmf"]


def test_a_missing_alternative_group_installs_its_first_name(root, deb_repo):
    path = debian12(root, deb_repo)
    params = {"packages.virtualization": {"packages": {"debian": ["virtinst|libvirt-clients", "tpm2-tools|chrony"]}}}
    host = Host(path)
    from remediations.registry import PlanCtx

    proposal = fixmod.install_virtualization_packages(PlanCtx(host, Facts(host), {}, params))
    (action,) = proposal.actions
    assert action.packages == ["tpm2-tools"]  # libvirt-clients satisfies the first group


def test_qemu_package_follows_the_roots_dpkg_architecture(root, deb_repo):
    path = debian12(root, deb_repo)
    (path / "var/lib/dpkg/arch").write_text("arm64\n")
    assert the_install(plan_for(path, [VIRT])).packages[0] == "qemu-system-arm"


def test_unknown_distribution_and_missing_databases_say_why(root, tmp_path, deb_repo):
    root.write("etc/os-release", 'ID=plan9\nNAME="Plan 9"\n')
    plan = plan_for(root.path, [VIRT, TOOLS])
    assert plan.empty
    assert "unknown distribution" in plan.nothing_to_do[VIRT]
    assert "unknown distribution" in plan.nothing_to_do[TOOLS]

    deb = tmp_path / "deb"
    debian_root(deb, deb_repo)
    (deb / "var/lib/dpkg/status").unlink()
    plan = plan_for(deb, [VIRT, TOOLS])
    assert plan.empty
    assert "no dpkg database" in plan.nothing_to_do[VIRT]
    assert "no dpkg database" in plan.nothing_to_do[TOOLS]


@pytest.mark.parametrize("error, says", [
    (NeedsRoot("/r/var/lib/rpm"), "needs root: would read /r/var/lib/rpm"),
    (ToolMissing("rpm"), "rpm is not installed on the machine"),
    (ProbeError("rpm -q", "error: cannot open Packages database"), "cannot be read: error: cannot open Packages database"),
])
def test_an_unreadable_package_database_plans_nothing_and_says_why(root, monkeypatch, error, says):
    from checks import pkgdb

    el_root(root.path)
    root.write("var/lib/rpm/rpmdb.sqlite", "")

    def boom(host, kind, names):
        raise error

    monkeypatch.setattr(pkgdb, "installed", boom)
    plan = plan_for(root.path, [VIRT])
    assert plan.empty and says in plan.nothing_to_do[VIRT]


def test_a_root_without_an_rpm_database_gets_everything(root):
    el_root(root.path)
    plan = plan_for(root.path, [VIRT])
    assert the_install(plan).packages == ["qemu-kvm", "libvirt", "libvirt-client", "virt-install"]
    assert "no rpm database in the root yet" in render_preview(plan)


# ------------------------------------------------------- distributions and live forms


def _el(root, os_release: str):
    el_root(root.path)
    root.write("etc/os-release", os_release)
    root.write("var/lib/rpm/rpmdb.sqlite", "")  # a database is there (its answers come from no_packages)
    return root.path


@pytest.fixture
def no_packages(monkeypatch):
    """The root's package database answers "nothing installed" (plan-only tests of
    distributions whose tools are not on this machine)."""
    from checks import pkgdb

    monkeypatch.setattr(pkgdb, "installed", lambda host, kind, names: ({n: None for n in names}, "stub"))
    monkeypatch.setattr(fixmod, "host_rpm_dbpath", lambda ctx: "/var/lib/rpm")


def test_el7_and_amazon_linux_2_use_yum(root, no_packages):
    path = _el(root, 'ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\nNAME="CentOS Linux"\n')
    action = the_install(plan_for(path, [VIRT]))
    assert action.manager == "yum"
    assert action.commands()[0].argv == ["yum", "-y", f"--installroot={path}", "--releasever=7", "install",
                                         "qemu-kvm", "libvirt", "libvirt-client", "virt-install", "bridge-utils"]
    root.write("etc/os-release", 'NAME="Amazon Linux"\nID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2"\n')
    action = the_install(plan_for(path, [VIRT]))
    assert action.commands()[0].argv[:4] == ["yum", "-y", f"--installroot={path}", "--releasever=2"]


def test_suse_uses_zypper_with_suse_names(root, no_packages):
    root.write("etc/os-release", 'NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\n'
                                 'VERSION_ID="15.5"\n')
    root.write("usr/lib/sysimage/rpm/rpmdb.sqlite", "")
    root.write("proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx lm\n")
    action = the_install(plan_for(root.path, [VIRT]))
    argv = action.commands()[0].argv
    assert argv[:4] == ["zypper", "--non-interactive", "--root", str(root.path)]
    assert argv[4] == "install" and argv[5] == "patterns-server-kvm_server"
    params = {"packages.tools": Entry("required", {"tools": ["tpm2-tools", "chrony"]})}
    host = Host(root.path)
    report = run_checks(host, Profile("t", "t", "", checks=params))
    tools = the_install(build_plan(host, Facts(host), report, [TOOLS]))
    assert tools.packages == ["tpm2.0-tools", "chrony"]


def test_running_system_forms(root, deb_repo, rpm_repo, tmp_path, monkeypatch):
    """On "/" the commands are the plain ones (shown on a copy, never run here)."""
    monkeypatch.setattr(fixmod, "offline_root", lambda ctx: None)
    path = debian12(root, deb_repo)
    (path / "etc/apt/sources.list").write_text("deb http://deb.debian.org/debian bookworm main\n")
    cmds = the_install(plan_for(path, [VIRT])).commands()
    assert [c.display() for c in cmds] == [
        "DEBIAN_FRONTEND=noninteractive apt-get update",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- " + " ".join(DEB_MISSING)]
    (path / "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("")
    assert [c.display() for c in the_install(plan_for(path, [VIRT])).commands()] == [
        "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- " + " ".join(DEB_MISSING)]

    el = tmp_path / "el"
    el_root(el, rpm_repo)
    rpm_install(el, rpm_repo, ["libvirt-client"])
    plan = plan_for(el, [VIRT])
    assert [a.KIND for a in plan.actions] == ["install-packages"]  # no rpm macros file on "/"
    assert [c.display() for c in the_install(plan).commands()] == ["dnf -y install qemu-kvm libvirt virt-install"]


def test_removal_is_one_resolver_transaction_pointed_at_the_root(root):
    """apt-get/dnf/yum/zypper remove, never dpkg/rpm one by one: packages that
    depend on each other go together; no autoremove (what was there before stays)."""
    from remediations.packageops import disable_command, removal_command

    el_root(root.path)
    root.write("var/lib/rpm/rpmdb.sqlite", "")
    host = Host(root.path)
    r = str(root.path)
    assert removal_command(host, "dnf", ["a", "b"]).argv == [
        "dnf", "-y", f"--installroot={r}", "--releasever=8", "--setopt=clean_requirements_on_remove=False",
        "remove", "a", "b"]
    assert removal_command(host, "yum", ["a"], home="/h").env == {"HOME": "/h"}
    assert removal_command(host, "zypper", ["a"]).argv == ["zypper", "--non-interactive", "--root", r, "remove", "a"]
    apt = removal_command(host, "apt", ["aa"])
    assert apt.argv == ["apt-get", "-o", f"Dir={r}", "-o", f"Dir::State::status={r}/var/lib/dpkg/status",
                        "-o", f"DPkg::Options::=--root={r}", "-o", f"DPkg::Options::=--admindir={r}/var/lib/dpkg",
                        "-o", f"DPkg::Options::=--log={r}/var/log/dpkg.log", "remove", "-y", "--", "aa"]
    assert apt.env == {"DEBIAN_FRONTEND": "noninteractive"}
    assert disable_command(host, ["libvirtd.service"]).argv == [
        "systemctl", f"--root={r}", "disable", "--", "libvirtd.service"]
    live = Host("/")
    assert removal_command(live, "dnf", ["a"]).display() == \
        "dnf -y --setopt=clean_requirements_on_remove=False remove a"
    assert removal_command(live, "apt", ["aa"]).display().startswith(
        "DEBIAN_FRONTEND=noninteractive apt-get ")
    assert removal_command(live, "apt", ["aa"]).argv[-4:] == ["remove", "-y", "--", "aa"]
    assert "--root" not in " ".join(removal_command(live, "apt", ["aa"]).argv)


# ----------------------------------------------------------------------- install-tools


@pytest.mark.parametrize("family", ["el", "debian"])
def test_install_tools_installs_what_the_profile_asks_for(family, root, rpm_repo, deb_repo):
    path = build(family, root, rpm_repo, deb_repo)
    root.write("usr/sbin/dmidecode", "#!/bin/sh\n")  # there by hand: counts as present
    wanted = {"tools": ["dmidecode", "python3", "chrony", "tpm2-tools"]}
    profile = profile_of("packages.tools", packages_tools=wanted)
    host = Host(path)
    plan = build_plan(host, Facts(host), run_checks(host, profile))
    assert [s.remediation for s in plan.steps] == [TOOLS]
    assert the_install(plan).packages == ["python3", "chrony", "tpm2-tools"]
    result = apply_plan(Host(path), plan, verify_profile=profile)
    assert result.ok, result.failed
    assert result.verification["packages.tools"]["status"] == "pass"
    assert {"python3", "chrony", "tpm2-tools"} <= set(installed_in(path, family))
    assert "dmidecode" not in installed_in(path, family)
    host = Host(path)
    again = build_plan(host, Facts(host), run_checks(host, profile), [TOOLS])
    assert again.empty and again.nothing_to_do[TOOLS].startswith("all present")


def test_install_tools_defaults_and_nothing_asked(root, deb_repo):
    path = debian12(root, deb_repo)
    assert the_install(plan_for(path, [TOOLS])).packages == ["dmidecode", "python3"]  # the check's default
    host = Host(path)
    report = run_checks(host, profile_of("packages.tools", packages_tools={"tools": []}))
    plan = build_plan(host, Facts(host), report, [TOOLS])
    assert plan.nothing_to_do[TOOLS] == "the profile asks for no tools"


# --------------------------------------------------------------------- failures


@pytest.mark.parametrize("family", ["el", "debian"])
def test_a_failing_install_stops_the_plan_and_what_was_done_stays_undoable(
        family, root, rpm_repo, deb_repo, tmp_path):
    lacking = "virt-install" if family == "el" else "virtinst"
    repo = repo_without(rpm_repo if family == "el" else deb_repo, tmp_path / "lacking", [lacking])
    path = build(family, root, repo, repo)
    plan = plan_for(path, [TOOLS, VIRT])
    assert [s.remediation for s in plan.steps] == [TOOLS, VIRT]
    result = apply_plan(Host(path), plan)
    assert not result.ok
    failed = result.failed
    assert failed.remediation == VIRT
    assert failed.returncode == (1 if family == "el" else 100)
    assert lacking in failed.output
    assert f"exited with status {failed.returncode}" in failed.message
    assert result.actions[0].status == "done"
    have = installed_in(path, family)
    assert {"dmidecode", "python3"} <= set(have)
    assert not {"qemu-kvm", "qemu-system-x86"} & set(have)  # the transaction did not happen
    undone = undo_last(Host(path), remove_packages=True)
    assert undone.ok, undone.left
    assert any("removed in one transaction: 2 packages (asked for: dmidecode python3" in r for r in undone.reverted)
    assert any("failed during apply" in n for n in undone.notes)
    assert not {"dmidecode", "python3"} & set(installed_in(path, family))


# ---------------------------------------------------------------------- package locks

HOLDER = r"""
import fcntl, os, struct, sys
path, kind, name = sys.argv[1:4]
with open("/proc/self/comm", "w") as fh:
    fh.write(name)
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
if kind == "posix":
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
elif kind == "flock":
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
else:  # an open file description lock (F_OFD_SETLK = 37): /proc/locks names no pid
    fcntl.fcntl(fd, 37, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0) + b"\0" * 4)
print("locked", flush=True)
sys.stdin.read()
"""


class Holder:
    """A child process that holds a real lock on a file until closed."""

    def __init__(self, path: Path, kind: str = "posix", name: str = "apt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), kind, name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "locked"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


@pytest.fixture
def holders():
    started = []

    def start(*args, **kw):
        h = Holder(*args, **kw)
        started.append(h)
        return h

    yield start
    for h in started:
        if h.proc.poll() is None:
            h.close()


@pytest.mark.parametrize("kind", ["posix", "ofd"])
def test_a_held_dpkg_lock_is_reported_with_its_holder_and_never_removed(root, holders, kind):
    debian_root(root.path)
    lock = root.path / "var/lib/dpkg/lock-frontend"
    h = holders(lock, kind, "apt")
    host = Host(root.path, live=True)
    message = lock_holder(host, ["apt-get", "install", "-y", "qemu-system-x86"])
    assert message == f"{lock} is held by apt (pid {h.pid})"
    assert lock_holder(host, ["dpkg", "--remove", "x"]) == message
    assert lock_holder(host, ["dnf", "install", "x"]) is None  # not dnf's lock
    assert lock.exists()
    h.close()
    assert lock_holder(host, ["apt-get", "install", "-y", "x"]) is None
    assert lock.exists()


def test_rpm_lock_and_pid_files(root, holders):
    el_root(root.path)
    h = holders(root.path / "var/lib/rpm/.rpm.lock", "flock", "dnf")
    host = Host(root.path, live=True)
    assert lock_holder(host, ["dnf", "-y", "install", "x"]) == \
        f"{root.path}/var/lib/rpm/.rpm.lock is held by dnf (pid {h.pid})"
    assert lock_holder(host, ["rpm", "-e", "x"]) is not None
    h.close()
    # zypper's pid file names a running process: only meaningful on the running system
    root.write("run/zypp.pid", f"{os.getpid()}\n")
    assert lock_holder(host, ["zypper", "install", "x"]) is None  # ourselves
    h2 = holders(root.path / "tmp/unrelated", "posix", "zypper")
    root.write("run/zypp.pid", f"{h2.pid}\n")
    assert lock_holder(host, ["zypper", "install", "x"]) == f"{root.path}/run/zypp.pid names a running zypper (pid {h2.pid})"
    assert lock_holder(Host(root.path, live=False), ["zypper", "install", "x"]) is None


def test_a_lock_on_an_offline_root_is_reported_too(root, holders):
    debian_root(root.path)
    h = holders(root.path / "var/lib/dpkg/lock", "posix", "dpkg")
    assert lock_holder(Host(root.path, live=False), ["apt-get", "update"]) == \
        f"{root.path}/var/lib/dpkg/lock is held by dpkg (pid {h.pid})"


def test_apply_stops_at_a_held_lock_and_leaves_it(root, holders):
    debian_root(root.path)
    lock = root.path / "var/lib/dpkg/lock-frontend"
    h = holders(lock, "posix", "apt-get")
    host = Host(root.path, live=True)
    # a command path that cannot exist: were the guard to fail, nothing could run here
    action = InstallPackages(manager="apt", packages=["x"], why="test",
                             cmds=[{"argv": ["/nonexistent/kvmprep-test/apt-get", "install", "-y", "x"], "env": {}}])
    plan = Plan(str(root.path), "t", "now", [Step(TOOLS, "t", ["packages.tools"], [action])])
    result = apply_plan(host, plan)
    assert not result.ok
    assert result.failed.message.startswith(f"{lock} is held by apt-get (pid {h.pid}); kvmprep never removes")
    assert result.failed.returncode is None
    assert h.proc.poll() is None and lock.exists()
    assert lock_holder(host, ["apt-get"]) is not None  # still held: untouched
    h.close()
    result = apply_plan(host, plan)
    assert result.failed.returncode == 127  # now the command itself is tried (and does not exist)


# ---------------------------------------------------------------------------- the CLI

TOP = Path(__file__).resolve().parent.parent


def kvmprep(*args):
    env = {k: v for k, v in os.environ.items() if k != "SSH_CONNECTION"}
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                          env=env, stdin=subprocess.DEVNULL, timeout=300)


def test_cli_plan_apply_check_undo_remove_on_a_debian_root(root, deb_repo):
    path = debian12(root, deb_repo)
    r = kvmprep("plan", "--root", str(path), "--fix", VIRT)
    assert r.returncode == 0, r.stderr
    assert f"apt-get -o Dir={path} " in r.stdout and "install -y --no-install-recommends -- " + " ".join(DEB_MISSING) in r.stdout
    r = kvmprep("apply", "--root", str(path), "--fix", VIRT, "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    r = kvmprep("check", "--root", str(path), "--format", "json")
    result = next(c for c in json.loads(r.stdout)["checks"] if c["id"] == "packages.virtualization")
    assert result["status"] == "pass", result
    r = kvmprep("undo", "--root", str(path), "--yes", "--remove-packages")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"removed in one transaction: {len(DEB_MISSING)} packages (asked for: " + " ".join(sorted(DEB_MISSING)) in r.stdout
    assert not set(DEB_MISSING) & set(dpkg_installed(path))
    assert "libvirt-clients" in dpkg_installed(path)
