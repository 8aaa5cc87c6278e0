"""Operating system: supported distribution, bare metal, minimal installation."""

from __future__ import annotations

import re
import time

from ..errors import ProbeError
from ..model import failed, passed, skipped, warned
from ..osrelease import OsInfo
from ..registry import Ctx, check
from ..units import UNIT_DIRS, enabled_states
from ..urls import url_parts

# ---------------------------------------------------------------- distribution

DEFAULT_SUPPORTED = [
    {"id": "debian", "min": "11"},
    {"id": "ubuntu", "min": "20.04"},
    {"id": "rhel", "min": "8"},
    {"id": "almalinux", "min": "8"},
    {"id": "rocky", "min": "8"},
    {"id": "ol", "min": "8"},
    {"id": "centos-stream", "min": "8"},
    {"id": "fedora", "min": "38"},
    {"id": "sles", "min": "15"},
    {"id": "opensuse-leap", "min": "15"},
]

# (id, major version, end of life, what it means); ids as in os-release (plus centos-stream)
END_OF_LIFE = [
    ("centos", "7", (2024, 6, 30), "CentOS 7 reached end of life on 2024-06-30"),
    ("centos", "8", (2021, 12, 31), "CentOS Linux 8 reached end of life on 2021-12-31"),
    ("centos-stream", "8", (2024, 5, 31), "CentOS Stream 8 reached end of life on 2024-05-31"),
]

_RELEASE_FILES = "/etc/os-release, /usr/lib/os-release, /etc/lsb-release, /etc/system-release, " \
                 "/etc/redhat-release, /etc/centos-release, /etc/SuSE-release, /etc/debian_version"


def _vtuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    m = re.match(r"\s*(\d+(?:\.\d+)*)", str(text))
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def effective_ids(info: OsInfo) -> list[str]:
    """os-release ID plus the names a profile may use for it (CentOS Stream says ID=centos)."""
    ids = [info.id] if info.id else []
    if info.id == "centos" and "stream" in (info.name or "").lower():
        ids.insert(0, "centos-stream")
    return ids


def _describe(entry: dict) -> str:
    lo, hi = entry.get("min"), entry.get("max")
    if lo and hi:
        return f"{entry['id']} {lo}" if str(lo) == str(hi) else f"{entry['id']} {lo}-{hi}"
    if lo:
        return f"{entry['id']} >= {lo}"
    if hi:
        return f"{entry['id']} <= {hi}"
    return str(entry["id"])


def _entries(value) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ProbeError("parameter supported", "must be a non-empty list of {id, min, max} mappings")
    out = []
    for item in value:
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or set(item) - {"id", "min", "max"}:
            raise ProbeError("parameter supported", f"entry {item!r} is not a mapping with id and optional min, max")
        for key in ("min", "max"):
            if item.get(key) is not None and _vtuple(str(item[key])) is None:
                raise ProbeError("parameter supported", f"entry {item['id']}: {key} {item[key]!r} is not a version")
        out.append({"id": item["id"].lower(), "min": item.get("min"), "max": item.get("max")})
    return out


def _version_ok(version: tuple[int, ...], entry: dict) -> tuple[bool, str]:
    lo, hi = _vtuple(entry.get("min") and str(entry["min"])), _vtuple(entry.get("max") and str(entry["max"]))
    if lo and _cmp(version, lo) < 0:
        return False, f"older than {entry['min']}"
    if hi and _cmp(version[:len(hi)], hi) > 0:  # max 8.9 allows 8.9.x
        return False, f"newer than {entry['max']}"
    return True, ""


def _eol(info: OsInfo, today: tuple[int, int, int] | None = None) -> str | None:
    today = today or time.localtime()[:3]  # (year, month, day): date.today() without importing datetime
    ids = effective_ids(info)
    major = str(info.major) if info.major is not None else None
    for os_id, ver, date, text in END_OF_LIFE:
        # CentOS Stream is checked under its own name only
        if ((os_id == ids[0] if ids else False) and major == ver and today > date):
            return text
    return None


