"""Names that reach a command: validated before they get there.

Profiles and images under ``--root`` are someone else's. A package name such
as ``-oDPkg::Pre-Invoke::=touch /x`` handed to ``apt-get install`` is an
option that runs a shell command; ``rpm -q --pipe CMD`` runs one too;
``foo-`` asks ``apt-get install`` to *remove* foo. Every validator here
returns the name unchanged when it is one, and raises ``BadName`` (a
ValueError) with a one-line reason otherwise. None accepts a name that
starts with ``-``, holds a blank, a control character, a shell
metacharacter or a ``/``, or is not a ``str`` at all.

    debian_package  Debian policy: [a-z0-9][a-z0-9+.-]+ (2+ characters), an
                    optional :arch ([a-z0-9][a-z0-9-]*); not ending in '-'
    rpm_package     [A-Za-z0-9_+.-], not starting with '-' or '.', not *.rpm
    package_name    by family: debian -> debian_package, rhel/suse ->
                    rpm_package, anything else -> both must accept it
    unit_name       systemd: PREFIX[@INSTANCE].TYPE, [A-Za-z0-9:_.\\-], <= 255
    user_name       shadow-utils: [A-Za-z0-9_.][A-Za-z0-9_.-]*$?, not all
    group_name      digits, not '.' or '..', <= 32 characters
    module_name     kernel module: [A-Za-z0-9_-], <= 55 characters
    hostname        RFC 1123: dot-separated labels of 1-63 letters, digits
                    and '-' (not at either end), <= 253 characters
    firewall_zone   firewalld: [A-Za-z0-9_-], <= 17 characters
    port            N/PROTO or N-M/PROTO, 1 <= N <= M <= 65535, PROTO one of
                    tcp, udp, sctp, dccp
    kernel_arg      NAME or NAME=VALUE: NAME [A-Za-z0-9_.-], VALUE
                    [A-Za-z0-9_.,:+=/-]

Pure standard library and cheap to import: patterns are plain strings,
compiled by ``re`` on first use.
"""

from __future__ import annotations

import re

__all__ = ["BadName", "debian_package", "rpm_package", "package_name", "unit_name", "user_name",
           "group_name", "module_name", "hostname", "firewall_zone", "port", "kernel_arg",
           "is_valid", "partition"]

UNIT_TYPES = ("service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer",
              "slice", "scope")
PROTOCOLS = ("tcp", "udp", "sctp", "dccp")


class BadName(ValueError):
    """Not a valid name of its kind; ``str()`` is one line: ``'x y' is not a unit name (contains a space)``."""

    def __init__(self, name: object, kind: str, why: str):
        self.name, self.kind, self.why = name, kind, why
        super().__init__(f"{show(name)} is not a {kind} ({why})")


def show(name: object, limit: int = 60) -> str:
    """``name`` quoted for a one-line message: repr (newlines escaped), cut to ``limit``."""
    text = repr(name)
    return text if len(text) <= limit else text[:limit - 4] + "...'"


def _basic(name: object, kind: str, max_len: int, allowed: str, first: str, words: str) -> str:
    """The checks every kind shares, each with its own reason; ``allowed`` and ``first`` are
    regex character-class bodies for every character and the first one."""
    if not isinstance(name, str):
        raise BadName(name, kind, "not a string")
    if not name:
        raise BadName(name, kind, "empty")
    if len(name) > max_len:
        raise BadName(name, kind, f"longer than {max_len} characters")
    if name[0] == "-":
        raise BadName(name, kind, "starts with '-': a command would read it as an option")
    bad = re.search(f"[^{allowed}]", name)
    if bad:
        c = bad.group(0)
        what = ("a space" if c == " " else "a newline" if c in "\r\n"
                else "a control character" if ord(c) < 32 or ord(c) == 127
                else "a non-ASCII character" if ord(c) > 127 else repr(c))
        raise BadName(name, kind, f"contains {what}; {words}")
    if not re.match(f"[{first}]", name):
        raise BadName(name, kind, f"starts with {name[0]!r}; {words}")
    return name


def debian_package(name: object) -> str:
    """A Debian package name (Debian policy 5.6.1), optionally ``name:arch``."""
    kind = "Debian package name"
    words = "Debian package names are lowercase letters, digits and + - ., with an optional :arch"
    _basic(name, kind, 255, "a-z0-9+.:-", "a-z0-9", words)
    base, colon, arch = name.partition(":")
    if len(base) < 2:
        raise BadName(name, kind, "shorter than 2 characters")
    if colon and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", arch):
        raise BadName(name, kind, f"{arch!r} is not an architecture")
    if base.endswith("-"):
        raise BadName(name, kind, "ends with '-': apt-get install would remove the package")
    return name


def rpm_package(name: object) -> str:
    """An RPM package name (what rpm -q, dnf, yum and zypper take as a plain name)."""
    kind = "package name"
    words = "RPM package names are letters, digits and _ + - ."
    _basic(name, kind, 255, "A-Za-z0-9_+.-", "A-Za-z0-9_+", words)
    if name.endswith(".rpm"):
        raise BadName(name, kind, "ends in .rpm: dnf would read it as a package file")
    return name


