"""Remediations enable-libvirt, enable-nftables, enable-time-sync, disable-selinux,
selinux-permissive, fix-kvm-permissions and add-user-to-groups, driven end to end
(plan -> preview -> apply -> check -> plan again -> undo) with the real systemctl,
augtool, groupadd/usermod/gpasswd/groupdel and apt-get against throwaway roots."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from checks.facts import Facts
from checks.host import Host
from checks.model import Status
from pkgroots import (LIBVIRTD_SERVICE, LIBVIRTD_SOCKET, NFTABLES_SERVICE, SYSTEMD_DIR_DEB, Stub,
                      build_deb_repo, debian_root, dpkg_installed, el_root, modular_units, require,
                      systemctl, unit_text, write_preset, write_unit)
from remediations.actions import (AddKernelArgs, AddUserToGroups, EnableUnits, InstallPackages, RunCommand,
                                  WriteFile)
from remediations.executor import apply_plan, undo_last
from remediations.plan import build_plan, render_preview
from remediations.registry import PlanCtx, all_remediations

KEEP_OUT = ("var/lib/kvmprep", "var/log/kvmprep")


# ---------------------------------------------------------------- helpers

def host_of(path, live=False, env=None) -> Host:
    return Host(path, env=env or {}, euid=0, live=live)


def plan_for(path, *ids, live=False, env=None):
    host = host_of(path, live, env)
    return build_plan(host, Facts(host), None, list(ids))


def propose(path, rid, params=None, live=False, env=None):
    """Call one planner directly (to pass profile params)."""
    host = host_of(path, live, env)
    return all_remediations()[rid].planner(PlanCtx(host, Facts(host), {}, params or {}))


def apply(path, plan):
    result = apply_plan(host_of(path), plan)
    assert result.ok, [(a.summary, a.status, a.message, a.output) for a in result.actions]
    return result


def undo(path):
    result = undo_last(host_of(path))
    assert result.ok, result.left
    return result


def snapshot(path: Path, ignore=()) -> dict[str, bytes | str]:
    """Every file (bytes) and symlink (target) under a root, but kvmprep's own state."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        rel_dir = os.path.relpath(dirpath, path)
        dirnames[:] = [d for d in dirnames if os.path.normpath(os.path.join(rel_dir, d)) not in KEEP_OUT]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if name in ignore:
                continue
            out[rel] = "-> " + os.readlink(full) if os.path.islink(full) else Path(full).read_bytes()
    return out


def is_enabled(path, unit) -> str:
    return systemctl(path, "is-enabled", unit).strip()


def only(plan, rid):
    assert [s.remediation for s in plan.steps] == [rid], render_preview(plan)
    return plan.steps[0]


def need_root(what="the shadow tools (groupadd -R, usermod --root)"):
    if os.geteuid() != 0:
        pytest.skip(f"{what} need root")


# ================================================================ enable-libvirt

def debian_libvirt_root(root):
    debian_root(root.path)
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE, SYSTEMD_DIR_DEB)
    for s in ("libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket"):
        write_unit(root.path, s, LIBVIRTD_SOCKET.replace("daemon socket", s), SYSTEMD_DIR_DEB)
    return root


def el9_modular_root(root, drivers=None):
    el_root(root.path, version="9.4")
    for name, text in (modular_units(drivers) if drivers else modular_units()).items():
        write_unit(root.path, name, text)
    for s in ("virtlogd.socket", "virtlockd.socket"):
        write_unit(root.path, s)
    return root


def test_enable_libvirt_debian_monolithic_end_to_end(root):
    require("systemctl")
    debian_libvirt_root(root)
    before = snapshot(root.path)
    assert root.check("services.libvirt").status is Status.FAIL
    plan = plan_for(root.path, "enable-libvirt")
    step = only(plan, "enable-libvirt")
    [action] = step.actions
    assert isinstance(action, EnableUnits) and action.units == ["libvirtd.service"] and not action.now
    assert not action.runtime and not action.reboot
    preview = render_preview(plan)
    assert f"$ systemctl --root={root.path} enable -- libvirtd.service" in preview
    assert any("offline root" in n for n in step.notes)

    apply(root.path, plan)
    for unit in ("libvirtd.service", "libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket"):
        assert is_enabled(root.path, unit) == "enabled"  # Also= brings the sockets
    r = root.check("services.libvirt")
    assert r.status is Status.PASS and "libvirtd (monolithic)" in r.detail
    again = plan_for(root.path, "enable-libvirt")
    assert again.empty and "already enabled" in again.nothing_to_do["enable-libvirt"]

    undo(root.path)
    assert is_enabled(root.path, "libvirtd.service") == "disabled"
    assert is_enabled(root.path, "libvirtd.socket") == "disabled"
    assert snapshot(root.path) == before


