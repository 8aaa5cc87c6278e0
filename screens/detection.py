"""Step 2: every check runs in a worker; results appear as they are decided."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Log, Static

from .base import WizardScreen
from .style import bar


class ResultDecided(Message):
    """Posted from the worker thread as each check is decided (non-blocking)."""

    def __init__(self, result, done: int) -> None:
        super().__init__()
        self.result, self.done = result, done


class DetectionDone(Message):
    """Posted after the last ResultDecided, so the results screen opens after every row."""

    def __init__(self, host, facts, report) -> None:
        super().__init__()
        self.host, self.facts, self.report = host, facts, report


class DetectionScreen(WizardScreen):
    STEP = "2/8 Detection"
    HELP = ("kvmprep runs every check of the profile at once; each result appears as soon as it is "
            "decided. The results screen opens by itself when all are done.")
    BINDINGS = [Binding("escape", "back", "Back", id="back")]

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(f"Checking {self.state.profile.name} requirements...", classes="title")
        yield Static("", id="progress")
        yield Log(id="detection-log", highlight=False)
        yield self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.total = len(self.state.profile.checks)
        self.pending: list[str] = []
        self.done_count = 0
        self.show_progress(0)
        self.set_interval(0.5 if self.app.options.slow else 0.1, self.flush)
        state = self.state
        early = state.early
        if (state.report is None and early is not None and early.done and early.error is None
                and early.fresh(state.profile, state.EARLY_FRESH_FOR)):
            # decided while the admin read the welcome screen: straight to the results
            state.early = None
            self.finished(early.host, early.facts, early.join())
            return
        self.run_detection()

    def show_progress(self, done: int) -> None:
        self.query_one("#progress", Static).update(bar(done, self.total, "checks"))

    @work(thread=True, exclusive=True, group="detect")
    def run_detection(self) -> None:
        from checks.facts import Facts
        from checks.host import Host
        from checks.runner import run_checks

        def on_result(result, done, total):
            # post, do not wait: call_from_thread would block the checks on every frame
            self.post_message(ResultDecided(result, done))

        state = self.state
        early, state.early = state.early, None  # joined at most once
        if state.report is None and early is not None and early.fresh(state.profile, state.EARLY_FRESH_FOR):
            # started on the welcome screen moments ago: its results so far, then the rest
            report = early.join(on_result)
            self.post_message(DetectionDone(early.host, early.facts, report))
            return
        old = state.host
        if state.report is None and early is None:
            host, facts = old, state.facts  # the first run: the welcome screen's facts are fresh
        else:
            host = Host(old.root, env=old.env, euid=old.euid, live=old.live)  # nothing cached
            facts = Facts(host)
        facts.prefetch()
        report = run_checks(host, state.profile, on_result=on_result, facts=facts)
        self.post_message(DetectionDone(host, facts, report))

    def on_result_decided(self, message: ResultDecided) -> None:
        self.add_result(message.result, message.done)

    def add_result(self, result, done: int) -> None:
        self.pending.append(f"{result.status.word:<5} {result.id:<26} {result.detail}")
        self.done_count = done

    def flush(self) -> None:
        """Batched: one refresh per tick, however many results arrived (slow links)."""
        if self.pending:
            self.query_one(Log).write_lines(self.pending)
            self.pending = []
            self.show_progress(self.done_count)

    def on_detection_done(self, message: DetectionDone) -> None:
        self.finished(message.host, message.facts, message.report)

    def finished(self, host, facts, report) -> None:
        from .results import ResultsScreen

        self.flush()
        self.state.host, self.state.facts, self.state.report = host, facts, report
        self.state.plan = None
        self.app.switch_screen(ResultsScreen())

    def action_back(self) -> None:
        self.workers.cancel_group(self, "detect")
        self.app.pop_screen()
