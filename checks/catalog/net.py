"""Network: hostname, /etc/hosts, DNS, static uplink, gateway, interface names, firewall, libvirt subnet.

Everything is judged passively, from files under the root and the kernel's
tables in /proc: no check sends a packet, resolves a name or connects anywhere.
"""

from __future__ import annotations

import ipaddress
import re

from .. import firewall as fw
from .. import netinfo
from ..errors import NeedsRoot, ProbeError, ToolMissing
from ..model import failed, passed, skipped, warned
from ..netconfig import DHCP, STATIC, IfaceConfig, parse_ini, read_netconfig
from ..registry import Ctx, check
from ..units import enabled_states, unit_path

_BAD_HOSTNAMES = ("localhost", "localhost.localdomain", "localhost6", "localhost6.localdomain6",
                  "localhost4", "localhost4.localdomain4", "(none)", "")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z"  # patterns are compiled on first use, not at import


# ---- shared helpers ---------------------------------------------------------------

def _has_proc_routes(ctx: Ctx) -> bool:
    return ctx.host.exists("/proc/net/route")


def _uplink(ctx: Ctx) -> tuple[str, str | None] | None:
    """(interface, gateway) of the IPv4 default route, else the IPv6 one; None without one."""
    for r in netinfo.default_routes(ctx.host):
        return r.iface, (str(r.gateway) if r.gateway else None)
    for r in netinfo.default_routes6(ctx.host):
        return r.iface, (str(r.gateway) if r.gateway else None)
    return None


def _route_ev(ctx: Ctx):
    defaults = netinfo.default_routes(ctx.host)
    if defaults:
        r = defaults[0]
        return (ctx.show("/proc/net/route"), f"default via {r.gateway or '(none)'} dev {r.iface}")
    return (ctx.show("/proc/net/route"), "no IPv4 default route")


def _primary_ip(ctx: Ctx) -> str | None:
    """The IPv4 address of the default-route interface (live tables, else its static config)."""
    up = _uplink(ctx)
    if up:
        addrs = netinfo.iface_ipv4(ctx.host, up[0])
        if addrs:
            return str(addrs[0].ip)
    nc = read_netconfig(ctx.host)
    for c in nc.with_gateway + nc.configs:
        if c.method == STATIC and c.networks and c.name != "lo":
            return str(c.networks[0].ip)
    return None


