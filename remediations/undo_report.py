"""What an undo did to each action of an apply, read back from the journal,
for the screens that showed the apply (its rows, the summary): after an undo
they state each action as it is now, not as the apply left it.

The journal is kvmprep's own state but still input (remediations/undo_rules.py):
anything that is not shaped as kvmprep writes it is left out, never trusted.
"""

from __future__ import annotations

from .journal import Journal

UNDONE, KEPT, NOT_UNDONE = "undone", "kept", "not-undone"


def undo_outcomes(journal: Journal, apply_ids: list[str], removed_packages: bool = False) -> dict[str, tuple[str, str]]:
    """``"remediation: action summary"`` -> (state, message) for each action
    of ``apply_ids`` that an undo went through: UNDONE (reverted), KEPT (an
    install whose packages stay installed: undo removes packages only when
    asked) or NOT_UNDONE (the undo could not revert it; the message says why)."""
    ids = set(apply_ids)
    records = [r for r in journal.records() if isinstance(r, dict) and r.get("apply") in ids]
    plans = {r["apply"]: r.get("plan") for r in records if r.get("event") == "start"}
    summaries = {_key(r): r.get("summary") for r in records if r.get("event") == "before"}
    befores = {_key(r): r.get("before") for r in records if r.get("event") == "before"}
    afters = {_key(r): r.get("after") for r in records if r.get("event") == "after"}
    out: dict[str, tuple[str, str]] = {}
    for r in records:
        event = r.get("event")
        if event not in ("undone", "undo-failed"):
            continue
        summary, found = summaries.get(_key(r)), _planned(plans.get(r["apply"]), r.get("step"), r.get("action"))
        if not isinstance(summary, str) or found is None:
            continue
        remediation, kind = found
        label = f"{remediation}: {summary}"
        if event == "undo-failed":
            out[label] = (NOT_UNDONE, str(r.get("error", "")))
        elif kind == "install-packages" and not removed_packages \
                and _installed_some(befores.get(_key(r)), afters.get(_key(r))):
            out[label] = (KEPT, str(r.get("message", "")))
        else:
            out[label] = (UNDONE, str(r.get("message", "")))
    return out


def _installed_some(before, after) -> bool:
    """The install added packages (they stay after an undo that keeps them)."""
    if not isinstance(after, dict):
        return False
    added = after.get("added")
    if isinstance(added, list):
        return bool(added)
    was = before.get("installed") if isinstance(before, dict) else None
    now = after.get("installed")
    return isinstance(now, list) and bool(set(map(str, now)) - set(map(str, was if isinstance(was, list) else [])))


def _key(r: dict) -> tuple:
    return r.get("apply"), r.get("step"), r.get("action")


def _planned(plan, si, ai) -> tuple[str, str] | None:
    """(remediation, action kind) at step si, action ai of a journal's plan."""
    if not isinstance(plan, dict) or not all(type(i) is int and i >= 0 for i in (si, ai)):  # not True/False
        return None
    try:
        step = plan["steps"][si]
        return str(step["remediation"]), str(step["actions"][ai].get("kind"))
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
