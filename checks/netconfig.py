"""Interface configuration files of a root: how each interface gets its IPv4 address.

Read, never applied: ifupdown (/etc/network/interfaces and what it sources),
NetworkManager keyfiles, ifcfg files (RHEL and SUSE), netplan YAML and
systemd-networkd .network files. Each parser turns what it finds into
``IfaceConfig`` records; unreadable or garbled files are listed, never raised.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re

from .errors import NeedsRoot, ProbeError
from .host import Host
from .record import Record

STATIC, DHCP, MANUAL, OTHER = "static", "dhcp", "manual", "other"

IFUPDOWN = "/etc/network/interfaces"
NM_DIRS = ("/etc/NetworkManager/system-connections", "/run/NetworkManager/system-connections")
IFCFG_DIRS = ("/etc/sysconfig/network-scripts", "/etc/sysconfig/network")
NETPLAN_DIRS = ("/lib/netplan", "/etc/netplan", "/run/netplan")  # later wins for one name
NETWORKD_DIRS = ("/etc/systemd/network", "/run/systemd/network",
                 "/usr/lib/systemd/network", "/lib/systemd/network")  # earlier wins
_IGNORED_SUFFIXES = ("~", ".bak", ".old", ".orig", ".rpmnew", ".rpmorig", ".rpmsave", ".dpkg-old",
                     ".dpkg-dist", ".dpkg-new")


class IfaceConfig(Record):
    """How one configuration source sets up one interface (IPv4)."""

    def __init__(self, name: str, method: str, kind: str, source: str, line: str,
                 addresses: list[str] | None = None, gateway: str | None = None, mac: str | None = None,
                 zone: str | None = None, conn_id: str | None = None):
        self.name = name        # interface name, or a glob for networkd/netplan matches; "" unknown
        self.method = method    # static | dhcp | manual | other
        self.kind = kind        # ifupdown | NetworkManager | ifcfg | netplan | systemd-networkd
        self.source = source    # path inside the root
        self.line = line        # what decided it, as written ("iface eth0 inet dhcp")
        self.addresses = [] if addresses is None else addresses  # "192.0.2.2/24"
        self.gateway = gateway
        self.mac = mac
        self.zone = zone
        self.conn_id = conn_id  # NetworkManager connection id

    def matches(self, iface: str, mac: str | None = None) -> bool:
        if self.mac and mac and self.mac.lower() != mac.lower():
            return False
        if self.name:
            return any(fnmatch.fnmatchcase(iface, n) for n in self.name.split() if not n.startswith("!"))
        return bool(self.mac and mac)

    @property
    def networks(self) -> list[ipaddress.IPv4Interface]:
        out = []
        for a in self.addresses:
            try:
                ifa = ipaddress.ip_interface(a)
            except ValueError:
                continue
            if isinstance(ifa, ipaddress.IPv4Interface):
                out.append(ifa)
        return out


class NetConfig(Record):
    def __init__(self, configs: list[IfaceConfig] | None = None, looked: list[str] | None = None,
                 unreadable: list[str] | None = None, garbled: list[str] | None = None):
        self.configs = [] if configs is None else configs
        self.looked = [] if looked is None else looked              # places searched (shown paths)
        self.unreadable = [] if unreadable is None else unreadable  # files that needed root
        self.garbled = [] if garbled is None else garbled           # files that did not parse

    def for_iface(self, iface: str, mac: str | None = None) -> list[IfaceConfig]:
        """Configs that apply to ``iface``; networkd uses only its first matching file."""
        out, networkd_seen = [], False
        for c in self.configs:
            if not c.matches(iface, mac):
                continue
            if c.kind == "systemd-networkd":
                if networkd_seen:
                    continue
                networkd_seen = True
            out.append(c)
        return out

    @property
    def with_gateway(self) -> list[IfaceConfig]:
        return [c for c in self.configs if c.gateway and c.name != "lo"]


def _read(host: Host, path: str, nc: NetConfig) -> str | None:
    try:
        return host.read_text(path)
    except NeedsRoot:
        nc.unreadable.append(host.display(path))
    except ProbeError:
        nc.garbled.append(host.display(path))
    return None


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith(_IGNORED_SUFFIXES)


def _mask_to_prefix(mask: str) -> int | None:
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    except ValueError:
        return None


def _with_prefix(addr: str, prefix) -> str:
    if "/" in addr or prefix in (None, ""):
        return addr
    return f"{addr}/{prefix}"


def _is_v4(addr: str) -> bool:
    try:
        return ipaddress.ip_interface(addr).version == 4
    except ValueError:
        return False


# ---- ifupdown -----------------------------------------------------------------

_STANZAS = ("iface", "auto", "mapping", "source", "source-directory", "rename",
            "no-auto-down", "no-scripts")


def _ifupdown_files(host: Host, path: str, nc: NetConfig, seen: set, depth: int = 0) -> list[tuple[str, str]]:
    if path in seen or depth > 8:
        return []
    seen.add(path)
    text = _read(host, path, nc)
    if text is None:
        return []
    out = [(path, text)]
    base = path.rsplit("/", 1)[0] or "/"
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] not in ("source", "source-directory"):
            continue
        target = parts[1] if parts[1].startswith("/") else f"{base}/{parts[1]}"
        if parts[0] == "source-directory":
            names = [n for n in host.listdir(target) if re.fullmatch(r"[A-Za-z0-9_-]+", n)]
            files = [f"{target.rstrip('/')}/{n}" for n in names]
        else:
            d, _, pat = target.rpartition("/")
            files = host.glob(d or "/", pat) if any(ch in pat for ch in "*?[") else [target]
            files = [f for f in files if not _ignored(f.rsplit("/", 1)[1])]
        nc.looked.append(host.display(target))
        for f in files:
            if host.is_file(f):
                out.extend(_ifupdown_files(host, f, nc, seen, depth + 1))
    return out


def parse_ifupdown(host: Host, nc: NetConfig) -> None:
    nc.looked.append(host.display(IFUPDOWN))
    for path, text in _ifupdown_files(host, IFUPDOWN, nc, set()):
        cur: IfaceConfig | None = None
        netmask = None

        def finish():
            if cur is not None:
                if netmask and cur.addresses and "/" not in cur.addresses[0]:
                    cur.addresses[0] = _with_prefix(cur.addresses[0], _mask_to_prefix(netmask))
                nc.configs.append(cur)

        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            key = parts[0]
            if key in _STANZAS or key.startswith("allow-"):
                finish()
                cur, netmask = None, None
                if key == "iface" and len(parts) >= 4 and parts[2] == "inet":
                    m = parts[3]
                    method = {"static": STATIC, "dhcp": DHCP, "bootp": DHCP, "manual": MANUAL}.get(m, OTHER)
                    if m == "loopback":
                        continue
                    cur = IfaceConfig(parts[1], method, "ifupdown", path, line)
                continue
            if cur is None or len(parts) < 2:
                continue
            if key == "address":
                cur.addresses.append(parts[1])
            elif key == "netmask":
                netmask = parts[1]
            elif key == "gateway":
                cur.gateway = parts[1]
            elif key in ("hwaddress",) and len(parts) >= 2:
                cur.mac = parts[-1]
        finish()


# ---- NetworkManager keyfiles -------------------------------------------------------

def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """A tolerant INI reader: sections of key=value, last assignment wins, # and ; comments."""
    out: dict[str, dict[str, str]] = {}
    section = out.setdefault("", {})
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1].strip(), {})
            continue
        if "=" in line:
            k, _, v = line.partition("=")
            section[k.strip()] = v.strip()
    return out


