"""Packages: the virtualization stack and the admin tools a platform needs.

What is installed comes from the root's own package database (dpkg-query
--admindir / rpm --root --dbpath, see ``checks.pkgdb``); tools are found by
their binaries first, so a tool installed by hand counts too.
"""

from __future__ import annotations

from .. import names, pkgdb
from ..errors import ProbeError, ToolMissing
from ..model import failed, passed, skipped
from ..osrelease import OsInfo
from ..registry import Ctx, check
from ..virtstack import QEMU_DEBIAN, QEMU_SUSE

# QEMU system emulator package per architecture (Debian/Ubuntu, SUSE).
_QEMU_DEBIAN, _QEMU_SUSE = QEMU_DEBIAN, QEMU_SUSE

BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

# tool -> (binaries that prove it is there, {family: package}; "*" = every family)
TOOLS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "dmidecode": (("dmidecode",), {}),
    "python3": (("python3",), {}),
    "chrony": (("chronyd", "chronyc"), {}),
    "tpm2-tools": (("tpm2_getcap", "tpm2"), {"suse": "tpm2.0-tools"}),
    "kvm-ok": (("kvm-ok",), {"*": "cpu-checker"}),
    "cpu-checker": (("kvm-ok",), {}),
    "virsh": (("virsh",), {"debian": "libvirt-clients", "rhel": "libvirt-client", "suse": "libvirt-client"}),
    "virt-host-validate": (("virt-host-validate",),
                           {"debian": "libvirt-clients", "rhel": "libvirt-client", "suse": "libvirt-client"}),
    "nft": (("nft",), {"*": "nftables"}),
    "nftables": (("nft",), {}),
    "ip": (("ip",), {"*": "iproute2", "rhel": "iproute"}),
}

_FAMILY_NAMES = "Debian/Ubuntu, RHEL/AlmaLinux/Rocky/CentOS/Fedora/Amazon Linux and SUSE"


# ---- helpers shared with services and containers ------------------------


# apt-get's install arguments, here and in the fix (remediations/catalog/packages.py): the names
# and their dependencies, not their Recommends (a desktop, for the virtualization stack)
APT_INSTALL = ("install", "-y", "--no-install-recommends")


def install_command(os_info: OsInfo, names: list[str]) -> str | None:
    """The exact non-interactive install command of the root's distribution."""
    pm = os_info.package_manager
    pkgs = " ".join(names)
    if pm == "apt":
        return f"DEBIAN_FRONTEND=noninteractive apt-get {' '.join(APT_INSTALL)} {pkgs}"
    if pm in ("dnf", "yum"):
        return f"{pm} install -y {pkgs}"
    if pm == "zypper":
        return f"zypper install -y {pkgs}"
    return None


def describe_os(ctx: Ctx) -> str:
    info = ctx.facts.os
    if info.source is None:
        return "no /etc/os-release, /usr/lib/os-release or older *-release file"
    name = info.name or info.id or "unnamed"
    return f"{name} (ID={info.id or '?'}, from {ctx.show(info.source.split(' + ')[0])})"


def unknown_os(ctx: Ctx, what: str):
    info = ctx.facts.os
    ev = (ctx.show(info.source.split(" + ")[0]) if info.source else ctx.show("/etc/os-release"),
          f"ID={info.id}" if info.source else "missing")
    if info.source is None:
        return failed(f"unknown distribution: {describe_os(ctx)} in the root, so the names of {what} "
                      "are unknown", ev, hint="run kvmprep on (or --root at) an installed system")
    return failed(f"unknown distribution {describe_os(ctx)}: kvmprep knows the names of {what} only for "
                  f"{_FAMILY_NAMES}", ev,
                  hint=f"install {what} with this distribution's package manager, or give this check "
                       f"a packages: {{{info.id}: [...]}} list in a profile")


def query_installed(ctx: Ctx, names: list[str], what: str):
    """``(found, source, None)`` or ``(None, "", Outcome)`` explaining why nothing could be asked."""
    host = ctx.host
    kind = pkgdb.database_kind(host, ctx.facts.os.family)
    if kind is None:
        return None, "", skipped(
            f"no package database in the root: cannot tell whether {what} is installed",
            (ctx.show("/var/lib/dpkg/status"), "missing"),
            (", ".join(ctx.show(d) for d in pkgdb.RPM_DBPATHS[:2]), "no rpm database"))
    try:
        found, source = pkgdb.installed(host, kind, names)
    except ToolMissing as exc:
        return None, "", skipped(
            f"{exc.tool} is not installed on the machine kvmprep runs on, so the root's {kind} database "
            f"cannot be read", (exc.tool, "not found in PATH"),
            hint=f"install {exc.tool} where kvmprep runs (apt-get install -y {exc.tool} / dnf install -y {exc.tool})")
    except ProbeError as exc:
        repair = ("dpkg --configure -a; if /var/lib/dpkg/status is damaged, restore it from "
                  "/var/backups/dpkg.status.0" if kind == "dpkg" else "rpm --rebuilddb")
        return None, "", failed(f"the {kind} package database cannot be read: {exc.message}",
                                (exc.source, exc.message), hint=repair)
    return found, source, None


