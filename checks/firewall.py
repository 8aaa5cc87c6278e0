"""Which incoming TCP/UDP ports a host firewall lets through, judged statically.

Sources: firewalld's permanent configuration (zones and services XML), ufw's
``user.rules`` tuples, an nftables ruleset (``nft -j list ruleset`` JSON or an
``nftables.conf`` text file) and ``iptables-save`` output. All of them become
the same small model -- base input chains of rules with a port match and a
verdict -- and one evaluator answers ``open``, ``closed`` or ``unknown`` per
port. Nothing here sends a packet.
"""

from __future__ import annotations

import re
import shlex

from .host import Host
from .record import FrozenRecord, Record

OPEN, CLOSED, UNKNOWN = "open", "closed", "unknown"


# ---- port specs -----------------------------------------------------------------

class PortSpec(FrozenRecord):
    def __init__(self, lo: int, hi: int, proto: str):
        self._fields(lo=lo, hi=hi, proto=proto)

    @property
    def text(self) -> str:
        return (f"{self.lo}" if self.lo == self.hi else f"{self.lo}-{self.hi}") + f"/{self.proto}"


def parse_port_spec(spec: str) -> PortSpec | None:
    """'22/tcp', '5900-6900/tcp', '5900:6900/udp', '22' (tcp) -> PortSpec; None if unreadable."""
    m = re.fullmatch(r"\s*(\d+)(?:\s*[-:]\s*(\d+))?\s*(?:/\s*(tcp|udp|sctp))?\s*", str(spec), re.I)
    if not m:
        return None
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if not (0 < lo <= hi <= 65535):
        return None
    return PortSpec(lo, hi, (m.group(3) or "tcp").lower())


def port_ranges(text: str, sep: str = "-") -> tuple[tuple[int, int], ...] | None:
    """'22', '5900-6900', '80,443,1000:2000' -> ranges; None when unreadable."""
    out = []
    for part in re.split(r"[,\s]+", str(text).strip()):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:[-:](\d+))?", part)
        if not m:
            return None
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out.append((min(lo, hi), max(lo, hi)))
    return tuple(out) or None


def compress(ports: list[int]) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for p in sorted(ports):
        if out and p == out[-1][1] + 1:
            out[-1][1] = p
        else:
            out.append([p, p])
    return [(a, b) for a, b in out]


def ranges_text(ranges, proto: str, sep: str = "-") -> str:
    return ", ".join((f"{a}" if a == b else f"{a}{sep}{b}") + f"/{proto}" for a, b in ranges)


# ---- the model --------------------------------------------------------------------

class Rule(Record):
    def __init__(self, verdict: str = "none", target: str | None = None, proto: str | None = None,
                 ports: tuple[tuple[int, int], ...] | None = None, conditional: bool = False,
                 skip: bool = False, text: str = ""):
        self.verdict = verdict          # accept | drop | reject | jump | goto | return | none | unknown
        self.target = target
        self.proto = proto              # tcp, udp, sctp, "other" (icmp...), None = any
        self.ports = ports              # None = any destination port
        self.conditional = conditional  # also matches on something else (source, interface...)
        self.skip = skip                # cannot match a new incoming IPv4 connection
        self.text = text

    def copy(self, **changes: object) -> Rule:
        """A new rule with the same fields but ``changes``."""
        return Rule(**{**vars(self), **changes})


class Chain(Record):
    def __init__(self, name: str, rules: list[Rule] | None = None, policy: str | None = None,
                 where: str = "", family: str = "", table: str = ""):
        self.name = name
        self.rules = [] if rules is None else rules
        self.policy = policy  # accept | drop for base chains
        self.where = where    # "inet filter", "firewalld zone public"...
        self.family = family
        self.table = table


class Ruleset(Record):
    def __init__(self, kind: str, base: list[Chain] | None = None,
                 chains: dict[tuple[str, str], Chain] | None = None, notes: list[str] | None = None,
                 source: str = ""):
        self.kind = kind  # firewalld | ufw | nftables | iptables
        self.base = [] if base is None else base
        self.chains = {} if chains is None else chains  # (table key, name)
        self.notes = [] if notes is None else notes
        self.source = source

    def lookup(self, chain: Chain, name: str | None) -> Chain | None:
        if name is None:
            return None
        return self.chains.get((f"{chain.family} {chain.table}", name))