@check(
    "os.distribution",
    title="Supported distribution and version",
    why="Platforms test and support their KVM nodes on a few distributions only; an old or "
        "unknown one lacks the QEMU/libvirt versions and fixes they rely on.",
    source="VMmanager (AlmaLinux 8.6-8.9; CentOS 7 only for existing installs, CentOS 8 unsupported); "
           "distribution support lifecycles",
    params={"supported": [dict(e) for e in DEFAULT_SUPPORTED]},
)
def os_distribution(ctx: Ctx):
    info = ctx.facts.os
    entries = _entries(ctx.params["supported"])
    wanted = ", ".join(_describe(e) for e in entries)
    hint = f"install a supported distribution: {wanted}"
    if not info.id:
        present = [p.strip() for p in _RELEASE_FILES.split(",") if ctx.host.is_file(p.strip())]
        if present:
            return failed(f"distribution unknown: {', '.join(ctx.show(p) for p in present)} name no distribution "
                          "(no ID or NAME line, no recognisable release text)",
                          *[(ctx.show(p), "present, unrecognised content") for p in present], hint=hint)
        return failed(f"distribution unknown: no os-release or other release file found (looked for {_RELEASE_FILES})",
                      (ctx.show("/etc/os-release"), "missing"), hint=hint)
    src = info.source or "?"
    shown = f"ID={info.id} VERSION_ID={info.version or '(none)'}"
    ev = [(" + ".join(ctx.show(p.strip()) for p in src.split("+")), f"{shown} ({info.name or 'no name'})"),
          ("family", f"{info.family} (from {info.family_reason}), package manager "
                     f"{info.package_manager or 'none known'}")]
    label = f"{info.name or info.id}" + (f" (ID={info.id}, VERSION_ID={info.version})" if info.version
                                          else f" (ID={info.id}, no VERSION_ID)")
    ids = effective_ids(info)
    matching = [e for e in entries if e["id"] in ids]
    eol = _eol(info)
    if not matching:
        note = f"; {eol}" if eol else ""
        return failed(f"{label} is not a supported distribution{note} (supported: {wanted})", *ev, hint=hint)
    version = _vtuple(info.version)
    if version is None:
        if any(e.get("min") or e.get("max") for e in matching):
            return warned(f"{label}: the release file gives no version number to compare with "
                          f"{', '.join(_describe(e) for e in matching)} (testing/unstable or rolling release?)",
                          *ev, hint=hint)
        return passed(f"{label} is supported", *ev)
    reasons = []
    for entry in matching:
        ok, why = _version_ok(version, entry)
        if ok:
            if eol:
                return warned(f"{label} is allowed by this profile, but {eol}: no more security updates",
                              *ev, hint=f"upgrade or reinstall: {wanted}")
            return passed(f"{label} is supported ({_describe(entry)})", *ev)
        reasons.append(f"{why} ({_describe(entry)})")
    note = f"; {eol}" if eol else ""
    return failed(f"{label} is not a supported version: {'; '.join(reasons)}{note}", *ev, hint=hint)


# ---------------------------------------------------------------- bare metal