def package_name(name: object, family: str | None) -> str:
    """A package name for the distribution family (debian, rhel, suse); for any other
    family the name must be valid both as a Debian and as an RPM name."""
    if family == "debian":
        try:
            return debian_package(name)
        except BadName as exc:
            raise BadName(name, "package name", exc.why) from None
    if family in ("rhel", "suse"):
        return rpm_package(name)
    try:
        debian_package(name)
    except BadName as exc:
        raise BadName(name, "package name", exc.why) from None
    return rpm_package(name)


def unit_name(name: object) -> str:
    """A systemd unit name: ``prefix.type`` or ``prefix@instance.type`` (``prefix@.type``: a template)."""
    kind = "unit name"
    words = "unit names are letters, digits and : _ . - \\ @, ending in a unit type such as .service"
    _basic(name, kind, 255, "A-Za-z0-9:_.\\\\@-", "A-Za-z0-9:_.\\\\", words)
    prefix, dot, suffix = name.rpartition(".")
    if not dot or suffix not in UNIT_TYPES:
        raise BadName(name, kind, "no unit type such as .service or .socket at the end")
    unit, at, instance = prefix.partition("@")
    if not unit or "@" in instance:
        raise BadName(name, kind, words)
    return name


def _account(name: object, kind: str) -> str:
    words = f"{kind}s are letters, digits and _ . -, a final $ allowed, at most 32 characters"
    _basic(name, kind, 32, "A-Za-z0-9_.$-", "A-Za-z0-9_.", words)
    if "$" in name[:-1]:
        raise BadName(name, kind, f"'$' before the end; {words}")
    if name.isdigit():
        raise BadName(name, kind, "all digits: tools would read it as a numeric id")
    if name in (".", ".."):
        raise BadName(name, kind, "'.' and '..' are not names")
    return name


def user_name(name: object) -> str:
    """A user name as shadow-utils' useradd/usermod accept it."""
    return _account(name, "user name")


def group_name(name: object) -> str:
    """A group name as shadow-utils' groupadd/usermod -G accept it."""
    return _account(name, "group name")


def module_name(name: object) -> str:
    """A kernel module name (MODULE_NAME_LEN: at most 55 characters)."""
    return _basic(name, "kernel module name", 55, "A-Za-z0-9_-", "A-Za-z0-9_",
                  "module names are letters, digits, _ and -")


def hostname(name: object) -> str:
    """A host name (RFC 1123): labels of 1-63 letters, digits and '-' joined by dots, <= 253 in all."""
    kind = "host name"
    words = "host names are dot-separated labels of letters, digits and '-'"
    _basic(name, kind, 253, "A-Za-z0-9.-", "A-Za-z0-9", words)
    for label in name.split("."):
        if not label:
            raise BadName(name, kind, "an empty label: two dots, or a dot at either end")
        if len(label) > 63:
            raise BadName(name, kind, "a label longer than 63 characters")
        if label[0] == "-" or label[-1] == "-":
            raise BadName(name, kind, f"label {label!r} starts or ends with '-'")
    return name


def firewall_zone(name: object) -> str:
    """A firewalld zone name (firewalld allows at most 17 characters)."""
    return _basic(name, "firewalld zone name", 17, "A-Za-z0-9_-", "A-Za-z0-9_",
                  "zone names are letters, digits, _ and -")


def port(spec: object) -> str:
    """A port or range with its protocol: ``22/tcp``, ``5900-6900/tcp``."""
    kind = "port"
    words = "a port is N/tcp or N-M/udp; also sctp, dccp"
    _basic(spec, kind, 17, "0-9a-z/-", "0-9", words)
    m = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?/([a-z]+)", spec)
    if not m:
        raise BadName(spec, kind, words)
    lo, hi, proto = int(m.group(1)), int(m.group(2) or m.group(1)), m.group(3)
    if proto not in PROTOCOLS:
        raise BadName(spec, kind, f"protocol {proto!r} is not one of " + ", ".join(PROTOCOLS))
    if not 1 <= lo <= hi <= 65535:
        raise BadName(spec, kind, "ports are 1-65535, the first of a range not above the last")
    return spec


def kernel_arg(arg: object) -> str:
    """A kernel command-line argument kvmprep sets: ``name`` or ``name=value``, nothing a
    shell (GRUB's settings are sourced by grub-mkconfig) or the boot loader would split."""
    kind = "kernel argument"
    words = "a kernel argument is name=value of letters, digits and _ . , : + = / -"
    _basic(arg, kind, 255, "A-Za-z0-9_.,:+=/-", "A-Za-z0-9_", words)
    key = arg.partition("=")[0]
    if not key or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
        raise BadName(arg, kind, words)
    return arg


def is_valid(validator, name: object, *args) -> bool:
    """``validator(name, *args)`` as a bool."""
    try:
        validator(name, *args)
    except BadName:
        return False
    return True


def partition(validator, names, *args) -> tuple[list, list[BadName]]:
    """``(valid names in order, BadName for each refused one)``."""
    good, bad = [], []
    for name in names:
        try:
            good.append(validator(name, *args))
        except BadName as exc:
            bad.append(exc)
    return good, bad