def find_binary(ctx: Ctx, names) -> str | None:
    return find_binary_in(ctx.host, names)


def find_binary_in(host, names) -> str | None:
    for name in names:
        for d in BIN_DIRS:
            p = f"{d}/{name}"
            if host.is_file(p):
                return p
    return None


# ---- packages.virtualization -------------------------------------------


# What Debian's QEMU/libvirt packages only *recommend* but a host uses: qemu-img (virt-install
# and libvirt's storage pools make disk images with it), dnsmasq (DHCP/DNS of the "default" NAT
# network libvirt-daemon-system defines and autostarts; it cannot start without it) and the UEFI
# firmware of the host's guests (UEFI guests, Secure Boot, Windows 11). EL's qemu-kvm and libvirt
# *require* their equivalents (qemu-img, dnsmasq, edk2-ovmf). kvmprep installs without Recommends
# (remediations/catalog/packages.py), so these are asked for by name.
_DEBIAN_RECOMMENDED_NEEDED = ("qemu-utils", "dnsmasq-base")
_UEFI_DEBIAN = {"x86_64": "ovmf", "i686": "ovmf", "aarch64": "qemu-efi-aarch64"}
# what each is for, in the fix's words ("a KVM host needs ...")
DEBIAN_ROLES = {"qemu-utils": "qemu-img (disk images)", "dnsmasq-base": "dnsmasq (libvirt's default network)",
                **{firmware: "UEFI firmware for its guests" for firmware in _UEFI_DEBIAN.values()}}


def virt_requirements(info: OsInfo, arch: str | None, bridge_utils: bool) -> list[tuple[str, ...]] | None:
    """Per requirement the accepted package names; the first one is what gets installed."""
    fam = info.family
    if fam == "debian":
        qemu = _QEMU_DEBIAN.get(arch or "")
        qemu_alts = (qemu, "qemu-kvm") if qemu else (*dict.fromkeys(_QEMU_DEBIAN.values()), "qemu-kvm")
        reqs = [qemu_alts, ("libvirt-daemon-system",), ("libvirt-clients",), ("virtinst",)]
        reqs += [(name,) for name in _DEBIAN_RECOMMENDED_NEEDED]
        firmware = _UEFI_DEBIAN.get(arch or "")
        if firmware or arch not in _QEMU_DEBIAN:  # an unknown architecture: any of them will do
            reqs.append((firmware,) if firmware else tuple(dict.fromkeys(_UEFI_DEBIAN.values())))
        if bridge_utils:
            reqs.append(("bridge-utils",))
        return reqs
    if fam == "rhel":
        reqs = [("qemu-kvm", "qemu-kvm-core", "qemu-kvm-ev", "qemu-kvm-rhev"),
                ("libvirt", "libvirt-daemon-kvm"), ("libvirt-client",), ("virt-install",)]
        # bridge-utils is gone from EL 8+ (ip/nmcli instead); EL 7 and Fedora ship it
        if bridge_utils and (info.package_manager == "yum" or info.id == "fedora"):
            reqs.append(("bridge-utils",))
        return reqs
    if fam == "suse":
        qemu = _QEMU_SUSE.get(arch or "")
        qemus = (qemu,) if qemu else tuple(dict.fromkeys(_QEMU_SUSE.values()))
        reqs = [("patterns-server-kvm_server", "qemu-kvm", *qemus), ("libvirt-daemon",),
                ("libvirt-client",), ("virt-install",)]
        if bridge_utils:
            reqs.append(("bridge-utils",))
        return reqs
    return None


def _override(ctx: Ctx) -> list[tuple[str, ...]] | None:
    return _override_from(ctx.params, ctx.facts.os)