@check(
    "os.bare-metal",
    title="Running on bare metal",
    why="A KVM host inside a virtual machine needs nested virtualization, which is slower and less "
        "stable; platforms support production nodes on bare metal only.",
    source="Deckhouse virtualization (bare metal; VMs only for demos, with nested enabled); "
           "Harvester installer (warns when running in a VM)",
)
def os_bare_metal(ctx: Ctx):
    virt = ctx.facts.virt
    ev = list(virt.evidence)
    if virt.container:
        where = (f"inside a virtual machine ({virt.kind or 'unknown hypervisor'})" if virt.is_vm
                 else "on a host that shows no hypervisor" if virt.is_vm is False else "on an unknown host")
        return warned(f"running inside a {virt.container} container {where}: the container's host "
                      "is what runs the guests", *ev,
                      hint="run kvmprep on the host itself, not in a container")
    if virt.is_vm:
        what = virt.kind or "unknown hypervisor"
        kvm = ctx.facts.kvm
        if kvm.ok:
            tail = "nested KVM works here (/dev/kvm creates VMs), fine for tests, not for production"
            ev.append(("/dev/kvm", kvm.detail))
        elif kvm.outcome == "offline":
            tail = "guests need nested virtualization from the outer hypervisor"
        else:
            tail = "and KVM does not work inside it (no nested virtualization)"
            ev.append(("/dev/kvm", kvm.detail))
        return warned(f"virtual machine ({what}): {tail}", *ev,
                      hint="use a bare-metal server for production; for tests enable nested virtualization "
                           "on the outer hypervisor and give this VM the host CPU model (host-passthrough)")
    if virt.is_vm is False:
        return passed("bare metal: no hypervisor flag, DMI vendor or hypervisor interface seen", *ev)
    return skipped("cannot tell: no /proc/cpuinfo, DMI (/sys/class/dmi/id) or hypervisor files in the root to read",
                   *ev)


# ---------------------------------------------------------------- minimal

# host name parts that mark a distribution's own (or mirrored) repositories
_OWN_HOSTS = {
    "debian": ("debian",),
    "ubuntu": ("ubuntu",),
    "rhel": ("redhat.com", "rhel"),
    "centos": ("centos",),
    "almalinux": ("almalinux",),
    "rocky": ("rockylinux", "rocky"),
    "ol": ("oracle.com", "oraclelinux"),
    "fedora": ("fedoraproject", "fedora"),
    "sles": ("suse",),
}
# repository ids (split at - _ .) that belong to the EL/Fedora distributions themselves
_OWN_REPO_TOKENS = {
    "baseos", "appstream", "extras", "powertools", "crb", "highavailability", "ha",
    "resilientstorage", "rs", "rt", "nfv", "sap", "saphana", "plus", "centosplus", "cr",
    "fasttrack", "base", "updates", "codeready", "supplementary", "addons", "sources", "source",
    "debuginfo", "debug", "devel", "media", "cisco", "openh264", "modular", "testing",
    "rhel", "centos", "almalinux", "rocky", "fedora", "ol", "rhui", "kernel",
}
# patterns are compiled on first use (re's cache), not at import
_THIRD_PARTY_REPO_RX = (r"(?i)epel|remi|rpmfusion|elrepo|ius|docker|nginx|mariadb|mysql|pgdg|postgres|"
                        r"mongodb|percona|zabbix|nodesource|grafana|gitlab|jenkins")

_EXTRA_SERVICES = {
    "nginx": "nginx (web server)",
    "apache2": "Apache (web server)",
    "httpd": "Apache httpd (web server)",
    "lighttpd": "lighttpd (web server)",
    "mysql": "MySQL (DBMS)",
    "mysqld": "MySQL (DBMS)",
    "mariadb": "MariaDB (DBMS)",
    "postgresql": "PostgreSQL (DBMS)",
    "mongod": "MongoDB (DBMS)",
    "mongodb": "MongoDB (DBMS)",
    "redis": "Redis (DBMS)",
    "redis-server": "Redis (DBMS)",
}
_MIRROR_ROOTS = {"debian", "debian-security", "debian-archive", "ubuntu", "ubuntu-ports"}
_PG_UNIT_RX = r"postgresql(-\d+(\.\d+)?)?(@)?\.service$"


def _own_host(host: str, os_ids: list[str], family: str) -> bool:
    host = host.lower()
    keys = set(os_ids)
    for i in os_ids:
        keys.update(_OWN_HOSTS.get(i, ()))
    if family == "suse":
        keys.add("suse")
    return any(k and k in host for k in keys)


