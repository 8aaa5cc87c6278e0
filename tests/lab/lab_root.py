"""A cached Debian 12 root for lab hosts, built once with debootstrap.

``debootstrap --variant=minbase`` with what a booted, ssh-reachable server
needs (systemd as init, logind sessions through libpam-systemd, sshd, sudo,
python3 for kvmprep.pyz) takes about 50 s and 350 MB, so it is built once
and kept under ``$KVMPREP_LAB_CACHE`` (default /var/tmp/kvmprep-lab), in a
directory named after a hash of everything that shapes it: the suite, the
variant, the package list and the setup script below. Change any of them
and a new root is built; the old one stays until removed by hand.

Tests never boot the cached root itself: each gets a throwaway copy
(``cp -a --reflink=auto``, about 1 s), so an apply in one test cannot leak
into the next and the cache stays as debootstrap left it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from lab_mirror import SUITE, Mirror

VARIANT = "minbase"
PACKAGES = ("systemd", "systemd-sysv", "libpam-systemd", "dbus", "openssh-server", "kmod", "udev",
            "python3", "python3-venv", "iproute2", "procps", "ca-certificates", "sudo")
ADMIN = "admin"
HOSTNAME = "kvmlab"

# Run once in the fresh root (chroot). What a Debian installer leaves that
# debootstrap does not: a hostname with its /etc/hosts line and an admin in
# group sudo (without a password: the tests log in with a key). The apt lists
# are dropped so that every lab host fetches current ones (kvmprep's apply
# runs apt-get update when there are none), not lists as old as the cache.
SETUP = f"""set -e
echo {HOSTNAME} > /etc/hostname
printf '127.0.0.1\\tlocalhost\\n127.0.1.1\\t{HOSTNAME}\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts
useradd --create-home --shell /bin/bash --groups sudo {ADMIN}
echo '{ADMIN} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/{ADMIN}
chmod 0440 /etc/sudoers.d/{ADMIN}
apt-get clean
find /var/lib/apt/lists -maxdepth 1 -type f -delete
"""


def cache_dir() -> Path:
    return Path(os.environ.get("KVMPREP_LAB_CACHE") or "/var/tmp/kvmprep-lab")


def key() -> str:
    spec = {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES), "setup": SETUP}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def cached_root(mirror: Mirror, log) -> Path:
    """The cached root for this package list, built now if missing.

    Built in a scratch directory and renamed into place, under a lock: a run
    killed halfway leaves only a scratch directory (removed by the next build),
    never a half root that a later run would boot."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    final = base / f"debian12-{key()}"
    if (final / "root/etc/os-release").exists():
        return final / "root"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "root/etc/os-release").exists():  # another run built it meanwhile
            return final / "root"
        for old in base.glob(".build-*"):  # a build killed halfway
            _unmount_under(old)
            shutil.rmtree(old, ignore_errors=True)
        scratch = base / f".build-{os.getpid()}"
        started = time.monotonic()
        debootstrap(scratch / "root", mirror, scratch / "debootstrap.log")
        subprocess.run(["chroot", str(scratch / "root"), "/bin/sh", "-c", SETUP], check=True,
                       capture_output=True, env=clean_env())
        (scratch / "spec.json").write_text(json.dumps(
            {"suite": SUITE, "variant": VARIANT, "packages": sorted(PACKAGES), "mirror": mirror.archive,
             "built": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.rename(scratch, final)
        log(f"built the lab root {final} in {time.monotonic() - started:.0f} s")
    return final / "root"


def _unmount_under(path: Path) -> None:
    """debootstrap mounts /proc and /sys in the new root while it works; a
    killed one leaves them there: unmount them (deepest first) before removing
    the directory."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def clean_env() -> dict:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}


def debootstrap(root: Path, mirror: Mirror, logfile: Path, variant: str = VARIANT, packages=PACKAGES,
                timeout: float = 900) -> None:
    """``debootstrap --variant --include`` of Debian 12 into ``root``; its output in ``logfile``."""
    root.parent.mkdir(parents=True, exist_ok=True)
    argv = ["debootstrap", f"--variant={variant}", f"--include={','.join(packages)}", SUITE, str(root),
            mirror.archive]
    with open(logfile, "w") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=clean_env(), timeout=timeout)
    if proc.returncode:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"debootstrap failed ({proc.returncode}); the end of {logfile}:\n{tail}")


def copy_root(cached: Path, dest: Path) -> Path:
    """A throwaway copy of the cached root (reflinks where the filesystem has them)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(cached), str(dest)], check=True)
    return dest