def test_enable_libvirt_el9_modular_sockets_end_to_end(root):
    require("systemctl")
    el9_modular_root(root)
    before = snapshot(root.path)
    plan = plan_for(root.path, "enable-libvirt")
    [action] = only(plan, "enable-libvirt").actions
    expected = [f"{d}{s}.socket" for d in ("virtqemud", "virtnetworkd", "virtstoraged", "virtnodedevd",
                                          "virtnwfilterd", "virtsecretd") for s in ("", "-ro", "-admin")]
    assert isinstance(action, EnableUnits)
    assert sorted(action.units) == sorted(expected + ["virtlogd.socket", "virtlockd.socket"])
    assert action.units[0] == "virtqemud.socket" and "virtqemud.service" not in action.units
    assert "virtinterfaced.socket" not in action.units  # not installed here

    apply(root.path, plan)
    for unit in action.units:
        assert is_enabled(root.path, unit) == "enabled", unit
    r = root.check("services.libvirt")
    assert r.status is Status.PASS and "virtqemud (modular)" in r.detail
    assert plan_for(root.path, "enable-libvirt").empty

    undo(root.path)
    assert all(is_enabled(root.path, u) == "disabled" for u in action.units)
    assert snapshot(root.path) == before


def test_enable_libvirt_follows_the_checks_model_choice(root):
    """Both models installed: the preset decides, exactly as services.libvirt decides."""
    require("systemctl")
    el9_modular_root(root, ["virtqemud", "virtnetworkd"])
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    [action] = only(plan_for(root.path, "enable-libvirt"), "enable-libvirt").actions
    assert action.units == ["libvirtd.service"]  # no preset: monolithic, as the check says
    write_preset(root.path, "85-virtualization.preset", ["enable virtqemud.socket"])
    [action] = only(plan_for(root.path, "enable-libvirt"), "enable-libvirt").actions
    assert action.units[0] == "virtqemud.socket" and "libvirtd.service" not in action.units


def test_enable_libvirt_partly_enabled_modular_enables_only_the_rest(root):
    require("systemctl")
    el9_modular_root(root, ["virtqemud", "virtnetworkd"])
    systemctl(root.path, "enable", "virtqemud.socket", "virtlogd.socket")
    assert root.check("services.libvirt").status is Status.WARN  # virtnetworkd.socket off
    [action] = only(plan_for(root.path, "enable-libvirt"), "enable-libvirt").actions
    assert "virtqemud.socket" not in action.units and "virtlogd.socket" not in action.units
    assert "virtnetworkd.socket" in action.units and "virtqemud-ro.socket" in action.units
    apply(root.path, plan_for(root.path, "enable-libvirt"))
    assert root.check("services.libvirt").status is Status.PASS
    undo(root.path)
    assert is_enabled(root.path, "virtqemud.socket") == "enabled"  # was enabled before: left
    assert is_enabled(root.path, "virtnetworkd.socket") == "disabled"


def test_enable_libvirt_nothing_to_do_cases(root):
    require("systemctl")
    el_root(root.path)
    plan = plan_for(root.path, "enable-libvirt")
    assert plan.empty and "install-virtualization-packages" in plan.nothing_to_do["enable-libvirt"]

    debian_libvirt_root(root)
    systemctl(root.path, "mask", "libvirtd.service")
    plan = plan_for(root.path, "enable-libvirt")
    assert plan.empty and "masked" in plan.nothing_to_do["enable-libvirt"]
    systemctl(root.path, "unmask", "libvirtd.service")

    el9_modular_root(root, ["virtqemud"])
    systemctl(root.path, "enable", "libvirtd.service", "virtqemud.socket")
    plan = plan_for(root.path, "enable-libvirt")
    assert plan.empty and "conflict" in plan.nothing_to_do["enable-libvirt"]


def test_enable_libvirt_live_without_systemd_enables_only_and_says_so(root):
    """A live host whose PID 1 is not systemd (no /run/systemd/system), like the build machine."""
    require("systemctl")
    debian_libvirt_root(root)
    plan = plan_for(root.path, "enable-libvirt", live=True)
    step = only(plan, "enable-libvirt")
    [action] = step.actions
    assert isinstance(action, EnableUnits) and action.now is False
    assert any("systemd is not PID 1" in n and "cannot start" in n for n in step.notes)
    systemctl(root.path, "enable", "libvirtd.service")
    plan = plan_for(root.path, "enable-libvirt", live=True)
    assert plan.empty and "cannot start it" in plan.nothing_to_do["enable-libvirt"]


