"""Profiles: which checks apply, at which severity, with which thresholds.

Built-in profiles are YAML files in ``checks/profiles/``; ``--profile
PATH.yaml`` loads a user's own, which may ``extends:`` a built-in one.
"""

from __future__ import annotations

import json
import os

from .model import SEVERITIES
from .record import Record
from .registry import all_checks

PROFILE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profiles")
# The built-in YAML files parsed ahead of time, so that `kvmprep check` need
# not import PyYAML (~20 ms). Each entry keeps the YAML text it came from and
# is used only while that text is unchanged; regenerate with
# `python -m checks.profile --compile` (a test fails when it is stale).
COMPILED = os.path.join(PROFILE_DIR, "compiled.json")
DEFAULT_PROFILE = "generic"
_TOP_KEYS = {"name", "description", "extends", "source", "checks", "fleet"}

# The cross-host checks of `kvmprep fleet` (checks/fleet/) and their severity
# when a profile's chain of `extends` names none: generic.yaml says the same (a
# test keeps them equal). A profile's `fleet:` section sets each one's severity
# like a check's: required fails the fleet; recommended and info only warn.
FLEET_DEFAULTS = {
    "fleet.same-kernel": "recommended",
    "fleet.cpu-compatible": "required",
    "fleet.versions": "recommended",
    "fleet.unique-names": "required",
    "fleet.unique-addresses": "required",
    "fleet.unique-machine-ids": "required",
}


class ProfileError(Exception):
    """A profile that cannot be used: names the file, the key, what was expected."""

    def __init__(self, file: str, key: str, expected: str):
        super().__init__(f"profile {file}: {key}: {expected}")
        self.file, self.key, self.expected = file, key, expected


class Entry(Record):
    def __init__(self, severity: str, params: dict[str, object] | None = None):
        self.severity = severity
        self.params = {} if params is None else params


class Profile(Record):
    def __init__(self, name: str, description: str, file: str, source: str = "",
                 checks: dict[str, Entry] | None = None, fleet: dict[str, str] | None = None):
        self.name = name
        self.description = description
        self.file = file
        self.source = source
        self.checks = {} if checks is None else checks
        # fleet check id -> severity (those turned off are left out)
        self.fleet = dict(FLEET_DEFAULTS) if fleet is None else fleet

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "file": self.file}


def _shipped(path: str) -> str:
    """A file shipped in this package, read through the module's loader: a
    plain file when installed, a member of the archive in ``kvmprep.pyz``
    (zipimport has no directory to open or list)."""
    return __loader__.get_data(path).decode("utf-8")


def builtin_names() -> list[str]:
    """The built-in profiles: compiled.json names every one (a test keeps it
    equal to the YAML files), and it can be read inside the bundle too."""
    return sorted(_compiled())


def _yaml_files() -> list[str]:
    return sorted(n[:-5] for n in os.listdir(PROFILE_DIR) if n.endswith(".yaml"))


def _compiled() -> dict:
    try:
        return json.loads(_shipped(COMPILED))
    except (OSError, ValueError):
        return {}


def is_builtin_file(path: str) -> bool:
    return os.path.dirname(os.path.abspath(path)) == PROFILE_DIR


