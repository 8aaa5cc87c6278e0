"""Nothing lost: a fix rewrites only the lines it changes, byte for byte whatever the
file's encoding (Latin-1 comments, a stray 0xff, CRLF line ends), through the real CLI
on throwaway roots: plan (preview, JSON and YAML plan files), apply of a plan file
(planned again and compared), plan again (empty), undo (the original, byte for byte).
And the temp files a killed write leaves behind are cleaned (fileops.clean_stale_temps)."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from pkgroots import el_root
from remediations.actions import WriteFile
from remediations.fileops import clean_stale_temps, decode_text, encode_text, readable
from remediations.plan import Plan, Step, render_preview

TOP = Path(__file__).resolve().parent.parent
REL = "5.14.0-362.el9.x86_64"
INTEL = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6230\nflags\t\t: fpu lm vmx\n\n"


def kvmprep(*args, env=None):
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, cwd=TOP,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL, timeout=120)


def changes(old: bytes, new: bytes) -> list[tuple[list[bytes], list[bytes]]]:
    """The lines (with their ends) that differ: [(removed, added)] per changed block."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    return [(a[i1:i2], b[j1:j2]) for tag, i1, i2, j1, j2 in ops if tag != "equal"]


def write_contents(data: dict) -> dict[str, str]:
    return {a["path"]: a["content"] for s in data["steps"] for a in s["actions"] if a["kind"] == "write-file"}


def fix_round_trip(root: Path, tmp_path: Path, fix: str, expect: dict[str, list]) -> None:
    """``kvmprep plan`` (preview, JSON and YAML files), ``apply FILE`` of each, plan again,
    undo; ``expect``: {file inside the root: its changed lines [(removed, added)]}."""
    files = {rel: root / rel for rel in expect}
    original = {rel: p.read_bytes() if p.exists() else None for rel, p in files.items()}
    r = kvmprep("plan", "--root", str(root), "--fix", fix)
    assert r.returncode == 0, r.stdout + r.stderr
    # the preview shows a byte that is not UTF-8 as \xe9: neither U+FFFD nor a raw surrogate
    assert "\\x" in r.stdout and "\ufffd" not in r.stdout and "\\udc" not in r.stdout, r.stdout

    plan_json, plan_yaml = tmp_path / f"{fix}.json", tmp_path / f"{fix}.yaml"
    for fmt, out in (("json", plan_json), ("yaml", plan_yaml)):
        r = kvmprep("plan", "--root", str(root), "--fix", fix, "--format", fmt, "-o", str(out))
        assert r.returncode == 0, r.stdout + r.stderr
        out.read_bytes().decode("utf-8")  # a plan file is UTF-8 text (the bytes are escapes in it)
    from_json = json.loads(plan_json.read_text())
    from_yaml = yaml.safe_load(plan_yaml.read_text())
    assert from_json["steps"] == from_yaml["steps"]
    contents = write_contents(from_json)
    assert sorted(contents) == sorted("/" + rel for rel in expect)
    assert Plan.from_dict(from_yaml).to_dict()["steps"] == from_json["steps"]

    for plan_file in (plan_yaml, plan_json):
        r = kvmprep("apply", str(plan_file), "--root", str(root), "--yes")
        assert r.returncode == 0 and "stale" not in r.stdout + r.stderr, r.stdout + r.stderr
        for rel, p in files.items():
            new = p.read_bytes()
            assert new == encode_text(contents["/" + rel]), rel  # what the plan file says, exactly
            assert changes(original[rel] or b"", new) == expect[rel], (rel, new)
        r = kvmprep("plan", "--root", str(root), "--fix", fix)
        assert r.returncode == 0 and "Nothing to do" in r.stdout, r.stdout
        r = kvmprep("undo", "--root", str(root), "--yes")
        assert r.returncode == 0, r.stdout + r.stderr
        for rel, p in files.items():
            assert (p.read_bytes() if p.exists() else None) == original[rel], rel
    assert not list(root.rglob("*.kvmprep-*.tmp"))


# ---- SELinux: Latin-1 comments, CRLF line ends -------------------------------------------

