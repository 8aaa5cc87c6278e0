"""Checks of categories os, hw and time, on throwaway roots."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from checks import timex
from checks.facts import Facts
from checks.kvmprobe import KvmProbe
from checks.model import Status

ALMA = 'NAME="AlmaLinux"\nID="almalinux"\nVERSION_ID="{v}"\nPRETTY_NAME="AlmaLinux {v}"\nID_LIKE="rhel centos fedora"\n'
VMMANAGER = [{"id": "almalinux", "min": "8.6", "max": "8.9"}, {"id": "centos", "min": "7", "max": "7"}]


@pytest.fixture
def no_kernel_log(monkeypatch):
    """Live-mode tests must not read this machine's /dev/kmsg."""
    monkeypatch.setattr("checks.facts.read_kernel_log", lambda host: ([], "no kernel log (test)"))


def unit(root, name, enabled=False, where="usr/lib/systemd/system"):
    root.write(f"{where}/{name}", "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n"
               "[Install]\nWantedBy=multi-user.target\n")
    if enabled:
        root.symlink(f"etc/systemd/system/multi-user.target.wants/{name}", f"/{where}/{name}")


def process(root, pid, argv):
    root.write(f"proc/{pid}/comm", os.path.basename(argv[0])[:15] + "\n")
    root.write(f"proc/{pid}/cmdline", "\0".join(argv) + "\0")


# ---------------------------------------------------------------- os.distribution

@pytest.mark.parametrize("tree,status,words", [
    ("debian_10", Status.FAIL, "older than 11"),
    ("ubuntu_18.04", Status.FAIL, "older than 20.04"),
    ("centos_8_1", Status.FAIL, "CentOS Linux 8 reached end of life"),
    ("fedora_31", Status.FAIL, "older than 38"),
    ("opensuse_leap_15.1", Status.PASS, "opensuse-leap >= 15"),
    ("sles_15_6", Status.PASS, "sles >= 15"),
    ("amazon_linux_2_karoo", Status.FAIL, "ID=amzn, VERSION_ID=2) is not a supported distribution"),
    ("archlinux_rolling", Status.FAIL, "ID=arch, no VERSION_ID) is not a supported distribution"),
])
def test_distribution_fixture_trees(root, tree, status, words):
    root.use(f"os/{tree}")
    r = root.check("os.distribution")
    assert r.status is status, r.detail
    assert words in r.detail
    assert any(e.source == "family" for e in r.evidence)


def test_distribution_evidence_names_file_family_and_package_manager(root):
    root.use("os/amazon_linux_2_karoo")
    r = root.check("os.distribution")
    assert r.evidence[0].source.endswith("/etc/system-release")
    assert r.evidence[1].value == "rhel (from ID=amzn), package manager yum"
    assert "debian >= 11" in r.hint


@pytest.mark.parametrize("version,status", [
    ("8.6", Status.PASS), ("8.9", Status.PASS), ("8.9.1", Status.PASS),
    ("8.5", Status.FAIL), ("8.10", Status.FAIL), ("9.3", Status.FAIL),
])
def test_distribution_vmmanager_range(root, version, status):
    root.write("etc/os-release", ALMA.format(v=version))
    r = root.check("os.distribution", {"supported": VMMANAGER})
    assert r.status is status, r.detail


def test_distribution_centos7_allowed_but_end_of_life(root):
    root.write("etc/centos-release", "CentOS Linux release 7.9.2009 (Core)\n")
    r = root.check("os.distribution", {"supported": VMMANAGER})
    assert r.status is Status.WARN and "2024-06-30" in r.detail
    r = root.check("os.distribution")
    assert r.status is Status.FAIL and "2024-06-30" in r.detail


def test_distribution_centos_stream_is_told_apart(root):
    root.write("etc/os-release", 'NAME="CentOS Stream"\nID="centos"\nVERSION_ID="9"\n'
               'PRETTY_NAME="CentOS Stream 9"\nID_LIKE="rhel fedora"\n')
    assert root.check("os.distribution").status is Status.PASS
    r = root.check("os.distribution", {"supported": [{"id": "almalinux", "min": "8"}]})
    assert r.status is Status.FAIL


