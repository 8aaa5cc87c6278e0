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


@pytest.fixture
def kvm_root(root):
    """An offline Intel host whose kernel has kvm, kvm_intel and tun as modules."""
    rel = "5.14.0-362.el9.x86_64"
    root.use("cpu/x86_64-64cpu-linux6.2").use("os/centos_8_1")
    root.write("proc/version", f"Linux version {rel} (mockbuild@) (gcc) #1 SMP\n")
    root.write(f"lib/modules/{rel}/modules.dep",
               "kernel/arch/x86/kvm/kvm.ko.xz:\nkernel/arch/x86/kvm/kvm-intel.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz\n"
               "kernel/drivers/net/tun.ko.xz:\n")
    root.write(f"lib/modules/{rel}/modules.builtin", "")
    return root


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
