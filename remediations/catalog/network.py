"""Network: the host's name in /etc/hosts, NetworkManager's hands off resolv.conf,
the platform's ports in the host firewall.

Nothing here restarts networking, touches an interface or changes a firewall's
default policy: only files are written and allow rules added.
"""

from __future__ import annotations

import ipaddress
import re

from checks import firewall as fw
from checks.catalog import net as netcheck
from checks.model import Status
from checks.names import BadName, firewall_zone, is_valid, port, show
from checks.names import hostname as host_name
from checks.netconfig import parse_ini

from ..actions import RunCommand
from ..helpers import check_ctx, text_for_edit, write_file
from ..registry import PlanCtx, Proposal, nothing, remediation

HOSTS = "/etc/hosts"


# ---- add-hosts-entry -------------------------------------------------------------

def _hosts_line_parts(raw: str):
    """(ip, names lowercased) of one /etc/hosts line, or None."""
    parts = raw.split("#", 1)[0].split()
    if len(parts) < 2:
        return None
    try:
        ip = ipaddress.ip_address(parts[0].split("%", 1)[0])
    except ValueError:
        return None
    return ip, [p.lower() for p in parts[1:]]


def _drop_names(raw: str, names: set[str]) -> str:
    """The line without ``names`` (its address, other names, spacing and comment kept)."""
    body, hash_, comment = raw.partition("#")
    eol = ""
    if not hash_:
        stripped = body.rstrip("\r\n")
        body, eol = stripped, body[len(stripped):]
    for n in names:
        body = re.sub(r"[ \t]+" + re.escape(n) + r"(?=[ \t]|$)", "", body, flags=re.I)
    return body + hash_ + comment + eol


def hosts_edit(text: str | None, ip: str, names: list[str], wanted: set[str]) -> tuple[str, list[str]]:
    """New /etc/hosts content mapping ``names`` to ``ip`` first, and notes for the admin."""
    notes: list[str] = []
    if text is None:
        return ("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
                f"{ip} {' '.join(names)}\n"), notes
    lines = text.splitlines(keepends=True)
    addr = ipaddress.ip_address(ip)
    # 1. the name off 127.x lines that name something else too (localhost stays)
    for i, raw in enumerate(lines):
        got = _hosts_line_parts(raw)
        if got and got[0].version == 4 and got[0].is_loopback and wanted & set(got[1]) and set(got[1]) - wanted:
            lines[i] = _drop_names(raw, wanted)
    # 2. the host's own line before any other line that names it
    mine = block = None
    for i, raw in enumerate(lines):
        got = _hosts_line_parts(raw)
        if not got or not wanted & set(got[1]):
            continue
        if got[0] == addr:
            mine = i if mine is None else mine
        elif block is None:
            block = i
            if not got[0].is_loopback:
                notes.append(f"line {i + 1} ('{raw.strip()}') maps the name to {got[0]}, not an address of this "
                             "host: left in place below the new line; remove it if it is stale")
    if mine is not None and (block is None or block > mine):
        return "".join(lines), notes
    if mine is not None:
        line = lines.pop(mine)  # the host's own line, moved up unchanged
        line = line if line.endswith("\n") else line + "\n"
    else:
        line = f"{ip} {' '.join(names)}\n"
    if block is not None:
        lines.insert(block, line)
    else:
        loops = [i for i, raw in enumerate(lines)
                 if (g := _hosts_line_parts(raw)) and g[0].version == 4 and g[0].is_loopback]
        at = loops[-1] + 1 if loops else len(lines)
        if at > 0 and not lines[at - 1].endswith("\n"):
            lines[at - 1] += "\n"
        lines.insert(at, line)
    return "".join(lines), notes


