"""Plain data passed between the engine and its front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from collections.abc import Callable


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


@dataclass(frozen=True)
class Evidence:
    """One thing a check read: a path or a command, and what it found."""

    source: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "value": self.value}


@dataclass
class Outcome:
    """What a check function returns."""

    status: Status
    detail: str
    evidence: list[Evidence] = field(default_factory=list)
    hint: str | None = None


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


@dataclass(frozen=True)
class CheckSpec:
    """A registered check: stable id plus everything a front end explains."""

    id: str
    title: str
    category: str
    why: str
    source: str
    func: Callable[..., Outcome]
    remediations: tuple[str, ...] = ()
    needs_root: bool = False
    root_reads: str = ""
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class CheckResult:
    """A check's verdict under a profile: the unit every front end shows."""

    id: str
    title: str
    category: str
    severity: str
    status: Status
    detail: str
    evidence: list[Evidence]
    why: str
    source: str
    remediations: list[str]
    needs_root: bool
    hint: str | None = None
    ignored: bool = False
    seconds: float = 0.0

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