def _walk(rs: Ruleset, chain: Chain, proto: str, port: int, depth: int = 0):
    """(verdict or None, maybe_accept, opaque) for a new connection to port/proto."""
    maybe_accept = opaque = False
    for r in chain.rules:
        if r.skip:
            continue
        if r.proto is not None and r.proto != proto:
            continue
        if r.ports is not None and not any(lo <= port <= hi for lo, hi in r.ports):
            continue
        verdict = r.verdict
        if verdict in ("jump", "goto"):
            sub = rs.lookup(chain, r.target)
            if sub is None or depth > 16:
                opaque = True
                continue
            res, m, o = _walk(rs, sub, proto, port, depth + 1)
            maybe_accept |= m
            opaque |= o
            if res is None:
                if verdict == "goto" and not r.conditional:
                    return None, maybe_accept, opaque
                continue
            verdict = res
        if verdict == "accept":
            if r.conditional and r.ports is None:
                maybe_accept = True
                continue
            return "accept", maybe_accept, opaque
        if verdict in ("drop", "reject"):
            if r.conditional:
                continue
            return "drop", maybe_accept, opaque
        if verdict == "return":
            if r.conditional:
                opaque = True
                continue
            return None, maybe_accept, opaque
        if verdict == "unknown":
            opaque = True
    return chain.policy, maybe_accept, opaque


def evaluate(rs: Ruleset, proto: str, port: int) -> tuple[str, Chain | None]:
    """OPEN/CLOSED/UNKNOWN for one port, and the base chain that decided a CLOSED."""
    result, culprit = OPEN, None
    for chain in rs.base:
        res, maybe, opaque = _walk(rs, chain, proto, port)
        res = res or "accept"
        if res == "drop" and not maybe and not opaque:
            return CLOSED, chain
        if (res == "drop") or opaque:
            result, culprit = UNKNOWN, culprit or chain
    return result, culprit


def judge(rs: Ruleset, spec: PortSpec) -> dict[str, list[tuple[int, int]]]:
    """Ranges of the spec per state: {'open': [...], 'closed': [...], 'unknown': [...]}."""
    states: dict[str, list[int]] = {OPEN: [], CLOSED: [], UNKNOWN: []}
    for port in range(spec.lo, spec.hi + 1):
        states[evaluate(rs, spec.proto, port)[0]].append(port)
    return {k: compress(v) for k, v in states.items()}


# ---- firewalld ------------------------------------------------------------------

FIREWALLD_ETC, FIREWALLD_LIB = "/etc/firewalld", "/usr/lib/firewalld"


def _xml(host: Host, path: str, notes: list[str]):
    import xml.etree.ElementTree as ET  # lazily: only firewalld hosts pay for it

    text = host.read_text(path)
    if text is None:
        return None
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        notes.append(f"{host.display(path)} does not parse ({exc})")
        return None


def firewalld_default_zone(host: Host) -> tuple[str, str]:
    from .netconfig import parse_shell_vars

    path = f"{FIREWALLD_ETC}/firewalld.conf"
    zone = parse_shell_vars(host.read_text(path) or "").get("DefaultZone") or "public"
    return zone, host.display(path)


def firewalld_file(host: Host, kind: str, name: str) -> str | None:
    for base in (FIREWALLD_ETC, FIREWALLD_LIB):
        p = f"{base}/{kind}/{name}.xml"
        if host.is_file(p):
            return p
    return None


def firewalld_zone_of_iface(host: Host, iface: str) -> str | None:
    """A zone whose XML binds the interface (<interface name=...>)."""
    names: dict[str, str] = {}
    for base in (FIREWALLD_LIB, FIREWALLD_ETC):
        for p in host.glob(f"{base}/zones", "*.xml"):
            names[p.rsplit("/", 1)[1][:-4]] = p
    for zone, p in sorted(names.items()):
        text = host.read_text(p) or ""
        if re.search(r"<interface\s+name\s*=\s*[\"']" + re.escape(iface) + r"[\"']", text):
            return zone
    return None


