"""Layering and speed rules, enforced: engines free of UI, check path free of heavy imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
# who may import whom: imports only go down the layers
FORBIDDEN = {
    "checks": {"textual", "rich", "sh", "app", "screens", "remediations"},
    "remediations": {"textual", "rich", "app", "screens"},
    "screens": {"app"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package):
    bad = []
    for path in (TOP / package).rglob("*.py"):
        hit = _imports(path) & FORBIDDEN[package]
        if hit:
            bad.append(f"{path.relative_to(TOP)} imports {', '.join(sorted(hit))}")
    assert not bad, "\n".join(bad)


def test_check_json_path_imports_no_textual_rich_or_sh(tmp_path):
    probe = (
        "import sys, io, contextlib\n"
        "from app.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        "    rc = main(['check', '--format', 'json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'sh'))\n"
        "print(repr((rc, heavy, len(buf.getvalue()))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=TOP, env={**os.environ, "TERM": "xterm"}, timeout=60)
    assert out.returncode == 0, out.stderr
    rc, heavy, size = eval(out.stdout.strip().splitlines()[-1])
    assert rc in (0, 1) and size > 100
    assert heavy == []


def test_plain_check_path_builds_no_argparse_parser():
    """`check --format json` parses its arguments without argparse (app/cli.py)."""
    probe = (
        "import sys, io, contextlib\n"
        "from app.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['check', '--format', 'json', '--profile', 'generic'])\n"
        "print(repr((rc, 'argparse' in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=TOP, env={**os.environ, "TERM": "xterm"}, timeout=60)
    assert out.returncode == 0, out.stderr
    rc, argparse_imported = eval(out.stdout.strip().splitlines()[-1])
    assert rc in (0, 1) and not argparse_imported


def test_check_path_creates_no_dataclass():
    """The engine's data classes are checks.record classes, not @dataclass: generating a
    dataclass's methods at import costs ~0.3 ms a class, and importing dataclasses pulls in
    inspect (~6 ms), on every `kvmprep check`."""
    found = sorted(str(p.relative_to(TOP)) for p in (TOP / "checks").rglob("*.py")
                   if "dataclasses" in _imports(p))
    assert found == []
    probe = ("import sys, io, contextlib\nfrom app.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    main(['check', '--format', 'json'])\n"
             "print(repr(sorted(m for m in ('dataclasses', 'inspect', 'argparse') if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=TOP, timeout=60)
    assert out.returncode == 0, out.stderr
    assert eval(out.stdout.strip().splitlines()[-1]) == []


def test_sh_is_used_only_by_the_command_runner():
    users = sorted(str(p.relative_to(TOP)) for pkg in ("checks", "remediations", "app", "screens")
                   for p in (TOP / pkg).rglob("*.py") if "sh" in _imports(p))
    assert users == ["remediations/commands.py"]
