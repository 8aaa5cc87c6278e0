"""KVM checks: modules, /dev/kvm, access, the probe, nested, vhost-net, tun."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from checks.facts import Facts
from checks.host import Host
from checks.kvmprobe import KvmProbe
from checks.model import Status
from checks.modprobe_conf import boot_modules, read_modprobe_config, truthy

REL = "6.1.0-18-amd64"
INTEL_CPU = "cpu/x86_64-64cpu-linux6.2"
AMD_CPU = "cpu/x86_64-epyc_7451"


class DevHost(Host):
    """A Host where listed paths stat as device nodes (tests cannot mknod)."""

    def __init__(self, root, devices, **kw):
        super().__init__(root, **kw)
        self.devices = devices

    def stat(self, p):
        if p in self.devices:
            kind, major, minor, mode, uid, gid = self.devices[p]
            fmt = {"chr": stat.S_IFCHR, "file": stat.S_IFREG}[kind]
            return os.stat_result((fmt | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0),
                                  {"st_rdev": os.makedev(major, minor)})
        return super().stat(p)


def dev_check(root, check_id, devices, euid=0, env=None, live=True, probe=None, params=None):
    host = DevHost(root.path, devices, env=env or {}, euid=euid, live=live)
    facts = Facts(host)
    if probe is not None:
        host._cache[("fact", "kvm")] = probe
    return root.check(check_id, params, facts=facts)


def kvm_dev(mode=0o600, uid=0, gid=0, major=10, minor=232, kind="chr"):
    return {"/dev/kvm": (kind, major, minor, mode, uid, gid)}


def accounts(root, group_lines=(), users=("alice:x:1000:1000::/home/alice:/bin/bash",)):
    root.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n" + "".join(u + "\n" for u in users))
    root.write("etc/group", "root:x:0:\nalice:x:1000:\n" + "".join(g + "\n" for g in group_lines))


def live_kernel(root, modules_dep=None, builtin=None):
    root.write("proc/version", f"Linux version {REL} (debian-kernel@lists.debian.org) #1 SMP\n")
    root.mkdir("sys/module")
    if modules_dep is not None:
        root.write(f"lib/modules/{REL}/modules.dep", modules_dep)
    if builtin is not None:
        root.write(f"lib/modules/{REL}/modules.builtin", builtin)


def loaded(root, *mods):
    for m in mods:
        root.write(f"sys/module/{m}/initstate", "live\n")


def builtin(root, *mods):
    for m in mods:
        root.mkdir(f"sys/module/{m}/parameters")


# ---- kvm.modules ------------------------------------------------------------------

def test_modules_built_in_like_this_machine(root):
    root.use("kvm/pvm-host")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.PASS, r.detail
    assert r.detail == "kvm built in, kvm_pvm built in"
    assert any("not listed for boot (built in" in e.value for e in r.evidence)


def test_modules_loaded_and_listed_for_boot(root):
    root.use(INTEL_CPU)
    live_kernel(root, "kernel/arch/x86/kvm/kvm.ko:\nkernel/arch/x86/kvm/kvm-intel.ko: kernel/arch/x86/kvm/kvm.ko\n")
    loaded(root, "kvm", "kvm_intel")
    root.write("etc/modules", "# /etc/modules\nkvm_intel\n")
    root.symlink("etc/modules-load.d/modules.conf", "../modules")
    root.write("etc/modules-load.d/kvm.conf", "kvm\n")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.PASS and r.detail == "kvm loaded, kvm_intel loaded"
    listed = {e.value: e.source for e in r.evidence if "listed for loading" in e.value}
    assert listed["kvm listed for loading at boot"].endswith("/etc/modules-load.d/kvm.conf")
    assert "kvm_intel listed for loading at boot" in listed


def test_modules_available_but_not_loaded(root):
    root.use(INTEL_CPU)
    live_kernel(root, "kernel/arch/x86/kvm/kvm.ko:\nkernel/arch/x86/kvm/kvm-intel.ko.xz: kernel/arch/x86/kvm/kvm.ko\n")
    loaded(root, "kvm")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.FAIL
    assert "kvm_intel available but not loaded" in r.detail
    assert r.hint == "modprobe kvm_intel"
    assert "load-kvm-modules" in r.remediations


def test_modules_available_amd_is_chosen_from_the_cpu(root):
    root.use(AMD_CPU)
    live_kernel(root, "kernel/arch/x86/kvm/kvm.ko:\nkernel/arch/x86/kvm/kvm-amd.ko:\n")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.FAIL and r.hint == "modprobe kvm_amd"


def test_modules_loaded_but_blacklisted_warn_that_the_next_boot_will_not_load_them(root):
    """Found on a real Debian 12 kernel (tests/lab/test_lab_kernel.py): systemd-modules-load
    refuses a blacklisted module even when modules-load.d lists it ("Module 'kvm_amd' is
    deny-listed"), so a module loaded by hand is gone after the reboot."""
    root.use(AMD_CPU)
    live_kernel(root, "kernel/arch/x86/kvm/kvm.ko:\nkernel/arch/x86/kvm/kvm-amd.ko: kernel/arch/x86/kvm/kvm.ko\n")
    loaded(root, "kvm", "kvm_amd")
    root.write("etc/modules-load.d/kvm.conf", "kvm\nkvm_amd\n")
    root.write("etc/modprobe.d/no-kvm.conf", "blacklist kvm-amd\nblacklist kvm\n")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.WARN, r.detail
    assert r.detail == "kvm loaded, kvm_amd loaded now, but blacklisted: the next boot will not load kvm, kvm_amd"
    assert "remove 'blacklist kvm_amd' from" in r.hint and "no-kvm.conf" in r.hint
    # kvm alone blacklisted: it still comes in as kvm_amd's dependency
    root.write("etc/modprobe.d/no-kvm.conf", "blacklist kvm\n")
    assert root.check("kvm.modules", live=True).status is Status.PASS


def test_modules_offline_blacklisted_vendor_module_warns(root):
    root.use(AMD_CPU)
    root.write(f"lib/modules/{REL}/modules.dep", "kernel/arch/x86/kvm/kvm.ko:\nkernel/arch/x86/kvm/kvm-amd.ko:\n")
    root.write("etc/modprobe.d/no-kvm.conf", "blacklist kvm_amd\n")
    r = root.check("kvm.modules", live=False)
    assert r.status is Status.WARN and "the boot will not load kvm_amd" in r.detail, r.detail


def test_modules_absent_from_the_kernel(root):
    root.use(INTEL_CPU)
    live_kernel(root, "kernel/drivers/net/tun.ko:\n")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.FAIL and "no kvm, kvm_intel" in r.detail


def test_modules_offline_from_modules_builtin_and_dep(root):
    root.use(INTEL_CPU)
    root.write(f"lib/modules/{REL}/modules.builtin", "kernel/arch/x86/kvm/kvm.ko\n")
    root.write(f"lib/modules/{REL}/modules.dep", "kernel/arch/x86/kvm/kvm-intel.ko:\n")
    r = root.check("kvm.modules")
    assert r.status is Status.PASS, r.detail
    assert "kvm built in" in r.detail and "kvm_intel available" in r.detail


def test_modules_offline_without_lib_modules_is_skipped(root):
    root.use(INTEL_CPU)
    assert root.check("kvm.modules").status is Status.SKIP


def test_modules_garbled_index_does_not_crash(root):
    root.use(INTEL_CPU)
    live_kernel(root, "\x00\xff::::\n\n:::garbage")
    root.write("etc/modules-load.d/x.conf", "\x00\xff\n#\n")
    r = root.check("kvm.modules", live=True)
    assert r.status is Status.FAIL


# ---- kvm.device ------------------------------------------------------------------

def test_device_is_the_kvm_char_device(root):
    r = dev_check(root, "kvm.device", kvm_dev())
    assert r.status is Status.PASS and "10:232" in r.detail


@pytest.mark.parametrize("dev,words", [
    (kvm_dev(kind="file"), "not a character device"),
    (kvm_dev(major=1, minor=3), "1:3"),
])
def test_device_wrong_node(root, dev, words):
    r = dev_check(root, "kvm.device", dev)
    assert r.status is Status.FAIL and words in r.detail


def test_device_missing_live_names_the_module(root):
    root.use(INTEL_CPU)
    live_kernel(root, "kernel/arch/x86/kvm/kvm.ko:\nkernel/arch/x86/kvm/kvm-intel.ko:\n")
    r = root.check("kvm.device", live=True)
    assert r.status is Status.FAIL and r.hint == "modprobe kvm_intel"


def test_device_missing_offline_is_skipped(root):
    root.mkdir("etc")
    r = root.check("kvm.device")
    assert r.status is Status.SKIP and "offline" in r.detail


# ---- kvm.device-access -----------------------------------------------------------

def test_access_root_like_this_machine_warns(root):
    accounts(root)
    r = dev_check(root, "kvm.device-access", kvm_dev(0o600))
    assert r.status is Status.WARN
    assert "root can open it" in r.detail and "group kvm does not exist" in r.detail
    assert "udevadm trigger" in r.hint and "groupadd -r kvm" in r.hint
    assert "fix-kvm-permissions" in r.remediations


@pytest.mark.parametrize("mode", [0o660, 0o666])
def test_access_root_with_kvm_group(root, mode):
    accounts(root, ["kvm:x:992:libvirt-qemu"])
    r = dev_check(root, "kvm.device-access", kvm_dev(mode, gid=992))
    assert r.status is Status.PASS, r.detail


def test_access_sudo_user_not_in_group_fails(root):
    accounts(root, ["kvm:x:992:"])
    r = dev_check(root, "kvm.device-access", kvm_dev(0o660, gid=992), env={"SUDO_USER": "alice"})
    assert r.status is Status.FAIL and "alice cannot open" in r.detail
    assert r.hint.startswith("usermod -aG kvm alice")


def test_access_sudo_user_in_group_passes(root):
    accounts(root, ["kvm:x:992:bob,alice"])
    r = dev_check(root, "kvm.device-access", kvm_dev(0o660, gid=992), env={"SUDO_USER": "alice"})
    assert r.status is Status.PASS and "as group kvm" in r.detail


def test_access_user_blocked_by_root_only_device(root):
    accounts(root, ["kvm:x:992:alice"])
    r = dev_check(root, "kvm.device-access", kvm_dev(0o600), env={"SUDO_USER": "alice"})
    assert r.status is Status.FAIL
    assert "udevadm trigger" in r.hint and "usermod -aG kvm alice" in r.hint


def test_access_user_can_but_policy_is_odd(root):
    accounts(root)
    # owned by alice herself: she can, libvirt's qemu user cannot
    r = dev_check(root, "kvm.device-access", kvm_dev(0o600, uid=1000), env={"SUDO_USER": "alice"})
    assert r.status is Status.WARN and "alice can open it (as owner)" in r.detail


def test_access_offline_from_udev_rules(root):
    accounts(root, ["kvm:x:992:"])
    root.write("usr/lib/udev/rules.d/50-udev-default.rules",
               'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"\n')
    r = root.check("kvm.device-access")
    assert r.status is Status.PASS and "mode 0666" in r.detail
    # /etc masks the same file name
    root.write("etc/udev/rules.d/50-udev-default.rules", 'KERNEL=="kvm", GROUP="root", MODE="0600"\n')
    assert root.check("kvm.device-access").status is Status.WARN


def test_access_offline_without_rule_or_udev(root):
    accounts(root)
    assert root.check("kvm.device-access").status is Status.SKIP
    root.write("usr/lib/udev/rules.d/60-other.rules", 'KERNEL=="sda", GROUP="disk"\n')
    r = root.check("kvm.device-access")
    assert r.status is Status.WARN and "0600" in r.detail


def test_access_garbled_account_files(root):
    root.write("etc/passwd", "\x00\xff:::\nnonsense\n")
    root.write("etc/group", "::::\n\x00\n")
    r = dev_check(root, "kvm.device-access", kvm_dev(0o660, gid=992))
    assert r.status in (Status.WARN, Status.PASS)


def test_access_live_without_device_is_skipped(root):
    accounts(root)
    r = root.check("kvm.device-access", live=True)
    assert r.status is Status.SKIP


# ---- kvm.usable ------------------------------------------------------------------

def test_usable_ok(root):
    builtin(root, "kvm", "kvm_pvm")
    r = dev_check(root, "kvm.usable", {}, probe=KvmProbe("ok", "opened /dev/kvm, API version 12", 12))
    assert r.status is Status.PASS and "through kvm_pvm" in r.detail


def test_usable_busy_names_virtualbox(root):
    loaded(root, "vboxdrv")
    r = dev_check(root, "kvm.usable", {}, probe=KvmProbe("busy", "KVM_CREATE_VM failed: device busy", 12, 16))
    assert r.status is Status.FAIL and "VirtualBox" in r.detail
    assert r.hint.endswith("modprobe -r vboxdrv")


def test_usable_busy_unknown_holder(root):
    root.mkdir("sys/module")
    r = dev_check(root, "kvm.usable", {}, probe=KvmProbe("busy", "busy", 12, 16))
    assert r.status is Status.FAIL and "another hypervisor" in r.detail


def test_usable_denied_as_user_is_skipped_naming_group(root):
    accounts(root, ["kvm:x:992:"])
    r = dev_check(root, "kvm.usable", kvm_dev(0o660, gid=992), euid=1000,
                  probe=KvmProbe("denied", "cannot open /dev/kvm: permission denied"))
    assert r.status is Status.SKIP and "membership in group kvm" in r.detail


def test_usable_denied_as_root_fails(root):
    r = dev_check(root, "kvm.usable", kvm_dev(), probe=KvmProbe("denied", "permission denied"))
    assert r.status is Status.FAIL


@pytest.mark.parametrize("probe", [
    KvmProbe("no-device", "/dev/kvm does not exist"),
    KvmProbe("bad-api", "KVM_GET_API_VERSION returned 11", 11),
    KvmProbe("failed", "KVM_CREATE_VM failed: Invalid argument", 12, 22),
])
def test_usable_failures(root, probe):
    assert dev_check(root, "kvm.usable", {}, probe=probe).status is Status.FAIL


def test_usable_offline_is_skipped(root):
    root.mkdir("etc")
    assert root.check("kvm.usable").status is Status.SKIP


def _can_open_kvm():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


@pytest.mark.live
def test_usable_on_this_machine():
    """Where /dev/kvm opens read-write, the truth test must find KVM usable
    (this is where virt-host-validate and kvm-ok wrongly say it is not)."""
    if not _can_open_kvm():
        pytest.skip("/dev/kvm cannot be opened read-write here")
    from checks.registry import all_checks
    from checks.runner import run_one

    host = Host("/")
    r = run_one(all_checks()["kvm.usable"], "required", {}, host, Facts(host))
    assert r.status is Status.PASS, r.detail


# ---- kvm.nested ------------------------------------------------------------------

def intel_nested(root, value, kind="loaded"):
    root.use(INTEL_CPU)
    live_kernel(root)
    (loaded if kind == "loaded" else builtin)(root, "kvm", "kvm_intel")
    root.write("sys/module/kvm_intel/parameters/nested", value + "\n")
    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n")


def test_nested_on(root):
    intel_nested(root, "Y")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.PASS
    assert r.detail.startswith("kvm_intel now: Y; after reboot: Y")


def test_nested_off_without_config(root):
    intel_nested(root, "N")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN and "now: N; after reboot: N" in r.detail
    assert "options kvm_intel nested=1' > /etc/modprobe.d/kvm-nested.conf" in r.hint
    assert "modprobe -r kvm_intel && modprobe kvm_intel" in r.hint
    assert r.remediations == ["enable-nested"]


def test_nested_off_now_on_after_reboot(root):
    intel_nested(root, "N")
    root.write("etc/modprobe.d/kvm.conf", "# nested\noptions kvm-intel nested=1\n")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN
    assert "now: N; after reboot: Y (options kvm_intel nested=1 in" in r.detail
    assert "kvm.conf" in r.detail


def test_nested_off_on_the_running_command_line_is_on_only_after_the_reboot(root):
    """The running /proc/cmdline's kvm_amd.nested=0 is passed by modprobe after modprobe.d's
    options (checked with the real modprobe in the lab): a reload keeps nested off."""
    root.use(AMD_CPU)
    live_kernel(root)
    loaded(root, "kvm", "kvm_amd")
    root.write("sys/module/kvm_amd/parameters/nested", "0\n")
    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro kvm_amd.nested=0\n")
    root.write("etc/default/grub", 'GRUB_CMDLINE_LINUX="console=ttyS0 kvm_amd.nested=0"\n')
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN
    assert "kvm_amd.nested=0 on the kernel command line" in r.hint and "update the boot loader and reboot" in r.hint
    assert "modprobe -r" not in r.hint
    # kvmprep's apply: GRUB says =1 now, modprobe.d too; the running command line still =0
    root.write("etc/default/grub", 'GRUB_CMDLINE_LINUX="console=ttyS0 kvm_amd.nested=1"\n')
    root.write("etc/modprobe.d/kvm-nested.conf", "options kvm_amd nested=1\n")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN and "now: N; after reboot: Y" in r.detail
    assert "enabled after a reboot (until then modprobe passes kvm_amd.nested=0" in r.detail, r.detail
    assert "modprobe -r" not in r.hint


def test_nested_on_now_off_after_reboot(root):
    intel_nested(root, "Y")
    root.write("etc/modprobe.d/kvm.conf", "options kvm_intel nested=0\n")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN and "a reboot turns it off" in r.detail
    assert "remove 'options kvm_intel nested=0'" in r.hint


def test_nested_later_file_wins_and_etc_masks_lib(root):
    intel_nested(root, "Y")
    root.write("lib/modprobe.d/50-kvm.conf", "options kvm_intel nested=0\n")
    root.write("etc/modprobe.d/50-kvm.conf", "options kvm_intel ept=1\n")  # masks the /lib file
    root.write("etc/modprobe.d/10-kvm.conf", "options kvm_intel nested=0\n")
    root.write("etc/modprobe.d/20-kvm.conf", "options kvm_intel nested=1\n")
    root.write("etc/modprobe.d/90-kvm.conf.bak", "options kvm_intel nested=0\n")  # not *.conf
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.PASS and "20-kvm.conf" in r.detail


def test_nested_guests_hold_the_module(root):
    intel_nested(root, "N")
    root.write("sys/module/kvm_intel/refcnt", "4\n")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN and "cannot be reloaded now" in r.detail
    assert "modprobe -r" not in r.hint
    assert any(e.source.endswith("/sys/module/kvm_intel/refcnt") and e.value == "4" for e in r.evidence)


def test_nested_built_in_uses_the_command_line(root):
    intel_nested(root, "N", kind="builtin")
    root.write("etc/modprobe.d/kvm.conf", "options kvm_intel nested=1\n")  # ignored: built in
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN and "after reboot: N" in r.detail
    assert "kvm_intel.nested=1" in r.hint and "modprobe.d" not in r.hint
    root.write("etc/default/grub", 'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX kvm_intel.nested=1"\n')
    r = root.check("kvm.nested", live=True)
    assert "after reboot: Y (kvm_intel.nested=1 in" in r.detail and "etc/default/grub" in r.detail


def test_nested_amd_reads_1(root):
    root.use(AMD_CPU)
    live_kernel(root)
    loaded(root, "kvm", "kvm_amd")
    root.write("sys/module/kvm_amd/parameters/nested", "1\n")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.PASS and r.detail.startswith("kvm_amd now: Y")


def test_nested_pvm_like_this_machine(root):
    root.use("kvm/pvm-host")
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.PASS and "nested_pvm=1" in r.detail


def test_nested_pvm_without_setting_is_skipped(root):
    root.use("kvm/pvm-host")
    root.write("proc/cmdline", "console=ttyS0 quiet\n")
    assert root.check("kvm.nested", live=True).status is Status.SKIP


def test_nested_offline(root):
    root.use(INTEL_CPU)
    assert root.check("kvm.nested").status is Status.SKIP
    root.write("etc/modprobe.d/kvm.conf", "options kvm_intel nested=1\n")
    r = root.check("kvm.nested")
    assert r.status is Status.PASS and "after boot: Y" in r.detail
    root.write("etc/modprobe.d/kvm.conf", "options kvm_intel nested=N\n")
    assert root.check("kvm.nested").status is Status.WARN


def test_nested_garbled_value(root):
    intel_nested(root, "\x00?")
    root.write("etc/modprobe.d/kvm.conf", 'options kvm_intel "nested=\n\\\n')
    r = root.check("kvm.nested", live=True)
    assert r.status is Status.WARN and "not a boolean" in r.detail


def test_modprobe_parser_agrees_with_modprobe(root):
    """The real modprobe reads the same options lines from the same files."""
    modprobe = shutil.which("modprobe", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not modprobe:
        pytest.skip("modprobe not installed")
    root.write("etc/modprobe.d/a.conf", "options kvm-intel nested=1 \\\n  ept=0\n# options kvm_intel x=1\n")
    root.write("etc/modprobe.d/b.conf", "options kvm_amd nested=0\nblacklist kvm-amd\n")
    root.write("etc/modprobe.d/c.txt", "options kvm_intel nested=0\n")
    host = root.host()
    cfg = read_modprobe_config(host)
    ours = sorted(f"{o.module} {o.param}={o.value}" for o in cfg.options)
    out = subprocess.run([modprobe, "-C", str(root.path / "etc/modprobe.d"), "-c"],
                         capture_output=True, text=True, timeout=20).stdout
    # (modprobe also lists module options from the running kernel's command line)
    theirs = sorted(f"{line.split()[1]} {p}" for line in out.splitlines()
                    if line.startswith("options kvm") for p in line.split()[2:])
    assert ours == ["kvm_amd nested=0", "kvm_intel ept=0", "kvm_intel nested=1"]
    assert set(ours) <= set(theirs)
    assert cfg.option("kvm-intel", "nested").value == "1" and "kvm_amd" in cfg.blacklist


def test_boot_modules_and_truthy(root):
    root.write("usr/lib/modules-load.d/vhost.conf", "vhost-net\n")
    root.write("etc/modules-load.d/vhost.conf", "; nothing\n")  # masks the /usr/lib file
    root.write("etc/modules-load.d/tun.conf", "tun # comment\n")
    assert boot_modules(root.host()) == {"tun": str(root.path) + "/etc/modules-load.d/tun.conf"}
    assert [truthy(v) for v in ("Y", "1", "on", "N", "0", "off", "2", None)] == \
        [True, True, True, False, False, False, None, None]


# ---- kvm.vhost-net / kvm.tun -------------------------------------------------------

def test_vhost_net_present(root):
    live_kernel(root)
    r = dev_check(root, "kvm.vhost-net", {"/dev/vhost-net": ("chr", 10, 238, 0o660, 0, 0)})
    assert r.status is Status.PASS


def test_vhost_net_loadable_warns(root):
    live_kernel(root, "kernel/drivers/vhost/vhost_net.ko: kernel/drivers/vhost/vhost.ko\n")
    r = root.check("kvm.vhost-net", live=True)
    assert r.status is Status.WARN and r.hint.startswith("modprobe vhost_net")
    assert r.remediations == ["load-vhost-net"]


def test_vhost_net_absent_like_this_machine_warns(root):
    root.use("kvm/pvm-host")
    r = root.check("kvm.vhost-net", live=True)
    assert r.status is Status.WARN and "no vhost_net module" in r.detail


def test_vhost_net_offline(root):
    root.write(f"lib/modules/{REL}/modules.dep", "kernel/drivers/vhost/vhost_net.ko:\n")
    assert root.check("kvm.vhost-net").status is Status.PASS
    root.write(f"lib/modules/{REL}/modules.dep", "kernel/drivers/net/tun.ko:\n")
    assert root.check("kvm.vhost-net").status is Status.WARN
    shutil.rmtree(root.path / "lib")
    assert root.check("kvm.vhost-net").status is Status.SKIP


def test_tun_present(root):
    live_kernel(root)
    r = dev_check(root, "kvm.tun", {"/dev/net/tun": ("chr", 10, 200, 0o666, 0, 0)})
    assert r.status is Status.PASS


@pytest.mark.parametrize("dep,status", [
    ("kernel/drivers/net/tun.ko:\n", Status.WARN),
    ("kernel/drivers/vhost/vhost.ko:\n", Status.FAIL),
])
def test_tun_missing_device(root, dep, status):
    live_kernel(root, dep)
    r = root.check("kvm.tun", live=True)
    assert r.status is status, r.detail


def test_tun_built_in_without_node_fails(root):
    live_kernel(root, "", builtin="kernel/drivers/net/tun.ko\n")
    r = root.check("kvm.tun", live=True)
    assert r.status is Status.FAIL and "mknod" in r.hint


def test_tun_not_a_char_device(root):
    r = dev_check(root, "kvm.tun", {"/dev/net/tun": ("file", 0, 0, 0o644, 0, 0)})
    assert r.status is Status.FAIL


def test_tun_offline(root):
    root.write(f"lib/modules/{REL}/modules.builtin", "kernel/drivers/net/tun.ko\n")
    assert root.check("kvm.tun").status is Status.PASS
