"""Package, service and container checks against roots filled by the real tools.

Package databases are written by real rpm/dnf/dpkg/apt-get transactions of
stub packages (tests/pkgroots.py); unit enablement by ``systemctl --root``.
"""

from __future__ import annotations

import struct
import subprocess

import pytest

from checks import pkgdb, units
from checks.errors import ProbeError, ToolMissing
from checks.model import Status

from pkgroots import deb_repo, rpm_repo  # noqa: F401  (session fixtures)
from pkgroots import (
    LIBVIRTD_SERVICE, LIBVIRTD_SOCKET, NFTABLES_SERVICE, SYSTEMD_DIR_DEB, apt_install, debian_root,
    dnf_install, dpkg_install, el_root, modular_units, require, rpm_install, systemctl, write_preset,
    write_unit,
)

NO_TOOLS = {"PATH": "/nonexistent"}  # hides rpm, dpkg-query and systemctl (all in /usr/bin)
EL_VIRT = ["qemu-kvm", "libvirt", "libvirt-client", "virt-install"]
DEB_VIRT = ["qemu-system-x86", "libvirt-daemon-system", "libvirt-clients", "virtinst", "qemu-utils", "dnsmasq-base",
            "ovmf", "bridge-utils"]


def elf_header(machine: int) -> bytes:
    """The first bytes of a 64-bit little-endian ELF binary for ``machine``."""
    return b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HH", 2, machine) + bytes(44)


def ev_text(result) -> str:
    return "\n".join(f"{e.source}: {e.value}" for e in result.evidence)


# ---------------------------------------------------------------- pkgdb


def test_pkgdb_reads_a_root_filled_by_dnf_installroot(root, rpm_repo):
    el_root(root.path, rpm_repo)
    dnf_install(root.path, ["qemu-kvm", "libvirt"])
    host = root.host()
    assert pkgdb.rpm_dbpath(host) == "/var/lib/rpm"
    assert pkgdb.database_kind(host, "rhel") == "rpm"
    found, source = pkgdb.installed(host, "rpm", ["qemu-kvm", "libvirt", "virt-install"])
    assert found == {"qemu-kvm": "6.2.0-40.module_el8.9.0+3681+41cbbcc0", "libvirt": "8.0.0-22.module_el8",
                     "virt-install": None}
    assert "--dbpath=/var/lib/rpm" in source


def test_pkgdb_reads_a_root_filled_by_rpm_root_install(root, rpm_repo):
    el_root(root.path)
    rpm_install(root.path, rpm_repo, ["libvirt-client"])
    found, _ = pkgdb.installed(root.host(), "rpm", ["libvirt-client", "qemu-kvm"])
    assert found == {"libvirt-client": "8.0.0-1", "qemu-kvm": None}


def test_pkgdb_finds_the_sysimage_database_of_el9(root, rpm_repo):
    el_root(root.path, version="9.3")
    rpm_install(root.path, rpm_repo, ["qemu-kvm"], dbpath="/usr/lib/sysimage/rpm")
    root.symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm")
    host = root.host()
    assert pkgdb.rpm_dbpath(host) == "/usr/lib/sysimage/rpm"
    assert pkgdb.installed(host, "rpm", ["qemu-kvm"])[0] == {"qemu-kvm": "6.2.0-40.module_el8.9.0+3681+41cbbcc0"}


def test_pkgdb_finds_debian_rpms_default_home_database(root, rpm_repo):
    """dnf --installroot from a Debian host without a dbpath writes R/root/.rpmdb."""
    require("dnf", "rpm")
    from pkgroots import dnf_options, run
    el_root(root.path, rpm_repo)
    default = run(["rpm", "--eval", "%_dbpath"], env={"HOME": "/root"}).stdout.strip()
    run(["dnf", *dnf_options(root.path), "install", "virt-install"], env={"HOME": "/root"})
    host = root.host()
    dbpath = pkgdb.rpm_dbpath(host)
    assert dbpath == (default if default in pkgdb.RPM_DBPATHS else dbpath) and dbpath is not None
    assert pkgdb.installed(host, "rpm", ["virt-install"])[0] == {"virt-install": "3.2.0-1"}


def test_pkgdb_never_creates_an_rpm_database(root):
    el_root(root.path)
    with pytest.raises(ProbeError):
        pkgdb.installed(root.host(), "rpm", ["qemu-kvm"])
    assert not list(root.path.rglob("rpmdb.sqlite"))


