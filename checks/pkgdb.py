"""Installed packages of a root, asked of its own package database.

dpkg-query with --admindir, rpm with --root/--dbpath: the tools of the
machine kvmprep runs on, pointed at the root's database. Without dpkg-query
the dpkg status file is read directly.
"""

from __future__ import annotations

from .errors import NeedsRoot, ProbeError, ToolMissing
from .host import Host
from .names import is_valid, rpm_package

# Where distributions keep the rpm database (EL9+/Fedora 36+/SUSE, then EL 7-8).
# Debian's own rpm defaults to ~/.rpmdb, so a root filled from a Debian host
# by ``rpm --root``/``dnf --installroot`` without a dbpath has it in
# /root/.rpmdb: the last resort. The dbpath is always passed explicitly.
RPM_DBPATHS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm", "/root/.rpmdb")
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


def _status_versions(text: str) -> dict[str, str]:
    """Installed packages from a dpkg status file (used when dpkg-query is absent)."""
    found: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1].isspace() or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
        name = fields.get("Package")
        if name and fields.get("Status", "").endswith(" installed"):
            found[name] = fields.get("Version", "")
    return found


def _first_error(stderr: str) -> str:
    """dpkg's first error line with its indented continuation, as one line."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if "error" in line:
            more = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1][:1].isspace() else ""
            return f"{line.strip()} {more}".strip()
    return stderr.strip()


def dpkg_listing(host: Host) -> tuple[dict[str, str], str]:
    """Every installed package of the root's dpkg database (one dpkg-query per run)."""
    return host.memo(("dpkg-listing",), lambda: _dpkg_listing(host))


def _dpkg_listing(host: Host) -> tuple[dict[str, str], str]:
    admindir = host.path("/var/lib/dpkg")
    argv = ["dpkg-query", f"--admindir={admindir}", "-W",
            "-f", "${Package}\t${Version}\t${db:Status-Status}\n"]
    try:
        res = host.run(argv)
    except ToolMissing:
        text = host.read_text("/var/lib/dpkg/status") or ""
        return _status_versions(text), host.display("/var/lib/dpkg/status")
    if res.returncode != 0:
        raise ProbeError(" ".join(argv[:3]), _first_error(res.stderr) or f"exit {res.returncode}")
    found = {}
    for line in res.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            found[parts[0]] = parts[1]
    return found, " ".join(argv[:3])


def installed(host: Host, kind: str, names: list[str]) -> tuple[dict[str, str | None], str]:
    """Map each name to its installed version (None if not installed).

    Returns the mapping and a description of the command or file used.
    """
    names = sorted(set(names))
    if not names:
        return {}, ""
    if kind == "dpkg":
        listing, source = dpkg_listing(host)
        return {n: listing.get(n) for n in names}, source
    if kind == "rpm":
        dbpath = rpm_dbpath(host)
        if dbpath is None:
            # rpm -q would create an empty database in the root: never write there.
            raise ProbeError("rpm database", "none under " + ", ".join(RPM_DBPATHS[:2]))
        found = {n: None for n in names}
        # Only package names reach rpm, after "--" (``rpm -q --pipe CMD`` runs CMD);
        # anything else cannot be an installed package: None.
        names = [n for n in names if is_valid(rpm_package, n)]
        if not names:
            return found, "rpm -q"
        argv = ["rpm", f"--root={host.root}", f"--dbpath={dbpath}", "-q",
                "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\n", "--", *names]
        res = host.run(argv)
        for line in res.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[0] in found:
                found[parts[0]] = parts[1]
        # "package X is not installed" goes to stdout with exit 1; a database
        # rpm cannot open says "error: cannot open Packages database" on
        # stderr and still claims every package is not installed.
        errors = [l.strip() for l in res.stderr.splitlines() if l.lstrip().startswith("error:")]
        if errors or (res.returncode != 0 and "not installed" not in res.stdout):
            message = errors[0] if errors else (res.stderr.strip() or f"exit {res.returncode}")
            if not host.is_root and ("cannot open" in message or "ermission denied" in res.stderr):
                raise NeedsRoot(host.display(dbpath))
            raise ProbeError(" ".join(argv[:4]), message)
        return found, " ".join(argv[:4]) + " -q " + " ".join(names)
    raise ProbeError("package database", "no dpkg or rpm database found in the root")
