"""A lab host with a real kernel: a Debian 12 QEMU VM that boots through GRUB from its own disk.

Why a VM and not nspawn: a container shares this machine's kernel, which has
no loadable modules and no real kernel command line of its own. kvmprep's
kernel fixes (modprobe, modprobe.d options, udev rules for /dev/kvm, kernel
arguments through /etc/default/grub + update-grub) can only be judged on a
kernel that the guest owns and reboots (issue 9, scenario 3). Measured facts
this follows: /work/shared/reference/lab.md.

The image (built once, cached under the lab cache dir, keyed by everything
that shapes it):

1. ``debootstrap --variant=minbase`` with a kernel, GRUB (grub-pc), systemd,
   udev, kmod, sshd and python3 (about 100 s, 900 MB), plus a few files a
   Debian installer would leave: hostname, fstab by UUID, DHCP through
   systemd-networkd, a serial console on the kernel command line, root's
   ssh key (the image's own key, kept next to it: a cached image cannot
   know the key of a later run), and the installer's "targeted" initramfs
   (MODULES=dep: with "most", one update-initramfs runs modinfo on every
   module, minutes under emulation, and the packages' triggers run it).
2. A sparse raw disk: an MBR partition table (sfdisk on the file), and the
   root put into the partition by ``mkfs.ext4 -E offset=1MiB -d ROOT``.
   No loop device, no mount, no root-only kernel feature: only files.
3. The boot code is put there the way Debian's installer does it, by
   ``grub-install /dev/vda`` and ``update-grub`` *inside* the system: one
   first boot with QEMU's direct kernel boot (``-kernel/-initrd``, which
   needs no boot loader) runs a one-shot unit that installs GRUB on its own
   disk, regenerates /boot/grub/grub.cfg with Debian's scripts, removes
   itself and powers off. Every later boot goes SeaBIOS -> GRUB's boot code
   in the MBR and its core image after it -> /boot/grub/grub.cfg on the ext4
   root, so an ``update-grub`` in the VM changes the next boot's command
   line (``BOOT_IMAGE=`` in /proc/cmdline is GRUB's mark).

A scenario's starting state can be an image of its own (``derived_image``):
the base image booted once under a qcow2 overlay, a script run over ssh as an
admin would have run it, powered off; the overlay is kept in the cache.

Each test boots a fresh qcow2 overlay on top (``qemu-img create -b``), so
the cached images stay as they were built. QEMU runs ``-accel tcg`` (``-accel
kvm`` does not work on this machine), ``-cpu max`` (AMD-V is emulated:
kvm_amd loads in the guest), user networking with ssh forwarded from a free
port of 127.0.0.1, the serial line on a unix socket with a log file,
``-daemonize -pidfile``; it is powered off (then killed, by its own PID
only) at the end.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import List, Optional

from lab_host import free_port, ssh_options
from lab_mirror import SUITE, Mirror
from lab_root import cache_dir, clean_env, debootstrap

QEMU = "qemu-system-x86_64"
# software emulation on this machine (lab.md); -cpu max emulates AMD-V, so kvm_amd is real in the guest
MACHINE = ["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1024"]
TOOLS = {QEMU: "qemu-system-x86", "qemu-img": "qemu-utils", "debootstrap": "debootstrap",
         "mkfs.ext4": "e2fsprogs", "sfdisk": "fdisk", "ssh": "openssh-client", "scp": "openssh-client",
         "ssh-keygen": "openssh-client"}

VARIANT = "minbase"
PACKAGES = ("linux-image-amd64", "grub-pc", "initramfs-tools", "systemd", "systemd-sysv", "libpam-systemd",
            "dbus", "udev", "kmod", "openssh-server", "python3", "iproute2", "procps", "ca-certificates",
            "sudo", "e2fsprogs", "zstd")
DISK_SIZE = 4 << 30
PART_START = 2048  # sectors: 1 MiB, the usual alignment, leaving room for GRUB's core image
HOSTNAME = "kvmlab"
BOOT_TIMEOUT = 300.0  # ~30 s alone; several times that when other lab hosts share the two CPUs

# GRUB's settings as an installer with a serial console would leave them: the
# menu and the kernel on ttyS0 too (so the serial log shows both), no "quiet"
# (the log shows the kernel's own lines), a one-second menu.
GRUB_DEFAULT = """GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
"""

FIRSTBOOT_MARK = "KVMLAB-GRUB-INSTALLED"
FIRSTBOOT_UNIT = f"""[Unit]
Description=lab image: install GRUB on this disk the installer's way, then power off
After=local-fs.target

