"""``kvmprep bundle``: the one file carried onto an air-gapped server.

Built by the non-editable install (tests/installed.py), then run as an admin
would: ``python3.9 -I kvmprep.pyz ...`` from an empty directory, with no
site-packages, on the oldest and the default Python; the wizard from it in a
real terminal; a detached apply that starts the bundle again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from installed import PACKAGES, find_python
from pkgroots import dpkg_installed
from terminal import quit_cleanly

FIXTURES = Path(__file__).parent / "fixtures"
MAX_BYTES = 10 * 1000 * 1000


@pytest.fixture(scope="session")
def bundle(installed, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "kvmprep.pyz"
    r = installed.run("bundle", "-o", str(out), cwd=out.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "runs with Python 3.9 or newer" in r.stdout, r.stdout
    assert r.stderr == "", r.stderr  # no note that some package needs a newer Python
    return out


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    """The bundle's cache (XDG_CACHE_HOME) for these tests: not root's ~/.cache."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def empty(tmp_path) -> Path:
    d = tmp_path / "empty"
    d.mkdir()
    return d


def pythons() -> list:
    """The oldest supported Python and the one running the tests (and the
    newest, when present): each one the bundle must run on."""
    found = {"default": sys.executable}
    for version in ("3.9", "3.13"):
        exe = find_python(version)
        found[version] = exe
    return [pytest.param(exe, id=name, marks=pytest.mark.skipif(
        exe is None, reason=f"python{name} is not installed on this machine")) for name, exe in found.items()]


def run_bundle(python: str, bundle: Path, *args: str, cwd: Path, cache: Path, env: dict | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**(env or os.environ), "XDG_CACHE_HOME": str(cache)}
    r = subprocess.run([python, "-I", str(bundle), *args], capture_output=True, text=True, cwd=cwd,
                       stdin=subprocess.DEVNULL, env=env, timeout=timeout)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_bundle_is_small_reproducible_and_pure_python(bundle, installed, tmp_path):
    data = bundle.read_bytes()
    assert len(data) <= MAX_BYTES, len(data)
    assert data.startswith(b"#!/usr/bin/env python3\n")
    assert os.stat(bundle).st_mode & 0o111, "not executable"
    again = tmp_path / "again.pyz"
    r = installed.run("bundle", "-o", str(again), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert again.read_bytes() == data, "the same install gave different bytes"
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("kvmprep_bundle.json"))
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert not [n for n in names if n.endswith((".so", ".pyc", ".pyd")) or "__pycache__" in n]
    assert not [n for n in names if n.endswith(("/RECORD", "/INSTALLER", "/direct_url.json"))]
    own = {n for n in names if n.split("/")[0] in PACKAGES}
    wheel_own = {n for n in installed.wheel_names() if n.split("/")[0] in PACKAGES}
    assert own == wheel_own
    carried = {d["name"].lower().replace("_", "-") for d in manifest["distributions"]}
    assert {"kvmprep", "textual", "rich", "sh", "distro", "pyyaml"} <= carried, carried
    assert manifest["python"] == "3.9"
    for top in ("textual/__init__.py", "rich/__init__.py", "distro/__init__.py", "yaml/__init__.py"):
        assert top in names, top
    assert "sh.py" in names or "sh/__init__.py" in names  # a module before sh 2.1, a package since


@pytest.mark.parametrize("python", pythons())
def test_check_json_with_no_site_packages(bundle, python, empty, cache):
    r = run_bundle(python, bundle, "check", "--format", "json", cwd=empty, cache=cache)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["tool"]["name"] == "kvmprep" and len(doc["checks"]) > 30
    assert not [c for c in doc["checks"] if c["status"] == "error"], r.stdout
    assert os.listdir(empty) == []  # nothing written where it ran
    version = run_bundle(python, bundle, "--version", cwd=empty, cache=cache)
    with zipfile.ZipFile(bundle) as zf:
        expected = json.loads(zf.read("kvmprep_bundle.json"))["kvmprep"]
    assert version.stdout.strip() == f"kvmprep {expected}"


@pytest.mark.parametrize("python", pythons())
def test_plan_and_profiles_from_the_bundle(bundle, python, tools_root, empty, cache):
    r = run_bundle(python, bundle, "plan", "--root", str(tools_root), "--fix", "install-tools", cwd=empty,
                   cache=cache)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "apt-get" in r.stdout and "dmidecode" in r.stdout, r.stdout
    p = run_bundle(python, bundle, "profiles", cwd=empty, cache=cache)
    assert p.returncode == 0 and "vmmanager" in p.stdout and "generic" in p.stdout, p.stdout + p.stderr
    # a profile that extends a built-in one, read from inside the archive
    own = empty.parent / "site.yaml"
    own.write_text("name: site\ndescription: mine\nextends: kubevirt\nchecks:\n  hw.memory: {min_gib: 1}\n")
    c = run_bundle(python, bundle, "check", "--root", str(tools_root), "--profile", str(own),
                   "--format", "json", cwd=empty, cache=cache)
    assert c.returncode in (0, 1) and json.loads(c.stdout)["profile"]["name"] == "site", c.stderr