def test_enable_libvirt_live_with_systemd_starts_too(root):
    require("systemctl")
    debian_libvirt_root(root)
    root.mkdir("run/systemd/system")
    [action] = only(plan_for(root.path, "enable-libvirt", live=True), "enable-libvirt").actions
    assert action.now is True
    assert action.commands()[0].argv[:2] == ["systemctl", f"--root={root.path}"]  # never the real host
    # on the real root the same action is `systemctl enable --now`
    assert EnableUnits(units=["libvirtd.service"], root="/", now=True).commands()[0].argv == \
        ["systemctl", "enable", "--now", "--", "libvirtd.service"]


# ================================================================ enable-nftables

def test_enable_nftables_el_end_to_end(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "nftables.service", NFTABLES_SERVICE)
    before = snapshot(root.path)
    assert root.check("services.nftables").status is Status.FAIL
    plan = plan_for(root.path, "enable-nftables")
    [action] = only(plan, "enable-nftables").actions
    assert isinstance(action, EnableUnits) and action.units == ["nftables.service"]
    assert f"$ systemctl --root={root.path} enable -- nftables.service" in render_preview(plan)
    apply(root.path, plan)
    assert is_enabled(root.path, "nftables.service") == "enabled"
    assert root.check("services.nftables").status is Status.PASS
    assert plan_for(root.path, "enable-nftables").empty
    undo(root.path)
    assert is_enabled(root.path, "nftables.service") == "disabled"
    assert snapshot(root.path) == before


def test_enable_nftables_over_ssh_enables_but_never_starts(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "nftables.service", NFTABLES_SERVICE)
    root.mkdir("run/systemd/system")
    env = {"SSH_CONNECTION": "10.0.0.2 50000 10.0.0.1 22"}
    step = only(plan_for(root.path, "enable-nftables", live=True, env=env), "enable-nftables")
    [action] = step.actions
    assert action.now is False and any("connected over SSH" in n for n in step.notes)
    systemctl(root.path, "enable", "nftables.service")
    plan = plan_for(root.path, "enable-nftables", live=True, env=env)
    assert plan.empty and "over SSH" in plan.nothing_to_do["enable-nftables"]


def test_enable_nftables_nothing_when_missing_or_masked(root):
    require("systemctl")
    el_root(root.path)
    assert "not installed" in plan_for(root.path, "enable-nftables").nothing_to_do["enable-nftables"]
    write_unit(root.path, "nftables.service", NFTABLES_SERVICE)
    systemctl(root.path, "mask", "nftables.service")
    assert "masked" in plan_for(root.path, "enable-nftables").nothing_to_do["enable-nftables"]


# ================================================================ enable-time-sync

CHRONY_SERVICE = unit_text("NTP client/server", "/usr/sbin/chronyd -F 1")


def test_enable_time_sync_debian_chrony_end_to_end(root):
    require("systemctl")
    debian_root(root.path)
    write_unit(root.path, "chrony.service", CHRONY_SERVICE.replace("[Install]\n", "[Install]\nAlias=chronyd.service\n"),
               SYSTEMD_DIR_DEB)
    root.symlink(f"{SYSTEMD_DIR_DEB}/chronyd.service", "chrony.service")  # Debian ships the alias
    root.write("usr/sbin/chronyd", "#!/bin/sh\n", mode=0o755)
    before = snapshot(root.path)
    params = {"daemon": "chrony"}
    assert root.check("time.sync", params).status is Status.FAIL
    plan = plan_for(root.path, "enable-time-sync")
    [action] = only(plan, "enable-time-sync").actions
    assert isinstance(action, EnableUnits) and action.units == ["chrony.service"]  # the real unit, not the alias
    apply(root.path, plan)
    assert is_enabled(root.path, "chrony.service") == "enabled"
    assert root.check("time.sync", params).status is Status.PASS
    assert plan_for(root.path, "enable-time-sync").empty
    undo(root.path)
    assert is_enabled(root.path, "chrony.service") == "disabled"
    assert snapshot(root.path) == before


def test_enable_time_sync_el_chronyd(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "chronyd.service", CHRONY_SERVICE)
    [action] = only(plan_for(root.path, "enable-time-sync"), "enable-time-sync").actions
    assert action.units == ["chronyd.service"]
    apply(root.path, plan_for(root.path, "enable-time-sync"))
    assert is_enabled(root.path, "chronyd.service") == "enabled"
    assert root.check("time.sync", {"daemon": "chrony"}).status is Status.PASS
    assert plan_for(root.path, "enable-time-sync").empty