def test_pkgdb_rpm_missing_raises_tool_missing(root, rpm_repo):
    el_root(root.path)
    rpm_install(root.path, rpm_repo, ["qemu-kvm"])
    with pytest.raises(ToolMissing):
        pkgdb.installed(root.host(env=NO_TOOLS), "rpm", ["qemu-kvm"])


def test_pkgdb_dpkg_without_dpkg_query_reads_the_status_file(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["virtinst"])
    found, source = pkgdb.installed(root.host(env=NO_TOOLS), "dpkg", ["virtinst", "bridge-utils"])
    assert found == {"virtinst": "1:4.1.0-2", "bridge-utils": None}
    assert source.endswith("/var/lib/dpkg/status")


# ---------------------------------------------------- packages.virtualization


def test_virtualization_el8_pass_after_dnf_install(root, rpm_repo):
    el_root(root.path, rpm_repo)
    dnf_install(root.path, EL_VIRT)
    r = root.check("packages.virtualization")
    assert r.status is Status.PASS, r.detail
    assert "qemu-kvm 6.2.0" in r.detail and "bridge-utils" not in r.detail  # not shipped on EL 8


def test_virtualization_el8_accepts_libvirt_daemon_kvm(root, rpm_repo):
    el_root(root.path, rpm_repo)
    dnf_install(root.path, ["qemu-kvm-core", "libvirt-daemon-kvm", "libvirt-client", "virt-install"])
    r = root.check("packages.virtualization")
    assert r.status is Status.PASS, r.detail
    assert "libvirt-daemon-kvm" in r.detail and "qemu-kvm-core" in r.detail


def test_virtualization_el8_missing_lists_exactly_what_is_missing(root, rpm_repo):
    el_root(root.path, rpm_repo)
    dnf_install(root.path, ["qemu-kvm"])
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL
    assert "libvirt (or libvirt-daemon-kvm), libvirt-client, virt-install" in r.detail
    assert "qemu-kvm" not in r.detail.split(":", 1)[1].split("libvirt")[0]
    assert r.hint == "dnf install -y libvirt libvirt-client virt-install"
    assert r.remediations == ["install-virtualization-packages"]


def test_virtualization_el7_wants_bridge_utils_with_yum(root, rpm_repo):
    el_root(root.path, version="7.9")
    rpm_install(root.path, rpm_repo, EL_VIRT)
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL and r.detail.endswith(": bridge-utils")
    assert r.hint == "yum install -y bridge-utils"
    assert root.check("packages.virtualization", {"bridge_utils": False}).status is Status.PASS


def test_virtualization_debian_pass_after_apt_get_install(root, deb_repo):
    debian_root(root.path, deb_repo)
    apt_install(root.path, DEB_VIRT)
    r = root.check("packages.virtualization")
    assert r.status is Status.PASS, r.detail
    assert "qemu-system-x86 1:7.2+dfsg-7+deb12u6" in r.detail
    assert "/var/lib/dpkg/status: qemu-system-x86 1:7.2" in ev_text(r)


def test_dpkg_status_file_reads_as_dpkg_query_does(root, deb_repo, monkeypatch):
    """The status file is read directly; what it gives is what dpkg-query
    answers for the same database (also a package removed with its
    configuration kept: not installed)."""
    require("dpkg-query", "dpkg")
    debian_root(root.path, deb_repo)
    apt_install(root.path, DEB_VIRT)
    subprocess.run(["dpkg", f"--root={root.path}", "--remove", "bridge-utils"], check=True,
                   capture_output=True)
    host = root.host()
    direct, source = pkgdb._dpkg_listing(host)
    assert source.endswith("/var/lib/dpkg/status")
    monkeypatch.setattr(pkgdb, "_status_versions", lambda data, strict=True: None)
    asked, source = pkgdb._dpkg_listing(root.host())
    assert source.startswith("dpkg-query --admindir=")
    assert direct == asked and "qemu-system-x86" in direct and "bridge-utils" not in direct


