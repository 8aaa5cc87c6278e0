"""cgroup controllers (v1, v2, hybrid) and IOMMU (firmware tables, kernel)."""

from __future__ import annotations

import pytest

from checks.model import Status

REL = "6.1.0-18-amd64"

V2_MOUNTS = ("sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\n"
             "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0\n")
V1_CGROUPS = ("#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
              "cpuset\t3\t1\t1\ncpu\t2\t80\t1\ncpuacct\t2\t80\t1\nblkio\t7\t80\t1\n"
              "memory\t0\t1\t0\ndevices\t5\t80\t1\nfreezer\t6\t1\t1\npids\t8\t90\t1\n")


def cgroup_check(root, params=None):
    return root.check("cgroups.controllers", params, live=True)


# ---- cgroups.controllers ---------------------------------------------------------

def test_cgroups_hybrid_v1_like_this_machine(root):
    root.use("kvm/pvm-host")
    r = cgroup_check(root)
    assert r.status is Status.PASS, r.detail
    assert r.detail.startswith("cgroup v1 (hybrid: cgroup2 at /sys/fs/cgroup/unified)")


def test_cgroups_v2_systemd_host(root):
    root.write("proc/self/mounts", V2_MOUNTS)
    root.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    r = cgroup_check(root)
    assert r.status is Status.PASS and r.detail.startswith("cgroup v2")
    # devices and cpuacct are not v2 controllers and must not be asked for
    assert "devices" not in r.detail and "cpuacct" not in r.detail


def test_cgroups_v2_without_cpuset_fails(root):
    root.write("proc/self/mounts", V2_MOUNTS)
    root.write("sys/fs/cgroup/cgroup.controllers", "cpu io memory pids\n")
    r = cgroup_check(root)
    assert r.status is Status.FAIL and r.detail == "cgroup v2: missing cpuset"


def test_cgroups_v2_v1_names_in_params_are_mapped(root):
    root.write("proc/self/mounts", V2_MOUNTS)
    root.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    r = cgroup_check(root, {"v2_controllers": ["cpu", "cpuacct", "blkio", "devices"]})
    assert r.status is Status.PASS


def test_cgroups_v1_memory_disabled_at_boot(root):
    root.write("proc/self/mounts",
               "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n"
               "cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0\n"
               "cgroup /sys/fs/cgroup/blkio cgroup rw,blkio 0 0\n"
               "cgroup /sys/fs/cgroup/devices cgroup rw,devices 0 0\n"
               "cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0\n")
    root.write("proc/cgroups", V1_CGROUPS)
    r = cgroup_check(root)
    assert r.status is Status.FAIL and "memory (disabled at boot)" in r.detail
    assert "cgroup_disable=memory" in r.hint


def test_cgroups_v1_not_mounted(root):
    root.write("proc/self/mounts", "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu,cpuacct 0 0\n")
    root.write("proc/cgroups", V1_CGROUPS.replace("memory\t0\t1\t0", "memory\t0\t1\t1"))
    r = cgroup_check(root)
    assert r.status is Status.FAIL
    assert "cpuset (not mounted)" in r.detail and "memory (not mounted)" in r.detail
    assert r.hint.startswith("mkdir -p /sys/fs/cgroup/cpuset && mount -t cgroup -o cpuset")


def test_cgroups_nothing_mounted(root):
    root.write("proc/self/mounts", "proc /proc proc rw 0 0\n")
    r = cgroup_check(root)
    assert r.status is Status.FAIL and "no cgroup" in r.detail


def test_cgroups_garbled_input(root):
    root.write("proc/self/mounts", "\x00\xff\ncgroup2\n  \ncgroup2 /sys/fs/cgroup cgroup2\n")
    root.write("proc/cgroups", "garbage\tline\nmemory x y z\n")
    assert cgroup_check(root).status is Status.FAIL


def test_cgroups_v2_controllers_file_missing(root):
    root.write("proc/self/mounts", V2_MOUNTS)
    r = cgroup_check(root)
    assert r.status is Status.FAIL
    assert any(e.value == "missing" for e in r.evidence)


