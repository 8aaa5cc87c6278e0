"""remediations/undo_report.py: what an undo did to each action, from the
journal (kvmprep's own state, still input: odd records are left out)."""

from __future__ import annotations

from remediations.journal import Journal
from remediations.undo_report import KEPT, NOT_UNDONE, UNDONE, undo_outcomes

PLAN = {"steps": [
    {"remediation": "install-virtualization-packages",
     "actions": [{"kind": "install-packages", "packages": ["qemu-system-x86"]}]},
    {"remediation": "disable-selinux", "actions": [{"kind": "write-file", "path": "/etc/selinux/config"}]},
    {"remediation": "enable-time-sync", "actions": [{"kind": "install-packages", "packages": ["chrony"]},
                                                    {"kind": "enable-units", "units": ["chrony.service"]}]},
]}


def journal_with(root, records):
    j = Journal(root.host())
    for r in records:
        j.append(r)
    return j


def test_states_per_action(root):
    a = "a1"
    j = journal_with(root, [
        {"apply": a, "event": "start", "plan": PLAN},
        {"apply": a, "event": "before", "step": 0, "action": 0, "summary": "install qemu-system-x86 (apt)",
         "before": {"installed": []}},
        {"apply": a, "event": "after", "step": 0, "action": 0, "after": {"installed": ["qemu-system-x86"],
                                                                           "added": ["qemu-system-x86", "libc"]}},
        {"apply": a, "event": "before", "step": 1, "action": 0, "summary": "edit /etc/selinux/config",
         "before": {}},
        {"apply": a, "event": "before", "step": 2, "action": 0, "summary": "install chrony (apt)",
         "before": {"installed": []}},
        {"apply": a, "event": "failed", "step": 2, "action": 0, "error": "exit 100"},
        {"apply": a, "event": "undone", "step": 2, "action": 0, "message": "no package was installed"},
        {"apply": a, "event": "undone", "step": 1, "action": 0, "message": "restored"},
        {"apply": a, "event": "undone", "step": 0, "action": 0, "message": "left in place: 2 packages"},
    ])
    got = undo_outcomes(j, [a])
    assert got == {
        "install-virtualization-packages: install qemu-system-x86 (apt)": (KEPT, "left in place: 2 packages"),
        "disable-selinux: edit /etc/selinux/config": (UNDONE, "restored"),
        "enable-time-sync: install chrony (apt)": (UNDONE, "no package was installed"),  # nothing to keep
    }
    assert undo_outcomes(j, [a], removed_packages=True)[
        "install-virtualization-packages: install qemu-system-x86 (apt)"][0] == UNDONE
    assert undo_outcomes(j, ["other"]) == {}


def test_undo_failed_and_records_not_shaped_as_kvmprep_writes(root):
    a = "a2"
    j = journal_with(root, [
        {"apply": a, "event": "start", "plan": PLAN},
        {"apply": a, "event": "before", "step": 1, "action": 0, "summary": "edit /etc/selinux/config"},
        {"apply": a, "event": "undo-failed", "step": 1, "action": 0, "error": "changed by hand since"},
        # a step out of the plan, negative or boolean indexes, a summary that is not text
        {"apply": a, "event": "before", "step": 9, "action": 0, "summary": "x"},
        {"apply": a, "event": "undone", "step": 9, "action": 0},
        {"apply": a, "event": "before", "step": -1, "action": 0, "summary": "y"},
        {"apply": a, "event": "undone", "step": -1, "action": 0},
        {"apply": a, "event": "before", "step": 2, "action": 1, "summary": ["not", "text"]},
        {"apply": a, "event": "undone", "step": 2, "action": 1},
        {"apply": a, "event": "undone", "step": True, "action": 0},
    ])
    assert undo_outcomes(j, [a]) == {"disable-selinux: edit /etc/selinux/config": (NOT_UNDONE, "changed by hand since")}


def test_a_plan_that_is_not_a_plan(root):
    j = journal_with(root, [
        {"apply": "a3", "event": "start", "plan": ["steps"]},
        {"apply": "a3", "event": "before", "step": 0, "action": 0, "summary": "s"},
        {"apply": "a3", "event": "undone", "step": 0, "action": 0},
    ])
    assert undo_outcomes(j, ["a3"]) == {}
