"""How kvmprep starts itself again (the detached apply, the wizard's undo).

The same interpreter and the same code that is running now: the installed
package, or the ``kvmprep.pyz`` bundle it was started from. ``-I`` keeps the
working directory (an ``app/`` folder in an admin's home, say) and the
PYTHON* variables out of a process that runs as root.
"""

from __future__ import annotations

import sys


BUNDLE: str | None = None  # set by the bundle's __main__ (app/bundle_main.py)


def bundle_path() -> str | None:
    """The kvmprep.pyz archive this code runs from, or None when installed.
    From the bundle, the code runs from a cached copy of the archive's tree
    (BUNDLE says which archive) or from the zip itself (its loader says)."""
    import remediations

    return BUNDLE or getattr(getattr(remediations, "__loader__", None), "archive", None)


def kvmprep_argv(*args: str) -> list[str]:
    archive = bundle_path()
    if archive:
        return [sys.executable, "-I", archive, *args]
    return [sys.executable, "-I", "-m", "app", *args]


# What a kvmprep started again in a systemd unit keeps of the environment:
# the interpreter's, and what the planners read (the apply plans again and must
# get the same plan, or it refuses its own as stale): SUDO_USER
# (checks/accounts.py), SSH_CONNECTION (catalog/services.py, catalog/network.py),
# KUBERNETES_SERVICE_HOST (checks/virt.py).
UNIT_ENV = ("PATH", "PYTHONPATH", "PYTHONUNBUFFERED", "HOME", "LANG", "XDG_CACHE_HOME", "KVMPREP_BUNDLE_CACHE",
            "KVMPREP_DEBUG", "SUDO_USER", "SSH_CONNECTION", "KUBERNETES_SERVICE_HOST")


def systemd_run_usable(host) -> bool:
    """A transient unit can be started: the live system, booted with systemd."""
    import shutil

    from checks import units

    return bool(host.live and units.systemd_running(host) and shutil.which("systemd-run"))


def in_systemd_unit(argv: list[str], unit: str, out_path: str, env: dict, wait: bool = False) -> list[str]:
    """``argv`` as the transient service ``unit`` (``systemd-run``): outside the
    login session, so that the session ending (``loginctl terminate-session``,
    ``KillUserProcesses=yes``, which kill every process of its scope, a new
    process session or not) does not stop it. Its output is appended to
    ``out_path``. With ``wait`` the systemd-run client stays until the unit
    ends and exits with its status: a child process to poll, while the work
    is the unit's (killing the client leaves the unit running; tests/lab)."""
    import os

    return ["systemd-run", "--quiet", "--collect", *(["--wait"] if wait else []), f"--unit={unit}",
            f"--property=StandardOutput=append:{out_path}", f"--property=StandardError=append:{out_path}",
            f"--working-directory={os.getcwd()}",
            *[f"--setenv={k}={v}" for k, v in env.items() if k in UNIT_ENV], *argv]