def test_dpkg_pending_journal_is_merged_by_dpkg_query(root, deb_repo):
    """An interrupted dpkg leaves entries in updates/ that the status file
    does not have yet: then dpkg-query, which merges them, answers."""
    require("dpkg-query")
    debian_root(root.path, deb_repo)
    apt_install(root.path, DEB_VIRT)
    status = (root.path / "var/lib/dpkg/status").read_text()
    stanza = next(s for s in status.split("\n\n") if s.startswith("Package: virtinst\n"))
    root.write("var/lib/dpkg/updates/0000",
               stanza.replace("Status: install ok installed", "Status: deinstall ok config-files") + "\n")
    listing, source = pkgdb._dpkg_listing(root.host())
    assert source.startswith("dpkg-query --admindir=")
    assert "virtinst" not in listing and "qemu-system-x86" in listing


def test_virtualization_debian_missing_gives_apt_hint(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["qemu-system-x86", "libvirt-clients"])
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL
    assert ("missing on Debian GNU/Linux 12 (bookworm): libvirt-daemon-system, virtinst, qemu-utils, "
            "dnsmasq-base, ovmf (or qemu-efi-aarch64), bridge-utils") == r.detail
    assert r.hint == ("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
                      "libvirt-daemon-system virtinst qemu-utils dnsmasq-base ovmf bridge-utils")


def test_virtualization_debian_accepts_qemu_kvm_and_flags_libvirt_bin(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["qemu-kvm", "libvirt-bin", "libvirt-clients", "virtinst", "bridge-utils",
                                       "qemu-utils", "dnsmasq-base", "ovmf"])
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL
    assert r.detail.startswith("missing on Debian GNU/Linux 12 (bookworm): libvirt-daemon-system;")
    assert "libvirt-bin 4.0.0-1ubuntu8 is installed but obsolete" in r.detail
    assert "qemu-kvm 1:2.11" in ev_text(r)


def test_virtualization_debian_on_aarch64_wants_qemu_system_arm(root, deb_repo):
    debian_root(root.path)
    root.write("bin/sh", elf_header(0xB7))
    dpkg_install(root.path, deb_repo, DEB_VIRT)
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL and "qemu-system-arm" in r.detail
    assert r.hint.endswith("apt-get install -y --no-install-recommends qemu-system-arm qemu-efi-aarch64")
    dpkg_install(root.path, deb_repo, ["qemu-system-arm", "qemu-efi-aarch64"])
    assert root.check("packages.virtualization").status is Status.PASS


def test_virtualization_suse_names_and_zypper_hint(root, rpm_repo):
    root.use("os/sles_15_6")
    rpm_install(root.path, rpm_repo, ["libvirt-client", "virt-install"])
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL
    assert "patterns-server-kvm_server (or qemu-kvm, qemu-" in r.detail and "libvirt-daemon" in r.detail
    assert r.hint == "zypper install -y patterns-server-kvm_server libvirt-daemon bridge-utils"
    rpm_install(root.path, rpm_repo, ["qemu-kvm", "libvirt-daemon", "bridge-utils"])
    assert root.check("packages.virtualization").status is Status.PASS


def test_virtualization_profile_override_per_family(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["qemu-kvm", "libvirt-clients"])
    params = {"packages": {"debian": ["qemu-system-x86|qemu-kvm", "libvirt-clients"]}}
    assert root.check("packages.virtualization", params).status is Status.PASS
    params = {"packages": {"debian": ["virtinst"]}}
    r = root.check("packages.virtualization", params)
    assert r.status is Status.FAIL and r.hint.endswith("install -y --no-install-recommends virtinst")


@pytest.mark.parametrize("fixture,words", [
    ("os/archlinux_rolling", "unknown distribution Arch Linux (ID=arch"),
    (None, "unknown distribution: no /etc/os-release"),
])
def test_virtualization_unknown_distribution_fails_clearly(root, fixture, words):
    if fixture:
        root.use(fixture)
    else:
        root.mkdir("etc")
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL and words in r.detail, r.detail


def test_virtualization_without_a_package_database_skips(root):
    el_root(root.path)
    r = root.check("packages.virtualization")
    assert r.status is Status.SKIP and "no package database" in r.detail


def test_virtualization_rpm_tool_missing_skips(root, rpm_repo):
    el_root(root.path)
    rpm_install(root.path, rpm_repo, EL_VIRT)
    r = root.check("packages.virtualization", env=NO_TOOLS)
    assert r.status is Status.SKIP
    assert "rpm is not installed on the machine kvmprep runs on" in r.detail


