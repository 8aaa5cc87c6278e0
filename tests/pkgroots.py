"""Throwaway roots with REAL package databases and unit files.

Stub packages (no payload but what a test asks for, e.g. a unit file) are
built with the real tools -- ``rpmbuild`` + ``createrepo_c`` for rpm,
``dpkg-deb`` + ``dpkg-scanpackages`` for deb -- once per test session, and
installed into a root with the real package managers:

    rpm --root R --dbpath /var/lib/rpm -i --nodeps FILE.rpm
    dnf --installroot=R install NAME                      (resolves from the repo)
    dpkg --root=R --admindir=R/var/lib/dpkg -i FILE.deb
    apt-get -o Dir=R ... install NAME                     (resolves from the repo)

so what a check reads with ``rpm -q`` / ``dpkg-query`` is what a real
transaction wrote. The fix/apply tests reuse the same repos and roots to let
kvmprep itself run dnf/apt-get into a root.

Usage from a test module::

    from pkgroots import rpm_repo, deb_repo  # noqa: F401  (session fixtures)
    from pkgroots import el_root, rpm_install

    def test_x(root, rpm_repo):
        el_root(root.path, rpm_repo)
        rpm_install(root.path, rpm_repo, ["qemu-kvm", "libvirt"])

Every helper that needs a tool calls :func:`require` first, which skips the
test (with the tool's name) when it is missing; CI installs them
(kmod rpm dnf createrepo-c augeas-tools tmux dpkg-dev).

Debian's rpm keeps its database in ``~/.rpmdb`` by default, so everything
here passes the dbpath explicitly (``/var/lib/rpm``, where EL 8 keeps it);
dnf gets it through a private ``HOME`` holding ``.rpmmacros``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pytest

RPM_DBPATH = "/var/lib/rpm"
SYSTEMD_DIR_EL = "/usr/lib/systemd/system"
SYSTEMD_DIR_DEB = "/lib/systemd/system"

# ---------------------------------------------------------------- unit files


def unit_text(description: str, exec_start: str = "/bin/true", wanted_by: str | None = "multi-user.target",
              kind: str = "service", extra: str = "", also: str = "") -> str:
    """A small, valid unit file with an [Install] section (so it can be enabled)."""
    body = f"[Unit]\nDescription={description}\n\n"
    if kind == "service":
        body += f"[Service]\nType=simple\nExecStart={exec_start}\n{extra}\n"
    elif kind == "socket":
        body += f"[Socket]\nListenStream=/run/kvmprep-test-{description.replace(' ', '-')}.sock\n{extra}\n"
    if wanted_by or also:
        body += "[Install]\n"
        if wanted_by:
            body += f"WantedBy={wanted_by}\n"
        if also:
            body += f"Also={also}\n"
    return body


LIBVIRTD_SERVICE = unit_text("libvirt legacy monolithic daemon", "/usr/sbin/libvirtd",
                             also="libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket")
LIBVIRTD_SOCKET = unit_text("libvirt legacy monolithic daemon socket", kind="socket", wanted_by="sockets.target")
NFTABLES_SERVICE = unit_text("nftables", "/usr/sbin/nft -f /etc/sysconfig/nftables.conf",
                             extra="RemainAfterExit=yes")
DOCKER_SERVICE = unit_text("Docker Application Container Engine", "/usr/bin/dockerd")

# The modular daemons of libvirt >= 9 (EL9): a socket trio per driver.
MODULAR_DRIVERS = ("virtqemud", "virtnetworkd", "virtnodedevd", "virtnwfilterd", "virtsecretd", "virtstoraged")


def modular_units(drivers: Iterable[str] = MODULAR_DRIVERS) -> dict[str, str]:
    """Unit files of libvirt's modular daemons (service + sockets), name -> text."""
    units = {}
    for d in drivers:
        units[f"{d}.service"] = unit_text(f"libvirt {d} daemon", f"/usr/sbin/{d}",
                                          also=f"{d}.socket {d}-ro.socket {d}-admin.socket")
        for suffix in ("", "-ro", "-admin"):
            units[f"{d}{suffix}.socket"] = unit_text(f"libvirt {d}{suffix} socket", kind="socket",
                                                     wanted_by="sockets.target")
    return units


