"""Step 7: the apply, one row per action with its state and a live log.

The apply runs as its own process in its own session (``kvmprep apply
PLAN --yes --foreground --events FILE``): quitting the wizard or losing the
SSH connection does not stop it, and ``kvmprep apply --attach`` follows it
again. This screen follows its events file; log lines are batched."""

from __future__ import annotations

import json
import os
import subprocess
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Log, Static

from remediations.relaunch import in_systemd_unit, kvmprep_argv, systemd_run_usable

from .base import WizardScreen
from .style import status_text


# Glyphs commands print in a UTF-8 locale ("Created symlink a \u2192 b" from
# systemctl, typographic quotes from apt/dpkg translations), in ASCII; any
# other non-ASCII character is shown as "?".
_ASCII = {"\u2192": "->", "\u2190": "<-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
          "\u2026": "...", "\u2013": "-", "\u2014": "-", "\u2022": "*", "\u00a0": " "}


def ascii_line(text: str) -> str:
    """``text`` with only ASCII characters, for the console (TERM=linux, --ascii)."""
    return text if text.isascii() else "".join(_ASCII.get(c, c if c < "\x80" else "?") for c in text)


class ApplyScreen(WizardScreen):
    STEP = "7/8 Apply"
    HELP = ("The fixes are being applied, in order; each row shows its action's state and the log "
            "shows the commands' output. If an action fails the apply stops there; u undoes what was "
            "done. When it has finished, Enter shows the summary.")
    BINDINGS = [
        Binding("enter", "next", "Summary", id="next", priority=True),
        Binding("n", "next", "Summary", show=False, id="next-n"),
        Binding("u", "undo", "Undo", id="undo"),
    ]

    def __init__(self, plan) -> None:
        super().__init__()
        self.plan = plan
        self.pos = 0
        self.pending_lines: list[str] = []
        self.finished: dict | None = None
        self.rows: list[str] = []
        self.proc = None
        self.round_offset = 0
        self.undo_state: str | None = None  # None, "running", "done", "incomplete"

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static("Applying... (the apply goes on if this window closes)", id="apply-status", classes="title")
        yield DataTable(id="apply-table", cursor_type="row")
        yield Log(id="apply-log", highlight=False, max_lines=5000)
        yield self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_column("State", width=15, key="state")
        table.add_column("Action", key="action")
        for si, step in enumerate(self.plan.steps):
            for ai, action in enumerate(step.actions):
                key = f"{si}:{ai}"
                self.rows.append(key)
                table.add_row(status_text("waiting"), Text(f"{step.remediation}: {action.summary()}"), key=key)
        self.start()
        every = 1.0 if self.app.options.slow else 0.2
        self.set_interval(every, self.poll)

    def start(self) -> None:
        from remediations.journal import Journal

        host = self.state.host
        journal = Journal(host)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # kvmprep's state, confined to the root (no symlink is followed out of it)
        plan_path = journal.entry_path(f"plan-{stamp}.json")
        with open(journal.open_entry(f"plan-{stamp}.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as fh:
            json.dump(self.plan.to_dict(), fh)
        self.journal = journal
        self.events_name = f"events-{stamp}.jsonl"
        self.events_path = journal.entry_path(self.events_name)
        os.close(journal.open_entry(self.events_name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
        # O_APPEND: with a systemd unit, the unit and its systemd-run client both write here
        out = journal.open_entry("apply.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        profile = self.state.profile
        argv = kvmprep_argv("apply", plan_path, "--yes", "--foreground",
                            "--root", str(host.root), "--profile", profile.file, "--events", self.events_path)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if systemd_run_usable(host):
            # a transient unit, outside the SSH session: logind ending the session kills
            # every process of its scope (its own process session or not); --wait keeps a
            # client to poll, whose status is the apply's
            argv = in_systemd_unit(argv, f"kvmprep-apply-{stamp}", journal.entry_path("apply.out"), env, wait=True)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                     start_new_session=True)
        os.close(out)
        self.app.apply_running = True
        self.row_index = 0

    def poll(self) -> None:
        try:
            fd = os.open(self.events_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)  # kvmprep's own file
            with open(fd, encoding="utf-8", errors="replace") as fh:
                fh.seek(self.pos)
                chunk = fh.read()
        except OSError:
            chunk = ""
        # only whole lines: the writer may be in the middle of one
        end = chunk.rfind("\n") + 1
        self.pos += len(chunk[:end].encode())
        for line in chunk[:end].splitlines():
            try:
                self.on_apply_event(json.loads(line))
            except ValueError:
                continue
        if self.pending_lines:
            self.write_log(self.pending_lines)
            self.pending_lines = []
        if self.finished is None and self.proc is not None and self.proc.poll() is not None:
            # the process ended without a final event: it failed before or outside the plan
            self.done({"event": "finished", "ok": False, "verification": {}, "actions": [],
                       "error": f"the apply process exited with status {self.proc.returncode}; "
                                f"see {os.path.join(os.path.dirname(self.events_path), 'apply.out')}"})

    def on_apply_event(self, event: dict) -> None:
        kind = event.get("event")
        table = self.query_one(DataTable)
        if kind == "line":
            self.pending_lines.append(event.get("text", ""))
        elif kind == "second-round":
            base = self.round_offset = len(self.plan.steps)
            for si, step in enumerate(event.get("steps", [])):
                for ai, action in enumerate(step.get("actions", [])):
                    key = f"{base + si}:{ai}"
                    if key not in self.rows:
                        self.rows.append(key)
                        table.add_row(status_text("waiting"), Text(f"{step['remediation']}: {action.get('kind')}"),
                                      key=key)
        elif kind in ("action-start", "action"):
            rep = event["report"]
            key = self._row_for(rep)
            if key is None:
                return
            state = "running" if kind == "action-start" else rep["status"]
            table.update_cell(key, "state", status_text(state))
            table.update_cell(key, "action", Text(f"{rep['remediation']}: {rep['summary']}"))
            table.move_cursor(row=table.get_row_index(key))
            # a failure's message and output are in the log already: the apply logs them as lines
        elif kind == "finished":
            self.done(event)

    def write_log(self, lines: list[str]) -> None:
        """Lines wrapped to the log's width, continuing indented under
        themselves (a Log does not wrap: the end of a long apt-get command
        line, and of its error, would be off the screen)."""
        from .wrap import hanging

        log = self.query_one(Log)
        width = (log.content_size.width or self.app.size.width) - 1
        if self.ascii:  # the console: the commands' own glyphs too (tests/lab found systemctl's arrow)
            lines = [ascii_line(line) for line in lines]
        log.write_lines([piece for line in lines for piece in hanging(line, width)])

    def _row_for(self, rep: dict) -> str | None:
        # reports count steps within their own round; the second round's come after its marker
        key = f"{rep['step'] + self.round_offset}:{rep['index']}"
        return key if key in self.rows else None

    def done(self, event: dict) -> None:
        if self.finished is not None:
            return
        self.finished = event
        self.state.apply_finished = event
        self.app.apply_running = False
        status = self.query_one("#apply-status", Static)
        if event.get("ok"):
            status.update(Text("DONE: every action finished. Enter: summary.", style="bold green"))
        else:
            table = self.query_one(DataTable)
            for key in self.rows:  # the apply stopped: what never started will not run now
                if table.get_cell(key, "state").plain == status_text("waiting").plain:
                    table.update_cell(key, "state", status_text("not-run"))
            msg = event.get("error") or "an action failed: the apply stopped there (see the log)."
            undo = " u: undo what was done," if self._changed_anything() else ""
            status.update(Text(f"FAILED: {msg}{undo} Enter: summary.", style="bold red"))
        self.write_log(self.pending_lines)
        self.pending_lines = []
        self.refresh_bindings()

    def check_action(self, action: str, parameters) -> bool | None:
        """Keys appear only when their action can happen: Summary once the
        apply (and any undo) has ended, Undo once it stopped with something
        done and not undone yet."""
        if action == "next":
            return self.finished is not None and self.undo_state != "running"
        if action == "undo":
            return self.finished is not None and self.undo_state is None and self._changed_anything()
        return True

    def _changed_anything(self) -> bool:
        return any(a.get("status") in ("done", "pending-reboot", "failed")
                   for a in (self.finished or {}).get("actions", []))

    def action_next(self) -> None:
        if self.finished is None:
            self.notify("The apply is still running.", timeout=3)
            return
        from .summary import SummaryScreen

        self.app.push_screen(SummaryScreen())

    def action_undo(self) -> None:
        if self.finished is None:
            self.notify("Wait for the apply to stop before undoing.", timeout=3)
            return
        from .confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.undo_state = "running"
                self.refresh_bindings()
                self.query_one("#apply-status", Static).update(Text("Undoing...", style="bold"))
                self.run_undo()

        self.app.push_screen(ConfirmScreen(text="Undo what this apply did, in reverse order?\n"
                                                "Files are restored from their backups and the units it "
                                                "enabled are disabled; installed packages stay (listed with "
                                                "the command that removes them).", yes="Yes, undo"), answered)

    @work(thread=True, exclusive=True, group="undo")
    def run_undo(self) -> None:
        from remediations.journal import Journal
        from remediations.undo_report import undo_outcomes

        host = self.state.host
        journal = Journal(host)
        ids = journal.last_undoable_group()
        argv = kvmprep_argv("undo", "--yes", "--root", str(host.root))
        if systemd_run_usable(host):
            # like the apply: in a unit of its own, so that the SSH session ending does not stop it
            os.close(journal.open_entry("undo.out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
            unit = f"kvmprep-undo-{time.strftime('%Y%m%d-%H%M%S')}"
            argv = in_systemd_unit(argv, unit, journal.entry_path("undo.out"), dict(os.environ), wait=True)
            rc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True).returncode
            out = journal.read_entry("undo.out") or b""
            lines = out.decode("utf-8", "replace").splitlines()
        else:
            proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            rc, lines = proc.returncode, (proc.stdout + proc.stderr).splitlines()
        outcomes = undo_outcomes(Journal(host), ids) if ids else {}
        self.app.call_from_thread(self.undone, rc, lines, outcomes)

    def undone(self, rc: int, lines: list[str], outcomes: dict | None = None) -> None:
        """The rows say what the undo did to each action (the host as it is now)."""
        outcomes = outcomes or {}
        self.undo_state = "done" if rc == 0 else "incomplete"
        self.state.undo_result = {"ok": rc == 0, "lines": lines, "outcomes": outcomes}
        table = self.query_one(DataTable)
        for key in self.rows:
            label = table.get_cell(key, "action").plain
            if label in outcomes:
                table.update_cell(key, "state", status_text(outcomes[label][0]))
        self.write_log(["", "--- undo ---", *lines])
        self.query_one("#apply-status", Static).update(
            Text("UNDONE: the apply was reverted. Enter: summary." if rc == 0
                 else "UNDO incomplete: see the log. Enter: summary.", style="bold"))
        self.refresh_bindings()
