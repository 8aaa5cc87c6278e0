"""systemd unit files and their state in a root.

Enablement comes from ``systemctl --root=DIR is-enabled`` (works offline and
without systemd as PID 1). Whether a unit runs needs a running systemd; when
there is none, the process table tells whether the daemon runs at all.
"""

from __future__ import annotations

from .errors import NeedsRoot, ProbeError, ToolMissing
from .host import Host
from .names import is_valid, unit_name

UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)


def unit_path(host: Host, unit: str) -> str | None:
    for d in UNIT_DIRS:
        p = f"{d}/{unit}"
        if host.exists(p) or host.readlink(p):
            return p
    return None


def systemd_running(host: Host) -> bool:
    """sd_booted(): /run/systemd/system exists on a live host."""
    return host.live and host.is_dir("/run/systemd/system")


# Units the catalogue asks about: prefetched in one systemctl call per run
# (only those whose unit file exists), before the catalogue is even imported.
KNOWN_UNITS = frozenset((
    # web servers and databases (os.minimal)
    "nginx.service", "apache2.service", "httpd.service", "lighttpd.service", "mysql.service",
    "mysqld.service", "mariadb.service", "postgresql.service", "mongod.service", "mongodb.service",
    "redis.service", "redis-server.service",
    *(f"postgresql-{v}.service" for v in range(9, 19)),
    "libvirtd.service", "libvirtd.socket", "virtqemud.service", "virtqemud.socket",
    "virtnetworkd.socket", "virtstoraged.socket", "virtnodedevd.socket", "virtsecretd.socket",
    "virtnwfilterd.socket", "virtinterfaced.socket", "virtlogd.socket", "virtlockd.socket",
    "nftables.service", "firewalld.service", "ufw.service", "netfilter-persistent.service",
    "iptables.service", "chronyd.service", "chrony.service", "systemd-timesyncd.service",
    "ntp.service", "ntpd.service", "ntpsec.service", "NetworkManager.service",
    "systemd-networkd.service", "systemd-resolved.service", "docker.service",
))


def enabled_states(host: Host, units: list[str]) -> tuple[dict[str, str], str]:
    """``is-enabled`` state of each unit whose file exists ('not-found' otherwise).

    Units of KNOWN_UNITS are asked in one call per run (the runner prefetches
    it); a check asking about them waits for that answer instead of spawning.
    """
    if all(u in KNOWN_UNITS for u in units):
        states, source = host.memo(("unit-states", "known"), lambda: _query_states(host, sorted(KNOWN_UNITS)))
    else:
        key = tuple(sorted(set(units)))
        states, source = host.memo(("unit-states", key), lambda: _query_states(host, key))
    return {u: states[u] for u in units}, source


def _query_states(host: Host, units) -> tuple[dict[str, str], str]:
    states = {u: "not-found" for u in units}
    # only unit names reach systemctl, after "--"; anything else has no unit file
    present = _with_unit_file(host, [u for u in units if is_valid(unit_name, u)])
    if not present:
        return states, "unit files under " + ", ".join(UNIT_DIRS[:4])
    argv = ["systemctl", f"--root={host.root}", "is-enabled", "--", *present]
    try:
        res = host.run(argv)
    except ToolMissing:
        return _states_from_links(host, present, states)
    lines = [line.strip() for line in res.stdout.splitlines() if line.strip()]
    if len(lines) != len(present):
        # a unit systemctl could not judge prints nothing on stdout: ask one by one
        lines = []
        for unit in present:
            one = host.run(["systemctl", f"--root={host.root}", "is-enabled", "--", unit])
            lines.append(one.stdout.strip().splitlines()[0] if one.stdout.strip() else "unknown")
    for unit, line in zip(present, lines):
        states[unit] = line
    return states, " ".join(argv)


def _with_unit_file(host: Host, units: list[str]) -> list[str]:
    """The units ``unit_path`` finds, from one listing of each unit directory
    instead of a stat and a readlink per unit and directory (~600 calls for
    KNOWN_UNITS); a directory that cannot be listed falls back to ``unit_path``."""
    names: set[str] = set()
    for d in UNIT_DIRS:
        try:
            names.update(host.listdir(d))
        except (NeedsRoot, ProbeError):
            return [u for u in units if unit_path(host, u)]
    return [u for u in units if u in names]


def _states_from_links(host: Host, present: list[str], states: dict[str, str]) -> tuple[dict[str, str], str]:
    """Without systemctl: masked = link to /dev/null, enabled = a link in a .wants/.requires dir."""
    wants = [d for d in host.listdir("/etc/systemd/system") if d.endswith((".wants", ".requires"))]
    for unit in present:
        if host.readlink(f"/etc/systemd/system/{unit}") == "/dev/null":
            states[unit] = "masked"
        elif any(host.readlink(f"/etc/systemd/system/{d}/{unit}") for d in wants):
            states[unit] = "enabled"
        else:
            states[unit] = "disabled"
    return states, "links under " + host.display("/etc/systemd/system") + " (systemctl is not installed here)"


def active_state(host: Host, unit: str) -> str | None:
    """'active', 'inactive', ... when systemd runs; None when it cannot be asked."""
    if not systemd_running(host) or not is_valid(unit_name, unit):
        return None
    res = host.run(["systemctl", "is-active", "--", unit])
    return res.stdout.strip() or None


def presets_enabling(host: Host, pattern_prefix: str) -> list[str]:
    """Preset lines ``enable <unit>`` for units starting with a prefix."""
    found = []
    for d in ("/etc/systemd/system-preset", "/usr/lib/systemd/system-preset", "/lib/systemd/system-preset"):
        for f in host.glob(d, "*.preset"):
            for line in (host.read_text(f) or "").splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "enable" and parts[1].startswith(pattern_prefix):
                    found.append(f"{f}: {line.strip()}")
    return found
