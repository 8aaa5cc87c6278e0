"""checks/spawn.py: the check path's command runner (no subprocess import)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from checks.errors import ProbeError, ToolMissing
from checks.host import Host
from checks.spawn import Timeout, run_captured

SH = "/bin/sh"
ENV = {"PATH": "/usr/bin:/bin"}


def test_stdout_stderr_and_status_apart():
    rc, out, err = run_captured([SH, "-c", "echo out; echo err >&2; exit 3"], ENV, 10)
    assert (rc, out, err) == (3, b"out\n", b"err\n")


def test_large_output_on_both_pipes_does_not_block():
    script = "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2; head -c 300000 /dev/zero"
    rc, out, err = run_captured([SH, "-c", script], ENV, 20)
    assert rc == 0 and len(out) == 600000 and len(err) == 200000


def test_stdin_is_empty_and_env_is_exactly_the_one_given():
    rc, out, _ = run_captured([SH, "-c", "cat; env"], {"PATH": "/usr/bin:/bin", "ONLY": "this"}, 10)
    lines = set(out.decode().split())
    assert rc == 0 and "ONLY=this" in lines
    assert not any(x.startswith(("HOME=", "PYTEST_")) for x in lines), lines


def test_killed_by_a_signal_is_a_negative_status():
    rc, _, _ = run_captured([SH, "-c", "kill -TERM $$"], ENV, 10)
    assert rc == -15


def test_sigpipe_is_default_in_the_child():
    """Python ignores SIGPIPE; a child must not inherit that (a writer to a
    closed pipe dies quietly instead of printing 'Broken pipe' errors)."""
    rc, out, err = run_captured([SH, "-c", "yes | head -n 1; echo done"], ENV, 10)
    assert out == b"y\ndone\n" and b"Broken pipe" not in err, err


def test_timeout_kills_the_child():
    started = time.monotonic()
    with pytest.raises(Timeout):
        run_captured([SH, "-c", "echo $$; exec sleep 30"], ENV, 0.5)
    assert time.monotonic() - started < 5


def test_a_missing_program_is_oserror():
    with pytest.raises(OSError):
        run_captured(["/nonexistent/tool", "x"], ENV, 5)


def test_host_run_uses_it_and_reports_like_before(tmp_path):
    host = Host("/", env=dict(ENV))
    res = host.run(["sh", "-c", "printf 'caf\\351\\n'; echo warn >&2; exit 2"])
    assert (res.returncode, res.stdout, res.stderr) == (2, "caf\ufffd\n", "warn\n")
    assert res.argv == ("sh", "-c", "printf 'caf\\351\\n'; echo warn >&2; exit 2")
    with pytest.raises(ToolMissing):
        host.run(["no-such-tool-kvmprep"])
    with pytest.raises(ProbeError, match="timed out after 0.3s"):
        host.run(["sleep", "5"], timeout=0.3)


def test_the_check_path_does_not_import_subprocess(tmp_path):
    """kvmprep check on this machine spawns systemctl, yet never imports subprocess."""
    code = ("import sys, io; sys.stdout = io.StringIO(); from app.cli import main; main(['check', '--format', 'json']);"
            "sys.stdout = sys.__stdout__; print('subprocess' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "False", out.stderr