@remediation(
    "add-hosts-entry",
    title="Map the hostname to this host's address in /etc/hosts",
    fixes=("net.hosts-entry",),
    description="Add '<ip> <fqdn> <short>' for the default-route interface's address to /etc/hosts "
                "before any loopback line naming the host, and take the name off a 127.x line that "
                "also names something else. Every other line is kept.",
)
def add_hosts_entry(ctx: PlanCtx) -> Proposal:
    cctx = check_ctx(ctx, "net.hosts-entry")
    name = (ctx.facts.hostname or "").lower().rstrip(".")
    if not name or name in netcheck._BAD_HOSTNAMES:
        return nothing(f"no real hostname ({name or 'none'}): set one first (see net.hostname)")
    try:  # one line, one name: nothing else gets into /etc/hosts
        host_name(name)
    except BadName as exc:
        where = "the running system's hostname" if ctx.host.live else ctx.host.display("/etc/hostname")
        return nothing(f"{where}: {exc}: {HOSTS} not changed (see net.hostname)")
    outcome = netcheck.net_hosts_entry(cctx)
    if outcome.status is Status.PASS:
        return nothing(outcome.detail)
    ip = netcheck._primary_ip(cctx)
    if ip is None:
        return nothing("cannot tell this host's address (no default route and no static address configured): "
                       f"add '<ip> {name}' to /etc/hosts by hand")
    short = name.split(".", 1)[0]
    domain = None if "." in name else netcheck._search_domain(cctx)
    fqdn = name if "." in name else (f"{short}.{domain}" if domain else None)
    notes: list[str] = []
    try:
        host_name(fqdn or short)
    except BadName as exc:  # the domain comes from the root's resolv.conf
        notes.append(f"search domain in {ctx.host.display('/etc/resolv.conf')}: {exc}: only {short} is added")
        fqdn = None
    names = [fqdn, short] if fqdn else [short]
    text = text_for_edit(ctx, HOSTS)
    content, edit_notes = hosts_edit(text, ip, names, {name, short, *([fqdn] if fqdn else [])})
    action = write_file(ctx, HOSTS, content, why=f"other hosts and libvirt resolve {name} to {ip}, "
                                                 "not to a loopback address")
    if action is None:
        return nothing(f"{HOSTS} already maps {name} to {ip} first")
    return Proposal(actions=[action], notes=notes + edit_notes)


# ---- networkmanager-dns-none -------------------------------------------------------

NM_DROPIN_DIR = "/etc/NetworkManager/conf.d"
NM_DROPIN_NAMES = ("90-kvmprep-dns.conf", "99-kvmprep-dns.conf")
NM_DROPIN = "# written by kvmprep: NetworkManager leaves /etc/resolv.conf alone\n[main]\ndns=none\n"


def _nm_dropins(ctx: PlanCtx) -> dict[str, str]:
    """Effective conf.d file name -> host path (/etc beats /run beats /usr/lib)."""
    by_name: dict[str, str] = {}
    for d in netcheck.NM_CONF_DIRS:
        for p in ctx.host.glob(d, "*.conf"):
            by_name[p.rsplit("/", 1)[1]] = p
    return by_name


@remediation(
    "networkmanager-dns-none",
    title="Stop NetworkManager from rewriting /etc/resolv.conf (dns=none)",
    fixes=("net.dns",),
    description="Write /etc/NetworkManager/conf.d/90-kvmprep-dns.conf with [main] dns=none (a drop-in read "
                "after NetworkManager.conf); /etc/resolv.conf itself is left as it is. NetworkManager picks it "
                "up on a reload; nothing is restarted.",
)
def networkmanager_dns_none(ctx: PlanCtx) -> Proposal:
    cctx = check_ctx(ctx, "net.dns")
    host = ctx.host
    if not netcheck._nm_present(cctx):
        return nothing("NetworkManager is not installed: nothing rewrites /etc/resolv.conf through it")
    merged, _ = netcheck._nm_main(cctx)
    value, source = merged.get("dns", ("default", ""))
    if value == "none":
        return nothing(f"NetworkManager already leaves DNS alone (dns=none in {host.display(source)})")
    dropins = _nm_dropins(ctx)
    name, later = None, []
    for cand in NM_DROPIN_NAMES:
        later = [p for n, p in sorted(dropins.items()) if n > cand
                 and "dns" in parse_ini(host.read_text(p) or "").get("main", {})]
        if not later:
            name = cand
            break
    if name is None:
        return nothing(f"{host.display(later[-1])} sets [main] dns= and is read after any file kvmprep would add: "
                       "set dns=none there by hand")
    path = f"{NM_DROPIN_DIR}/{name}"
    action = write_file(ctx, path, NM_DROPIN,
                        why=f"NetworkManager manages DNS now (dns={value}) and rewrites /etc/resolv.conf; "
                            "a drop-in wins over NetworkManager.conf")
    if action is None:
        return nothing(f"{host.display(path)} already says dns=none")
    notes = []
    if host.live:
        notes.append("NetworkManager reads the new setting on `systemctl reload NetworkManager` (or "
                     "`nmcli general reload conf`): a reload keeps every connection up; kvmprep does not "
                     "reload or restart networking itself")
    else:
        notes.append("offline root: NetworkManager reads the setting when it starts")
    link = host.readlink("/etc/resolv.conf")
    servers = netcheck._nameservers(host.read_text("/etc/resolv.conf") or "")
    if link and ("NetworkManager" in link or "/run/" in link):
        notes.append(f"/etc/resolv.conf is a link to {link}, a file generated at run time: replace it with a "
                     "regular file listing your nameservers (kvmprep does not touch it)")
    elif servers:
        notes.append(f"/etc/resolv.conf keeps its nameservers ({', '.join(servers)}): kvmprep does not touch it, "
                     "and NetworkManager stops rewriting it")
    else:
        notes.append("/etc/resolv.conf lists no nameserver: add yours (kvmprep does not touch it), "
                     "NetworkManager no longer will")
    return Proposal(actions=[action], notes=notes)


