"""Scenarios 5 and 4 of issue 9 on one fresh QEMU VM (tests/lab/lab_vm.py).

The VM is the lab's Debian 12 as an installer leaves it, on a q35 machine
with a virtual AMD IOMMU (``-device amd-iommu``: an IVRS table, so AMD-Vi is
on) and ``-cpu max`` (AMD-V: kvm_amd loads). One boot serves both, in this
order (the first needs the fresh state):

5. **A real serial console.** A getty runs on ttyS0 (systemd starts
   serial-getty@ttyS0 because the kernel's console is there; agetty's TERM is
   vt220). The VM's ttyS0 is a QEMU unix socket; tests/lab/serial_relay.py
   joins it to a tmux pane at 80x24, so tmux draws what a serial terminal
   would. The test logs in on the getty as root with a password, then starts
   ``python3 kvmprep.pyz`` from that shell, once with TERM=vt220 and once
   with TERM=linux: welcome, results, cursor moves on the results, fixes, the
   preview, quit. QEMU's serial log holds every byte the VM sent on the line:
   the counts come from it, none of the wizard's bytes may be outside ASCII,
   and each cursor move on the results costs at most 1 KB (under 0.1 s at
   115200 baud).
4. **The external oracle.** ``kvmprep apply --yes`` (the default selection)
   over ssh installs the virtualization packages (~140 without Recommends:
   about four minutes of dpkg under software emulation; with Recommends it
   was ~420 and nine minutes). Then the VM's own
   ``virt-host-validate qemu`` must say PASS for every line except secure
   guest support (the emulated CPU has no SEV), and kvmprep's checks must
   agree with it line by line where both judge the same thing; libvirt is
   asked too (its socket active, ``virsh version`` answers).

``pytest -s`` prints the figures the README quotes.

What it found: on ttyS0 with TERM=vt220 the wizard drew UTF-8 box and bar
glyphs (ASCII was automatic only with TERM=linux); serial lines and
VT-family terminals now get ASCII (app/wizard_state.py, unit-tested in
tests/test_wizard_options.py).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
from pathlib import Path

import pytest

from lab_state import Phases
from lab_vm import QemuVM

pytestmark = pytest.mark.lab

sys.path.insert(0, str(Path(__file__).parent.parent))  # tests/: terminal.py, traffic.py
from terminal import Terminal, need_tmux, non_ascii  # noqa: E402
from traffic import RESULTS, ByteCount, at_welcome, cursor_row, fix_of, plain, summary, to_results, walk_page  # noqa: E402

PYZ = "/root/kvmprep.pyz"
PASSWORD = "kvmlab-serial"  # root's, set over ssh for the login on ttyS0
PROMPT = "root@kvmlab:~#"
BUDGET = 1024  # bytes per cursor move: under 0.1 s at 115200 baud
MOVES = 6
HARDWARE = ["-machine", "q35", "-device", "amd-iommu"]

# virt-host-validate qemu's lines (libvirt 9.0) and the kvmprep checks that judge the same thing
ORACLE = [
    ("hardware virtualization", "cpu.virt-extensions"),
    ("if device /dev/kvm exists", "kvm.device"),
    ("if device /dev/kvm is accessible", "kvm.device-access"),
    ("if device /dev/vhost-net exists", "kvm.vhost-net"),
    ("if device /dev/net/tun exists", "kvm.tun"),
    ("controller support", "cgroups.controllers"),
    ("controller mount-point", "cgroups.controllers"),
    ("device assignment IOMMU support", "iommu.firmware"),
    ("if IOMMU is enabled by kernel", "iommu.kernel"),
    ("secure guest support", "security.secure-guest"),
]
FIRMWARE = ("secure guest support",)  # needs what the VM's firmware and CPU lack (AMD SEV)
VHV_LINE = re.compile(r"^\s*QEMU: Checking (?:for )?(.+?)\s*:\s*(PASS|WARN|FAIL)\b(.*)$")


@pytest.fixture(scope="module")
def fresh_vm(vm_base, lab_bundle, tmp_path_factory):
    """The VM of both scenarios, kvmprep.pyz copied in; powered off at the end."""
    vm = QemuVM(vm_base, tmp_path_factory.mktemp("vm-fresh"), "kvmlab-fresh", hardware=HARDWARE)
    try:
        vm.boot()
        vm.scp_to(lab_bundle, PYZ)
        yield vm
    finally:
        vm.poweroff()


# ---- the serial line ----------------------------------------------------------------------

class SerialRecorder(ByteCount):
    """The bytes the VM sent on ttyS0 (QEMU's log of the line), for traffic.walk()."""

    def __init__(self, vm: QemuVM):
        super().__init__(vm.serial_log)
        self.vm = vm

    def bytes_since(self, offset: int) -> bytes:
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            return fh.read()

    def quiet(self, quiet: float = 0.8, timeout: float = 60) -> int:
        """4 frames/s on a serial line, and a VM under emulation: longer than in tmux alone."""
        return super().quiet(quiet, timeout)


def what_runs(vm: QemuVM) -> str:
    """The VM's processes, where each waits in the kernel, and the serial line's tail (a failure's
    explanation)."""
    ps = vm.ssh("ps -eo pid,stat,wchan:28,etime,pcpu,args --sort=start_time | grep -v ' \\[.*\\]$' | tail -25; "
                "uptime; free -m", timeout=60)
    return f"the VM's processes:\n{ps.stdout}{ps.stderr}\n{vm.serial_tail(20)}"


def type_line(t: Terminal, text: str) -> None:
    """Type ``text`` at the shell prompt (literally), wait for its echo; Enter is left to the caller."""
    t.keys("-l", text)
    t.wait_for(lambda s: text[-20:] in s.replace("\n", ""), f"the echo of {text!r}", timeout=60)


def login(t: Terminal) -> None:
    end = time.monotonic() + 120
    while "login:" not in t.capture():  # agetty prints its prompt again at Enter
        if time.monotonic() > end:
            raise AssertionError("no login prompt on ttyS0:\n" + t.capture())
        t.keys("Enter")
        time.sleep(1)
    t.keys("-l", "root")
    t.keys("Enter")
    t.wait_text("Password:", timeout=60)
    t.keys("-l", PASSWORD)
    t.keys("Enter")
    t.wait_text(PROMPT, timeout=60)


def serial_walk(t: Terminal, rec: SerialRecorder, term: str) -> dict:
    """The wizard started from the serial login shell with ``term``: welcome,
    results, moves, fixes, preview, quit; the bytes of each part."""
    # stty: a serial line has no size of its own (0x0); 80x24 is what the terminal shows
    t.keys("C-l")
    type_line(t, f"export TERM={term}; stty rows 24 cols 80")
    t.keys("Enter")
    t.wait_for(lambda s: s.rstrip().endswith(PROMPT) and s.count(PROMPT) >= 2,
               "the prompt after stty", timeout=60)
    type_line(t, f"python3 {PYZ}")
    start = rec.quiet()
    t.keys("Enter")
    try:
        # the bundle's first run on the VM copies itself into ~/.cache and compiles every module it
        # imports, under software emulation: tens of seconds
        at_welcome(t, timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{what_runs(rec.vm)}") from None
    welcome = rec.quiet()
    screen = to_results(t)
    results = rec.quiet()
    assert "connected over SSH" not in screen
    moves = walk_page(t, rec, RESULTS, MOVES)
    before_fixes = rec.quiet()
    t.keys("Enter")
    fixes = t.wait_for(lambda s: "4/8 Fixes" in s and "[x]" in s and fix_of(cursor_row(t.capture_styled()) or ""),
                       "the fixes", timeout=60)
    assert "install-virtualization-packages" in fixes, fixes
    fixes_end = rec.quiet()
    t.keys("Enter")
    preview = t.wait_for(lambda s: "5/8 Preview" in s and "apt-get install" in s, "the preview", timeout=60)
    preview_end = rec.quiet()
    t.keys("q")
    t.wait_text("Quit kvmprep?")
    t.keys("y")
    t.wait_for(lambda s: s.rstrip().endswith(PROMPT) and "Quit kvmprep?" not in s,
               "the shell prompt after quitting", timeout=60)
    end = rec.quiet()

    wire = rec.bytes_since(start)[:end - start]
    high = sorted({f"0x{b:02x}" for b in wire if b > 0x7f})
    assert not high, f"TERM={term}: bytes outside ASCII on the serial line: {high[:10]}"
    drawn = [non_ascii(f) for f in t.frames if non_ascii(f)]
    assert not drawn, f"TERM={term}: glyphs outside ASCII on the screen: {drawn[0]}"
    assert "Traceback" not in t.capture(history=True)
    sizes = [m.nbytes for m in moves]
    assert max(sizes) <= BUDGET, f"TERM={term}: a cursor move on the results sent more than {BUDGET} B:\n" \
                                 + summary(moves)
    print(f"\n[serial] TERM={term} results moves:\n{summary(moves)}")
    return {"term": term, "welcome": welcome - start, "results": results - welcome,
            "move_median": statistics.median(sizes), "move_max": max(sizes),
            "fixes": fixes_end - before_fixes, "preview": preview_end - fixes_end, "total": end - start,
            "preview_screen": plain(preview)}


def test_wizard_on_the_vms_serial_console(fresh_vm, tmp_path):
    need_tmux()
    vm, phase = fresh_vm, Phases("serial console")
    # root's password for the getty; the kernel's own messages off the console during the walk
    vm.ssh(f"echo root:{PASSWORD} | chpasswd && dmesg -n 1", check=True)
    relay = Path(__file__).parent / "serial_relay.py"
    t = Terminal(tmp_path, [sys.executable, str(relay), str(vm.sockdir / "serial.sock")])
    try:
        login(t)
        phase("log in on ttyS0")
        rec = SerialRecorder(vm)
        figures = []
        for term in ("vt220", "linux"):
            figures.append(serial_walk(t, rec, term))
            phase(f"the wizard with TERM={term}")
    finally:
        t.close()
    for f in figures:
        print(f"[serial] TERM={f['term']}: first screen (welcome) {f['welcome']} B, results {f['results']} B, "
              f"per move on the results median {f['move_median']:.0f} B / max {f['move_max']} B, fixes "
              f"{f['fixes']} B, preview {f['preview']} B; the whole walk {f['total']} B "
              f"({f['total'] * 10 / 115200:.1f} s at 115200 baud)")
        # the walk reached a preview that shows the commands apply would run
        assert "$ DEBIAN_FRONTEND=noninteractive apt-get install" in f["preview_screen"], f["preview_screen"]


# ---- the oracle ----------------------------------------------------------------------------

def vhv_lines(text: str) -> list:
    """(what, status, detail) of each ``QEMU: Checking ...`` line of virt-host-validate."""
    return [(m.group(1), m.group(2), m.group(3).strip()) for m in map(VHV_LINE.match, text.splitlines()) if m]


def test_virt_host_validate_agrees_after_the_apply(fresh_vm):
    vm, phase = fresh_vm, Phases("oracle")
    vm.ssh(f"pkill -x -f 'python3 {PYZ}'")  # a wizard a failed serial walk left on ttyS0 (none when it passed)
    r = vm.ssh(f"python3 {PYZ} apply --yes", timeout=2400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr + "\n" + what_runs(vm)
    assert "Traceback" not in r.stderr
    phase("kvmprep apply --yes (the default selection)")

    # the VM's own word: libvirt answers (Debian's libvirtd is socket-activated and exits after
    # 120 s idle: its socket is what stays active), QEMU is there
    assert vm.ssh("systemctl is-active libvirtd.socket").stdout.strip() == "active"
    assert vm.ssh("systemctl is-enabled libvirtd.service").stdout.strip() == "enabled"
    version = vm.ssh("virsh -c qemu:///system version", check=True).stdout
    assert "Running hypervisor: QEMU" in version, version

    vhv = vm.ssh("virt-host-validate qemu", timeout=120)
    lines = vhv_lines(vhv.stdout)
    assert len(lines) >= 10, vhv.stdout + vhv.stderr
    for what, status, detail in lines:
        if not any(f in what for f in FIRMWARE):
            assert status == "PASS", f"virt-host-validate: {what}: {status} {detail}\n{vhv.stdout}"

    r = vm.ssh(f"python3 {PYZ} check --format json", timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr  # ready: no required check fails
    doc = json.loads(r.stdout)
    ours = {c["id"]: c for c in doc["checks"]}
    table, unmatched = [], []
    for what, status, _ in lines:
        ids = [cid for key, cid in ORACLE if key in what]
        if not ids:
            unmatched.append(what)
            continue
        mine = ours[ids[0]]
        agree = (status == "PASS") == (mine["status"] == "pass")
        table.append((what, status, ids[0], mine["status"].upper(), agree))
        assert agree, f"virt-host-validate says {status} for {what!r}, kvmprep {ids[0]}: " \
                      f"{mine['status']} - {mine.get('detail')}"
    assert not unmatched, f"virt-host-validate lines no kvmprep check is mapped to: {unmatched}"
    print("\n[oracle] | virt-host-validate qemu | | kvmprep | |")
    for what, status, cid, st, _ in table:
        print(f"[oracle] | {what} | {status} | `{cid}` | {st} |")
    versions = vm.ssh("dpkg-query -W -f '${Package} ${Version}\\n' systemd qemu-system-x86 libvirt-daemon-system "
                      "libvirt-clients python3 linux-image-amd64; uname -r", check=True).stdout
    print("[oracle] versions: " + "; ".join(versions.splitlines()))
    phase("virt-host-validate and kvmprep check, line by line")
