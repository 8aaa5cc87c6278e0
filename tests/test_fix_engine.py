"""The fix engine: preview is what runs, atomic writes, journal, undo, lock, refusal."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from checks.host import Host
from remediations import actions as actions_mod
from remediations import executor as executor_mod
from remediations import fileops
from remediations.actions import RunCommand, WriteFile
from remediations.executor import NotRoot, apply_plan, undo_last
from remediations.fileops import sha256
from remediations.journal import Journal, LockHeld
from remediations.plan import Plan, Step, fill_old_text, render_preview

TOP = Path(__file__).resolve().parent.parent
ORIGINAL = b"# selinux config\nSELINUX=enforcing\n\xe9\xe8 latin-1 bytes kept\nSELINUXTYPE=targeted\n"


def make_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc/selinux").mkdir(parents=True)
    (root / "etc/selinux/config").write_bytes(ORIGINAL)
    os.chmod(root / "etc/selinux/config", 0o640)
    return root


def write_action(host, path, content):
    real = host.path(path)
    existed = os.path.exists(real)
    old = open(real, "rb").read() if existed else None
    return WriteFile(path=path, content=content, original_sha256=sha256(old) if existed else None,
                     old_text=old.decode("utf-8", "surrogateescape") if existed else None, why="test")


def plan_of(host, *actions, fixes=("security.selinux",)):
    return Plan(root=str(host.root), profile="generic", created="now",
                steps=[Step("test-fix", "test", list(fixes), list(actions))])


NEW = "# selinux config\nSELINUX=disabled\nSELINUXTYPE=targeted\n"


def test_preview_is_what_runs_byte_for_byte(tmp_path, monkeypatch):
    root = make_root(tmp_path)
    host = Host(root)
    marker = str(root / "marker")
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW),
                   RunCommand(argv=["touch", marker], env={"A": "1"}, undo_argv=["rm", "-f", marker]),
                   write_action(host, "/etc/modules-load.d/kvm.conf", "kvm\nkvm_intel\n"))
    preview = render_preview(plan)
    ran = []
    real_run = executor_mod.run_streaming

    def spy(argv, env=None, on_line=None, cwd=None):
        ran.append(actions_mod.Cmd(list(argv), dict(env or {})).display())
        return real_run(argv, env=env, on_line=on_line, cwd=cwd)

    monkeypatch.setattr(executor_mod, "run_streaming", spy)
    result = apply_plan(host, plan)
    assert result.ok
    shown_commands = [l.strip()[2:] for l in preview.splitlines() if l.strip().startswith("$ ")]
    assert ran == shown_commands
    # every written file is exactly the '+' side of its diff
    for action in plan.actions:
        if isinstance(action, WriteFile):
            diff = action.preview().splitlines()
            plus = [l[1:] for l in diff if l.startswith("+") and not l.startswith("+++")]
            written = (root / action.path.lstrip("/")).read_bytes()
            assert written == action.content.encode()
            assert written.decode().splitlines() == [l for l in action.content.splitlines()]
            assert set(plus) <= set(action.content.splitlines())
    assert os.path.exists(marker)


def test_apply_keeps_mode_and_backs_up_outside_drop_in_dirs(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    (root / "etc/modprobe.d").mkdir(parents=True)
    (root / "etc/modprobe.d/kvm.conf").write_text("options kvm ignore_msrs=1\n")
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW),
                   write_action(host, "/etc/modprobe.d/kvm.conf", "options kvm ignore_msrs=1\noptions kvm_intel nested=1\n"))
    result = apply_plan(host, plan)
    assert result.ok
    st = os.stat(root / "etc/selinux/config")
    assert st.st_mode & 0o777 == 0o640
    assert sorted(os.listdir(root / "etc/modprobe.d")) == ["kvm.conf"]  # no backup or temp file there
    backups = list((root / "var/lib/kvmprep/backups").rglob("*"))
    assert any(p.name == "kvm.conf" for p in backups) and any(p.name == "config" for p in backups)
    assert not any(str(p).startswith(str(root / "etc")) for p in backups)


def test_undo_restores_byte_for_byte_and_removes_created_files(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW),
                   write_action(host, "/etc/modules-load.d/kvm.conf", "kvm\n"))
    assert apply_plan(host, plan).ok
    assert (root / "etc/selinux/config").read_text() == NEW
    result = undo_last(host)
    assert result.ok, result.left
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL
    assert os.stat(root / "etc/selinux/config").st_mode & 0o777 == 0o640
    assert not (root / "etc/modules-load.d/kvm.conf").exists()
    assert undo_last(host).apply_id is None  # nothing left to undo


def test_applying_the_same_plan_twice_changes_nothing_the_second_time(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW))
    assert apply_plan(host, plan).ok
    mtime = os.stat(root / "etc/selinux/config").st_mtime_ns
    again = apply_plan(host, Plan.from_dict(plan.to_dict(), host))
    assert again.ok
    assert os.stat(root / "etc/selinux/config").st_mtime_ns == mtime
    assert not (root / "var/lib/kvmprep/backups" / again.apply_id).exists()


def test_file_changed_after_preview_stops_that_action(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW))
    (root / "etc/selinux/config").write_bytes(ORIGINAL + b"# edited by the admin meanwhile\n")
    result = apply_plan(host, plan)
    assert not result.ok and "changed since the plan was made" in result.failed.message
    assert (root / "etc/selinux/config").read_bytes().endswith(b"meanwhile\n")


@pytest.mark.parametrize("fault", ["disk-full", "read-only"])
def test_failed_write_leaves_original_intact_and_journal_consistent(tmp_path, monkeypatch, fault):
    root = make_root(tmp_path)
    host = Host(root)
    first = write_action(host, "/etc/modules-load.d/kvm.conf", "kvm\n")
    plan = plan_of(host, first, write_action(host, "/etc/selinux/config", NEW + "x" * 100000))
    if fault == "disk-full":
        real_write = os.write

        def write(fd, data):
            if len(data) > 50000 and bytes(data[:16]) == NEW.encode()[:16]:  # the big file: fail midway
                real_write(fd, bytes(data[:4096]))
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)
        monkeypatch.setattr(fileops.os, "write", write)
    else:
        real_replace = os.replace

        def replace(src, dst):
            if dst.endswith("/etc/selinux/config"):
                raise OSError(errno.EROFS, "Read-only file system")
            return real_replace(src, dst)
        monkeypatch.setattr(fileops.os, "replace", replace)
    result = apply_plan(host, plan)
    monkeypatch.undo()
    assert not result.ok and "the original is untouched" in result.failed.message
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL
    assert [p for p in os.listdir(root / "etc/selinux") if "kvmprep" in p] == []
    events = [r["event"] for r in Journal(host).records() if r.get("apply") == result.apply_id]
    assert events == ["start", "before", "after", "before", "failed", "end"]
    undone = undo_last(host)
    assert undone.ok and not (root / "etc/modules-load.d/kvm.conf").exists()


def test_failed_command_stops_the_plan_with_status_and_output(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW),
                   RunCommand(argv=["ls", "/nonexistent-kvmprep-path"]),
                   write_action(host, "/etc/modules-load.d/kvm.conf", "kvm\n"))
    result = apply_plan(host, plan)
    assert not result.ok
    f = result.failed
    assert f.returncode == 2 and "nonexistent-kvmprep-path" in f.output
    assert [a.status for a in result.actions] == ["done", "failed", "not-run"]
    assert not (root / "etc/modules-load.d/kvm.conf").exists()
    assert undo_last(host).ok
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL


def kill_commands(argv: list[str]) -> None:
    """SIGKILL this user's processes running exactly ``argv`` (a test's leftovers)."""
    wanted = ("\0".join(argv) + "\0").encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f.read() == wanted and os.stat(f"/proc/{entry}").st_uid == os.getuid():
                        os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass


def test_killed_apply_leaves_a_consistent_journal(tmp_path):
    """SIGKILL in the middle: finished actions are undoable, the interrupted one is reported."""
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW),
                   RunCommand(argv=["sleep", "29.5"]))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan.to_dict()))
    code = ("import json,sys; from checks.host import Host; from remediations.plan import Plan;"
            "from remediations.executor import apply_plan;"
            f"h=Host({str(root)!r}); apply_plan(h, Plan.from_dict(json.load(open({str(plan_file)!r})), h))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=TOP, start_new_session=True)
    journal = Journal(host)
    for _ in range(600):
        if any(r.get("event") == "before" and r.get("action") == 1 for r in journal.records()):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (root / "etc/selinux/config").read_text() == NEW
    # Commands run in their own session, so the kill misses a child caught
    # between fork and exec; it holds the lock's descriptor until its exec
    # closes it (close-on-exec). The lock must be free once that is over.
    deadline = time.monotonic() + 10
    while journal.running_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    kill_commands(["sleep", "29.5"])
    assert journal.running_pid() is None  # the lock died with the process
    result = undo_last(host)
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL
    assert any("interrupted" in l for l in result.left)


def test_one_apply_at_a_time(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    holder = Journal(host)
    holder.lock()
    try:
        with pytest.raises(LockHeld) as info:
            apply_plan(host, plan_of(host, write_action(host, "/etc/selinux/config", NEW)))
        assert str(os.getpid()) in str(info.value)
    finally:
        holder.unlock()
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL


def test_apply_refuses_without_root(tmp_path):
    root = make_root(tmp_path)
    host = Host(root, euid=1000)
    with pytest.raises(NotRoot):
        apply_plan(host, plan_of(host, write_action(host, "/etc/selinux/config", NEW)))
    assert not (root / "var/lib/kvmprep").exists()
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL


def test_runtime_actions_are_skipped_on_an_offline_root(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, RunCommand(argv=["false"], runtime=True, title="setenforce 0"))
    result = apply_plan(host, plan)
    assert result.ok and result.actions[0].status == "skipped"


def test_log_is_private_and_streams_lines(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    seen = []
    result = apply_plan(host, plan_of(host, RunCommand(argv=["echo", "hello from the command"])),
                        on_event=lambda e: seen.append(e))
    assert result.ok
    assert any(e.get("text") == "hello from the command" for e in seen)
    st = os.stat(result.log)
    assert st.st_mode & 0o777 == 0o600
    assert "hello from the command" in Path(result.log).read_text()


def test_plan_round_trips_through_yaml_and_json(tmp_path):
    root = make_root(tmp_path)
    host = Host(root)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW),
                   RunCommand(argv=["setenforce", "0"], undo_argv=["setenforce", "1"], runtime=True),
                   actions_mod.EnableUnits(units=["libvirtd.service"], root="/"),
                   actions_mod.InstallPackages(manager="apt", packages=["qemu-system-x86"],
                                               cmds=[{"argv": ["apt-get", "install", "-y", "qemu-system-x86"],
                                                      "env": {"DEBIAN_FRONTEND": "noninteractive"}}]),
                   actions_mod.LoadModule(module="kvm_intel", reload=True, runtime=True),
                   actions_mod.AddKernelArgs(args=["intel_iommu=on"], reboot=True),
                   actions_mod.AddUserToGroups(user="alice", groups=["kvm", "libvirt"]))
    for text in (json.dumps(plan.to_dict()), yaml.safe_dump(plan.to_dict())):
        loaded = Plan.from_dict(yaml.safe_load(text), host)
        assert render_preview(loaded) == render_preview(plan)
        assert loaded.to_dict() == plan.to_dict()


def test_bad_plan_files_are_refused(tmp_path):
    from remediations.plan import PlanError

    for data in ({}, {"kvmprep_plan": 1, "steps": [{"remediation": "x", "actions": [{"kind": "rm-rf"}]}]},
                 {"kvmprep_plan": 1, "steps": [{"remediation": "x", "actions": [{"kind": "run", "bogus": 1}]}]}):
        with pytest.raises(PlanError):
            Plan.from_dict(data)


def admit_inverse_command(program, tmp_path, monkeypatch):
    """A root and its Host where undo also accepts ``program`` as an inverse
    command (undo runs only the forms kvmprep writes; a stand-in needs this)."""
    from remediations import undo_rules

    real_ok = undo_rules.inverse_command_ok
    monkeypatch.setattr(undo_rules, "inverse_command_ok",
                        lambda argv, host: argv[0] == program or real_ok(argv, host))
    root = make_root(tmp_path)
    return root, Host(root)


def test_regenerating_commands_are_undone_after_the_files_they_read(tmp_path, monkeypatch):
    """update-grub must run again on the restored /etc/default/grub, so last.
    (A cp stands in for it: undo runs only the inverse commands kvmprep
    writes, so this test admits that one.)"""
    root, host = admit_inverse_command("cp", tmp_path, monkeypatch)
    log = root / "regen.log"
    regen = RunCommand(argv=["cp", str(root / "etc/selinux/config"), str(log)],
                       undo_argv=["cp", str(root / "etc/selinux/config"), str(log)], undo_at_end=True)
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW), regen)
    assert apply_plan(host, plan).ok
    assert log.read_text() == NEW
    assert undo_last(host).ok
    assert log.read_bytes() == ORIGINAL  # regenerated from the restored file


def test_end_of_undo_commands_run_in_the_order_the_apply_ran_them(tmp_path, monkeypatch):
    """udevadm control --reload, trigger, settle: undone last, and in that order
    (a trigger before the reload would apply the old rules)."""
    root, host = admit_inverse_command("sh", tmp_path, monkeypatch)
    log = root / "order.log"
    cmds = [RunCommand(argv=["sh", "-c", f"echo apply {n} >> {log}"],
                       undo_argv=["sh", "-c", f"echo undo {n} >> {log}"], undo_at_end=True)
            for n in ("reload", "trigger", "settle")]
    plan = plan_of(host, write_action(host, "/etc/selinux/config", NEW), *cmds)
    assert apply_plan(host, plan).ok
    assert undo_last(host).ok
    assert log.read_text().split("\n")[:-1] == [f"{w} {n}" for w in ("apply", "undo")
                                                for n in ("reload", "trigger", "settle")]
    assert (root / "etc/selinux/config").read_bytes() == ORIGINAL
