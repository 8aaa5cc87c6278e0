"""A plan: the remediations chosen for this host, each an ordered list of
actions. It is what the preview shows, what apply runs, and what a plan file
holds (YAML or JSON) for review or unattended use."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from checks import __version__
from checks.errors import NeedsRoot, ProbeError, ToolMissing
from checks.facts import Facts
from checks.host import Host
from checks.model import Status

from .actions import Action, WriteFile, action_from_dict
from .fileops import decode_text, file_state, readable
from .registry import PlanCtx, all_remediations

PLAN_VERSION = 1
FIRST = ("install-virtualization-packages", "install-tools")


class PlanError(Exception):
    """A plan that cannot be made or loaded (unknown --fix id, bad plan file)."""


@dataclass
class Step:
    remediation: str
    title: str
    fixes: list[str]
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cannot: dict[str, str] = field(default_factory=dict)  # check id -> why this step does not fix it

    @property
    def needs_reboot(self) -> bool:
        return any(a.reboot for a in self.actions)

    @property
    def fixes_here(self) -> list[str]:
        """The checks this step really fixes on this host."""
        return [c for c in self.fixes if c not in self.cannot]

    def to_dict(self) -> dict:
        return {"remediation": self.remediation, "title": self.title, "fixes": self.fixes,
                "notes": self.notes, "actions": [a.to_dict() for a in self.actions],
                **({"cannot": self.cannot} if self.cannot else {})}


@dataclass
class Plan:
    root: str
    profile: str
    created: str
    steps: list[Step] = field(default_factory=list)
    nothing_to_do: dict[str, str] = field(default_factory=dict)  # remediation -> reason
    manual: list[dict] = field(default_factory=list)  # failing checks with no automatic fix
    replan: list[str] = field(default_factory=list)  # remediations to plan again after this plan ran

    @property
    def actions(self) -> list[Action]:
        return [a for s in self.steps for a in s.actions]

    @property
    def empty(self) -> bool:
        return not self.actions

    def offers(self, check_id: str, candidates) -> tuple[list[str], list[str]]:
        """(remediations that really act for ``check_id`` here, and why each
        other candidate does not): from the planner's answer, not from the
        static ``fixes`` lists."""
        yes, no = [], []
        steps = {s.remediation: s for s in self.steps}
        for rid in candidates:
            step = steps.get(rid)
            if step is not None and check_id in step.fixes and check_id not in step.cannot:
                yes.append(rid)
            elif rid in self.replan:
                yes.append(rid)
            elif step is not None and check_id in step.cannot:
                no.append(f"{rid}: {step.cannot[check_id]}")
            elif rid in self.nothing_to_do:
                no.append(f"{rid}: {self.nothing_to_do[rid]}")
        return yes, no

    def counts(self) -> tuple[int, int]:
        """(files, commands) the plan touches: what the confirmation names."""
        files = {p for a in self.actions for p in a.touches_files}
        commands = sum(len(a.commands()) for a in self.actions)
        return len(files), commands

    def to_dict(self) -> dict:
        return {
            "kvmprep_plan": PLAN_VERSION,
            "tool_version": __version__,
            "root": self.root,
            "profile": self.profile,
            "created": self.created,
            "steps": [s.to_dict() for s in self.steps],
            "nothing_to_do": self.nothing_to_do,
            "manual": self.manual,
            "replan": self.replan,
        }

    @classmethod
    def from_dict(cls, data: dict, host: Host | None = None) -> "Plan":
        if not isinstance(data, dict) or data.get("kvmprep_plan") != PLAN_VERSION:
            raise PlanError("not a kvmprep plan file (no 'kvmprep_plan: 1')")
        try:
            steps = [Step(s["remediation"], s.get("title", ""), list(s.get("fixes", [])),
                          [action_from_dict(a) for a in s.get("actions", [])], list(s.get("notes", [])))
                     for s in data.get("steps", [])]
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"bad plan file: {exc}") from None
        plan = cls(str(data.get("root", "/")), str(data.get("profile", "")), str(data.get("created", "")),
                   steps, dict(data.get("nothing_to_do") or {}), list(data.get("manual") or []),
                   list(data.get("replan") or []))
        if host is not None:
            fill_old_text(plan, host)
        return plan


def fill_old_text(plan: Plan, host: Host) -> None:
    """Load each file's current text for the diff (only when it is what the plan expects)."""
    for action in plan.actions:
        if isinstance(action, WriteFile):
            real = host.path(action.path)
            st = file_state(real)
            if st.exists and st.sha256 == action.original_sha256:
                with open(real, "rb") as fh:
                    action.old_text = decode_text(fh.read())