def test_too_old_python_is_told_which_one_it_needs(bundle, empty):
    old = find_python("3.6") or find_python("3.8") or find_python("3.7")  # 3.6: EL8's python3
    if old is None:
        pytest.skip("no Python older than 3.9 on this machine (pyenv 3.6/3.7/3.8)")
    r = subprocess.run([old, "-I", str(bundle), "check"], capture_output=True, text=True, cwd=empty,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "needs Python 3.9 or newer" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_the_bundle_bundles_itself(bundle, tmp_path, empty, cache):
    out = tmp_path / "copy.pyz"
    r = run_bundle(sys.executable, bundle, "bundle", "-o", str(out), cwd=empty, cache=cache)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == bundle.read_bytes()


def test_detached_apply_starts_the_bundle_again(bundle, tools_root, empty, cache):
    """Over SSH the apply runs in a new process: from a bundle, that process is
    the bundle (there is no installed ``app`` to run with -m)."""
    env = {**os.environ, "SSH_CONNECTION": "192.0.2.9 50000 192.0.2.2 22"}
    r = run_bundle(sys.executable, bundle, "apply", "--root", str(tools_root), "--fix", "install-tools", "--yes",
                   cwd=empty, env=env, cache=cache)
    assert "runs detached" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dmidecode" in dpkg_installed(tools_root)
    out = (tools_root / "var/lib/kvmprep/apply.out").read_text()
    assert "Traceback" not in out and "No module named" not in out, out


def test_wizard_from_the_bundle_reaches_the_results(bundle, terminal, tools_root, cache):
    python = find_python("3.9") or sys.executable
    t = terminal(["env", f"XDG_CACHE_HOME={cache}", python, "-I", str(bundle), "--root", str(tools_root)])
    t.wait_text("1/8 Welcome")
    t.wait_text("generic")
    t.keys("Enter")
    results = t.wait_for(lambda s: "3/8 Results" in s and "-- Packages --" in s and "Enter Fixes" in s,
                         "the filled results screen")
    assert "NOT READY" in t.settle(), results
    quit_cleanly(t)


def _copies(cache: Path) -> list:
    base = cache / "kvmprep"
    return sorted(p.name for p in base.iterdir() if p.name.startswith("bundle-")) if base.is_dir() else []


def test_runs_from_a_private_copy_that_keeps_bytecode(bundle, tmp_path, empty):
    """After the first run, kvmprep runs from a copy of the tree in the cache,
    where Python keeps bytecode (from the zip it compiles textual every time)."""
    cache = tmp_path / "cache"
    r = run_bundle(sys.executable, bundle, "check", "--format", "json", cwd=empty, cache=cache)
    assert r.returncode in (0, 1), r.stderr
    (copy,) = _copies(cache)
    with zipfile.ZipFile(bundle) as zf:
        digest = json.loads(zf.read("kvmprep_bundle.json"))["digest"]
    assert copy.endswith(digest[:16])
    tree = cache / "kvmprep" / copy
    assert os.stat(tree).st_mode & 0o777 == 0o700
    assert list((tree / "checks").glob("__pycache__/*.pyc")), "no bytecode kept"
    assert (tree / "app" / "cli.py").read_bytes() == zipfile.ZipFile(bundle).read("app/cli.py")
    again = run_bundle(sys.executable, bundle, "--version", cwd=empty, cache=cache)
    assert again.returncode == 0 and _copies(cache) == [copy]


@pytest.mark.parametrize("how", ["world-writable", "someone else's", "opted out"])
def test_unsafe_or_refused_cache_runs_from_the_zip(bundle, tmp_path, empty, how):
    """kvmprep runs as root: a copy anyone else could change is never run."""
    cache = tmp_path / "cache"
    cache.mkdir()
    env = dict(os.environ)
    if how == "world-writable":
        cache.chmod(0o777)
    elif how == "someone else's":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the cache to another user")
        (cache / "kvmprep").mkdir()
        os.chown(cache / "kvmprep", 65534, 65534)
    else:
        env["KVMPREP_BUNDLE_CACHE"] = "0"
    r = run_bundle(sys.executable, bundle, "check", "--format", "json", cwd=empty, cache=cache, env=env)
    assert r.returncode in (0, 1), r.stderr
    assert len(json.loads(r.stdout)["checks"]) > 30
    assert _copies(cache) == []


def test_a_planted_copy_of_another_user_is_not_run(bundle, tmp_path, empty):
    if os.geteuid() != 0:
        pytest.skip("needs root to plant a copy owned by another user")
    cache = tmp_path / "cache"
    with zipfile.ZipFile(bundle) as zf:
        digest = json.loads(zf.read("kvmprep_bundle.json"))["digest"]
        version = json.loads(zf.read("kvmprep_bundle.json"))["kvmprep"]
    planted = cache / "kvmprep" / f"bundle-{version}-{digest[:16]}"
    (planted / "app").mkdir(parents=True)
    (planted / "app" / "__init__.py").write_text("raise SystemExit('planted code ran')\n")
    planted.chmod(0o700)
    os.chown(planted, 65534, 65534)
    r = run_bundle(sys.executable, bundle, "--version", cwd=empty, cache=cache)
    assert r.returncode == 0 and "planted" not in r.stdout + r.stderr, r.stdout + r.stderr
