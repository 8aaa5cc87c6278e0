"""Step 8: what changed, the checks run again for each fix, what waits for a
reboot, where the log, backups and journal are, how to undo; save the
report (the JSON document of `kvmprep check`)."""

from __future__ import annotations

import json
import os
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Static

from .base import WizardScreen
from .style import status_text


class SummaryScreen(WizardScreen):
    STEP = "8/8 Summary"
    HELP = ("What the apply changed (and whether it was undone), each fix with the checks it was "
            "meant to fix as they are now (run again when this screen opens), what waits for a reboot, "
            "and where kvmprep kept the log, the backups and the journal. s saves the full report (the "
            "JSON of 'kvmprep check') to the file named below; q quits.")
    BINDINGS = [
        Binding("s", "save", "Save report", id="save"),
        Binding("escape,b", "back", "Back", id="back"),
    ]

    def compose(self) -> ComposeResult:
        yield self.header()
        with VerticalScroll(id="summary-scroll"):
            yield Static(self.summary(), id="summary-text")
        with Horizontal(id="save-row"):
            yield Static("Report file:", classes="title")
            yield Input(value=self.state.report_path(time.strftime("%Y%m%d-%H%M%S")), id="save-path")
        yield self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.now: dict | None = None  # the fixed checks as they are now
        self.answers_file, self.answers_error = self.save_answers()
        self.query_one("#summary-text", Static).update(self.summary())
        self.query_one("#summary-scroll").focus()
        self.recheck()

    def save_answers(self) -> tuple[str | None, str | None]:
        """The choices of this run, to replay on other hosts (remediations/answers.py):
        written next to the report, never over an existing file."""
        path = self.state.answers_path(time.strftime("%Y%m%d-%H%M%S"))
        try:
            text = self.state.answers().to_yaml()
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            return None, f"{path}: {exc.strerror}"
        return path, None

    @work(thread=True, exclusive=True, group="recheck")
    def recheck(self) -> None:
        """The checks the fixes were meant to fix, run again now: after an undo
        (or anything else since the apply) the summary states the host as it is."""
        from checks.host import Host
        from checks.profile import Entry, Profile
        from checks.registry import all_checks
        from checks.runner import run_checks

        ev = self.state.apply_finished or {}
        wanted = [c for ids in ev.get("fixes", {}).values() for c in ids if c in all_checks()]
        if not wanted:
            return
        old, profile = self.state.host, self.state.profile
        host = Host(old.root, env=old.env, euid=old.euid, live=old.live)
        entries = {c: profile.checks.get(c, Entry("required")) for c in wanted}
        report = run_checks(host, Profile(profile.name, profile.description, profile.file, checks=entries))
        now = {r.id: {"status": r.status.value, "detail": r.detail} for r in report.results}
        self.app.call_from_thread(self.rechecked, now)

    def rechecked(self, now: dict) -> None:
        self.now = now
        self.query_one("#summary-text", Static).update(self.summary())

    def summary(self) -> Text:
        ev = self.state.apply_finished or {}
        undo = self.state.undo_result
        t = Text()
        ok = ev.get("ok")
        if undo is not None:
            t.append(" UNDONE " if undo["ok"] else " UNDO INCOMPLETE ",
                     style="bold yellow reverse" if undo["ok"] else "bold red reverse")
            t.append(" the apply was reverted\n" if undo["ok"] else " some actions could not be reverted (below)\n")
            for line in undo["lines"]:
                if line.strip().startswith(("NOT reverted", "note:")):
                    t.append(f"  {line.strip()}\n")
        else:
            t.append(" APPLIED " if ok else " STOPPED ", style=("bold green reverse" if ok else "bold red reverse"))
            t.append(" every action finished\n" if ok else " an action failed; what ran before it is recorded\n")
        if ev.get("error"):
            t.append(ev["error"] + "\n")
        now = getattr(self, "now", None)
        verification = now if now is not None else ev.get("verification", {})
        t.append("checks as they are now\n" if now is not None else "checks as they were after the apply "
                 "(checking again...)\n", style="italic")
        by_fix: dict[str, list] = {}
        for a in ev.get("actions", []):
            by_fix.setdefault(a["remediation"], []).append(a)
        outcomes = (undo or {}).get("outcomes") or {}
        reboot = []
        for rid, actions in by_fix.items():
            t.append(f"\n{rid}\n", style="bold")
            for a in actions:
                # after an undo: what the undo did to it (the host as it is now)
                status, message = outcomes.get(f"{rid}: {a['summary']}", (a["status"], a.get("message")))
                t.append("  ")
                t.append_text(status_text(status))
                t.append(f"  {a['summary']}" + (f" ({message})" if message else "") + "\n")
                if status == "pending-reboot":
                    reboot.append(a["summary"])
            for cid in ev.get("fixes", {}).get(rid, []):
                v = verification.get(cid)
                if v:
                    t.append(f"  check {cid}: ")
                    t.append_text(status_text(v["status"]))
                    t.append(f" - {v['detail']}\n")
        if reboot:
            t.append("\nWaits for a reboot:\n", style="bold")
            for r in reboot:
                t.append(f"  - {r}\n")
        t.append("\nLog:     ", style="bold")
        t.append(f"{ev.get('log', '-')}\n")
        t.append("Backups: ", style="bold")
        t.append(f"{ev.get('backups', '-')}\n")
        t.append("Journal: ", style="bold")
        t.append(f"{ev.get('journal', '-')}\n")
        root = self.state.host.root
        answers_file = getattr(self, "answers_file", None)
        if answers_file or getattr(self, "answers_error", None):
            t.append("Answers: ", style="bold")
            if answers_file:
                t.append(f"{answers_file}\n")
                t.append("  the same choices on another host: ", style="italic")
                t.append(f"kvmprep apply --answers {answers_file} --yes\n")
                t.append("  on a fleet (Ansible): ", style="italic")
                t.append(f"kvmprep ansible -o DIR --answers {answers_file}\n")
            else:
                t.append(f"not saved ({self.answers_error})\n")
        t.append("Undo:    ", style="bold")
        if undo is not None and undo["ok"]:
            t.append("done (see each action above)\n")
        else:
            t.append("kvmprep undo" + ("" if str(root) == "/" else f" --root {root}") + "\n")
        from .wrap import wrap_styled

        return wrap_styled(t, self.app.size.width - 3, under=4)  # details continue indented

    def action_save(self) -> None:
        self.save_report(self.query_one("#save-path", Input).value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.save_report(event.value)

    @work(thread=True, exclusive=True, group="save")
    def save_report(self, path: str) -> None:
        from checks.host import Host
        from checks.runner import run_checks

        old = self.state.host
        host = Host(old.root, env=old.env, euid=old.euid, live=old.live)
        try:
            doc = run_checks(host, self.state.profile).to_document()
            if os.path.dirname(path) == "/var/log/kvmprep":
                os.makedirs("/var/log/kvmprep", mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(doc, fh, indent=2)
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"Could not save {path}: {exc.strerror}", severity="error")
            return
        s = doc["summary"]
        self.app.call_from_thread(self.notify, f"Report saved to {path} ({'READY' if s['ready'] else 'NOT READY'})")

    def action_back(self) -> None:
        self.app.pop_screen()