def write_unit(root: Path, name: str, text: str | None = None, directory: str = SYSTEMD_DIR_EL) -> Path:
    """Put a unit file into the root (``text`` defaults to a plain service)."""
    if text is None:
        kind = "socket" if name.endswith(".socket") else "service"
        text = unit_text(name.rsplit(".", 1)[0], kind=kind,
                         wanted_by="sockets.target" if kind == "socket" else "multi-user.target")
    p = Path(root) / directory.lstrip("/") / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def write_preset(root: Path, name: str, lines: Iterable[str],
                 directory: str = "/usr/lib/systemd/system-preset") -> Path:
    p = Path(root) / directory.lstrip("/") / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(line + "\n" for line in lines))
    return p


# -------------------------------------------------------------------- tools


def missing_tools(*tools: str) -> list[str]:
    path = os.environ.get("PATH", os.defpath) + ":/usr/sbin:/sbin"
    return [t for t in tools if shutil.which(t, path=path) is None]


def require(*tools: str) -> None:
    """Skip the calling test when one of the real tools is not installed."""
    missing = missing_tools(*tools)
    if missing:
        pytest.skip(f"needs {', '.join(missing)} installed on this machine "
                    "(CI: apt-get install kmod rpm dnf createrepo-c augeas-tools tmux dpkg-dev)")