# ---- open-firewall-ports -------------------------------------------------------------

def _closed_ports(cctx) -> tuple[str | None, object, str | None, list, list[str], str | None]:
    """Like the net.firewall-ports check: (kind, ruleset, zone, closed PortSpecs, undecided, problem)."""
    host = cctx.host
    specs = [p for p in (fw.parse_port_spec(s) for s in cctx.params["ports"] or []) if p]
    if not specs:
        return None, None, None, [], [], "no ports to open (the profile lists none)"
    zone = None
    fwd_on, _ = netcheck._unit_enabled(cctx, "firewalld.service")
    fwd_running = host.live and bool(cctx.facts.running("firewalld"))
    if fwd_on or fwd_running:
        zone, _ = fw.firewalld_default_zone(host)
        up = netcheck._uplink(cctx)
        if up:
            bound = fw.firewalld_zone_of_iface(host, up[0])
            if not bound:
                from checks import netinfo
                from checks.netconfig import read_netconfig

                for c in read_netconfig(host).for_iface(up[0], netinfo.mac_address(host, up[0])):
                    if c.zone:
                        bound = c.zone
                        break
            zone = bound or zone
        rs = fw.firewalld_ruleset(host, zone)
    elif fw.ufw_enabled(host)[0]:
        rs = fw.ufw_ruleset(host)
    elif host.live:
        if not netcheck._tool_in_root(cctx, "nft", "iptables", "iptables-legacy", "iptables-nft"):
            return None, None, None, [], [], "no host firewall filters incoming traffic"
        rs = netcheck._runtime_ruleset(cctx)
        if not isinstance(rs, fw.Ruleset):
            return None, None, None, [], [], rs.detail
    else:
        rs = netcheck._offline_ruleset(cctx, [])
        if rs is None:
            return None, None, None, [], [], "no host firewall service is enabled"
    closed, unknown = [], []
    for spec in specs:
        states = fw.judge(rs, spec)
        closed.extend(fw.PortSpec(a, b, spec.proto) for a, b in states[fw.CLOSED])
        if states[fw.UNKNOWN]:
            unknown.append(fw.ranges_text(states[fw.UNKNOWN], spec.proto))
    return rs.kind, rs, zone, closed, unknown, None


def _fwd_port(s: fw.PortSpec) -> str:
    return f"{s.lo}-{s.hi}/{s.proto}" if s.lo != s.hi else s.text


def _ufw_port(s: fw.PortSpec) -> str:
    return f"{s.lo}:{s.hi}/{s.proto}" if s.lo != s.hi else s.text


def zone_xml_with_ports(text: str, specs: list[fw.PortSpec]) -> str | None:
    """A firewalld zone file with <port/> elements added before its closing </zone> (on lines of
    their own when </zone> has its own line); None when there is no </zone>."""
    end = text.rfind("</zone>")
    if end < 0:
        return None
    elems = [f'<port port="{_fwd_port(s).split("/")[0]}" protocol="{s.proto}"/>' for s in specs]
    line_start = text.rfind("\n", 0, end) + 1
    if text[line_start:end].strip():
        return text[:end] + "".join(elems) + text[end:]  # a zone written on one line
    indent = next((m.group(1) for m in re.finditer(r"(?m)^([ \t]+)<(?:service|port|short)\b", text)), "  ")
    eol = "\r\n" if text[:end].endswith("\r\n") else "\n"
    return text[:line_start] + "".join(f"{indent}{e}{eol}" for e in elems) + text[line_start:]