[Service]
Type=oneshot
ExecStart=/bin/sh -ec 'grub-install /dev/vda; update-grub; systemctl disable kvmlab-firstboot.service; \
rm /etc/systemd/system/kvmlab-firstboot.service; echo {FIRSTBOOT_MARK} > /dev/ttyS0'
ExecStartPost=/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""

# Run in the fresh root (chroot). {uuid} is the root filesystem's UUID.
SETUP = """set -e
echo {hostname} > /etc/hostname
printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\t{hostname}\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts
echo 'UUID={uuid} / ext4 errors=remount-ro 0 1' > /etc/fstab
printf '[Match]\\nName=en*\\n\\n[Network]\\nDHCP=yes\\n' > /etc/systemd/network/80-kvmlab-dhcp.network
echo 'nameserver 10.0.2.3' > /etc/resolv.conf
systemctl enable systemd-networkd.service kvmlab-firstboot.service
sed -i 's/^MODULES=most$/MODULES=dep/' /etc/initramfs-tools/initramfs.conf
grep -q '^MODULES=dep$' /etc/initramfs-tools/initramfs.conf
echo 'grub-pc grub-pc/install_devices multiselect /dev/vda' | debconf-set-selections
apt-get clean
find /var/lib/apt/lists -maxdepth 1 -type f -delete
"""


def missing_tools() -> List[str]:
    return sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})


def _digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def image_key() -> str:
    return _digest({"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES), "setup": SETUP,
                    "grub": GRUB_DEFAULT, "firstboot": FIRSTBOOT_UNIT, "size": DISK_SIZE, "start": PART_START})


class VmImage:
    """A bootable disk (raw, or a qcow2 on top of one) and the ssh key its root accepts."""

    def __init__(self, disk: Path, key: Path):
        self.disk, self.key = disk, key

    @property
    def format(self) -> str:
        return "qcow2" if self.disk.suffix == ".qcow2" else "raw"


# ---- building and caching ----------------------------------------------------------------