def test_virtualization_garbled_dpkg_status_fails_with_repair_hint(root):
    require("dpkg-query")
    debian_root(root.path)
    root.write("var/lib/dpkg/status", b"\x00\x01garbage\n::::\nPackage\n")
    r = root.check("packages.virtualization")
    assert r.status is Status.FAIL and "dpkg package database cannot be read" in r.detail, r.detail
    assert "dpkg.status.0" in r.hint


def test_virtualization_garbled_status_without_dpkg_query_is_parsed_leniently(root):
    debian_root(root.path)
    root.write("var/lib/dpkg/status", b"\x00\x01garbage\n::::\nPackage\n")
    r = root.check("packages.virtualization", env=NO_TOOLS)
    assert r.status is Status.FAIL and r.detail.startswith("missing on Debian")


# ---------------------------------------------------------- packages.tools


def test_tools_pass_from_packaged_binaries(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["dmidecode", "python3"])
    r = root.check("packages.tools")
    assert r.status is Status.PASS, r.detail
    assert "/usr/sbin/dmidecode" in ev_text(r)


def test_tools_missing_gives_install_hint(root, rpm_repo):
    el_root(root.path)
    rpm_install(root.path, rpm_repo, ["python3"])
    r = root.check("packages.tools", {"tools": ["dmidecode", "python3", "chrony", "tpm2-tools"]})
    assert r.status is Status.FAIL
    assert r.detail == "missing: dmidecode, chrony, tpm2-tools"
    assert r.hint == "dnf install -y dmidecode chrony tpm2-tools"
    assert r.remediations == ["install-tools"]


def test_tools_map_names_per_family(root, rpm_repo):
    root.use("os/sles_15_6")
    rpm_install(root.path, rpm_repo, ["chrony"])
    r = root.check("packages.tools", {"tools": ["chrony", "tpm2-tools"]})
    assert r.status is Status.FAIL and r.hint == "zypper install -y tpm2.0-tools"


def test_tools_binary_without_package_and_package_without_binary(root, deb_repo):
    debian_root(root.path)
    root.write("usr/local/bin/python3", "#!/bin/sh\n", mode=0o755)
    dpkg_install(root.path, deb_repo, ["virtinst"])
    r = root.check("packages.tools", {"tools": ["python3", "virtinst"]})
    assert r.status is Status.PASS, r.detail
    assert "package virtinst 1:4.1.0-2 installed" in ev_text(r)


def test_tools_unknown_distribution_still_decides(root):
    root.use("os/archlinux_rolling")
    root.write("usr/bin/python3", "#!/bin/sh\n")
    r = root.check("packages.tools")
    assert r.status is Status.FAIL and r.detail == "missing: dmidecode"
    assert "package manager" in r.hint


def test_tools_empty_list_passes(root):
    assert root.check("packages.tools", {"tools": []}).status is Status.PASS


# ----------------------------------------------------------- services.libvirt


def test_libvirt_not_installed(root):
    el_root(root.path)
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and r.detail.startswith("libvirt is not installed")
    assert r.hint == "dnf install -y libvirt"


def test_libvirt_monolithic_from_package_disabled_then_enabled(root, rpm_repo):
    require("systemctl")
    el_root(root.path, rpm_repo)
    dnf_install(root.path, ["libvirt-daemon"])
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and "libvirtd (monolithic) is installed but not enabled" in r.detail
    assert r.hint == "systemctl enable --now libvirtd"
    assert "is-enabled" in ev_text(r) and "libvirtd.service disabled" in ev_text(r)
    systemctl(root.path, "enable", "libvirtd.service")
    r = root.check("services.libvirt")
    assert r.status is Status.PASS, r.detail
    assert "offline root: nothing can be running" in r.detail


def test_libvirt_debian_package_units_under_lib(root, deb_repo):
    require("systemctl")
    debian_root(root.path, deb_repo)
    apt_install(root.path, ["libvirt-daemon-system"])
    assert (root.path / SYSTEMD_DIR_DEB.lstrip("/") / "libvirtd.service").exists()
    systemctl(root.path, "enable", "libvirtd.service")
    assert root.check("services.libvirt").status is Status.PASS


def _modular(root, enable=(), drivers=None):
    kw = {} if drivers is None else {"drivers": drivers}
    for name, text in modular_units(**kw).items():
        write_unit(root.path, name, text)
    if enable:
        systemctl(root.path, "enable", *enable)