def _apt_sources(ctx: Ctx) -> tuple[list[str], list[str]]:
    """(enabled entries as 'file: uri suite', files read)."""
    files = []
    if ctx.host.is_file("/etc/apt/sources.list"):
        files.append("/etc/apt/sources.list")
    d = "/etc/apt/sources.list.d"
    files += [p for p in ctx.host.glob(d, "*.list") + ctx.host.glob(d, "*.sources") if ctx.host.is_file(p)]
    entries = []
    for path in files:
        text = ctx.host.read_text(path) or ""
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                key = None
                for line in stanza.splitlines():
                    if line.lstrip().startswith("#") or not line.strip():
                        continue
                    if line[:1].isspace() and key:
                        fields[key] += " " + line.strip()
                        continue
                    k, sep, v = line.partition(":")
                    if not sep:
                        continue
                    key = k.strip().lower()
                    fields[key] = v.strip()
                if fields.get("enabled", "yes").lower() in ("no", "false", "0"):
                    continue
                types = fields.get("types", "").split()
                if not any(t in ("deb", "deb-src") for t in types):
                    continue
                for uri in fields.get("uris", "").split():
                    entries.append((path, uri, fields.get("suites", "").split()[:1]))
        else:
            for line in text.splitlines():
                line = line.split("#", 1)[0].strip()
                line = re.sub(r"\[[^\]]*\]", " ", line)
                parts = line.split()
                if len(parts) >= 2 and parts[0] in ("deb", "deb-src"):
                    entries.append((path, parts[1], parts[2:3]))
    return entries, files


def _ini_sections(text: str) -> list[tuple[str, dict[str, str]]]:
    sections: list[tuple[str, dict[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1].strip(), {}))
        elif "=" in line and sections:
            k, _, v = line.partition("=")
            sections[-1][1][k.strip().lower()] = v.strip()
    return sections


def _repo_url(values: dict[str, str]) -> str:
    for key in ("baseurl", "mirrorlist", "metalink"):
        if values.get(key):
            return values[key].split()[0].split(",")[0]
    return ""


def _enabled(values: dict[str, str]) -> bool:
    return values.get("enabled", "1").strip().lower() not in ("0", "false", "no", "off")


def _yum_third_party(ctx: Ctx, os_ids, family) -> tuple[list[tuple[str, str]], list[str]]:
    found, files = [], ctx.host.glob("/etc/yum.repos.d", "*.repo")
    for path in files:
        for rid, values in _ini_sections(ctx.host.read_text(path) or ""):
            if not _enabled(values):
                continue
            url = _repo_url(values)
            host = url_parts(url).hostname or ""
            tokens = set(re.split(r"[-_.:\s]+", rid.lower()))
            own_token = bool(tokens & _OWN_REPO_TOKENS) or any(re.fullmatch(r"ol\d+|el\d+|uekr?\d*", t) for t in tokens)
            if re.search(_THIRD_PARTY_REPO_RX, rid):
                own = False
            elif own_token:
                own = True
            else:
                own = bool(host) and _own_host(host, os_ids, family)
            if not own:
                found.append((path, f"[{rid}] {url or '(no baseurl)'}"))
    return found, files


def _zypper_third_party(ctx: Ctx) -> tuple[list[tuple[str, str]], list[str]]:
    found, files = [], ctx.host.glob("/etc/zypp/repos.d", "*.repo")
    for path in files:
        for alias, values in _ini_sections(ctx.host.read_text(path) or ""):
            if not _enabled(values):
                continue
            url = _repo_url(values)
            parsed = url_parts(url)
            host = parsed.hostname or ""
            if parsed.scheme in ("cd", "dvd", "dir", "iso", "hd", "plugin", "file") or not url:
                continue
            if "suse" in host and not parsed.path.startswith("/repositories/"):
                continue  # SUSE/openSUSE product repositories (not OBS home/devel projects)
            found.append((path, f"[{alias}] {url}"))
    return found, files