def build_plan(host: Host, facts: Facts, report=None, fix_ids: list[str] | None = None,
               profile_name: str = "") -> Plan:
    """The plan for this host.

    Without ``fix_ids``: the first remediation of every failing or warning
    check that has one. With them: exactly those remediations, also where
    detection cannot decide (an offline root).
    """
    catalogue = all_remediations()
    results = {r.id: r for r in report.results} if report is not None else {}
    params = {}
    if report is not None:
        params = {cid: {**entry.params} for cid, entry in report.profile.checks.items()}
    ctx = PlanCtx(host, facts, results, params)

    manual: list[dict] = []
    if fix_ids is None:
        chosen: list[str] = []
        for r in (report.results if report is not None else []):
            if r.status not in (Status.FAIL, Status.WARN) or r.ignored:
                continue
            fixable = [rid for rid in r.remediations if rid in catalogue]
            if not fixable:
                if r.status is Status.FAIL:
                    manual.append({"check": r.id, "detail": r.detail, "hint": r.hint})
                continue
            # a check's first remediation is its fix; the others are alternatives
            # (selinux-permissive) or fixes other checks already ask for
            if fixable[0] not in chosen:
                chosen.append(fixable[0])
        # packages first: later fixes (enabling units) need what they install
        chosen.sort(key=lambda rid: 0 if rid in FIRST else 1)
    else:
        unknown = [f for f in fix_ids if f not in catalogue]
        if unknown:
            raise PlanError(f"--fix: unknown remediation {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(catalogue))})")
        chosen = list(dict.fromkeys(fix_ids))

    plan = Plan(root=str(host.root), profile=profile_name,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                manual=manual)
    for rid in chosen:
        spec = catalogue[rid]
        try:
            proposal = spec.planner(ctx)
        except (ProbeError, NeedsRoot, ToolMissing) as exc:
            # a file it must read is unreadable (a FIFO or device in an image...): that fix alone
            plan.nothing_to_do[rid] = f"cannot plan it: {exc}"
            continue
        if proposal.nothing is not None or not proposal.actions:
            # notes and reasons may quote a line of a file: shown as they are, readably
            plan.nothing_to_do[rid] = readable(proposal.nothing or "nothing to change")
            if proposal.after_packages and any(s.actions and _installs(s) for s in plan.steps):
                plan.replan.append(rid)
                plan.nothing_to_do[rid] += " (planned again once this plan's packages are installed)"
            continue
        plan.steps.append(Step(rid, spec.title, list(spec.fixes), proposal.actions,
                               [readable(n) for n in proposal.notes],
                               {k: readable(v) for k, v in proposal.cannot.items()}))
        if proposal.after_packages and any(s.actions and _installs(s) for s in plan.steps[:-1]):
            # acts now, and has more to do once the packages are in (the admin
            # joins kvm now, libvirt once libvirt-daemon-system created it)
            plan.replan.append(rid)
    return plan


