"""checks.record: the engine's data classes behave as the @dataclass ones they replace."""

from __future__ import annotations

import copy

import pytest

from checks.firewall import Rule
from checks.kvmprobe import KvmProbe
from checks.model import Evidence, Outcome, Status


def test_equality_and_repr_are_by_field():
    a = KvmProbe("ok", "works", 12)
    assert a == KvmProbe("ok", "works", 12, None)
    assert a != KvmProbe("ok", "works", 11)
    assert repr(a) == "KvmProbe(outcome='ok', detail='works', api_version=12, errno=None)"
    assert Evidence("/proc/x", "1") != ("/proc/x", "1")  # only the same class compares equal


def test_mutable_records_are_unhashable_and_default_lists_are_not_shared():
    a, b = Outcome(Status.PASS, "fine"), Outcome(Status.PASS, "fine")
    with pytest.raises(TypeError):
        hash(a)
    a.evidence.append(Evidence("s", "v"))
    assert b.evidence == [] and a != b


def test_frozen_records_are_hashable_and_immutable():
    ev = Evidence("/proc/cpuinfo", "flags")
    assert {ev, Evidence("/proc/cpuinfo", "flags")} == {ev}
    with pytest.raises(AttributeError):
        ev.value = "other"
    with pytest.raises(AttributeError):
        del ev.source
    assert copy.deepcopy(ev) == ev and copy.copy(ev) == ev


def test_rule_copy_changes_only_what_is_given():
    r = Rule("accept", proto="tcp", ports=((22, 22),), text="ssh")
    other = r.copy(verdict="unknown")
    assert other is not r and other == Rule("unknown", proto="tcp", ports=((22, 22),), text="ssh")
    assert r.copy() == r and r.verdict == "accept"
