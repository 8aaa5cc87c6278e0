"""The wizard's undo on a booted host (systemd as PID 1), over ``ssh -t``.

Like its apply, the wizard's undo runs in a systemd unit of its own
(``kvmprep-undo-*.service``, screens/apply.py), so an SSH session that ends
does not stop it halfway. After it, the apply screen says what the undo did
to each action (UNDONE / KEPT), measured here against the host itself: the
files kvmprep wrote are as before, the packages stay installed (undo removes
them only when asked), the admin is out of the groups again.
"""

from __future__ import annotations

import re

import pytest

from lab_root import ADMIN
from lab_wizard import APPLY_TIMEOUT, to_the_apply

pytestmark = pytest.mark.lab


def test_wizard_undo_runs_in_its_own_unit(lab, terminal):
    host = lab.boot("wizard-undo")
    pyz = lab.put_kvmprep(host, user=ADMIN)
    groups_before = set(host.ssh(f"id -nG {ADMIN}", check=True).stdout.split())
    t = terminal(host.ssh_argv(f"sudo /usr/bin/python3 {pyz}", user=ADMIN, tty=True))
    to_the_apply(t)
    done = t.wait_for(lambda s: "DONE: every action" in s or "FAILED" in s, "the apply to end", timeout=APPLY_TIMEOUT)
    assert "DONE: every action" in done, done
    assert {"kvm", "libvirt"} <= set(host.ssh(f"id -nG {ADMIN}", check=True).stdout.split())

    t.keys("u")
    t.wait_text("Undo what this apply did")
    t.keys("y")
    undone = t.wait_for(lambda s: "UNDONE:" in s or "UNDO incomplete" in s, "the undo", timeout=300)
    undone = t.settle()
    assert "UNDONE:" in undone, t.capture(history=True)
    assert re.search(r"KEPT\s+install-virtualization-packages", undone), undone
    assert re.search(r"UNDONE\s+add-user-to-groups", undone), undone

    log = host.ssh("journalctl --no-pager -o cat -u 'kvmprep-undo-*'", check=True).stdout
    assert re.search(r"Started kvmprep-undo-[0-9-]+\.service .* undo --yes", log), log  # its own unit
    assert "Deactivated successfully" in log, log
    assert set(host.ssh(f"id -nG {ADMIN}", check=True).stdout.split()) == groups_before
    status = host.ssh("dpkg-query -W -f='${db:Status-Abbrev}' libvirt-daemon-system", check=True).stdout
    assert status.startswith("ii"), status  # kept: undo removes packages only when asked

    t.keys("Enter")
    summary = t.wait_for(lambda s: "8/8 Summary" in s and "checks as they are now" in s, "the summary", timeout=120)
    assert "UNDONE" in summary and "STOPPED" not in summary, summary
    t.keys("q")
    t.wait_text("Quit kvmprep?")
    t.keys("y")
    assert t.wait_exit(timeout=60) == "EXIT=0"
    assert "Traceback" not in t.capture(history=True)
