"""Routes, local addresses and neighbours from /proc/net (no commands, no traffic)."""

from __future__ import annotations

import ipaddress

from .host import Host
from .record import FrozenRecord


class Route(FrozenRecord):
    def __init__(self, iface: str, network: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address | None):
        self._fields(iface=iface, network=network, gateway=gateway)


def _hex_ip(h: str) -> ipaddress.IPv4Address:
    # /proc/net/route prints addresses as little-endian hex words
    return ipaddress.IPv4Address(int.from_bytes(int(h, 16).to_bytes(4, "little"), "big"))


def routes(host: Host) -> list[Route]:
    out = []
    lines = (host.read_text("/proc/net/route") or "").splitlines()[1:]
    for line in lines:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest, gw, flags, mask = _hex_ip(f[1]), _hex_ip(f[2]), int(f[3], 16), _hex_ip(f[7])
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if not flags & 0x1:  # RTF_UP
            continue
        out.append(Route(f[0], net, gw if flags & 0x2 else None))
    return out


def default_routes(host: Host) -> list[Route]:
    return [r for r in routes(host) if r.network.prefixlen == 0]


def local_ipv4(host: Host) -> list[ipaddress.IPv4Address]:
    """Addresses the kernel owns, from the LOCAL entries of fib_trie."""
    text = host.read_text("/proc/net/fib_trie") or ""
    addrs: list[ipaddress.IPv4Address] = []
    last = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|--"):
            last = s[3:].strip()
        elif s.startswith("/32 host LOCAL") and last:
            try:
                a = ipaddress.IPv4Address(last)
            except ValueError:
                continue
            if a not in addrs:
                addrs.append(a)
    return addrs


def local_ipv6(host: Host) -> list[ipaddress.IPv6Address]:
    out = []
    for line in (host.read_text("/proc/net/if_inet6") or "").splitlines():
        f = line.split()
        if len(f) >= 6:
            try:
                out.append(ipaddress.IPv6Address(int(f[0], 16)))
            except ValueError:
                pass
    return out


def arp_entries(host: Host) -> dict[str, tuple[str, str]]:
    """IPv4 neighbour -> (flags, device) from /proc/net/arp."""
    out = {}
    for line in (host.read_text("/proc/net/arp") or "").splitlines()[1:]:
        f = line.split()
        if len(f) >= 6:
            out[f[0]] = (f[2], f[5])
    return out


def interfaces(host: Host) -> list[str]:
    return [n for n in host.listdir("/sys/class/net")]


# ---- additions for the net checks (IPv6 routes, per-interface addresses) ----

class Route6(FrozenRecord):
    def __init__(self, iface: str, network: ipaddress.IPv6Network, gateway: ipaddress.IPv6Address | None):
        self._fields(iface=iface, network=network, gateway=gateway)


def routes6(host: Host) -> list[Route6]:
    """Usable IPv6 routes of the main table from /proc/net/ipv6_route (no reject routes)."""
    out = []
    for line in (host.read_text("/proc/net/ipv6_route") or "").splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        try:
            dest = ipaddress.IPv6Address(int(f[0], 16))
            plen = int(f[1], 16)
            hop = ipaddress.IPv6Address(int(f[4], 16))
            flags = int(f[8], 16)
            net = ipaddress.IPv6Network(f"{dest}/{plen}", strict=False)
        except ValueError:
            continue
        if not flags & 0x1 or flags & 0x200:  # RTF_UP, not RTF_REJECT
            continue
        out.append(Route6(f[9], net, hop if flags & 0x2 else None))
    return out


def default_routes6(host: Host) -> list[Route6]:
    return [r for r in routes6(host) if r.network.prefixlen == 0 and r.iface != "lo"]


def iface_ipv4(host: Host, iface: str) -> list[ipaddress.IPv4Interface]:
    """Local IPv4 addresses of one interface: local addresses inside its connected routes."""
    local = local_ipv4(host)
    out: list[ipaddress.IPv4Interface] = []
    for r in routes(host):
        if r.iface != iface or r.gateway is not None or r.network.prefixlen == 0:
            continue
        for a in local:
            if a in r.network:
                ifa = ipaddress.IPv4Interface(f"{a}/{r.network.prefixlen}")
                if ifa not in out:
                    out.append(ifa)
    return out


def mac_address(host: Host, iface: str) -> str | None:
    mac = host.read_first_line(f"/sys/class/net/{iface}/address")
    return mac.lower() if mac else None


# ---- the report's addresses: what kvmprep fleet compares across hosts ----------

def addresses(host: Host) -> list[tuple[str | None, str]]:
    """(interface, address) of every address the kernel owns except loopback and
    IPv6 link-local ones (every interface has one; they are unique per link, not
    per fleet). An IPv4 address's interface is that of its connected route (the
    longest prefix); None when no route names it."""
    out: list[tuple[str | None, str]] = []
    connected = [r for r in routes(host) if r.gateway is None and r.network.prefixlen]
    for a in local_ipv4(host):
        if a.is_loopback:
            continue
        best = None
        for r in connected:
            if a in r.network and (best is None or r.network.prefixlen > best.network.prefixlen):
                best = r
        out.append((best.iface if best else None, str(a)))
    for line in (host.read_text("/proc/net/if_inet6") or "").splitlines():
        f = line.split()
        if len(f) < 6:
            continue
        try:
            a = ipaddress.IPv6Address(int(f[0], 16))
        except ValueError:
            continue
        if not (a.is_loopback or a.is_link_local):
            out.append((f[5], str(a)))
    return out


def management_address(host: Host, found: list[tuple[str | None, str]]) -> dict | None:
    """The address other hosts reach this one at, as far as the kernel's tables
    tell: the first address of the IPv4 default route's interface, else of the
    IPv6 default route's. None when there is no default route (an offline root)."""
    for want_v6, defaults in ((False, default_routes), (True, default_routes6)):
        for r in defaults(host):  # the IPv6 table is read only when IPv4 has no answer
            for name, addr in found:
                if name == r.iface and (":" in addr) == want_v6:
                    return {"interface": r.iface, "address": addr}
    return None