def test_enable_time_sync_any_daemon_uses_installed_timesyncd(root):
    require("systemctl")
    debian_root(root.path)
    write_unit(root.path, "systemd-timesyncd.service",
               unit_text("Network Time Synchronization", "/lib/systemd/systemd-timesyncd", wanted_by="sysinit.target"),
               SYSTEMD_DIR_DEB)
    [action] = only(plan_for(root.path, "enable-time-sync"), "enable-time-sync").actions
    assert action.units == ["systemd-timesyncd.service"]
    # but a profile that wants chrony gets chrony installed instead (here: no package manager data)
    prop = propose(root.path, "enable-time-sync", {"time.sync": {"daemon": "chrony"}})
    assert any(isinstance(a, InstallPackages) and a.packages == ["chrony"] for a in prop.actions)


@pytest.fixture(scope="module")
def chrony_deb_repo(tmp_path_factory):
    """A chrony stub that ships its unit file, as the real package does."""
    require("dpkg-deb", "dpkg-scanpackages")
    return build_deb_repo(tmp_path_factory.mktemp("chronydeb"), [
        Stub("chrony", "4.3-2+deb12u1", files={f"{SYSTEMD_DIR_DEB}/chrony.service": CHRONY_SERVICE,
                                               "/usr/sbin/chronyd": "#!/bin/sh\n"})])


def test_enable_time_sync_installs_chrony_with_apt_then_enables_it(root, chrony_deb_repo):
    require("apt-get", "dpkg", "systemctl")
    need_root("apt-get and dpkg installing into a root")
    debian_root(root.path, chrony_deb_repo)
    assert root.check("time.sync").status is Status.FAIL
    plan = plan_for(root.path, "enable-time-sync")
    install, enable = only(plan, "enable-time-sync").actions
    assert isinstance(install, InstallPackages) and install.packages == ["chrony"] and install.manager == "apt"
    assert install.commands()[-1].argv[-5:] == ["install", "-y", "--no-install-recommends", "--", "chrony"]
    assert isinstance(enable, EnableUnits) and enable.units == ["chrony.service"]
    # the offline apt-get is pointed at the root (its options come from the packages remediation)
    assert f"Dir={root.path}" in install.commands()[-1].argv
    apply(root.path, plan)
    assert "chrony" in dpkg_installed(root.path)
    assert is_enabled(root.path, "chrony.service") == "enabled"
    assert root.check("time.sync").status is Status.PASS
    assert plan_for(root.path, "enable-time-sync").empty
    res = undo(root.path)
    assert is_enabled(root.path, "chrony.service") == "disabled"
    assert any("left in place: 1 package (asked for: chrony; pulled in: none)" in line for line in res.reverted)


def test_enable_time_sync_nothing_cases(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "chronyd.service", CHRONY_SERVICE)
    systemctl(root.path, "enable", "chronyd.service")
    assert "already enabled" in plan_for(root.path, "enable-time-sync").nothing_to_do["enable-time-sync"]
    systemctl(root.path, "disable", "chronyd.service")
    systemctl(root.path, "mask", "chronyd.service")
    assert "masked" in plan_for(root.path, "enable-time-sync").nothing_to_do["enable-time-sync"]


# ================================================================ SELinux

RHEL_SELINUX_CONFIG = """\
# This file controls the state of SELinux on the system.
# SELINUX= can take one of these three values:
#     enforcing - SELinux security policy is enforced.
#     permissive - SELinux prints warnings instead of enforcing.
#     disabled - No SELinux policy is loaded.
# See also:
# https://docs.fedoraproject.org/en-US/quick-docs/getting-started-with-selinux/#getting-started-with-selinux-selinux-states-and-modes
#
# NOTE: In earlier Fedora kernel builds, SELINUX=disabled would also
# fully disable SELinux during boot. If you need a system with SELinux
# fully disabled instead of SELinux running with no policy loaded, you
# need to pass selinux=0 to the kernel command line. You can use grubby
# to persistently set the bootloader to boot with selinux=0:
#
#    grubby --update-kernel ALL --args selinux=0
#
# To revert back to SELinux enabled:
#
#    grubby --update-kernel ALL --remove-args selinux
#
SELINUX=enforcing
# SELINUXTYPE= can take one of these three values:
#     targeted - Targeted processes are protected,
#     minimum - Modification of targeted policy. Only selected processes are protected.
#     mls - Multi Level Security protection.
SELINUXTYPE=targeted

"""


