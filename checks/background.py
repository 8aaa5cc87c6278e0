"""A check run started before anyone asks for it, and joined later.

The wizard knows the host and the default profile as soon as its welcome
screen shows; the admin reads it for a second or more before pressing Enter.
Detection starts then, in a thread, and the detection screen joins the run:
results already decided are replayed to it, the rest arrive as they are
decided. A run is only joined while it is fresh (``fresh_for`` seconds from
its start): a screen that states the host's condition states it as of now.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .facts import Facts
from .host import Host
from .model import CheckResult
from .profile import Profile
from .runner import Report, run_checks

OnResult = Callable[[CheckResult, int, int], None]


class BackgroundRun:
    """``run_checks`` in a daemon thread; ``join(on_result)`` from any thread."""

    def __init__(self, host: Host, facts: Facts, profile: Profile, clock=time.monotonic):
        self.host, self.facts, self.profile = host, facts, profile
        self._clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._seen: list[tuple[CheckResult, int, int]] = []
        self._listeners: list[OnResult] = []
        self._done = threading.Event()
        self.report: Report | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="kvmprep-early-detection")

    def start(self) -> "BackgroundRun":
        self.facts.prefetch()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.report = run_checks(self.host, self.profile, on_result=self._decided, facts=self.facts)
        except BaseException as exc:  # handed to whoever joins; never lost in a thread
            self.error = exc
        finally:
            self._done.set()

    def _decided(self, result: CheckResult, done: int, total: int) -> None:
        with self._lock:
            self._seen.append((result, done, total))
            for listener in self._listeners:  # listeners must not block (the wizard posts a message)
                listener(result, done, total)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def fresh(self, profile: Profile, fresh_for: float) -> bool:
        """Worth joining for ``profile``: the same profile, started at most ``fresh_for`` s ago."""
        return profile is self.profile and self._clock() - self.started <= fresh_for

    def join(self, on_result: OnResult | None = None) -> Report:
        """Every result so far to ``on_result``, then each new one as decided;
        returns the report when the run ends (re-raises its error)."""
        if on_result is not None:
            with self._lock:  # in order, none twice: a result is either replayed or sent
                for item in self._seen:
                    on_result(*item)
                self._listeners.append(on_result)
        self._done.wait()
        if self.error is not None:
            raise self.error
        return self.report
