"""Installed packages of a root, asked of its own package database.

dpkg's database is its status file: read directly (a child dpkg-query costs
about 10 ms and a core; parsing the file about 2 ms). Only when dpkg left a
pending journal in ``updates/`` (an interrupted run) is the status file not
the whole truth; then dpkg-query --admindir, which merges the journal, answers.
rpm's database is binary: rpm with --root/--dbpath answers.
"""

from __future__ import annotations

from .errors import NeedsRoot, ProbeError, ToolMissing
from .host import Host
from .names import debian_package, is_valid, rpm_package

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


def _status_versions(data: bytes, strict: bool = True) -> dict[str, str] | None:
    """Installed packages (name -> version) of a dpkg status file.

    dpkg writes each stanza with Package first; only Package, Status and
    Version are looked at (continuation lines start with a space, so a
    description cannot fake a field). ``strict``: None for a file dpkg did
    not write (a NUL byte, a stanza not starting with Package), so that
    dpkg-query judges it and says what is wrong.
    """
    found: dict[str, str] = {}
    if strict and b"\0" in data:
        return None
    for stanza in data.split(b"\n\n"):
        stanza = b"\n" + stanza.strip(b"\n")
        if stanza == b"\n":
            continue
        if strict and not stanza.startswith(b"\nPackage:"):
            return None
        name = _field(stanza, b"\nPackage:")
        status = _field(stanza, b"\nStatus:")
        if name and status and status.split()[-1:] == [b"installed"]:
            found[name.decode("utf-8", "replace")] = (_field(stanza, b"\nVersion:") or b"").decode("utf-8", "replace")
    return found


def _field(stanza: bytes, key: bytes) -> bytes | None:
    i = stanza.find(key)
    if i < 0:
        return None
    i += len(key)
    j = stanza.find(b"\n", i)
    return stanza[i:j if j >= 0 else len(stanza)].strip()


def _journal_pending(host: Host) -> bool:
    """dpkg's updates/ journal holds entries (files named by digits) not yet
    merged into the status file: only dpkg-query sees the whole database."""
    return any(n.isdigit() for n in host.listdir("/var/lib/dpkg/updates"))


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
    data = dpkg_status(host)
    found = None if data is None else _status_versions(data)
    if found is not None:
        return found, host.display("/var/lib/dpkg/status")
    admindir = host.path("/var/lib/dpkg")
    argv = ["dpkg-query", f"--admindir={admindir}", "-W",
            "-f", "${Package}\t${Version}\t${db:Status-Status}\n"]
    try:
        res = host.run(argv)
    except ToolMissing:
        data = host.read_bytes("/var/lib/dpkg/status") or b""
        return _status_versions(data, strict=False), host.display("/var/lib/dpkg/status")
    if res.returncode != 0:
        raise ProbeError(" ".join(argv[:3]), _first_error(res.stderr) or f"exit {res.returncode}")
    found = {}
    for line in res.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] == "installed":
            found[parts[0]] = parts[1]
    return found, " ".join(argv[:3])


def dpkg_status(host: Host) -> bytes | None:
    """The root's dpkg status file when it is the whole truth (no pending
    journal) and written by dpkg (no NUL byte, starts with a Package field);
    None otherwise: then dpkg-query answers (read once per run)."""
    def read():
        if _journal_pending(host):
            return None
        data = host.read_bytes("/var/lib/dpkg/status")
        if data is None or b"\0" in data or not (data.startswith(b"Package:") or not data.strip()):
            return None
        return data
    return host.memo(("dpkg-status",), read)


def _status_version(data: bytes, name: str) -> str | None:
    """The installed version of ``name`` in a status file, looked up (a C-speed
    search for its stanzas) instead of parsing all of them: a check asks about
    a handful of the thousands of packages a server has. Multi-Arch packages
    have a stanza per architecture: any installed one counts."""
    if not is_valid(debian_package, name):
        return None  # no such package can be in the database
    for stanza in _stanzas_of(data, b"Package: " + name.encode() + b"\n"):
        status = _field(stanza, b"\nStatus:")
        if status and status.split()[-1:] == [b"installed"]:
            return (_field(stanza, b"\nVersion:") or b"").decode("utf-8", "replace")
    return None


