"""Identify the distribution of a root from its release files.

os-release first (etc/, then usr/lib/); when it is missing or empty (Amazon
Linux 2 images ship an empty one), the older */*-release files. The
``distro`` library is not used here: pointed at a root it does not fall back
to those files, and it costs ~25 ms of import on the check path.
"""

from __future__ import annotations

import re
import shlex

from .record import Record

FAMILIES = ("debian", "rhel", "suse")

_DEBIAN_IDS = {"debian", "ubuntu", "linuxmint", "pop", "raspbian", "devuan", "kali"}
_RHEL_IDS = {"rhel", "centos", "almalinux", "rocky", "ol", "fedora", "amzn",
             "scientific", "eurolinux", "circle", "navy", "cloudlinux", "virtuozzo"}
_SUSE_IDS = {"sles", "sled", "opensuse", "opensuse-leap", "opensuse-tumbleweed",
             "opensuse-microos", "sle-micro"}


class OsInfo(Record):
    def __init__(self, id: str | None = None, version: str | None = None, name: str | None = None,
                 like: list[str] | None = None, codename: str | None = None, source: str | None = None,
                 evidence: tuple[str, str, str | None] | None = None):
        self.id = id
        self.version = version  # VERSION_ID
        self.name = name  # PRETTY_NAME
        self.like = list(like or [])
        self.codename = codename
        self.source = source  # the file it came from
        # for an ID kvmprep does not know: the family the root's files show, and which files
        self.evidence = evidence  # (family, what showed it, package manager)

    @property
    def family_by_id(self) -> str:
        for i in [self.id or ""] + self.like:
            if i in _DEBIAN_IDS:
                return "debian"
            if i in _RHEL_IDS or i in ("redhat", "centos-stream"):
                return "rhel"
            if i in _SUSE_IDS or i.startswith("opensuse") or i == "suse":
                return "suse"
        return "unsupported"

    @property
    def family(self) -> str:
        fam = self.family_by_id
        return self.evidence[0] if fam == "unsupported" and self.evidence else fam

    @property
    def family_reason(self) -> str:
        """How the family was decided, for the admin."""
        if self.family_by_id != "unsupported":
            return "ID=" + (self.id or "") + (f", ID_LIKE={' '.join(self.like)}" if self.like else "")
        if self.evidence:
            return f"{self.evidence[1]} (no ID or ID_LIKE kvmprep knows)"
        return "no ID, ID_LIKE, release file or package manager kvmprep knows"

    @property
    def major(self) -> int | None:
        m = re.match(r"(\d+)", self.version or "")
        return int(m.group(1)) if m else None

    @property
    def package_manager(self) -> str | None:
        if self.family_by_id == "unsupported" and self.evidence:
            return self.evidence[2]
        fam = self.family
        if fam == "debian":
            return "apt"
        if fam == "suse":
            return "zypper"
        if fam == "rhel":
            major = self.major
            if self.id == "fedora":
                return "dnf" if major is None or major >= 22 else "yum"
            if self.id == "amzn":
                return "dnf" if major and major >= 2022 else "yum"
            if major is not None and major <= 7:
                return "yum"
            return "dnf"
        return None

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "version": self.version,
            "name": self.name,
            "like": self.like,
            "family": self.family,
            "family_from": self.family_reason,
            "package_manager": self.package_manager,
            "source": self.source,
        }


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            parts = shlex.split(raw, posix=True)
            value = parts[0] if parts else ""
        except ValueError:
            value = raw.strip("\"'")
        values[key.strip()] = value
    return values


# (file, id, regex for the version) for roots without a usable os-release
_LEGACY = [
    ("/etc/system-release", None),
    ("/etc/redhat-release", None),
    ("/etc/centos-release", "centos"),
    ("/etc/SuSE-release", "sles"),
    ("/etc/debian_version", "debian"),
]
_LEGACY_NAMES = [
    (re.compile(r"Amazon Linux", re.I), "amzn"),
    (re.compile(r"CentOS", re.I), "centos"),
    (re.compile(r"AlmaLinux", re.I), "almalinux"),
    (re.compile(r"Rocky", re.I), "rocky"),
    (re.compile(r"Fedora", re.I), "fedora"),
    (re.compile(r"Red Hat Enterprise", re.I), "rhel"),
    (re.compile(r"openSUSE", re.I), "opensuse"),
    (re.compile(r"SUSE Linux Enterprise", re.I), "sles"),
]


def detect_os(read_text, exists=None) -> OsInfo:
    """``read_text(path) -> str | None`` and ``exists(path) -> bool`` are the
    host's. Where the ID is one kvmprep does not know, the family comes from
    the root's own files (``family_evidence``)."""
    info = _detect_os(read_text)
    if exists is not None and info.family_by_id == "unsupported":
        info.evidence = family_evidence(exists)
    return info