def _installs(step: Step) -> bool:
    from .actions import InstallPackages

    return any(isinstance(a, InstallPackages) for a in step.actions)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 file', '2 files' (what the preview and the confirmation say)."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def render_preview(plan: Plan) -> str:
    """The whole plan as the admin reviews it: every diff, every exact command.
    Safe for a terminal: a byte of a file that is not UTF-8 reads \\xe9, a control
    character \\x1b (a note or a reason may quote such a line)."""
    out = []
    if plan.empty:
        out.append("Nothing to do: the plan is empty.")
    for i, step in enumerate(plan.steps, 1):
        out.append(f"[{i}] {step.remediation}: {step.title}  (fixes {', '.join(step.fixes_here)})")
        for note in step.notes:
            out.append(f"    note: {note}")
        for j, action in enumerate(step.actions, 1):
            flags = [f for f, on in (("pending reboot", action.reboot), ("running system only", action.runtime)) if on]
            out.append(f"  {i}.{j} {action.summary()}" + (f"  [{', '.join(flags)}]" if flags else ""))
            if action.why:
                out.append(f"      why: {action.why}")
            for line in action.preview().splitlines():
                out.append("      " + line)
    for rid, reason in plan.nothing_to_do.items():
        out.append(f"[-] {rid}: nothing to do ({reason})")
    for m in plan.manual:
        out.append(f"[!] {m['check']}: needs a manual step: {m.get('hint') or m['detail']}")
    files, commands = plan.counts()
    out.append(f"Plan: {counted(len(plan.steps), 'fix', 'fixes')}, {counted(len(plan.actions), 'action')}, "
               f"{counted(files, 'file')}, {counted(commands, 'command')}.")
    return readable("\n".join(out) + "\n")


# ---- a saved plan is intent, not code ------------------------------------------

class StalePlan(PlanError):
    """The plan file differs from the plan made now: exit 2 with the diff."""

    def __init__(self, path: str, diff: str):
        super().__init__(f"{path} is stale: planned again now, the fixes differ from the file "
                         "(the diff is above); review a new plan: kvmprep plan -o FILE")
        self.diff = diff


def requested(data: object) -> tuple[list[str], str, str]:
    """What a plan file asks for: (remediation ids, root, profile). Only
    these are taken from it; every action, command, path and mode is planned
    again and must equal the file's (``compare``)."""
    if not isinstance(data, dict) or data.get("kvmprep_plan") != PLAN_VERSION:
        raise PlanError("not a kvmprep plan file (no 'kvmprep_plan: 1')")
    steps, replan = data.get("steps", []), data.get("replan", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise PlanError("steps: a list of fixes")
    if not isinstance(replan, list):
        raise PlanError("replan: a list of remediation ids")
    ids = [s.get("remediation") for s in steps] + list(replan)
    catalogue = all_remediations()
    for rid in ids:
        if not isinstance(rid, str) or rid not in catalogue:
            raise PlanError(f"unknown remediation {rid!r} (known: {', '.join(sorted(catalogue))})")
    root, profile = data.get("root", "/"), data.get("profile", "")
    if not isinstance(root, str) or not isinstance(profile, str):
        raise PlanError("root and profile: strings")
    return list(dict.fromkeys(ids)), root, profile


def _comparable(steps: list, replan: list) -> str:
    import json

    # replan is a set: its order follows the ids a plan was made from (a plan file
    # lists its steps' ids first), and the second round plans all of them again anyway
    return json.dumps({"steps": steps, "replan": sorted(replan, key=str)}, indent=1, sort_keys=True, default=str)


def compare(data: dict, fresh: Plan, path: str) -> None:
    """Raise StalePlan unless the fresh plan's steps (every action, command,
    file content and mode) and its later round equal the file's."""
    import difflib
    import json

    theirs = _comparable(data.get("steps", []), data.get("replan", []))
    ours = _comparable(json.loads(json.dumps([s.to_dict() for s in fresh.steps])), fresh.replan)
    if theirs != ours:
        diff = "".join(difflib.unified_diff(theirs.splitlines(keepends=True), ours.splitlines(keepends=True),
                                            fromfile=f"{path} (the file)", tofile="planned now"))
        raise StalePlan(path, diff)