def _cached(name: str, build, log) -> Path:
    """The cache directory ``name``, built by ``build(scratch)`` if missing.

    Built in a scratch directory and renamed into place under a lock: a run
    killed halfway leaves a scratch directory (removed by the next build),
    never a half image that a later run would boot."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    final = base / name
    if (final / "spec.json").exists():
        return final
    with open(base / ".vm-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "spec.json").exists():  # another run built it meanwhile
            return final
        for old in base.glob(f".build-{name}-*"):
            shutil.rmtree(old, ignore_errors=True)
        scratch = base / f".build-{name}-{os.getpid()}"
        scratch.mkdir()
        started = time.monotonic()
        spec = build(scratch)
        (scratch / "spec.json").write_text(json.dumps(
            {**spec, "built": time.strftime("%Y-%m-%d %H:%M:%S"),
             "seconds": round(time.monotonic() - started)}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.rename(scratch, final)
        log(f"built the lab VM image {final} in {time.monotonic() - started:.0f} s")
    return final


def base_image(mirror: Mirror, log) -> VmImage:
    """The cached Debian 12 disk image that boots through GRUB (built now if missing)."""
    final = _cached(f"vm-debian12-{image_key()}", lambda scratch: _build_base(scratch, mirror), log)
    return VmImage(final / "disk.raw", final / "id_ed25519")


def _build_base(work: Path, mirror: Mirror) -> dict:
    root, disk = work / "root", work / "disk.raw"
    debootstrap(root, mirror, work / "debootstrap.log", VARIANT, PACKAGES, timeout=1200)
    fs_uuid = str(uuid.uuid4())
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kvmprep-lab-vm", "-f",
                    str(work / "id_ed25519")], check=True, stdin=subprocess.DEVNULL)
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    shutil.copy(work / "id_ed25519.pub", root / "root/.ssh/authorized_keys")
    (root / "etc/default/grub").write_text(GRUB_DEFAULT)
    (root / "etc/apt/sources.list").write_text(mirror.sources_list())
    (root / "etc/systemd/system/kvmlab-firstboot.service").write_text(FIRSTBOOT_UNIT)
    subprocess.run(["chroot", str(root), "/bin/sh", "-c", SETUP.format(hostname=HOSTNAME, uuid=fs_uuid)],
                   check=True, capture_output=True, env=clean_env())
    _make_disk(root, disk, fs_uuid)
    kernel, initrd = sorted(root.glob("boot/vmlinuz-*"))[-1], sorted(root.glob("boot/initrd.img-*"))[-1]
    shutil.copy(kernel, work / "vmlinuz")  # the first boot's, kept for a post-mortem; the root goes
    shutil.copy(initrd, work / "initrd.img")
    shutil.rmtree(root)
    _install_boot_loader(work, disk)
    return {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES), "mirror": mirror.archive,
            "kernel": kernel.name, "fs_uuid": fs_uuid}


def _make_disk(root: Path, disk: Path, fs_uuid: str) -> None:
    """A sparse raw disk: one bootable Linux partition from 1 MiB, holding ``root`` as ext4."""
    with open(disk, "wb") as fh:
        fh.truncate(DISK_SIZE)
    subprocess.run(["sfdisk", "-q", str(disk)], input=f"label: dos\nstart={PART_START}, type=83, bootable\n",
                   text=True, check=True, capture_output=True)
    fs_kib = (DISK_SIZE - PART_START * 512) // 1024
    subprocess.run(["mkfs.ext4", "-q", "-F", "-U", fs_uuid, "-L", "kvmlab-root", "-E",
                    f"offset={PART_START * 512}", "-d", str(root), str(disk), f"{fs_kib}k"],
                   check=True, capture_output=True, env=clean_env())


def _install_boot_loader(work: Path, disk: Path) -> None:
    """The first boot, straight into the kernel: grub-install + update-grub inside, then power off."""
    log = work / "firstboot.console.log"
    argv = [QEMU, *MACHINE, "-display", "none", "-no-reboot", "-monitor", "none",
            "-drive", f"file={disk},format=raw,if=virtio", "-nic", "user,model=virtio-net-pci",
            "-kernel", str(work / "vmlinuz"), "-initrd", str(work / "initrd.img"),
            "-append", "root=/dev/vda1 rw console=ttyS0,115200n8",
            "-chardev", f"file,id=s0,path={log}", "-serial", "chardev:s0"]
    with open(work / "firstboot.qemu.log", "w") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(BOOT_TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child, by its PID
            proc.wait()
            raise RuntimeError(f"the image's first boot did not power off in {BOOT_TIMEOUT * 2:.0f} s:\n"
                               + _tail(log))
    if FIRSTBOOT_MARK not in log.read_text(errors="replace"):
        raise RuntimeError(f"grub-install/update-grub did not finish in the first boot ({proc.returncode}):\n"
                           + _tail(log))


def derived_image(base: VmImage, name: str, script: str, workdir: Path, log) -> VmImage:
    """``base`` after ``script`` ran in it as root over ssh and it powered off:
    a qcow2 over the base image, cached by name and script. A test's starting
    state that needs a reboot to show (a kernel argument) then costs no boot."""
    digest = _digest({"base": str(base.disk), "script": script})

    def build(scratch: Path) -> dict:
        disk = scratch / "disk.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base.disk), "-F", base.format,
                        str(disk)], check=True, capture_output=True)
        vm = QemuVM(VmImage(disk, base.key), workdir, f"derive-{name}", overlay=False)
        try:
            vm.boot()
            vm.ssh("sh -es", input=script, check=True, timeout=600)
        finally:
            vm.poweroff()
        return {"base": str(base.disk), "script": script}

    final = _cached(f"vm-{name}-{digest}", build, log)
    return VmImage(final / "disk.qcow2", base.key)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


# ---- a running VM ------------------------------------------------------------------------

_LIVE: "set[QemuVM]" = set()  # powered off at exit too, should a finalizer not run


class QemuVM:
    """One QEMU process on a copy-on-write overlay of an image, reached over ssh on 127.0.0.1."""

    def __init__(self, image: VmImage, workdir: Path, name: str, overlay: bool = True,
                 hardware: Optional[List[str]] = None):
        self.image, self.workdir, self.name = image, workdir, name
        self.hardware = list(hardware or [])  # more QEMU options: e.g. -machine q35 -device amd-iommu
        self.key = image.key
        self.port = free_port()
        self.disk = workdir / f"{name}.qcow2" if overlay else image.disk
        self.overlay = overlay
        self.serial_log = workdir / f"{name}.serial.log"
        self.qemu_log = workdir / f"{name}.qemu.log"
        # unix socket paths are limited to 107 bytes: pytest's tmp paths can be longer
        self.sockdir = Path(tempfile.mkdtemp(prefix="kvmlab-"))
        self.pidfile = self.sockdir / "qemu.pid"
        self.pid: Optional[int] = None
        self.boot_seconds: List[float] = []

    # ---- boot, reboot, power off ----------------------------------------------------------

    def argv(self) -> List[str]:
        return [QEMU, "-name", self.name, *MACHINE, *self.hardware, "-display", "none",
                # cache=unsafe: the guest's flushes stay in this machine's page cache (dpkg syncs every
                # file it unpacks); the disk is a throwaway overlay or an image built in a scratch dir
                "-drive", f"file={self.disk},format=qcow2,if=virtio,cache=unsafe",
                "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{self.port}-:22",
                "-chardev", f"socket,id=s0,path={self.sockdir}/serial.sock,server=on,wait=off,logfile={self.serial_log}",
                "-serial", "chardev:s0",
                "-monitor", f"unix:{self.sockdir}/monitor.sock,server=on,wait=off",
                "-daemonize", "-pidfile", str(self.pidfile)]

    def boot(self) -> None:
        started = time.monotonic()
        if self.overlay:
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image.disk),
                            "-F", self.image.format, str(self.disk)], check=True, capture_output=True)
        for attempt in range(3):
            with open(self.qemu_log, "w") as err:
                # -daemonize: this returns once QEMU runs; its own session keeps a Ctrl-C meant for
                # pytest away from it (the finalizer powers it off in order instead)
                r = subprocess.run(self.argv(), stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                   timeout=60, start_new_session=True)
            if r.returncode == 0:
                break
            if "hostfwd" not in _tail(self.qemu_log) or attempt == 2:
                raise RuntimeError(f"{QEMU} did not start ({r.returncode}):\n{_tail(self.qemu_log)}")
            self.port = free_port()  # another process took the free port meanwhile
        self.pid = int(self.pidfile.read_text().split()[0])
        _LIVE.add(self)
        self.wait_ssh()
        self.boot_seconds.append(time.monotonic() - started)

    def wait_ssh(self, not_boot: Optional[str] = None, timeout: float = BOOT_TIMEOUT) -> str:
        """Wait until sshd answers (in a boot other than ``not_boot``); the boot id."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.running:
                raise RuntimeError(f"QEMU exited while waiting for ssh:\n{_tail(self.qemu_log)}\n"
                                   + self.serial_tail())
            r = self.ssh("cat /proc/sys/kernel/random/boot_id", timeout=20)
            boot = r.stdout.strip()
            if r.returncode == 0 and boot and boot != not_boot:
                return boot
            time.sleep(1)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for ssh on port {self.port}:\n"
                           + self.serial_tail())

    def reboot(self) -> float:
        """``systemctl reboot`` and back on ssh in the new boot; the seconds it took."""
        started = time.monotonic()
        before = self.boot_id()
        self.ssh("systemctl reboot", timeout=30)  # the connection may drop before it answers
        self.wait_ssh(not_boot=before)
        took = time.monotonic() - started
        self.boot_seconds.append(took)
        return took

    def boot_id(self) -> str:
        return self.ssh("cat /proc/sys/kernel/random/boot_id", check=True).stdout.strip()

    @property
    def running(self) -> bool:
        """QEMU, this VM's own process (its PID and its own pidfile in its command line), still runs."""
        if self.pid is None:
            return False
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as fh:
                cmdline = fh.read().split(b"\0")
            with open(f"/proc/{self.pid}/stat") as fh:
                zombie = fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return False
        return not zombie and str(self.pidfile).encode() in cmdline

    def _wait_gone(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.running:
                return True
            time.sleep(0.2)
        return not self.running

    def poweroff(self, timeout: float = 60) -> None:
        """``systemctl poweroff`` (QEMU exits with the guest); else the monitor's quit, SIGTERM,
        SIGKILL, to this VM's own PID only. The overlay is then removed (the logs stay)."""
        try:
            if self.running:
                self.ssh("systemctl poweroff", timeout=20)
                if not self._wait_gone(timeout):
                    self.monitor("quit")
                    self._wait_gone(10)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if self.running:
                    os.kill(self.pid, sig)
                    self._wait_gone(10)
            if self.running:
                raise RuntimeError(f"QEMU (pid {self.pid}) did not exit")
        finally:
            if not self.running:
                _LIVE.discard(self)
                shutil.rmtree(self.sockdir, ignore_errors=True)
                if self.overlay and not os.environ.get("KVMPREP_LAB_KEEP"):
                    self.disk.unlink(missing_ok=True)

    # ---- the serial line and the monitor --------------------------------------------------

    def serial_text(self) -> str:
        try:
            return self.serial_log.read_text(errors="replace")
        except OSError:
            return ""

    def serial_tail(self, lines: int = 40) -> str:
        return "serial console, last lines:\n" + "\n".join(self.serial_text().splitlines()[-lines:])

    def monitor(self, command: str, timeout: float = 10) -> str:
        """One command on QEMU's human monitor (diagnostics: info registers, sendkey...)."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(timeout)
                s.connect(str(self.sockdir / "monitor.sock"))
                _read_until(s, b"(qemu) ")
                s.sendall(command.encode() + b"\n")
                return _read_until(s, b"(qemu) ").decode(errors="replace")
        except OSError as exc:
            return f"(monitor: {exc})"

    # ---- commands -----------------------------------------------------------------------

    def ssh_argv(self, command: str, tty: bool = False) -> List[str]:
        return ["ssh", *ssh_options(self.key, self.port), *(["-tt"] if tty else ["-T"]), "root@127.0.0.1",
                command]

    def ssh(self, command: str, timeout: float = 120, check: bool = False,
            input: Optional[str] = None) -> subprocess.CompletedProcess:
        """``command`` as root through a real ssh login."""
        try:
            r = subprocess.run(self.ssh_argv(command), capture_output=True, text=True, timeout=timeout,
                               input=input, stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            r = subprocess.CompletedProcess(exc.cmd, 255, _text(exc.stdout), _text(exc.stderr) + "\n(timed out)")
        if check and r.returncode:
            raise AssertionError(f"ssh {self.name}: {command!r} exited {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}\n{self.serial_tail(15)}")
        return r

    def scp_to(self, local: Path, remote: str) -> None:
        """Copy a file in as an admin would: scp to the VM."""
        argv = ["scp", "-q", *[("-P" if o == "-p" else o) for o in ssh_options(self.key, self.port)],
                str(local), f"root@127.0.0.1:{remote}"]
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def _text(data) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def _read_until(s: socket.socket, mark: bytes) -> bytes:
    buf = b""
    while not buf.endswith(mark):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


@atexit.register
def _power_off_leftovers() -> None:
    for vm in list(_LIVE):
        try:
            vm.poweroff(timeout=20)
        except Exception:
            pass