def _extra_services(ctx: Ctx) -> list[tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for d in UNIT_DIRS + ("/etc/init.d",):
        for name in ctx.host.listdir(d):
            base = name[:-len(".service")] if name.endswith(".service") else name if d == "/etc/init.d" else None
            if base is None:
                continue
            if re.match(_PG_UNIT_RX, name) or (d == "/etc/init.d" and base == "postgresql"):
                key, what = "postgresql", _EXTRA_SERVICES["postgresql"]
            elif base in _EXTRA_SERVICES:
                key, what = base, _EXTRA_SERVICES[base]
            else:
                continue
            if name.endswith("@.service"):
                continue
            target = ctx.host.readlink(f"{d}/{name}")
            if target and (target == "/dev/null" or target.rsplit("/", 1)[-1] != name):
                continue  # masked, or an alias of another unit (mysql.service -> mariadb.service)
            unit = name if d != "/etc/init.d" else f"{base}.service"
            found.setdefault(unit, (f"{d}/{name}", what))
    return sorted(found.items())


@check(
    "os.minimal",
    title="Minimal OS: no third-party repositories or extra services",
    why="Third-party repositories can replace QEMU/libvirt or the kernel with untested builds, and "
        "web servers or databases on a KVM node compete with guests and collide with the platform's own.",
    source="VMmanager (minimal OS without third-party repositories or extra services: web servers, DBMS)",
    params={"strict": False},
)
def os_minimal(ctx: Ctx):
    info = ctx.facts.os
    family = info.family
    os_ids = effective_ids(info) + [i for i in info.like if i in _OWN_HOSTS]
    problems: list[tuple[str, str]] = []
    read: list[str] = []
    if family == "debian" or (family == "unsupported" and ctx.host.is_dir("/etc/apt")):
        entries, files = _apt_sources(ctx)
        read += files
        seen = set()
        for path, uri, suite in entries:
            parsed = url_parts(uri)
            host = parsed.hostname
            if not host or parsed.scheme in ("cdrom", "file", "copy"):
                continue
            if _own_host(host, os_ids or ["debian"], family):
                continue
            first = parsed.path.strip("/").split("/")[0].lower()
            if first in _MIRROR_ROOTS and first.split("-")[0] in (os_ids or ["debian"]):
                continue  # a mirror laid out like the archive: http://mirror.example.net/debian
            if (path, uri) in seen:
                continue
            seen.add((path, uri))
            problems.append((ctx.show(path), f"repository {uri} {' '.join(suite)}".strip()))
    if family == "rhel" or (family == "unsupported" and ctx.host.is_dir("/etc/yum.repos.d")):
        found, files = _yum_third_party(ctx, os_ids, family)
        read += files
        problems += [(ctx.show(p), f"repository {v}") for p, v in found]
    if family == "suse" or (family == "unsupported" and ctx.host.is_dir("/etc/zypp/repos.d")):
        found, files = _zypper_third_party(ctx)
        read += files
        problems += [(ctx.show(p), f"repository {v}") for p, v in found]
    services = _extra_services(ctx)
    states: dict[str, str] = {}
    if services:
        try:
            states, _ = enabled_states(ctx.host, [u for u, _ in services])
        except ProbeError:
            states = {}
    service_ev = []
    for unit, (path, what) in services:
        state = states.get(unit)
        service_ev.append((ctx.show(path), f"{what}{', ' + state if state and state != 'not-found' else ''}"))
    repos = [v for _, v in problems]
    if not repos and not services:
        where = f"{len(read)} repository file(s)" if read else "no repository files"
        return passed(f"no third-party repositories ({where}) and no web server or DBMS services",
                      *[(ctx.show(p), "distribution repositories only") for p in read[:6]])
    parts = []
    if repos:
        parts.append(f"{len(repos)} third-party repositor{'y' if len(repos) == 1 else 'ies'}")
    if services:
        names = sorted({what.split(" (")[0] for _, (_, what) in services})
        parts.append("extra services: " + ", ".join(names))
    hints = []
    if repos:
        hints.append("remove or disable the third-party repositories listed")
    if services:
        units = " ".join(sorted(u for u, _ in services if not u.endswith("@.service")))
        hints.append(f"remove the extra services' packages (or at least: systemctl disable --now {units})")
    verdict = failed if ctx.params["strict"] else warned
    return verdict("not a minimal OS: " + "; ".join(parts), *problems, *service_ev,
                  hint="; ".join(hints) + " (VMmanager expects a freshly installed minimal OS)")