def test_cgroups_offline(root):
    root.mkdir("etc")
    assert root.check("cgroups.controllers").status is Status.SKIP
    root.write("proc/mounts", V2_MOUNTS)
    root.write("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    assert root.check("cgroups.controllers").status is Status.PASS


# ---- iommu.firmware --------------------------------------------------------------

def tables(root, *names):
    for n in names:
        root.write(f"sys/firmware/acpi/tables/{n}", b"\0" * 8)


@pytest.mark.parametrize("table,words", [
    ("DMAR", "Intel VT-d"),
    ("IVRS", "AMD-Vi"),
    ("IORT", "Arm SMMU"),
])
def test_firmware_tables(root, table, words):
    tables(root, "APIC", "DSDT", table)
    r = root.check("iommu.firmware")
    assert r.status is Status.PASS and words in r.detail


def test_firmware_none_like_this_machine(root):
    root.use("kvm/pvm-host")
    r = root.check("iommu.firmware")
    assert r.status is Status.WARN and r.detail.startswith("firmware reports no IOMMU")
    assert any(e.value == "APIC DSDT FACP MCFG" for e in r.evidence)


def test_firmware_none_on_bare_metal_points_at_the_bios(root):
    root.use("cpu/x86_64-epyc_7451")
    tables(root, "APIC", "DSDT", "FACP")
    r = root.check("iommu.firmware")
    assert r.status is Status.WARN
    assert r.detail == "firmware reports no IOMMU (VT-d/AMD-Vi off in BIOS or absent)"
    assert "BIOS" in r.hint


def test_firmware_hidden_is_skipped(root):
    root.mkdir("sys/kernel")
    assert root.check("iommu.firmware").status is Status.SKIP


def test_firmware_device_tree(root):
    root.mkdir("sys/firmware/devicetree/base/soc/iommu@12e00000")
    r = root.check("iommu.firmware")
    assert r.status is Status.PASS and "/soc/iommu@12e00000" in r.detail


def test_firmware_device_tree_without_iommu(root):
    root.mkdir("sys/firmware/devicetree/base/soc/uart@1")
    assert root.check("iommu.firmware").status is Status.WARN


@pytest.mark.parametrize("fixture,status", [
    ("cpu/ppc64le-powernv-power8", Status.PASS),
    ("cpu/s390-lpar-drawer", Status.PASS),
    ("cpu/ppc64-POWER7", Status.WARN),
])
def test_firmware_other_platforms(root, fixture, status):
    root.use(fixture)
    assert root.check("iommu.firmware").status is status


def test_firmware_empty_sys_firmware(root):
    root.mkdir("sys/firmware")
    assert root.check("iommu.firmware").status is Status.WARN


# ---- iommu.kernel ----------------------------------------------------------------

def live_iommu(root, cmdline="BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet", config=None, table=None):
    root.write("proc/version", f"Linux version {REL} (debian-kernel@lists.debian.org) #1 SMP\n")
    root.write("proc/cmdline", cmdline + "\n")
    root.mkdir("sys/kernel/iommu_groups")
    root.mkdir("sys/class/iommu")
    tables(root, "APIC", "DSDT", *([table] if table else []))
    if config is not None:
        root.write(f"boot/config-{REL}", config)


def no_bad_hints(r):
    assert "amd_iommu=on" not in (r.hint or "") and "iommu=pt" not in (r.hint or "")


def test_kernel_groups_present(root):
    live_iommu(root, table="DMAR")
    root.mkdir("sys/kernel/iommu_groups/0")
    root.mkdir("sys/kernel/iommu_groups/1")
    root.mkdir("sys/class/iommu/dmar0")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.PASS and r.detail == "2 IOMMU groups (dmar0)"


def test_kernel_intel_off_by_default(root):
    live_iommu(root, config="CONFIG_INTEL_IOMMU=y\n# CONFIG_INTEL_IOMMU_DEFAULT_ON is not set\n", table="DMAR")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.FAIL and "leaves it off by default" in r.detail
    assert r.hint.startswith("add intel_iommu=on")
    assert r.remediations == ["enable-iommu"]
    no_bad_hints(r)


def test_kernel_intel_default_on_does_not_suggest_intel_iommu_on(root):
    live_iommu(root, config="CONFIG_INTEL_IOMMU=y\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y\n", table="DMAR")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.FAIL and "intel_iommu=on" not in r.hint
    no_bad_hints(r)


def test_kernel_intel_turned_off(root):
    live_iommu(root, cmdline="ro intel_iommu=off", table="DMAR")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.FAIL and "intel_iommu=off" in r.detail


def test_kernel_amd_points_at_the_bios(root):
    live_iommu(root, config="CONFIG_AMD_IOMMU=y\n", table="IVRS")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.FAIL and "on by default" in r.detail and "BIOS" in r.hint
    no_bad_hints(r)


def test_kernel_nothing_like_this_machine(root):
    root.use("kvm/pvm-host")
    root.mkdir("sys/kernel/iommu_groups")
    root.mkdir("sys/class/iommu")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.FAIL and "firmware reports none" in r.detail
    no_bad_hints(r)


def test_kernel_garbled_config(root):
    live_iommu(root, config="\x00\xff\nCONFIG_\n=y\n", table="DMAR")
    r = root.check("iommu.kernel", live=True)
    assert r.status is Status.FAIL and r.hint.startswith("add intel_iommu=on")


def test_kernel_offline_from_boot_config(root):
    root.mkdir(f"lib/modules/{REL}")
    assert root.check("iommu.kernel").status is Status.SKIP
    root.write("etc/default/grub", 'GRUB_CMDLINE_LINUX="quiet intel_iommu=on"\n')
    r = root.check("iommu.kernel")
    assert r.status is Status.PASS and "intel_iommu=on" in r.detail
    root.write("etc/default/grub", 'GRUB_CMDLINE_LINUX="quiet iommu=off"\n')
    assert root.check("iommu.kernel").status is Status.FAIL


def test_kernel_offline_from_kernel_config(root):
    root.mkdir(f"lib/modules/{REL}")
    root.write(f"boot/config-{REL}", "CONFIG_INTEL_IOMMU=y\nCONFIG_INTEL_IOMMU_DEFAULT_ON=y\n")
    assert root.check("iommu.kernel").status is Status.PASS


def test_kernel_config_from_proc_config_gz_on_a_live_host(root):
    """Without /boot/config-*, a live host's /proc/config.gz (gzip) is read; a
    corrupt one is no config at all, not an error."""
    import gzip

    root.write("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/vda1\n")
    root.write("proc/config.gz", gzip.compress(b"# CONFIG_INTEL_IOMMU is not set\nCONFIG_AMD_IOMMU=y\n"))
    r = root.check("iommu.kernel", live=True)
    assert "/proc/config.gz: CONFIG_INTEL_IOMMU=n, CONFIG_INTEL_IOMMU_DEFAULT_ON=?, CONFIG_AMD_IOMMU=y" in \
        "\n".join(f"{e.source}: {e.value}" for e in r.evidence), r.evidence
    root.write("proc/config.gz", b"\x1f\x8b\x08garbage")
    r = root.check("iommu.kernel", live=True)
    assert r.status is not Status.ERROR and "config.gz" not in str(r.evidence)
