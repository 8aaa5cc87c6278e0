"""The product users get, for tests: a wheel built from this tree and
installed non-editable (``pip install .``) into a fresh virtual environment
outside the source tree.

Tests that drive the ``kvmprep`` command (tmux walks, done-when runs, the
bundle) use this install, not the editable one the suite runs from: a module
or data file missing from the wheel then fails them, as it would fail a user.

kvmprep's own dependencies are not downloaded again: the new environment
reaches the test environment's site-packages through a ``.pth`` line, which
comes after its own site-packages (and whose .pth files, the editable
install's among them, are not processed), so ``app``, ``checks``... come
from the wheel. ``Installed.check_isolation`` proves it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "screens", "checks", "remediations")
IGNORED_DIRS = {"__pycache__", ".git", ".venv", "build", "dist", ".pytest_cache"}


@dataclass
class Installed:
    wheel: Path
    venv: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def script(self) -> str:
        return str(self.venv / "bin" / "kvmprep")

    def run(self, *args: str, cwd: Path | str, env: dict | None = None, timeout: float = 300,
            **kw) -> subprocess.CompletedProcess:
        """The installed ``kvmprep`` script, as an admin types it."""
        return subprocess.run([self.script, *args], capture_output=True, text=True, cwd=cwd,
                              env=env, timeout=timeout, stdin=subprocess.DEVNULL, **kw)

    def wheel_names(self) -> set[str]:
        with zipfile.ZipFile(self.wheel) as zf:
            return {n for n in zf.namelist() if not n.endswith("/")}


def shipped_files(top: Path = TOP) -> set[str]:
    """What the wheel must carry: every file of the four packages in the tree,
    bytecode caches aside."""
    out = set()
    for pkg in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(top / pkg):
            dirnames[:] = [d for d in dirnames if d not in IGNORED_DIRS]
            for name in filenames:
                if not name.endswith((".pyc", ".pyo")):
                    out.add(Path(dirpath, name).relative_to(top).as_posix())
    return out


def _copy_tree(dest: Path) -> None:
    """The tree as a clean clone would have it (no venv, caches or build
    output), so that building the wheel leaves nothing in the source tree."""
    def ignore(_dir, names):
        return [n for n in names if n in IGNORED_DIRS or n.endswith(".egg-info")]

    shutil.copytree(TOP, dest, ignore=ignore)


def build_and_install(work: Path, python: str = sys.executable) -> Installed:
    src, wheels, venv = work / "src", work / "wheels", work / "venv"
    _copy_tree(src)
    quiet = ["--quiet", "--disable-pip-version-check"]
    subprocess.run([python, "-m", "pip", "wheel", *quiet, "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(src)], check=True, cwd=work, capture_output=True)
    (wheel,) = wheels.glob("kvmprep-*.whl")
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, cwd=work)
    subprocess.run([python, "-m", "pip", *quiet, "--python", str(venv / "bin" / "python"), "install",
                    "--no-deps", "--no-index", str(wheel)], check=True, cwd=work, capture_output=True)
    target = subprocess.run([str(venv / "bin" / "python"), "-c",
                             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            check=True, capture_output=True, text=True).stdout.strip()
    Path(target, "zz-kvmprep-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return Installed(wheel=wheel, venv=venv)


def check_isolation(inst: Installed, cwd: Path) -> None:
    """Raise unless every kvmprep package imports from the new venv."""
    code = ("import app, screens, checks, remediations, sys\n"
            "for m in (app, screens, checks, remediations):\n"
            "    assert m.__file__.startswith(sys.prefix), (m.__name__, m.__file__, sys.prefix)\n")
    r = subprocess.run([inst.python, "-c", code], capture_output=True, text=True, cwd=cwd)
    if r.returncode:
        raise RuntimeError("the installed kvmprep is not isolated from the source tree:\n" + r.stderr)


def find_python(version: str) -> str | None:
    """An interpreter ``pythonX.Y``: on PATH, or under pyenv (this machine
    image has 3.9 to 3.13 there), or None."""
    name = f"python{version}"
    found = shutil.which(name)
    if found:
        probe = subprocess.run([found, "-c", "print(1)"], capture_output=True, text=True)
        if probe.returncode == 0:
            return found  # pyenv shims exist for versions that are not selected, and fail
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    for root in filter(None, roots):
        for cand in sorted(Path(root, "versions").glob(f"{version}.*/bin/{name}"), reverse=True):
            return str(cand)
    return None