def augtool_get(path, key) -> str:
    require("augtool")
    out = subprocess.run(["augtool", "-r", str(path), "get", f"/files/etc/selinux/config/{key}"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return out.strip()


def selinux_root(root, version="8.9", config=RHEL_SELINUX_CONFIG, enforce=None):
    el_root(root.path, version=version)
    if config is not None:
        root.write("etc/selinux/config", config)
    if enforce is not None:
        root.write("sys/fs/selinux/enforce", enforce)
    return root


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b) if x != y]


def test_disable_selinux_el8_offline_end_to_end(root):
    selinux_root(root)
    conf = root.path / "etc/selinux/config"
    original = conf.read_bytes()
    assert augtool_get(root.path, "SELINUX") == "/files/etc/selinux/config/SELINUX = enforcing"
    assert root.check("security.selinux", {"want": "disabled"}).status is Status.FAIL
    plan = plan_for(root.path, "disable-selinux")
    step = only(plan, "disable-selinux")
    [action] = step.actions  # EL 8: no kernel argument; offline: no setenforce
    assert isinstance(action, WriteFile) and action.path == "/etc/selinux/config" and action.reboot
    preview = render_preview(plan)
    assert "-SELINUX=enforcing\n" in preview.replace("      ", "") and "+SELINUX=disabled" in preview
    assert "[pending reboot]" in preview
    assert any("setenforce 0: skipped" in n for n in step.notes)

    apply(root.path, plan)
    assert augtool_get(root.path, "SELINUX") == "/files/etc/selinux/config/SELINUX = disabled"
    assert augtool_get(root.path, "SELINUXTYPE") == "/files/etc/selinux/config/SELINUXTYPE = targeted"
    assert changed_lines(original.decode(), conf.read_text()) == [("SELINUX=enforcing\n", "SELINUX=disabled\n")]
    assert root.check("security.selinux", {"want": "disabled"}).status is Status.PASS
    assert plan_for(root.path, "disable-selinux").empty

    undo(root.path)
    assert conf.read_bytes() == original


def test_disable_selinux_el9_live_plans_kernel_arg_and_setenforce(root):
    """Runtime steps appear on a live host; they are planned and previewed, never run here."""
    selinux_root(root, version="9.4", enforce="1")
    plan = plan_for(root.path, "disable-selinux", live=True)
    write, karg, setenf = only(plan, "disable-selinux").actions
    assert isinstance(write, WriteFile) and write.reboot
    assert isinstance(karg, AddKernelArgs) and karg.args == ["selinux=0"] and karg.reboot and not karg.runtime
    assert isinstance(setenf, RunCommand) and setenf.argv == ["setenforce", "0"]
    assert setenf.undo_argv == ["setenforce", "1"] and setenf.runtime
    preview = render_preview(plan)
    assert "$ grubby --update-kernel ALL --args selinux=0" in preview
    assert "$ setenforce 0" in preview and "[running system only]" in preview


def test_disable_selinux_el9_offline_names_grubby_but_never_runs_it_on_this_machine(root):
    selinux_root(root, version="9.4")
    step = only(plan_for(root.path, "disable-selinux"), "disable-selinux")
    assert [type(a) for a in step.actions] == [WriteFile]
    assert any("grubby --update-kernel ALL --args selinux=0" in n for n in step.notes)


def test_disable_selinux_el9_kernel_arg_already_in_boot_entries(root):
    selinux_root(root, version="9.4", enforce="0")
    root.write("boot/loader/entries/abc-5.14.0.conf",
               "title AlmaLinux\nlinux /vmlinuz-5.14.0\noptions root=/dev/sda1 ro selinux=0\n")
    root.write("etc/selinux/config", RHEL_SELINUX_CONFIG.replace("SELINUX=enforcing", "SELINUX=disabled"))
    plan = plan_for(root.path, "disable-selinux", live=True)
    assert plan.empty and "permissive until the reboot" in plan.nothing_to_do["disable-selinux"]
    root.write("boot/loader/entries/abc-5.14.0.conf", "title AlmaLinux\noptions root=/dev/sda1 ro\n")
    [karg] = only(plan_for(root.path, "disable-selinux", live=True), "disable-selinux").actions
    assert isinstance(karg, AddKernelArgs)


