"""What undo may do: only the inverse operations kvmprep defines.

The journal under ``<root>/var/lib/kvmprep`` is read back as someone else's
data (an image may come with one, or it may be edited). Before an action is
undone, its journal entry is checked here: paths inside the root and outside
kvmprep's own state, names in their grammar, the root the action names equal
to this one, no environment but the one kvmprep sets, and commands only of
the forms kvmprep's remediations write. Anything else is a BadEntry for that
action alone; the rest still undo.
"""

from __future__ import annotations

import os
import re

from checks import names
from checks.host import Host

from .actions import (Action, AddKernelArgs, AddUserToGroups, EnableUnits, InstallPackages, LoadModule,
                      RunCommand, WriteFile)


class BadEntry(Exception):
    """A journal entry undo will not act on, and why."""


_UFW_PORT = re.compile(r"\d{1,5}(:\d{1,5})?/(tcp|udp)")
_RELEASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,127}")
_MANAGERS = ("apt", "dnf", "yum", "zypper")
_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
_REGENERATE = (["update-grub"], ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"],
               ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"],
               # udev applies the restored rules to /dev/kvm (fix-kvm-permissions)
               ["udevadm", "control", "--reload"],
               ["udevadm", "trigger", "--action=change", "--subsystem-match=misc", "--sysname-match=kvm"],
               ["udevadm", "settle", "--timeout=30"])


def _names(kind: str, validator, values) -> None:
    """Every value a name in the grammar of ``validator`` (checks/names.py)."""
    if not isinstance(values, list) or not values:
        raise BadEntry(f"{kind}: not a list of names")
    for v in values:
        try:
            validator(v)
        except names.BadName as exc:
            raise BadEntry(f"{kind}: {exc}") from None


def _valid(validator, value: str) -> bool:
    return names.is_valid(validator, value)


def host_path(path: object, host: Host) -> str:
    """An absolute path inside the root, written as kvmprep writes it, and
    not in kvmprep's own state (whose entries undo never rewrites)."""
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise BadEntry(f"path {path!r}: not an absolute path")
    if os.path.normpath(path) != path or "/../" in f"{path}/":
        raise BadEntry(f"path {path!r}: not a plain path inside the root")
    for own in ("/var/lib/kvmprep", "/var/log/kvmprep"):
        if (path == own or path.startswith(own + "/")) and not path.startswith("/var/lib/kvmprep/rpm/"):
            raise BadEntry(f"path {path}: kvmprep's own state (journal, backups, log), never a fix's file")
    real = host.path(path)
    root = host.root.rstrip("/") + "/"
    if host.root != "/" and not (real + "/").startswith(root):
        raise BadEntry(f"path {path}: leaves the root")
    return path


def _same_root(field: object, host: Host) -> None:
    want = "/" if host.live and host.root == "/" else str(host.root)
    if field not in (want, str(host.root)):
        raise BadEntry(f"acts on root {field!r}, not on {host.root}")


def _command(argv: object, env: object, host: Host) -> list[str]:
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise BadEntry("a command that is not a list of words")
    if not isinstance(env, dict) or any(_ENV.get(k) != v for k, v in env.items()):
        raise BadEntry(f"environment {env!r}: kvmprep sets none but DEBIAN_FRONTEND=noninteractive")
    return argv


def inverse_command_ok(argv: list[str], host: Host) -> bool:
    """Whether ``argv`` is one of the undo commands kvmprep's remediations write."""
    name, rest = argv[0], argv[1:]
    if name == "setenforce":
        return rest == ["1"]
    if name == "groupdel":
        return rest in (["kvm"], ["-R", str(host.root), "kvm"])
    if name == "chgrp":
        return len(rest) == 2 and rest[0].isdigit() and rest[1] == "/dev/kvm" and host.live
    if name == "chmod":
        return (len(rest) == 2 and re.fullmatch(r"0?[0-7]{3}", rest[0]) is not None
                and rest[1] == "/dev/kvm" and host.live)
    if name in ("firewall-cmd", "firewall-offline-cmd"):
        if name == "firewall-cmd" and rest[:1] == ["--permanent"]:
            rest = rest[1:]
        if not rest or not (rest[0].startswith("--zone=") and _valid(names.firewall_zone, rest[0][7:])):
            return False
        ports = rest[1:]
        return bool(ports) and all(p.startswith("--remove-port=") and _valid(names.port, p[14:]) for p in ports)
    if name == "ufw":
        return len(rest) == 3 and rest[:2] == ["delete", "allow"] and _UFW_PORT.fullmatch(rest[2]) is not None
    if name == "update-initramfs":
        return len(rest) == 3 and rest[:2] == ["-u", "-k"] and _RELEASE.fullmatch(rest[2]) is not None
    if name == "dracut":
        return len(rest) == 3 and rest[:2] == ["-f", "--kver"] and _RELEASE.fullmatch(rest[2]) is not None
    return argv in _REGENERATE


def check_entry(action: Action, host: Host) -> None:
    """Raise BadEntry unless undoing ``action`` stays within what kvmprep does."""
    if isinstance(action, WriteFile):
        host_path(action.path, host)
    elif isinstance(action, InstallPackages):
        if action.manager not in _MANAGERS:
            raise BadEntry(f"package manager {action.manager!r}")
        _names("packages", package_grammar(action.manager), action.packages)
    elif isinstance(action, LoadModule):
        _names("modules", names.module_name, [action.module])
        if not host.live:
            raise BadEntry("a module loaded into a running kernel, recorded for an offline root")
    elif isinstance(action, EnableUnits):
        _names("units", names.unit_name, action.units)
        _same_root(action.root, host)
    elif isinstance(action, AddKernelArgs):
        _names("kernel arguments", names.kernel_arg, action.args)
        if not host.live:
            raise BadEntry("grubby on an offline root")
    elif isinstance(action, AddUserToGroups):
        _names("users", names.user_name, [action.user])
        _names("groups", names.group_name, action.groups)
        _same_root(action.root, host)
    elif isinstance(action, RunCommand):
        if action.undo_argv:
            argv = _command(action.undo_argv, action.env, host)
            if not inverse_command_ok(argv, host):
                raise BadEntry(f"undo command {' '.join(argv)!r} is not one kvmprep writes")
    else:
        raise BadEntry(f"an action kind undo does not know ({type(action).__name__})")


def state_list(value: object, validator, kind: str) -> list[str]:
    """A list of names recorded in a before/after state (installed packages, groups)."""
    if not value:
        return []
    _names(kind, validator, value)
    return list(value)


def package_grammar(manager: str):
    """The validator of the package names ``manager`` takes: Debian's for apt, RPM's
    otherwise (``perl-IO-Socket-SSL`` is an RPM name and not a Debian one)."""
    return names.debian_package if manager == "apt" else names.rpm_package


_UNIT_STATE = re.compile(r"[a-z][a-z-]{0,31}")


def unit_states(value: object) -> dict[str, str]:
    """A recorded ``{unit: is-enabled state}`` map: unit names and plain state words."""
    if not value:
        return {}
    if not isinstance(value, dict):
        raise BadEntry("unit states: not a mapping")
    _names("units", names.unit_name, list(value))
    for state in value.values():
        if not isinstance(state, str) or not _UNIT_STATE.fullmatch(state):
            raise BadEntry(f"unit states: {names.show(state)} is not a state systemctl prints")
    return dict(value)
