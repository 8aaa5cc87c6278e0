"""Packages: install the virtualization stack and the admin tools a profile asks for.

What is missing is decided exactly as the checks decide it (the functions of
``checks.catalog.packages``, asked of the root's own package database), and
only that is installed, under the distribution's names:

    apt     DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- NAMES
            (apt-get update first only when /var/lib/apt/lists holds no index)
    dnf     dnf -y install NAMES            (yum on EL 7 and Amazon Linux 2)
    zypper  zypper --non-interactive install NAMES

apt-get installs the names and their dependencies, not their Recommends: for
the virtualization stack Debian's Recommends are a desktop (qemu-system-gui's
GTK/SDL/Mesa, virt-viewer, speech synthesis, fonts, icon themes), the Xen,
VirtualBox and LXC drivers and lvm2, whose trigger rebuilds the initramfs: on a
Debian 12 server 418 packages instead of 134, and more than twice the apply's
time (9.5 against 4.2 minutes in the lab's emulated VM). What of them a host does use (qemu-utils, dnsmasq-base, ovmf) the packages
check asks for by name, so it is installed when missing. The admin adds
anything else with apt as usual; undo removes only what the apply added.

Every name is a valid package name of the distribution (``checks.names``)
before it gets here: the profile's entries that are not are left out with a
note naming them. apt-get also gets ``--`` before the names; dnf does not
(dnf5 refuses ``--``), nor do yum and zypper (not verified here).

On any root other than "/" the package manager is pointed at it:
``dnf --installroot=DIR --releasever=MAJOR``, ``zypper --root DIR``, and
apt-get with ``-o Dir=DIR -o Dir::State::status=... -o DPkg::Options::=--root=DIR
-o DPkg::Options::=--admindir=...``. apt keeps its real locks (no
Debug::NoLocking: the locks live inside the root and guard it against a
second apt-get). ``APT::Sandbox::User=root`` is added only when the root's
sources name local ``file:``/``copy:`` repositories, which apt's unprivileged
``_apt`` download user may be unable to read.

rpm keeps its database where its *own* macros say. On a machine whose rpm is
not the root's (a Debian host serving an EL root) that is ``~/.rpmdb``, so dnf
would start a second, empty database inside the root. The plan then writes
``/var/lib/kvmprep/rpm/<remediation id>/.rpmmacros`` (``%_dbpath`` of the root)
inside the root and runs dnf/zypper with ``HOME`` pointing there: dnf has no
option for an rpm macro, librpm reads ``~/.rpmmacros``. (Undo's removal gets a
private HOME of its own, outside the root: remediations/packageops.py.)

An install pulls in dependencies and the packages' scripts may enable units
(Debian's postinst enables and starts libvirtd; rpm's %systemd_post applies
the presets). The plan says so where it can know it (``_enables_note``); the
apply records the whole added set and the units enabled, and undo takes both
back (InstallPackages).
"""

from __future__ import annotations

import re
from dataclasses import asdict

from checks import names, pkgdb
from checks.catalog import packages as pkgchecks
from checks.errors import NeedsRoot, ProbeError, ToolMissing

from .. import packageops
from ..actions import Action, Cmd, InstallPackages
from ..helpers import write_file
from ..registry import PlanCtx, Proposal, nothing, remediation

APT_ENV = packageops.APT_ENV
RPM_HOME = "/var/lib/kvmprep/rpm"  # inside the root: /<remediation id>/ is the HOME of dnf/zypper

# Debian architecture name -> kernel architecture (to pick the right qemu-system-*)
_DEB_ARCH = {"amd64": "x86_64", "i386": "i686", "arm64": "aarch64", "ppc64el": "ppc64le",
             "ppc64": "ppc64", "s390x": "s390x"}


class CannotPlan(Exception):
    """Nothing can be planned here; the message says why."""


