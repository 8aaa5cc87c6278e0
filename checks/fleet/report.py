"""One host's report, read and checked before any fleet check looks at it.

A report is someone else's file: it may be a YAML report, a truncated copy, a
JSON file of another tool, a report of an older kvmprep that lacks the CPU
flags, or hostile. ``load_report`` reads it as a regular file of bounded size
(``checks.files.read_regular``), parses it as JSON, and checks the type of every
field the fleet checks use; anything else is a ``BadReport`` naming the file and
the reason in one line (exit status 2). A fact the host itself could not read is
``{"error": why}`` in a report: that is valid, and that fact is unknown.
"""

from __future__ import annotations

import ipaddress
import json
import os

from .. import REPORT_FORMAT
from ..files import NotRegular, TooLarge, read_regular
from ..record import Record

# A report of 41 checks is ~45 KB; 4 MiB leaves room for thousands of addresses
# or guests, and stops a wrong file (an image, a log) early.
MAX_REPORT_BYTES = 4 << 20
STATUSES = ("pass", "warn", "fail", "skip", "error")


class BadReport(Exception):
    """A file that is not a usable kvmprep report: ``file: reason``."""

    def __init__(self, file: str, reason: str):
        super().__init__(f"{file}: {reason}")
        self.file, self.reason = file, reason


class CpuFacts(Record):
    def __init__(self, arch: str | None, vendor: str | None, model: str | None,
                 signature: tuple | None, flags: frozenset, virt_flags: frozenset, level: int | None):
        self.arch = arch
        self.vendor = vendor
        self.model = model
        self.signature = signature  # (family, model, stepping) or None
        self.flags = flags
        self.virt_flags = virt_flags
        self.level = level


class Package(Record):
    def __init__(self, name: str, version: str):
        self.name = name
        self.version = version


class HostReport(Record):
    """What the fleet checks use of one report. ``None`` = unknown (``unreadable``
    says why, when the host said so)."""

    def __init__(self, file: str, hostname: str | None, profile: str | None, ready: bool,
                 blocking: list[str], statuses: dict[str, str], kernel: str | None,
                 os: tuple | None, cpu: CpuFacts | None, packages: dict | None,
                 addresses: list | None, management: tuple | None, machine_id: str | None,
                 unreadable: dict[str, str]):
        self.file = file
        self.name = hostname or os_path_stem(file)  # made unique by load_reports
        self.hostname = hostname
        self.profile = profile
        self.ready = ready
        self.blocking = blocking
        self.statuses = statuses  # check id -> status, in the report's order
        self.kernel = kernel
        self.os = os  # (id, version, family)
        self.cpu = cpu
        self.packages = packages  # {"qemu": Package|None, "libvirt": Package|None}
        self.addresses = addresses  # [(interface|None, address)], normalised
        self.management = management  # (interface|None, address)
        self.machine_id = machine_id
        self.unreadable = unreadable  # section -> the host's own reason


def os_path_stem(path: str) -> str:
    base = os.path.basename(path)
    return base[:-5] if base.endswith(".json") else base


def load_reports(paths: list[str]) -> list[HostReport]:
    """Every report, in the order given; the first bad one raises BadReport.
    Display names are the hostnames, with the file added where two are equal.

    Each document is reduced to its HostReport as soon as it is parsed, and the
    cyclic garbage collector is off meanwhile: parsing creates ~2000 containers
    a report, none of them cyclic, and with it on a thousand reports parse
    ~40% slower (it rescans what the earlier ones left)."""
    import gc

    seen: dict[object, str] = {}
    reports = []
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path in paths:
            try:
                st = os.stat(path)
                key: object = (st.st_dev, st.st_ino)
            except OSError:
                key = path  # load_report says what is wrong with it
            if key in seen:
                raise BadReport(path, f"given twice (also as {seen[key]})")
            seen[key] = path
            reports.append(load_report(path))
    finally:
        if was_enabled:
            gc.enable()
    counts: dict[str, int] = {}
    for r in reports:
        counts[r.name] = counts.get(r.name, 0) + 1
    for r in reports:
        if counts[r.name] > 1:
            r.name = f"{r.name} ({r.file})"
    return reports