def _service_ports(host: Host, name: str, notes: list[str], depth: int = 0) -> list[tuple[str, tuple]]:
    path = firewalld_file(host, "services", name)
    if path is None:
        notes.append(f"service {name!r} is not defined in {host.display(FIREWALLD_ETC)}/services "
                      f"or {host.display(FIREWALLD_LIB)}/services")
        return []
    root = _xml(host, path, notes)
    if root is None:
        return []
    out = []
    for el in root.iter("port"):
        ranges = port_ranges(el.get("port", ""))
        if ranges:
            out.append((el.get("protocol", "tcp").lower(), ranges))
    for inc in root.iter("include"):
        if inc.get("service") and depth < 8:
            out.extend(_service_ports(host, inc.get("service"), notes, depth + 1))
    return out


def firewalld_ruleset(host: Host, zone: str) -> Ruleset:
    rs = Ruleset("firewalld")
    path = firewalld_file(host, "zones", zone)
    chain = Chain(f"zone {zone}", policy="drop", where=f"firewalld zone {zone}")
    if path is None:
        rs.notes.append(f"zone {zone!r} is defined neither in {host.display(FIREWALLD_ETC)}/zones "
                        f"nor in {host.display(FIREWALLD_LIB)}/zones")
        chain.rules.append(Rule("unknown", text="zone file missing"))
        rs.base.append(chain)
        return rs
    rs.source = host.display(path)
    root = _xml(host, path, rs.notes)
    if root is None:
        chain.rules.append(Rule("unknown", text="zone file unreadable"))
        rs.base.append(chain)
        return rs
    target = (root.get("target") or "default").upper()
    if target == "ACCEPT":
        chain.policy = "accept"
    drops, accepts, opens = [], [], []
    for el in root.findall("service"):
        for proto, ranges in _service_ports(host, el.get("name", ""), rs.notes):
            opens.append(Rule("accept", proto=proto, ports=ranges, text=f"service {el.get('name')}"))
    for el in root.findall("port"):
        ranges = port_ranges(el.get("port", ""))
        if ranges:
            opens.append(Rule("accept", proto=el.get("protocol", "tcp").lower(), ports=ranges,
                              text=f"port {el.get('port')}/{el.get('protocol')}"))
    for el in root.findall("protocol"):
        opens.append(Rule("accept", proto=(el.get("value") or "").lower(), text=f"protocol {el.get('value')}"))
    for rule in root.findall("rule"):
        if (rule.get("family") or "ipv4") != "ipv4":
            continue
        conditional = rule.find("source") is not None or rule.find("destination") is not None
        action = next((a for a in ("accept", "drop", "reject") if rule.find(a) is not None), None)
        if action is None:
            continue
        matched: list[tuple[str | None, tuple | None]] = []
        port = rule.find("port")
        svc = rule.find("service")
        if port is not None:
            matched.append(((port.get("protocol") or "tcp").lower(), port_ranges(port.get("port", ""))))
        elif svc is not None:
            matched.extend(_service_ports(host, svc.get("name", ""), rs.notes))
        else:
            matched.append((None, None))
        for proto, ranges in matched:
            r = Rule(action, proto=proto, ports=ranges, conditional=conditional, text="rich rule")
            (accepts if action == "accept" else drops).append(r)
    chain.rules = drops + accepts + opens
    rs.base.append(chain)
    return rs


# ---- ufw ------------------------------------------------------------------------

def ufw_enabled(host: Host) -> tuple[bool, str]:
    from .netconfig import parse_shell_vars

    path = "/etc/ufw/ufw.conf"
    text = host.read_text(path)
    value = parse_shell_vars(text or "").get("ENABLED", "")
    return value.lower() == "yes", f"ENABLED={value}" if text is not None else "missing"