def check_params(ctx: PlanCtx, check_id: str) -> dict:
    """The check's params as the check sees them: defaults, then the profile's."""
    from checks.registry import all_checks

    spec = all_checks().get(check_id)
    return {**(spec.params if spec else {}), **(ctx.params.get(check_id) or {})}


def offline_root(ctx: PlanCtx) -> str | None:
    """The root the package manager must be pointed at, or None for "/"."""
    root = str(ctx.host.root)
    return None if root == "/" else root


# ---- apt ---------------------------------------------------------------------


def apt_options(ctx: PlanCtx) -> list[str]:
    """``-o`` options that point apt-get and dpkg at the root (none on "/"); undo's
    ``apt-get remove`` gets the same (remediations/packageops.py)."""
    return packageops.apt_root_options(ctx.host, offline_root(ctx))


def apt_lists_present(ctx: PlanCtx) -> bool:
    return bool(ctx.host.glob("/var/lib/apt/lists", "*_Packages*"))


# ---- rpm database location ------------------------------------------------------


def root_rpm_dbpath(ctx: PlanCtx) -> str:
    """Where the root keeps (or, without one yet, would keep) its rpm database."""
    found = pkgdb.rpm_dbpath(ctx.host)
    if found and found != "/root/.rpmdb":
        return found
    info = ctx.facts.os
    major = info.major or 0
    if info.family == "suse" or (info.id == "fedora" and major >= 36) \
            or (info.family == "rhel" and info.id not in ("fedora", "amzn") and major >= 10):
        return "/usr/lib/sysimage/rpm"
    return "/var/lib/rpm"


def host_rpm_dbpath(ctx: PlanCtx) -> str | None:
    """The database path the rpm of the machine kvmprep runs on uses by default."""
    return packageops.host_rpm_dbpath(ctx.host)


# ---- the install action --------------------------------------------------------


def install_actions(ctx: PlanCtx, rid: str, packages: list[str], why: str) -> tuple[list[Action], list[str]]:
    """The actions (and notes) of remediation ``rid`` that install ``packages`` into the root."""
    info = ctx.facts.os
    pm = info.package_manager
    _, bad = names.partition(names.package_name, packages, info.family)
    if bad:  # the planners pass only valid names: this is the last line of defence
        raise CannotPlan("; ".join(str(b) for b in bad) + ": nothing installed")
    root = offline_root(ctx)
    notes: list[str] = []
    actions: list[Action] = []
    cmds: list[Cmd] = []
    if pm == "apt":
        if not ctx.host.exists("/var/lib/dpkg/status"):
            raise CannotPlan(f"no dpkg database ({ctx.host.display('/var/lib/dpkg/status')}): "
                             "apt-get cannot install into this root")
        opts = apt_options(ctx)
        if not apt_lists_present(ctx):
            cmds.append(Cmd(["apt-get", *opts, "update"], dict(APT_ENV)))
        cmds.append(Cmd(["apt-get", *opts, *pkgchecks.APT_INSTALL, "--", *packages], dict(APT_ENV)))
    elif pm in ("dnf", "yum", "zypper"):
        env: dict[str, str] = {}
        if root:
            dbpath = root_rpm_dbpath(ctx)
            host_db = host_rpm_dbpath(ctx)
            if host_db != dbpath:
                home = f"{RPM_HOME}/{rid}"  # one per remediation: two in one plan never write the same file
                macros = write_file(ctx, f"{home}/.rpmmacros", f"%_dbpath {dbpath}\n",
                                    why=f"this machine's rpm keeps its database in {host_db or '(unknown)'}; "
                                        f"{pm} must use the root's {dbpath}")
                if macros:
                    actions.append(macros)
                env["HOME"] = root + home
        if pm == "zypper":
            argv = ["zypper", "--non-interactive", *(["--root", root] if root else []), "install", *packages]
        else:
            opts = []
            if root:
                m = re.match(r"\d+", info.version or "")
                if not m:
                    raise CannotPlan(f"{pm} --installroot needs the release version, and the root's "
                                     "os-release has no VERSION_ID")
                opts = [f"--installroot={root}", f"--releasever={m.group(0)}"]
            argv = [pm, "-y", *opts, "install", *packages]
        cmds.append(Cmd(argv, env))
    else:
        raise CannotPlan(f"no known package manager for {info.name or info.id or 'this distribution'}")
    tool = cmds[-1].argv[0]
    if root and ctx.host.which(tool) is None:
        notes.append(f"{tool} is not installed on the machine kvmprep runs on: "
                     f"install it here to install into {root}")
    actions.append(InstallPackages(manager=pm, packages=list(packages), cmds=[asdict(c) for c in cmds], why=why))
    enables = _enables_note(ctx, packages)
    if enables:
        notes.append(enables)
    return actions, notes