@pytest.mark.parametrize("config, expected", [
    ("SELINUX=enforcing\r\nSELINUXTYPE=targeted\r\n", "SELINUX=disabled\r\nSELINUXTYPE=targeted\r\n"),
    ("# c\nSELINUXTYPE=mls\n  SELINUX=permissive", "# c\nSELINUXTYPE=mls\n  SELINUX=disabled"),
    ("SELINUX=enforcing\nSELINUX=permissive\n", "SELINUX=disabled\nSELINUX=permissive\n"),  # libselinux reads the first
    ("SELINUXTYPE=targeted\n", "SELINUXTYPE=targeted\nSELINUX=disabled\n"),
    ("SELINUX=bogus\n# keep\n", "SELINUX=disabled\n# keep\n"),
    ("SELINUXTYPE=targeted", "SELINUXTYPE=targeted\nSELINUX=disabled\n"),
])
def test_disable_selinux_changes_only_the_selinux_line(root, config, expected):
    selinux_root(root, config=config)
    [action] = only(plan_for(root.path, "disable-selinux"), "disable-selinux").actions
    assert action.content == expected


def test_disable_selinux_nothing_to_do(root):
    selinux_root(root, config=RHEL_SELINUX_CONFIG.replace("SELINUX=enforcing", "SELINUX=disabled"))
    assert "already disabled" in plan_for(root.path, "disable-selinux").nothing_to_do["disable-selinux"]
    root2 = root.path.parent / "debian"
    debian_root(root2)
    assert "not configured" in plan_for(root2, "disable-selinux").nothing_to_do["disable-selinux"]


def test_selinux_permissive_end_to_end(root):
    selinux_root(root)
    conf = root.path / "etc/selinux/config"
    original = conf.read_bytes()
    params = {"want": "permissive-or-disabled"}
    assert root.check("security.selinux", params).status is Status.FAIL
    plan = plan_for(root.path, "selinux-permissive")
    [action] = only(plan, "selinux-permissive").actions
    assert isinstance(action, WriteFile) and not action.reboot
    assert "+SELINUX=permissive" in render_preview(plan)
    apply(root.path, plan)
    assert augtool_get(root.path, "SELINUX") == "/files/etc/selinux/config/SELINUX = permissive"
    assert augtool_get(root.path, "SELINUXTYPE") == "/files/etc/selinux/config/SELINUXTYPE = targeted"
    assert changed_lines(original.decode(), conf.read_text()) == [("SELINUX=enforcing\n", "SELINUX=permissive\n")]
    assert root.check("security.selinux", params).status is Status.PASS
    assert plan_for(root.path, "selinux-permissive").empty
    undo(root.path)
    assert conf.read_bytes() == original


def test_selinux_permissive_live_setenforce_only_and_never_reenables(root):
    selinux_root(root, config=RHEL_SELINUX_CONFIG.replace("SELINUX=enforcing", "SELINUX=permissive"), enforce="1")
    [action] = only(plan_for(root.path, "selinux-permissive", live=True), "selinux-permissive").actions
    assert isinstance(action, RunCommand) and action.argv == ["setenforce", "0"] and action.runtime
    root.write("sys/fs/selinux/enforce", "0")
    assert plan_for(root.path, "selinux-permissive", live=True).empty
    # disabled is stronger than permissive: never turned back on (that would need a relabel)
    root.write("etc/selinux/config", RHEL_SELINUX_CONFIG.replace("SELINUX=enforcing", "SELINUX=disabled"))
    plan = plan_for(root.path, "selinux-permissive")
    assert plan.empty and "SELINUX=disabled" in plan.nothing_to_do["selinux-permissive"]


# ================================================================ accounts

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
SHADOW = "root:*:19000:0:99999:7:::\nalice:!:19000:0:99999:7:::\n"


def accounts_root(root, groups=("libvirt",), rules=None):
    debian_root(root.path)
    root.write("etc/passwd", PASSWD)
    root.write("etc/shadow", SHADOW, mode=0o640)
    gid = 990
    group_lines, gshadow_lines = ["root:x:0:", "alice:x:1000:"], ["root:*::", "alice:!::"]
    for g in groups:
        group_lines.append(f"{g}:x:{gid}:")
        gshadow_lines.append(f"{g}:!::")
        gid -= 1
    root.write("etc/group", "\n".join(group_lines) + "\n")
    root.write("etc/gshadow", "\n".join(gshadow_lines) + "\n", mode=0o640)
    root.mkdir("lib/udev/rules.d")
    for path, text in (rules or {}).items():
        root.write(path, text)
    return root


ACCOUNT_FILES = ("etc/passwd", "etc/shadow", "etc/group", "etc/gshadow")


def account_bytes(root):
    return {f: (root.path / f).read_bytes() for f in ACCOUNT_FILES}


