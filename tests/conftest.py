"""Shared test helpers: throwaway root trees and running one check on them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from checks.facts import Facts
from checks.host import Host
from checks.registry import all_checks
from checks.runner import run_one
from pkgroots import deb_repo, rpm_repo  # noqa: F401  (session fixtures for every test module)

FIXTURES = Path(__file__).parent / "fixtures"


class RootBuilder:
    """A root tree under a temporary directory, filled file by file."""

    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, content: str | bytes = "", mode: int | None = None) -> Path:
        p = self.path / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
        if mode is not None:
            p.chmod(mode)
        return p

    def mkdir(self, rel: str) -> Path:
        p = self.path / rel.lstrip("/")
        p.mkdir(parents=True, exist_ok=True)
        return p

    def symlink(self, rel: str, target: str) -> Path:
        p = self.path / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
        return p

    def use(self, fixture: str) -> "RootBuilder":
        """Copy a tree from tests/fixtures (e.g. 'cpu/x86_64-epyc_7451', 'os/debian_10')."""
        shutil.copytree(FIXTURES / fixture, self.path, dirs_exist_ok=True, symlinks=True)
        return self

    def host(self, euid: int = 0, env: dict | None = None, live: bool | None = None) -> Host:
        return Host(self.path, env=env or {}, euid=euid, live=live)

    def check(self, check_id: str, params: dict | None = None, euid: int = 0,
              env: dict | None = None, live: bool | None = None, facts: Facts | None = None):
        """Run one check (defaults merged with ``params``) and return its CheckResult."""
        host = self.host(euid=euid, env=env, live=live) if facts is None else facts.host
        spec = all_checks()[check_id]
        return run_one(spec, "required", params or {}, host, facts or Facts(host))


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """kvmprep as users get it: the wheel, installed non-editable in a fresh
    venv outside the source tree (tests/installed.py)."""
    from installed import build_and_install, check_isolation

    work = tmp_path_factory.mktemp("installed")
    inst = build_and_install(work)
    check_isolation(inst, cwd=work)
    return inst


@pytest.fixture
def terminal(tmp_path):
    """``terminal(argv)`` starts argv in tmux at 80x24 with TERM=linux (tests/terminal.py)."""
    from terminal import Terminal, need_tmux

    need_tmux()
    opened = []

    def start(argv: list, width: int = 80, height: int = 24):
        t = Terminal(tmp_path, argv, width, height)
        opened.append(t)
        return t

    yield start
    for t in opened:
        t.close()


@pytest.fixture
def kvm_root(root):
    """An offline Intel host whose kernel has kvm, kvm_intel and tun as modules."""
    rel = "5.14.0-362.el9.x86_64"
    root.use("cpu/x86_64-64cpu-linux6.2").use("os/centos_8_1")
    root.write("proc/version", f"Linux version {rel} (mockbuild@) (gcc) #1 SMP\n")
    root.write(f"lib/modules/{rel}/modules.dep",
               "kernel/arch/x86/kvm/kvm.ko.xz:\nkernel/arch/x86/kvm/kvm-intel.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz\n"
               "kernel/drivers/net/tun.ko.xz:\n")
    root.write(f"lib/modules/{rel}/modules.builtin", "")
    return root


@pytest.fixture
def tools_root(tmp_path, deb_repo):
    """A Debian 12 root with a real CPU's /proc/cpuinfo, whose stub apt
    repository offers the tools (dmidecode...) and the virtualization stack."""
    from pkgroots import debian_root, require

    require("apt-get", "dpkg")
    r = debian_root(tmp_path / "root", deb_repo)
    (r / "proc").mkdir(exist_ok=True)
    (r / "proc/cpuinfo").write_text((FIXTURES / "cpu/x86_64-64cpu-linux6.2/proc/cpuinfo").read_text())
    return r


@pytest.fixture
def root(tmp_path) -> RootBuilder:
    return RootBuilder(tmp_path / "root")
