"""Run a profile's checks against a host: all of them, concurrently.

No check can stop another: a probe that raises becomes ``error`` (or
``skip`` when it needs root) for that check only, and the verdict comes at
the end, kubeadm-style.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from . import __version__
from .errors import NeedsRoot, ProbeError
from .facts import Facts
from .host import Host
from .model import CheckResult, CheckSpec, Evidence, Outcome, Status
from .profile import Profile
from .registry import Ctx, all_checks


class UsageError(Exception):
    """Bad input from the user (unknown ids...): exit status 2."""


@dataclass
class Report:
    host: Host
    facts: Facts
    profile: Profile
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def summary(self) -> dict:
        counts = {s.value: 0 for s in Status}
        for r in self.results:
            counts[r.status.value] += 1
        counts["ready"] = self.ready
        counts["blocking"] = [r.id for r in self.blocking]
        return counts

    @property
    def blocking(self) -> list[CheckResult]:
        return [r for r in self.results if r.severity == "required" and r.status is Status.FAIL]

    @property
    def ready(self) -> bool:
        return not self.blocking

    def result(self, check_id: str) -> CheckResult | None:
        return next((r for r in self.results if r.id == check_id), None)

    def to_document(self) -> dict:
        return {
            "tool": {"name": "kvmprep", "version": __version__},
            "root": str(self.host.root),
            "profile": self.profile.to_dict(),
            "host": self.facts.to_dict(),
            "checks": [r.to_dict() for r in self.results],
            "summary": self.summary,
        }


def parse_ignore(value: str | Iterable[str] | None, known: Iterable[str]) -> set[str]:
    """``--ignore a,b`` (or ``all``): ids must exist."""
    if not value:
        return set()
    items = value.split(",") if isinstance(value, str) else list(value)
    ids = {i.strip() for i in items if i.strip()}
    known = set(known)
    if "all" in ids:
        return known
    unknown = sorted(ids - known)
    if unknown:
        raise UsageError(f"--ignore: unknown check id {', '.join(unknown)} (see 'kvmprep check --list')")
    return ids


def run_one(spec: CheckSpec, severity: str, params: dict, host: Host, facts: Facts) -> CheckResult:
    started = time.perf_counter()
    if spec.needs_root and host.live and not host.is_root:
        outcome = Outcome(Status.SKIP, f"needs root: would read {spec.root_reads or 'root-only files'}")
    else:
        try:
            outcome = spec.func(Ctx(host, facts, {**spec.params, **params}, spec))
            if not isinstance(outcome, Outcome):
                raise TypeError(f"check returned {type(outcome).__name__}, not Outcome")
        except NeedsRoot as exc:
            outcome = Outcome(Status.SKIP, f"needs root: would read {exc.what}")
        except ProbeError as exc:
            outcome = Outcome(Status.ERROR, f"could not read {exc.source}: {exc.message}",
                              [Evidence(exc.source, exc.message)])
        except Exception as exc:  # a bug in one check must not stop the run
            outcome = Outcome(Status.ERROR, f"internal error in {spec.id}: {type(exc).__name__}: {exc}",
                              [Evidence(spec.id, repr(exc))])
    return CheckResult(
        id=spec.id, title=spec.title, category=spec.category, severity=severity,
        status=outcome.status, detail=outcome.detail, evidence=outcome.evidence,
        why=spec.why, source=spec.source, remediations=list(spec.remediations),
        needs_root=spec.needs_root, hint=outcome.hint,
        seconds=time.perf_counter() - started,
    )


def run_checks(
    host: Host,
    profile: Profile,
    ignore: Iterable[str] = (),
    on_result: Callable[[CheckResult, int, int], None] | None = None,
    workers: int = 8,
) -> Report:
    """Run every check of the profile; ``on_result(result, done, total)`` as each ends."""
    catalogue = all_checks()
    ignore = set(ignore)
    selected = [(catalogue[cid], entry) for cid, entry in
                sorted(profile.checks.items(), key=lambda kv: list(catalogue).index(kv[0]))]
    facts = Facts(host)
    report = Report(host, facts, profile)
    started = time.perf_counter()
    results: dict[str, CheckResult] = {}
    total = len(selected)

    def finish(res: CheckResult):
        if res.id in ignore and res.status is Status.FAIL:
            res.status, res.ignored = Status.WARN, True
        results[res.id] = res
        if on_result:
            on_result(res, len(results), total)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run_one, spec, entry.severity, entry.params, host, facts)
                   for spec, entry in selected]
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            finish(fut.result())
    report.results = [results[spec.id] for spec, _ in selected]
    report.seconds = time.perf_counter() - started
    return report
