"""Installed packages of a root, asked of its own package database.

dpkg-query with --admindir, rpm with --root/--dbpath: the tools of the
machine kvmprep runs on, pointed at the root's database. Without dpkg-query
the dpkg status file is read directly.
"""

from __future__ import annotations

from .errors import ProbeError, ToolMissing
from .host import Host

RPM_DBPATHS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
RPM_DB_FILES = ("rpmdb.sqlite", "Packages", "Packages.db")


def database_kind(host: Host, family: str) -> str | None:
    """'dpkg', 'rpm' or None, from the database present in the root."""
    has_dpkg = host.exists("/var/lib/dpkg/status")
    has_rpm = rpm_dbpath(host) is not None
    if family == "debian" and has_dpkg:
        return "dpkg"
    if family in ("rhel", "suse") and has_rpm:
        return "rpm"
    if has_dpkg:
        return "dpkg"
    if has_rpm:
        return "rpm"
    return None


def rpm_dbpath(host: Host) -> str | None:
    for d in RPM_DBPATHS:
        if any(host.exists(f"{d}/{f}") for f in RPM_DB_FILES):
            return d
    return None


def _dpkg_status_file(host: Host, names: list[str]) -> dict[str, str | None]:
    text = host.read_text("/var/lib/dpkg/status") or ""
    found: dict[str, str | None] = {n: None for n in names}
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
        name = fields.get("Package")
        if name in found and fields.get("Status", "").endswith(" installed"):
            found[name] = fields.get("Version")
    return found


def installed(host: Host, kind: str, names: list[str]) -> tuple[dict[str, str | None], str]:
    """Map each name to its installed version (None if not installed).

    Returns the mapping and a description of the command or file used.
    """
    names = sorted(set(names))
    if not names:
        return {}, ""
    if kind == "dpkg":
        admindir = str(host.path("/var/lib/dpkg"))
        argv = ["dpkg-query", f"--admindir={admindir}", "-W",
                "-f", "${Package}\t${Version}\t${db:Status-Status}\n", *names]
        try:
            res = host.run(argv)
        except ToolMissing:
            return _dpkg_status_file(host, names), host.display("/var/lib/dpkg/status")
        found: dict[str, str | None] = {n: None for n in names}
        for line in res.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] in found and parts[2] == "installed":
                found[parts[0]] = parts[1]
        if res.returncode not in (0, 1):
            raise ProbeError(" ".join(argv[:3]), res.stderr.strip() or f"exit {res.returncode}")
        return found, " ".join(argv[:3]) + " " + " ".join(names)
    if kind == "rpm":
        dbpath = rpm_dbpath(host) or "/var/lib/rpm"
        argv = ["rpm", f"--root={host.root}", f"--dbpath={dbpath}", "-q",
                "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n", *names]
        res = host.run(argv)
        found = {n: None for n in names}
        for line in res.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[0] in found:
                found[parts[0]] = parts[1]
        if res.returncode != 0 and not any("not installed" in l for l in res.stdout.splitlines()):
            raise ProbeError(" ".join(argv[:4]), res.stderr.strip() or f"exit {res.returncode}")
        return found, " ".join(argv[:4]) + " -q " + " ".join(names)
    raise ProbeError("package database", "no dpkg or rpm database found in the root")
