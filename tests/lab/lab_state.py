"""What a lab host really is, read over ssh: its /etc, its packages, its units.

The scenarios judge kvmprep by these, never by what kvmprep prints.
"""

from __future__ import annotations

import json
import re
import time
from typing import Callable, Dict, Iterable, List, Optional, Set

# Every path under /etc without following links: type, owner, mode, and the
# sha256 of a file's bytes or a link's target. Runs on the host's python3.
_ETC_STATE = r"""
import hashlib, json, os, stat
out = {}
for top, dirs, files in os.walk("/etc"):
    for name in dirs + files:
        p = os.path.join(top, name)
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            what = "link " + os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            with open(p, "rb") as fh:
                what = "file " + hashlib.sha256(fh.read()).hexdigest()
        elif stat.S_ISDIR(st.st_mode):
            what = "dir"
        else:
            what = "other"
        out[p] = "%s %o %d:%d" % (what, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
print(json.dumps(out))
"""

# Files the lab itself writes into each copy before boot (tests/lab/lab_host.py):
# not kvmprep's, and different on every copy (the sshd port).
LAB_FILES = {"/etc/ssh/sshd_config.d/kvmprep-lab.conf"}


def etc_state(host) -> Dict[str, str]:
    r = host.ssh("python3 -", input=_ETC_STATE, check=True)
    return {p: v for p, v in json.loads(r.stdout).items() if p not in LAB_FILES}


def changed(before: Dict[str, str], after: Dict[str, str]) -> Set[str]:
    return {p for p in set(before) | set(after) if before.get(p) != after.get(p)}


def sysv_link(path: str) -> Optional[tuple]:
    """(runlevel, service) for a SysV start/kill link (/etc/rc2.d/S01chrony), else None."""
    m = re.match(r"^/etc/rc([0-6S])\.d/[SK][0-9][0-9](.+)$", path)
    return (m.group(1), m.group(2)) if m else None


def explained_by(path: str, package_changes: Set[str]) -> bool:
    """The package installation changes ``path``; or ``path`` is the kill link
    of a SysV service whose start link the installation made: ``systemctl
    disable`` of a unit the package enabled turns S01chrony into K01chrony
    (systemd-sysv-install, i.e. update-rc.d), the Debian form of "installed,
    disabled"."""
    if path in package_changes:
        return True
    link = sysv_link(path)
    return link is not None and any(sysv_link(p) == link for p in package_changes)


def installed_packages(host) -> Dict[str, str]:
    """name:arch -> version of every package dpkg counts as installed (not
    "config-files" or "not-installed": a removed package's conffiles are not
    an installed package)."""
    r = host.ssh("dpkg-query -W -f='${binary:Package}\\t${Version}\\t${db:Status-Abbrev}\\n'", check=True)
    out = {}
    for line in r.stdout.splitlines():
        name, version, status = (line.split("\t") + ["", ""])[:3]
        if len(status) >= 2 and status[1] not in ("n", "c"):
            out[name] = version
    return out


def groups_of(host, user: str) -> Set[str]:
    return set(host.ssh(f"id -nG {user}", check=True).stdout.split())


LIBVIRT_UNIT = r"^(libvirt|virt[a-z]*d)[-.@a-z]*\.(service|socket)$"


def enabled_libvirt_units(host) -> List[str]:
    """libvirt's units that are enabled: those systemctl reports, and any
    symlink left in a .wants/.requires directory under /etc/systemd/system
    (a unit file removed with its package leaves one that still counts when
    the package comes back)."""
    listed = host.ssh("systemctl list-unit-files --state=enabled,enabled-runtime,linked --no-legend --no-pager",
                      check=True).stdout
    found = {line.split()[0] for line in listed.splitlines() if line.split()
             and re.match(LIBVIRT_UNIT, line.split()[0])}
    links = host.ssh("find /etc/systemd/system -type l -path '*.wants/*' -o -type l -path '*.requires/*'",
                     check=True).stdout
    found |= {f"{p} (symlink)" for p in links.split() if re.match(LIBVIRT_UNIT, p.rsplit("/", 1)[-1])}
    return sorted(found)


def journal_records(host) -> List[dict]:
    text = host.ssh("cat /var/lib/kvmprep/journal", check=True).stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def files_kvmprep_wrote(records: Iterable[dict]) -> Set[str]:
    """Paths of the write-file actions in the plans kvmprep's journal recorded."""
    out: Set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("kind") == "write-file" and isinstance(node.get("path"), str):
                out.add(node["path"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for r in records:
        if r.get("event") == "start":
            walk(r.get("plan"))
    return out


def wait_until(probe: Callable[[], Optional[object]], what: str, timeout: float = 120, every: float = 0.2):
    """Poll ``probe`` until it returns something true; that value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = probe()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Phases:
    """Seconds per phase of a scenario, printed (pytest -s, or with a failure's
    captured output) so that the lab's cost stays visible."""

    def __init__(self, name: str):
        self.name, self.last, self.start = name, time.monotonic(), time.monotonic()

    def __call__(self, phase: str) -> None:
        now = time.monotonic()
        print(f"[lab] {self.name}: {phase}: {now - self.last:.1f} s (total {now - self.start:.1f} s)")
        self.last = now