def run(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run a real tool; raise with its output when it fails."""
    full_env = {**os.environ, "LC_ALL": "C", "LANG": "C", **(env or {})}
    full_env["PATH"] = full_env.get("PATH", os.defpath) + ":/usr/sbin:/sbin"
    proc = subprocess.run(argv, capture_output=True, text=True, env=full_env, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


# -------------------------------------------------------------------- stubs


@dataclass(frozen=True)
class Stub:
    """One stub package. ``version`` may carry a Debian epoch ("5:20.10.12~3-0~ubuntu-focal");
    for rpm, ``epoch``/``release`` are separate. ``files``: absolute path -> content;
    ``links``: absolute path -> symlink target (an enablement link, as a postinst's
    ``deb-systemd-helper enable`` or rpm's preset leaves it)."""

    name: str
    version: str = "1.0"
    release: str = "1"
    epoch: int | None = None
    files: dict[str, str] = field(default_factory=dict, hash=False, compare=False)
    provides: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # resolved by dnf/apt-get like real dependencies
    recommends: tuple[str, ...] = ()  # weak dependencies: installed by default by apt-get and dnf
    links: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def deb_version(self) -> str:
        return self.version if self.epoch is None or ":" in self.version else f"{self.epoch}:{self.version}"

    @property
    def deb_filename(self) -> str:
        return f"{self.name}_{self.deb_version.split(':', 1)[-1]}_all.deb"

    @property
    def rpm_filename(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.noarch.rpm"


def _stage(stub: Stub, where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    for path, content in stub.files.items():
        p = where / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    for path, target in stub.links.items():
        p = where / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target)
    return where


def build_rpm_repo(workdir: Path, stubs: Iterable[Stub | str]) -> Path:
    """Build noarch stub rpms with rpmbuild into ``workdir/repo`` and index it with createrepo_c."""
    require("rpmbuild", "createrepo_c")
    workdir = Path(workdir)
    repo = workdir / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    for stub in stubs:
        stub = Stub(stub) if isinstance(stub, str) else stub
        key = f"{stub.name}-{stub.version}-{stub.release}"
        stage = _stage(stub, workdir / "stage" / key)
        lines = [
            f"Name: {stub.name}", f"Version: {stub.version}", f"Release: {stub.release}",
            *([f"Epoch: {stub.epoch}"] if stub.epoch is not None else []),
            "Summary: kvmprep test stub", "License: MIT", "BuildArch: noarch",
            *[f"Provides: {p}" for p in stub.provides],
            *[f"Requires: {r}" for r in stub.requires],
            *[f"Recommends: {r}" for r in stub.recommends],
            "%description", "kvmprep test stub package.",
            "%install", "mkdir -p %{buildroot}", f"cp -a {stage}/. %{{buildroot}}/",
            "%files", *sorted([*stub.files, *stub.links]),
        ]
        spec = workdir / "specs" / f"{key}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text("\n".join(lines) + "\n")
        run(["rpmbuild", "-bb", "--quiet",
             "--define", f"_topdir {workdir / 'build'}",
             "--define", f"_rpmdir {repo}",
             "--define", "_build_id_links none",
             "--define", "__os_install_post %{nil}",
             "--define", "debug_package %{nil}",
             str(spec)])
    run(["createrepo_c", "-q", str(repo)])
    return repo


def build_deb_repo(workdir: Path, stubs: Iterable[Stub | str]) -> Path:
    """Build stub .debs with dpkg-deb into ``workdir/repo`` and index them (Packages)."""
    require("dpkg-deb", "dpkg-scanpackages")
    workdir = Path(workdir)
    repo = workdir / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    for stub in stubs:
        stub = Stub(stub) if isinstance(stub, str) else stub
        src = _stage(stub, workdir / "src" / stub.deb_filename[:-4])
        control = [f"Package: {stub.name}", f"Version: {stub.deb_version}", "Architecture: all",
                   "Maintainer: kvmprep tests <tests@example.invalid>",
                   *([f"Provides: {', '.join(stub.provides)}"] if stub.provides else []),
                   *([f"Depends: {', '.join(stub.requires)}"] if stub.requires else []),
                   *([f"Recommends: {', '.join(stub.recommends)}"] if stub.recommends else []),
                   "Description: kvmprep test stub"]
        (src / "DEBIAN").mkdir(exist_ok=True)
        (src / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        run(["dpkg-deb", "--root-owner-group", "-b", str(src), str(repo / stub.deb_filename)])
    with open(repo / "Packages", "w") as fh:
        subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=repo, stdout=fh,
                       stderr=subprocess.DEVNULL, check=True)
    return repo


def package_file(repo: Path, name: str, version: str | None = None) -> Path:
    """The .rpm/.deb of ``name`` (newest by file name, or the one of ``version``) in a repo."""
    repo = Path(repo)
    candidates = sorted(repo.rglob(f"{name}-[0-9]*.noarch.rpm")) + sorted(repo.glob(f"{name}_*_all.deb"))
    candidates = [c for c in candidates
                  if (c.name.rsplit("-", 2)[0] if c.suffix == ".rpm" else c.name.split("_")[0]) == name]
    if version is not None:
        candidates = [c for c in candidates if f"-{version}-" in c.name or f"_{version}_" in c.name]
    if not candidates:
        raise FileNotFoundError(f"no stub package {name} {version or ''} in {repo}")
    return candidates[-1]


# The stub sets built once per session: everything the package, service and
# container checks (and the fix/apply tests) install.
EL_STUBS = [
    Stub("qemu-kvm", "6.2.0", "40.module_el8.9.0+3681+41cbbcc0"),
    Stub("qemu-kvm-core", "6.2.0"),
    Stub("libvirt", "8.0.0", "22.module_el8", requires=("libvirt-daemon",)),
    Stub("libvirt-daemon", "8.0.0", files={
        f"{SYSTEMD_DIR_EL}/libvirtd.service": LIBVIRTD_SERVICE,
        f"{SYSTEMD_DIR_EL}/libvirtd.socket": LIBVIRTD_SOCKET,
    }),
    Stub("libvirt-daemon-kvm", "8.0.0"),
    Stub("libvirt-client", "8.0.0"),
    Stub("virt-install", "3.2.0"),
    Stub("bridge-utils", "1.5"),
    Stub("dmidecode", "3.3", epoch=1, files={"/usr/sbin/dmidecode": "#!/bin/sh\n"}),
    Stub("python3", "3.6.8", provides=("python36",), files={"/usr/bin/python3": "#!/bin/sh\n"}),
    Stub("chrony", "4.2", files={"/usr/sbin/chronyd": "#!/bin/sh\n"}),
    Stub("tpm2-tools", "5.2", files={"/usr/bin/tpm2_getcap": "#!/bin/sh\n"}),
    Stub("nftables", "1.0.4", epoch=1, files={f"{SYSTEMD_DIR_EL}/nftables.service": NFTABLES_SERVICE}),
    Stub("docker-ce", "20.10.9", "3.el8", epoch=3),
    Stub("docker-ce", "24.0.7", "1.el8", epoch=3, files={f"{SYSTEMD_DIR_EL}/docker.service": DOCKER_SERVICE}),
]

DEB_STUBS = [
    Stub("qemu-system-x86", "1:7.2+dfsg-7+deb12u6"),
    Stub("qemu-system-arm", "1:7.2+dfsg-7+deb12u6"),
    Stub("qemu-kvm", "1:2.11+dfsg-1ubuntu7"),
    Stub("libvirt-daemon-system", "9.0.0-4+deb12u2", files={
        f"{SYSTEMD_DIR_DEB}/libvirtd.service": LIBVIRTD_SERVICE,
        f"{SYSTEMD_DIR_DEB}/libvirtd.socket": LIBVIRTD_SOCKET,
    }),
    Stub("libvirt-clients", "9.0.0-4+deb12u2"),
    Stub("libvirt-bin", "4.0.0-1ubuntu8"),
    Stub("virtinst", "1:4.1.0-2"),
    Stub("qemu-utils", "1:7.2+dfsg-7+deb12u6"),
    Stub("dnsmasq-base", "2.90-4~deb12u1"),
    Stub("ovmf", "2022.11-6+deb12u2"),
    Stub("qemu-efi-aarch64", "2022.11-6+deb12u2"),
    Stub("bridge-utils", "1.7.1-1"),
    Stub("dmidecode", "3.4-1", files={"/usr/sbin/dmidecode": "#!/bin/sh\n"}),
    Stub("python3", "3.11.2-1+b1", files={"/usr/bin/python3": "#!/bin/sh\n"}),
    Stub("chrony", "4.3-2+deb12u1", files={"/usr/sbin/chronyd": "#!/bin/sh\n"}),
    Stub("tpm2-tools", "5.4-1", files={"/usr/bin/tpm2_getcap": "#!/bin/sh\n"}),
    Stub("nftables", "1.0.6-2+deb12u2", files={f"{SYSTEMD_DIR_DEB}/nftables.service": NFTABLES_SERVICE}),
    Stub("docker-ce", "5:20.10.9~3-0~debian-bookworm"),
    Stub("docker.io", "20.10.24+dfsg1-1+b3", files={f"{SYSTEMD_DIR_DEB}/docker.service": DOCKER_SERVICE}),
]


@pytest.fixture(scope="session")
def rpm_repo(tmp_path_factory) -> Path:
    """A createrepo_c repository of EL_STUBS (built once per session)."""
    require("rpm", "rpmbuild", "createrepo_c")
    return build_rpm_repo(tmp_path_factory.mktemp("rpmstubs"), EL_STUBS)


@pytest.fixture(scope="session")
def deb_repo(tmp_path_factory) -> Path:
    """A flat apt repository of DEB_STUBS (built once per session)."""
    require("dpkg", "dpkg-deb", "dpkg-scanpackages")
    return build_deb_repo(tmp_path_factory.mktemp("debstubs"), DEB_STUBS)


# -------------------------------------------------------------------- roots

ALMA8_OS_RELEASE = """NAME="AlmaLinux"
VERSION="{version} (Midnight Oncilla)"
ID="almalinux"
ID_LIKE="rhel centos fedora"
VERSION_ID="{version}"
PLATFORM_ID="platform:el{major}"
PRETTY_NAME="AlmaLinux {version} (Midnight Oncilla)"
ANSI_COLOR="0;34"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:almalinux:almalinux:{version}::baseos"
HOME_URL="https://almalinux.org/"
"""

DEBIAN12_OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux {version} ({codename})"
NAME="Debian GNU/Linux"
VERSION_ID="{version}"
VERSION="{version} ({codename})"
VERSION_CODENAME={codename}
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""


def el_root(root: Path, repo: Path | None = None, version: str = "8.9") -> Path:
    """An AlmaLinux-like root: release files, unit dirs and (with ``repo``) a local dnf repo."""
    root = Path(root)
    major = version.split(".")[0]
    for d in ("etc/yum.repos.d", "etc/systemd/system", SYSTEMD_DIR_EL.lstrip("/"), "var/lib", "root"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(ALMA8_OS_RELEASE.format(version=version, major=major))
    release = f"AlmaLinux release {version} (Midnight Oncilla)\n"
    for f in ("etc/almalinux-release", "etc/redhat-release", "etc/system-release"):
        (root / f).write_text(release)
    if repo is not None:
        (root / "etc/yum.repos.d/kvmprep-stubs.repo").write_text(
            f"[kvmprep-stubs]\nname=kvmprep test stubs\nbaseurl=file://{Path(repo).resolve()}\n"
            "enabled=1\ngpgcheck=0\nmodule_hotfixes=1\n")
    return root


def debian_root(root: Path, repo: Path | None = None, version: str = "12", codename: str = "bookworm") -> Path:
    """A Debian-12-like root: release files, an empty dpkg database, apt dirs and (with ``repo``) sources."""
    root = Path(root)
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers",
              "etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d",
              "var/cache/apt/archives/partial", "var/lib/apt/lists/partial", "var/log/apt",
              "etc/systemd/system", SYSTEMD_DIR_DEB.lstrip("/")):
        (root / d).mkdir(parents=True, exist_ok=True)
    status = root / "var/lib/dpkg/status"
    if not status.exists():
        status.write_text("")
    (root / "var/lib/dpkg/arch").write_text("amd64\n")
    (root / "etc/os-release").write_text(DEBIAN12_OS_RELEASE.format(version=version, codename=codename))
    (root / "etc/debian_version").write_text(f"{version}.5\n")
    if repo is not None:
        (root / "etc/apt/sources.list").write_text(f"deb [trusted=yes] file:{Path(repo).resolve()} ./\n")
    return root


# ----------------------------------------------------------------- installs


def rpm_install(root: Path, repo: Path, names: Iterable[str], dbpath: str = RPM_DBPATH,
                versions: dict[str, str] | None = None) -> None:
    """``rpm --root R --dbpath DB -i --nodeps`` the stubs (files picked from the repo)."""
    require("rpm")
    files = [str(package_file(repo, n, (versions or {}).get(n))) for n in names]
    run(["rpm", "--root", str(root), "--dbpath", dbpath, "-i", "--nodeps", "--nosignature", *files])


def rpm_erase(root: Path, names: Iterable[str], dbpath: str = RPM_DBPATH) -> None:
    require("rpm")
    run(["rpm", "--root", str(root), "--dbpath", dbpath, "-e", "--nodeps", *names])


def rpm_macros_home(dbpath: str = RPM_DBPATH) -> Path:
    """A private HOME whose ``.rpmmacros`` points librpm (and so dnf) at ``dbpath``."""
    home = Path(tempfile.mkdtemp(prefix="kvmprep-rpmhome-"))
    (home / ".rpmmacros").write_text(f"%_dbpath {dbpath}\n")
    return home


def dnf_options(root: Path, releasever: str = "8") -> list[str]:
    """dnf options that keep a transaction inside the root and its local repo (no network)."""
    root = Path(root)
    return ["-y", "-q", f"--installroot={root}", f"--releasever={releasever}",
            f"--setopt=reposdir={root / 'etc/yum.repos.d'}", "--setopt=install_weak_deps=False",
            "--setopt=keepcache=False", "--noplugins", "--nogpgcheck"]


def dnf_env(dbpath: str = RPM_DBPATH) -> dict[str, str]:
    return {"HOME": str(rpm_macros_home(dbpath))}


def dnf_install(root: Path, names: Iterable[str], releasever: str = "8", dbpath: str = RPM_DBPATH) -> None:
    """A real ``dnf --installroot`` transaction from the root's own repo config."""
    require("dnf", "rpm")
    env = dnf_env(dbpath)
    try:
        run(["dnf", *dnf_options(root, releasever), "install", *names], env=env)
    finally:
        shutil.rmtree(env["HOME"], ignore_errors=True)


def rpm_installed(root: Path, dbpath: str = RPM_DBPATH) -> dict[str, str]:
    """name -> VERSION-RELEASE of everything in the root's rpm database."""
    require("rpm")
    out = run(["rpm", "--root", str(root), "--dbpath", dbpath, "-qa",
               "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n"]).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _dpkg_force() -> list[str]:
    return [] if os.geteuid() == 0 else ["--force-not-root", "--force-bad-path"]


def dpkg_install(root: Path, repo: Path, names: Iterable[str], versions: dict[str, str] | None = None) -> None:
    """``dpkg --root=R --admindir=R/var/lib/dpkg -i`` the stubs (files picked from the repo)."""
    require("dpkg")
    root = Path(root)
    files = [str(package_file(repo, n, (versions or {}).get(n))) for n in names]
    run(["dpkg", f"--root={root}", f"--admindir={root / 'var/lib/dpkg'}", "--force-script-chrootless",
         "--force-depends", *_dpkg_force(), "-i", *files])


def dpkg_remove(root: Path, names: Iterable[str], purge: bool = False) -> None:
    require("dpkg")
    root = Path(root)
    run(["dpkg", f"--root={root}", f"--admindir={root / 'var/lib/dpkg'}", "--force-script-chrootless",
         "--force-depends", *_dpkg_force(), "--purge" if purge else "--remove", *names])


def apt_options(root: Path) -> list[str]:
    """apt-get options that point apt and dpkg at the root (reference/testing.md)."""
    root = Path(root)
    opts = [f"Dir={root}", f"Dir::State::status={root / 'var/lib/dpkg/status'}",
            f"DPkg::Options::=--root={root}", f"DPkg::Options::=--admindir={root / 'var/lib/dpkg'}",
            "DPkg::Options::=--force-script-chrootless",
            "Debug::NoLocking=1", "APT::Sandbox::User=root"]
    out = []
    for o in opts:
        out += ["-o", o]
    return out


def apt_install(root: Path, names: Iterable[str]) -> None:
    """A real ``apt-get update && apt-get install -y`` into the root from its sources.list."""
    require("apt-get", "dpkg")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", *apt_options(root), "-q", "update"], env=env)
    run(["apt-get", *apt_options(root), "-q", "install", "-y", *names], env=env)


def dpkg_installed(root: Path) -> dict[str, str]:
    """name -> version of every package dpkg calls installed in the root."""
    require("dpkg-query")
    out = run(["dpkg-query", f"--admindir={Path(root) / 'var/lib/dpkg'}", "-W",
               "-f", "${Package}\t${Version}\t${db:Status-Status}\n"]).stdout
    return {p[0]: p[1] for p in (l.split("\t") for l in out.splitlines()) if len(p) == 3 and p[2] == "installed"}


# ---------------------------------------------------------------- systemctl


def systemctl(root: Path, *args: str) -> str:
    """``systemctl --root=R ARGS`` (enable/disable/mask work offline); returns stdout."""
    require("systemctl")
    full_env = {**os.environ, "LC_ALL": "C", "SYSTEMD_LOG_LEVEL": "err"}
    proc = subprocess.run(["systemctl", f"--root={root}", *args], capture_output=True, text=True,
                          env=full_env, stdin=subprocess.DEVNULL, timeout=60)
    if proc.returncode != 0 and args[:1] != ("is-enabled",):
        raise AssertionError(f"systemctl --root={root} {' '.join(args)}: {proc.stderr}")
    return proc.stdout


# ------------------------------------------------------------ repo variants


def repo_without(repo: Path, dest: Path, names: Iterable[str]) -> Path:
    """A copy of a stub repository (rpm or deb) without the packages ``names``,
    re-indexed with the real tools: a repository where an install must fail."""
    repo, dest = Path(repo), Path(dest)
    names = set(names)
    dest.mkdir(parents=True, exist_ok=True)
    rpms = sorted(repo.rglob("*.rpm"))
    if rpms:
        require("createrepo_c")
        for f in rpms:
            if f.name.rsplit("-", 2)[0] not in names:
                shutil.copy2(f, dest / f.name)
        run(["createrepo_c", "-q", str(dest)])
        return dest
    require("dpkg-scanpackages")
    for f in sorted(repo.glob("*.deb")):
        if f.name.split("_")[0] not in names:
            shutil.copy2(f, dest / f.name)
    with open(dest / "Packages", "w") as fh:
        subprocess.run(["dpkg-scanpackages", "-m", ".", "/dev/null"], cwd=dest, stdout=fh,
                       stderr=subprocess.DEVNULL, check=True)
    return dest
