"""The README is the front door: it must list every check and the command CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from checks.profile import builtin_names
from checks.registry import all_checks

TOP = Path(__file__).resolve().parent.parent
README = (TOP / "README.md").read_text()


def _table_ids(pattern):
    return {i for i in re.findall(r"^\| `([a-z0-9.-]+)` \|", README, re.M) if re.fullmatch(pattern, i)}


def test_every_check_id_is_in_the_catalogue_table():
    assert _table_ids(r"[a-z0-9-]+\.[a-z0-9.-]+") == set(all_checks())


def test_every_remediation_is_in_the_remediations_table():
    from remediations.registry import all_remediations

    assert _table_ids(r"[a-z0-9-]+") == set(all_remediations())


def test_every_remediation_a_check_names_exists():
    from remediations.registry import all_remediations

    named = {rid for spec in all_checks().values() for rid in spec.remediations}
    assert named <= set(all_remediations())


def test_every_profile_is_documented():
    for name in builtin_names():
        assert name in README


def test_ci_runs_the_readme_test_command():
    ci = (TOP / ".ci" / "run").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip() in ci


def test_every_command_is_in_the_usage_block():
    from app.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    usage = README[README.index("## Usage"):]
    usage = usage[:usage.index("```", usage.index("```") + 3)]
    for name in sub.choices:
        if name != "wizard":  # shown as `kvmprep [wizard]`
            assert f"kvmprep {name} " in usage or f"kvmprep {name}\n" in usage, name


def test_supported_pythons_agree():
    """pyproject's floor, the README and the bundle's floor say the same version."""
    from app.bundle import FLOOR

    floor = ".".join(map(str, FLOOR))
    assert f'requires-python = ">={floor}"' in (TOP / "pyproject.toml").read_text()
    assert f"Python {floor}+" in README and f"Python {floor} or newer" in README