def _stanzas_of(data: bytes, key: bytes):
    """Each stanza that starts with ``key`` (Package is a stanza's first field,
    so it follows a blank line or opens the file), with a leading newline."""
    starts = [0] if data.startswith(key) else []
    i = data.find(b"\n" + key)
    while i >= 0:
        starts.append(i + 1)
        i = data.find(b"\n" + key, i + 1)
    for start in starts:
        end = data.find(b"\n\n", start)
        yield b"\n" + data[start:end if end >= 0 else len(data)]


def installed(host: Host, kind: str, names: list[str]) -> tuple[dict[str, str | None], str]:
    """Map each name to its installed version (None if not installed).

    Returns the mapping and a description of the command or file used.
    """
    names = sorted(set(names))
    if not names:
        return {}, ""
    if kind == "dpkg":
        data = dpkg_status(host)
        if data is not None:
            # a name's lookup scans the status file (~0.1 ms a name on a server); the
            # report's package versions ask names the packages check already asked
            answered = host.memo(("dpkg-q",), dict)
            for n in names:
                if n not in answered:
                    answered[n] = _status_version(data, n)
            return {n: answered[n] for n in names}, host.display("/var/lib/dpkg/status")
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
        # Each rpm costs a child process and a database open (~20 ms): names an
        # earlier call of this run asked about (the packages check's, then the
        # report's package versions) are answered from what it said.
        answered = host.memo(("rpm-q",), dict)
        asked = [n for n in names if n not in answered]
        if not asked:
            found.update((n, answered[n]) for n in names)
            return found, " ".join(argv[:4]) + " -q " + " ".join(names)
        res = host.run(argv[:-len(names)] + asked)
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
        for n in asked:
            answered[n] = found[n]
        for n in names:
            if n not in asked:
                found[n] = answered[n]
        return found, " ".join(argv[:4]) + " -q " + " ".join(names)
    raise ProbeError("package database", "no dpkg or rpm database found in the root")


# ---- every package: what a transaction added is the difference of two listings ----------

# dpkg states of a package whose files are (at least partly) on disk: a failed
# transaction leaves "unpacked" or "half-configured" ones, still to be removed
_DPKG_ABSENT = ("not-installed", "config-files")


def installed_names(host: Host, kind: str) -> set[str]:
    """Every package name present in the root's database, in one listing.

    dpkg: ``${binary:Package}`` (``libc6:amd64`` for a Multi-Arch: same package,
    so a name given back to apt-get means that very package); rpm: ``%{NAME}``
    without rpm's ``gpg-pubkey`` entries (imported keys, not packages). A root
    without a database has nothing installed."""
    if kind == "dpkg":
        return _dpkg_names(host)
    if kind == "rpm":
        return _rpm_names(host)
    raise ProbeError("package database", f"unknown kind {kind!r}")


def _dpkg_names(host: Host) -> set[str]:
    if not host.exists("/var/lib/dpkg/status"):
        return set()
    argv = ["dpkg-query", f"--admindir={host.path('/var/lib/dpkg')}", "-W",
            "-f", "${binary:Package}\t${db:Status-Status}\n"]
    try:
        res = host.run(argv, timeout=120)
    except ToolMissing:
        return set(dpkg_listing(host)[0])
    if res.returncode != 0 and not (res.returncode == 1 and not res.stdout.strip()
                                    and "no packages found" in res.stderr):
        raise ProbeError(" ".join(argv[:3]), _first_error(res.stderr) or f"exit {res.returncode}")
    found = set()
    for line in res.stdout.splitlines():
        name, _, state = line.partition("\t")
        if name and state and state not in _DPKG_ABSENT:
            found.add(name)
    return found


def _rpm_names(host: Host) -> set[str]:
    dbpath = rpm_dbpath(host)
    if dbpath is None:
        return set()  # rpm -qa would create an empty database in the root: never write there
    argv = ["rpm", f"--root={host.root}", f"--dbpath={dbpath}", "-qa", "--qf", "%{NAME}\n"]
    res = host.run(argv, timeout=120)
    errors = [l.strip() for l in res.stderr.splitlines() if l.lstrip().startswith("error:")]
    if errors or res.returncode != 0:
        message = errors[0] if errors else (res.stderr.strip() or f"exit {res.returncode}")
        if not host.is_root and ("cannot open" in message or "ermission denied" in res.stderr):
            raise NeedsRoot(host.display(dbpath))
        raise ProbeError(" ".join(argv[:4]), message)
    return {n for n in res.stdout.split() if n != "gpg-pubkey"}
