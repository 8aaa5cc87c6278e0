"""A booted Debian 12 lab host: systemd-nspawn on a throwaway root, reached over ssh.

How, and why (measured facts: /work/shared/reference/lab.md, issue 9):

- ``systemd-nspawn --boot --register=no --keep-unit``: this machine's PID 1
  is not systemd, so nspawn must neither register with machined nor ask for
  a scope; ``machinectl`` and ``systemd-run --machine`` do not work. Inside,
  systemd is PID 1 (``systemctl is-system-running`` reaches running in about
  half a second) and ``nsenter -t PID -a`` runs commands in the container.
- The container shares this machine's network: sshd inside listens on a free
  port of 127.0.0.1, and apt inside reaches the mirror directly.
- ssh logins are real logind sessions (libpam-systemd), which is what the
  SSH-drop scenario cuts with ``loginctl terminate-session``.
- Downloaded .deb files are shared by the hosts of one test session: their
  /var/cache/apt/archives is one directory (bind-mounted). apt still resolves
  against the mirror's current, signed index and checks every file's hash;
  only the second download of the same ~130 files is saved (the scenarios
  install the same set on several hosts). One directory per session, never
  across sessions: apt-get fails at once when another holds that directory's
  lock, and the tests of one session run one after the other.
- Power off with ``systemctl poweroff`` inside; if that fails, SIGTERM then
  SIGKILL to the nspawn process and the container's init, by PID. Nothing
  else on the machine is touched, and ssh clients the host started are
  killed by their own PIDs.
"""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import List, Optional

from lab_mirror import Mirror
from lab_root import ADMIN

BOOT_TIMEOUT = 60.0
_LIVE: "set[NspawnHost]" = set()  # powered off at exit too, should a finalizer not run


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ssh_options(key: Path, port: int) -> List[str]:
    """No user or system ssh_config (-F /dev/null), this run's key only, and no
    known_hosts: every lab host is new, and all of them are on 127.0.0.1."""
    return ["-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10", "-o", "SendEnv=LANG", "-p", str(port)]