def test_libvirt_modular_enabled_passes(root):
    require("systemctl")
    el_root(root.path, version="9.3")
    _modular(root, enable=[f"{d}.socket" for d in ("virtqemud", "virtnetworkd", "virtnodedevd",
                                                    "virtnwfilterd", "virtsecretd", "virtstoraged")])
    r = root.check("services.libvirt")
    assert r.status is Status.PASS, r.detail
    assert "virtqemud (modular)" in r.detail


def test_libvirt_modular_companions_disabled_warns(root):
    require("systemctl")
    el_root(root.path, version="9.3")
    _modular(root, enable=["virtqemud.socket"])
    r = root.check("services.libvirt")
    assert r.status is Status.WARN and "virtnetworkd.socket" in r.detail
    assert r.hint.startswith("systemctl enable --now virtnetworkd.socket")


def test_libvirt_modular_disabled_hints_the_socket_list(root):
    require("systemctl")
    el_root(root.path, version="9.3")
    _modular(root, drivers=("virtqemud", "virtnetworkd"))
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and "virtqemud (modular)" in r.detail
    assert r.hint == ("systemctl enable --now virtqemud.socket virtqemud-ro.socket virtqemud-admin.socket "
                      "virtnetworkd.socket virtnetworkd-ro.socket virtnetworkd-admin.socket")


def _both_models(root):
    el_root(root.path, version="9.3")
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    write_unit(root.path, "libvirtd.socket", LIBVIRTD_SOCKET)
    _modular(root, drivers=("virtqemud",))


def test_libvirt_both_models_preset_chooses_modular(root):
    require("systemctl")
    _both_models(root)
    write_preset(root.path, "85-libvirt.preset", ["enable virtqemud.socket", "disable libvirtd.service"])
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and "virtqemud (modular)" in r.detail and "preset" in r.detail
    assert "85-libvirt.preset" in ev_text(r)


def test_libvirt_both_models_without_preset_is_monolithic(root):
    require("systemctl")
    _both_models(root)
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and "libvirtd (monolithic)" in r.detail
    assert r.hint == "systemctl enable --now libvirtd"


def test_libvirt_both_models_the_enabled_one_wins_over_the_preset(root):
    require("systemctl")
    _both_models(root)
    write_preset(root.path, "85-libvirt.preset", ["enable virtqemud.socket"])
    systemctl(root.path, "enable", "libvirtd.service")
    r = root.check("services.libvirt")
    assert r.status is Status.PASS and "libvirtd (monolithic)" in r.detail


def test_libvirt_both_models_enabled_warns_of_the_conflict(root):
    require("systemctl")
    _both_models(root)
    systemctl(root.path, "enable", "libvirtd.service", "virtqemud.socket")
    r = root.check("services.libvirt")
    assert r.status is Status.WARN and "conflict" in r.detail
    assert r.hint.startswith("keep the monolithic model: systemctl disable --now virtqemud")