def parse_nm_keyfiles(host: Host, nc: NetConfig) -> None:
    for d in NM_DIRS:
        nc.looked.append(host.display(d) + "/*.nmconnection")
        for path in host.glob(d, "*.nmconnection"):
            text = _read(host, path, nc)
            if text is None:
                continue
            ini = parse_ini(text)
            conn, v4 = ini.get("connection", {}), ini.get("ipv4", {})
            if not conn and not v4:
                nc.garbled.append(host.display(path))
                continue
            if conn.get("master") or conn.get("controller"):
                continue  # a port of a bridge/bond: the controller holds the address
            m = v4.get("method", "auto" if conn.get("type") in ("ethernet", "802-3-ethernet", "bridge",
                                                                  "bond", "vlan", "team") else "")
            method = {"manual": STATIC, "auto": DHCP}.get(m, OTHER)
            addrs, gw = [], v4.get("gateway") or None
            for k in sorted(v4, key=lambda k: (len(k), k)):
                if re.fullmatch(r"address(es)?\d*", k):
                    for item in v4[k].split(";"):
                        a, _, g = item.strip().partition(",")
                        if a:
                            addrs.append(a.strip())
                        if g.strip() and not gw:
                            gw = g.strip()
            mac = ini.get("ethernet", {}).get("mac-address") or None
            name = conn.get("interface-name", "")
            nc.configs.append(IfaceConfig(
                name, method, "NetworkManager", path, f"[ipv4] method={m or '(unset)'}",
                addrs, gw, mac, conn.get("zone") or None, conn.get("id") or None))