def compile_builtins() -> dict:
    """Parse every built-in YAML profile and write compiled.json."""
    import yaml

    out = {}
    for name in _yaml_files():
        with open(os.path.join(PROFILE_DIR, f"{name}.yaml"), encoding="utf-8") as fh:
            text = fh.read()
        out[name] = {"yaml": text, "data": yaml.safe_load(text)}
    with open(COMPILED, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return out


def _load_yaml(path: str) -> object:
    builtin = is_builtin_file(path)
    try:
        if builtin:
            text = _shipped(os.path.abspath(path))
        else:
            from .files import read_regular

            text = read_regular(path, cap=1 << 20).decode("utf-8")
    except FileNotFoundError:
        raise ProfileError(str(path), "(file)", "the file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ProfileError(str(path), "(file)", f"a readable UTF-8 file ({why})") from None
    if builtin:
        entry = _compiled().get(os.path.basename(path)[:-5])
        if entry and entry.get("yaml") == text:
            return entry["data"]
    import yaml

    from .files import load_yaml_untrusted

    try:
        return load_yaml_untrusted(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f"line {where.line + 1}" if where else "(document)"
        raise ProfileError(str(path), at, f"valid YAML ({getattr(exc, 'problem', exc)})") from None


# Parameters whose default cannot show the shape of their values (an empty
# mapping): an example of that shape ("" = any string key) and its name.
_SHAPES: dict[tuple[str, str], tuple[object, str]] = {
    ("packages.virtualization", "packages"): (
        {"": [""]}, "a mapping of distribution id or family to a list of strings"),
}


def _type_ok(default: object, value: object) -> bool:
    """Whether ``value`` has the type of ``default``: lists item by item against the
    default's first item, a ``{"": X}`` mapping key by key (string keys, X values)."""
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list) and (not default or all(_type_ok(default[0], v) for v in value))
    if isinstance(default, dict):
        if not isinstance(value, dict):
            return False
        if list(default) == [""]:
            return all(isinstance(k, str) and _type_ok(default[""], v) for k, v in value.items())
        return True
    return default is None or True


_NAMES = {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list",
          dict: "a mapping"}
_PLURALS = {bool: "true or false values", int: "numbers", float: "numbers", str: "strings", dict: "mappings",
            list: "lists"}


def _type_name(default: object) -> str:
    if isinstance(default, list) and default and type(default[0]) in _PLURALS:
        return f"a list of {_PLURALS[type(default[0])]}"
    return _NAMES.get(type(default), "a value")


def _got(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_profile(name_or_path: str | os.PathLike, _seen: tuple[str, ...] = ()) -> Profile:
    """Load a built-in profile by name, or a YAML file by path."""
    text = os.fspath(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        path = text
    else:
        path = os.path.join(PROFILE_DIR, f"{text}.yaml")
        if text not in builtin_names():
            raise ProfileError(text, "(name)", "one of " + ", ".join(builtin_names())
                               + ", or a path to a .yaml file")
    label = str(path)
    if label in _seen:
        raise ProfileError(label, "extends", "no cycle of profiles extending each other")
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise ProfileError(label, "(document)", "a mapping with keys name, description, checks")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ProfileError(label, sorted(unknown)[0], "one of " + ", ".join(sorted(_TOP_KEYS)))
    for key in ("name", "description", "source"):
        if key in data and not isinstance(data[key], str):
            raise ProfileError(label, key, "a string")

    entries: dict[str, Entry] = {}
    fleet = dict(FLEET_DEFAULTS)
    if data.get("extends") is not None:
        if not isinstance(data["extends"], str):
            raise ProfileError(label, "extends", "the name or path of another profile")
        parent = load_profile(data["extends"], _seen + (label,))
        entries = {k: Entry(v.severity, dict(v.params)) for k, v in parent.checks.items()}
        fleet = dict(parent.fleet)
    fleet = _fleet_section(label, data.get("fleet"), fleet)

    checks = data.get("checks")
    if checks is None and not entries:
        raise ProfileError(label, "checks", "a mapping of check ids to severities")
    if checks is not None and not isinstance(checks, dict):
        raise ProfileError(label, "checks", "a mapping of check ids to severities")
    catalogue = all_checks()
    for cid, spec in (checks or {}).items():
        key = f"checks.{cid}"
        if cid not in catalogue:
            raise ProfileError(label, key, "a known check id (see the README's catalogue)")
        if spec in ("off", False):
            entries.pop(cid, None)
            continue
        if isinstance(spec, str):
            spec = {"severity": spec}
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise ProfileError(label, key, "a severity (required, recommended, info, off) or a mapping")
        base = entries.get(cid)
        severity = spec.get("severity", base.severity if base else "required")
        if severity not in SEVERITIES:
            raise ProfileError(label, f"{key}.severity", "one of required, recommended, info")
        params = dict(base.params) if base else {}
        defaults = catalogue[cid].params
        for pkey, value in spec.items():
            if pkey == "severity":
                continue
            if pkey not in defaults:
                allowed = ", ".join(sorted(defaults)) or "none"
                raise ProfileError(label, f"{key}.{pkey}", f"a parameter of {cid} (allowed: {allowed})")
            shape, shape_name = _SHAPES.get((cid, pkey), (defaults[pkey], _type_name(defaults[pkey])))
            if not _type_ok(shape, value):
                raise ProfileError(label, f"{key}.{pkey}", f"{shape_name}, got {_got(value)}")
            params[pkey] = value
        entries[cid] = Entry(severity, params)

    name = data.get("name") or os.path.splitext(os.path.basename(path))[0]
    return Profile(
        name=name,
        description=data.get("description", ""),
        file=label,
        source=data.get("source", ""),
        checks=entries,
        fleet=fleet,
    )


def _fleet_section(label: str, section: object, inherited: dict[str, str]) -> dict[str, str]:
    """The profile's ``fleet:`` mapping (``same-kernel: required``; the full id
    ``fleet.same-kernel`` too) of severities (required, recommended, info, off)
    applied over what it inherits."""
    if section is None:
        return inherited
    if not isinstance(section, dict):
        raise ProfileError(label, "fleet", "a mapping of fleet checks to severities, e.g. same-kernel: required")
    out = dict(inherited)
    for name, severity in section.items():
        key = f"fleet.{name}"
        fid = name if str(name).startswith("fleet.") else key
        if fid not in FLEET_DEFAULTS:
            raise ProfileError(label, key, "one of " + ", ".join(f[len("fleet."):] for f in FLEET_DEFAULTS))
        if severity in ("off", False):
            out.pop(fid, None)
        elif severity in SEVERITIES:
            out[fid] = severity
        else:
            raise ProfileError(label, key, "one of required, recommended, info, off")
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--compile"]:
        sys.exit("usage: python -m checks.profile --compile")
    print(f"wrote {COMPILED}: " + ", ".join(compile_builtins()))
