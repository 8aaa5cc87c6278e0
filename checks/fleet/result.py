"""A fleet check's answer, and the small helpers every fleet check words with."""

from __future__ import annotations

from ..record import Record


class FleetResult(Record):
    """``status`` is the check's own verdict (pass/warn/fail); the engine applies
    the profile's severity (a recommended check's fail is reported as warn).
    ``hosts``: the hosts the detail is about (those that differ, the duplicates),
    ``data``: the same facts as JSON for scripts."""

    def __init__(self, id: str, status: str, detail: str, hosts: list[str] | None = None,
                 recommendation: str | None = None, data: dict | None = None):
        self.id = id
        self.title = ""
        self.severity = "required"
        self.status = status
        self.detail = detail
        self.hosts = [] if hosts is None else hosts
        self.recommendation = recommendation
        self.data = {} if data is None else data

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "severity": self.severity, "status": self.status,
                "detail": self.detail, "hosts": self.hosts, "recommendation": self.recommendation,
                "data": self.data}


def listed(names, limit: int = 6) -> str:
    """'a, b, c' or 'a, b, c, d, e, f (+94 more)': a fleet of 1000 stays one line."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" (+{len(names) - limit} more)"


def on_every(n: int) -> str:
    return "on the only host" if n == 1 else "on both hosts" if n == 2 else f"on all {n} hosts"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def grouped(values: dict[str, list[str]]) -> list[tuple[str, list[str]]]:
    """``value -> hosts`` as (value, hosts), the most common value first (ties in
    the order first seen): the majority is the reference, the rest differ."""
    order = {v: i for i, v in enumerate(values)}
    return sorted(values.items(), key=lambda kv: (-len(kv[1]), order[kv[0]]))
