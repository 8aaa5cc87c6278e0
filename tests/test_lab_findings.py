"""Defects the lab (tests/lab, issue 9) found on a real booted Debian, pinned
here without it:

1. ``sudo kvmprep apply`` over SSH ran in the foreground: sudo resets the
   environment, SSH_CONNECTION was gone, so the apply did not detach and a
   dropped connection killed it while dpkg unpacked. kvmprep now takes
   SSH_CONNECTION from the process it was started from (app/session.py), and
   the detached apply's systemd unit keeps what the planners read (the admin
   behind sudo, the SSH connection), or it would plan differently and refuse
   its own plan as stale.
2. add-user-to-groups on a fresh server added the admin to kvm only: group
   libvirt comes with libvirt-daemon-system, installed by the same plan. The
   fix now acts now and is planned again once the packages are in (apply's
   second round); a plan file that says so is not "stale" because its ids
   come back in another order.
3. The wizard's apply log on the console (TERM=linux) showed systemctl's
   "Created symlink a \u2192 b" arrow: the commands' glyphs are ASCII there now.
4. The wizard's apply ran in the SSH session's scope: ``loginctl
   terminate-session`` killed it mid-dpkg. It runs in a systemd unit now
   (only on a booted systemd host: tests/lab/test_lab_ssh_drop.py).
5. ``kvmprep apply --attach`` stopped when the apply released the journal's
   lock between its two rounds, before the second round and the summary: an
   apply now holds a lock of its own (apply.running) for its whole life.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from checks.facts import Facts
from checks.host import Host
from pkgroots import debian_root
from remediations.plan import Plan, build_plan, compare, requested

TOP = Path(__file__).resolve().parent.parent
SSH = "192.0.2.9 50022 192.0.2.2 22"

PROBE = ("import os; from app.session import inherit_ssh_connection; inherit_ssh_connection(); "
         "print(os.environ.get('SSH_CONNECTION', 'none'))")


def _under_a_parent_with_ssh(child_env: str) -> str:
    """The probe run by a shell whose environment has SSH_CONNECTION, with
    ``child_env`` (env(1) arguments) changing the probe's own: what sudo does."""
    shell = f"env -u SSH_CONNECTION {child_env} {sys.executable} -c \"{PROBE}\"; true"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SSH_CONNECTION": SSH,
           "PYTHONPATH": str(TOP)}
    r = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, env=env, cwd=TOP, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_under_sudo_the_ssh_connection_comes_from_the_parent_process():
    assert _under_a_parent_with_ssh("SUDO_USER=alice") == SSH


def test_without_sudo_a_removed_ssh_connection_stays_removed():
    # the test suite's own "not over SSH" runs remove it on purpose
    assert _under_a_parent_with_ssh("") == "none"


def test_the_detached_unit_keeps_what_planners_read():
    from remediations.relaunch import UNIT_ENV

    assert {"SUDO_USER", "SSH_CONNECTION", "PATH", "HOME"} <= set(UNIT_ENV)


# ------------------------------------------------------- add-user-to-groups, second round

PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
GROUP = "root:x:0:\nkvm:x:990:\nalice:x:1000:\n"


def _fresh_server(path: Path, deb_repo: Path) -> Host:
    debian_root(path, deb_repo)
    (path / "etc/passwd").write_text(PASSWD)
    (path / "etc/group").write_text(GROUP)
    return Host(path, env={"SUDO_USER": "alice"}, euid=0, live=False)


def test_add_user_to_groups_acts_now_and_again_after_the_packages(tmp_path, deb_repo):
    host = _fresh_server(tmp_path / "root", deb_repo)
    plan = build_plan(host, Facts(host), None, ["install-virtualization-packages", "add-user-to-groups"])
    steps = {s.remediation: s for s in plan.steps}
    [action] = steps["add-user-to-groups"].actions
    assert action.groups == ["kvm"]  # libvirt does not exist yet
    assert "add-user-to-groups" in plan.replan

    # without a package install in the plan there is no second round to wait for
    alone = build_plan(host, Facts(host), None, ["add-user-to-groups"])
    assert alone.replan == [] and [a.groups for s in alone.steps for a in s.actions] == [["kvm"]]


def test_a_plan_file_with_a_step_that_is_also_planned_again_is_not_stale(tmp_path, deb_repo):
    host = _fresh_server(tmp_path / "root", deb_repo)
    made = build_plan(host, Facts(host), None, ["install-virtualization-packages", "enable-libvirt",
                                                "add-user-to-groups"])
    assert made.replan == ["enable-libvirt", "add-user-to-groups"], made.replan
    data = json.loads(json.dumps(made.to_dict()))
    ids, _root, _profile = requested(data)  # the steps' ids first, then replan's: another order
    again = build_plan(host, Facts(host), None, ids)
    assert again.replan != made.replan
    compare(data, again, "plan.json")  # no StalePlan
    assert isinstance(again, Plan)


# ------------------------------------------------------------------ the console's apply log

def test_the_console_apply_log_is_ascii():
    from screens.apply import ascii_line

    line = "Created symlink /etc/systemd/system/multi-user.target.wants/chrony.service \u2192 /lib/x."
    assert ascii_line(line) == "Created symlink /etc/systemd/system/multi-user.target.wants/chrony.service -> /lib/x."
    assert ascii_line("\u201cna\u00efve\u201d \u2026") == '"na?ve" ...'
    assert ascii_line("plain") == "plain"


# ------------------------------------------------- apply --attach between two rounds

HOLDER = """
import sys, time
from checks.host import Host
from app.fix_commands import _mark_running
root = sys.argv[1]
_mark_running(Host(root, env={}, euid=0, live=False))
print("holding", flush=True)
time.sleep(1.5)  # between the rounds: no journal lock, nothing printed
with open(root + "/var/lib/kvmprep/apply.out", "a") as fh:
    fh.write("Result:\\n  the second round's fixes\\n")
"""


def test_attach_follows_an_apply_between_its_rounds(tmp_path):
    """An apply with a second round releases the journal's lock while it plans
    that round: ``apply --attach`` must follow it to its summary."""
    root = tmp_path / "root"
    state = root / "var/lib/kvmprep"
    state.mkdir(parents=True, mode=0o700)
    (state / "journal").write_text(json.dumps({"apply": "a1", "event": "start"}) + "\n"
                                   + json.dumps({"apply": "a1", "event": "end", "ok": True}) + "\n")
    (state / "apply.out").write_text("apply a1 finished\n")
    env = {**os.environ, "PYTHONPATH": str(TOP)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=TOP)
    try:
        assert holder.stdout.readline().strip() == "holding"
        r = subprocess.run([sys.executable, "-m", "app", "apply", "--attach", "--root", str(root)],
                           capture_output=True, text=True, env=env, cwd=TOP, timeout=60,
                           stdin=subprocess.DEVNULL)
    finally:
        holder.wait(30)
    assert r.returncode == 0, r.stderr
    assert "apply a1 finished" in r.stdout and "the second round's fixes" in r.stdout, r.stdout
