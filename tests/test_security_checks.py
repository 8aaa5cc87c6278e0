"""Security and TPM checks: secure guests, SELinux, AppArmor, TPM, on built root trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.errors import NeedsRoot
from checks.host import Host
from checks.model import Status

FIXTURES = Path(__file__).parent / "fixtures"  # not from conftest: tests/lab has a conftest of its own

ALMA9 = 'NAME="AlmaLinux"\nVERSION_ID="9.4"\nID="almalinux"\nID_LIKE="rhel centos fedora"\nPRETTY_NAME="AlmaLinux 9.4"\n'
EPYC = (FIXTURES / "cpu/x86_64-epyc_7451/proc/cpuinfo").read_text()
INTEL = (FIXTURES / "cpu/x86_64-64cpu-linux6.2/proc/cpuinfo").read_text()


def with_flags(text, *flags):
    return "\n".join(line + " " + " ".join(flags) if line.startswith("flags") and ":" in line else line
                     for line in text.splitlines()) + "\n"


def sources(result):
    return [e.source for e in result.evidence]


# ---------------------------------------------------------------------------
# security.secure-guest
# ---------------------------------------------------------------------------

def test_sev_enabled_passes_naming_it(root):
    root.write("proc/cpuinfo", with_flags(EPYC, "sev", "sev_es"))
    root.write("sys/module/kvm_amd/parameters/sev", "Y\n")
    root.write("sys/module/kvm_amd/parameters/sev_es", "N\n")
    root.write("dev/sev", "")
    r = root.check("security.secure-guest")
    assert r.status is Status.PASS, r.detail
    assert "AMD SEV" in r.detail and "SEV-ES" in r.detail  # SEV on, SEV-ES capable
    assert root.path.joinpath("dev/sev").as_posix() in sources(r)


def test_sev_old_kernel_reads_1(root):
    root.write("proc/cpuinfo", with_flags(EPYC, "sev"))
    root.write("sys/module/kvm_amd/parameters/sev", "1\n")
    root.write("dev/sev", "")
    assert root.check("security.secure-guest").status is Status.PASS


def test_sev_capable_not_enabled_warns_with_hint(root):
    root.write("proc/cpuinfo", with_flags(EPYC, "sev", "sev_es", "sev_snp"))
    root.write("sys/module/kvm_amd/parameters/sev", "N\n")
    r = root.check("security.secure-guest")
    assert r.status is Status.WARN and "capable" in r.detail
    assert "kvm_amd.sev=1" in r.hint and "kvm_amd.sev_snp=1" in r.hint


def test_sev_on_without_dev_sev_points_at_firmware(root):
    root.write("proc/cpuinfo", with_flags(EPYC, "sev"))
    root.write("sys/module/kvm_amd/parameters/sev", "Y\n")
    r = root.check("security.secure-guest")
    assert r.status is Status.WARN and "/dev/sev is missing" in r.detail
    assert "BIOS" in r.hint


def test_tdx_enabled_and_capable(root):
    root.write("proc/cpuinfo", with_flags(INTEL, "tdx_host_platform"))
    root.write("sys/module/kvm_intel/parameters/tdx", "Y\n")
    r = root.check("security.secure-guest")
    assert r.status is Status.PASS and "Intel TDX" in r.detail
    root.write("sys/module/kvm_intel/parameters/tdx", "N\n")
    r = root.check("security.secure-guest")
    assert r.status is Status.WARN and "kvm_intel.tdx=1" in r.hint


S390 = (FIXTURES / "cpu/s390-lpar-drawer/proc/cpuinfo").read_text()
S390_FAC = S390.replace("features", "facilities      : 0 1 2 3 158 159\nfeatures", 1)


@pytest.mark.parametrize("cmdline,uv,status,words", [
    ("root=/dev/dasda1 prot_virt=1", True, Status.PASS, "IBM Secure Execution"),
    ("root=/dev/dasda1 prot_virt=on", True, Status.PASS, "IBM Secure Execution"),
    ("root=/dev/dasda1", True, Status.WARN, "prot_virt=1 missing"),
    ("root=/dev/dasda1 prot_virt=1", False, Status.WARN, "this kernel does not support it"),
])
def test_s390_protected_virtualization(root, cmdline, uv, status, words):
    root.write("proc/cpuinfo", S390_FAC)
    root.write("proc/cmdline", cmdline + "\n")
    if uv:
        root.mkdir("sys/firmware/uv")
    r = root.check("security.secure-guest")
    assert r.status is status and words in r.detail, r.detail
    if status is Status.WARN and uv:
        assert "prot_virt=1" in r.hint


def test_s390_prot_virt_host_file_is_the_truth(root):
    root.write("proc/cpuinfo", S390_FAC)
    root.write("proc/cmdline", "prot_virt=1\n")
    root.write("sys/firmware/uv/prot_virt_host", "0\n")
    assert root.check("security.secure-guest").status is Status.WARN


@pytest.mark.parametrize("fixture", ["x86_64-epyc_7451", "x86_64-64cpu-linux6.2", "s390-lpar-drawer",
                                     "arm-A510-A710-A715-X3"])
def test_no_secure_guest_warns_never_fails(root, fixture):
    root.use(f"cpu/{fixture}")
    r = root.check("security.secure-guest")
    assert r.status is Status.WARN and "no secure guest technology" in r.detail


def test_secure_guest_empty_root_skips(root):
    root.mkdir("etc")
    assert root.check("security.secure-guest").status is Status.SKIP


def test_secure_guest_garbled_inputs(root):
    root.write("proc/cpuinfo", "\x00\x01garbage\nflags\t: :::: sev\n")
    root.write("sys/module/kvm_amd/parameters/sev", b"\xff\xfe\n")
    r = root.check("security.secure-guest")
    assert r.status is Status.WARN  # capable by flag, parameter not on; no crash


# ---------------------------------------------------------------------------
# security.selinux
# ---------------------------------------------------------------------------

def selinux_root(root, enforce=None, config=None, cmdline="root=/dev/sda1 ro", os_release=None, os_fixture=None):
    if os_fixture:
        root.use(f"os/{os_fixture}")
    if os_release:
        root.write("etc/os-release", os_release)
    if enforce is not None:
        root.write("sys/fs/selinux/enforce", enforce)
    if config is not None:
        root.write("etc/selinux/config", config)
    if cmdline is not None:
        root.write("proc/cmdline", cmdline + "\n")
    return root


CONF = "# This file controls the state of SELinux\nSELINUX={}\nSELINUXTYPE=targeted\n"


def test_selinux_any_enforcing_shows_three_sources(root):
    selinux_root(root, "1", CONF.format("enforcing"), os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.PASS and "enforcing" in r.detail
    src = " ".join(sources(r))
    assert "sys/fs/selinux/enforce" in src and "etc/selinux/config" in src and "proc/cmdline" in src
    assert set(r.remediations) == {"disable-selinux", "selinux-permissive"}


def test_selinux_any_config_disabled_runtime_enforcing_is_pending_reboot(root):
    selinux_root(root, "1", CONF.format("disabled"), os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.WARN and "pending reboot" in r.detail
    assert "reboot" in r.hint


def test_selinux_any_setenforce_0_disagrees_with_config(root):
    selinux_root(root, "0", CONF.format("enforcing"), os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.WARN and "permissive now, enforcing after" in r.detail
    assert "setenforce 1" in r.hint


def test_selinux_enforcing_0_on_command_line_explains_permissive(root):
    selinux_root(root, "0", CONF.format("enforcing"), cmdline="ro enforcing=0", os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.PASS and "enforcing=0" in r.detail


def test_selinux_absent_everywhere_is_disabled(root):
    selinux_root(root, os_fixture="debian_10")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.PASS and "disabled" in r.detail
    for want in ("permissive-or-disabled", "disabled"):
        assert root.check("security.selinux", {"want": want}, live=True).status is Status.PASS


def test_selinux_debian_policycoreutils_config_does_not_turn_it_on(root):
    selinux_root(root, config=CONF.format("permissive"), os_fixture="debian_10")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.PASS and "config permissive" in r.detail


def test_selinux_rhel_disabled_now_but_config_enforcing_warns_relabel(root):
    selinux_root(root, config=CONF.format("enforcing"), os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.WARN and "autorelabel" in r.hint


@pytest.mark.parametrize("config", ["SELINUX=maybe\n", "SELINUXTYPE=targeted\n", b"\x00\xff\xfeSELINUX\n"])
def test_selinux_garbled_config(root, config):
    selinux_root(root, "1", config, os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.WARN and "unusable" in r.detail
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.FAIL and "SELINUX=disabled" in r.hint


def test_selinux_config_value_is_case_insensitive_and_first_line_wins(root):
    selinux_root(root, config="SELINUX=Disabled\nSELINUX=enforcing\n", os_fixture="centos_8_1")
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.PASS


def test_selinux_garbled_enforce_file_is_unknown(root):
    selinux_root(root, "weird", CONF.format("enforcing"), os_fixture="centos_8_1")
    r = root.check("security.selinux", live=True)
    assert r.status is Status.PASS and "runtime unknown" in r.detail


@pytest.mark.parametrize("enforce,config,status", [
    ("1", "enforcing", Status.FAIL),
    (None, "enforcing", Status.FAIL),   # off now (RHEL), enforcing after reboot
    ("1", "permissive", Status.WARN),  # enforcing until reboot
    ("0", "permissive", Status.PASS),
    ("0", "disabled", Status.PASS),
])
def test_selinux_permissive_or_disabled(root, enforce, config, status):
    selinux_root(root, enforce, CONF.format(config), os_fixture="centos_8_1")
    r = root.check("security.selinux", {"want": "permissive-or-disabled"}, live=True)
    assert r.status is status, r.detail
    if status is Status.FAIL:
        assert "SELINUX=permissive" in r.hint
    if status is Status.WARN:
        assert r.hint == "setenforce 0"


@pytest.mark.parametrize("enforce,config,status,hint", [
    (None, "disabled", Status.PASS, None),
    ("1", "disabled", Status.WARN, "reboot"),
    ("1", "enforcing", Status.FAIL, "SELINUX=disabled"),
    ("0", "permissive", Status.FAIL, "SELINUX=disabled"),
])
def test_selinux_disabled_el8(root, enforce, config, status, hint):
    selinux_root(root, enforce, CONF.format(config), os_fixture="centos_8_1")
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is status, r.detail
    if hint:
        assert hint in r.hint
        assert "grubby" not in r.hint  # EL8: the config alone disables it


def test_selinux_disabled_el9_needs_kernel_argument(root):
    selinux_root(root, "1", CONF.format("disabled"), os_release=ALMA9)
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.FAIL and "selinux=0" in r.detail
    assert "grubby --update-kernel ALL --args selinux=0" in r.hint
    assert "sed" not in r.hint  # the config already says disabled


def test_selinux_disabled_el9_with_kernel_argument_passes(root):
    selinux_root(root, None, CONF.format("disabled"), cmdline="ro selinux=0", os_release=ALMA9)
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.PASS, r.detail
    assert "selinux=0" in r.detail


def test_selinux_el9_grubby_done_but_not_rebooted(root):
    selinux_root(root, "1", CONF.format("disabled"), os_release=ALMA9)
    for n in ("a", "b"):
        root.write(f"boot/loader/entries/{n}-5.14.conf", "title AlmaLinux\nlinux /vmlinuz\noptions root=/dev/sda1 ro selinux=0\n")
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.WARN and "pending reboot" in r.detail
    assert any("2 boot entries" in s for s in sources(r))


def test_selinux_el9_argument_only_on_current_boot_fails(root):
    # running with selinux=0 (typed at the boot prompt), but the boot entries lack it
    selinux_root(root, None, CONF.format("disabled"), cmdline="ro selinux=0", os_release=ALMA9)
    root.write("boot/loader/entries/a.conf", "options root=/dev/sda1 ro\n")
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.FAIL and "grubby" in r.hint


def test_selinux_el8_kernelopts_from_grubenv(root):
    selinux_root(root, None, CONF.format("enforcing"), cmdline="ro", os_fixture="centos_8_1")
    root.write("boot/loader/entries/x.conf", "options $kernelopts $tuned_params\n")
    root.write("boot/grub2/grubenv", "# GRUB Environment Block\nkernelopts=root=/dev/sda1 ro selinux=0\n")
    r = root.check("security.selinux", {"want": "disabled"}, live=True)
    assert r.status is Status.PASS, r.detail


def test_selinux_offline_root_reads_files_only(root):
    selinux_root(root, config=CONF.format("disabled"), cmdline=None, os_fixture="centos_8_1")
    r = root.check("security.selinux", {"want": "disabled"})  # offline: runtime unknown
    assert r.status is Status.PASS and "runtime unknown" in r.detail


# ---------------------------------------------------------------------------
# security.apparmor
# ---------------------------------------------------------------------------

def apparmor_root(root, enabled="Y", libvirtd=True, profile=True, loaded="libvirtd (enforce)\n"):
    if enabled is not None:
        root.write("sys/module/apparmor/parameters/enabled", enabled + "\n")
    if libvirtd:
        root.write("usr/sbin/libvirtd", "")
    if profile:
        root.write("etc/apparmor.d/usr.sbin.libvirtd", "profile libvirtd /usr/sbin/libvirtd {}\n")
    if loaded is not None:
        root.write("sys/kernel/security/apparmor/profiles", "/usr/bin/man (enforce)\n" + loaded)
    return root


def never_disable(r):
    assert r.status is not Status.FAIL
    assert not r.hint or ("disable" not in r.hint.lower() and "apparmor=0" not in r.hint)


def test_apparmor_enabled_with_libvirt_profile_loaded(root):
    apparmor_root(root)
    r = root.check("security.apparmor", live=True)
    assert r.status is Status.PASS and "loaded" in r.detail
    assert any("libvirtd (enforce)" in e.value for e in r.evidence)


def test_apparmor_enabled_profile_missing_warns(root):
    apparmor_root(root, profile=False)
    r = root.check("security.apparmor", live=True)
    assert r.status is Status.WARN and "usr.sbin.libvirtd is missing" in r.detail
    never_disable(r)


def test_apparmor_profile_present_but_not_loaded(root):
    apparmor_root(root, loaded="")
    r = root.check("security.apparmor", live=True)
    assert r.status is Status.WARN and "apparmor_parser -r" in r.hint
    never_disable(r)


def test_apparmor_modular_virtqemud_profile(root):
    apparmor_root(root, libvirtd=False, profile=False, loaded="virtqemud (enforce)\n")
    root.write("usr/sbin/virtqemud", "")
    root.write("etc/apparmor.d/usr.sbin.virtqemud", "profile virtqemud {}\n")
    assert root.check("security.apparmor", live=True).status is Status.PASS


@pytest.mark.parametrize("enabled,words", [("N", "not enabled"), (None, "not in this kernel"),
                                           ("\x00\xff", "not enabled")])
def test_apparmor_not_in_use_passes(root, enabled, words):
    apparmor_root(root, enabled=enabled, profile=False, loaded=None)
    root.mkdir("sys/module")
    r = root.check("security.apparmor", live=True)
    assert r.status is Status.PASS and words in r.detail


def test_apparmor_enabled_without_libvirt(root):
    apparmor_root(root, libvirtd=False, profile=False)
    r = root.check("security.apparmor", live=True)
    assert r.status is Status.PASS and "not installed" in r.detail


def test_apparmor_other_lsm_active(root):
    apparmor_root(root, profile=False)
    root.write("sys/kernel/security/lsm", "lockdown,capability,selinux\n")
    r = root.check("security.apparmor", live=True)
    assert r.status is Status.PASS and "active LSMs" in r.detail


def test_apparmor_profiles_unreadable_without_root(root, monkeypatch):
    apparmor_root(root)
    real = Host.read_text

    def read_text(self, p, limit=None):
        if p == "/sys/kernel/security/apparmor/profiles":
            raise NeedsRoot(p)
        return real(self, p, limit)

    monkeypatch.setattr(Host, "read_text", read_text)
    r = root.check("security.apparmor", live=True, euid=1000)
    assert r.status is Status.PASS and "need root" in r.detail
    assert any("not readable without root" in e.value for e in r.evidence)


def test_apparmor_offline_root(root):
    root.write("usr/sbin/libvirtd", "")
    r = root.check("security.apparmor")
    assert r.status is Status.WARN and "offline" in r.detail
    root.write("etc/apparmor.d/usr.sbin.libvirtd", "")
    assert root.check("security.apparmor").status is Status.PASS


# ---------------------------------------------------------------------------
# tpm.device
# ---------------------------------------------------------------------------

def test_tpm2_present(root):
    root.write("dev/tpm0", "")
    root.write("dev/tpmrm0", "")
    root.write("sys/class/tpm/tpm0/tpm_version_major", "2\n")
    r = root.check("tpm.device")
    assert r.status is Status.PASS and "TPM 2.0" in r.detail


def test_tpm2_from_acpi_description(root):
    root.write("dev/tpm0", "")
    root.write("sys/class/tpm/tpm0/device/description", "TPM 2.0 Device\n")
    assert root.check("tpm.device").status is Status.PASS


def test_tpm_resource_manager_means_2_0(root):
    root.write("dev/tpmrm0", "")
    r = root.check("tpm.device")
    assert r.status is Status.PASS and "TPM 2.0" in r.detail


@pytest.mark.parametrize("files", [
    {"sys/class/tpm/tpm0/tpm_version_major": "1\n"},
    {"sys/class/tpm/tpm0/device/caps": "Manufacturer: 0x49465800\nTCG version: 1.2\nFirmware version: 6.40\n"},
    {"sys/class/misc/tpm0/device/caps": "TCG version: 1.2\n"},
])
def test_tpm12_warns(root, files):
    root.write("dev/tpm0", "")
    for path, text in files.items():
        root.write(path, text)
    r = root.check("tpm.device")
    assert r.status is Status.WARN and "TPM 1.2" in r.detail and "2.0" in r.detail
    assert root.check("tpm.device", {"min_version": 1}).status is Status.PASS


def test_tpm_absent_fails_on_live_host(root):
    root.mkdir("sys/class")
    r = root.check("tpm.device", live=True)
    assert r.status is Status.FAIL and "no TPM" in r.detail and "BIOS" in r.hint


def test_tpm_offline_root_without_sysfs_skips(root):
    root.mkdir("etc")
    assert root.check("tpm.device").status is Status.SKIP


def test_tpm_garbled_version_is_unknown(root):
    root.write("dev/tpm0", "")
    root.write("sys/class/tpm/tpm0/tpm_version_major", "\x00garbage\n")
    root.write("sys/class/tpm/tpm0/device/description", "something else\n")
    r = root.check("tpm.device")
    assert r.status is Status.WARN and "version cannot be read" in r.detail
