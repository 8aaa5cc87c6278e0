"""What a package transaction changed, and the commands that take it back.

An install is more than the names asked for: apt-get and dnf pull in
dependencies (419 packages for 5 named on a Debian 12 server), and the
packages' own scripts enable units (Debian's postinst enables and starts
libvirtd; rpm's %systemd_post applies the presets). So InstallPackages lists
the whole installed set before and after (``added`` is the difference) and
asks the enablement of the units kvmprep cares about (``WATCHED_UNITS``)
before and after.

Undo removes the added set as ONE transaction of the resolver: removing only
the named packages with dpkg/rpm fails as soon as a pulled-in package depends
on one of them (qemu-system-gui on qemu-system-x86), and removing them one by
one would fail the same way. The resolver also removes what the admin
installed since that depends on them; undo reports it. Nothing else is
removed: no autoremove, no clean_requirements_on_remove, so a package that
was installed before the apply stays.

    apt     DEBIAN_FRONTEND=noninteractive apt-get [ROOT OPTIONS] remove -y -- NAMES
    dnf     dnf -y [--installroot=DIR --releasever=N] --setopt=clean_requirements_on_remove=False remove NAMES
            (yum alike; no "--": dnf5 refuses it, and no name starts with "-")
    zypper  zypper --non-interactive [--root DIR] remove NAMES

On a root other than "/", apt-get gets the options the planner gives its
install (``apt_root_options``), and dnf/zypper a private HOME whose
``.rpmmacros`` names the root's rpm database when this machine's rpm would
look elsewhere (see remediations/catalog/packages.py).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator, Optional

from checks import pkgdb, units
from checks.errors import ToolMissing
from checks.host import Host

from .actions import Cmd

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
APT_SOURCES = ("/etc/apt/sources.list",)
_LOCAL_URI = r"(^|[\s\[\]])(file|copy):"
SHOWN = 20  # names shown in a message; the journal and the log have all of them


def _libvirt_units() -> list[str]:
    from checks.catalog.services import MOD_DRIVERS, MOD_SOCKETS, MONO_UNITS

    mono = [*MONO_UNITS, *(f"libvirtd-{s}.socket" for s in ("ro", "admin", "tcp", "tls"))]
    modular = [f"{d}.service" for d in (*MOD_DRIVERS, "virtproxyd")] + list(MOD_SOCKETS) \
        + [f"virtproxyd{s}.socket" for s in ("", "-ro", "-admin", "-tcp", "-tls")]
    helpers = [f"{d}{s}" for d in ("virtlogd", "virtlockd") for s in (".service", ".socket", "-admin.socket")]
    return mono + modular + helpers + ["libvirt-guests.service"]


def watched_units() -> list[str]:
    """Units whose enablement an install is checked for: libvirt's (both models,
    their log/lock helpers, libvirt-guests) and the other services kvmprep's
    service fixes manage (nftables, the time daemons)."""
    others = ["nftables.service", "chrony.service", "chronyd.service", "systemd-timesyncd.service",
              "ntp.service", "ntpd.service", "ntpsec.service"]
    return list(dict.fromkeys(_libvirt_units() + others))


def newly_enabled(before: dict, after: dict) -> list[str]:
    """Units enabled after the install that were not before: the packages did it."""
    return sorted(u for u, state in after.items() if state == "enabled"
                  and before.get(u) not in ("enabled", "enabled-runtime"))


def shown(names: list[str], limit: int = SHOWN) -> str:
    """Names for a one-line message: the first ``limit``, then how many more."""
    if len(names) <= limit:
        return " ".join(names)
    return " ".join(names[:limit]) + f" ... and {len(names) - limit} more"


# ---- apt pointed at a root -------------------------------------------------------


def apt_sources_are_local(host: Host) -> bool:
    files = list(APT_SOURCES)
    files += host.glob("/etc/apt/sources.list.d", "*.list")
    files += host.glob("/etc/apt/sources.list.d", "*.sources")
    for f in files:
        text = host.read_text(f) or ""
        lines = [line.split("#", 1)[0] for line in text.splitlines()]
        if re.search(_LOCAL_URI, "\n".join(lines), re.M):
            return True
    return False


def apt_root_options(host: Host, root: str | None) -> list[str]:
    """``-o`` options that point apt-get and dpkg at ``root`` (None: "/")."""
    opts: list[str] = []
    if root:
        # dpkg reads its log file from this machine's dpkg.cfg: point it into the root too
        for o in (f"Dir={root}", f"Dir::State::status={root}/var/lib/dpkg/status",
                  f"DPkg::Options::=--root={root}", f"DPkg::Options::=--admindir={root}/var/lib/dpkg",
                  f"DPkg::Options::=--log={root}/var/log/dpkg.log"):
            opts += ["-o", o]
    if apt_sources_are_local(host):
        opts += ["-o", "APT::Sandbox::User=root"]
    return opts


# ---- rpm's database, seen from this machine ------------------------------------------


def host_rpm_dbpath(host: Host) -> str | None:
    """The database path the rpm of the machine kvmprep runs on uses by default."""
    try:
        res = host.run(["rpm", "--eval", "%_dbpath"])
    except ToolMissing:
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def macros_dbpath(host: Host) -> str | None:
    """The dbpath a private ``.rpmmacros`` must set for dnf/zypper on an offline
    root, or None when this machine's rpm looks at the root's database anyway."""
    if str(host.root) == "/":
        return None
    root_db = pkgdb.rpm_dbpath(host)
    if root_db is None or root_db == host_rpm_dbpath(host):
        return None
    return root_db


@contextmanager
def rpm_home(dbpath: str | None) -> Iterator[Optional[str]]:
    """A private HOME whose .rpmmacros sets ``%_dbpath`` (None: no HOME needed),
    outside the root and removed afterwards: undo leaves nothing behind."""
    if dbpath is None:
        yield None
        return
    home = tempfile.mkdtemp(prefix="kvmprep-rpmhome-")
    try:
        with open(os.path.join(home, ".rpmmacros"), "w", encoding="utf-8") as fh:
            fh.write(f"%_dbpath {dbpath}\n")
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _releasever(host: Host) -> str | None:
    from checks.osrelease import detect_os

    m = re.match(r"\d+", detect_os(host.read_text, host.exists).version or "")
    return m.group(0) if m else None


# ---- the commands --------------------------------------------------------------------


def removal_command(host: Host, manager: str, names: list[str], home: str | None = None) -> Cmd:
    """The one resolver transaction that removes ``names`` (already validated) from the root."""
    root = str(host.root)
    offline = root != "/"
    if manager == "apt":
        return Cmd(["apt-get", *apt_root_options(host, root if offline else None), "remove", "-y", "--", *names],
                   dict(APT_ENV))
    env = {"HOME": home} if home else {}
    if manager == "zypper":
        return Cmd(["zypper", "--non-interactive", *(["--root", root] if offline else []), "remove", *names], env)
    if manager in ("dnf", "yum"):
        opts = []
        if offline:
            release = _releasever(host)
            opts = [f"--installroot={root}", *([f"--releasever={release}"] if release else [])]
        return Cmd([manager, "-y", *opts, "--setopt=clean_requirements_on_remove=False", "remove", *names], env)
    raise ValueError(f"do not know how to remove packages with {manager}")


def disable_command(host: Host, names: list[str]) -> Cmd:
    """``systemctl disable`` of ``names`` (validated unit names): ``--root`` offline,
    ``--now`` where systemd runs (a daemon the package started stops too)."""
    if str(host.root) != "/":
        return Cmd(["systemctl", f"--root={host.root}", "disable", "--", *names])
    now = ["--now"] if units.systemd_running(host) else []
    return Cmd(["systemctl", "disable", *now, "--", *names])


# ---- undo: what InstallPackages.undo does with the recorded sets ---------------------


def packages(n: int) -> str:
    return f"{n} package" + ("" if n == 1 else "s")


def _named_first(keep: list[str], named: list[str]) -> str:
    asked = [n for n in keep if n in named]
    pulled = [n for n in keep if n not in named]
    return (f"{packages(len(keep))} (asked for: {' '.join(asked) or 'none left'}; "
            f"pulled in: {shown(pulled) if pulled else 'none'})")


def leave(ax, manager: str, keep: list[str], named: list[str]) -> str:
    """Without --remove-packages: the packages stay; the message names them (the
    first few) and the command that removes them all; the journal and the log
    get the whole command."""
    cmd = removal_command(ax.host, manager, keep)
    whole = cmd.display()
    ax.details.update(left_in_place=keep, removal_command=cmd.argv)
    ax.journal.log("to remove the packages this apply installed: " + whole)
    if len(keep) > SHOWN:
        how = (f"{Cmd(cmd.argv[:-len(keep)] + keep[:SHOWN], cmd.env).display()} ... "
               f"(all {len(keep)} names: the whole command is in {ax.journal.log_path})")
    else:
        how = whole
    dbpath = macros_dbpath(ax.host) if manager != "apt" else None
    if dbpath:
        how += f", with HOME at a directory whose .rpmmacros says %_dbpath {dbpath}"
    return (f"installed by this apply and left in place: {_named_first(keep, named)}; "
            f"to remove them in one transaction: {how}")


def remove(ax, manager: str, keep: list[str], named: list[str]) -> str:
    """--remove-packages: one transaction of the resolver, then a fresh listing
    says what it did: what is still installed of ``keep`` fails the undo, and what
    else went (installed since, depending on them) is reported."""
    from .actions import ActionFailed

    before = ax.installed_names()
    failure = None
    with rpm_home(macros_dbpath(ax.host) if manager != "apt" else None) as home:
        cmd = removal_command(ax.host, manager, keep, home)
        try:
            ax.run(cmd)
        except ActionFailed as exc:
            failure = exc
    after = ax.installed_names()
    still = [n for n in keep if n in after]
    also = sorted((before - after) - set(keep))
    ax.details.update(removed=[n for n in keep if n not in after], still_installed=still, also_removed=also,
                      removal_command=cmd.argv)
    extra = (f"; the package manager also removed {packages(len(also))} installed since that depend on "
             f"them: {shown(also)}") if also else ""
    output, code = (failure.output, failure.returncode) if failure else ("", None)
    why = _failed(cmd, failure) if failure else "the package manager left them"
    if still:
        raise ActionFailed(f"still installed: {len(still)} of the {packages(len(keep))} this apply "
                           f"installed: {shown(still)} ({why}){extra}", output, code)
    if failure:
        raise ActionFailed(f"{why}, though none of the packages this apply installed is left{extra}",
                           output, code)
    return f"removed in one transaction: {_named_first(keep, named)}{extra}"


def _failed(cmd: Cmd, failure) -> str:
    """"apt-get remove exited with status 100: E: ...": the tool, its verb and its
    last error line, not the whole command (hundreds of names; the log has it)."""
    errors = [line.strip() for line in (failure.output or "").splitlines()
              if line.lstrip().startswith(("E:", "Error", "error:", "Problem"))]
    status = f"exited with status {failure.returncode}" if failure.returncode is not None else failure.message
    return f"{cmd.argv[0]} remove {status}" + (f": {errors[-1]}" if errors else "")


def disable(ax, enabled: list[str]) -> str:
    """Disable the units the packages enabled on their own that are still enabled
    (the admin may have disabled one since: left as it is)."""
    states = ax.unit_states(enabled)
    on = [u for u in enabled if states.get(u) == "enabled"]
    off = [u for u in enabled if u not in on]
    said = []
    if on:
        ax.run(disable_command(ax.host, on))
        said.append(f"disabled {', '.join(on)} (enabled by the packages themselves)")
    if off:
        said.append(f"{', '.join(off)} no longer enabled: left as they are")
    return "; ".join(said)
