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
