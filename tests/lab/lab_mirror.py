"""The Debian mirror for the lab, read from this machine's own apt sources.

The lab builds and updates its hosts from whatever mirror the machine is
configured with (a CI image may point at a snapshot or a local proxy), so no
host name is written here: the ``deb`` lines of ``/etc/apt/sources.list`` and
``*.list``, and the deb822 stanzas of ``*.sources`` (``URIs:``/``Suites:``),
are read at run time. Files apt itself ignores (``*.disabled-by-...``) are
ignored too.
"""

from __future__ import annotations

import glob
import os
import urllib.request
from typing import List, NamedTuple, Optional

SUITE = "bookworm"  # Debian 12


class Source(NamedTuple):
    uri: str
    suite: str


def _one_line_sources(text: str) -> List[Source]:
    out = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        rest = words[1:]
        if rest[0].startswith("["):  # options: [arch=amd64 signed-by=...]
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            out.append(Source(rest[0].rstrip("/"), rest[1]))
    return out


def _deb822_sources(text: str) -> List[Source]:
    out = []
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []) or fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        out += [Source(u.rstrip("/"), s) for u in fields.get("uris", []) for s in fields.get("suites", [])]
    return out


def machine_sources(etc: str = "/etc/apt") -> List[Source]:
    found: List[Source] = []
    for path in [os.path.join(etc, "sources.list")] + sorted(glob.glob(os.path.join(etc, "sources.list.d", "*"))):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            found += _deb822_sources(text)
        elif path.endswith(".list"):
            found += _one_line_sources(text)
    return [s for s in found if s.uri.startswith(("http://", "https://"))]


class Mirror(NamedTuple):
    archive: str  # for bookworm and bookworm-updates
    security: Optional[str]
    updates: bool

    def sources_list(self) -> str:
        """The lab host's /etc/apt/sources.list: what a Debian 12 server has."""
        lines = [f"deb {self.archive} {SUITE} main"]
        if self.updates:
            lines.append(f"deb {self.archive} {SUITE}-updates main")
        if self.security:
            lines.append(f"deb {self.security} {SUITE}-security main")
        return "\n".join(lines) + "\n"


def find_mirror(etc: str = "/etc/apt") -> Optional[Mirror]:
    sources = machine_sources(etc)
    archive = next((s.uri for s in sources if s.suite == SUITE), None)
    if archive is None:
        return None
    security = next((s.uri for s in sources if s.suite == f"{SUITE}-security"), None)
    updates = any(s.uri == archive and s.suite == f"{SUITE}-updates" for s in sources)
    return Mirror(archive, security, updates)


def reachable(mirror: Mirror, timeout: float = 10) -> Optional[str]:
    """None when the mirror answers for Debian 12, else why not."""
    url = f"{mirror.archive}/dists/{SUITE}/InRelease"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as resp:
            if resp.status == 200:
                return None
            return f"{url} answered HTTP {resp.status}"
    except Exception as exc:  # DNS, refused, timeout, HTTP error: the lab cannot install anything
        return f"{url}: {exc}"