def ufw_ruleset(host: Host) -> Ruleset:
    from .netconfig import parse_shell_vars

    rs = Ruleset("ufw")
    defaults = parse_shell_vars(host.read_text("/etc/default/ufw") or "")
    policy = defaults.get("DEFAULT_INPUT_POLICY", "DROP").upper()
    chain = Chain("ufw-user-input", policy="accept" if policy == "ACCEPT" else "drop",
                  where=f"ufw (default incoming policy {policy})")
    for path in ("/etc/ufw/user.rules", "/lib/ufw/user.rules"):
        text = host.read_text(path)
        if text is not None:
            rs.source = host.display(path)
            break
    else:
        text = ""
        rs.notes.append(f"no {host.display('/etc/ufw/user.rules')}: only the default policy applies")
    for line in text.splitlines():
        if not line.startswith("### tuple ###"):
            continue
        parts = line[len("### tuple ###"):].split()
        parts = [p for p in parts if not p.startswith("comment=")]
        if len(parts) < 6:
            continue
        action = parts[0]
        if action.startswith("route:"):
            continue
        action = action.split("_", 1)[0]
        direction = parts[-1] if parts[-1].startswith(("in", "out")) else "in"
        if direction.startswith("out"):
            continue
        proto, dport, dst, sport, src = parts[1:6]
        verdict = {"allow": "accept", "limit": "accept", "deny": "drop", "reject": "reject"}.get(action, "unknown")
        r = Rule(verdict, text=line.strip())
        r.proto = None if proto == "any" else proto.lower()
        if dport != "any":
            r.ports = port_ranges(dport)
            if r.ports is None:
                r.conditional = True
        if src not in ("0.0.0.0/0", "::/0") or sport != "any":
            r.conditional = True
        if dst not in ("0.0.0.0/0", "::/0", "any"):
            r.conditional = True
        if direction == "in_lo":
            r.skip = True
        elif direction.startswith("in_"):
            r.conditional = True
        if ":" in src or ":" in dst:
            r.skip = True  # an IPv6 rule in user.rules (should live in user6.rules)
        chain.rules.append(r)
    rs.base.append(chain)
    return rs


# ---- nftables (JSON from nft -j list ruleset) -------------------------------------

_L4 = ("tcp", "udp", "sctp", "dccp", "udplite")
_SERVICES = {"ssh": 22, "http": 80, "https": 443, "domain": 53, "bgp": 179, "vnc": 5900, "ftp": 21,
             "smtp": 25, "ntp": 123, "bootps": 67, "bootpc": 68}


def _proto_name(v) -> str:
    names = {6: "tcp", 17: "udp", 132: "sctp"}
    if isinstance(v, int):
        return names.get(v, "other")
    v = str(v).lower()
    return v if v in _L4 else "other"


def _nft_ports(right) -> tuple[tuple[int, int], ...] | None:
    def one(v):
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return [(v, v)]
        if isinstance(v, dict) and isinstance(v.get("range"), list) and len(v["range"]) == 2:
            a, b = v["range"]
            if isinstance(a, int) and isinstance(b, int):
                return [(min(a, b), max(a, b))]
        if isinstance(v, str) and v.isdigit():
            return [(int(v), int(v))]
        if isinstance(v, str) and v in _SERVICES:  # a name nft printed instead of a number
            return [(_SERVICES[v], _SERVICES[v])]
        return None

    items = right["set"] if isinstance(right, dict) and isinstance(right.get("set"), list) else [right]
    out = []
    for it in items:
        got = one(it)
        if got is None:
            return None
        out.extend(got)
    return tuple(out) or None


