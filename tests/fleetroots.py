"""Throwaway host roots for the fleet tests, and their real reports.

Each root is a Debian 12 (dpkg) or AlmaLinux 8 (rpm) tree with a real CPU's
/proc/cpuinfo (tests/fixtures/cpu), a kernel release in /proc/version, the
kernel's address tables of the build VM (tests/fixtures/net/debian12-vm) with
this host's own address written in, a hostname and a machine id. Packages are
installed with the real dpkg/rpm from the session's stub repositories
(tests/pkgroots.py). ``report(root)`` is what ``kvmprep check --format json
--root R`` prints for it: the reports the fleet tests read are real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pkgroots import debian_root, dpkg_install, el_root, rpm_install

TOP = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"

# A profile under which these offline roots are ready: the checks that need a
# running kernel or a full system (KVM ioctls, libvirt running, /etc/hosts...)
# only inform, so the fleet's verdict is the fleet checks' own.
LAB_PROFILE = """name: fleet-lab
extends: generic
checks:
  kvm.modules: info
  kvm.device: info
  kvm.usable: info
  kvm.tun: info
  cpu.virt-extensions: info
  services.libvirt: info
  packages.virtualization: info
"""


def _copy_tree(src: Path, dest: Path) -> None:
    for path in src.rglob("*"):
        if path.is_file():
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def build_host(path: Path, *, name: str, cpu: str, kernel: str, address: int, machine_id: str,
               os_kind: str = "debian", deb_repo: Path | None = None, rpm_repo: Path | None = None) -> Path:
    """One host root at ``path``: ``address`` is the last byte of its 192.0.2.x
    and fd00::x addresses (eth0, the default route's interface)."""
    if os_kind == "debian":
        debian_root(path)
        if deb_repo is not None:
            dpkg_install(path, deb_repo, ["qemu-system-x86", "libvirt-daemon-system", "libvirt-clients"])
    else:
        el_root(path)
        if rpm_repo is not None:
            rpm_install(path, rpm_repo, ["qemu-kvm", "libvirt", "libvirt-daemon", "libvirt-daemon-kvm",
                                         "libvirt-client"])
    _copy_tree(FIXTURES / f"cpu/{cpu}", path)
    _copy_tree(FIXTURES / "net/debian12-vm", path)
    net = path / "proc/net"
    (net / "fib_trie").write_text((net / "fib_trie").read_text().replace("192.0.2.2\n", f"192.0.2.{address}\n"))
    (net / "if_inet6").write_text((net / "if_inet6").read_text().replace(
        "fd000000000000000000000000000002", f"fd0000000000000000000000000000{address:02x}"))
    (path / "proc/version").write_text(f"Linux version {kernel} (builder@example) (gcc) #1 SMP\n")
    (path / "proc/meminfo").write_text("MemTotal:       65843200 kB\nMemAvailable:   60000000 kB\n")
    (path / "etc/hostname").write_text(name + "\n")
    (path / "etc/machine-id").write_text(machine_id + "\n")
    return path


def lab_profile(directory: Path) -> Path:
    p = Path(directory) / "fleet-lab.yaml"
    p.write_text(LAB_PROFILE)
    return p


def kvmprep(*args: str, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """The kvmprep command line, as an admin runs it (a child process)."""
    env = {**os.environ, "PYTHONPATH": str(TOP)}
    return subprocess.run([sys.executable, "-m", "app", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or TOP, env=env, timeout=timeout)


def report(root: Path, out: Path, profile: Path | str | None = None) -> dict:
    """``kvmprep check --format json --root ROOT`` written to ``out``; the document."""
    args = ["check", "--format", "json", "--root", str(root)]
    if profile:
        args += ["--profile", str(profile)]
    r = kvmprep(*args)
    assert r.returncode in (0, 1), r.stderr
    out.write_text(r.stdout)
    return json.loads(r.stdout)