# ---- ifcfg (RHEL network-scripts, SUSE sysconfig) ----------------------------------

def parse_shell_vars(text: str) -> dict[str, str]:
    out = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, _, v = line.partition("=")
        k = k.strip()
        if k.startswith("export "):
            k = k[7:].strip()
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        else:
            v = v.split("#", 1)[0].strip()
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            out[k] = v
    return out


def parse_ifcfg(host: Host, nc: NetConfig) -> None:
    for d in IFCFG_DIRS:
        nc.looked.append(host.display(d) + "/ifcfg-*")
        global_gw = None
        if d == "/etc/sysconfig/network-scripts":
            g = parse_shell_vars(_read(host, "/etc/sysconfig/network", nc) or "") \
                if host.is_file("/etc/sysconfig/network") else {}
            global_gw = g.get("GATEWAY") or None
        for path in host.glob(d, "ifcfg-*"):
            fname = path.rsplit("/", 1)[1]
            if _ignored(fname) or fname == "ifcfg-lo":
                continue
            text = _read(host, path, nc)
            if text is None:
                continue
            v = parse_shell_vars(text)
            name = v.get("DEVICE") or fname[len("ifcfg-"):]
            if v.get("MASTER") or v.get("BRIDGE") or v.get("TEAM_MASTER"):
                continue
            proto = v.get("BOOTPROTO", "").lower()
            addrs = []
            for k in sorted(v):
                m = re.fullmatch(r"IPADDR(\d*)", k)
                if m and v[k]:
                    prefix = v.get(f"PREFIX{m.group(1)}") or (
                        _mask_to_prefix(v[f"NETMASK{m.group(1)}"]) if v.get(f"NETMASK{m.group(1)}") else None)
                    addrs.append(_with_prefix(v[k], prefix))
            if proto.startswith("dhcp") or proto in ("bootp", "autoip", "dhcp+autoip"):
                method = DHCP
            elif proto == "static" or (proto in ("", "none") and addrs):
                method = STATIC
            else:
                method = OTHER
            gw = v.get("GATEWAY") or None
            if not gw and global_gw and method == STATIC and (
                    not v.get("GATEWAYDEV") or v.get("GATEWAYDEV") == name):
                gw = global_gw
            line = f"BOOTPROTO={v['BOOTPROTO']}" if "BOOTPROTO" in v else "BOOTPROTO unset"
            nc.configs.append(IfaceConfig(name, method, "ifcfg", path, line, addrs, gw,
                                          v.get("HWADDR") or None, v.get("ZONE") or None))


# ---- netplan --------------------------------------------------------------------

def _merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = _merge(a[k], v) if k in a else v
        return out
    return b


def _truthy(v) -> bool:
    return v is True or (isinstance(v, str) and v.lower() in ("true", "yes", "on", "y"))