def test_fix_kvm_permissions_offline_end_to_end(root):
    require("groupadd", "groupdel")
    need_root()
    accounts_root(root)
    before_accounts = account_bytes(root)
    assert root.check("kvm.device-access").status is Status.WARN
    plan = plan_for(root.path, "fix-kvm-permissions")
    step = only(plan, "fix-kvm-permissions")
    groupadd, rule = step.actions
    assert isinstance(groupadd, RunCommand)
    assert groupadd.argv == ["groupadd", "-R", str(root.path), "-r", "kvm"]
    assert groupadd.undo_argv == ["groupdel", "-R", str(root.path), "kvm"]
    assert isinstance(rule, WriteFile) and rule.path == "/etc/udev/rules.d/65-kvm.rules"
    assert 'KERNEL=="kvm", GROUP="kvm", MODE="0660"\n' in rule.content
    assert any("udevadm trigger: skipped" in n for n in step.notes)
    preview = render_preview(plan)
    assert f"$ groupadd -R {root.path} -r kvm" in preview and '+KERNEL=="kvm", GROUP="kvm", MODE="0660"' in preview

    apply(root.path, plan)
    assert any(line.startswith("kvm:x:") for line in (root.path / "etc/group").read_text().splitlines())
    r = root.check("kvm.device-access")
    assert r.status is Status.PASS and "group kvm, mode 0660" in r.detail
    assert plan_for(root.path, "fix-kvm-permissions").empty

    undo(root.path)
    assert account_bytes(root) == before_accounts
    assert not (root.path / "etc/udev/rules.d/65-kvm.rules").exists()


def test_fix_kvm_permissions_keeps_other_lines_of_an_existing_rule_file(root):
    accounts_root(root, groups=("kvm",), rules={
        "etc/udev/rules.d/65-kvm.rules": '# site rules\nKERNEL=="kvm", GROUP="root", MODE="0600"\n'
                                         'KERNEL=="vhost-net", MODE="0666"\n'})
    [rule] = only(plan_for(root.path, "fix-kvm-permissions"), "fix-kvm-permissions").actions
    assert rule.content == ('# site rules\nKERNEL=="kvm", GROUP="kvm", MODE="0660"\n'
                            'KERNEL=="vhost-net", MODE="0666"\n')


def test_fix_kvm_permissions_nothing_when_a_rule_already_gives_it(root):
    accounts_root(root, groups=("kvm",), rules={
        "lib/udev/rules.d/50-udev-default.rules": 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"\n'})
    plan = plan_for(root.path, "fix-kvm-permissions")
    assert plan.empty and "50-udev-default.rules" in plan.nothing_to_do["fix-kvm-permissions"]
    assert root.check("kvm.device-access").status is Status.PASS


def test_fix_kvm_permissions_live_without_udev_fixes_the_node_now(root):
    """Live (faked on a tmp root): the existing node is given to kvm at once; planned, not run here."""
    accounts_root(root, groups=("kvm",))
    root.write("dev/kvm", "", mode=0o600)
    gid = os.stat(root.path / "dev/kvm").st_gid
    step = only(plan_for(root.path, "fix-kvm-permissions", live=True), "fix-kvm-permissions")
    rule, chgrp, chmod = step.actions
    dev = str(root.path / "dev/kvm")
    assert isinstance(rule, WriteFile)
    assert chgrp.argv == ["chgrp", "kvm", dev] and chgrp.undo_argv == ["chgrp", str(gid), dev] and chgrp.runtime
    assert chmod.argv == ["chmod", "0660", dev] and chmod.undo_argv == ["chmod", "0600", dev] and chmod.runtime


def test_fix_kvm_permissions_live_with_udev_triggers(root, tmp_path):
    accounts_root(root, groups=("kvm",))
    root.write("dev/kvm", "", mode=0o600)
    root.write("run/udev/control", "")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "udevadm").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "udevadm").chmod(0o755)
    plan = plan_for(root.path, "fix-kvm-permissions", live=True, env={"PATH": str(bindir)})
    rule, reload, trigger, settle = only(plan, "fix-kvm-permissions").actions
    want = ["udevadm", "trigger", "--action=change", "--subsystem-match=misc", "--sysname-match=kvm"]
    # udevd looks for new rule files at most every 3 s: reloaded first (a CI run of the QEMU lab)
    assert reload.argv == reload.undo_argv == ["udevadm", "control", "--reload"] and reload.undo_at_end
    assert trigger.argv == want and trigger.runtime
    assert settle.argv == ["udevadm", "settle", "--timeout=30"] and settle.runtime
    # undone the same way, after undo restored the rules (a journal naming them is accepted)
    from remediations.undo_rules import check_entry

    assert trigger.undo_argv == want and trigger.undo_at_end and settle.undo_at_end
    for action in (reload, trigger, settle):
        check_entry(action, root.host(live=True))
    assert "$ " + " ".join(want) in render_preview(plan)
    # no /dev/kvm yet (load-kvm-modules creates it in the same apply): the rule is applied
    # to it after all, instead of relying on a later device event (found in the QEMU lab)
    (root.path / "dev/kvm").unlink()
    plan = plan_for(root.path, "fix-kvm-permissions", live=True, env={"PATH": str(bindir)})
    rule, reload, trigger, settle = only(plan, "fix-kvm-permissions").actions
    assert trigger.argv == want and "load-kvm-modules" in trigger.why


