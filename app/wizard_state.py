"""What the wizard knows as the admin moves through it: plain data that the
screens read and the App fills (no Textual here)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field


# serial lines: PC UARTs (a BMC's serial-over-LAN is one of them), ARM PL011 and
# USB adapters, hypervisor and s390 consoles
SERIAL_TTYS = ("/dev/ttyS", "/dev/ttyAMA", "/dev/ttyUSB", "/dev/ttyACM", "/dev/hvc", "/dev/ttysclp")
# terminals that draw ASCII only (no UTF-8 box glyphs)
ASCII_TERMS = ("linux", "dumb", "ansi", "vt52", "vt100", "vt102", "vt220", "vt320", "vt420")


@dataclass
class WizardOptions:
    root: str = "/"
    profile: str | None = None
    ascii: bool = False  # ASCII glyphs and the ANSI theme (TERM=linux, --ascii)
    slow: bool = False  # no animations, low frame rate, batched log (serial, --slow)
    euid: int | None = None  # tests may pretend not to be root
    console_only: bool = False  # slow only because TERM=linux (a local console, not a serial line)
    env: dict | None = None
    answers: object = None  # remediations.answers.Answers of --answers: the fixes preselected

    @classmethod
    def detect(cls, root="/", profile=None, ascii=False, slow=False, env=None, tty=None) -> "WizardOptions":
        """From TERM and the terminal device: the Linux console and serial lines
        get ASCII (a VT220 or a BMC's serial-over-LAN has no UTF-8 and no box
        glyphs); serial lines also a low frame rate (every byte is on the wire)."""
        env = os.environ if env is None else env
        term = env.get("TERM", "")
        console = term == "linux"
        if tty is None:
            try:
                tty = os.ttyname(sys.stdin.fileno())
            except OSError:
                tty = ""
        serial = tty.startswith(SERIAL_TTYS)
        # vt100, vt220-8bit, ansi.sys... (not vte-256color: GNOME's terminals draw UTF-8)
        plain_term = (not term or term in ASCII_TERMS or term.startswith("ansi")
                      or (term[:2] == "vt" and term[2:3].isdigit()))
        return cls(root=root, profile=profile, ascii=ascii or console or serial or plain_term,
                   slow=slow or console or serial, console_only=console and not (serial or slow))


@dataclass
class WizardState:
    options: WizardOptions
    host: object = None  # checks.host.Host
    facts: object = None  # checks.facts.Facts
    profile: object = None  # checks.profile.Profile
    report: object = None  # checks.runner.Report
    plan: object = None  # remediations.plan.Plan (everything fixable)
    selected: set = field(default_factory=set)  # remediation ids the admin keeps
    apply_events: list = field(default_factory=list)
    apply_finished: dict | None = None  # the detached apply's final event
    undo_result: dict | None = None  # {"ok": bool, "lines": [...]} once the wizard undid the apply
    early: object = None  # checks.background.BackgroundRun started on the welcome screen

    # The welcome screen's detection is joined only if Enter comes this soon
    # after it started; later, detection runs again (the host as of now).
    EARLY_FRESH_FOR = 30.0

    def first_selection(self, plan) -> set:
        """The fixes selected when the plan first shows: all of them, or with
        --answers those the answers kept (a fix they declined stays dropped)."""
        offered = {s.remediation for s in plan.steps}
        answers = self.options.answers
        return offered if answers is None else offered & set(answers.fixes)

    def answers(self):
        """This run's answers (remediations.answers.Answers): the profile, the
        fixes kept and dropped, the admin behind sudo."""
        from remediations.answers import from_wizard

        name, source = self.facts.safe("user") or (None, "")
        return from_wizard(self.profile, self.plan, self.selected, name if source == "SUDO_USER" else None)

    def report_path(self, stamp: str) -> str:
        """Where the summary saves the report unless told otherwise: the log
        folder with the journal when root, else the invoking user's home."""
        return self._output_path(f"kvmprep-report-{stamp}.json")

    def answers_path(self, stamp: str) -> str:
        return self._output_path(f"kvmprep-answers-{stamp}.yaml")

    def _output_path(self, name: str) -> str:
        env = self.options.env if self.options.env is not None else os.environ
        if env.get("KVMPREP_OUTPUT_DIR"):  # the admin's choice (and the tests')
            return os.path.join(env["KVMPREP_OUTPUT_DIR"], name)
        if self.is_root:
            return os.path.join("/var/log/kvmprep", name)
        return os.path.join(os.path.expanduser("~"), name)

    @property
    def is_root(self) -> bool:
        return self.host is not None and self.host.euid == 0

    @property
    def over_ssh(self) -> bool:
        env = self.options.env if self.options.env is not None else os.environ
        return bool(env.get("SSH_CONNECTION"))

    def chosen_plan(self):
        """The plan with only the fixes the admin kept."""
        from remediations.plan import Plan

        p = self.plan
        steps = [s for s in p.steps if s.remediation in self.selected]
        from remediations.actions import InstallPackages

        installs = any(isinstance(a, InstallPackages) for s in steps for a in s.actions)
        dropped = {s.remediation for s in p.steps} - self.selected  # not again after the packages either
        return Plan(p.root, p.profile, p.created, steps, dict(p.nothing_to_do), list(p.manual),
                    [r for r in p.replan if r not in dropped] if installs else [])

    def sudo_command(self) -> str:
        parts = ["sudo", "kvmprep"]
        if self.options.root != "/":
            parts += ["--root", self.options.root]
        if self.options.profile:
            parts += ["--profile", self.options.profile]
        return " ".join(parts)
