"""Untrusted input (issue 8): images under --root, profiles and plan files
are someone else's. Each test builds a hostile input and asserts a one-line
answer with the right exit status, no traceback, no hang, and nothing read
from outside the root.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from checks.files import NotRegular, TooLarge, load_yaml_untrusted, read_regular
from checks.host import Host

TOP = Path(__file__).resolve().parent.parent
BOMB = 'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]\n' + "".join(
    f'{chr(98 + i)}: &{chr(98 + i)} [{", ".join([f"*{chr(97 + i)}"] * 9)}]\n' for i in range(8))


def kvmprep(*args, env=None, timeout=60, **kw):
    r = subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                       stdin=subprocess.DEVNULL, timeout=timeout, env=env, **kw)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def one_line(stderr: str) -> str:
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


# ------------------------------------------------------------ regular files only


def test_read_regular_refuses_fifo_device_and_directory(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(NotRegular, match="FIFO"):
        read_regular(str(fifo))  # does not block: opened O_NONBLOCK, refused by fstat
    with pytest.raises(NotRegular, match="character device"):
        read_regular("/dev/zero")
    with pytest.raises(NotRegular, match="directory"):
        read_regular(str(tmp_path))
    big = tmp_path / "big"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(TooLarge):
        read_regular(str(big), cap=1024)
    assert read_regular(str(big), limit=10, cap=1024) == b"x" * 10  # a bounded read is fine


def test_fifo_in_the_root_is_an_error_of_that_check_alone(root):
    root.use("os/debian_10")
    os.mkfifo(root.path / "etc/hostname")
    r = kvmprep("check", "--root", str(root.path), "--format", "json", timeout=60)
    assert r.returncode in (0, 1), r.stderr
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert checks["net.hostname"]["status"] == "error"
    assert "not a regular file (a FIFO)" in checks["net.hostname"]["detail"]
    assert checks["os.distribution"]["status"] != "error"
    assert json.loads(r.stdout)["host"]["hostname"] == {"error": f"{root.path}/etc/hostname: not a regular file (a FIFO)"}
    table = kvmprep("check", "--root", str(root.path))
    assert table.returncode in (0, 1) and "not a regular file (a FIFO)" in table.stdout, table.stderr


def test_unreadable_os_release_still_gives_the_table_and_document(root):
    root.use("os/debian_10")
    (root.path / "etc/os-release").unlink()
    os.mkfifo(root.path / "etc/os-release")
    for fmt in ("table", "json"):
        r = kvmprep("check", "--root", str(root.path), "--format", fmt)
        assert r.returncode in (0, 1), r.stderr
        assert "not a regular file (a FIFO)" in r.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_nodes_in_the_root_are_not_read(root):
    root.use("os/debian_10")
    os.mknod(root.path / "etc/hostname", stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero
    os.mknod(root.path / "etc/hosts", stat.S_IFBLK | 0o644, os.makedev(7, 0))  # a loop device
    host = Host(root.path)
    from checks.errors import ProbeError

    for p in ("/etc/hostname", "/etc/hosts"):
        with pytest.raises(ProbeError, match="not a regular file"):
            host.read_text(p)
    r = kvmprep("check", "--root", str(root.path), "--format", "json")
    checks = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert "not a regular file" in checks["net.hostname"]["detail"]


def test_symlink_out_of_the_root_is_read_inside_it(root, tmp_path):
    victim = tmp_path / "victim-secret"
    victim.write_text("secret-outside-the-root\n")
    root.use("os/debian_10")
    root.symlink("etc/hostname", str(victim))  # absolute: resolved inside the root, so missing
    r = kvmprep("check", "--root", str(root.path), "--format", "json")
    assert "secret-outside-the-root" not in r.stdout + r.stderr


# ------------------------------------------------------------------- profiles


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "directory", "alias bomb", "binary"])
def test_hostile_profile_is_refused_in_one_line(tmp_path, kind):
    path = tmp_path / "p.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "/dev/zero":
        path = Path("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "alias bomb":
        path.write_text(BOMB)
    else:
        path.write_bytes(b"\xff\xfe\x00garbage")
    r = kvmprep("check", "--profile", str(path), timeout=30)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith(f"kvmprep: profile {path}"), line


def test_yaml_aliases_are_refused_but_plain_yaml_loads():
    import yaml

    with pytest.raises(yaml.YAMLError, match="aliases"):
        load_yaml_untrusted(BOMB)
    assert load_yaml_untrusted("a: [1, 2]\nb: {c: d}\n") == {"a": [1, 2], "b": {"c": "d"}}


# ------------------------------------------------------------------ plan files


@pytest.mark.parametrize("kind", ["fifo", "alias bomb", "/dev/zero"])
def test_hostile_plan_file_is_refused(tmp_path, kind):
    path = tmp_path / "plan.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "alias bomb":
        path.write_text("kvmprep_plan: 1\n" + BOMB)
    else:
        path = Path("/dev/zero")
    r = kvmprep("apply", str(path), "--dry-run", timeout=30)
    assert r.returncode == 2, r.stdout + r.stderr
    one_line(r.stderr)


# ------------------------------------------------------- odd states, streams


def test_empty_root_is_a_usage_error():
    for cmd in ("check", "plan", "undo"):
        r = kvmprep(cmd, "--root", "")
        assert r.returncode == 2 and "--root is empty" in one_line(r.stderr)


def test_output_to_a_full_disk_says_so():
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "app", "check", "--format", "json"], stdout=full,
                           stderr=subprocess.PIPE, text=True, cwd=TOP, stdin=subprocess.DEVNULL, timeout=60)
    assert r.returncode == 2
    assert one_line(r.stderr) == "kvmprep: cannot write the output: No space left on device"


def test_closed_stdout_says_so():
    r = subprocess.run([sys.executable, "-m", "app", "check"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, cwd=TOP, stdin=subprocess.DEVNULL, timeout=60,
                       preexec_fn=lambda: os.close(1))
    assert r.returncode == 2, r.stderr
    assert "standard output is closed" in one_line(r.stderr)


def test_ascii_only_output_escapes_instead_of_crashing(root):
    root.use("os/debian_10")
    root.write("etc/hostname", "h\u00e9te\n")
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    r = kvmprep("check", "--root", str(root.path), env=env)
    assert r.returncode in (0, 1), r.stderr
    assert "h\\xe9te" in r.stdout


# ------------------------------------------- a saved plan is intent, not code


def _plan_file(kvm_root, tmp_path, fixes="load-kvm-modules,enable-nested") -> tuple[Path, dict]:
    f = tmp_path / "plan.json"
    r = kvmprep("plan", "--root", str(kvm_root.path), "--fix", fixes, "--format", "json", "-o", str(f))
    assert r.returncode == 0, r.stderr
    return f, json.loads(f.read_text())


def _outside(tmp_path) -> Path:
    victim = tmp_path / "outside" / "victim.conf"
    victim.parent.mkdir()
    victim.write_text("the admin's file outside the root\n")
    return victim


def _tamper(kind: str, data: dict, tmp_path: Path, kvm_root) -> Path:
    """Edit a saved plan the way an attacker (or a careless hand) would; the
    marker file exists only if an injected command ran."""
    marker = tmp_path / "outside" / "INJECTED"
    actions = data["steps"][0]["actions"]
    write = next(a for a in actions if a["kind"] == "write-file")
    if kind == "added command":
        actions.append({"kind": "run", "argv": ["touch", str(marker)], "env": {}, "undo_argv": None,
                        "title": "harmless", "undo_at_end": False, "why": "", "reboot": False, "runtime": False})
    elif kind == "apt option as a package":
        actions.append({"kind": "install-packages", "manager": "apt", "packages": ["dmidecode"],
                        "cmds": [{"argv": ["apt-get", "install", "-y", f"-oDPkg::Pre-Invoke::=touch {marker}",
                                           "dmidecode"], "env": {}}],
                        "why": "", "reboot": False, "runtime": False})
    elif kind == "live modprobe on an offline root":
        actions.append({"kind": "load-module", "module": "kvm_intel", "reload": True,
                        "why": "", "reboot": False, "runtime": False})
    elif kind == "path escapes the root":
        write["path"] = "/etc/../../outside/victim.conf"
    elif kind == "new content":
        write["content"] += "evil_module\n"
    elif kind == "mode":
        write["mode"] = 0o4777
    elif kind == "unknown remediation":
        data["steps"][0]["remediation"] = "rm-rf"
    elif kind == "other root":
        data["root"] = str(tmp_path / "outside")
    return marker


@pytest.mark.parametrize("kind", ["added command", "apt option as a package", "live modprobe on an offline root",
                                  "path escapes the root", "new content", "mode", "unknown remediation",
                                  "other root"])
def test_a_tampered_plan_file_runs_nothing(kvm_root, tmp_path, kind):
    f, data = _plan_file(kvm_root, tmp_path)
    victim = _outside(tmp_path)
    before = victim.read_bytes()
    marker = _tamper(kind, data, tmp_path, kvm_root)
    f.write_text(json.dumps(data))
    r = kvmprep("apply", str(f), "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 2, r.stdout + r.stderr
    one_line(r.stderr)
    assert not marker.exists()
    assert victim.read_bytes() == before
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim.conf"]
    assert not (kvm_root.path / "etc/modules-load.d").exists()
    assert not (kvm_root.path / "var/lib/kvmprep/journal").exists()
    if kind not in ("unknown remediation", "other root"):
        assert "is stale" in r.stderr and "planned now" in r.stdout  # the diff


def test_a_plan_made_stale_by_the_host_is_refused_with_a_diff(kvm_root, tmp_path):
    f, _ = _plan_file(kvm_root, tmp_path, "load-kvm-modules")
    kvm_root.write("etc/modules-load.d/kvm.conf", "kvm\n")  # the admin wrote it in the meantime
    r = kvmprep("apply", str(f), "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 2 and "is stale" in one_line(r.stderr)
    assert "+" in r.stdout and "original_sha256" in r.stdout
    assert (kvm_root.path / "etc/modules-load.d/kvm.conf").read_text() == "kvm\n"


def test_an_unchanged_plan_file_applies_what_was_planned_again(kvm_root, tmp_path):
    f, data = _plan_file(kvm_root, tmp_path, "load-kvm-modules")
    r = kvmprep("apply", str(f), "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    conf = (kvm_root.path / "etc/modules-load.d/kvm.conf").read_text()
    assert conf == next(a for a in data["steps"][0]["actions"] if a["kind"] == "write-file")["content"]


def test_a_plan_for_another_root_needs_that_root_named(kvm_root, tmp_path):
    f, _ = _plan_file(kvm_root, tmp_path, "load-kvm-modules")
    r = kvmprep("apply", str(f), "--yes")  # not --root: the file alone never picks a root
    assert r.returncode == 2 and "apply it there with --root" in one_line(r.stderr)
    assert not (kvm_root.path / "etc/modules-load.d").exists()


def test_a_second_apply_while_one_runs_exits_2(kvm_root):
    from remediations.journal import Journal

    journal = Journal(Host(kvm_root.path))
    journal.lock()  # an apply is running
    try:
        r = kvmprep("apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "--yes")
    finally:
        journal.unlock()
    assert r.returncode == 2 and "another kvmprep apply or undo is running" in one_line(r.stderr)
    assert not (kvm_root.path / "etc/modules-load.d").exists()


# ------------------------------- kvmprep's own state, inside the root only


def _victim(tmp_path, name="victim") -> tuple[Path, bytes]:
    v = tmp_path / "outside" / name
    v.parent.mkdir(exist_ok=True)
    v.write_text(f"{name}: the machine's own file, outside the root\n")
    return v, v.read_bytes()


@pytest.mark.parametrize("entry", ["var/lib/kvmprep/lock", "var/lib/kvmprep/journal", "var/lib/kvmprep",
                                   "var/log/kvmprep/kvmprep.log", "var/lib/kvmprep/backups"])
def test_state_symlinks_out_of_the_root_are_refused(kvm_root, tmp_path, entry):
    victim, before = _victim(tmp_path)
    target = victim.parent if entry in ("var/lib/kvmprep", "var/lib/kvmprep/backups") else victim
    kvm_root.symlink(entry, str(target))
    kvm_root.write("etc/modules-load.d/kvm.conf", "kvm\n")  # an existing file: a backup is made
    r = kvmprep("apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "--yes")
    assert r.returncode in (0, 1, 2), r.stdout + r.stderr
    assert victim.read_bytes() == before
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim"]
    if r.returncode == 0:  # a directory symlink is followed inside the root, like a chroot would
        assert str(kvm_root.path / str(victim.parent).lstrip("/")) in r.stdout
    elif r.returncode == 2:
        assert "refused" in one_line(r.stderr) or "another" in r.stderr
    else:
        assert "cannot keep the original" in r.stdout
        assert (kvm_root.path / "etc/modules-load.d/kvm.conf").read_text() == "kvm\n"


def test_attach_does_not_print_a_file_outside_the_root(kvm_root, tmp_path):
    victim, _ = _victim(tmp_path, "secret")
    kvm_root.mkdir("var/lib/kvmprep")
    kvm_root.symlink("var/lib/kvmprep/apply.out", str(victim))
    r = kvmprep("apply", "--attach", "--root", str(kvm_root.path))
    assert "outside the root" not in r.stdout + r.stderr


# ----------------------------------------------- journals are input, not code


def _applied(kvm_root) -> None:
    kvm_root.write("etc/modules-load.d/kvm.conf", "# the admin's\nkvm\n")
    r = kvmprep("apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules,enable-nested", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr


def _edit_journal(kvm_root, edit) -> None:
    path = kvm_root.path / "var/lib/kvmprep/journal"
    records = [json.loads(l) for l in path.read_text().splitlines()]
    edit(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _start(records) -> dict:
    return next(r for r in records if r["event"] == "start")


def _inject(action: dict):
    """A journal edit: one more action in the first step, recorded as done."""
    def edit(records):
        start = _start(records)
        actions = start["plan"]["steps"][0]["actions"]
        actions.append({"why": "", "reboot": False, "runtime": False, **action})
        for event in ("before", "after"):
            records.append({"apply": start["apply"], "event": event, "step": 0, "action": len(actions) - 1,
                            event: {}})
    return edit


def test_journal_path_outside_the_root_is_not_touched(kvm_root, tmp_path):
    victim, before = _victim(tmp_path)
    _applied(kvm_root)

    def edit(records):
        a = _start(records)["plan"]["steps"][0]["actions"][0]
        a["path"] = "/etc/../../../" + str(victim.relative_to("/"))

    _edit_journal(kvm_root, edit)
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not a plain path inside the root" in r.stdout
    assert victim.read_bytes() == before
    # the other action was still undone
    assert not (kvm_root.path / "etc/modprobe.d/kvm-nested.conf").exists()


def test_journal_injected_undo_command_does_not_run(kvm_root, tmp_path):
    marker = tmp_path / "INJECTED"
    _applied(kvm_root)

    _edit_journal(kvm_root, _inject({"kind": "run", "argv": ["true"], "undo_argv": ["touch", str(marker)],
                                     "env": {}, "title": "", "undo_at_end": False}))
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 1 and "is not one kvmprep writes" in r.stdout, r.stdout
    assert not marker.exists()
    assert (kvm_root.path / "etc/modules-load.d/kvm.conf").read_text() == "# the admin's\nkvm\n"


def test_journal_env_and_other_root_are_refused(kvm_root, tmp_path):
    _applied(kvm_root)

    _edit_journal(kvm_root, _inject({"kind": "enable-units", "units": ["x.service"],
                                     "root": str(tmp_path / "other"), "now": False}))
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 1 and "acts on root" in r.stdout, r.stdout


def test_backup_swapped_for_a_symlink_is_not_copied_in(kvm_root, tmp_path):
    secret, _ = _victim(tmp_path, "secret")
    _applied(kvm_root)
    (backup,) = (kvm_root.path / "var/lib/kvmprep/backups").glob("*/etc/modules-load.d/kvm.conf")
    backup.unlink()
    backup.symlink_to(secret)
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 1, r.stdout
    assert "outside the root" not in (kvm_root.path / "etc/modules-load.d/kvm.conf").read_text()


def test_setuid_mode_on_a_backup_is_not_restored(kvm_root):
    _applied(kvm_root)
    (backup,) = (kvm_root.path / "var/lib/kvmprep/backups").glob("*/etc/modules-load.d/kvm.conf")
    backup.chmod(0o4755)
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 0, r.stdout
    restored = kvm_root.path / "etc/modules-load.d/kvm.conf"
    assert restored.read_text() == "# the admin's\nkvm\n"
    assert stat.S_IMODE(restored.stat().st_mode) == 0o755


def test_missing_backup_and_garbage_line_still_undo_the_rest_and_can_be_finished(kvm_root):
    _applied(kvm_root)
    (backup,) = (kvm_root.path / "var/lib/kvmprep/backups").glob("*/etc/modules-load.d/kvm.conf")
    backup.unlink()
    with open(kvm_root.path / "var/lib/kvmprep/journal", "ab") as fh:
        fh.write(b'{"event": "x", "text": "\xff\xfe not utf-8"}\n')
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "is missing from" in r.stdout and "could not be read" in r.stdout
    assert not (kvm_root.path / "etc/modprobe.d/kvm-nested.conf").exists()  # the rest was undone
    again = kvmprep("undo", "--root", str(kvm_root.path), "--yes")  # not "nothing to undo": it is not finished
    assert again.returncode == 1 and "is missing from" in again.stdout, again.stdout
    assert "kvm-nested.conf" not in again.stdout.split("in reverse order:")[1]  # done once, not again
    skip = kvmprep("undo", "--root", str(kvm_root.path), "--yes", "--skip-broken")
    assert skip.returncode == 1 and "--skip-broken" in skip.stdout
    done = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert done.returncode == 0 and "Nothing to undo" in done.stdout


def test_an_apply_killed_in_its_first_action_is_undoable(tools_root):
    """apt goes on installing after kvmprep is SIGKILLed: the journal's
    'before' (written before the command ran) is enough for undo to find it."""
    from pkgroots import dpkg_installed

    root = tools_root
    r = kvmprep("apply", "--root", str(root), "--fix", "install-tools", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    journal = root / "var/lib/kvmprep/journal"
    kept = [l for l in journal.read_text().splitlines() if json.loads(l)["event"] in ("start", "before")]
    journal.write_text("\n".join(kept) + "\n")  # as if killed while apt-get ran
    u = kvmprep("undo", "--root", str(root), "--yes", "--remove-packages")
    assert u.returncode == 0, u.stdout + u.stderr
    assert "interrupted while running; undoing what it changed" in u.stdout
    assert "dmidecode" not in dpkg_installed(root)


@pytest.mark.parametrize("link", ["var/log", "usr/share"])
def test_package_manager_is_not_run_through_a_symlink_out_of_the_root(tmp_path, tools_root, link):
    """dpkg unpacks by path and apt/dpkg log by path: an absolute symlink in
    the image would take them onto this machine."""
    from pkgroots import dpkg_installed

    root = tools_root
    outside = tmp_path / "outside" / "dir"
    outside.mkdir(parents=True)
    target = root / link
    if target.exists():
        import shutil

        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(outside)
    r = kvmprep("apply", "--root", str(root), "--fix", "install-tools", "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "would write outside the root" in r.stdout
    assert list(outside.iterdir()) == []
    assert "dmidecode" not in dpkg_installed(root)


def test_apt_and_dpkg_log_inside_the_root(tools_root):
    root = tools_root
    host_log = Path("/var/log/dpkg.log")
    size = host_log.stat().st_size if host_log.exists() else 0
    r = kvmprep("apply", "--root", str(root), "--fix", "install-tools", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "install dmidecode" in (root / "var/log/dpkg.log").read_text()
    after = host_log.read_bytes()[size:] if host_log.exists() else b""
    assert str(root).encode() not in after and b"dmidecode:amd64 3.4-1" not in after


def test_a_temp_file_left_by_a_killed_apply_is_cleaned_by_the_next(kvm_root):
    """kvmprep killed during a rename leaves .NAME.kvmprep-PID.tmp; the next
    apply removes it (its pid is no longer a running kvmprep) and says so."""
    stale = kvm_root.write("etc/modules-load.d/.kvm.conf.kvmprep-999999.tmp", "half\n")
    r = kvmprep("apply", "--root", str(kvm_root.path), "--fix", "load-kvm-modules", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not stale.exists()
    assert "left by a kvmprep that was killed" in (kvm_root.path / "var/log/kvmprep/kvmprep.log").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_where_a_fix_reads_is_not_read_into_the_plan(root):
    root.use("os/debian_10")
    root.write("etc/hostname", "vmhost\n")
    os.mknod(root.path / "etc/hosts", stat.S_IFBLK | 0o644, os.makedev(7, 0))
    r = kvmprep("plan", "--root", str(root.path), "--fix", "add-hosts-entry")
    assert r.returncode == 0, r.stderr
    assert "cannot plan it" in r.stdout and "not a regular file (a block device)" in r.stdout


def test_journal_fields_of_the_wrong_type_fail_that_action_alone(kvm_root):
    _applied(kvm_root)

    def edit(records):
        for r in records:
            if r["event"] == "after" and r["action"] == 0 and r["step"] == 0:
                r["after"] = ["not", "a", "mapping"]
            if r["event"] == "before" and r["step"] == 1:
                r["step"] = "1"  # not a number: that record counts for nothing

    _edit_journal(kvm_root, edit)
    r = kvmprep("undo", "--root", str(kvm_root.path), "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stdout
