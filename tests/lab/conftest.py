"""Fixtures of the lab (issue 9): real booted Debian 12 hosts for kvmprep.

- ``lab_mirror``: this machine's Debian mirror, checked once; skips the lab
  when the machine cannot run it (not root, no CAP_SYS_ADMIN, a tool missing,
  no reachable Debian 12 mirror), saying which.
- ``lab_cached_root``: the debootstrap'd root (tests/lab/lab_root.py), built
  once per package list and kept across runs, so its ~50 s is paid once and
  in session setup, not in a test.
- ``lab_key``: an ssh key made for this run only.
- ``lab_bundle``: ``kvmprep.pyz`` built by the installed product (``kvmprep
  bundle``), the single file an admin copies to a server.
- ``lab_apt_archives``: the downloaded .deb files, shared by this session's
  hosts (the scenarios install the same ~130 packages several times).
- ``lab``: ``lab.boot()`` gives a booted NspawnHost on a fresh copy of the
  cached root (or of a given root); every host the test booted is powered
  off at teardown (also after a failure or Ctrl-C) and its copy removed
  (``KVMPREP_LAB_KEEP=1`` keeps the copies for a post-mortem).
- ``vm_base``: the cached Debian 12 disk image that boots through GRUB
  (tests/lab/lab_vm.py); ``boot_vm(image, label)`` boots a VM on an overlay
  of it and powers it off at the test's end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the lab_* modules, whatever the rootdir

from lab_host import NspawnHost  # noqa: E402
from lab_mirror import find_mirror, reachable  # noqa: E402
from lab_root import cached_root, copy_root  # noqa: E402
from lab_vm import QemuVM, base_image, missing_tools  # noqa: E402

TOOLS = {
    "debootstrap": "debootstrap", "systemd-nspawn": "systemd-container", "ssh": "openssh-client",
    "scp": "openssh-client", "ssh-keygen": "openssh-client", "nsenter": "util-linux", "pgrep": "procps",
    "chroot": "coreutils", "tmux": "tmux",
}
CAP_SYS_ADMIN = 21


def _cap_sys_admin() -> bool:
    try:
        with open("/proc/self/status") as fh:
            eff = next(int(l.split()[1], 16) for l in fh if l.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return False
    return bool(eff >> CAP_SYS_ADMIN & 1)


def _mirror_or_skip(lab: str, needs_root: str, missing: list):
    """This machine's Debian 12 mirror, or skip saying what ``lab`` lacks here."""
    if os.geteuid() != 0:
        pytest.skip(f"{lab} needs root ({needs_root})")
    if missing:
        pytest.skip(f"{lab} needs " + ", ".join(missing) + " (CI: apt-get install " + " ".join(missing) + ")")
    mirror = find_mirror()
    if mirror is None:
        pytest.skip("no Debian 12 (bookworm) mirror in this machine's apt sources: the lab builds Debian 12 from it")
    why = reachable(mirror)
    if why:
        pytest.skip(f"the Debian mirror of this machine's apt sources does not answer: {why}")
    return mirror


@pytest.fixture(scope="session")
def lab_mirror():
    if os.geteuid() == 0 and not _cap_sys_admin():
        pytest.skip("the lab needs CAP_SYS_ADMIN to boot containers (an unprivileged container cannot)")
    return _mirror_or_skip("the lab", "debootstrap, systemd-nspawn",
                           sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None}))


@pytest.fixture(scope="session")
def lab_cached_root(lab_mirror) -> Path:
    return cached_root(lab_mirror, log=lambda msg: print(msg, file=sys.stderr))


@pytest.fixture(scope="session")
def lab_key(tmp_path_factory) -> Path:
    key = tmp_path_factory.mktemp("lab-key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvmprep-lab", "-f", str(key)],
                   check=True, stdin=subprocess.DEVNULL)
    return key


@pytest.fixture(scope="session")
def lab_apt_archives(tmp_path_factory):
    """/var/cache/apt/archives of every host of this session (tests/lab/lab_host.py)."""
    path = tmp_path_factory.mktemp("lab-apt-archives")
    yield path
    shutil.rmtree(path, ignore_errors=True)  # ~260 MB of .deb files