SELINUX_CONFIG = (b"# This file controls the state of SELinux on the system.\r\n"
                  b"# R\xe9glage par d\xe9faut: \xab enforcing \xbb\r\n"
                  b"SELINUX=enforcing\r\n"
                  b"# d\xc3\xa9j\xc3\xa0 en UTF-8, et un octet seul: \xff\r\n"
                  b"SELINUXTYPE=targeted\r\n")


def test_disable_selinux_keeps_every_other_byte(tmp_path):
    root = el_root(tmp_path / "root")
    (root / "etc/selinux").mkdir(parents=True)
    (root / "etc/selinux/config").write_bytes(SELINUX_CONFIG)
    fix_round_trip(root, tmp_path, "disable-selinux",
                   {"etc/selinux/config": [([b"SELINUX=enforcing\r\n"], [b"SELINUX=disabled\r\n"])]})


def test_plan_file_is_stale_when_an_unchanged_byte_differs(tmp_path):
    """The plan pins the bytes of the lines it keeps: 0xe9 -> 0xe8 on a comment is a
    different plan (with replacement characters both would read U+FFFD)."""
    root = el_root(tmp_path / "root")
    conf = root / "etc/selinux/config"
    conf.parent.mkdir(parents=True)
    conf.write_bytes(SELINUX_CONFIG)
    plan_file = tmp_path / "plan.json"
    r = kvmprep("plan", "--root", str(root), "--fix", "disable-selinux", "--format", "json", "-o", str(plan_file))
    assert r.returncode == 0, r.stderr
    assert "\\udce9" in plan_file.read_text()  # JSON's escape of the byte 0xe9
    conf.write_bytes(SELINUX_CONFIG.replace(b"R\xe9glage", b"R\xe8glage"))
    r = kvmprep("apply", str(plan_file), "--root", str(root), "--yes")
    assert r.returncode == 2 and "stale" in r.stderr, r.stdout + r.stderr
    assert conf.read_bytes() == SELINUX_CONFIG.replace(b"R\xe9glage", b"R\xe8glage")


# ---- GRUB settings ---------------------------------------------------------------------------

GRUB = (b"# Configuration de GRUB, \xe9dit\xe9e \xe0 la main \xff\n"
        b"GRUB_DEFAULT=0\n"
        b"GRUB_TIMEOUT=5\n"
        b"GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n"
        b"GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\n"
        b"GRUB_CMDLINE_LINUX=\"console=ttyS0\"  # par d\xe9faut\n"
        b"\n"
        b"#GRUB_TERMINAL=console  # \x1b[31m (an escape sequence, shown as text)\n")


