"""Run a profile's checks against a host: all of them, concurrently.

No check can stop another: a probe that raises becomes ``error`` (or
``skip`` when it needs root) for that check only, and the verdict comes at
the end, kubeadm-style.
"""

from __future__ import annotations

import threading
import time
from _queue import SimpleQueue  # the C queue: no logging/concurrent.futures import cost
from collections.abc import Callable, Iterable

from . import REPORT_FORMAT, __version__
from .errors import NeedsRoot, ProbeError
from .facts import Facts
from .host import Host
from .model import CheckResult, CheckSpec, Evidence, Outcome, Status
from .profile import Profile
from .record import Record
from .registry import Ctx, all_checks


class UsageError(Exception):
    """Bad input from the user (unknown ids...): exit status 2."""


class Report(Record):
    def __init__(self, host: Host, facts: Facts, profile: Profile, results: list[CheckResult] | None = None,
                 seconds: float = 0.0):
        self.host = host
        self.facts = facts
        self.profile = profile
        self.results = [] if results is None else results
        self.seconds = seconds

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
            "format": REPORT_FORMAT,
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
    workers: int = 1,
    facts: Facts | None = None,
) -> Report:
    """Run every check of the profile; ``on_result(result, done, total)`` as each ends.

    Pass ``facts`` whose ``prefetch()`` was started early (the CLI does so
    before importing the catalogue) to overlap the slow probes with imports.
    """
    catalogue = all_checks()
    ignore = set(ignore)
    selected = [(catalogue[cid], entry) for cid, entry in
                sorted(profile.checks.items(), key=lambda kv: list(catalogue).index(kv[0]))]
    if facts is None:
        facts = Facts(host)
        facts.prefetch()
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

    # The checks are mostly Python work (the GIL lets one run at a time) and
    # the slow waits (KVM_CREATE_VM, systemctl, the kernel log) already run
    # in Facts.prefetch's threads: so by default they run one after another
    # in this thread. Measured on a 2-core host: 1 beats 2, and 2 beats 8.
    if workers <= 1:
        for spec, entry in selected:
            finish(run_one(spec, entry.severity, entry.params, host, facts))
    else:
        _run_threaded(selected, workers, host, facts, finish)
    report.results = [results[spec.id] for spec, _ in selected]
    report.seconds = time.perf_counter() - started
    return report


def _run_threaded(selected, workers, host, facts, finish) -> None:
    pending = list(selected)
    done: SimpleQueue = SimpleQueue()
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                spec, entry = pending.pop(0)
            done.put(run_one(spec, entry.severity, entry.params, host, facts))

    threads = [threading.Thread(target=worker, daemon=True, name=f"kvmprep-check-{i}")
               for i in range(min(workers, len(selected)))]
    for t in threads:
        t.start()
    for _ in range(len(selected)):
        finish(done.get())
    for t in threads:
        t.join()