# Debian packages whose postinst enables (and, where systemd runs, starts) a service kvmprep watches
_DEBIAN_ENABLES = {"libvirt-daemon-system": "libvirtd", "libvirt-bin": "libvirtd", "chrony": "chrony"}


def _enables_note(ctx: PlanCtx, packages: list[str]) -> str | None:
    """What the packages themselves will enable, where the plan can know it: Debian's
    maintainer scripts, or the root's presets (applied by rpm's %systemd_post)."""
    from checks import units

    tail = "; the apply records the units they enable, and undo disables them again"
    if ctx.facts.os.family == "debian":
        known = [f"{p} enables {_DEBIAN_ENABLES[p]}" for p in packages if p in _DEBIAN_ENABLES]
        if known:
            start = " and start" if ctx.host.live else ""
            whose = "Ubuntu's" if ctx.facts.os.id == "ubuntu" else "Debian's"
            return f"{whose} packages enable{start} their services on install: {', '.join(known)}{tail}"
        return None
    watched = packageops.watched_units()
    preset = [line.split(": ", 1)[-1].split()[1] for prefix in ("libvirtd", "virt", "nftables", "chrony")
              for line in units.presets_enabling(ctx.host, prefix)]
    named = ", ".join(u for u in watched if u in preset)
    if named:
        return f"the root's presets enable {named} when their packages install (rpm's %systemd_post){tail}"
    return None


def _root_arch(ctx: PlanCtx) -> str | None:
    arch = ctx.facts.cpu.arch
    if arch:
        return arch
    text = ctx.host.read_text("/var/lib/dpkg/arch") or ""
    first = text.split()[0] if text.split() else ""
    return _DEB_ARCH.get(first)


def _pick(ctx: PlanCtx, alts: tuple[str, ...]) -> str:
    """The package to install for a missing requirement: the first alternative,
    except that with the CPU architecture unknown to the check, the qemu
    package of the root's dpkg architecture is preferred."""
    if ctx.facts.cpu.arch is None and len(alts) > 1:
        arch = _root_arch(ctx)
        table = pkgchecks._QEMU_DEBIAN if ctx.facts.os.family == "debian" else pkgchecks._QEMU_SUSE
        wanted = table.get(arch or "")
        if wanted in alts:
            return wanted
    return alts[0]


def _unreadable(exc: Exception) -> Proposal:
    if isinstance(exc, NeedsRoot):
        return nothing(f"reading the package database needs root: would read {exc}")
    if isinstance(exc, ToolMissing):
        return nothing(f"{exc.tool} is not installed on the machine kvmprep runs on, so the root's "
                       "package database cannot be read")
    return nothing(f"the package database cannot be read: {getattr(exc, 'message', exc)}")


# ---- install-virtualization-packages -----------------------------------------------