def _nft_match(r: Rule, m: dict) -> None:
    if not isinstance(m, dict):
        r.conditional = True
        return
    op, left, right = m.get("op", "=="), m.get("left"), m.get("right")
    positive = op in ("==", "in")
    if isinstance(left, dict) and "payload" in left and isinstance(left["payload"], dict):
        pl = left["payload"]
        proto, fld = pl.get("protocol"), pl.get("field")
        if fld == "dport" and proto in (*_L4, "th"):
            if proto != "th":
                r.proto = proto
            ports = _nft_ports(right)
            if positive and ports is not None:
                r.ports = ports
            else:
                r.conditional = True
            return
        if fld in ("protocol", "nexthdr") and proto in ("ip", "ip6"):
            if positive and not isinstance(right, dict):
                r.proto = _proto_name(right)
            else:
                r.conditional = True
            return
        if proto in ("icmp", "icmpv6", "igmp", "esp", "ah"):
            r.proto = "other"
            return
        if proto in _L4:
            r.proto = proto
        r.conditional = True
        return
    if isinstance(left, dict) and isinstance(left.get("meta"), dict):
        key = left["meta"].get("key")
        if key == "l4proto":
            if positive and not isinstance(right, dict):
                r.proto = _proto_name(right)
            else:
                r.conditional = True
            return
        if key in ("iif", "iifname") and positive and right == "lo":
            r.skip = True
            return
        if key == "nfproto" and positive:
            if right == "ipv6":
                r.skip = True
            return
        r.conditional = True
        return
    if isinstance(left, dict) and isinstance(left.get("ct"), dict) and left["ct"].get("key") == "state":
        states = right if isinstance(right, list) else [right]
        states = {str(s) for s in states}
        if positive and "new" not in states:
            r.skip = True
        elif not positive and "new" in states:
            r.skip = True
        elif not positive:
            r.conditional = True
        return
    r.conditional = True


_IGNORED_STMTS = ("counter", "log", "limit", "comment", "mangle", "notrack", "quota", "meter",
                  "set", "ct helper", "xt-comment")


def _nft_rules(exprs) -> list[Rule]:
    r = Rule()
    if not isinstance(exprs, list):
        return [Rule("unknown")]
    for e in exprs:
        if not isinstance(e, dict) or len(e) != 1:
            r.conditional = True
            continue
        (k, v), = e.items()
        if k == "match":
            _nft_match(r, v)
        elif k in ("accept", "drop", "return"):
            r.verdict = k
        elif k == "reject":
            r.verdict = "reject"
        elif k in ("jump", "goto"):
            r.verdict, r.target = k, (v or {}).get("target") if isinstance(v, dict) else None
        elif k == "continue":
            r.verdict = "none"
        elif k == "vmap" and isinstance(v, dict):
            data = v.get("data")
            elems = data.get("set") if isinstance(data, dict) else None
            if not isinstance(elems, list):
                return [r.copy(verdict="unknown")]
            out = []
            for pair in elems:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict)):
                    out.append(r.copy(verdict="unknown"))
                    continue
                sub = r.copy()
                _nft_match(sub, {"op": "==", "left": v.get("key"), "right": pair[0]})
                out.append(_verdicted(sub, pair[1]))
            return out
        elif k in _IGNORED_STMTS:
            pass
        elif k in ("queue", "xt"):
            if k == "xt" and isinstance(v, dict) and v.get("type") == "match":
                r.conditional = True
            else:
                r.verdict = "unknown"
        else:
            r.conditional = True
    return [r]


def _verdicted(r: Rule, verdict: dict) -> Rule:
    if len(verdict) != 1:
        r.verdict = "unknown"
        return r
    (k, v), = verdict.items()
    if k in ("accept", "drop", "reject", "return"):
        r.verdict = k
    elif k in ("jump", "goto"):
        r.verdict, r.target = k, v.get("target") if isinstance(v, dict) else None
    else:
        r.verdict = "unknown"
    return r