def parse_netplan(host: Host, nc: NetConfig) -> None:
    by_name: dict[str, str] = {}
    for d in NETPLAN_DIRS:
        nc.looked.append(host.display(d) + "/*.yaml")
        for path in host.glob(d, "*.yaml"):
            by_name[path.rsplit("/", 1)[1]] = path
    if not by_name:
        return
    import yaml  # lazily: only roots with netplan files pay for it

    merged: dict = {}
    origin: dict[str, str] = {}
    for name in sorted(by_name):
        path = by_name[name]
        text = _read(host, path, nc)
        if text is None:
            continue
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            nc.garbled.append(host.display(path))
            continue
        net = doc.get("network") if isinstance(doc, dict) else None
        if not isinstance(net, dict):
            if doc is not None:
                nc.garbled.append(host.display(path))
            continue
        for kind in ("ethernets", "bonds", "bridges", "vlans", "wifis"):
            for ifid, spec in (net.get(kind) or {}).items() if isinstance(net.get(kind), dict) else ():
                if isinstance(spec, dict):
                    origin[str(ifid)] = path
                    merged[str(ifid)] = _merge(merged.get(str(ifid), {}), spec)
    for ifid, spec in merged.items():
        match = spec.get("match") if isinstance(spec.get("match"), dict) else {}
        name = str(spec.get("set-name") or match.get("name") or ("" if match else ifid))
        mac = match.get("macaddress")
        addrs = [str(a) for a in spec.get("addresses") or [] if isinstance(a, (str, int))]
        addrs += [str(k) for a in spec.get("addresses") or [] if isinstance(a, dict) for k in a]
        gw = spec.get("gateway4")
        for r in spec.get("routes") or []:
            if isinstance(r, dict) and str(r.get("to")) in ("default", "0.0.0.0/0") and r.get("via"):
                gw = gw or r.get("via")
        v4 = [a for a in addrs if _is_v4(a)]
        if _truthy(spec.get("dhcp4")):
            method, line = DHCP, f"{ifid}: dhcp4: true"
        elif v4:
            method, line = STATIC, f"{ifid}: addresses: [{', '.join(v4)}]"
        else:
            method, line = OTHER, f"{ifid}: no dhcp4, no IPv4 addresses"
        nc.configs.append(IfaceConfig(name, method, "netplan", origin[ifid], line, v4,
                                      str(gw) if gw else None, str(mac) if mac else None))


# ---- systemd-networkd -----------------------------------------------------------

def parse_unit_sections(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) triples in file order (sections may repeat)."""
    out, section = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif "=" in line:
            k, _, v = line.partition("=")
            out.append((section, k.strip(), v.strip()))
    return out


def parse_networkd(host: Host, nc: NetConfig) -> None:
    by_name: dict[str, str] = {}
    for d in NETWORKD_DIRS:
        nc.looked.append(host.display(d) + "/*.network")
        for path in host.glob(d, "*.network"):
            by_name.setdefault(path.rsplit("/", 1)[1], path)
    for name in sorted(by_name):
        path = by_name[name]
        text = _read(host, path, nc)
        if text is None:
            continue
        if not text.strip():
            continue  # an empty file masks one of the same name
        names, mac, dhcp, addrs, gw, other_match = [], None, None, [], None, False
        route: dict[str, str] | None = None
        routes = []
        for section, k, v in parse_unit_sections(text):
            if section == "Match" and k == "Name":
                names.extend(v.split())
            elif section == "Match" and k in ("MACAddress", "PermanentMACAddress") and v:
                mac = v.split()[0]
            elif section == "Match":
                other_match = True  # Type=, Driver=, Kind=...: not judged, so never assumed to match
            elif section == "Network" and k == "DHCP":
                dhcp = v
            elif section in ("Network", "Address") and k == "Address" and v:
                addrs.append(v)
            elif section == "Network" and k == "Gateway" and v:
                gw = gw or v
            elif section == "Route":
                if route is None or k in route:
                    route = {}
                    routes.append(route)
                route[k] = v
        for r in routes:
            if r.get("Gateway") and r.get("Destination", "") in ("", "0.0.0.0/0") and _is_v4(r["Gateway"]):
                gw = gw or r["Gateway"]
        v4 = [a for a in addrs if _is_v4(a)]
        if dhcp and dhcp.lower() in ("yes", "true", "on", "1", "ipv4", "both"):
            method, line = DHCP, f"DHCP={dhcp}"
        elif v4:
            method, line = STATIC, f"Address={v4[0]}"
        else:
            method, line = OTHER, "no DHCP=, no IPv4 Address="
        if gw and not _is_v4(gw):
            gw = None
        nc.configs.append(IfaceConfig(" ".join(names) or ("" if mac or other_match else "*"), method,
                                      "systemd-networkd", path, line, v4, gw, mac))


def read_netconfig(host: Host) -> NetConfig:
    """Every interface configuration the root holds (memoized on the host)."""
    def compute():
        nc = NetConfig()
        for parse in (parse_ifupdown, parse_nm_keyfiles, parse_ifcfg, parse_netplan, parse_networkd):
            parse(host, nc)
        return nc
    return host.memo(("netconfig",), compute)