def load_report(path: str) -> HostReport:
    try:
        data = read_regular(path, cap=MAX_REPORT_BYTES)
    except FileNotFoundError:
        raise BadReport(path, "no such file") from None
    except TooLarge:
        raise BadReport(path, f"larger than {MAX_REPORT_BYTES >> 20} MiB: not a kvmprep report") from None
    except NotRegular as exc:
        raise BadReport(path, f"{exc.strerror}, not a report file") from None
    except OSError as exc:
        raise BadReport(path, f"cannot be read: {exc.strerror or exc}") from None
    if not data.strip():
        raise BadReport(path, "empty file, not a kvmprep report")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        hint = ""
        if data.lstrip()[:1] not in (b"{", b"["):
            hint = " (a YAML or table report? write it with: kvmprep check --format json)"
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise BadReport(path, f"not JSON{where}{hint}") from None
    return parse_report(path, doc)


def parse_report(path: str, doc: object) -> HostReport:
    """A parsed JSON document, checked field by field (BadReport otherwise)."""
    v = _Validator(path)
    if not isinstance(doc, dict):
        raise BadReport(path, f"not a kvmprep report (a JSON {_kind(doc)}, not an object)")
    tool = doc.get("tool")
    if not isinstance(tool, dict) or tool.get("name") != "kvmprep":
        raise BadReport(path, "not a kvmprep report (no tool.name \"kvmprep\")")
    version = tool.get("version") if isinstance(tool.get("version"), str) else "?"
    fmt = doc.get("format")
    if fmt is None:
        raise BadReport(path, f"written by kvmprep {version} before report format 1: it lacks the CPU flags, "
                              "package versions and addresses fleets compare; run kvmprep check --format json "
                              "again with this kvmprep")
    if not isinstance(fmt, int) or isinstance(fmt, bool):
        raise BadReport(path, f"format: a number, got {_short(fmt)}")
    if fmt > REPORT_FORMAT:
        raise BadReport(path, f"report format {fmt} (kvmprep {version}) is newer than this kvmprep reads "
                              f"({REPORT_FORMAT}): use a kvmprep as new as the hosts'")
    if fmt < 1:
        raise BadReport(path, f"report format {fmt} is not one kvmprep wrote")

    host = v.mapping(doc, "host")
    summary = v.mapping(doc, "summary")
    ready = summary.get("ready")
    if not isinstance(ready, bool):
        v.fail("summary.ready", "true or false", ready)
    blocking = v.strings(summary, "blocking", "summary.blocking", optional=True) or []
    profile = doc.get("profile")
    profile_name = profile.get("name") if isinstance(profile, dict) and isinstance(profile.get("name"), str) else None

    checks = doc.get("checks")
    if not isinstance(checks, list):
        v.fail("checks", "a list", checks)
    statuses: dict[str, str] = {}
    for i, c in enumerate(checks):
        if not isinstance(c, dict):
            v.fail(f"checks[{i}]", "an object", c)
        cid, status = c.get("id"), c.get("status")
        if not isinstance(cid, str) or not cid:
            v.fail(f"checks[{i}].id", "a check id", cid)
        if status not in STATUSES:
            v.fail(f"checks[{i}].status", "one of " + ", ".join(STATUSES), status)
        statuses[cid] = status

    unreadable: dict[str, str] = {}

    def section(name: str):
        """The host section ``name``: its value, or None when the host could
        not read it (recorded in ``unreadable``)."""
        value = host.get(name)
        if isinstance(value, dict) and set(value) == {"error"}:
            unreadable[name] = str(value["error"])
            return None
        return value

    hostname = section("hostname")
    if hostname is not None and not isinstance(hostname, str):
        v.fail("host.hostname", "a string", hostname)
    machine_id = section("machine_id")
    if machine_id is not None and not isinstance(machine_id, str):
        v.fail("host.machine_id", "a string", machine_id)

    kernel = None
    k = section("kernel")
    if k is not None:
        k = v.mapping(host, "kernel", "host.kernel")
        kernel = v.optional_str(k, "release", "host.kernel.release")

    os_facts = None
    o = section("os")
    if o is not None:
        o = v.mapping(host, "os", "host.os")
        os_facts = tuple(v.optional_str(o, key, f"host.os.{key}") for key in ("id", "version", "family"))

    return HostReport(
        file=path, hostname=hostname or None, profile=profile_name, ready=ready, blocking=blocking,
        statuses=statuses, kernel=kernel, os=os_facts, cpu=_cpu(v, section("cpu")),
        packages=_packages(v, section("packages")), addresses=_addresses(v, section("network")),
        management=_management(v, section("network")),
        machine_id=machine_id.lower() if machine_id else None, unreadable=unreadable)