# (family, files any of which shows it); then (family, package database, tools, manager)
_RELEASE_EVIDENCE = (("debian", ("/etc/debian_version",)),
                     ("rhel", ("/etc/redhat-release",)),
                     ("suse", ("/etc/SuSE-release", "/etc/SUSE-brand")))
_TOOL_EVIDENCE = (("debian", ("/var/lib/dpkg/status",), ("/usr/bin/apt-get", "/bin/apt-get"), "apt"),
                  ("suse", ("/var/lib/rpm", "/usr/lib/sysimage/rpm"), ("/usr/bin/zypper",), "zypper"),
                  ("rhel", ("/var/lib/rpm", "/usr/lib/sysimage/rpm"), ("/usr/bin/dnf", "/bin/dnf"), "dnf"),
                  ("rhel", ("/var/lib/rpm", "/usr/lib/sysimage/rpm"), ("/usr/bin/yum", "/bin/yum"), "yum"))


def family_evidence(exists) -> tuple[str, str, str | None] | None:
    """(family, evidence, package manager) from what the root holds: its
    package manager with its database, and the family's release file. Only
    an unambiguous answer: a root with both apt and dnf (and no release file
    to tell) stays undecided."""
    tools = {}
    for fam, dbs, exes, pm in _TOOL_EVIDENCE:
        db = next((d for d in dbs if exists(d)), None)
        exe = next((e for e in exes if exists(e)), None)
        if db and exe and fam not in tools:
            tools[fam] = (f"{exe} with its database {db}", pm)
    files = {fam: next(p for p in paths if exists(p)) for fam, paths in _RELEASE_EVIDENCE
             if any(exists(p) for p in paths)}
    if "suse" in tools:
        tools.pop("rhel", None)  # zypper roots have rpm, and sometimes a dnf: zypper decides
    if len(files) == 1:
        fam, path = next(iter(files.items()))
        pm = tools.get(fam, (None, None))[1]
        shown = path + (f" and {tools[fam][0]}" if fam in tools else "")
        return fam, shown, pm
    if len(tools) == 1:
        fam, (shown, pm) = next(iter(tools.items()))
        return fam, shown, pm
    return None


def _detect_os(read_text) -> OsInfo:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = read_text(path)
        if text and text.strip():
            v = parse_os_release(text)
            if v.get("ID") or v.get("NAME"):
                info = OsInfo(
                    id=(v.get("ID") or v.get("NAME", "")).lower() or None,
                    version=v.get("VERSION_ID") or None,
                    name=v.get("PRETTY_NAME") or v.get("NAME"),
                    like=v.get("ID_LIKE", "").lower().split(),
                    codename=v.get("VERSION_CODENAME") or None,
                    source=path,
                )
                _refine_rhel_version(info, read_text)
                return info
    # lsb-release (Arch, old Ubuntu) before the single-line files
    text = read_text("/etc/lsb-release")
    if text and "DISTRIB_ID" in text:
        v = parse_os_release(text)
        return OsInfo(
            id=v.get("DISTRIB_ID", "").lower() or None,
            version=v.get("DISTRIB_RELEASE") or None,
            name=v.get("DISTRIB_DESCRIPTION") or v.get("DISTRIB_ID"),
            codename=v.get("DISTRIB_CODENAME") or None,
            source="/etc/lsb-release",
        )
    for path, default_id in _LEGACY:
        text = read_text(path)
        if not text or not text.strip():
            continue
        line = text.strip().splitlines()[0]
        os_id = default_id
        for rx, ident in _LEGACY_NAMES:
            if rx.search(line):
                os_id = ident
                break
        m = re.search(r"(\d+(?:\.\d+)*)", line)
        version = m.group(1) if m else None
        if os_id == "amzn" and version is None and "2" in line:
            version = "2"
        return OsInfo(id=os_id, version=version, name=line, source=path)
    return OsInfo()


def _refine_rhel_version(info: OsInfo, read_text) -> None:
    """CentOS puts only "8" in VERSION_ID; its release file says 8.1.1911."""
    if info.family != "rhel" or not info.version or "." in info.version:
        return
    for path in ("/etc/centos-release", "/etc/redhat-release", "/etc/system-release"):
        text = read_text(path)
        if not text:
            continue
        m = re.search(r"release (\d+(?:\.\d+)+)", text)
        if m and m.group(1).split(".")[0] == info.version:
            info.version = ".".join(m.group(1).split(".")[:2])
            info.source = f"/etc/os-release + {path}"
            return