class NspawnHost:
    def __init__(self, root: Path, workdir: Path, key: Path, mirror: Mirror, name: str,
                 apt_archives: Optional[Path] = None):
        self.root, self.workdir, self.key, self.mirror, self.name = root, workdir, key, mirror, name
        self.apt_archives = apt_archives
        self.port = free_port()
        self.console_log = workdir / f"{name}.console.log"
        self.proc: Optional[subprocess.Popen] = None
        self.init_pid: Optional[int] = None
        self.clients: List[subprocess.Popen] = []  # ssh clients started with popen_ssh
        self.boot_seconds = 0.0
        self.last_state = ""

    # ---- before boot: files a provisioning system would drop in -----------------

    def prepare(self) -> None:
        """sshd on this host's port of 127.0.0.1, this run's key for root and the
        admin, and apt sources from this machine's mirror."""
        r = self.root
        (r / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
        (r / "etc/ssh/sshd_config.d/kvmprep-lab.conf").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nPasswordAuthentication no\n")
        (r / "etc/apt/sources.list").write_text(self.mirror.sources_list())
        pub = Path(f"{self.key}.pub").read_text()
        for user, home in (("root", "root"), (ADMIN, f"home/{ADMIN}")):
            uid, gid = _ids(r, user)
            ssh_dir = r / home / ".ssh"
            ssh_dir.mkdir(mode=0o700, exist_ok=True)
            (ssh_dir / "authorized_keys").write_text(pub)
            for p in (ssh_dir, ssh_dir / "authorized_keys"):
                os.chown(p, uid, gid)

    # ---- boot and power off --------------------------------------------------------

    def boot(self) -> None:
        started = time.monotonic()
        argv = ["systemd-nspawn", "--boot", f"--directory={self.root}", f"--machine={self.name}",
                "--register=no", "--keep-unit", "--console=read-only",
                "--bind=/dev/kvm", "--bind=/dev/net/tun"]
        argv = [a for a in argv if not a.startswith("--bind=") or os.path.exists(a.split("=", 1)[1])]
        if self.apt_archives is not None:
            (self.apt_archives / "partial").mkdir(parents=True, exist_ok=True)
            argv.append(f"--bind={self.apt_archives}:/var/cache/apt/archives")
        with open(self.console_log, "ab") as log:
            # its own session: a Ctrl-C meant for pytest does not reach the container;
            # the finalizer powers it off in order instead
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        _LIVE.add(self)
        self.init_pid = self._wait(self._find_init, "the container's init process")
        state = self._wait(self._system_state, "systemctl is-system-running to say running or degraded")
        self._wait(lambda: self.ssh("true", timeout=15).returncode == 0 or None, f"sshd on port {self.port}")
        self.boot_seconds = time.monotonic() - started
        if state == "degraded":
            failed = self.nsenter("systemctl", "--failed", "--no-legend").stdout
            with open(self.console_log, "a") as log:
                log.write(f"\n[lab] booted degraded; failed units:\n{failed}\n")

    def _wait(self, probe, what: str, timeout: float = BOOT_TIMEOUT):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited ({self.proc.returncode}) while waiting for {what}:\n"
                                   + self.console_tail())
            got = probe()
            if got:
                return got
            time.sleep(0.1)
        jobs = self.nsenter("systemctl", "list-jobs", "--no-pager").stdout if self.init_pid else ""
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what} (last state: {self.last_state!r}; "
                           f"jobs: {jobs.strip()!r}):\n{self.console_tail()}")

    def _find_init(self) -> Optional[int]:
        """nspawn's child once it is the container's systemd: right after the
        start, nspawn's child is still its own helper (which execs or exits),
        and a PID taken then never answers nsenter."""
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        for pid in out:
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    if fh.read().strip() == "systemd":
                        return int(pid)
            except OSError:
                continue
        return None

    def _system_state(self) -> Optional[str]:
        r = self.nsenter("systemctl", "is-system-running")
        self.last_state = (r.stdout + r.stderr).strip()
        return self.last_state if self.last_state in ("running", "degraded") else None

    def console_tail(self, lines: int = 30) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def poweroff(self, timeout: float = 30) -> None:
        """Power off in order; else SIGTERM, then SIGKILL, this host's own processes."""
        for client in self.clients:
            if client.poll() is None:
                client.kill()
                client.wait(5)
        self.clients = []
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None and self.init_pid:
                self.nsenter("systemctl", "poweroff", timeout=10)
            _wait_exit(self.proc, timeout)
            if self.proc.poll() is None:
                self.proc.terminate()  # nspawn asks the container to halt
                _wait_exit(self.proc, 10)
            if self.proc.poll() is None:
                if self.init_pid and _parent(self.init_pid) == self.proc.pid:
                    _kill(self.init_pid)  # the container's PID 1: its whole PID namespace dies with it
                self.proc.kill()
                self.proc.wait(10)
        finally:
            _LIVE.discard(self)

    # ---- commands ---------------------------------------------------------------

    def nsenter(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """A command in all the container's namespaces (setup and diagnostics, not the test's subject)."""
        return subprocess.run(["nsenter", "-t", str(self.init_pid), "-a", *argv], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout,
                              env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})

    def ssh_argv(self, command: str, user: str = "root", tty: bool = False) -> List[str]:
        return ["ssh", *ssh_options(self.key, self.port), *(["-tt"] if tty else ["-T"]),
                f"{user}@127.0.0.1", command]

    def ssh(self, command: str, user: str = "root", timeout: float = 120, check: bool = False,
            input: Optional[str] = None) -> subprocess.CompletedProcess:
        """``command`` through a real ssh login (a logind session), as ``user``."""
        r = subprocess.run(self.ssh_argv(command, user), capture_output=True, text=True, timeout=timeout,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode:
            raise AssertionError(f"ssh {user}@{self.name}: {command!r} exited {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def popen_ssh(self, command: str, user: str = "root", stdout=None) -> subprocess.Popen:
        """An ssh client left running (killed by PID at power-off if still there)."""
        proc = subprocess.Popen(self.ssh_argv(command, user), stdin=subprocess.DEVNULL,
                                stdout=stdout or subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.clients.append(proc)
        return proc

    def scp_to(self, local: Path, remote: str, user: str = "root") -> None:
        """Copy a file in as a user would: scp (SFTP) to the host."""
        argv = ["scp", "-q", *[("-P" if o == "-p" else o) for o in ssh_options(self.key, self.port)],
                str(local), f"{user}@127.0.0.1:{remote}"]
        subprocess.run(argv, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)


def _ids(root: Path, user: str):
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise KeyError(f"{user} is not in {root}/etc/passwd")


def _wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


def _parent(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@atexit.register
def _power_off_leftovers() -> None:
    for host in list(_LIVE):
        try:
            host.poweroff(timeout=10)
        except Exception:
            pass


def quote(*argv: str) -> str:
    return " ".join(shlex.quote(a) for a in argv)