def test_distribution_nothing_found(root):
    root.mkdir("etc")
    r = root.check("os.distribution")
    assert r.status is Status.FAIL and "no os-release" in r.detail and "/etc/system-release" in r.detail


def test_distribution_garbled_release_file(root):
    root.write("etc/os-release", b"\x00\x01\x02 garbage")
    r = root.check("os.distribution")
    assert r.status is Status.FAIL and "name no distribution" in r.detail


def test_distribution_without_version(root):
    root.write("etc/os-release", 'ID=debian\nPRETTY_NAME="Debian GNU/Linux trixie/sid"\n')
    r = root.check("os.distribution")
    assert r.status is Status.WARN and "no version" in r.detail


def test_distribution_bad_parameter_is_an_error(root):
    root.use("os/debian_10")
    r = root.check("os.distribution", {"supported": [{"name": "debian"}]})
    assert r.status is Status.ERROR and "parameter supported" in r.detail


# ---------------------------------------------------------------- os.bare-metal

def test_bare_metal_pass(root):
    root.write("proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vmx lm\n\n")
    root.write("sys/class/dmi/id/sys_vendor", "Dell Inc.\n")
    r = root.check("os.bare-metal")
    assert r.status is Status.PASS, r.detail


def test_bare_metal_vm_offline(root):
    root.write("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu lm hypervisor\n\n")
    root.write("var/log/dmesg", "[    0.000000] Hypervisor detected: KVM\n")
    r = root.check("os.bare-metal")
    assert r.status is Status.WARN and r.detail.startswith("virtual machine (kvm)")
    assert any(e.source == "kernel log" for e in r.evidence)


def test_bare_metal_vm_with_working_nested_kvm(root, monkeypatch, no_kernel_log):
    monkeypatch.setattr("checks.facts.probe_kvm", lambda device="/dev/kvm": KvmProbe("ok", "KVM_CREATE_VM succeeded", 12))
    root.write("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu lm hypervisor\n\n")
    root.write("sys/class/dmi/id/product_name", "VMware Virtual Platform\n")
    r = root.check("os.bare-metal", live=True)
    assert r.status is Status.WARN and "(vmware)" in r.detail and "nested KVM works" in r.detail


def test_bare_metal_cannot_tell(root):
    root.mkdir("etc")
    assert root.check("os.bare-metal").status is Status.SKIP


def test_bare_metal_container(root, monkeypatch, no_kernel_log):
    monkeypatch.setattr("checks.facts.probe_kvm", lambda device="/dev/kvm": KvmProbe("no-device", "missing"))
    root.write("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu lm vmx\n\n")
    root.write(".dockerenv", "")
    root.write("proc/1/cgroup", "0::/system.slice/docker-0123abcd.scope\n")
    r = root.check("os.bare-metal", live=True)
    assert r.status is Status.WARN and "docker container" in r.detail


def test_dockerenv_left_in_a_vm_image_is_not_a_container(root, monkeypatch, no_kernel_log):
    monkeypatch.setattr("checks.facts.probe_kvm", lambda device="/dev/kvm": KvmProbe("ok", "works", 12))
    root.write("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu lm hypervisor\n\n")
    root.write(".dockerenv", "")
    root.write("proc/1/cgroup", "0::/\n")
    root.write("proc/self/mountinfo", "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n")
    host = root.host(live=True)
    facts = Facts(host)
    assert facts.virt.container is None and facts.virt.is_vm is True
    r = root.check("os.bare-metal", facts=facts)
    assert r.status is Status.WARN and "virtual machine" in r.detail


def test_overlay_root_confirms_docker(root, no_kernel_log):
    root.write(".dockerenv", "")
    root.write("proc/self/mountinfo", "500 400 0:50 / / rw - overlay overlay rw,lowerdir=/x\n")
    assert Facts(root.host(live=True)).virt.container == "docker"


# ---------------------------------------------------------------- os.minimal

