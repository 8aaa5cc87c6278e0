"""Profiles: built-ins load and agree with the catalogue; bad ones say exactly what is wrong."""

from __future__ import annotations

import pytest

from checks.profile import ProfileError, builtin_names, load_profile
from checks.registry import all_checks

BUILTINS = ["deckhouse", "generic", "kubevirt", "openstack-nova", "vmmanager"]


def test_compiled_profiles_match_the_yaml():
    """compiled.json lets `check` skip importing PyYAML; it must say what the YAML says."""
    import json

    import yaml

    from checks.profile import COMPILED

    with open(COMPILED) as fh:
        compiled = json.load(fh)
    assert sorted(compiled) == BUILTINS, "run: python -m checks.profile --compile"
    for name, entry in compiled.items():
        with open(COMPILED.replace("compiled.json", f"{name}.yaml")) as fh:
            text = fh.read()
        assert entry["yaml"] == text, f"{name}.yaml changed: run python -m checks.profile --compile"
        assert entry["data"] == yaml.safe_load(text)


def test_edited_builtin_yaml_is_read_directly(tmp_path, monkeypatch):
    import shutil

    import checks.profile as prof

    d = tmp_path / "profiles"
    shutil.copytree(prof.PROFILE_DIR, d)
    (d / "generic.yaml").write_text((d / "generic.yaml").read_text().replace(
        "description: A libvirt/QEMU KVM host (the default)", "description: edited"))
    monkeypatch.setattr(prof, "PROFILE_DIR", str(d))
    monkeypatch.setattr(prof, "COMPILED", str(d / "compiled.json"))
    assert prof.load_profile("generic").description == "edited"
    assert prof.load_profile("kubevirt").description.startswith("A Kubernetes node")


def test_the_five_builtins_ship():
    assert builtin_names() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profile_loads(name):
    p = load_profile(name)
    assert p.description and p.checks
    catalogue = all_checks()
    assert set(p.checks) <= set(catalogue)


def test_generic_covers_the_catalogue_except_platform_specific():
    generic = load_profile("generic")
    missing = set(all_checks()) - set(generic.checks)
    assert missing <= {"openstack.nova-conf", "services.nftables"}, missing


def test_every_catalogue_check_is_used_by_some_profile():
    used = set()
    for name in BUILTINS:
        used |= set(load_profile(name).checks)
    assert used == set(all_checks())


def test_vmmanager_thresholds():
    p = load_profile("vmmanager")
    assert p.checks["cpu.arch"].params["allowed"] == ["x86_64"]
    assert p.checks["hw.memory"].params["min_gib"] == 8
    assert p.checks["security.selinux"].params["want"] == "disabled"


def _write(tmp_path, text):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    return f


def test_user_profile_extends_a_builtin(tmp_path):
    f = _write(tmp_path, "name: mine\nextends: generic\nchecks:\n  cpu.cores:\n    min: 16\n  os.minimal: off\n")
    p = load_profile(str(f))
    g = load_profile("generic")
    assert p.name == "mine"
    assert p.checks["cpu.cores"].params["min"] == 16
    assert p.checks["cpu.cores"].severity == g.checks["cpu.cores"].severity
    assert "os.minimal" not in p.checks


@pytest.mark.parametrize("text,key,expected", [
    ("- a\n- b\n", "(document)", "a mapping"),
    ("name: x\nchecks: {}\ncolour: red\n", "colour", "one of"),
    ("name: x\nchecks:\n  cpu.bogus: required\n", "checks.cpu.bogus", "a known check id"),
    ("name: x\nchecks:\n  cpu.arch: mandatory\n", "checks.cpu.arch.severity", "required, recommended, info"),
    ("name: x\nchecks:\n  cpu.cores:\n    maximum: 3\n", "checks.cpu.cores.maximum", "allowed: min, recommended"),
    ("name: x\nchecks:\n  cpu.cores:\n    min: many\n", "checks.cpu.cores.min", "a number"),
    ("name: x\nchecks:\n  cpu.arch:\n    allowed: x86_64\n", "checks.cpu.arch.allowed", "a list"),
    ("name: x\nchecks: [1, 2]\n", "checks", "a mapping"),
    ("name: x\nchecks:\n  cpu.arch: [\n", "line", "valid YAML"),
    ("name: x\nextends: 42\n", "extends", "another profile"),
])
def test_bad_profiles_name_the_key(tmp_path, text, key, expected):
    f = _write(tmp_path, text)
    with pytest.raises(ProfileError) as info:
        load_profile(str(f))
    err = info.value
    assert err.file == str(f)
    assert err.key.startswith(key), err
    assert expected in err.expected, err


def test_missing_profile_file(tmp_path):
    with pytest.raises(ProfileError) as info:
        load_profile(str(tmp_path / "none.yaml"))
    assert "does not exist" in str(info.value)


def test_extends_cycle(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"extends: {b}\n")
    b.write_text(f"extends: {a}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(a))
    assert "cycle" in str(info.value)