def override_packages(params: dict, info: OsInfo) -> tuple[list[tuple[str, ...]] | None, list[str]]:
    """The profile's ``packages`` list for this distribution (its id first, then its
    family) as requirement groups ("a|b": alternatives) of valid package names, and
    one line per refused entry naming it and its key ("profile packages.debian:
    '-ox' is not a package name (...)"). None when the profile has no list here."""
    table = params.get("packages") or {}
    if not isinstance(table, dict):
        return None, []
    for key in (info.id, info.family):
        value = table.get(key) if key else None
        if isinstance(value, list) and value:
            groups: list[tuple[str, ...]] = []
            bad: list[str] = []
            for item in value:
                alts = [a.strip() for a in item.split("|") if a.strip()] if isinstance(item, str) else [item]
                good, refused = names.partition(names.package_name, alts, info.family)
                bad += [f"profile packages.{key}: {exc}" for exc in refused]
                if good:
                    groups.append(tuple(good))
            return groups, bad
    return None, []


def _override_from(params: dict, info: OsInfo) -> list[tuple[str, ...]] | None:
    return override_packages(params, info)[0]


def virtualization_requirements(facts, params: dict) -> list[tuple[str, ...]] | None:
    """What packages.virtualization asks for on this root: per requirement the
    accepted names (the first is what gets installed); None for an unknown
    distribution. ``params`` are the check's params (defaults merged). A profile's
    own list counts as given, less its invalid names (``override_packages``)."""
    info = facts.os
    override = _override_from(params, info)
    if override is not None:
        return override
    return virt_requirements(info, facts.cpu.arch, bool(params.get("bridge_utils", True)))


def missing_groups(reqs: list[tuple[str, ...]], found: dict) -> list[tuple[str, ...]]:
    """The requirements none of whose alternatives is installed."""
    return [alts for alts in reqs if not any(found.get(n) for n in alts)]


def missing_virtualization_packages(host, facts, params: dict) -> tuple[list[tuple[str, ...]] | None, str]:
    """The requirement groups packages.virtualization finds missing, asked of
    the root's package database: ``(groups, source)``. ``groups`` is None for
    an unknown distribution. Raises ToolMissing/ProbeError like pkgdb, and
    LookupError when the root has no package database at all."""
    reqs = virtualization_requirements(facts, params)
    if reqs is None:
        return None, ""
    kind = pkgdb.database_kind(host, facts.os.family)
    if kind is None:
        raise LookupError("no package database in the root")
    found, source = pkgdb.installed(host, kind, [n for alts in reqs for n in alts])
    return missing_groups(reqs, found), source


def _alts_text(alts: tuple[str, ...]) -> str:
    return alts[0] if len(alts) == 1 else f"{alts[0]} (or {', '.join(alts[1:])})"


@check(
    "packages.virtualization",
    title="QEMU/KVM, libvirt and virt-install packages",
    why="A KVM host needs the QEMU system emulator, the libvirt daemon and its clients (virsh) and "
        "virt-install; bridge-utils where the distribution still ships it. On Debian/Ubuntu also what "
        "those packages only recommend and a host uses: qemu-utils (qemu-img), dnsmasq-base (libvirt's "
        "default network) and the guests' UEFI firmware (ovmf).",
    source="QEMU/KVM installation guides; DaoCloud virtnest (qemu-kvm libvirt virt-install bridge-utils)",
    remediations=("install-virtualization-packages",),
    params={"packages": {}, "bridge_utils": True},
)
def virtualization_packages(ctx: Ctx):
    info = ctx.facts.os
    _, bad = override_packages(ctx.params, info)
    if bad:
        raise ProbeError("parameter packages", "; ".join(b[len("profile "):] for b in bad))
    reqs = virtualization_requirements(ctx.facts, ctx.params)
    if reqs is None:
        return unknown_os(ctx, "the QEMU/KVM and libvirt packages")
    extra = ["libvirt-bin"] if info.family == "debian" else []
    names = [n for alts in reqs for n in alts] + extra
    found, source, problem = query_installed(ctx, names, "QEMU/KVM and libvirt")
    if problem:
        return problem
    missing = missing_groups(reqs, found)
    have = []
    for alts in reqs:
        hit = next((n for n in alts if found.get(n)), None)
        if hit:
            have.append(f"{hit} {found[hit]}")
    ev_text = "; ".join(have + [f"{_alts_text(a)} not installed" for a in missing])
    ev = [(source, ev_text)]
    obsolete = ""
    if found.get("libvirt-bin"):
        obsolete = (f"; libvirt-bin {found['libvirt-bin']} is installed but obsolete "
                    "(split into libvirt-daemon-system and libvirt-clients)")
        ev.append((source, f"libvirt-bin {found['libvirt-bin']} (obsolete)"))
    where = f"{info.name or info.id}: family {info.family}, {info.package_manager}"
    if not missing:
        return passed(f"installed: {', '.join(have)}{obsolete}", *ev)
    to_install = [a[0] for a in missing]
    hint = install_command(info, to_install) or f"install {' '.join(to_install)} with the package manager"
    return failed(f"missing on {info.name or info.id}: {', '.join(_alts_text(a) for a in missing)}{obsolete}",
                  *ev, (ctx.show(info.source.split(' + ')[0]) if info.source else "os-release", where),
                  hint=hint)


