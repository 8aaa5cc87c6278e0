"""The product users install: a wheel built from this tree, installed
non-editable into a fresh venv outside it (tests/installed.py).

The first real walk found the whole fix path broken in such an install
(``remediations.catalog`` was not in the wheel) while every source-tree test
passed; these tests fail the same way if a subpackage or data file is left out.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from installed import PACKAGES, shipped_files

FIXTURES = Path(__file__).parent / "fixtures"


def test_wheel_carries_exactly_the_shipped_tree(installed):
    names = installed.wheel_names()
    dist_info = {n for n in names if n.split("/")[0].endswith(".dist-info")}
    carried = names - dist_info
    expected = shipped_files()
    assert expected - carried == set(), "missing from the wheel (pyproject.toml packages/package-data)"
    assert carried - expected == set(), "in the wheel but not in the tree's packages"
    # every subpackage of the tree is there, and the data files with them
    for must in ("remediations/catalog/__init__.py", "checks/catalog/__init__.py",
                 "checks/profiles/compiled.json", "checks/profiles/generic.yaml", "app/kvmprep.tcss",
                 "app/ascii.tcss"):
        assert must in carried
    with zipfile.ZipFile(installed.wheel) as zf:
        entry = next(n for n in dist_info if n.endswith("entry_points.txt"))
        assert "kvmprep = app.cli:entry" in zf.read(entry).decode()
        meta = next(n for n in dist_info if n.endswith("/METADATA"))
        assert "Requires-Python: >=3.9" in zf.read(meta).decode()


def test_shipped_tree_is_what_the_comparison_sees(tmp_path):
    """The comparison above can fail: a stray file in a package is seen."""
    (tmp_path / "checks" / "catalog").mkdir(parents=True)
    (tmp_path / "checks" / "catalog" / "x.py").write_text("")
    (tmp_path / "checks" / "catalog" / "__pycache__").mkdir()
    (tmp_path / "checks" / "catalog" / "__pycache__" / "x.cpython-311.pyc").write_text("")
    assert shipped_files(tmp_path) == {"checks/catalog/x.py"}


def test_every_module_imports_from_the_install(installed, tmp_path):
    modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__")
                     for n in installed.wheel_names() if n.endswith(".py") and n.split("/")[0] in PACKAGES
                     and not n.endswith("__main__.py"))  # running it is what the other tests do
    assert len(modules) > 60
    code = ("import importlib, json, sys\n"
            "bad = {}\n"
            "for name in json.loads(sys.argv[1]):\n"
            "    try:\n"
            "        m = importlib.import_module(name)\n"
            "        if not m.__file__.startswith(sys.prefix): bad[name] = 'imported from ' + m.__file__\n"
            "    except Exception as exc:\n"
            "        bad[name] = repr(exc)\n"
            "print(json.dumps(bad))\n")
    import subprocess

    r = subprocess.run([installed.python, "-c", code, json.dumps(modules)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {}


def test_check_json_from_the_install(installed, tmp_path):
    r = installed.run("check", "--format", "json", cwd=tmp_path)
    assert r.returncode in (0, 1), r.stderr
    doc = json.loads(r.stdout)
    assert doc["tool"]["name"] == "kvmprep" and doc["summary"], doc.keys()
    assert len(doc["checks"]) > 30
    assert "Traceback" not in r.stderr


def test_plan_and_dry_run_from_the_install(installed, tools_root, tmp_path):
    """The issue's first 'done when': plan --fix install-tools from `pip install .`."""
    r = installed.run("plan", "--root", str(tools_root), "--fix", "install-tools", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "install-tools" in r.stdout and "apt-get" in r.stdout, r.stdout
    assert "dmidecode" in r.stdout, r.stdout
    r2 = installed.run("plan", "--root", str(tools_root), "--format", "json", cwd=tmp_path)
    assert r2.returncode == 0, r2.stderr
    ids = [s["remediation"] for s in json.loads(r2.stdout)["steps"]]
    assert "install-virtualization-packages" in ids, ids
    d = installed.run("apply", "--root", str(tools_root), "--fix", "install-tools", "--dry-run", cwd=tmp_path)
    assert d.returncode == 0, d.stdout + d.stderr
    assert "apt-get" in d.stdout and "Traceback" not in d.stderr
    assert not (tools_root / "var/lib/kvmprep").exists()  # a dry run writes nothing


def test_profiles_from_the_install(installed, tmp_path):
    r = installed.run("profiles", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [p["name"] for p in json.loads(r.stdout)] == [
        "deckhouse", "generic", "kubevirt", "openstack-nova", "vmmanager"]
