"""The README is the front door: it must list every check and the command CI runs."""

import re
from pathlib import Path

from checks.profile import builtin_names
from checks.registry import all_checks

TOP = Path(__file__).resolve().parent.parent
README = (TOP / "README.md").read_text()


def test_every_check_id_is_in_the_catalogue_table():
    rows = set(re.findall(r"^\| `([a-z0-9.-]+)` \|", README, re.M))
    assert rows == set(all_checks())


def test_every_profile_is_documented():
    for name in builtin_names():
        assert name in README


def test_ci_runs_the_readme_test_command():
    ci = (TOP / ".ci" / "run").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip() in ci