def nft_json_ruleset(doc) -> Ruleset:
    rs = Ruleset("nftables")
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        rs.notes.append("nft printed no 'nftables' array")
        return rs
    for it in items:
        c = it.get("chain") if isinstance(it, dict) else None
        if isinstance(c, dict):
            fam, table, name = str(c.get("family")), str(c.get("table")), str(c.get("name"))
            chain = Chain(name, where=f"{fam} {table} {name}", family=fam, table=table)
            if c.get("hook") == "input" and c.get("type", "filter") == "filter" and fam in ("ip", "inet"):
                chain.policy = str(c.get("policy", "accept"))
                rs.base.append(chain)
            rs.chains[(f"{fam} {table}", name)] = chain
    for it in items:
        r = it.get("rule") if isinstance(it, dict) else None
        if isinstance(r, dict):
            chain = rs.chains.get((f"{r.get('family')} {r.get('table')}", str(r.get("chain"))))
            if chain is not None:
                chain.rules.extend(_nft_rules(r.get("expr")))
    return rs


# ---- nftables (text: /etc/nftables.conf) ------------------------------------------

_NFT_TOKEN = r'"[^"]*"|\{|\}|,|[^\s{},]+'  # compiled on first use, not at import


def _nft_text_rule(stmt: str) -> Rule:
    toks = [t.strip('"') for t in re.findall(_NFT_TOKEN, stmt)]
    r = Rule(text=stmt)
    i = 0

    def value():
        nonlocal i
        if i < len(toks) and toks[i] == "{":
            j = toks.index("}", i) if "}" in toks[i:] else len(toks)
            vals = [t for t in toks[i + 1:j] if t != ","]
            i = j + 1
            return vals
        v = toks[i] if i < len(toks) else ""
        i += 1
        return [v] if "," not in v else v.split(",")

    while i < len(toks):
        t = toks[i]
        i += 1
        if t in ("accept", "drop", "reject", "return"):
            r.verdict = t
            if t == "reject":
                break
        elif t in ("jump", "goto"):
            r.verdict = t
            r.target = toks[i] if i < len(toks) else None
            i += 1
        elif t in ("counter", "log"):
            while i < len(toks) and toks[i] in ("prefix", "level", "packets", "bytes", "flags"):
                i += 2
        elif t == "ct" and i < len(toks) and toks[i] == "state":
            i += 1
            neg = i < len(toks) and toks[i] == "!="
            if neg:
                i += 1
            states = set(value())
            if ("new" not in states) != neg:
                r.skip = True
        elif t in ("iif", "iifname"):
            v = value()
            if v == ["lo"]:
                r.skip = True
            else:
                r.conditional = True
        elif t in (*_L4, "th") and i < len(toks) and toks[i] == "dport":
            i += 1
            if t != "th":
                r.proto = t
            neg = i < len(toks) and toks[i] == "!="
            if neg:
                i += 1
            ports = port_ranges(",".join(value()))
            if ports is None or neg:
                r.conditional = True
            else:
                r.ports = ports
        elif (t == "meta" and i < len(toks) and toks[i] == "l4proto") or (
                t in ("ip", "ip6") and i < len(toks) and toks[i] in ("protocol", "nexthdr")):
            i += 1
            vals = value()
            protos = {_proto_name(int(v) if v.isdigit() else v) for v in vals}
            if len(protos) == 1:
                r.proto = protos.pop()
            else:
                r.conditional = True
        elif t in ("icmp", "icmpv6", "igmp"):
            r.proto = "other"
            i += 1
            value()
        elif t == "meta" and i < len(toks) and toks[i] == "nfproto":
            i += 1
            if value() == ["ipv6"]:
                r.skip = True
        elif t in ("limit",):
            while i < len(toks) and toks[i] not in ("accept", "drop", "reject", "counter", "log", "jump", "goto"):
                i += 1
        elif t == "comment":
            i += 1
        else:
            r.conditional = True
            if i < len(toks) and toks[i] == "{":
                value()  # skip a set operand
    return r


