"""Running the real ansible-playbook in tests (tests/test_ansible.py, tests/lab/test_lab_fleet.py)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PLAYBOOK = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which("ansible-playbook")


def recap(out: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of ansible-playbook's output: host -> {ok, changed, failed, ...}."""
    rows = {}
    for m in re.finditer(r"^(\S+)\s+:\s+(.*)$", out.split("PLAY RECAP")[-1], re.M):
        rows[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return rows


def playbook(project: Path, inventory: str, *args: str, timeout: float = 1800):
    """``ansible-playbook -i INVENTORY site.yml ARGS`` in the project: (process, recap).
    A UTF-8 locale (Ansible refuses others), no colours, temp files in the project,
    and no SSH_CONNECTION (kvmprep would detach its apply)."""
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_LOCAL_TEMP": str(project / ".ansible-tmp"),
           "ANSIBLE_REMOTE_TEMP": str(project / ".ansible-tmp"), "SSH_CONNECTION": ""}
    p = subprocess.run([PLAYBOOK, "-i", inventory, "site.yml", *args], cwd=project, capture_output=True,
                       text=True, env=env, stdin=subprocess.DEVNULL, timeout=timeout)
    return p, recap(p.stdout)


def tree_digest(root: Path, tops=("",)) -> str:
    """The files, links and directories under ``tops`` (paths in ``root``; a file
    alone, or a directory and all below it) hashed: names, link targets, contents.
    Equal before and after a run that must change nothing."""
    h = hashlib.sha256()
    for top in tops:
        base = root / top
        if base.is_file():
            paths = [base]
        else:
            paths = []
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames.sort()
                paths += [Path(dirpath) / n for n in sorted(filenames + dirnames)]
        for p in paths:
            h.update(str(p.relative_to(root)).encode())
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()