def test_udev_retrigger_with_no_device_is_no_error(tmp_path):
    """The form planned when /dev/kvm may not exist: the real udevadm matches
    nothing and exits 0 (where udevadm is installed)."""
    import shutil
    import subprocess

    if shutil.which("udevadm") is None:
        pytest.skip("udevadm is not installed")
    r = subprocess.run(["udevadm", "trigger", "--dry-run", "--action=change", "--subsystem-match=misc",
                        "--sysname-match=kvm-no-such-device"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_add_user_to_groups_sudo_user_end_to_end(root):
    require("usermod", "gpasswd")
    need_root()
    accounts_root(root, groups=("kvm", "libvirt"))
    before = account_bytes(root)
    env = {"SUDO_USER": "alice"}
    assert root.check("user.groups", env=env).status is Status.FAIL
    plan = plan_for(root.path, "add-user-to-groups", env=env)
    step = only(plan, "add-user-to-groups")
    [action] = step.actions
    assert isinstance(action, AddUserToGroups)
    assert (action.user, action.groups, action.root) == ("alice", ["kvm", "libvirt"], str(root.path))
    assert f"$ usermod --root {root.path} -aG kvm,libvirt -- alice" in render_preview(plan)
    assert any("log out and back in" in n for n in step.notes)

    host = host_of(root.path, env=env)
    result = apply_plan(host, plan)
    assert result.ok, result.actions
    group = (root.path / "etc/group").read_text()
    assert "kvm:x:990:alice" in group and "libvirt:x:989:alice" in group
    assert root.check("user.groups", env=env).status is Status.PASS
    assert plan_for(root.path, "add-user-to-groups", env=env).empty

    assert undo_last(host).ok
    assert account_bytes(root) == before


def test_add_user_to_groups_libvirtd_alias_missing_group_and_param(root):
    accounts_root(root, groups=("libvirtd",))
    prop = propose(root.path, "add-user-to-groups", {"user.groups": {"user": "alice"}})
    [action] = prop.actions
    assert action.groups == ["libvirtd"] and action.user == "alice"
    assert any("group kvm does not exist yet" in n and "fix-kvm-permissions" in n for n in prop.notes)


@pytest.mark.parametrize("env, params, words", [
    ({}, {}, "root needs no group membership"),
    ({"SUDO_USER": "bob"}, {}, "not a local user"),
    ({"SUDO_USER": "alice"}, {"user.groups": {"groups": ["wheel"]}}, "group wheel does not exist yet"),
])
def test_add_user_to_groups_nothing_cases(root, env, params, words):
    accounts_root(root, groups=("kvm", "libvirt"))
    prop = propose(root.path, "add-user-to-groups", params, env=env)
    assert not prop.actions and words in prop.nothing


def test_add_user_to_groups_already_member(root):
    accounts_root(root, groups=("kvm", "libvirt"))
    text = (root.path / "etc/group").read_text().replace("kvm:x:990:", "kvm:x:990:alice")
    root.write("etc/group", text.replace("libvirt:x:989:", "libvirt:x:989:alice"))
    plan = plan_for(root.path, "add-user-to-groups", env={"SUDO_USER": "alice"})
    assert plan.empty and "alice is already in kvm, libvirt" in plan.nothing_to_do["add-user-to-groups"]


def test_every_id_is_registered_and_named_by_its_checks():
    from checks.registry import all_checks

    cat, checks = all_remediations(), all_checks()
    for rid, fixes in {"enable-libvirt": ["services.libvirt"], "enable-nftables": ["services.nftables"],
                       "enable-time-sync": ["time.sync"], "disable-selinux": ["security.selinux"],
                       "selinux-permissive": ["security.selinux"], "fix-kvm-permissions": ["kvm.device-access"],
                       "add-user-to-groups": ["user.groups", "kvm.device-access"]}.items():
        assert list(cat[rid].fixes) == fixes
        for cid in fixes:
            assert rid in checks[cid].remediations