DEBIAN_SOURCES = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
"""


def test_minimal_clean_debian(root):
    root.use("os/debian_10")
    root.write("etc/apt/sources.list.d/debian.sources", DEBIAN_SOURCES)
    root.write("etc/apt/sources.list", "deb http://ftp.de.debian.org/debian buster main\n"
               "deb http://mirror.example.net/debian buster main\n# deb http://ppa.example.com/x y main\n")
    root.write("etc/apt/sources.list.d/google.list.disabled-by-farm", "deb https://packages.cloud.google.com/apt x main\n")
    r = root.check("os.minimal")
    assert r.status is Status.PASS, r.detail


def test_minimal_third_party_apt_and_services(root):
    root.use("os/ubuntu_18.04")
    root.write("etc/apt/sources.list", "deb http://archive.ubuntu.com/ubuntu bionic main\n"
               "deb http://security.ubuntu.com/ubuntu bionic-security main\n")
    root.write("etc/apt/sources.list.d/docker.list",
               "deb [arch=amd64 signed-by=/k.gpg] https://download.docker.com/linux/ubuntu bionic stable\n")
    root.write("etc/apt/sources.list.d/nodesource.sources",
               "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n\n"
               "Types: deb\nURIs: https://off.example.com/x\nSuites: y\nEnabled: no\n")
    unit(root, "nginx.service", enabled=True, where="lib/systemd/system")
    unit(root, "postgresql.service", where="lib/systemd/system")
    unit(root, "postgresql@.service", where="lib/systemd/system")
    r = root.check("os.minimal")
    assert r.status is Status.WARN
    assert "2 third-party repositories" in r.detail and "nginx" in r.detail and "PostgreSQL" in r.detail
    text = " ".join(e.value for e in r.evidence)
    assert "download.docker.com" in text and "nodesource" in text and "off.example.com" not in text
    assert "postgresql@" not in r.hint and "nginx.service" in r.hint
    strict = root.check("os.minimal", {"strict": True})
    assert strict.status is Status.FAIL and strict.detail == r.detail


def test_minimal_yum_repos(root):
    root.write("etc/os-release", ALMA.format(v="8.9"))
    root.write("etc/yum.repos.d/almalinux.repo",
               "[baseos]\nname=BaseOS\nmirrorlist=https://mirrors.almalinux.org/mirrorlist/$releasever/baseos\n"
               "enabled=1\n\n[appstream]\nmirrorlist=https://mirrors.almalinux.org/x\n\n"
               "[powertools]\nmirrorlist=https://mirrors.almalinux.org/y\nenabled=0\n")
    root.write("etc/yum.repos.d/epel.repo",
               "[epel]\nmetalink=https://mirrors.fedoraproject.org/metalink?repo=epel-8\nenabled=1\n"
               "[epel-testing]\nmetalink=https://mirrors.fedoraproject.org/x\nenabled=0\n")
    root.write("etc/yum.repos.d/local-mirror.repo", "[my-alma]\nbaseurl=http://almalinux.mirror.example/8/\n")
    r = root.check("os.minimal")
    assert r.status is Status.WARN and "1 third-party repository" in r.detail
    assert "[epel]" in r.evidence[0].value
    root.write("etc/yum.repos.d/epel.repo", "[epel]\nenabled=0\n")
    assert root.check("os.minimal").status is Status.PASS


def test_minimal_zypper_repos(root):
    root.use("os/sles_15_6")
    root.write("etc/zypp/repos.d/pool.repo", "[SLES15-SP6-Pool]\nenabled=1\n"
               "baseurl=https://updates.suse.com/SUSE/Products/SLE-Product-SLES/15-SP6/x86_64/product\n")
    root.write("etc/zypp/repos.d/home.repo", "[home_user]\nenabled=1\n"
               "baseurl=https://download.opensuse.org/repositories/home:/user/15.6/\n")
    r = root.check("os.minimal")
    assert r.status is Status.WARN and "home_user" in r.evidence[0].value


def test_minimal_garbled_files_do_not_raise(root):
    root.use("os/centos_8_1")
    root.write("etc/yum.repos.d/bad.repo", b"\xff\xfe[[[\nenabled\n=\n")
    root.write("etc/apt/sources.list", b"\x00\x01 deb")
    r = root.check("os.minimal")
    assert r.status in (Status.PASS, Status.WARN), r.detail


def test_minimal_alias_unit_is_not_counted_twice(root):
    root.use("os/debian_10")
    unit(root, "mariadb.service", where="lib/systemd/system")
    root.symlink("etc/systemd/system/mysql.service", "/lib/systemd/system/mariadb.service")
    r = root.check("os.minimal")
    assert r.status is Status.WARN and r.detail.endswith("extra services: MariaDB")


# ---------------------------------------------------------------- hw.memory

def meminfo(kib):
    return f"MemTotal:       {kib} kB\nMemFree:        1000 kB\nMemAvailable:   2000 kB\n"


@pytest.mark.parametrize("kib,status", [
    (16_000_000, Status.PASS),  # 15.3 GiB: 16 GiB within 5 %
    (8_000_000, Status.WARN),  # 7.6 GiB: 8 GiB within 5 %, below 16
    (7_000_000, Status.FAIL),  # 6.7 GiB
])
def test_memory_vmmanager(root, kib, status):
    root.write("proc/meminfo", meminfo(kib))
    r = root.check("hw.memory", {"min_gib": 8.0, "recommended_gib": 16.0})
    assert r.status is status, r.detail


def test_memory_missing_and_garbled(root):
    root.mkdir("etc")
    r = root.check("hw.memory")
    assert r.status is Status.SKIP and "no /proc/meminfo" in r.detail
    root.write("proc/meminfo", "\x00garbage: lots\n")
    r = root.check("hw.memory")
    assert r.status is Status.SKIP and "MemTotal" in r.detail


# ---------------------------------------------------------------- hw.disk

def fake_statvfs(monkeypatch, size, free, bsize=4096):
    real = os.statvfs
    seen = []

    def statvfs(path):
        seen.append(str(path))
        real(path)  # still fails for missing paths
        return SimpleNamespace(f_blocks=size // bsize, f_frsize=bsize, f_bavail=free // bsize)

    monkeypatch.setattr(os, "statvfs", statvfs)
    return seen


@pytest.mark.parametrize("size,free,status", [
    (2_000e9, 1_500e9, Status.PASS),
    (983e9, 900e9, Status.WARN),  # a 1 TB disk with ext4 overhead: within the 5 % tolerance
    (900e9, 800e9, Status.FAIL),
    (2_000e9, 5e9, Status.FAIL),  # not enough free space
])
def test_disk_vmmanager(root, monkeypatch, size, free, status):
    root.mkdir("var/lib/libvirt/images")
    seen = fake_statvfs(monkeypatch, int(size), int(free))
    r = root.check("hw.disk", {"min_gb": 1000.0, "recommended_gb": 2000.0, "min_free_gb": 10.0})
    assert r.status is status, r.detail
    assert seen[-1].endswith("var/lib/libvirt/images")


def test_disk_measures_nearest_existing_parent(root, monkeypatch):
    root.mkdir("var/lib")
    seen = fake_statvfs(monkeypatch, 500 * 10**9, 400 * 10**9)
    r = root.check("hw.disk")
    assert r.status is Status.PASS
    assert seen[-1].endswith("root/var/lib")
    assert "does not exist yet" in r.detail
    assert any("nearest existing parent" in e.value for e in r.evidence)


def test_disk_names_the_mount_on_a_live_host(root, monkeypatch, no_kernel_log):
    root.mkdir("var/lib/libvirt/images")
    fake_statvfs(monkeypatch, 500 * 10**9, 400 * 10**9)
    major = os.major(os.stat(root.path).st_dev) + 1  # device numbers that cannot be the real one
    root.write("proc/self/mountinfo", f"1 0 {major}:1 / / rw - ext4 /dev/sda1 rw\n"
               f"2 1 {major}:2 / {root.path}/var rw - xfs /dev/sda2 rw\n")
    r = root.check("hw.disk", live=True)
    assert r.status is Status.PASS and f"xfs filesystem mounted on {root.path}/var (/dev/sda2)" in r.detail


def test_disk_real_statvfs(root):
    root.mkdir("var")
    r = root.check("hw.disk", {"min_gb": 0.0, "recommended_gb": 0.0, "min_free_gb": 0.0})
    assert r.status is Status.PASS and r.evidence[0].source.startswith("statvfs")


# ---------------------------------------------------------------- hw.server-board

def dmi(root, **values):
    for k, v in values.items():
        root.write(f"sys/class/dmi/id/{k}", f"{v}\n")


@pytest.mark.parametrize("values,status,words", [
    ({"chassis_type": "23", "sys_vendor": "Dell Inc.", "product_name": "PowerEdge R740",
      "board_vendor": "Dell Inc.", "board_name": "0WXD1Y"}, Status.PASS, "Rack Mount Chassis"),
    ({"chassis_type": "17", "board_vendor": "Supermicro", "board_name": "X11SPi-TF"}, Status.PASS, "Main Server"),
    ({"chassis_type": "7", "sys_vendor": "HPE", "product_name": "ProLiant ML350 Gen10"}, Status.PASS, "ProLiant"),
    ({"chassis_type": "10", "sys_vendor": "LENOVO", "product_name": "ThinkPad T14"}, Status.WARN, "desktop/laptop"),
    ({"chassis_type": "3", "board_vendor": "ASUSTeK", "board_name": "PRIME B450M-A"}, Status.WARN, "Desktop"),
    ({"chassis_type": "1", "sys_vendor": "QEMU", "product_name": "Standard PC (Q35 + ICH9, 2009)"},
     Status.WARN, "virtual machine (kvm)"),
    ({"chassis_type": "1", "sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"},
     Status.WARN, "virtual machine (microsoft)"),
    ({"chassis_type": "7", "board_vendor": "Gigabyte", "board_name": "B550 AORUS"}, Status.WARN, "cannot tell"),
    ({"chassis_type": "garbage\x00", "board_vendor": "Unknown"}, Status.WARN, "unreadable chassis_type"),
])
def test_server_board(root, values, status, words):
    dmi(root, **values)
    r = root.check("hw.server-board")
    assert r.status is status, r.detail
    assert words in r.detail


def test_server_board_without_dmi(root):
    root.mkdir("sys/class")
    r = root.check("hw.server-board", euid=1000)
    assert r.status is Status.SKIP and "no SMBIOS data" in r.detail


# ---------------------------------------------------------------- time.sync

SYNCED = timex.ClockState(True, timex.TIME_OK, timex.STA_PLL, 10_000, 500)
UNSYNCED = timex.ClockState(False, timex.TIME_ERROR, timex.STA_UNSYNC, 16_000_000, 16_000_000)


@pytest.fixture
def clock(monkeypatch, no_kernel_log):
    def set_state(state):
        monkeypatch.setattr(timex, "read_clock_state", lambda: state)
    return set_state


def test_time_synced_with_chrony(root, clock):
    clock(SYNCED)
    root.use("os/centos_8_1")
    unit(root, "chronyd.service", enabled=True)
    process(root, 812, ["/usr/sbin/chronyd", "-F", "2"])
    r = root.check("time.sync", {"daemon": "chrony"}, live=True)
    assert r.status is Status.PASS and "chrony is running" in r.detail
    assert r.evidence[0].source == "adjtimex(2)" and "TIME_OK" in r.evidence[0].value


def test_time_not_synced_daemon_enabled_not_running(root, clock):
    clock(UNSYNCED)
    root.use("os/debian_10")
    unit(root, "systemd-timesyncd.service", enabled=True, where="lib/systemd/system")
    r = root.check("time.sync", live=True)
    assert r.status is Status.FAIL
    assert r.detail == "clock not synchronised: systemd-timesyncd is enabled but not running"
    assert "systemctl enable --now systemd-timesyncd.service" in r.hint
    assert any(e.source.endswith("/run/systemd/timesync/synchronized") for e in r.evidence)


def test_time_running_but_not_synced_yet(root, clock):
    clock(UNSYNCED)
    unit(root, "chrony.service", enabled=True)
    process(root, 90, ["/usr/sbin/chronyd"])
    r = root.check("time.sync", live=True)
    assert r.status is Status.WARN and "not synchronised yet" in r.detail


def test_time_synced_by_timesyncd_but_profile_wants_chrony(root, clock):
    clock(SYNCED)
    root.use("os/debian_10")
    unit(root, "systemd-timesyncd.service", enabled=True)
    process(root, 77, ["/lib/systemd/systemd-timesyncd"])
    assert root.check("time.sync", live=True).status is Status.PASS
    r = root.check("time.sync", {"daemon": "chrony"}, live=True)
    assert r.status is Status.WARN and "not by chrony" in r.detail
    assert "apt-get install -y chrony" in r.hint


def test_time_no_daemon_at_all(root, clock):
    clock(UNSYNCED)
    root.use("os/centos_8_1")
    root.mkdir("proc")
    r = root.check("time.sync", live=True)
    assert r.status is Status.FAIL and "no time daemon is installed" in r.detail
    assert r.hint.startswith("dnf install -y chrony && systemctl enable --now chronyd.service")


def test_time_adjtimex_unavailable(root, clock):
    clock(timex.ClockState(None, error="no adjtimex in the C library"))
    unit(root, "chronyd.service", enabled=True)
    r = root.check("time.sync", live=True)
    assert r.status is Status.FAIL and "cannot be read" in r.detail


@pytest.mark.parametrize("enabled,daemon,status,words", [
    (True, "chrony", Status.PASS, "chrony is enabled"),
    (False, "chrony", Status.FAIL, "installed but not enabled"),
    (True, "any", Status.PASS, "runtime synchronisation cannot be checked"),
])
def test_time_offline_judges_configuration(root, enabled, daemon, status, words):
    root.use("os/sles_15_6")
    unit(root, "chronyd.service", enabled=enabled)
    r = root.check("time.sync", {"daemon": daemon})
    assert r.status is status, r.detail
    assert words in r.detail
    if status is Status.FAIL:
        assert f"systemctl --root={root.path} enable chronyd.service" in r.hint


def test_time_offline_without_daemon(root):
    root.use("os/ubuntu_18.04")
    r = root.check("time.sync")
    assert r.status is Status.FAIL and "no time daemon installed" in r.detail
    assert "apt-get install -y chrony" in r.hint


def test_time_enablement_without_systemctl(root):
    """No systemctl on the machine: the wants/ symlinks decide."""
    unit(root, "chronyd.service", enabled=True)
    r = root.check("time.sync", {"daemon": "chrony"}, env={"PATH": "/nonexistent"})
    assert r.status is Status.PASS, r.detail


def test_time_bad_daemon_parameter(root):
    assert root.check("time.sync", {"daemon": "sundial"}).status is Status.ERROR


def test_adjtimex_reads_the_running_kernel():
    state = timex.read_clock_state()
    assert state.synchronized in (True, False, None)
    assert "adjtimex" in state.summary or "returned" in state.summary


def test_time_in_a_container_is_the_hosts(root, clock, monkeypatch):
    """A container cannot set the clock: an unsynchronised one is a warning that
    points at the host, and enable-time-sync offers nothing in there."""
    from checks.facts import Facts
    from remediations.plan import build_plan
    from checks.runner import run_checks
    from checks.profile import load_profile

    clock(UNSYNCED)
    monkeypatch.setattr("checks.facts.probe_kvm", lambda device="/dev/kvm": KvmProbe("no-device", "missing"))
    root.use("os/debian_10")
    root.write("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu lm vmx\n\n")
    root.write("proc/1/environ", b"container=systemd-nspawn\0")
    root.write("run/systemd/container", "systemd-nspawn\n")
    host = root.host(live=True)
    facts = Facts(host)
    assert facts.virt.container
    r = root.check("time.sync", facts=facts)
    assert r.status is Status.WARN and "the clock is the host's" in r.detail, r.detail
    assert "container's host" in r.hint
    report = run_checks(host, load_profile("generic"), facts=facts)
    plan = build_plan(host, facts, report, ["enable-time-sync"])
    assert not plan.steps and "the clock is the host's" in plan.nothing_to_do["enable-time-sync"]
