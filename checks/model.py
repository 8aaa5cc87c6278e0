"""Plain data passed between the engine and its front ends."""

from __future__ import annotations

from enum import Enum
from collections.abc import Callable

from .record import FrozenRecord, Record


class Status(str, Enum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"

    @property
    def word(self) -> str:
        return self.value.upper()


SEVERITIES = ("required", "recommended", "info")


class Evidence(FrozenRecord):
    """One thing a check read: a path or a command, and what it found."""

    def __init__(self, source: str, value: str):
        self._fields(source=source, value=value)

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "value": self.value}


class Outcome(Record):
    """What a check function returns."""

    def __init__(self, status: Status, detail: str, evidence: list[Evidence] | None = None,
                 hint: str | None = None):
        self.status = status
        self.detail = detail
        self.evidence = [] if evidence is None else evidence
        self.hint = hint


def _ev(items) -> list[Evidence]:
    out = []
    for item in items:
        if isinstance(item, Evidence):
            out.append(item)
        elif item is not None:
            source, value = item
            out.append(Evidence(str(source), str(value)))
    return out


def passed(detail: str, *evidence, hint: str | None = None) -> Outcome:
    return Outcome(Status.PASS, detail, _ev(evidence), hint)


def warned(detail: str, *evidence, hint: str | None = None) -> Outcome:
    return Outcome(Status.WARN, detail, _ev(evidence), hint)


def failed(detail: str, *evidence, hint: str | None = None) -> Outcome:
    return Outcome(Status.FAIL, detail, _ev(evidence), hint)


def skipped(detail: str, *evidence, hint: str | None = None) -> Outcome:
    return Outcome(Status.SKIP, detail, _ev(evidence), hint)


class CheckSpec(FrozenRecord):
    """A registered check: stable id plus everything a front end explains."""

    def __init__(self, id: str, title: str, category: str, why: str, source: str,
                 func: Callable[..., Outcome], remediations: tuple[str, ...] = (),
                 needs_root: bool = False, root_reads: str = "", params: dict[str, object] | None = None):
        self._fields(id=id, title=title, category=category, why=why, source=source, func=func,
                     remediations=remediations, needs_root=needs_root, root_reads=root_reads,
                     params={} if params is None else params)


class CheckResult(Record):
    """A check's verdict under a profile: the unit every front end shows."""

    def __init__(self, id: str, title: str, category: str, severity: str, status: Status, detail: str,
                 evidence: list[Evidence], why: str, source: str, remediations: list[str], needs_root: bool,
                 hint: str | None = None, ignored: bool = False, seconds: float = 0.0):
        self.id = id
        self.title = title
        self.category = category
        self.severity = severity
        self.status = status
        self.detail = detail
        self.evidence = evidence
        self.why = why
        self.source = source
        self.remediations = remediations
        self.needs_root = needs_root
        self.hint = hint
        self.ignored = ignored
        self.seconds = seconds

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "severity": self.severity,
            "status": self.status.value,
            "detail": self.detail,
            "evidence": [e.to_dict() for e in self.evidence],
            "why": self.why,
            "source": self.source,
            "remediations": list(self.remediations),
            "needs_root": self.needs_root,
            "hint": self.hint,
            "ignored": self.ignored,
        }