def _cpu(v: "_Validator", c) -> CpuFacts | None:
    if c is None:
        return None
    if not isinstance(c, dict):
        v.fail("host.cpu", "an object", c)
    flags = v.strings(c, "flags", "host.cpu.flags")
    level = c.get("x86_64_level")
    if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
        v.fail("host.cpu.x86_64_level", "a number or null", level)
    sig = c.get("signature")
    signature = None
    if sig is not None:
        if not isinstance(sig, dict) or not all(x is None or (isinstance(x, int) and not isinstance(x, bool))
                                                for x in sig.values()):
            v.fail("host.cpu.signature", "an object of numbers", sig)
        signature = (sig.get("family"), sig.get("model"), sig.get("stepping"))
    return CpuFacts(arch=v.optional_str(c, "arch", "host.cpu.arch"),
                    vendor=v.optional_str(c, "vendor", "host.cpu.vendor"),
                    model=v.optional_str(c, "model", "host.cpu.model"), signature=signature,
                    flags=frozenset(flags),
                    virt_flags=frozenset(v.strings(c, "virt_flags", "host.cpu.virt_flags", optional=True) or ()),
                    level=level)


def _packages(v: "_Validator", p) -> dict | None:
    if p is None:
        return None
    if not isinstance(p, dict):
        v.fail("host.packages", "an object", p)
    out = {}
    for key in ("qemu", "libvirt"):
        item = p.get(key)
        if item is None:
            out[key] = None
            continue
        if not (isinstance(item, dict) and isinstance(item.get("package"), str)
                and isinstance(item.get("version"), str)):
            v.fail(f"host.packages.{key}", "null or {\"package\": name, \"version\": version}", item)
        out[key] = Package(item["package"], item["version"])
    return out


def _address(v: "_Validator", item, where: str) -> tuple:
    if not isinstance(item, dict):
        v.fail(where, "an object", item)
    iface, addr = item.get("interface"), item.get("address")
    if iface is not None and not isinstance(iface, str):
        v.fail(f"{where}.interface", "a string or null", iface)
    try:
        return iface, str(ipaddress.ip_address(addr))  # one spelling per address
    except ValueError:
        v.fail(f"{where}.address", "an IP address", addr)


def _addresses(v: "_Validator", n) -> list | None:
    if n is None:
        return None
    if not isinstance(n, dict):
        v.fail("host.network", "an object", n)
    items = n.get("addresses")
    if not isinstance(items, list):
        v.fail("host.network.addresses", "a list", items)
    return [_address(v, item, f"host.network.addresses[{i}]") for i, item in enumerate(items)]


def _management(v: "_Validator", n) -> tuple | None:
    if not isinstance(n, dict) or n.get("management") is None:
        return None
    return _address(v, n["management"], "host.network.management")


class _Validator:
    """Raises BadReport naming the field, what it must be and what it is."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, expected: str, got) -> None:
        raise BadReport(self.path, f"{where}: {expected}, got {_short(got)}")

    def mapping(self, obj: dict, key: str, where: str | None = None) -> dict:
        value = obj.get(key)
        if not isinstance(value, dict):
            self.fail(where or key, "an object", value)
        return value

    def optional_str(self, obj: dict, key: str, where: str) -> str | None:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(where, "a string or null", value)
        return value

    def strings(self, obj: dict, key: str, where: str, optional: bool = False) -> list | None:
        value = obj.get(key)
        if value is None and optional:
            return None
        # set(map(type, ...)): the type of each of ~150 CPU flags, at C speed
        if not isinstance(value, list) or not set(map(type, value)) <= {str}:
            self.fail(where, "a list of strings", value)
        return value


def _kind(value) -> str:
    return {list: "array", str: "string", int: "number", float: "number", bool: "boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _short(value, limit: int = 60) -> str:
    text = "missing" if value is None else json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."
