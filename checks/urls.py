"""The parts of a repository URL that the OS checks look at (scheme, host,
path), as ``urllib.parse.urlparse`` gives them, without importing urllib
(about 2 ms of the check path's start-up). tests/test_urls.py compares the
two on the URL forms apt, dnf and zypper sources use."""

from __future__ import annotations

import re

from .record import FrozenRecord

# scheme ":" ["//" authority] path  (RFC 3986; '?' and '#' end the path)
_URL = r"([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#]*))?([^?#]*)"


class UrlParts(FrozenRecord):
    def __init__(self, scheme: str, hostname: str | None, path: str):
        self._fields(scheme=scheme, hostname=hostname, path=path)


def url_parts(url: str) -> UrlParts:
    """scheme (lower case), hostname (lower case, no user, port or IPv6
    brackets; None if there is none) and path."""
    m = re.match(_URL, url.strip())
    if not m:
        return UrlParts("", None, url)
    scheme, authority, path = m.group(1).lower(), m.group(2) or "", m.group(3)
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    else:
        host = host.partition(":")[0]
    return UrlParts(scheme, host.lower() or None, path)