def test_enable_iommu_grub_keeps_every_other_byte(root, tmp_path):
    root.write("proc/cpuinfo", INTEL)
    root.write("etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    root.write("etc/default/grub", GRUB)
    # the changed line keeps its own Latin-1 comment too
    fix_round_trip(root.path, tmp_path, "enable-iommu", {"etc/default/grub": [
        ([b"GRUB_CMDLINE_LINUX=\"console=ttyS0\"  # par d\xe9faut\n"],
         [b"GRUB_CMDLINE_LINUX=\"console=ttyS0 intel_iommu=on\"  # par d\xe9faut\n"])]})
    r = kvmprep("plan", "--root", str(root.path), "--fix", "enable-iommu")
    assert "\x1b" not in r.stdout and "\\x1b[31m" in r.stdout  # never sent to the terminal


# ---- /etc/hosts ------------------------------------------------------------------------------

def test_add_hosts_entry_keeps_every_other_byte(root, tmp_path):
    root.use("net/debian12-vm")  # hostname vm, address 192.0.2.2
    root.write("etc/hosts", b"# H\xf4tes de la machine\r\n"
                            b"127.0.0.1\tlocalhost vm  # poste l\xe9ger\n"
                            b"::1     localhost ip6-localhost ip6-loopback\n"
                            b"192.0.2.9 caf\xe9\n")
    fix_round_trip(root.path, tmp_path, "add-hosts-entry", {"etc/hosts": [
        ([b"127.0.0.1\tlocalhost vm  # poste l\xe9ger\n"],
         [b"127.0.0.1\tlocalhost  # poste l\xe9ger\n", b"192.0.2.2 vm\n"])]})


# ---- modprobe.d and modules-load.d -----------------------------------------------------------

def kvm_root(path: Path) -> Path:
    """An offline Intel host whose kernel has kvm, kvm_intel and tun as modules (tests/test_fix_cli.py)."""
    fixtures = TOP / "tests/fixtures"
    import shutil

    for fixture in ("cpu/x86_64-64cpu-linux6.2", "os/centos_8_1"):
        shutil.copytree(fixtures / fixture, path, dirs_exist_ok=True, symlinks=True)
    (path / "proc/version").write_text(f"Linux version {REL} (mockbuild@) (gcc) #1 SMP\n")
    (path / f"lib/modules/{REL}").mkdir(parents=True)
    (path / f"lib/modules/{REL}/modules.dep").write_text(
        "kernel/arch/x86/kvm/kvm.ko.xz:\nkernel/arch/x86/kvm/kvm-intel.ko.xz: kernel/arch/x86/kvm/kvm.ko.xz\n"
        "kernel/drivers/net/tun.ko.xz:\n")
    (path / f"lib/modules/{REL}/modules.builtin").write_text("")
    return path


def test_load_kvm_modules_appends_and_keeps_every_other_byte(tmp_path):
    root = kvm_root(tmp_path / "root")
    (root / "etc/modules-load.d").mkdir(parents=True)
    (root / "etc/modules-load.d/kvm.conf").write_bytes(b"# modules charg\xe9s au d\xe9marrage\r\nkvm\r\n")
    fix_round_trip(root, tmp_path, "load-kvm-modules", {"etc/modules-load.d/kvm.conf": [
        ([], [b"kvm_intel\n", b"tun\n"])]})


def test_enable_nested_modprobe_files_keep_every_other_byte(tmp_path):
    root = kvm_root(tmp_path / "root")
    (root / "etc/modprobe.d").mkdir(parents=True)
    (root / "etc/modprobe.d/kvm-nested.conf").write_bytes(b"# r\xe9glages KVM\noptions kvm_intel nested=0\n")
    # read after kvm-nested.conf: it would win, so it is edited where it is
    (root / "etc/modprobe.d/local.conf").write_bytes(b"# \xa9 admin\r\noptions kvm_intel nested=0 ept=1 # \xe0 voir\r\n")
    fix_round_trip(root, tmp_path, "enable-nested", {
        "etc/modprobe.d/kvm-nested.conf": [([b"options kvm_intel nested=0\n"], [b"options kvm_intel nested=1\n"])],
        "etc/modprobe.d/local.conf": [([b"options kvm_intel nested=0 ept=1 # \xe0 voir\r\n"],
                                       [b"options kvm_intel nested=1 ept=1 # \xe0 voir\r\n"])]})


# ---- nova.conf -------------------------------------------------------------------------------

NOVA_CONF = textwrap.dedent("""\
    [DEFAULT]
    # Options d\xe9finies par l'\xe9quipe
    my_ip = 192.0.2.2

    [libvirt]
    # Type de virtualisation \xab qemu \xbb pour l'instant
    virt_type = qemu
    cpu_mode = none
    images_type = default
    """).encode("latin-1")


def test_configure_nova_keeps_every_other_byte(root, tmp_path):
    root.write("etc/nova/nova.conf", NOVA_CONF, mode=0o640)
    fix_round_trip(root.path, tmp_path, "configure-nova", {"etc/nova/nova.conf": [
        ([b"virt_type = qemu\n", b"cpu_mode = none\n"], [b"virt_type = kvm\n", b"cpu_mode = host-model\n"])]})
    assert (root.path / "etc/nova/nova.conf").stat().st_mode & 0o777 == 0o640


# ---- the representation ------------------------------------------------------------------

def test_text_round_trips_every_byte_and_shows_them_readably():
    data = bytes(range(256)) + b"\r\n\xc3\xa9\xed\xa0\x80"  # every byte, UTF-8, an encoded surrogate
    assert encode_text(decode_text(data)) == data
    shown = readable(decode_text(b"caf\xe9\t\x1b[2J\rok\r\n"))
    assert shown == "caf\\xe9\t\\x1b[2J\\x0dok\r\n"


def test_write_file_action_survives_json_and_yaml(tmp_path):
    old = b"# r\xe9glage\r\nSELINUX=enforcing\r\n\xff\n"
    new = decode_text(old).replace("enforcing", "disabled")
    action = WriteFile(path="/etc/selinux/config", content=new, original_sha256="0" * 64,
                       old_text=decode_text(old), why="test")
    plan = Plan("/", "generic", "now", [Step("disable-selinux", "t", ["security.selinux"], [action])])
    for text in (json.dumps(plan.to_dict()),
                 yaml.safe_dump(plan.to_dict(), sort_keys=False, allow_unicode=True, width=100)):
        text.encode("utf-8")  # writable as a UTF-8 file
        loaded = Plan.from_dict(yaml.safe_load(text))
        assert loaded.to_dict() == plan.to_dict()
        assert loaded.actions[0].data == b"# r\xe9glage\r\nSELINUX=disabled\r\n\xff\n"
    preview = render_preview(plan)
    preview.encode("ascii")  # safe for any terminal
    assert "-SELINUX=enforcing" in preview and "+SELINUX=disabled" in preview and "# r\\xe9glage" in preview


# ---- stale temp files ------------------------------------------------------------------------

def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def running_kvmprep(tmp_path):
    """A process that looks like the console script (argv[1] .../bin/kvmprep)."""
    script = tmp_path / "bin" / "kvmprep"
    script.parent.mkdir()
    script.write_text("import sys, time\nsys.stdout.write('up\\n'); sys.stdout.flush(); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"up\n"
    yield proc.pid
    proc.kill()
    proc.wait()


def test_clean_stale_temps(tmp_path, running_kvmprep, request):
    d = tmp_path / "etc"
    d.mkdir()
    other = subprocess.Popen(["sleep", "60"])  # running, but not kvmprep: the pid was reused
    request.addfinalizer(lambda: (other.kill(), other.wait()))
    dead, other_program = dead_pid(), other.pid
    stale = [d / f".hosts.kvmprep-{dead}.tmp", d / f".grub.kvmprep-{other_program}.tmp"]
    live = d / f".selinux.kvmprep-{running_kvmprep}.tmp"
    theirs = d / f".nova.conf.kvmprep-{dead}.tmp"
    keep = [live, theirs, d / "hosts", d / f"hosts.kvmprep-{dead}.tmp", d / f".hosts.kvmprep-{dead}.tmp.conf",
            d / ".hosts.kvmprep-x.tmp", d / f".kvmprep-{dead}.tmp"]
    for p in stale + keep:
        p.write_bytes(b"half written")
    os.chown(theirs, 4242, 4242)  # another user's
    (d / f".dir.kvmprep-{dead}.tmp").mkdir()  # not a regular file
    target = tmp_path / "precious"
    target.write_bytes(b"keep me")
    link = d / f".link.kvmprep-{dead}.tmp"
    link.symlink_to(target)  # never followed

    removed = clean_stale_temps(str(d))
    assert sorted(removed) == sorted(str(p) for p in stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep)
    assert (d / f".dir.kvmprep-{dead}.tmp").is_dir()
    assert link.is_symlink() and target.read_bytes() == b"keep me"
    assert clean_stale_temps(str(d)) == []
    assert clean_stale_temps(str(tmp_path / "missing")) == []


def test_write_killed_before_its_rename_is_cleaned(tmp_path):
    """A real leftover: atomic_write killed between its write and its rename."""
    target = tmp_path / "etc" / "hosts"
    target.parent.mkdir()
    target.write_bytes(b"127.0.0.1 localhost\n")
    child = textwrap.dedent(f"""\
        import os
        from remediations import fileops
        os.replace = lambda src, dst: os._exit(9)  # killed here
        fileops.atomic_write({str(target)!r}, b"new content\\n")
        """)
    r = subprocess.run([sys.executable, "-c", child], cwd=TOP, capture_output=True, timeout=60)
    assert r.returncode == 9, r.stderr
    [leftover] = target.parent.glob(".hosts.kvmprep-*.tmp")
    assert leftover.read_bytes() == b"new content\n" and target.read_bytes() == b"127.0.0.1 localhost\n"
    assert clean_stale_temps(str(target.parent)) == [str(leftover)]
    assert sorted(p.name for p in target.parent.iterdir()) == ["hosts"]
