"""load-kvm-modules, enable-nested, load-vhost-net: planned, previewed, applied
on throwaway roots, proven with the real modprobe/depmod/augtool, planned
again (empty) and undone byte for byte.

Roots carry lib/modules/<release> with empty .ko files indexed by the real
depmod, and proc/cpuinfo of a real Intel or AMD machine. Decisions that need
the running kernel (refcnt, holders, reload, modprobe now) are tested at the
plan/preview level on a tmp root marked live: those plans are never applied
when they hold a runtime action, so modprobe never runs on this machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from checks.facts import Facts
from checks.host import Host
from pkgroots import require, run
from remediations.actions import AddKernelArgs, LoadModule, RunCommand, WriteFile
from remediations.catalog.modules import _with_option, grub_with_arg
from remediations.executor import apply_plan, undo_last
from remediations.plan import build_plan, render_preview

REL = os.uname().release  # what modprobe -d ROOT looks for without -S
INTEL = "cpu/x86_64-64cpu-linux6.2"
AMD = "cpu/x86_64-epyc_7451"
KOS = {
    "kvm": "arch/x86/kvm/kvm.ko",
    "kvm_intel": "arch/x86/kvm/kvm-intel.ko",
    "kvm_amd": "arch/x86/kvm/kvm-amd.ko",
    "vhost_net": "drivers/vhost/vhost_net.ko",
    "tun": "drivers/net/tun.ko",
}
GRUB = ('# If you change this file, run \'update-grub\' afterwards.\n'
        'GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n'
        'GRUB_CMDLINE_LINUX_DEFAULT="quiet"\nGRUB_CMDLINE_LINUX="console=ttyS0"\n')


# ---- builders ------------------------------------------------------------------------

def modules_root(root, cpu=INTEL, builtin=(), without=()):
    """proc/cpuinfo of a real CPU and lib/modules/REL indexed by the real depmod."""
    require("depmod")
    root.use(cpu)
    for name, rel in KOS.items():
        if name not in builtin and name not in without:
            root.write(f"lib/modules/{REL}/kernel/{rel}", b"")
    if builtin:
        root.write(f"lib/modules/{REL}/modules.builtin", "".join(f"kernel/{KOS[n]}\n" for n in builtin))
    subprocess.run(["depmod", "-b", str(root.path), REL], capture_output=True,
                   env={**os.environ, "PATH": os.environ.get("PATH", "") + ":/usr/sbin:/sbin"})
    assert (root.path / f"lib/modules/{REL}/modules.dep").exists()
    return root


def live_root(root, cpu=INTEL, loaded=(), builtin_sys=(), nested=None, refcnt="0", os_release=None):
    """A tmp root seen as the running system: sysfs entries for loaded/built-in modules."""
    modules_root(root, cpu, builtin=builtin_sys)
    root.write("proc/version", f"Linux version {REL} (test) #1 SMP\n")
    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n")
    root.mkdir("sys/module")
    for name in loaded:
        root.write(f"sys/module/{name}/initstate", "live\n")
        root.write(f"sys/module/{name}/refcnt", refcnt + "\n")
        root.mkdir(f"sys/module/{name}/holders")
    for name in builtin_sys:
        root.mkdir(f"sys/module/{name}/parameters")
    if nested is not None:
        vendor = next(n for n in (*loaded, *builtin_sys) if n.startswith("kvm_"))
        root.write(f"sys/module/{vendor}/parameters/nested", nested + "\n")
    if os_release:
        root.write("etc/os-release", os_release)
    return root


DEBIAN = 'ID=debian\nVERSION_ID="12"\nNAME="Debian GNU/Linux"\n'
ALMA = 'ID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nNAME="AlmaLinux"\n'


def plan_for(root, rid, live=False):
    host = root.host(live=live)
    return host, build_plan(host, Facts(host), None, [rid])


def fresh_plan(root, rid, live=False):
    return plan_for(root, rid, live)[1]


def snapshot(root) -> dict[str, bytes]:
    """Every file under etc/ and boot/ (what these remediations may touch)."""
    out = {}
    for top in ("etc", "boot"):
        base = root.path / top
        for p in sorted(base.rglob("*")) if base.exists() else []:
            if p.is_file():
                out[str(p.relative_to(root.path))] = p.read_bytes()
    return out


def modprobe(root, *args) -> str:
    require("modprobe")
    return run(["modprobe", "-d", str(root.path), "-C", str(root.path / "etc/modprobe.d"), *args]).stdout


def augtool_get(root, path) -> str:
    require("augtool")
    return run(["augtool", "-r", str(root.path), "get", path]).stdout.strip()


def apply_undo_roundtrip(root, host, plan, before):
    result = apply_plan(host, plan)
    assert result.ok, [(a.summary, a.status, a.message) for a in result.actions]
    assert all(a.status in ("done", "pending-reboot", "skipped") for a in result.actions)
    return result


def undo_and_compare(root, host, before):
    undo = undo_last(host)
    assert undo.ok, undo.left
    assert snapshot(root) == before


# ---- pure text edits -------------------------------------------------------------------

def test_with_option_replaces_only_the_value_and_keeps_every_other_line():
    old = "# admin's options\noptions kvm-intel nested=0 enable_apicv=1  # tuned\noptions kvm ignore_msrs=1\n"
    new = _with_option(old, "kvm_intel", "nested", "1")
    assert new == "# admin's options\noptions kvm-intel nested=1 enable_apicv=1  # tuned\noptions kvm ignore_msrs=1\n"
    appended = _with_option("options kvm ignore_msrs=1", "kvm_amd", "nested", "1")
    assert appended == "options kvm ignore_msrs=1\noptions kvm_amd nested=1\n"
    assert _with_option(None, "kvm_amd", "nested", "1").endswith("\noptions kvm_amd nested=1\n")


def test_grub_with_arg_edits_one_token_and_keeps_every_other_line():
    new = grub_with_arg(GRUB, "kvm_intel.nested=1")
    assert new == GRUB.replace('"console=ttyS0"', '"console=ttyS0 kvm_intel.nested=1"')
    # an existing value (in either variable, '-' or '_') is replaced where it is
    off = GRUB.replace('"quiet"', '"quiet kvm-intel.nested=0"')
    assert grub_with_arg(off, "kvm_intel.nested=1") == GRUB.replace('"quiet"', '"quiet kvm_intel.nested=1"')
    # no GRUB_CMDLINE_LINUX line at all: one is appended
    assert grub_with_arg("GRUB_TIMEOUT=5", "nested_pvm=1") == 'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="nested_pvm=1"\n'


# ---- enable-nested: offline roots, applied and proven with the real tools ------------------

def test_enable_nested_offline_intel_apply_modprobe_reads_it_replan_empty_undo(root):
    modules_root(root, INTEL)
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    [step] = plan.steps
    [action] = step.actions
    assert isinstance(action, WriteFile) and action.path == "/etc/modprobe.d/kvm-nested.conf"
    assert not action.reboot and not action.runtime and action.original_sha256 is None
    assert any("offline root" in n and "no reload" in n for n in step.notes)
    preview = render_preview(plan)
    assert "create /etc/modprobe.d/kvm-nested.conf" in preview
    assert "+options kvm_intel nested=1" in preview and "--- /dev/null" in preview
    assert "modprobe -r" not in preview

    apply_undo_roundtrip(root, host, plan, before)
    # the real modprobe passes nested=1 to kvm_intel, and lists the line it parsed
    assert "kvm-intel.ko nested=1" in modprobe(root, "--show-depends", "kvm_intel")
    assert "options kvm_intel nested=1" in modprobe(root, "-c").splitlines()
    # Augeas' Modprobe lens parses the file
    assert augtool_get(root, "/files/etc/modprobe.d/kvm-nested.conf/options[. = 'kvm_intel']/nested") \
        .endswith("= 1")
    # nothing but the one file in the drop-in directory (backups live elsewhere)
    assert sorted(os.listdir(root.path / "etc/modprobe.d")) == ["kvm-nested.conf"]
    assert root.check("kvm.nested", live=False).status.value == "pass"

    again = fresh_plan(root, "enable-nested")
    assert again.empty and "options kvm_intel nested=1" in again.nothing_to_do["enable-nested"]

    undo_and_compare(root, host, before)
    assert not (root.path / "etc/modprobe.d/kvm-nested.conf").exists()


def test_enable_nested_offline_amd_edits_an_overriding_file_and_undo_restores_it(root):
    modules_root(root, AMD)
    # kvm.conf sorts after kvm-nested.conf ('-' < '.'): its nested=0 would win
    kvm_conf = "# site options\noptions kvm_amd nested=0 avic=1\noptions kvm ignore_msrs=1\n"
    root.write("etc/modprobe.d/kvm.conf", kvm_conf)
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    paths = [a.path for a in plan.actions]
    assert paths == ["/etc/modprobe.d/kvm-nested.conf", "/etc/modprobe.d/kvm.conf"]
    preview = render_preview(plan)
    assert "-options kvm_amd nested=0 avic=1" in preview and "+options kvm_amd nested=1 avic=1" in preview

    apply_undo_roundtrip(root, host, plan, before)
    assert "kvm-amd.ko" in modprobe(root, "--show-depends", "kvm_amd")
    shown = modprobe(root, "--show-depends", "kvm_amd").splitlines()[-1]
    assert "nested=1" in shown and "nested=0" not in shown
    assert (root.path / "etc/modprobe.d/kvm.conf").read_text() == kvm_conf.replace("nested=0", "nested=1")
    assert augtool_get(root, "/files/etc/modprobe.d/kvm.conf/options[. = 'kvm_amd']/avic").endswith("= 1")
    assert augtool_get(root, "/files/etc/modprobe.d/kvm.conf/options[. = 'kvm']/ignore_msrs").endswith("= 1")
    assert fresh_plan(root, "enable-nested").empty

    undo_and_compare(root, host, before)
    assert (root.path / "etc/modprobe.d/kvm.conf").read_text() == kvm_conf


def test_enable_nested_edits_an_existing_kvm_nested_conf_in_place(root):
    modules_root(root, INTEL)
    old = "# ours\noptions kvm_intel nested=0 enable_shadow_vmcs=1\n"
    root.write("etc/modprobe.d/kvm-nested.conf", old)
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    [action] = plan.actions
    assert action.summary() == "edit /etc/modprobe.d/kvm-nested.conf" and action.original_sha256
    apply_undo_roundtrip(root, host, plan, before)
    assert (root.path / "etc/modprobe.d/kvm-nested.conf").read_text() == old.replace("nested=0", "nested=1")
    assert "nested=1 enable_shadow_vmcs=1" in modprobe(root, "--show-depends", "kvm_intel")
    assert fresh_plan(root, "enable-nested").empty
    undo_and_compare(root, host, before)


def test_enable_nested_nothing_when_another_file_already_sets_it(root):
    modules_root(root, INTEL)
    root.write("etc/modprobe.d/local.conf", "options kvm_intel nested=Y\n")
    plan = fresh_plan(root, "enable-nested")
    assert plan.empty
    assert "options kvm_intel nested=Y" in plan.nothing_to_do["enable-nested"]


def test_enable_nested_nothing_without_a_cpu_vendor(root):
    root.write(f"lib/modules/{REL}/modules.dep", "")
    plan = fresh_plan(root, "enable-nested")
    assert plan.empty and "no vendor KVM module" in plan.nothing_to_do["enable-nested"]


# ---- enable-nested: built-in KVM takes a kernel argument -------------------------------------

def test_enable_nested_builtin_offline_edits_default_grub_only(root):
    modules_root(root, INTEL, builtin=("kvm", "kvm_intel"))
    root.write("etc/default/grub", GRUB)
    root.write("etc/os-release", DEBIAN)
    root.write("usr/sbin/update-grub", "#!/bin/sh\n", mode=0o755)
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    [step] = plan.steps
    [action] = step.actions  # no boot-menu command offline: this machine's update-grub is not the root's
    assert isinstance(action, WriteFile) and action.path == "/etc/default/grub" and action.reboot
    assert any("built in" in n for n in step.notes)
    assert any(f"chroot {root.path} update-grub" in n for n in step.notes)
    preview = render_preview(plan)
    assert '+GRUB_CMDLINE_LINUX="console=ttyS0 kvm_intel.nested=1"' in preview and "[pending reboot]" in preview

    apply_undo_roundtrip(root, host, plan, before)
    assert augtool_get(root, "/files/etc/default/grub/GRUB_CMDLINE_LINUX") \
        .endswith('"console=ttyS0 kvm_intel.nested=1"')
    assert augtool_get(root, "/files/etc/default/grub/GRUB_CMDLINE_LINUX_DEFAULT").endswith('"quiet"')
    text = (root.path / "etc/default/grub").read_text()
    assert text.splitlines()[:4] == GRUB.splitlines()[:4]
    assert not (root.path / "etc/modprobe.d").exists()
    again = fresh_plan(root, "enable-nested")
    assert again.empty and "kvm_intel.nested=1" in again.nothing_to_do["enable-nested"]
    undo_and_compare(root, host, before)


def test_enable_nested_builtin_live_uses_grubby_when_the_root_has_it(root):
    live_root(root, INTEL, loaded=(), builtin_sys=("kvm", "kvm_intel"), nested="N", os_release=ALMA)
    root.write("usr/sbin/grubby", "#!/bin/sh\n", mode=0o755)
    plan = fresh_plan(root, "enable-nested", live=True)
    [action] = plan.actions
    assert isinstance(action, AddKernelArgs) and action.args == ["kvm_intel.nested=1"] and action.reboot
    assert "$ grubby --update-kernel ALL --args kvm_intel.nested=1" in render_preview(plan)


@pytest.mark.parametrize("os_release, tool, argv", [
    (DEBIAN, "usr/sbin/update-grub", ["update-grub"]),
    (ALMA, None, ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"]),
])
def test_enable_nested_builtin_live_without_grubby_regenerates_the_menu(root, os_release, tool, argv):
    live_root(root, INTEL, builtin_sys=("kvm", "kvm_intel"), nested="N", os_release=os_release)
    root.write("etc/default/grub", GRUB)
    if tool:
        root.write(tool, "#!/bin/sh\n", mode=0o755)
    plan = fresh_plan(root, "enable-nested", live=True)
    write, regen = plan.actions
    assert isinstance(write, WriteFile) and write.path == "/etc/default/grub" and write.reboot
    assert isinstance(regen, RunCommand) and regen.argv == argv and regen.reboot and not regen.runtime
    assert "$ " + " ".join(argv) in render_preview(plan)


def test_enable_nested_builtin_live_already_on_is_nothing(root):
    live_root(root, INTEL, builtin_sys=("kvm", "kvm_intel"), nested="Y")
    plan = fresh_plan(root, "enable-nested", live=True)
    assert plan.empty and "built in and nested is on" in plan.nothing_to_do["enable-nested"]


# ---- enable-nested: live decisions (plan level only) --------------------------------------------

def test_enable_nested_live_free_module_is_reloaded_now(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"), nested="N", refcnt="0")
    plan = fresh_plan(root, "enable-nested", live=True)
    write, reload_ = plan.actions
    assert isinstance(write, WriteFile) and not write.reboot
    assert isinstance(reload_, LoadModule) and reload_.module == "kvm_intel" and reload_.reload and reload_.runtime
    preview = render_preview(plan)
    assert "$ modprobe -r -- kvm_intel\n" in preview and "$ modprobe -- kvm_intel\n" in preview
    assert "reload kernel module kvm_intel now  [running system only]" in preview


def test_enable_nested_live_held_module_waits_for_reboot_naming_the_holders(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"), nested="N", refcnt="2")
    root.write("proc/4242/comm", "qemu-system-x86\n")
    root.write("proc/4242/cmdline", "/usr/bin/qemu-system-x86_64\0-enable-kvm\0-m\0" "2048\0")
    root.mkdir("proc/4242/fd")
    root.symlink("proc/4242/fd/7", "anon_inode:kvm-vm")
    root.write("proc/77/comm", "kvmtool\n")
    root.write("proc/77/cmdline", "lkvm\0run\0")
    root.symlink("proc/77/fd/3", "/dev/kvm")
    root.write("proc/88/comm", "bash\n")
    root.write("proc/88/cmdline", "bash\0")
    root.symlink("proc/88/fd/0", "/dev/pts/0")
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested", live=True)
    [step] = plan.steps
    [write] = step.actions  # no reload while held
    assert isinstance(write, WriteFile) and write.reboot and not write.runtime
    note = next(n for n in step.notes if n.startswith("pending reboot"))
    assert "kvmtool (pid 77)" in note and "qemu-system-x86 (pid 4242)" in note and "bash" not in note
    assert "[pending reboot]" in render_preview(plan)

    # the plan has no runtime action: applying it only writes the file
    result = apply_undo_roundtrip(root, host, plan, before)
    assert [a.status for a in result.actions] == ["pending-reboot"]
    again = fresh_plan(root, "enable-nested", live=True)
    assert again.empty
    reason = again.nothing_to_do["enable-nested"]
    assert "options kvm_intel nested=1" in reason and "pending reboot" in reason
    undo_and_compare(root, host, before)


def test_enable_nested_live_refcnt_without_a_named_process_still_blocks(root):
    live_root(root, AMD, loaded=("kvm", "kvm_amd"), nested="0", refcnt="1")
    plan = fresh_plan(root, "enable-nested", live=True)
    assert not any(isinstance(a, LoadModule) for a in plan.actions)
    assert any("held by 1 user(s)" in n for n in plan.steps[0].notes)


def test_enable_nested_live_already_on_is_nothing(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"), nested="Y")
    plan = fresh_plan(root, "enable-nested", live=True)
    assert plan.empty and "nested is on now (Y)" in plan.nothing_to_do["enable-nested"]


def test_enable_nested_live_module_not_loaded_writes_the_file_only(root):
    live_root(root, INTEL, loaded=())
    plan = fresh_plan(root, "enable-nested", live=True)
    [action] = plan.actions
    assert isinstance(action, WriteFile)
    assert any("not loaded" in n for n in plan.steps[0].notes)


def test_enable_nested_live_not_loaded_with_nested_0_on_the_running_command_line(root):
    """modprobe passes /proc/cmdline's kvm_amd.nested=0 after modprobe.d's options: until the
    reboot a load keeps nesting off, and the plan says so (real kmod: ``insmod kvm-amd.ko
    nested=1 nested=0``, seen in the lab)."""
    live_root(root, AMD, loaded=(), os_release=DEBIAN)
    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro kvm_amd.nested=0\n")
    root.write("etc/default/grub", GRUB.replace('"console=ttyS0"', '"console=ttyS0 kvm_amd.nested=0"'))
    root.write("usr/sbin/update-grub", "#!/bin/sh\n", mode=0o755)
    plan = fresh_plan(root, "enable-nested", live=True)
    assert [getattr(a, "path", None) or a.argv[0] for a in plan.actions] == [
        "/etc/modprobe.d/kvm-nested.conf", "/etc/default/grub", "update-grub"]
    notes = plan.steps[0].notes
    assert any("until the reboot, modprobe kvm_amd passes kvm_amd.nested=0" in n for n in notes), notes
    assert not any("it reads nested=1 when it is loaded" in n for n in notes)


# ---- enable-nested: initramfs ------------------------------------------------------------------

@pytest.mark.parametrize("os_release, conf, content, argv", [
    (DEBIAN, "etc/initramfs-tools/modules", "# modules for the initramfs\nkvm\nkvm_intel\n",
     ["update-initramfs", "-u", "-k", REL]),
    (ALMA, "etc/dracut.conf.d/kvm.conf", 'add_drivers+=" kvm kvm-intel "\n', ["dracut", "-f", "--kver", REL]),
])
def test_enable_nested_regenerates_the_initramfs_that_carries_the_module(root, os_release, conf, content, argv):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"), nested="N", os_release=os_release)
    root.write(conf, content)
    plan = fresh_plan(root, "enable-nested", live=True)
    write, regen, reload_ = plan.actions
    assert isinstance(write, WriteFile)
    assert isinstance(regen, RunCommand) and regen.argv == argv and regen.reboot and not regen.runtime
    assert isinstance(reload_, LoadModule) and reload_.reload
    assert "$ " + " ".join(argv) in render_preview(plan)


def test_enable_nested_initramfs_offline_is_a_note_and_image_age_decides_later(root):
    modules_root(root, INTEL)
    root.write("etc/initramfs-tools/modules", "kvm_intel\n")
    image = root.write(f"boot/initrd.img-{REL}", b"\x1f\x8b old image")
    os.utime(image, (1_000_000, 1_000_000))
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    [action] = plan.actions  # this machine's update-initramfs must not touch the root's /boot
    assert isinstance(action, WriteFile)
    assert any(f"chroot {root.path} update-initramfs -u -k {REL}" in n for n in plan.steps[0].notes)
    apply_undo_roundtrip(root, host, plan, before)
    again = fresh_plan(root, "enable-nested")  # image older than the file: still said, nothing to run here
    assert again.empty and "update-initramfs" in again.nothing_to_do["enable-nested"]
    os.utime(image)  # regenerated after the options changed
    again = fresh_plan(root, "enable-nested")
    assert again.empty and "update-initramfs" not in again.nothing_to_do["enable-nested"]
    undo_and_compare(root, host, before)


def test_enable_nested_live_stale_initramfs_is_regenerated_even_when_the_file_is_set(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"), nested="Y", os_release=DEBIAN)
    root.write("etc/modprobe.d/kvm-nested.conf", "options kvm_intel nested=0\n")
    root.write("etc/initramfs-tools/modules", "kvm_intel\n")
    # now on, but the next boot reads nested=0: the file is fixed and the image rebuilt
    plan = fresh_plan(root, "enable-nested", live=True)
    assert [type(a).__name__ for a in plan.actions] == ["WriteFile", "RunCommand"]


# ---- enable-nested: kvm_pvm ---------------------------------------------------------------------

def test_enable_nested_kvm_pvm_already_on_explains_the_kernel_command_line(root):
    live_root(root, INTEL)
    root.mkdir("sys/module/kvm_pvm/parameters")
    root.write("proc/cmdline", "console=ttyS0 nested_pvm=1 quiet\n")
    plan = fresh_plan(root, "enable-nested", live=True)
    assert plan.empty
    reason = plan.nothing_to_do["enable-nested"]
    assert "kernel command line (nested_pvm=)" in reason and "nested_pvm=1" in reason


def test_enable_nested_kvm_pvm_off_sets_the_kernel_argument(root):
    live_root(root, INTEL, os_release=DEBIAN)
    root.mkdir("sys/module/kvm_pvm/parameters")
    root.write("proc/cmdline", "console=ttyS0 nested_pvm=0\n")
    root.write("etc/default/grub", GRUB.replace('"console=ttyS0"', '"console=ttyS0 nested_pvm=0"'))
    plan = fresh_plan(root, "enable-nested", live=True)
    write, regen = plan.actions
    assert '+GRUB_CMDLINE_LINUX="console=ttyS0 nested_pvm=1"' in write.preview()
    assert regen.argv[0] in ("update-grub", "grub-mkconfig")
    assert any("kernel command line" in n for n in plan.steps[0].notes)


# ---- load-kvm-modules ---------------------------------------------------------------------------

def test_load_kvm_modules_offline_intel_lists_them_for_boot(root):
    modules_root(root, INTEL)
    before = snapshot(root)
    host, plan = plan_for(root, "load-kvm-modules")
    [step] = plan.steps
    [action] = step.actions  # offline: the file only
    assert isinstance(action, WriteFile) and action.path == "/etc/modules-load.d/kvm.conf"
    assert action.content.splitlines()[1:] == ["kvm", "kvm_intel", "tun"]
    assert any("offline root has no running kernel" in n for n in step.notes)
    assert "+kvm_intel" in render_preview(plan)
    apply_undo_roundtrip(root, host, plan, before)
    for name in ("kvm", "kvm_intel", "tun"):  # the real modprobe finds each listed module
        assert KOS[name] in modprobe(root, "--show-depends", name)
    assert root.check("kvm.modules", live=False).status.value == "pass"
    again = fresh_plan(root, "load-kvm-modules")
    assert again.empty and "kvm_intel listed for boot" in again.nothing_to_do["load-kvm-modules"]
    undo_and_compare(root, host, before)
    assert not (root.path / "etc/modules-load.d/kvm.conf").exists()


def test_load_kvm_modules_offline_amd_respects_debian_etc_modules(root):
    modules_root(root, AMD)
    root.write("etc/modules", "# /etc/modules: kernel modules to load at boot time.\ntun\n")
    root.write("etc/modules-load.d/kvm.conf", "# site\nkvm")  # no final newline
    before = snapshot(root)
    host, plan = plan_for(root, "load-kvm-modules")
    [action] = plan.actions
    assert action.content == "# site\nkvm\nkvm_amd\n"
    apply_undo_roundtrip(root, host, plan, before)
    assert (root.path / "etc/modules").read_bytes() == before["etc/modules"]
    assert fresh_plan(root, "load-kvm-modules").empty
    undo_and_compare(root, host, before)


def test_load_kvm_modules_comments_out_a_blacklist_the_boot_would_obey(root):
    """Found on a real Debian 12 kernel (tests/lab/test_lab_kernel.py): modules-load.d does
    not load a blacklisted module (systemd-modules-load: "Module 'kvm_amd' is deny-listed"),
    so listing it is not enough; the blacklist lines go, every other byte stays."""
    modules_root(root, AMD)
    no_kvm = "# no KVM here: VirtualBox\nblacklist kvm_amd\nblacklist kvm  # both\noptions kvm ignore_msrs=1\n"
    root.write("etc/modprobe.d/no-kvm.conf", no_kvm)
    before = snapshot(root)
    host, plan = plan_for(root, "load-kvm-modules")
    assert [a.path for a in plan.actions] == ["/etc/modprobe.d/no-kvm.conf", "/etc/modules-load.d/kvm.conf"]
    preview = render_preview(plan)
    assert "-blacklist kvm_amd\n" in preview and "+# blacklist kvm_amd  # disabled by kvmprep" in preview
    assert "systemd-modules-load and udev skip blacklisted modules" in preview

    apply_undo_roundtrip(root, host, plan, before)
    text = (root.path / "etc/modprobe.d/no-kvm.conf").read_text()
    assert text.splitlines()[0] == "# no KVM here: VirtualBox" and text.splitlines()[3] == "options kvm ignore_msrs=1"
    assert not [l for l in modprobe(root, "-c").splitlines() if l.startswith("blacklist")]  # the real modprobe
    assert "options kvm ignore_msrs=1" in modprobe(root, "-c").splitlines()
    assert root.check("kvm.modules", live=False).status.value == "pass"
    assert fresh_plan(root, "load-kvm-modules").empty
    undo_and_compare(root, host, before)


def test_load_kvm_modules_blacklist_in_a_package_directory_is_a_note(root):
    modules_root(root, INTEL)
    root.write("usr/lib/modprobe.d/vbox.conf", "blacklist kvm_intel\n")
    plan = fresh_plan(root, "load-kvm-modules")
    assert [a.path for a in plan.actions] == ["/etc/modules-load.d/kvm.conf"]
    assert any("'blacklist kvm_intel'" in n and "copy that file to /etc/modprobe.d/" in n for n in plan.steps[0].notes)


def test_load_kvm_modules_live_loaded_listed_but_blacklisted_is_not_nothing(root):
    live_root(root, AMD, loaded=("kvm", "kvm_amd", "tun"))
    root.write("etc/modules-load.d/kvm.conf", "kvm\nkvm_amd\ntun\n")
    root.write("etc/modprobe.d/no-kvm.conf", "blacklist kvm_amd\n")
    plan = fresh_plan(root, "load-kvm-modules", live=True)
    [action] = plan.actions
    assert isinstance(action, WriteFile) and action.path == "/etc/modprobe.d/no-kvm.conf"


def test_load_kvm_modules_live_loads_now_and_lists_for_boot(root):
    live_root(root, INTEL)
    plan = fresh_plan(root, "load-kvm-modules", live=True)
    loads = [a for a in plan.actions if isinstance(a, LoadModule)]
    assert [a.module for a in loads] == ["kvm", "kvm_intel", "tun"]
    assert all(a.runtime and not a.reload for a in loads)
    assert isinstance(plan.actions[-1], WriteFile)
    preview = render_preview(plan)
    assert "$ modprobe -- kvm_intel" in preview and "[running system only]" in preview


def test_load_kvm_modules_live_loaded_and_listed_or_builtin_is_nothing(root):
    live_root(root, AMD, loaded=("kvm", "kvm_amd", "tun"))
    root.write("etc/modules-load.d/kvm.conf", "kvm\nkvm_amd\ntun\n")
    plan = fresh_plan(root, "load-kvm-modules", live=True)
    assert plan.empty and "kvm_amd loaded and listed for boot" in plan.nothing_to_do["load-kvm-modules"]


def test_load_kvm_modules_builtin_needs_nothing(root):
    modules_root(root, INTEL, builtin=("kvm", "kvm_intel", "tun"))
    plan = fresh_plan(root, "load-kvm-modules")
    assert plan.empty and plan.nothing_to_do["load-kvm-modules"] == "kvm built in; kvm_intel built in; tun built in"


def test_load_kvm_modules_live_device_without_module_file_is_built_in(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"))
    root.write("etc/modules-load.d/kvm.conf", "kvm\nkvm_intel\n")
    (root.path / "dev/net").mkdir(parents=True)
    try:
        os.mknod(root.path / "dev/net/tun", 0o666 | 0o020000, os.makedev(10, 200))
    except OSError as exc:  # not root, or a nodev file system
        pytest.skip(f"cannot create a character device here: {exc}")
    os.unlink(root.path / f"lib/modules/{REL}/kernel/{KOS['tun']}")
    subprocess.run(["depmod", "-b", str(root.path), REL], capture_output=True)
    plan = fresh_plan(root, "load-kvm-modules", live=True)
    assert plan.empty and "tun built in" in plan.nothing_to_do["load-kvm-modules"]


# ---- load-vhost-net -----------------------------------------------------------------------------

def test_load_vhost_net_offline_lists_it_for_boot(root):
    modules_root(root, INTEL)
    before = snapshot(root)
    host, plan = plan_for(root, "load-vhost-net")
    [action] = plan.actions
    assert action.path == "/etc/modules-load.d/vhost-net.conf" and action.content.endswith("\nvhost_net\n")
    assert "+vhost_net" in render_preview(plan)
    apply_undo_roundtrip(root, host, plan, before)
    assert KOS["vhost_net"] in modprobe(root, "--show-depends", "vhost_net")
    assert root.check("kvm.vhost-net", live=False).status.value == "pass"
    assert fresh_plan(root, "load-vhost-net").empty
    undo_and_compare(root, host, before)


def test_load_vhost_net_live_loads_now_and_lists_for_boot(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel"))
    plan = fresh_plan(root, "load-vhost-net", live=True)
    load, write = plan.actions
    assert isinstance(load, LoadModule) and load.module == "vhost_net" and load.runtime
    assert isinstance(write, WriteFile)
    assert "$ modprobe -- vhost_net" in render_preview(plan)


def test_load_vhost_net_live_loaded_and_listed_is_nothing(root):
    live_root(root, INTEL, loaded=("kvm", "kvm_intel", "vhost_net"))
    root.write("etc/modules-load.d/vhost-net.conf", "vhost_net\n")
    plan = fresh_plan(root, "load-vhost-net", live=True)
    assert plan.empty and "vhost_net loaded and listed for boot" in plan.nothing_to_do["load-vhost-net"]


def test_load_vhost_net_live_loaded_but_not_listed_lists_it(root):
    live_root(root, INTEL, loaded=("vhost_net",))
    plan = fresh_plan(root, "load-vhost-net", live=True)
    [action] = plan.actions
    assert isinstance(action, WriteFile)


@pytest.mark.parametrize("kind", ["builtin", "absent", "unknown"])
def test_load_vhost_net_nothing_when_built_in_or_not_in_the_kernel(root, kind):
    if kind == "builtin":
        modules_root(root, INTEL, builtin=("vhost_net",))
        expected = "vhost_net built in"
    elif kind == "absent":
        modules_root(root, INTEL, without=("vhost_net",))
        expected = "this kernel has no vhost_net"
    else:
        root.use(INTEL)
        expected = "cannot tell whether this kernel has vhost_net"
    plan = fresh_plan(root, "load-vhost-net")
    assert plan.empty and expected in plan.nothing_to_do["load-vhost-net"]


# ---- edge cases ---------------------------------------------------------------------------------

def test_enable_nested_kernel_command_line_off_is_fixed_with_the_file(root):
    modules_root(root, INTEL)
    root.write("etc/os-release", DEBIAN)
    root.write("etc/default/grub", GRUB.replace('"quiet"', '"quiet kvm-intel.nested=0"'))
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    assert [a.path for a in plan.actions] == ["/etc/modprobe.d/kvm-nested.conf", "/etc/default/grub"]
    apply_undo_roundtrip(root, host, plan, before)
    assert augtool_get(root, "/files/etc/default/grub/GRUB_CMDLINE_LINUX_DEFAULT") \
        .endswith('"quiet kvm_intel.nested=1"')
    assert root.check("kvm.nested", live=False).status.value == "pass"
    assert fresh_plan(root, "enable-nested").empty
    undo_and_compare(root, host, before)


def test_enable_nested_edits_a_file_that_is_not_utf8_keeping_its_other_bytes(root):
    modules_root(root, INTEL)
    conf = root.write("etc/modprobe.d/kvm-nested.conf", b"# r\xe9glages\r\noptions kvm_intel nested=0\n")
    before = snapshot(root)
    host, plan = plan_for(root, "enable-nested")
    [action] = plan.actions
    assert "# r\\xe9glages" in render_preview(plan)  # the Latin-1 byte, readably
    apply_undo_roundtrip(root, host, plan, before)
    assert conf.read_bytes() == b"# r\xe9glages\r\noptions kvm_intel nested=1\n"
    assert fresh_plan(root, "enable-nested").empty
    undo_and_compare(root, host, before)


def test_load_kvm_modules_power_lists_kvm_hv(root):
    root.use("cpu/ppc64le-powernv-power8")
    plan = fresh_plan(root, "load-kvm-modules")  # no lib/modules: listed for boot anyway
    [action] = plan.actions
    assert action.content.splitlines()[1:] == ["kvm", "kvm_hv", "tun"]


def test_offers_come_from_the_planners_answer(kvm_root):
    """A kernel without tun: load-kvm-modules still loads KVM, but is not
    offered as the fix of kvm.tun (issue 11: an offer that cannot fix)."""
    rel = "5.14.0-362.el9.x86_64"
    kvm_root.write(f"lib/modules/{rel}/modules.dep",
                   "kernel/arch/x86/kvm/kvm.ko.xz:\nkernel/arch/x86/kvm/kvm-intel.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz\n")
    host = Host(kvm_root.path)
    facts = Facts(host)
    plan = build_plan(host, facts, None, ["load-kvm-modules"])
    yes, no = plan.offers("kvm.tun", ["load-kvm-modules"])
    assert yes == [] and len(no) == 1 and "tun: not available in this kernel" in no[0]
    assert plan.offers("kvm.modules", ["load-kvm-modules"]) == (["load-kvm-modules"], [])
    assert plan.steps[0].to_dict()["cannot"] == {"kvm.tun": no[0].split(": ", 1)[1]}
