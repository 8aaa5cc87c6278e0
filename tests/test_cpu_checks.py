"""CPU checks against real machines' /proc/cpuinfo (tests/fixtures/cpu)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.cpuinfo import parse_cpuinfo
from checks.model import Status

FIXTURES = Path(__file__).parent / "fixtures"  # not from conftest: tests/lab has a conftest of its own


def cpu(name):
    return parse_cpuinfo((FIXTURES / "cpu" / name / "proc/cpuinfo").read_text())


@pytest.mark.parametrize("name,arch,vendor,ext,level,count", [
    ("x86_64-epyc_7451", "x86_64", "amd", "svm", 3, 96),
    ("x86_64-64cpu-linux6.2", "x86_64", "intel", "vmx", 4, 8),
    ("vbox-win", "x86_64", "intel", None, 1, 2),
    ("i386-dellpe700", "i686", "intel", None, None, 2),
    ("ppc64-POWER7", "ppc64", "ibm", None, None, 16),
    ("ppc64le-powernv-power8", "ppc64", "ibm", "powernv", None, 20),
    ("s390-lpar-drawer", "s390x", "ibm", "sie", None, 8),
    ("arm-A510-A710-A715-X3", "aarch64", "arm", None, None, 8),
])
def test_parse_real_cpuinfo(name, arch, vendor, ext, level, count):
    info = cpu(name)
    assert (info.arch, info.vendor, info.virt_extension, info.x86_64_level, info.count) == \
        (arch, vendor, ext, level, count)


def test_vmx_flags_line_is_not_the_flags_line():
    info = cpu("x86_64-64cpu-linux6.2")
    assert "posted_intr" in info.vmx_flags and "posted_intr" not in info.flags
    assert "vmx" in info.flags


def test_garbled_cpuinfo_gives_no_facts():
    info = parse_cpuinfo("\x00\x01garbage\n::::\nflags\n")
    assert info.arch is None and info.virt_extension is None and info.x86_64_level is None


@pytest.mark.parametrize("fixture,status,words", [
    ("x86_64-epyc_7451", Status.PASS, "AMD-V"),
    ("x86_64-64cpu-linux6.2", Status.PASS, "VT-x"),
    ("ppc64le-powernv-power8", Status.PASS, "PowerNV"),
    ("s390-lpar-drawer", Status.PASS, "SIE"),
    ("vbox-win", Status.FAIL, "no VT-x/AMD-V flag"),
    ("i386-dellpe700", Status.FAIL, "no VT-x/AMD-V flag"),
    ("ppc64-POWER7", Status.FAIL, "pSeries"),
    ("arm-A510-A710-A715-X3", Status.SKIP, "EL2"),
])
def test_virt_extensions_offline(root, fixture, status, words):
    root.use(f"cpu/{fixture}")
    r = root.check("cpu.virt-extensions")
    assert r.status is status, r.detail
    assert words in r.detail


def test_virt_extensions_disabled_in_firmware_from_kernel_log(root):
    text = (FIXTURES / "cpu/x86_64-epyc_7451/proc/cpuinfo").read_text().replace(" svm", "")
    root.write("proc/cpuinfo", text)
    root.write("var/log/dmesg", "[    0.1] SVM disabled (by BIOS) in MSR_VM_CR on CPU 0\n")
    r = root.check("cpu.virt-extensions")
    assert r.status is Status.FAIL and "firmware" in r.detail
    assert any("SVM disabled" in e.value for e in r.evidence)


def test_virt_extensions_vm_without_nested_from_dmi(root):
    root.use("cpu/vbox-win")
    root.write("sys/class/dmi/id/product_name", "VirtualBox\n")
    r = root.check("cpu.virt-extensions")
    assert r.status is Status.FAIL and "virtual machine (oracle) without nested" in r.detail


def test_virt_extensions_missing_cpuinfo(root):
    root.mkdir("etc")
    assert root.check("cpu.virt-extensions").status is Status.SKIP


@pytest.mark.parametrize("fixture,status", [
    ("x86_64-epyc_7451", Status.PASS),
    ("i386-dellpe700", Status.FAIL),
    ("s390-lpar-drawer", Status.PASS),
])
def test_64bit(root, fixture, status):
    root.use(f"cpu/{fixture}")
    assert root.check("cpu.64bit").status is status


def test_64bit_cpu_on_32bit_userland(root):
    root.use("cpu/vbox-win")
    # an i386 ELF header as /bin/sh
    root.write("bin/sh", b"\x7fELF\x01\x01\x01" + b"\0" * 11 + (3).to_bytes(2, "little") + b"\0" * 40)
    r = root.check("cpu.64bit")
    assert r.status is Status.FAIL and "32-bit" in r.detail


@pytest.mark.parametrize("fixture,params,status", [
    ("x86_64-64cpu-linux6.2", {"min_level": 4}, Status.PASS),
    ("x86_64-epyc_7451", {"min_level": 2, "warn_below": 4}, Status.WARN),
    ("vbox-win", {"min_level": 2}, Status.FAIL),
    ("i386-dellpe700", {}, Status.FAIL),
    ("arm-A510-A710-A715-X3", {}, Status.SKIP),
])
def test_x86_64_level(root, fixture, params, status):
    root.use(f"cpu/{fixture}")
    assert root.check("cpu.x86-64-level", params).status is status


def test_arch_allowed_list(root):
    root.use("cpu/arm-A510-A710-A715-X3")
    assert root.check("cpu.arch").status is Status.PASS
    assert root.check("cpu.arch", {"allowed": ["x86_64"]}).status is Status.FAIL


@pytest.mark.parametrize("online,params,status", [
    ("0-95", {"min": 4, "recommended": 8}, Status.PASS),
    ("0-3", {"min": 4, "recommended": 8}, Status.WARN),
    ("0,2", {"min": 4, "recommended": 8}, Status.FAIL),
])
def test_cores(root, online, params, status):
    root.write("sys/devices/system/cpu/online", online + "\n")
    assert root.check("cpu.cores", params).status is status


def test_cores_falls_back_to_cpuinfo_and_survives_garbage(root):
    root.use("cpu/x86_64-epyc_7451")
    root.write("sys/devices/system/cpu/online", "garbage\n")
    r = root.check("cpu.cores")
    assert r.status is Status.PASS and "96" in r.detail


def test_frequency_from_model_name(root):
    root.use("cpu/vbox-win")  # "i5-3317U CPU @ 1.70GHz"
    r = root.check("cpu.frequency", {"min_ghz": 2.4, "recommended_ghz": 3.0})
    assert r.status is Status.FAIL and "1.70" in r.detail


def test_frequency_prefers_cpufreq_max(root):
    root.use("cpu/vbox-win")
    root.write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "3100000\n")
    assert root.check("cpu.frequency", {"min_ghz": 2.4, "recommended_ghz": 3.0}).status is Status.PASS


def test_frequency_unknown(root):
    root.mkdir("proc")
    assert root.check("cpu.frequency").status is Status.SKIP


def test_kernel_version(root):
    root.write("proc/version", "Linux version 3.10.0-1160.el7.x86_64 (mockbuild@) (gcc) #1 SMP\n")
    assert root.check("kernel.version", {"min_version": "3.16"}).status is Status.FAIL
    assert root.check("kernel.version", {"min_version": "3.10"}).status is Status.PASS


def test_kernel_version_from_lib_modules_when_offline(root):
    root.mkdir("lib/modules/5.14.0-70.el9.x86_64")
    root.mkdir("lib/modules/5.14.0-362.el9.x86_64")
    r = root.check("kernel.version")
    assert r.status is Status.PASS and r.detail == "5.14.0-362.el9.x86_64"


def test_kernel_version_garbage(root):
    root.write("proc/version", "\x00\xff nonsense\n")
    assert root.check("kernel.version").status is Status.SKIP


def test_virt_extensions_without_flag_and_no_access_to_dev_kvm_is_undecided(root):
    from checks.facts import Facts
    from checks.kvmprobe import KvmProbe

    root.use("cpu/vbox-win")
    facts = Facts(root.host(euid=1000, live=True))
    facts.host.memo(("fact", "kvm"), lambda: KvmProbe("denied", "cannot open /dev/kvm: permission denied"))
    r = root.check("cpu.virt-extensions", facts=facts)
    assert r.status is Status.SKIP and r.detail.startswith("needs root")


def test_an_image_without_cpuinfo_does_not_pretend_to_know_the_cpu(root):
    """A mounted disk: its binaries say x86_64, but nothing shows the CPU."""
    root.write("bin/sh", b"\x7fELF\x02\x01\x01" + b"\0" * 11 + (0x3E).to_bytes(2, "little") + b"\0" * 40)
    assert root.check("cpu.arch").status is Status.PASS
    for cid in ("cpu.64bit", "cpu.virt-extensions", "cpu.x86-64-level"):
        r = root.check(cid)
        assert r.status is Status.SKIP, (cid, r.detail)
    assert "x86_64 (64-bit)" in root.check("cpu.64bit").detail


@pytest.mark.parametrize("garbage", [bytes(range(256)) * 8, b"\x00" * 512, b"hello: world\nfoo: bar\n"])
def test_garbled_cpuinfo_is_one_consistent_answer(root, garbage):
    """Binary or garbled /proc/cpuinfo: the CPU cannot be seen, for every CPU
    check alike (never a CPU without VT-x)."""
    root.use("os/debian_10")
    root.write("proc/cpuinfo", garbage)
    from checks.facts import Facts

    facts = Facts(root.host())
    assert facts.cpuinfo_state == "garbled"
    for cid in ("cpu.virt-extensions", "cpu.64bit", "cpu.x86-64-level"):
        r = root.check(cid, facts=facts)
        assert r.status.value == "skip", (cid, r.detail)
        assert "not cpuinfo text" in r.detail, (cid, r.detail)