def _search_domain(ctx: Ctx) -> str | None:
    for line in (ctx.host.read_text("/etc/resolv.conf") or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("domain", "search") and "." in parts[1].strip("."):
            return parts[1].strip(".")
    return None


def _hostname_problem(name: str) -> str | None:
    if len(name) > 253:
        return "it is longer than 253 characters"
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    for label in labels:
        if not re.match(_LABEL, label):
            return (f"label {label!r} is not 1-63 letters, digits and inner hyphens" if label
                    else "it has an empty label (two dots in a row)")
    if labels[-1].isdigit():
        return "its last label is all digits"
    return None


# ---- net.hostname -----------------------------------------------------------------

@check(
    "net.hostname",
    title="Hostname is set and valid",
    why="libvirt, migration and TLS certificates identify the host by its name; 'localhost' or an "
        "invalid name breaks them. Platforms also want the name unique across hosts, which a check "
        "on one host cannot verify.",
    source="VMmanager (unique hostname); RFC 1123",
    params={"fqdn": False},
)
def net_hostname(ctx: Ctx):
    host = ctx.host
    file_name = host.read_first_line("/etc/hostname")
    ev = []
    name = ctx.facts.hostname
    if host.live:
        ev.append(("uname -n", name or "(empty)"))
    if file_name is not None:
        ev.append((ctx.show("/etc/hostname"), file_name or "(empty)"))
    if not name and not host.live:
        from ..netconfig import parse_shell_vars

        legacy = parse_shell_vars(host.read_text("/etc/sysconfig/network") or "").get("HOSTNAME")
        if legacy:
            name = legacy
            ev.append((ctx.show("/etc/sysconfig/network"), f"HOSTNAME={legacy}"))
    fix = ("hostnamectl set-hostname kvm01.example.com" if host.live
           else f"echo kvm01.example.com > {ctx.show('/etc/hostname')}")
    if not name:
        where = ctx.show("/etc/hostname") + (" is empty" if file_name is not None else " is missing")
        return failed(f"no hostname: {where}", *ev, hint=fix)
    if name.lower() in _BAD_HOSTNAMES:
        return failed(f"the hostname is {name!r}, a placeholder that every unconfigured host shares",
                      *ev, hint=fix)
    problem = _hostname_problem(name)
    if problem:
        return failed(f"{name!r} is not a valid RFC 1123 hostname: {problem}", *ev, hint=fix)
    is_fqdn = "." in name.strip(".")
    kind = "a fully qualified domain name" if is_fqdn else "a short name, not a fully qualified domain name"
    if host.live and file_name and file_name != name:
        return warned(f"{name} runs now, but {ctx.show('/etc/hostname')} says {file_name}: "
                      "the name changes at the next boot", *ev,
                      hint=f"hostnamectl set-hostname {name}")
    if ctx.params["fqdn"] and not is_fqdn:
        domain = _search_domain(ctx) or "example.com"
        return warned(f"{name} is {kind}", *ev,
                      hint=f"hostnamectl set-hostname {name}.{domain}" if host.live
                      else f"echo {name}.{domain} > {ctx.show('/etc/hostname')}")
    return passed(f"{name} ({kind})", *ev)


# ---- net.hosts-entry --------------------------------------------------------------

def _hosts_entries(text: str):
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        parts = raw.split("#", 1)[0].split()
        if len(parts) < 2:
            continue
        try:
            ip = ipaddress.ip_address(parts[0].split("%", 1)[0])
        except ValueError:
            continue
        out.append((n, ip, [p.lower() for p in parts[1:]], raw.strip()))
    return out


@check(
    "net.hosts-entry",
    title="/etc/hosts maps the hostname to this host's address",
    why="libvirt migration, VNC consoles and platform agents resolve the host's own name; when it "
        "resolves only to 127.0.x.x other hosts are told to connect to themselves.",
    source="VMmanager (/etc/hosts has '<ip> <hostname>')",
    remediations=("add-hosts-entry",),
)
def net_hosts_entry(ctx: Ctx):
    host = ctx.host
    name = ctx.facts.hostname
    if not name:
        return skipped("no hostname to look for (see net.hostname)")
    name = name.lower().rstrip(".")
    short = name.split(".", 1)[0]
    wanted = {name, short}
    ip = _primary_ip(ctx)
    if "." in name:
        line = f"{ip or '<this host IP>'} {name} {short}"
    else:
        domain = _search_domain(ctx)
        line = f"{ip or '<this host IP>'} {short}.{domain} {short}" if domain else f"{ip or '<this host IP>'} {short}"
    hint = f"add the line '{line}' to /etc/hosts"
    text = host.read_text("/etc/hosts")
    path = ctx.show("/etc/hosts")
    if text is None:
        return failed(f"{path} is missing", (path, "missing"), hint=hint)
    hits = [(n, ip_, raw) for n, ip_, names, raw in _hosts_entries(text) if wanted & set(names)]
    if not hits:
        return failed(f"{path} does not mention {name}", (path, f"no line names {' or '.join(sorted(wanted))}"),
                      hint=hint)
    ev = [(f"{path}:{n}", raw) for n, _, raw in hits]
    loop = [(n, a) for n, a, _ in hits if a.is_loopback]
    other = [(n, a) for n, a, _ in hits if not a.is_loopback and not a.is_unspecified]
    if not other:
        where = ", ".join(str(a) for _, a in loop)
        return failed(f"{name} is mapped only to loopback ({where}): other hosts cannot reach it by name",
                      *ev, hint=hint + (f" (and remove {short} from the loopback line)" if loop else ""))
    local = [a for a in netinfo.local_ipv4(host) if not a.is_loopback] + \
            [a for a in netinfo.local_ipv6(host) if not a.is_loopback and not a.is_link_local]
    if local:
        mine = [(n, a) for n, a in other if a in local]
        if not mine:
            shown = ", ".join(str(a) for _, a in other)
            return failed(f"{name} is mapped to {shown}, which is not an address of this host "
                          f"(it has {', '.join(str(a) for a in local[:4])})", *ev,
                          ("/proc/net/fib_trie", ", ".join(str(a) for a in local[:6])), hint=hint)
        first_n, first_a = mine[0]
        early = [(n, a) for n, a in loop if n < first_n]
        if early:
            return warned(f"{name} is mapped to {first_a}, but line {early[0][0]} maps it to {early[0][1]} first: "
                          "lookups return the loopback address", *ev,
                          hint=f"remove {short} from line {early[0][0]} of /etc/hosts")
        return passed(f"{name} -> {first_a} ({path} line {first_n})", *ev)
    # offline: no kernel tables; compare with the configured static addresses if any
    configured = {str(c.ip) for cfg in read_netconfig(host).configs if cfg.method == STATIC
                  for c in cfg.networks}
    n0, a0 = other[0]
    if configured and not any(str(a) in configured for _, a in other):
        return warned(f"{name} is mapped to {a0}, which no interface configuration assigns "
                      f"(configured: {', '.join(sorted(configured))})", *ev, hint=hint)
    note = "" if configured else " (offline: cannot confirm the address belongs to this host)"
    return passed(f"{name} -> {a0} ({path} line {n0}){note}", *ev)


# ---- net.dns -------------------------------------------------------------------

_STUBS = ("127.0.0.53", "127.0.0.54")
NM_CONF = "/etc/NetworkManager/NetworkManager.conf"
NM_CONF_DIRS = ("/usr/lib/NetworkManager/conf.d", "/run/NetworkManager/conf.d", "/etc/NetworkManager/conf.d")


def _nameservers(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append(parts[1])
    return out


def _resolved_dns(ctx: Ctx) -> tuple[list[str], list]:
    """DNS= of systemd-resolved after the main file and drop-ins (empty assignment resets)."""
    host = ctx.host
    files = [p for p in ("/etc/systemd/resolved.conf",) if host.is_file(p)]
    if not files and host.is_file("/usr/lib/systemd/resolved.conf"):
        files.append("/usr/lib/systemd/resolved.conf")
    dropins: dict[str, str] = {}
    for d in ("/usr/lib/systemd/resolved.conf.d", "/run/systemd/resolved.conf.d", "/etc/systemd/resolved.conf.d"):
        for p in host.glob(d, "*.conf"):
            dropins[p.rsplit("/", 1)[1]] = p
    files += [dropins[k] for k in sorted(dropins)]
    servers: list[str] = []
    ev = []
    for p in files:
        section = ""
        for raw in (host.read_text(p) or "").splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Resolve" and line.startswith("DNS="):
                value = line[4:].split()
                servers = servers + value if value else []
                ev.append((ctx.show(p), line))
    return servers, ev


def _nm_present(ctx: Ctx) -> str | None:
    host = ctx.host
    if host.is_file(NM_CONF):
        return ctx.show(NM_CONF)
    unit = unit_path(host, "NetworkManager.service")
    if unit:
        return ctx.show(unit)
    for p in ("/usr/sbin/NetworkManager", "/sbin/NetworkManager"):
        if host.exists(p):
            return ctx.show(p)
    return None


def _nm_main(ctx: Ctx) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """[main] keys of NetworkManager's merged configuration -> (value, file that set it)."""
    host = ctx.host
    files = [NM_CONF] if host.is_file(NM_CONF) else []
    by_name: dict[str, str] = {}
    for d in NM_CONF_DIRS:  # same name: /etc beats /run beats /usr/lib
        for p in host.glob(d, "*.conf"):
            by_name[p.rsplit("/", 1)[1]] = p
    files += [by_name[k] for k in sorted(by_name)]
    merged: dict[str, tuple[str, str]] = {}
    for p in files:
        main = parse_ini(host.read_text(p) or "").get("main", {})
        for k, v in main.items():
            merged[k] = (v, p)
    return merged, [ctx.show(p) for p in files]


@check(
    "net.dns",
    title="DNS resolvers configured (and not rewritten by NetworkManager)",
    why="Package installs, platform agents and image downloads need name resolution; VMmanager "
        "also rewrites resolv.conf itself and needs NetworkManager to keep its hands off.",
    source="VMmanager (nameserver in /etc/resolv.conf; DNS= with systemd-resolved; NetworkManager dns=none)",
    remediations=("networkmanager-dns-none",),
    params={"nm_dns_none": False},
)
def net_dns(ctx: Ctx):
    host = ctx.host
    path = "/etc/resolv.conf"
    link = host.readlink(path)
    ev = [(ctx.show(path), f"symlink to {link}")] if link else []
    problems: list[str] = []
    hints: list[str] = []
    good: list[str] = []
    text = host.read_text(path)
    if text is None and link and "systemd/resolve/" in link and not host.live:
        servers = ["127.0.0.53"]
        ev.append((ctx.show(path), "target is created at boot by systemd-resolved"))
    elif text is None and link and not host.live:
        servers = None
        good.append(f"{ctx.show(path)} is created at boot ({link})")
    elif text is None:
        servers = []
        problems.append(f"{ctx.show(path)} is missing" + (f" (dangling link to {link})" if link else ""))
        hints.append("echo 'nameserver 192.0.2.53' > /etc/resolv.conf  # your DNS server")
    else:
        servers = _nameservers(text)
        ev.append((ctx.show(path), ", ".join(f"nameserver {s}" for s in servers) or "no nameserver line"))
        if not servers:
            problems.append(f"{ctx.show(path)} has no nameserver line")
            hints.append("add 'nameserver <your DNS server>' to /etc/resolv.conf")
    if servers:
        if all(s in _STUBS for s in servers):
            dns, rev = _resolved_dns(ctx)
            ev.extend(rev)
            upstream = _nameservers(host.read_text("/run/systemd/resolve/resolv.conf") or "") if host.live else []
            upstream = [s for s in upstream if s not in _STUBS]
            if dns:
                good.append(f"systemd-resolved stub with DNS={' '.join(dns)}")
            elif upstream:
                ev.append(("/run/systemd/resolve/resolv.conf", ", ".join(upstream)))
                good.append(f"systemd-resolved stub; upstream servers {', '.join(upstream)} learned from the "
                            "network (DNS= is not set)")
            else:
                problems.append("only the systemd-resolved stub (127.0.0.53) is listed and no DNS= is set "
                                "in /etc/systemd/resolved.conf")
                hints.append("set DNS=<your DNS server> under [Resolve] in /etc/systemd/resolved.conf, "
                             "then systemctl restart systemd-resolved")
        else:
            good.append("nameservers " + ", ".join(servers))
    nm = _nm_present(ctx)
    nm_bad = False
    if nm:
        merged, files = _nm_main(ctx)
        dns_val, dns_file = merged.get("dns", ("default", ""))
        rc_val = merged.get("rc-manager", ("", ""))[0]
        ev.append((ctx.show(dns_file) if dns_file else (files[0] if files else nm),
                   f"[main] dns={dns_val}" + ("" if dns_file else " (not set: NetworkManager's default)")))
        if dns_val == "none":
            good.append("NetworkManager leaves DNS alone (dns=none)")
        elif ctx.params["nm_dns_none"]:
            nm_bad = True
            extra = " (rc-manager=unmanaged keeps resolv.conf, but dns=none is what is required)" \
                if rc_val == "unmanaged" else ""
            problems.append(f"NetworkManager manages DNS (dns={dns_val}){extra}")
            hints.append("printf '[main]\\ndns=none\\n' > /etc/NetworkManager/conf.d/90-dns-none.conf && "
                         "systemctl reload NetworkManager")
        else:
            good.append(f"NetworkManager manages DNS (dns={dns_val})")
    if problems:
        detail = "; ".join(problems)
        if nm_bad and len(problems) == 1:
            detail += " and may overwrite " + ctx.show(path)
        return failed(detail, *ev, hint="; ".join(hints))
    if servers is None:
        return skipped(f"offline root: {'; '.join(good)}", *ev)
    return passed("; ".join(good), *ev)


# ---- net.static-ip ----------------------------------------------------------------

def _static_hint(ctx: Ctx, cfg: IfaceConfig, iface: str, addr: str, gw: str) -> str:
    where = ctx.show(cfg.source)
    if cfg.kind == "ifupdown":
        return (f"in {where}: 'iface {iface} inet static' with 'address {addr}' and 'gateway {gw}'")
    if cfg.kind == "NetworkManager":
        con = cfg.conn_id or iface
        return (f"nmcli connection modify '{con}' ipv4.method manual ipv4.addresses {addr} "
                f"ipv4.gateway {gw} && nmcli connection up '{con}'")
    if cfg.kind == "ifcfg":
        ip, _, prefix = addr.partition("/")
        return f"in {where}: BOOTPROTO=none, IPADDR={ip}, PREFIX={prefix or '24'}, GATEWAY={gw}"
    if cfg.kind == "netplan":
        return (f"in {where}: dhcp4: false, addresses: [{addr}], routes: [{{to: default, via: {gw}}}]; "
                "then netplan apply")
    return f"in {where}: [Network] DHCP=no, Address={addr}, Gateway={gw}"


def _cfg_ev(ctx: Ctx, cfgs: list[IfaceConfig]):
    return [(ctx.show(c.source), f"{c.kind}: {c.line}" + (f", gateway {c.gateway}" if c.gateway else ""))
            for c in cfgs]


@check(
    "net.static-ip",
    title="Uplink interface has a static IP configuration",
    why="A host whose address comes from DHCP can change address after a lease or reboot, and every "
        "guest, console and platform agent loses it; platforms require the address in the interface file.",
    source="VMmanager (static IP in the interface file, no DHCP, on the physical interface or VLAN)",
)
def net_static_ip(ctx: Ctx):
    host = ctx.host
    nc = read_netconfig(host)
    up = _uplink(ctx)
    extra = []
    if nc.unreadable:
        extra.append(("unreadable without root", ", ".join(nc.unreadable)))
    if nc.garbled:
        extra.append(("could not parse", ", ".join(nc.garbled)))
    if up:
        iface, gw = up
        cfgs = [c for c in nc.for_iface(iface, netinfo.mac_address(host, iface))]
        ev = [_route_ev(ctx) if netinfo.default_routes(host) else (ctx.show("/proc/net/ipv6_route"),
                                                                     f"default dev {iface}")]
        addrs = netinfo.iface_ipv4(host, iface)
        addr = str(addrs[0]) if addrs else "<address>/<prefix>"
        gw = gw or "<gateway>"
        dhcp = [c for c in cfgs if c.method == DHCP]
        static = [c for c in cfgs if c.method == STATIC]
        if dhcp:
            c = dhcp[0]
            return failed(f"{iface} (the default-route interface) gets its address by DHCP "
                          f"({c.kind}, {ctx.show(c.source)})", *ev, *_cfg_ev(ctx, cfgs), *extra,
                          hint=_static_hint(ctx, c, iface, addr, gw))
        if static:
            c = static[0]
            shown = ", ".join(str(a) for a in c.networks) or "address set"
            return passed(f"{iface} is configured statically ({shown}; {c.kind}, {ctx.show(c.source)})",
                          *ev, *_cfg_ev(ctx, cfgs))
        if cfgs:
            return warned(f"{iface} has configuration that assigns no IPv4 address itself "
                          f"({', '.join(f'{c.kind}: {c.line}' for c in cfgs)}): cannot tell whether it is static",
                          *ev, *_cfg_ev(ctx, cfgs), *extra)
        if nc.unreadable:
            raise NeedsRoot(", ".join(nc.unreadable))
        return warned(f"no configuration file sets up {iface}: it is configured by something else "
                      "(cloud-init at boot, the platform, an initramfs or a manual 'ip addr')",
                      *ev, ("looked in", ", ".join(nc.looked)), *extra,
                      hint=f"describe {iface} with a static address ({addr}, gateway {gw}) in the "
                           "distribution's interface configuration")
    # no default route in the kernel tables (offline root): the configured gateways decide
    ev = [(ctx.show("/proc/net/route"), "no default route" if _has_proc_routes(ctx) else "missing (offline root)")]
    gwd = [c for c in nc.with_gateway]
    dhcp = [c for c in nc.configs if c.method == DHCP and c.name not in ("lo", "*", "")]
    if gwd and all(c.method == STATIC for c in gwd) and not dhcp:
        names = ", ".join(sorted({c.name for c in gwd}))
        return passed(f"{names} (with the configured default gateway) is configured statically",
                      *ev, *_cfg_ev(ctx, gwd))
    if dhcp:
        names = ", ".join(sorted({c.name for c in dhcp}))
        c = dhcp[0]
        return failed(f"{names} gets its address by DHCP ({c.kind}, {ctx.show(c.source)})",
                      *ev, *_cfg_ev(ctx, dhcp + [g for g in gwd if g not in dhcp]), *extra,
                      hint=_static_hint(ctx, c, c.name, "<address>/<prefix>", "<gateway>"))
    if gwd:
        return passed(f"{', '.join(sorted({c.name for c in gwd}))} has a static gateway configured",
                      *ev, *_cfg_ev(ctx, gwd))
    if nc.unreadable:
        raise NeedsRoot(", ".join(nc.unreadable))
    return warned("no interface configuration with a default gateway found",
                  *ev, ("looked in", ", ".join(nc.looked)), *extra)


# ---- net.default-gateway --------------------------------------------------------

@check(
    "net.default-gateway",
    title="Default gateway present and seen on the link",
    why="Guests reach the outside, and the platform reaches the host, through the default gateway. "
        "Judged passively: the gateway must appear in the kernel's neighbour table (no ping is sent).",
    source="VMmanager (the default gateway answers ping)",
)
def net_default_gateway(ctx: Ctx):
    host = ctx.host
    v4 = netinfo.default_routes(host)
    v6 = netinfo.default_routes6(host)
    if not _has_proc_routes(ctx):
        nc = read_netconfig(host)
        gwd = nc.with_gateway
        if gwd:
            c = gwd[0]
            return passed(f"default gateway {c.gateway} configured for {c.name} "
                          f"({c.kind}); whether it answers is seen only on the running host",
                          (ctx.show("/proc/net/route"), "missing (offline root)"), *_cfg_ev(ctx, gwd))
        return skipped("offline root: no /proc/net/route, and no interface configuration names a gateway"
                       + (" (DHCP provides it at boot)" if any(c.method == DHCP for c in nc.configs) else ""),
                       ("looked in", ", ".join(nc.looked)))
    if not v4 and not v6:
        return failed("no default route: this host cannot reach other networks",
                      (ctx.show("/proc/net/route"), "no default route"),
                      (ctx.show("/proc/net/ipv6_route"), "no default route"),
                      hint="ip route add default via <gateway> dev <interface> (and make it permanent in "
                           "the interface configuration)")
    ev = []
    if v4:
        r = v4[0]
        ev.append((ctx.show("/proc/net/route"), f"default via {r.gateway or '(direct)'} dev {r.iface}"))
    for r6 in v6[:1]:
        ev.append((ctx.show("/proc/net/ipv6_route"), f"default via {r6.gateway or '(direct)'} dev {r6.iface}"))
    if not v4:
        r6 = v6[0]
        return passed(f"IPv6 default route via {r6.gateway or '(direct)'} dev {r6.iface} (no IPv4 default route; "
                      "the IPv6 neighbour table is not in /proc, so the gateway is not looked up)", *ev)
    r = v4[0]
    if r.gateway is None:
        return passed(f"default route goes straight out of {r.iface} (point-to-point, no gateway)", *ev)
    arp = netinfo.arp_entries(host)
    entry = arp.get(str(r.gateway))
    if entry is None:
        ev.append((ctx.show("/proc/net/arp"), f"{r.gateway} absent"))
        return warned(f"default gateway {r.gateway} on {r.iface} is not in the neighbour table: not seen yet "
                      "(no traffic through it since boot, or it does not answer)", *ev,
                      hint=f"check that {r.gateway} is the right router for {r.iface}")
    flags, dev = entry
    ev.append((ctx.show("/proc/net/arp"), f"{r.gateway} flags {flags} dev {dev}"))
    try:
        complete = int(flags, 16) & 0x2
    except ValueError:
        complete = 0
    if complete:
        return passed(f"default gateway {r.gateway} on {r.iface} answers on the link (neighbour entry complete)",
                      *ev)
    return warned(f"default gateway {r.gateway} on {r.iface} did not answer ARP (incomplete neighbour entry)",
                  *ev, hint=f"check the link and that {r.gateway} is the router for {r.iface}")


# ---- net.iface-names ------------------------------------------------------------

_IFNAME = r"[A-Za-z0-9._-]+\Z"


@check(
    "net.iface-names",
    title="Interface names use Latin letters and digits only",
    why="Platform agents and configuration templates mishandle interface names with other characters.",
    source="VMmanager (interface names in Latin letters)",
)
def net_iface_names(ctx: Ctx):
    # bonding_masters and friends are plain files next to the interfaces' links
    names = [n for n in netinfo.interfaces(ctx.host) if not ctx.host.is_file(f"/sys/class/net/{n}")]
    source = ctx.show("/sys/class/net")
    if not names:
        nc = read_netconfig(ctx.host)
        names = sorted({n for c in nc.configs for n in c.name.split()
                        if c.name and not any(ch in n for ch in "*?[!")})
        source = "interface configuration files"
        if not names:
            return skipped("no /sys/class/net and no configured interface names in the root")
    bad = [n for n in names if not re.match(_IFNAME, n)]
    ev = (source, ", ".join(repr(n) if n in bad else n for n in names))
    if bad:
        return failed(f"{len(bad)} interface name(s) with characters other than ASCII letters, digits, '.', "
                      f"'-', '_': {', '.join(repr(n) for n in bad)}", ev,
                      hint="rename them with a systemd .link file (Name=) or udev rule, e.g. "
                           "/etc/systemd/network/10-uplink.link: [Match] MACAddress=<mac> [Link] Name=eth0")
    return passed(f"{len(names)} interface names, all ASCII: {', '.join(names[:8])}"
                  + (" ..." if len(names) > 8 else ""), ev)


# ---- net.firewall-ports -----------------------------------------------------------

DEFAULT_PORTS = ["22/tcp", "16514/tcp", "5900-6900/tcp", "49152-49215/tcp"]


def _unit_enabled(ctx: Ctx, unit: str) -> tuple[bool, str]:
    if not unit_path(ctx.host, unit):
        return False, "not installed"
    try:
        states, _ = enabled_states(ctx.host, [unit])
    except ProbeError as exc:
        return False, f"unknown ({exc.message})"
    state = states.get(unit, "unknown")
    return state in ("enabled", "enabled-runtime"), state


def _tool_in_root(ctx: Ctx, *names: str) -> bool:
    return any(ctx.host.exists(f"{d}/{n}") for n in names for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"))


def _runtime_ruleset(ctx: Ctx):
    """Live: the kernel's ruleset through nft (or iptables-save). Returns Ruleset or an Outcome."""
    host = ctx.host
    if not host.is_root:
        return skipped("needs root: would read the kernel's ruleset (nft -j list ruleset); "
                       "firewalld and ufw are not active")
    import json

    try:
        res = host.run(["nft", "-j", "list", "ruleset"])
    except ToolMissing:
        res = None
    if res is not None:
        if res.returncode != 0:
            err = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
            if "not permitted" in err.lower():
                return skipped("needs root: nft list ruleset: " + err)
            return warned(f"nft -j list ruleset failed: {err}", ("nft -j list ruleset", err))
        try:
            doc = json.loads(res.stdout) if res.stdout.strip() else {"nftables": []}
        except ValueError:
            return warned("nft -j list ruleset printed something that is not JSON",
                          ("nft -j list ruleset", res.stdout[:200]))
        rs = fw.nft_json_ruleset(doc)
        rs.source = "nft -j list ruleset"
        if not rs.base:  # rules loaded through iptables-legacy do not show in nft
            try:
                legacy = host.run(["iptables-legacy-save", "-t", "filter"])
            except ToolMissing:
                legacy = None
            if legacy is not None and legacy.returncode == 0:
                lrs = fw.iptables_save_ruleset(legacy.stdout)
                if lrs.base and any(c.rules or c.policy == "drop" for c in lrs.base):
                    lrs.source = "iptables-legacy-save -t filter"
                    return lrs
        return rs
    try:
        res = host.run(["iptables-save", "-t", "filter"])
    except ToolMissing:
        return warned("cannot read the ruleset: neither nft nor iptables-save is installed on this machine")
    if res.returncode != 0:
        err = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
        return skipped(f"needs root: iptables-save: {err}") if "denied" in err.lower() or "permitted" in err.lower() \
            else warned(f"iptables-save failed: {err}", ("iptables-save", err))
    rs = fw.iptables_save_ruleset(res.stdout)
    rs.source = "iptables-save -t filter"
    return rs


def _offline_ruleset(ctx: Ctx, ev: list):
    """Offline: an enabled nftables/iptables service and the rules file it loads at boot."""
    host = ctx.host
    on, state = _unit_enabled(ctx, "nftables.service")
    if on:
        ev.append(("nftables.service", state))
        for path in ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf"):
            text = host.read_text(path)
            if text is not None:
                def include(p):
                    import posixpath

                    p = p if p.startswith("/") else posixpath.join(posixpath.dirname(path), p)
                    d, _, pat = p.rpartition("/")
                    files = host.glob(d or "/", pat) if any(ch in pat for ch in "*?[") else [p]
                    return "\n".join(host.read_text(f) or "" for f in files)
                rs = fw.nft_text_ruleset(text, include)
                rs.source = ctx.show(path)
                return rs
        return None
    for unit, paths in (("netfilter-persistent.service", ("/etc/iptables/rules.v4",)),
                        ("iptables.service", ("/etc/sysconfig/iptables",))):
        on, state = _unit_enabled(ctx, unit)
        if on:
            ev.append((unit, state))
            for path in paths:
                text = host.read_text(path)
                if text is not None:
                    rs = fw.iptables_save_ruleset(text)
                    rs.kind = "iptables"
                    rs.source = ctx.show(path)
                    return rs
    return None


def _describe(rs: fw.Ruleset) -> str:
    if rs.kind == "firewalld":
        return f"firewalld ({rs.base[0].where[len('firewalld '):]})" if rs.base else "firewalld"
    if rs.kind == "ufw":
        return rs.base[0].where if rs.base else "ufw"
    chains = ", ".join(c.where for c in rs.base)
    return f"{rs.kind} ({chains})"


@check(
    "net.firewall-ports",
    title="Firewall lets the platform's ports in",
    why="The platform reaches the host over SSH, libvirt TLS (16514), VNC/SPICE consoles (5900-6900) "
        "and live-migration ports (49152-49215); a host firewall that drops them breaks consoles and "
        "migration while everything else looks fine.",
    source="VMmanager (incoming 22/tcp, 179/tcp, 4789/udp, 5900-6900/tcp, 16514/tcp, 49152-49215/tcp); "
           "libvirt migration and remote access documentation",
    remediations=("open-firewall-ports",),
    root_reads="the kernel's nftables/iptables ruleset",
    params={"ports": list(DEFAULT_PORTS)},
)
def net_firewall_ports(ctx: Ctx):
    host = ctx.host
    specs, bad = [], []
    for s in ctx.params["ports"] or []:
        p = fw.parse_port_spec(s)
        (specs if p else bad).append(p or s)
    if not specs:
        return skipped("no ports to check" + (f" (unreadable: {', '.join(map(str, bad))})" if bad else ""))
    ev: list = []
    zone = None
    rs = None
    # 1. firewalld
    fwd_on, fwd_state = _unit_enabled(ctx, "firewalld.service")
    fwd_running = host.live and bool(ctx.facts.running("firewalld"))
    if fwd_on or fwd_running:
        ev.append(("firewalld.service", fwd_state + (", running" if fwd_running else "")))
        zone, conf = fw.firewalld_default_zone(host)
        up = _uplink(ctx)
        bound = None
        if up:
            bound = fw.firewalld_zone_of_iface(host, up[0])
            if not bound:
                for c in read_netconfig(host).for_iface(up[0], netinfo.mac_address(host, up[0])):
                    if c.zone:
                        bound = c.zone
                        ev.append((ctx.show(c.source), f"zone={c.zone}"))
                        break
        ev.append((conf, f"DefaultZone={zone}"))
        if bound and bound != zone:
            ev.append(("zone of " + up[0], bound))
            zone = bound
        rs = fw.firewalld_ruleset(host, zone)
    else:
        ufw_on, ufw_state = fw.ufw_enabled(host)
        if ufw_on:
            ev.append((ctx.show("/etc/ufw/ufw.conf"), ufw_state))
            rs = fw.ufw_ruleset(host)
        elif host.live:
            if not _tool_in_root(ctx, "nft", "iptables", "iptables-legacy", "iptables-nft"):
                return passed("no host firewall filters incoming traffic (firewalld and ufw are not active; "
                              "neither nft nor iptables is installed)",
                              ("firewalld.service", fwd_state), (ctx.show("/etc/ufw/ufw.conf"), ufw_state))
            got = _runtime_ruleset(ctx)
            if not isinstance(got, fw.Ruleset):
                return got
            rs = got
        else:
            got = _offline_ruleset(ctx, ev)
            if got is None:
                return passed("no host firewall filters incoming traffic (firewalld, ufw, nftables and "
                              "iptables services are not enabled)", ("firewalld.service", fwd_state),
                              (ctx.show("/etc/ufw/ufw.conf"), ufw_state), *ev)
            rs = got
    if not rs.base:
        return passed(f"no host firewall filters incoming traffic ({rs.source or rs.kind} has no input chain)",
                      *ev, (rs.source or rs.kind, "no input hook chain"))
    closed, unknown, fix_specs, culprit = [], [], [], None
    for spec in specs:
        states = fw.judge(rs, spec)
        whole = [(spec.lo, spec.hi)]
        if states[fw.CLOSED]:
            closed.append(spec.text if states[fw.CLOSED] == whole
                          else f"{spec.text} ({fw.ranges_text(states[fw.CLOSED], spec.proto)} closed)")
            fix_specs.extend(fw.PortSpec(a, b, spec.proto) for a, b in states[fw.CLOSED])
            if culprit is None:
                culprit = fw.evaluate(rs, spec.proto, states[fw.CLOSED][0][0])[1]
        if states[fw.UNKNOWN]:
            unknown.append(spec.text if states[fw.UNKNOWN] == whole
                           else f"{spec.text} ({fw.ranges_text(states[fw.UNKNOWN], spec.proto)} undecided)")
    what = _describe(rs)
    summary = (rs.source or rs.kind, f"{sum(len(c.rules) for c in rs.base)} rules in {len(rs.base)} input chain(s)")
    notes = [("note", n) for n in rs.notes[:4]]
    if bad:
        notes.append(("params.ports", "ignored unreadable: " + ", ".join(map(str, bad))))
    if closed:
        detail = f"{what} blocks {', '.join(closed)}"
        if unknown:
            detail += f"; cannot tell for {', '.join(unknown)}"
        return failed(detail, *ev, summary, *notes,
                      hint=fw.open_hint(rs.kind, fix_specs, culprit, zone))
    if unknown:
        return warned(f"cannot decide statically whether {what} lets in {', '.join(unknown)} "
                      "(rules depend on sources, interfaces or chains this reader cannot follow)",
                      *ev, summary, *notes)
    return passed(f"{what} lets in {', '.join(s.text for s in specs)}", *ev, summary, *notes)


# ---- net.libvirt-subnet --------------------------------------------------------

LIBVIRT_NET_FILES = ("/etc/libvirt/qemu/networks/default.xml", "/usr/share/libvirt/networks/default.xml")


def _libvirt_default_net(ctx: Ctx):
    """(IPv4Network or None, bridge name, evidence, problem)."""
    for path in LIBVIRT_NET_FILES:
        text = ctx.host.read_text(path)
        if text is None:
            continue
        import xml.etree.ElementTree as ET  # only when there is a definition to read

        try:
            root = ET.fromstring(text)
        except ET.ParseError as exc:
            return None, "virbr0", (ctx.show(path), f"does not parse: {exc}"), "garbled"
        bridge = (root.find("bridge").get("name") if root.find("bridge") is not None else None) or "virbr0"
        for ip in root.findall("ip"):
            if (ip.get("family") or "ipv4") != "ipv4" or not ip.get("address"):
                continue
            mask = ip.get("prefix") or ip.get("netmask") or "24"
            try:
                net = ipaddress.IPv4Interface(f"{ip.get('address')}/{mask}").network
            except ValueError:
                return None, bridge, (ctx.show(path), f"unreadable <ip address={ip.get('address')!r}>"), "garbled"
            return net, bridge, (ctx.show(path), f"<ip address='{ip.get('address')}'> -> {net}"), None
        return None, bridge, (ctx.show(path), "no IPv4 <ip> element (no NAT subnet)"), "none"
    return (ipaddress.IPv4Network("192.168.122.0/24"), "virbr0",
            ("libvirt default", "192.168.122.0/24 (no default.xml in the root)"), None)


def _free_subnet(taken: list[ipaddress.IPv4Network]) -> str:
    candidates = [f"192.168.{n}.0/24" for n in range(123, 255)] + \
                 [f"172.{n}.122.0/24" for n in range(16, 32)] + [f"10.{n}.122.0/24" for n in range(100, 256)]
    for c in candidates:
        cand = ipaddress.IPv4Network(c)
        if not any(cand.overlaps(t) for t in taken):
            return str(cand)
    return "a free private /24"


@check(
    "net.libvirt-subnet",
    title="libvirt's default NAT subnet is free",
    why="libvirt's default network (192.168.122.0/24 unless changed) must not overlap a network the "
        "host already uses, or starting it hijacks that route and can cut the host off.",
    source="installer safety lessons (libvirt default NAT subnet vs existing routes)",
)
def net_libvirt_subnet(ctx: Ctx):
    host = ctx.host
    net, bridge, ev, problem = _libvirt_default_net(ctx)
    if problem == "garbled":
        return warned("cannot read libvirt's default network definition", ev)
    if problem == "none":
        return passed("libvirt's default network has no IPv4 subnet of its own", ev)
    own = lambda iface: iface.startswith("virbr") or iface == bridge  # noqa: E731
    clashes, taken = [], []
    if _has_proc_routes(ctx):
        source = ctx.show("/proc/net/route")
        for r in netinfo.routes(host):
            if r.network.prefixlen == 0 or own(r.iface):
                continue
            taken.append(r.network)
            if r.network.overlaps(net):
                clashes.append(f"route {r.network} dev {r.iface}" + (f" via {r.gateway}" if r.gateway else ""))
        libvirt_routes = [r.network for r in netinfo.routes(host) if own(r.iface)]
        for a in netinfo.local_ipv4(host):
            if a.is_loopback or a not in net:
                continue
            if any(a in n for n in libvirt_routes):
                continue
            clashes.append(f"local address {a}")
        checked = f"{len(taken)} routes and this host's addresses"
    else:
        source = "interface configuration files"
        for c in read_netconfig(host).configs:
            if c.method != STATIC or own(c.name):
                continue
            for ifa in c.networks:
                taken.append(ifa.network)
                if ifa.network.overlaps(net):
                    clashes.append(f"{c.name} {ifa} ({c.kind}, {ctx.show(c.source)})")
        if not taken:
            return skipped(f"offline root: no routes and no static addresses configured to compare {net} with", ev)
        checked = f"{len(taken)} configured static networks"
    if clashes:
        return failed(f"libvirt's default network {net} overlaps {', '.join(clashes)}", ev,
                      (source, "; ".join(clashes)),
                      hint=f"virsh net-edit default: move <ip> (and its <dhcp> range) to {_free_subnet(taken)}, "
                           "then virsh net-destroy default && virsh net-start default")
    return passed(f"{net} overlaps none of {checked}", ev, (source, ", ".join(str(t) for t in taken[:6]) or "none"))