def _nft_text_statements(text: str) -> list[str]:
    """Logical lines: comments dropped, continuation and open sets joined, ';' split at depth 0."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = re.sub(r'(^|\s)#.*$', "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if not line.strip():
            continue
        out.append(line.strip())
    return out


def nft_text_ruleset(text: str, read_include=None) -> Ruleset:
    rs = Ruleset("nftables")
    stack: list[tuple[str, object]] = []
    buf = ""
    lines = _nft_text_statements(text)
    while lines:
        line = lines.pop(0)
        if buf:
            line = buf + " " + line
            buf = ""
        m = re.match(r'include\s+"([^"]+)"', line)
        if m and read_include:
            lines = _nft_text_statements(read_include(m.group(1)) or "") + lines
            continue
        top = stack[-1] if stack else None
        if top and top[0] == "chain" and not line.startswith("}"):
            if line.count("{") > line.count("}"):
                buf = line
                continue
            chain: Chain = top[1]
            for stmt in re.split(r";(?![^{]*\})", line):
                stmt = stmt.strip()
                if not stmt:
                    continue
                if stmt == "}":
                    stack.pop()
                    continue
                if stmt.startswith("type "):
                    if re.search(r"\bhook\s+input\b", stmt) and re.search(r"\bfilter\b", stmt) \
                            and chain.family in ("ip", "inet"):
                        if chain.policy is None:
                            chain.policy = "accept"
                        if chain not in rs.base:
                            rs.base.append(chain)
                elif stmt.startswith("policy "):
                    chain.policy = "drop" if "drop" in stmt else "accept"
                elif stmt.endswith("}") and stmt.count("}") > stmt.count("{"):
                    chain.rules.append(_nft_text_rule(stmt[:-1]))
                    stack.pop()
                else:
                    chain.rules.append(_nft_text_rule(stmt))
            continue
        if line.startswith("}"):
            if stack:
                stack.pop()
            rest = line[1:].strip()
            if rest:
                lines.insert(0, rest)
            continue
        m = re.match(r"table\s+(?:(ip|ip6|inet|arp|bridge|netdev)\s+)?(\S+)\s*\{(.*)$", line)
        if m:
            stack.append(("table", (m.group(1) or "ip", m.group(2))))
            if m.group(3).strip():
                lines.insert(0, m.group(3).strip())
            continue
        m = re.match(r"chain\s+(\S+)\s*\{(.*)$", line)
        if m and top and top[0] == "table":
            fam, table = top[1]
            chain = Chain(m.group(1), where=f"{fam} {table} {m.group(1)}", family=fam, table=table)
            rs.chains[(f"{fam} {table}", m.group(1))] = chain
            stack.append(("chain", chain))
            if m.group(2).strip():
                lines.insert(0, m.group(2).strip())
            continue
        opened = line.count("{") - line.count("}")
        for _ in range(max(0, opened)):
            stack.append(("other", None))
        for _ in range(max(0, -opened)):
            if stack:
                stack.pop()
    if re.search(r"\bhook\s+input\b", text) and not rs.base:
        rs.notes.append("an input hook is declared in a form this reader does not follow")
        rs.base.append(Chain("input", [Rule("unknown")], policy="accept", where="nftables input"))
    return rs


# ---- iptables-save ---------------------------------------------------------------

def iptables_save_ruleset(text: str) -> Ruleset:
    rs = Ruleset("iptables")
    table = None
    declared: dict[str, str] = {}
    rules: list[tuple[str, list[str], str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
            continue
        if table != "filter" or not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith(":"):
            parts = line[1:].split()
            if parts:
                declared[parts[0]] = parts[1] if len(parts) > 1 else "-"
            continue
        try:
            toks = shlex.split(line)
        except ValueError:
            toks = line.split()
        if len(toks) >= 2 and toks[0] in ("-A", "--append"):
            rules.append((toks[1], toks[2:], line))
    for name, pol in declared.items():
        ch = Chain(name, where=f"iptables filter {name}", family="ip", table="filter")
        if name == "INPUT":
            ch.policy = "drop" if pol.upper() in ("DROP", "REJECT") else "accept"
            rs.base.append(ch)
        rs.chains[("ip filter", name)] = ch
    for name, toks, line in rules:
        ch = rs.chains.get(("ip filter", name))
        if ch is None:
            ch = rs.chains[("ip filter", name)] = Chain(name, family="ip", table="filter")
        ch.rules.append(_iptables_rule(toks, line, declared))
    return rs


def _iptables_rule(toks: list[str], line: str, chains: dict) -> Rule:
    r = Rule(text=line)
    i, neg = 0, False
    while i < len(toks):
        t = toks[i]
        arg = toks[i + 1] if i + 1 < len(toks) else ""
        if t == "!":
            neg = True
            i += 1
            continue
        if t in ("-p", "--protocol"):
            r.proto = None if arg in ("all", "0") else _proto_name(int(arg) if arg.isdigit() else arg)
            if neg:
                r.proto, r.conditional = None, True
            i += 2
        elif t in ("--dport", "--destination-port", "--dports", "--destination-ports"):
            ports = port_ranges(arg)
            if ports is None or neg:
                r.conditional = True
            else:
                r.ports = ports
            i += 2
        elif t in ("-i", "--in-interface"):
            if arg == "lo" and not neg:
                r.skip = True
            else:
                r.conditional = True
            i += 2
        elif t in ("--ctstate", "--state"):
            states = {s.upper() for s in arg.split(",")}
            if ("NEW" not in states) != neg:
                r.skip = True
            i += 2
        elif t in ("-s", "--source", "-d", "--destination"):
            if arg not in ("0.0.0.0/0", "0/0") or neg:
                r.conditional = True
            i += 2
        elif t in ("-m", "--match", "--comment", "--reject-with", "--log-prefix", "--log-level",
                   "--limit", "--limit-burst", "-c", "--set-counters"):
            i += 3 if t in ("-c", "--set-counters") else 2
        elif t in ("-j", "--jump", "-g", "--goto"):
            target = arg
            if target == "ACCEPT":
                r.verdict = "accept"
            elif target in ("DROP", "REJECT"):
                r.verdict = "drop" if target == "DROP" else "reject"
            elif target == "RETURN":
                r.verdict = "return"
            elif target in ("LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "TRACE"):
                r.verdict = "none"
            elif target in chains:
                r.verdict, r.target = ("goto" if t in ("-g", "--goto") else "jump"), target
            else:
                r.verdict = "unknown"
            i += 2
        elif t in ("--icmp-type", "--icmpv6-type"):
            r.proto = "other"
            i += 2
        elif t.startswith("-"):
            r.conditional = True
            i += 1
            if i < len(toks) and not toks[i].startswith("-") and toks[i] != "!":
                i += 1
        else:
            i += 1
        neg = False
    return r


# ---- hints --------------------------------------------------------------------

def open_hint(kind: str, specs: list[PortSpec], chain: Chain | None = None, zone: str | None = None) -> str:
    by_proto: dict[str, list[PortSpec]] = {}
    for s in specs:
        by_proto.setdefault(s.proto, []).append(s)
    if kind == "firewalld":
        adds = " ".join(f"--add-port={s.lo}-{s.hi}/{s.proto}" if s.lo != s.hi else f"--add-port={s.text}"
                        for s in specs)
        return f"firewall-cmd --permanent --zone={zone or 'public'} {adds} && firewall-cmd --reload"
    if kind == "ufw":
        return " && ".join(f"ufw allow {s.lo}:{s.hi}/{s.proto}" if s.lo != s.hi else f"ufw allow {s.text}"
                           for s in specs)
    if kind == "iptables":
        cmds = []
        for proto, ss in by_proto.items():
            ports = ",".join(f"{s.lo}:{s.hi}" if s.lo != s.hi else str(s.lo) for s in ss)
            cmds.append(f"iptables -I INPUT -p {proto} -m multiport --dports {ports} -j ACCEPT")
        return " && ".join(cmds) + " (then save: netfilter-persistent save or service iptables save)"
    where = f"{chain.family} {chain.table} {chain.name}" if chain else "inet filter input"
    cmds = []
    for proto, ss in by_proto.items():
        ports = ", ".join(f"{s.lo}-{s.hi}" if s.lo != s.hi else str(s.lo) for s in ss)
        cmds.append(f"nft insert rule {where} {proto} dport {{ {ports} }} accept")
    return " && ".join(cmds) + " (and add the rule to /etc/nftables.conf to keep it)"
