"""Apply a plan, then verify it; undo the last apply.

Each action is journaled before it runs (with the state undo needs) and
after; a failing action stops the plan there, and everything done so far
stays recorded and undoable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from checks import pkgdb, units
from checks.accounts import groups_of
from checks.errors import NeedsRoot, ProbeError, ToolMissing
from checks.host import Host

from .actions import Action, ActionFailed, Cmd, WriteFile, action_from_dict
from .commands import run_streaming
from .journal import Journal
from .packagelocks import lock_holder
from .plan import Plan

Event = Callable[[dict], None]


class NotRoot(Exception):
    pass


@dataclass
class ActionReport:
    step: int
    index: int
    remediation: str
    summary: str
    status: str  # done | failed | skipped | pending-reboot | not-run
    message: str = ""
    output: str = ""
    returncode: int | None = None


@dataclass
class ApplyResult:
    apply_id: str
    ok: bool
    actions: list[ActionReport] = field(default_factory=list)
    verification: dict[str, dict] = field(default_factory=dict)  # check id -> {status, detail, pending_reboot}
    journal: str = ""
    log: str = ""
    backups: str = ""

    @property
    def failed(self) -> ActionReport | None:
        return next((a for a in self.actions if a.status == "failed"), None)


class ApplyContext:
    """What an action may use while it runs (the ``ax`` of actions.py)."""

    def __init__(self, host: Host, journal: Journal, apply_id: str, on_event: Event | None,
                 remove_packages: bool = False):
        self.host = host
        self.journal = journal
        self.apply_id = apply_id
        self.backup_dir = os.path.join(journal.backups, apply_id)
        self.on_event = on_event or (lambda e: None)
        self.remove_packages = remove_packages
        self.before: dict | None = None  # the running action's capture (apply only)
        self.details: dict = {}  # what an undo adds to its journal record (complete lists)

    def log(self, text: str) -> None:
        self.journal.log(text)
        self.on_event({"event": "line", "text": text})

    def run(self, cmd: Cmd) -> str:
        self.log("$ " + cmd.display())
        if self.host.root != "/":
            from .confined import leaves_root

            escapes = leaves_root(self.host.root, cmd.argv[0])
            if escapes:
                raise ActionFailed(f"refused: {cmd.argv[0]} would write outside the root {self.host.root}, "
                                   f"through {', '.join(escapes[:3])}; nothing was run")
        holder = lock_holder(self.host, cmd.argv)
        if holder:
            raise ActionFailed(f"{holder}; kvmprep never removes another program's lock: "
                               "wait for it to finish and apply again")

        def line(text: str) -> None:
            self.journal.log("  " + text)
            self.on_event({"event": "line", "text": text})

        outcome = run_streaming(cmd.argv, env=cmd.env, on_line=line)
        if outcome.returncode != 0:
            raise ActionFailed(f"{cmd.display()} exited with status {outcome.returncode}",
                               outcome.output, outcome.returncode)
        return outcome.output

    # helpers for capture()/undo()
    def _fresh(self) -> Host:
        """A new host object: nothing memoized before a command changed the root."""
        return Host(self.host.root, env=self.host.env, euid=self.host.euid, live=self.host.live)

    def _database(self, fresh: Host) -> str | None:
        from checks.osrelease import detect_os

        return pkgdb.database_kind(fresh, detect_os(fresh.read_text, fresh.exists).family)

    def installed_packages(self, names: list[str]) -> set[str]:
        fresh = self._fresh()
        kind = self._database(fresh)
        if kind is None:
            return set()
        found, _ = pkgdb.installed(fresh, kind, names)
        return {n for n, v in found.items() if v}

    def installed_names(self) -> set[str]:
        """Every package present in the root now (ActionFailed when it cannot be listed)."""
        fresh = self._fresh()
        kind = self._database(fresh)
        if kind is None:
            return set()
        try:
            return pkgdb.installed_names(fresh, kind)
        except (ProbeError, NeedsRoot, ToolMissing) as exc:
            raise ActionFailed(f"the packages installed in {fresh.display('/')} cannot be listed ({exc})") from None

    def unit_states(self, names: list[str]) -> dict[str, str]:
        states, _ = units.enabled_states(self._fresh(), list(names))
        return states

    def groups_of(self, user: str) -> set[str]:
        return groups_of(self.host, user)


def _clean_temps(ax: ApplyContext, writes: list) -> None:
    """Temp files an earlier kvmprep left when it was killed mid-write, next to
    the files this plan (or undo) writes: removed, and said."""
    from .fileops import clean_stale_temps

    for directory in sorted({os.path.dirname(ax.host.path(a.path)) for a in writes}):
        for gone in clean_stale_temps(directory):
            ax.log(f"removed {gone}: a temporary file left by a kvmprep that was killed")


def _require_root(host: Host) -> None:
    if host.euid != 0:
        raise NotRoot("applying fixes needs root: run it again with sudo (nothing was changed)")


def apply_plan(host: Host, plan: Plan, on_event: Event | None = None, verify_profile=None,
               group: str | None = None) -> ApplyResult:
    """Run every action of the plan in order; stop at the first failure.

    ``group``: the id of an earlier apply this one continues (the second
    round after packages were installed); undo reverts a group as one.
    """
    _require_root(host)
    journal = Journal(host)
    journal.lock()
    apply_id = uuid.uuid4().hex[:12]
    ax = ApplyContext(host, journal, apply_id, on_event)
    result = ApplyResult(apply_id, ok=True, journal=journal.path, log=journal.log_path,
                         backups=ax.backup_dir)
    try:
        journal.append({"apply": apply_id, "event": "start", "root": str(host.root), "plan": plan.to_dict(),
                        "group": group or apply_id})
        ax.log(f"apply {apply_id} started: {len(plan.actions)} actions")
        _clean_temps(ax, [a for a in plan.actions if isinstance(a, WriteFile)])
        stop = False
        for si, step in enumerate(plan.steps):
            for ai, action in enumerate(step.actions):
                rep = ActionReport(si, ai, step.remediation, action.summary(), "not-run")
                result.actions.append(rep)
                if stop:
                    continue
                if action.runtime and not host.live:
                    rep.status, rep.message = "skipped", "changes the running system only: skipped on an offline root"
                    journal.append({"apply": apply_id, "event": "skipped", "step": si, "action": ai})
                    ax.on_event({"event": "action", "report": rep})
                    continue
                ax.on_event({"event": "action-start", "report": rep})
                ax.before = None
                try:
                    before = ax.before = action.capture(ax)
                    journal.append({"apply": apply_id, "event": "before", "step": si, "action": ai,
                                    "summary": rep.summary, "before": before})
                    after = action.execute(ax) or {}
                except ActionFailed as exc:
                    rep.status, rep.message, rep.output, rep.returncode = "failed", exc.message, exc.output, exc.returncode
                    journal.append({"apply": apply_id, "event": "failed", "step": si, "action": ai,
                                    "error": exc.message, "returncode": exc.returncode})
                    try:
                        partial = action.after_failure(ax)
                    except Exception:  # recording what happened must not hide the failure
                        partial = None
                    if partial:
                        journal.append({"apply": apply_id, "event": "after", "step": si, "action": ai,
                                        "after": {**partial, "partial": True}})
                    ax.log(f"FAILED: {exc.message}")
                    result.ok, stop = False, True
                    ax.on_event({"event": "action", "report": rep})
                    continue
                journal.append({"apply": apply_id, "event": "after", "step": si, "action": ai, "after": after})
                rep.status = "pending-reboot" if action.reboot else "done"
                rep.message = action.done_message(after)
                ax.on_event({"event": "action", "report": rep})
        journal.append({"apply": apply_id, "event": "end", "ok": result.ok})
        ax.log(f"apply {apply_id} {'finished' if result.ok else 'stopped at a failed action'}")
    finally:
        journal.unlock()
    if verify_profile is not None:
        result.verification = verify(host, plan, verify_profile)
        ax.on_event({"event": "verified", "verification": result.verification})
    return result


def verify(host: Host, plan: Plan, profile) -> dict[str, dict]:
    """Run again the checks the plan was meant to fix, on a fresh host object."""
    from checks.profile import Entry, Profile
    from checks.runner import run_checks

    wanted: dict[str, bool] = {}
    for step in plan.steps:
        for cid in step.fixes:
            wanted[cid] = wanted.get(cid, False) or step.needs_reboot
    entries = {cid: profile.checks.get(cid, Entry("required")) for cid in wanted if cid in _catalogue()}
    fresh = Host(host.root, env=host.env, euid=host.euid, live=host.live)
    report = run_checks(fresh, Profile(profile.name, profile.description, profile.file, checks=entries))
    out = {}
    for r in report.results:
        pending = wanted[r.id] and r.status.value != "pass"
        out[r.id] = {"status": "pending-reboot" if pending else r.status.value, "detail": r.detail}
    return out


def _catalogue():
    from checks.registry import all_checks

    return all_checks()


@dataclass
class UndoResult:
    apply_id: str | None
    reverted: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # what could not be reverted, and why
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.left


def undo_last(host: Host, on_event: Event | None = None, remove_packages: bool = False,
              skip_broken: bool = False) -> UndoResult:
    """Reverse the last apply (with the rounds that continued it) that is not
    undone yet, action by action in reverse order. Actions an earlier undo
    reverted are not touched again; what cannot be undone is reported per
    action, and (with ``skip_broken``) recorded as given up so that the
    apply counts as undone."""
    _require_root(host)
    journal = Journal(host)
    journal.lock()
    try:
        ids = journal.last_undoable_group()
        result = UndoResult(ids[-1] if ids else None)
        for apply_id in reversed(ids):
            _undo_one(journal, host, apply_id, on_event, remove_packages, result, skip_broken)
        return result
    finally:
        journal.unlock()


def _key(r: dict):
    si, ai = r.get("step"), r.get("action")
    return (si, ai) if isinstance(si, int) and isinstance(ai, int) and not isinstance(si, bool) \
        and not isinstance(ai, bool) else None


def _state(value) -> dict:
    return value if isinstance(value, dict) else {}


def _undo_one(journal, host, apply_id, on_event, remove_packages, result, skip_broken=False) -> None:
    """Undo one apply's finished actions, last first (regenerating commands at the end).

    The journal is input, not code (remediations/undo_rules.py): each
    action's entry is checked before it is undone, and a bad one is an error
    of that action alone."""
    from .undo_rules import BadEntry, check_entry

    ax = ApplyContext(host, journal, apply_id, on_event, remove_packages=remove_packages)
    records = [r for r in journal.records() if r.get("apply") == apply_id]
    start = next((r for r in records if r.get("event") == "start"), {})
    raw_steps = _state(start.get("plan")).get("steps")
    raw_steps = raw_steps if isinstance(raw_steps, list) else []
    befores = {_key(r): _state(r.get("before")) for r in records if r.get("event") == "before" and _key(r)}
    afters = {_key(r): _state(r.get("after")) for r in records if r.get("event") == "after" and _key(r)}
    failed = {_key(r): r for r in records if r.get("event") == "failed" and _key(r)}
    reverted = {_key(r) for r in records if r.get("event") == "undone" and _key(r)}
    corrupt = [r for r in journal.records() if r.get("event") == "corrupt"]
    if corrupt:
        result.notes.append(f"{len(corrupt)} line(s) of {journal.path} could not be read "
                            f"(line {', '.join(str(r['line']) for r in corrupt[:5])}): ignored")
    journal.append({"apply": apply_id, "event": "undo-start"})

    def action_at(key):
        si, ai = key
        try:
            data = raw_steps[si]["actions"][ai]
            action = action_from_dict(data if isinstance(data, dict) else {})
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise BadEntry(f"the journal's record of action {si + 1}.{ai + 1} cannot be read ({exc})") from None
        check_entry(action, host)
        return action

    actions, broken = {}, []
    for key in sorted(set(befores) | set(afters), reverse=True):
        if key in reverted:
            continue
        try:
            actions[key] = action_at(key)
        except BadEntry as exc:
            broken.append((key, str(exc)))
    # regenerating commands run again after every file they read is restored, in the
    # order the apply ran them (udevadm control --reload, then trigger, then settle)
    order = ([k for k in actions if not getattr(actions[k], "undo_at_end", False)]
             + sorted(k for k in actions if getattr(actions[k], "undo_at_end", False)))
    _clean_temps(ax, [a for a in actions.values() if isinstance(a, WriteFile)])
    for key, why in broken:
        si, ai = key
        result.left.append(f"action {si + 1}.{ai + 1}: not undone: {why}")
        journal.append({"apply": apply_id, "event": "undo-failed", "step": si, "action": ai, "error": why})
    for key in order:
        si, ai = key
        action: Action = actions[key]
        after = afters.get(key)
        if key in failed:
            if after is None:
                result.notes.append(f"{action.summary()}: failed during apply ({failed[key].get('error')}); "
                                    "no change of it was recorded")
                continue
            result.notes.append(f"{action.summary()}: failed during apply ({failed[key].get('error')}); "
                                "undoing what it changed before it failed")
        if after is None:
            # killed while it ran: what it changed is what differs from its recorded "before"
            try:
                after = action.after_failure(ax)
            except Exception:
                after = None
            if not after:
                result.left.append(f"{action.summary()}: interrupted while running; check it by hand")
                continue
            result.notes.append(f"{action.summary()}: interrupted while running; undoing what it changed")
        ax.details = {}
        try:
            message = action.undo(ax, befores.get(key, {}), after)
            result.reverted.append(f"{action.summary()}: {message}")
            journal.append({"apply": apply_id, "event": "undone", "step": si, "action": ai, "message": message,
                            **({"details": ax.details} if ax.details else {})})
            ax.log(f"undo: {message}")
        except (ActionFailed, BadEntry, OSError, TypeError, AttributeError, ValueError, KeyError) as exc:
            # a before/after state that is not what kvmprep records ends here, for this action alone
            why = exc.message if isinstance(exc, ActionFailed) else (
                str(exc) if isinstance(exc, (BadEntry, OSError)) else
                f"the journal's record of it is not what kvmprep writes ({type(exc).__name__}: {exc})")
            result.left.append(f"{action.summary()}: {why}")
            journal.append({"apply": apply_id, "event": "undo-failed", "step": si, "action": ai, "error": why,
                            **({"details": ax.details} if ax.details else {})})
            ax.log(f"undo FAILED: {why}")
    if skip_broken and result.left:
        result.notes.append(f"--skip-broken: {len(result.left)} action(s) given up; this apply counts as undone")
    journal.append({"apply": apply_id, "event": "undo-end", "ok": not result.left,
                    **({"skipped_broken": True} if skip_broken and result.left else {})})


__all__ = ["apply_plan", "undo_last", "verify", "ApplyResult", "UndoResult", "NotRoot", "action_from_dict"]