# ---- packages.tools --------------------------------------------------------


def _tool_package(tool: str, family: str) -> str:
    table = TOOLS.get(tool, ((), {}))[1]
    return table.get(family) or table.get("*") or tool


@check(
    "packages.tools",
    title="Administration tools installed",
    why="Platforms call these tools on the node (VMmanager needs dmidecode and python3; "
        "Nova's TPM support needs tpm2-tools; chrony keeps the clock in sync).",
    source="VMmanager node requirements (dmidecode, python3); OpenStack Nova (tpm2-tools)",
    remediations=("install-tools",),
    params={"tools": ["dmidecode", "python3"]},
)
def tools_installed(ctx: Ctx):
    info = ctx.facts.os
    family = info.family
    tools, bad = profile_tools(ctx.params, family)
    if bad:
        raise ProbeError("parameter tools", "; ".join(str(b) for b in bad))
    if not tools:
        return passed("no tools asked for by the profile")
    present, missing, ev = [], [], []
    for tool in tools:
        binaries = TOOLS.get(tool, ((tool,), {}))[0]
        path = find_binary(ctx, binaries)
        if path:
            present.append(tool)
            ev.append((ctx.show(path), f"{tool}: present"))
        else:
            missing.append(tool)
    if missing:
        # a tool without the expected binary may still be installed as a package
        pkgs = {t: _tool_package(t, family) for t in missing}
        found, source, problem = query_installed(ctx, sorted(set(pkgs.values())), "the tools")
        for tool in list(missing):
            binaries = TOOLS.get(tool, ((tool,), {}))[0]
            looked = f"no {'/'.join(binaries)} in {', '.join(BIN_DIRS)}"
            if found and found.get(pkgs[tool]):
                missing.remove(tool)
                present.append(tool)
                ev.append((source, f"{tool}: package {pkgs[tool]} {found[pkgs[tool]]} installed ({looked})"))
            else:
                pkg_note = (f"; package {pkgs[tool]} not installed" if found is not None
                            else f"; package database not read: {problem.detail}" if problem else "")
                ev.append((ctx.show("/usr/bin"), f"{tool}: {looked}{pkg_note}"))
    if not missing:
        return passed(f"all present: {', '.join(tools)}", *ev)
    to_install = list(dict.fromkeys(_tool_package(t, family) for t in missing))
    hint = install_command(info, to_install) or f"install {' '.join(to_install)} with the package manager"
    return failed(f"missing: {', '.join(missing)}", *ev, hint=hint)


def profile_tools(params: dict, family: str | None) -> tuple[list[str], list[names.BadName]]:
    """The profile's ``tools`` whose package (the tool itself when kvmprep does not know
    it) is a valid package name for the family, and a BadName for each other one."""
    good, bad = [], []
    for tool in params.get("tools") or []:
        try:
            names.package_name(_tool_package(tool, family) if isinstance(tool, str) else tool, family)
        except names.BadName as exc:
            bad.append(exc if exc.name == tool else names.BadName(tool, "tool", f"its package {exc}"))
            continue
        good.append(tool)
    return list(dict.fromkeys(good)), bad


def tool_binaries(tool: str) -> tuple[str, ...]:
    return TOOLS.get(tool, ((tool,), {}))[0]


def tool_package(tool: str, family: str) -> str:
    """The package that brings ``tool`` on a distribution family."""
    return _tool_package(tool, family)


def missing_tools(host, facts, tools: list[str]) -> tuple[list[str], str | None]:
    """The tools packages.tools finds missing (no binary in BIN_DIRS and its
    package not installed), as ``(missing, problem)``; ``problem`` says why the
    package database could not be asked (the tools without a binary then count
    as missing, as in the check)."""
    missing = [t for t in tools if not find_binary_in(host, tool_binaries(t))]
    if not missing:
        return [], None
    family = facts.os.family
    pkgs = {t: _tool_package(t, family) for t in missing}
    kind = pkgdb.database_kind(host, family)
    if kind is None:
        return missing, "no package database in the root"
    try:
        found, _ = pkgdb.installed(host, kind, sorted(set(pkgs.values())))
    except (ToolMissing, ProbeError) as exc:
        return missing, str(getattr(exc, "message", None) or exc)
    return [t for t in missing if not found.get(pkgs[t])], None
