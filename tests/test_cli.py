"""The command line as an admin uses it: exit codes, formats, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.cli import main

TOP = Path(__file__).resolve().parent.parent
DOC_KEYS = {"tool", "root", "profile", "host", "checks", "summary"}
CHECK_KEYS = {"id", "title", "category", "severity", "status", "detail", "evidence", "why",
              "source", "remediations", "needs_root"}


def kvmprep(*args, env=None):
    """Run the installed entry point as a subprocess (what an admin types)."""
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          cwd=TOP, env=e, timeout=120)


@pytest.fixture
def debian_root(root):
    root.use("os/debian_10").use("cpu/x86_64-epyc_7451")
    root.write("proc/meminfo", "MemTotal:       65843200 kB\nMemAvailable:   60000000 kB\n")
    root.write("proc/version", "Linux version 4.19.0-6-amd64 (debian-kernel@lists.debian.org) #1 SMP\n")
    return root


def test_version_and_help():
    r = kvmprep("--version")
    assert r.returncode == 0 and r.stdout.startswith("kvmprep ")
    r = kvmprep("--help")
    assert r.returncode == 0 and "check" in r.stdout and "profiles" in r.stdout


def test_json_document_schema(debian_root):
    r = kvmprep("check", "--root", str(debian_root.path), "--format", "json")
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert DOC_KEYS <= set(doc)
    assert doc["tool"]["name"] == "kvmprep"
    assert doc["root"] == str(debian_root.path)
    os_ = doc["host"]["os"]
    assert (os_["id"], os_["version"], os_["family"], os_["package_manager"]) == ("debian", "10", "debian", "apt")
    cpu = doc["host"]["cpu"]
    assert (cpu["vendor"], cpu["virt_extension"], cpu["x86_64_level"]) == ("amd", "svm", 3)
    assert "EPYC 7451" in cpu["model"]
    assert doc["checks"], "no checks ran"
    for c in doc["checks"]:
        assert CHECK_KEYS <= set(c), c["id"]
        assert c["status"] in ("pass", "warn", "fail", "skip", "error")
        assert c["severity"] in ("required", "recommended", "info")
        assert isinstance(c["evidence"], list) and isinstance(c["remediations"], list)
    s = doc["summary"]
    assert {"pass", "warn", "fail", "skip", "error", "ready"} <= set(s)
    assert sum(s[k] for k in ("pass", "warn", "fail", "skip", "error")) == len(doc["checks"])
    assert s["ready"] == (r.returncode == 0)


def test_yaml_is_the_same_document(debian_root):
    j = json.loads(kvmprep("check", "--root", str(debian_root.path), "--format", "json").stdout)
    y = yaml.safe_load(kvmprep("check", "--root", str(debian_root.path), "--format", "yaml").stdout)
    strip = lambda d: [(c["id"], c["status"]) for c in d["checks"]]
    assert strip(j) == strip(y) and j["host"]["os"] == y["host"]["os"]


def test_table_is_ascii_without_colour_on_the_console(debian_root):
    r = kvmprep("check", "--root", str(debian_root.path), env={"TERM": "linux"})
    assert r.stdout.isascii()
    assert "\x1b" not in r.stdout
    assert "Verdict:" in r.stdout
    assert any(w in r.stdout for w in ("PASS", "FAIL", "WARN"))


def test_root_facts_come_from_the_root_not_this_machine(root):
    root.use("cpu/s390-lpar-drawer").use("os/sles_15_6")
    root.write("proc/version", "Linux version 5.14.21-150500.55-default (geeko@buildhost) #1 SMP\n")
    doc = json.loads(kvmprep("check", "--root", str(root.path), "--format", "json").stdout)
    assert doc["host"]["cpu"]["arch"] == "s390x"
    assert doc["host"]["cpu"]["x86_64_level"] is None
    assert doc["host"]["cpu"]["virt_extension"] == "sie"
    assert doc["host"]["kernel"]["release"] == "5.14.21-150500.55-default"
    assert doc["host"]["os"]["family"] == "suse" and doc["host"]["os"]["package_manager"] == "zypper"


@pytest.mark.parametrize("argv", [
    ["check"], ["check", "--format", "json"], ["check", "--list", "--list"], ["check", "--root="],
    ["check", "--format=yaml", "--root", "/x", "--profile=p.yaml", "--ignore", "a,b", "--list"],
    ["check", "--root", ""], ["check", "--ignore=", "--format", "table"], ["check", "--root", "a", "--root", "b"],
    ["check", "--profile", "x=y"], ["check", "--root=-x"],
])
def test_plain_check_arguments_are_what_argparse_gives(argv):
    from app.cli import _plain_check_args, build_parser

    assert vars(_plain_check_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    [], ["plan"], ["check", "-h"], ["check", "--help"], ["check", "--form", "json"], ["check", "--root"],
    ["check", "--root", "-x"], ["check", "--format", "xml"], ["check", "--list=1"], ["check", "--"],
    ["check", "extra"], ["check", "--root", "--list"],
])
def test_anything_but_a_plain_check_is_left_to_argparse(argv):
    from app.cli import _plain_check_args

    assert _plain_check_args(argv) is None


def test_missing_root_is_exit_2():
    r = kvmprep("check", "--root", "/nonexistent/dir")
    assert r.returncode == 2
    assert "no such directory" in r.stderr and "Traceback" not in r.stderr


def test_unknown_profile_is_exit_2():
    r = kvmprep("check", "--profile", "nope")
    assert r.returncode == 2 and "generic" in r.stderr and "Traceback" not in r.stderr


def test_bad_profile_file_names_file_key_and_expectation(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: mine\nchecks:\n  hw.memory:\n    severity: required\n    min_gib: lots\n")
    r = kvmprep("check", "--profile", str(p))
    assert r.returncode == 2
    assert str(p) in r.stderr and "checks.hw.memory.min_gib" in r.stderr and "a number" in r.stderr


def test_unknown_ignore_id_is_exit_2():
    r = kvmprep("check", "--ignore", "cpu.nope")
    assert r.returncode == 2 and "cpu.nope" in r.stderr


def test_ignore_downgrades_a_required_failure(root, capsys):
    root.use("cpu/i386-dellpe700")
    rc = main(["check", "--root", str(root.path), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    failing = [c["id"] for c in doc["checks"] if c["status"] == "fail" and c["severity"] == "required"]
    assert rc == 1 and "cpu.64bit" in failing
    rc = main(["check", "--root", str(root.path), "--format", "json", "--ignore", ",".join(failing)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0
    ignored = {c["id"]: c for c in doc["checks"] if c["id"] in failing}
    assert all(c["status"] == "warn" and c["ignored"] for c in ignored.values())


def test_empty_root_gives_answers_not_tracebacks(tmp_path):
    r = kvmprep("check", "--root", str(tmp_path), "--format", "json")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    doc = json.loads(r.stdout)
    assert not [c for c in doc["checks"] if c["status"] == "error"], \
        [(c["id"], c["detail"]) for c in doc["checks"] if c["status"] == "error"]


def test_profiles_command_lists_builtins():
    r = kvmprep("profiles")
    assert r.returncode == 0
    for name in ("generic", "openstack-nova", "kubevirt", "deckhouse", "vmmanager"):
        assert name in r.stdout


def test_no_command_runs_check_without_a_terminal(debian_root):
    r = kvmprep("--root", str(debian_root.path))
    assert r.returncode in (0, 1) and "Verdict:" in r.stdout


@pytest.mark.parametrize("os_tree", sorted(p.name for p in (TOP / "tests/fixtures/os").iterdir()))
@pytest.mark.parametrize("cpu_tree", ["x86_64-epyc_7451", "ppc64le-powernv-power8", "arm-A510-A710-A715-X3"])
def test_every_profile_decides_on_real_release_and_cpu_data(root, capsys, os_tree, cpu_tree):
    """Real machines' files: every check answers (no error), for every profile."""
    root.use(f"os/{os_tree}").use(f"cpu/{cpu_tree}")
    for profile in ("generic", "openstack-nova", "kubevirt", "deckhouse", "vmmanager"):
        rc = main(["check", "--root", str(root.path), "--format", "json", "--profile", profile])
        doc = json.loads(capsys.readouterr().out)
        assert rc in (0, 1)
        errors = [(c["id"], c["detail"]) for c in doc["checks"] if c["status"] == "error"]
        assert errors == [], (profile, errors)
