"""The runner: one check's trouble never stops another; ignore and verdict rules."""

from __future__ import annotations

import errno
import os

import pytest

from checks.errors import NeedsRoot, ProbeError
from checks.facts import Facts
from checks.host import Host
from checks.model import CheckSpec, Status, passed
from checks.profile import Entry, Profile
from checks.runner import UsageError, parse_ignore, run_checks, run_one


def spec(func, **kw):
    return CheckSpec(id="t.x", title="t", category="cpu", why="w", source="s", func=func, **kw)


def one(func, host, **kw):
    return run_one(spec(func, **kw), "required", {}, host, Facts(host))


def test_probe_error_becomes_error_naming_the_source(tmp_path):
    def boom(ctx):
        raise ProbeError("/proc/foo", "Input/output error")
    r = one(boom, Host(tmp_path))
    assert r.status is Status.ERROR and "/proc/foo" in r.detail


def test_unexpected_exception_becomes_error_for_that_check(tmp_path):
    r = one(lambda ctx: 1 / 0, Host(tmp_path))
    assert r.status is Status.ERROR and "ZeroDivisionError" in r.detail


def test_needs_root_exception_becomes_skip(tmp_path):
    def denied(ctx):
        raise NeedsRoot("/dev/cpu/0/msr")
    r = one(denied, Host(tmp_path))
    assert r.status is Status.SKIP and r.detail == "needs root: would read /dev/cpu/0/msr"


def test_needs_root_spec_skips_for_non_root_on_live_host(tmp_path):
    called = []
    r = one(lambda ctx: called.append(1) or passed("x"), Host(tmp_path, euid=1000, live=True),
            needs_root=True, root_reads="the nftables ruleset")
    assert r.status is Status.SKIP and "needs root: would read the nftables ruleset" == r.detail
    assert not called


def test_permission_denied_read_as_non_root_is_needs_root(tmp_path):
    f = tmp_path / "secret"
    f.write_text("x")
    f.chmod(0)
    host = Host(tmp_path, euid=1000)
    if os.geteuid() == 0:
        # root reads anything: simulate the kernel's answer instead
        def read(ctx):
            ctx.host._oserror("/secret", PermissionError(errno.EACCES, "Permission denied"))
        r = one(read, host)
    else:
        r = one(lambda ctx: ctx.host.read_text("/secret"), host)
    assert r.status is Status.SKIP and "/secret" in r.detail


def test_run_all_continues_past_failures_and_reports_in_catalogue_order(root):
    root.use("cpu/i386-dellpe700")
    prof = Profile("p", "d", "f", checks={
        "cpu.64bit": Entry("required"), "cpu.arch": Entry("required"),
        "cpu.frequency": Entry("info"), "kernel.version": Entry("recommended")})
    seen = []
    report = run_checks(root.host(), prof, on_result=lambda r, done, total: seen.append((r.id, done, total)))
    assert [r.id for r in report.results] == ["cpu.arch", "cpu.64bit", "cpu.frequency", "kernel.version"]
    assert sorted(s[0] for s in seen) == sorted(r.id for r in report.results)
    assert [s[1] for s in seen] == [1, 2, 3, 4] and {s[2] for s in seen} == {4}
    assert report.result("cpu.64bit").status is Status.FAIL
    assert not report.ready and [r.id for r in report.blocking] == ["cpu.arch", "cpu.64bit"]


def test_recommended_failure_does_not_block(root):
    root.use("cpu/i386-dellpe700")
    prof = Profile("p", "d", "f", checks={"cpu.64bit": Entry("recommended")})
    report = run_checks(root.host(), prof)
    assert report.result("cpu.64bit").status is Status.FAIL and report.ready


def test_ignore_turns_fail_into_warn(root):
    root.use("cpu/i386-dellpe700")
    prof = Profile("p", "d", "f", checks={"cpu.64bit": Entry("required")})
    report = run_checks(root.host(), prof, ignore={"cpu.64bit"})
    r = report.result("cpu.64bit")
    assert r.status is Status.WARN and r.ignored and report.ready


def test_parse_ignore():
    assert parse_ignore("a, b", {"a", "b", "c"}) == {"a", "b"}
    assert parse_ignore("all", {"a", "b"}) == {"a", "b"}
    assert parse_ignore(None, {"a"}) == set()
    with pytest.raises(UsageError):
        parse_ignore("a,zz", {"a"})


def test_running_guests_are_qemu_processes_only(root):
    for pid, comm, argv in [(10, "qemu-system-x86", b"/usr/bin/qemu-system-x86_64\0-name\0vm1\0"),
                            (11, "kvmprep", b"/usr/bin/python3\0/usr/bin/kvmprep\0"),
                            (12, "kvm-nx-lpage-re", b""),
                            (13, "qemu-kvm", b"/usr/libexec/qemu-kvm\0")]:
        root.write(f"proc/{pid}/comm", comm + "\n")
        root.write(f"proc/{pid}/cmdline", argv)
    facts = Facts(root.host(live=True))
    assert [p.pid for p in facts.guests] == [10, 13]