@remediation(
    "install-virtualization-packages",
    title="Install the QEMU/KVM, libvirt and virt-install packages",
    fixes=("packages.virtualization", "services.libvirt"),
    description="Installs exactly the packages packages.virtualization finds missing, under the "
                "distribution's names, with apt-get (DEBIAN_FRONTEND=noninteractive), dnf, yum (EL 7, "
                "Amazon Linux 2) or zypper; pointed at the root with --root. The package manager pulls in "
                "their dependencies, and Debian's packages enable (and start) libvirtd on install: the "
                "apply records every package added and every unit the packages enabled. Undo disables those "
                "units and lists the packages with the command that removes them in one transaction "
                "(run with --remove-packages).",
)
def install_virtualization_packages(ctx: PlanCtx) -> Proposal:
    params = check_params(ctx, "packages.virtualization")
    # the profile's own names that are not package names: left out, said in a note
    _, bad = pkgchecks.override_packages(params, ctx.facts.os)
    refused = [f"{b}: not installed" for b in bad]
    notes: list[str] = list(refused)
    try:
        groups, _ = pkgchecks.missing_virtualization_packages(ctx.host, ctx.facts, params)
    except LookupError:
        if ctx.facts.os.family == "debian":
            return nothing(f"no dpkg database ({ctx.host.display('/var/lib/dpkg/status')}) in the root: "
                           "apt-get cannot install into it")
        groups = pkgchecks.virtualization_requirements(ctx.facts, params)
        if groups is not None:
            notes.append("no rpm database in the root yet: every package counts as missing")
    except (NeedsRoot, ProbeError) as exc:
        return _unreadable(exc)
    info = ctx.facts.os
    if groups is None:
        return nothing(f"unknown distribution ({info.name or info.id or 'no os-release'}): the names of the "
                       "QEMU/KVM and libvirt packages are unknown")
    if not groups:
        if refused:
            return nothing("; ".join(refused))
        return nothing("QEMU/KVM, libvirt and virt-install are installed")
    packages = list(dict.fromkeys(_pick(ctx, alts) for alts in groups))
    needs = ["QEMU", "the libvirt daemon", "virsh", "virt-install",
             *dict.fromkeys(pkgchecks.DEBIAN_ROLES[p] for p in packages if p in pkgchecks.DEBIAN_ROLES)]
    try:
        actions, more = install_actions(
            ctx, "install-virtualization-packages", packages,
            why=f"a KVM host needs {', '.join(needs[:-1])} and {needs[-1]}; these are missing")
    except CannotPlan as exc:
        return nothing(str(exc))
    return Proposal(actions=actions, notes=notes + more)


# ---- install-tools ---------------------------------------------------------------------


@remediation(
    "install-tools",
    title="Install the administration tools the profile asks for",
    fixes=("packages.tools",),
    description="Installs the packages of the tools packages.tools finds missing (dmidecode, python3, "
                "chrony, tpm2-tools... as the profile asks), named per distribution as the check names "
                "them (with the dependencies the package manager pulls in). Undo lists every package "
                "added (removes them, in one transaction, only with --remove-packages).",
)
def install_tools(ctx: PlanCtx) -> Proposal:
    info = ctx.facts.os
    tools, bad = pkgchecks.profile_tools(check_params(ctx, "packages.tools"), info.family)
    # the profile's entries that are not package names: left out, said in a note
    refused = [f"profile tools: {b}: not installed" for b in bad]
    if not tools:
        return nothing("; ".join(refused) if refused else "the profile asks for no tools")
    if info.package_manager is None:
        return nothing(f"unknown distribution ({info.name or info.id or 'no os-release'}): the package "
                       "names of the tools are unknown")
    try:
        missing, problem = pkgchecks.missing_tools(ctx.host, ctx.facts, tools)
    except NeedsRoot as exc:
        return _unreadable(exc)
    if not missing:
        return nothing("; ".join([f"all present: {', '.join(tools)}"] + refused))
    notes = refused + ([f"package database not read ({problem}): every tool without its binary counts as "
                        "missing"] if problem else [])
    packages = list(dict.fromkeys(pkgchecks.tool_package(t, info.family) for t in missing))
    try:
        actions, more = install_actions(ctx, "install-tools", packages,
                                        why=f"the profile asks for {', '.join(missing)}")
    except CannotPlan as exc:
        return nothing(str(exc))
    return Proposal(actions=actions, notes=notes + more)