@pytest.fixture(scope="session")
def lab_bundle(installed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lab-bundle") / "kvmprep.pyz"
    r = installed.run("bundle", "-o", str(out), cwd=out.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


class Lab:
    """Boots hosts for one test and powers all of them off at its end."""

    def __init__(self, tmp_path: Path, cached: Path, key: Path, mirror, bundle: Path, apt_archives: Path):
        self.tmp_path, self.cached, self.key, self.mirror, self.bundle = tmp_path, cached, key, mirror, bundle
        self.apt_archives = apt_archives
        self.hosts: list = []

    def boot(self, label: str = "host", root: Path | None = None) -> NspawnHost:
        """A booted host on a fresh copy of the cached root, or of ``root`` (a
        powered-off host's root, to start a second host from where it stopped)."""
        name = f"kvmlab-{label}-{uuid.uuid4().hex[:6]}"
        work = self.tmp_path / name
        work.mkdir()
        started = time.monotonic()
        try:
            copy = copy_root(root or self.cached, work / "root")
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        host = NspawnHost(copy, work, self.key, self.mirror, name, self.apt_archives)
        self.hosts.append(host)
        host.prepare()
        host.boot()
        host.copy_seconds = time.monotonic() - started - host.boot_seconds
        return host

    def put_kvmprep(self, host: NspawnHost, user: str = "root") -> str:
        """kvmprep.pyz copied to the user's home with scp, as an admin does; its path there."""
        home = "/root" if user == "root" else f"/home/{user}"
        host.scp_to(self.bundle, f"{home}/kvmprep.pyz", user=user)
        return f"{home}/kvmprep.pyz"

    def close(self) -> None:
        errors = []
        for host in self.hosts:
            try:
                host.poweroff()
            except Exception as exc:  # still power off the others
                errors.append(f"{host.name}: {exc}")
        if not os.environ.get("KVMPREP_LAB_KEEP"):
            for host in self.hosts:
                if not host.running:  # never delete a root a live container still uses
                    shutil.rmtree(host.root, ignore_errors=True)  # the console log stays
        if errors:
            raise RuntimeError("lab hosts did not power off: " + "; ".join(errors))


@pytest.fixture
def lab(tmp_path, lab_cached_root, lab_key, lab_mirror, lab_bundle, lab_apt_archives):
    the_lab = Lab(tmp_path, lab_cached_root, lab_key, lab_mirror, lab_bundle, lab_apt_archives)
    try:
        yield the_lab
    finally:
        the_lab.close()


# ---- the QEMU lab (tests/lab/lab_vm.py) ------------------------------------------------

@pytest.fixture(scope="session")
def vm_mirror():
    return _mirror_or_skip("the QEMU lab", "debootstrap, chroot", missing_tools())


@pytest.fixture(scope="session")
def vm_base(vm_mirror):
    return base_image(vm_mirror, log=lambda msg: print(msg, file=sys.stderr))


@pytest.fixture
def boot_vm(tmp_path):
    """``boot_vm(image, label)``: a booted QemuVM on an overlay of ``image``; every VM
    the test booted is powered off at its end (also after a failure or Ctrl-C)."""
    vms = []

    def boot(image, label="vm", hardware=()) -> QemuVM:
        vm = QemuVM(image, tmp_path, f"kvmlab-{label}", hardware=list(hardware))
        vms.append(vm)
        vm.boot()
        return vm

    yield boot
    errors = []
    for vm in vms:
        try:
            vm.poweroff()
        except Exception as exc:
            errors.append(f"{vm.name}: {exc}")
        keep = Path(os.environ.get("KVMPREP_LAB_LOGS") or tmp_path)
        if keep != tmp_path and vm.serial_log.exists():
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(vm.serial_log, keep / vm.serial_log.name)
    assert not errors, "VMs did not power off: " + "; ".join(errors)


# ---- the time of each scenario, in every run's summary (issue 9 asks for it) ----------------

SCENARIOS = {
    "test_lab_fresh_server.py": "1 fresh server over SSH (nspawn)",
    "test_lab_ssh_drop.py": "2 SSH drops during the apply (nspawn)",
    "test_lab_kernel.py": "3 a real kernel through GRUB (QEMU)",
    "test_lab_serial_oracle.py": "5 serial console, 4 virt-host-validate (QEMU)",
    "test_lab_fleet.py": "fleet of three (nspawn, Ansible)",
    "test_lab_wizard_undo.py": "the wizard's undo (nspawn)",
    "test_lab_harness.py": "the harness itself (nspawn)",
}
_seconds: dict = {}


def pytest_runtest_logreport(report):
    if "lab" in report.keywords and "/lab/" in report.fspath.replace("\\", "/"):
        _seconds[report.nodeid] = _seconds.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    terminalreporter.section("lab scenarios: seconds (setup, run, teardown; image builds in the first)")
    for nodeid, seconds in _seconds.items():
        module = nodeid.split("::")[0].rsplit("/", 1)[-1]
        terminalreporter.write_line(f"{seconds:7.0f}  {SCENARIOS.get(module, module)}: {nodeid.split('::', 1)[-1]}")
    terminalreporter.write_line(f"{sum(_seconds.values()):7.0f}  the lab in all")