def test_libvirt_masked(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    systemctl(root.path, "mask", "libvirtd.service")
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and "masked" in r.detail
    assert r.hint.startswith("systemctl unmask libvirtd.service")


def test_libvirt_garbled_unit_file_is_not_enabled(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "libvirtd.service", "\x00\x01garbage\n[[[\n")
    r = root.check("services.libvirt")
    assert r.status is Status.FAIL and "not enabled" in r.detail


def test_libvirt_without_systemctl_reads_the_links(root):
    el_root(root.path)
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    r = root.check("services.libvirt", env=NO_TOOLS)
    assert r.status is Status.FAIL and "not enabled" in r.detail
    root.symlink("etc/systemd/system/multi-user.target.wants/libvirtd.service",
                 "/usr/lib/systemd/system/libvirtd.service")
    r = root.check("services.libvirt", env=NO_TOOLS)
    assert r.status is Status.PASS and "systemctl is not installed" in ev_text(r)


def _proc(root, pid, comm, argv):
    root.write(f"proc/{pid}/comm", comm + "\n")
    root.write(f"proc/{pid}/cmdline", "\0".join(argv) + "\0")


def test_libvirt_live_without_systemd_uses_the_process_table(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    systemctl(root.path, "enable", "libvirtd.service")
    _proc(root, 1, "init", ["/sbin/init"])
    r = root.check("services.libvirt", live=True)
    assert r.status is Status.WARN and "systemd is not PID 1" in r.detail
    _proc(root, 812, "libvirtd", ["/usr/sbin/libvirtd", "--timeout", "120"])
    r = root.check("services.libvirt", live=True)
    assert r.status is Status.PASS and "process table" in r.detail
    assert "libvirtd (pid 812)" in ev_text(r)


def test_libvirt_live_not_enabled_but_running(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    _proc(root, 812, "libvirtd", ["/usr/sbin/libvirtd"])
    r = root.check("services.libvirt", live=True)
    assert r.status is Status.FAIL and "although it runs now" in r.detail


@pytest.mark.parametrize("active,status", [("active", Status.PASS), ("inactive", Status.FAIL)])
def test_libvirt_live_with_systemd_asks_is_active(root, monkeypatch, active, status):
    require("systemctl")
    el_root(root.path)
    root.mkdir("run/systemd/system")
    write_unit(root.path, "libvirtd.service", LIBVIRTD_SERVICE)
    systemctl(root.path, "enable", "libvirtd.service")
    asked = []
    monkeypatch.setattr(units, "active_state", lambda host, unit: asked.append(unit) or active)
    r = root.check("services.libvirt", live=True)
    assert r.status is status, r.detail
    assert "libvirtd.service" in asked
    if status is Status.FAIL:
        assert r.hint == "systemctl start libvirtd"


# --------------------------------------------------------- services.nftables


def test_nftables_not_installed(root):
    el_root(root.path)
    r = root.check("services.nftables")
    assert r.status is Status.FAIL and "not installed" in r.detail
    assert r.hint == "dnf install -y nftables"


def test_nftables_from_package_disabled_enabled_masked(root, rpm_repo):
    require("systemctl")
    el_root(root.path, rpm_repo)
    dnf_install(root.path, ["nftables"])
    r = root.check("services.nftables")
    assert r.status is Status.FAIL and "not enabled (is-enabled: disabled)" in r.detail
    assert r.hint == "systemctl enable --now nftables" and r.remediations == ["enable-nftables"]
    systemctl(root.path, "enable", "nftables.service")
    r = root.check("services.nftables")
    assert r.status is Status.PASS and "offline root" in r.detail
    systemctl(root.path, "disable", "nftables.service")
    systemctl(root.path, "mask", "nftables.service")
    r = root.check("services.nftables")
    assert r.status is Status.FAIL and "masked" in r.detail


def test_nftables_live_without_systemd(root):
    require("systemctl")
    debian_root(root.path)
    write_unit(root.path, "nftables.service", NFTABLES_SERVICE, directory=SYSTEMD_DIR_DEB)
    systemctl(root.path, "enable", "nftables.service")
    r = root.check("services.nftables", live=True)
    assert r.status is Status.PASS and "systemd is not PID 1" in r.detail


def test_nftables_garbled_unit(root):
    require("systemctl")
    el_root(root.path)
    write_unit(root.path, "nftables.service", "\x00garbage [[[\n")
    r = root.check("services.nftables")
    assert r.status is Status.FAIL and "not enabled" in r.detail


# --------------------------------------------------------- containers.docker


@pytest.mark.parametrize("text,version", [
    ("5:20.10.12~3-0~ubuntu-focal", (20, 10, 12)),
    ("20.10.24+dfsg1-1+b3", (20, 10, 24)),
    ("24.0.7-1.el8", (24, 0, 7)),
    ("17.03.2~ce-0~ubuntu-xenial", (17, 3, 2)),
    ("24.0.7_ce-150000.198.2", (24, 0, 7)),
    ("Docker version 24.0.7, build afdd53b", (24, 0, 7)),
    ("garbage", None),
    ("", None),
])
def test_parse_docker_version(text, version):
    from checks.catalog.containers import parse_docker_version
    assert parse_docker_version(text) == version


def test_docker_absent_passes(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["qemu-system-x86"])
    r = root.check("containers.docker")
    assert r.status is Status.PASS and r.detail == "Docker is not installed: nothing to check"


def test_docker_debian_too_old_and_new_enough(root, deb_repo):
    debian_root(root.path)
    dpkg_install(root.path, deb_repo, ["docker-ce"])
    r = root.check("containers.docker")
    assert r.status is Status.FAIL
    assert "docker-ce 5:20.10.9~3-0~debian-bookworm (Docker 20.10.9)" in r.detail
    assert r.hint == "DEBIAN_FRONTEND=noninteractive apt-get install -y --only-upgrade docker-ce"
    other = root.path.parent / "other"
    debian_root(other)
    dpkg_install(other, deb_repo, ["docker.io"])
    r = type(root)(other).check("containers.docker")  # a RootBuilder of the other root
    assert r.status is Status.PASS and "docker.io 20.10.24+dfsg1-1+b3" in r.detail


def test_docker_el_versions_and_min_version_param(root, rpm_repo):
    el_root(root.path, rpm_repo)
    dnf_install(root.path, ["docker-ce"])  # the newest stub: 24.0.7
    r = root.check("containers.docker")
    assert r.status is Status.PASS and "docker-ce 24.0.7-1.el8" in r.detail
    r = root.check("containers.docker", {"min_version": "25.0"})
    assert r.status is Status.FAIL and r.hint == "dnf upgrade -y docker-ce"


def test_docker_el_old_release(root, rpm_repo):
    el_root(root.path)
    rpm_install(root.path, rpm_repo, ["docker-ce"], versions={"docker-ce": "20.10.9"})
    r = root.check("containers.docker")
    assert r.status is Status.FAIL and "20.10.11 or newer is needed" in r.detail


def test_docker_binary_without_package(root):
    debian_root(root.path)
    root.write("usr/bin/dockerd", "#!/bin/sh\necho 'Docker version 19.03.1, build 74b1e89'\n", mode=0o755)
    r = root.check("containers.docker")
    assert r.status is Status.SKIP and "offline root" in r.detail
    r = root.check("containers.docker", live=True)
    assert r.status is Status.FAIL and "Docker 19.3.1" in r.detail
    root.write("usr/bin/dockerd", "#!/bin/sh\necho 'Docker version 24.0.7, build afdd53b'\n", mode=0o755)
    r = root.check("containers.docker", live=True)
    assert r.status is Status.PASS


def test_docker_garbled_version_in_status_file(root):
    debian_root(root.path)
    root.write("var/lib/dpkg/status", "Package: docker.io\nStatus: install ok installed\nVersion: ???\n"
               "Architecture: all\nMaintainer: x <x@example.invalid>\nDescription: x\n")
    r = root.check("containers.docker")
    assert r.status is Status.WARN and "cannot read a Docker version from docker.io ???" in r.detail


def test_docker_without_package_tools_falls_back_to_the_binary(root, rpm_repo):
    el_root(root.path)
    rpm_install(root.path, rpm_repo, ["qemu-kvm"])
    r = root.check("containers.docker", env=NO_TOOLS)
    assert r.status is Status.PASS and "rpm is not installed" in ev_text(r)


def test_dpkg_lookup_by_name_matches_dpkg_query(root, deb_repo):
    """installed() looks each name up in the status file (no full parse); the
    answers are dpkg-query's, also for a removed package (config-files) and
    one with a stanza per architecture."""
    require("dpkg-query", "dpkg")
    debian_root(root.path, deb_repo)
    apt_install(root.path, DEB_VIRT)
    subprocess.run(["dpkg", f"--root={root.path}", "--remove", "bridge-utils"], check=True, capture_output=True)
    status = root.path / "var/lib/dpkg/status"
    text = status.read_text()
    qemu = next(s for s in text.split("\n\n") if s.startswith("Package: qemu-system-x86\n"))
    # dpkg wants every instance of it co-installable, each of one architecture
    same = qemu.replace("Architecture: all", "Architecture: amd64") + "\nMulti-Arch: same"
    other_arch = same.replace("Status: install ok installed", "Status: deinstall ok config-files") \
        .replace("Architecture: amd64", "Architecture: i386")
    assert "Architecture: i386" in other_arch
    status.write_text(other_arch + "\n\n" + text.replace(qemu, same))  # the not-installed i386 one first
    names = DEB_VIRT + ["no-such-package", "-oDir=x", "qemu-system"]
    found, source = pkgdb.installed(root.host(), "dpkg", names)
    assert source.endswith("/var/lib/dpkg/status")
    out = subprocess.run(["dpkg-query", f"--admindir={root.path}/var/lib/dpkg", "-W", "-f",
                          "${Package}\t${Version}\t${db:Status-Status}\n"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = out.stdout
    truth = {}
    for line in out.splitlines():
        name, version, state = line.split("\t")
        if state == "installed":
            truth[name] = version
    assert found == {n: truth.get(n) for n in names}
    assert found["qemu-system-x86"] and found["bridge-utils"] is None and found["qemu-system"] is None