@remediation(
    "open-firewall-ports",
    title="Let the platform's ports through the host firewall",
    fixes=("net.firewall-ports",),
    description="Adds allow rules for the ports the check found closed: firewalld (runtime and permanent, "
                "or the zone file of an offline root) or ufw. Raw nftables/iptables rules are not edited: "
                "the exact command is given instead. The default policy is never changed.",
)
def open_firewall_ports(ctx: PlanCtx) -> Proposal:
    cctx = check_ctx(ctx, "net.firewall-ports")
    host = ctx.host
    kind, rs, zone, closed, unknown, problem = _closed_ports(cctx)
    refused = [f"profile ports: {show(s)} is not a port (N/tcp or N-M/udp): not opened"
               for s in cctx.params["ports"] or [] if fw.parse_port_spec(s) is None]
    if problem:
        return nothing("; ".join([problem] + refused))
    if kind == "firewalld":
        try:  # a zone name, never an option or a path (the offline edit writes zones/<zone>.xml)
            firewall_zone(zone)
        except BadName as exc:
            conf = host.display(f"{fw.FIREWALLD_ETC}/firewalld.conf")
            return nothing(f"firewalld zone of this host (DefaultZone in {conf} or the uplink's zone): {exc}: "
                           "no port opened")
    closed = [s for s in closed if is_valid(port, _fwd_port(s))]
    undecided = f"; cannot decide statically for {', '.join(unknown)} (left as they are)" if unknown else ""
    if not closed:
        return nothing("; ".join([f"{kind} already lets in every port the profile lists{undecided}"] + refused))
    shown = ", ".join(s.text for s in closed)
    notes = refused + ([f"cannot decide statically whether {', '.join(unknown)} get through: not changed"]
                       if unknown else [])
    ssh = host.env.get("SSH_CONNECTION")
    if ssh:
        notes.append(f"connected over SSH ({ssh}): kvmprep only adds allow rules, never changes the default "
                     "policy and does not reload the firewall, so this session stays up")
    why = f"{shown} closed; the platform needs them (consoles, TLS, migration)"
    if kind == "firewalld":
        adds = [f"--add-port={_fwd_port(s)}" for s in closed]
        removes = [f"--remove-port={_fwd_port(s)}" for s in closed]
        running = host.live and bool(ctx.facts.running("firewalld"))
        if running:
            notes.append("firewalld gets the ports in its runtime and its permanent configuration, so no "
                         "`firewall-cmd --reload` is needed (a reload keeps established connections, but drops "
                         "runtime-only rules)")
            return Proposal(actions=[
                RunCommand(argv=["firewall-cmd", f"--zone={zone}", *adds],
                           undo_argv=["firewall-cmd", f"--zone={zone}", *removes], runtime=True,
                           title=f"open {shown} in firewalld zone {zone} now", why=why),
                RunCommand(argv=["firewall-cmd", "--permanent", f"--zone={zone}", *adds],
                           undo_argv=["firewall-cmd", "--permanent", f"--zone={zone}", *removes], runtime=True,
                           title=f"open {shown} in firewalld zone {zone} permanently", why=why),
            ], notes=notes)
        if host.live:
            notes.append("firewalld is enabled but not running: the permanent configuration is edited and "
                         "applies when it starts")
            return Proposal(actions=[RunCommand(
                argv=["firewall-offline-cmd", f"--zone={zone}", *adds],
                undo_argv=["firewall-offline-cmd", f"--zone={zone}", *removes], runtime=True,
                title=f"open {shown} in firewalld zone {zone} (permanent configuration)", why=why)], notes=notes)
        src = fw.firewalld_file(host, "zones", zone)
        path = f"{fw.FIREWALLD_ETC}/zones/{zone}.xml"
        text = text_for_edit(ctx, src) if src else None
        content = zone_xml_with_ports(text, closed) if text is not None else None
        if content is None:
            return nothing(f"cannot edit firewalld zone {zone} ({host.display(src or path)} missing or without "
                           f"</zone>): run inside the system: {fw.open_hint('firewalld', closed, None, zone)}")
        notes.append("offline root: the zone file is edited (what firewall-offline-cmd would do); firewalld "
                     "applies it when it starts")
        action = write_file(ctx, path, content, why=why)
        return Proposal(actions=[action], notes=notes) if action else nothing(f"zone {zone} already lists {shown}")
    if kind == "ufw":
        if not host.live:
            return nothing(f"offline root with ufw: ufw keeps its rules in its own format; run inside the "
                           f"system: {fw.open_hint('ufw', closed)}")
        return Proposal(actions=[
            RunCommand(argv=["ufw", "allow", _ufw_port(s)], undo_argv=["ufw", "delete", "allow", _ufw_port(s)],
                       runtime=True, title=f"ufw: allow {s.text}", why=why)
            for s in closed], notes=notes)
    culprit = fw.evaluate(rs, closed[0].proto, closed[0].lo)[1]
    return nothing(f"{kind} rules ({rs.source or kind}) are not edited by kvmprep (they belong to whatever loads "
                   f"them): run {fw.open_hint(kind, closed, culprit, zone)}{undecided}")
