"""Answers files: what the admin chose in the wizard, to replay on other hosts.

Like subiquity's autoinstall or ``lxd init --preseed``: the wizard writes
``kvmprep-answers.yaml`` (profile, ignored checks, the fixes kept, the admin
user) and ``kvmprep apply --answers FILE`` / ``kvmprep wizard --answers FILE``
plan afresh on the host they run on. An answers file holds intent only, never
commands: each host gets the plan its own state calls for (a fix with nothing
to do there is simply not in it).

The file is input from someone else: a regular file of at most 1 MiB, YAML
without aliases, every key and value checked (``AnswersError`` names the file,
the key and the reason).
"""

from __future__ import annotations

import hashlib
import os

from checks.names import BadName, user_name

from .registry import all_remediations

ANSWERS_VERSION = 1
DEFAULT_NAME = "kvmprep-answers.yaml"
_KEYS = {"kvmprep_answers", "profile", "profile_yaml", "fixes", "declined", "ignore", "user"}
MAX_BYTES = 1 << 20


class AnswersError(Exception):
    """A bad answers file: ``file: key: reason`` (exit status 2)."""

    def __init__(self, path: str, key: str, reason: str):
        super().__init__(f"{path}: {key}: {reason}")
        self.path, self.key, self.reason = path, key, reason


class Answers:
    """What to do on a host: plain data (see the module docstring)."""

    def __init__(self, profile: str, fixes: list[str], declined: list[str] | None = None,
                 ignore: list[str] | None = None, user: str | None = None, profile_yaml: str | None = None):
        self.profile, self.fixes = profile, list(fixes)
        self.declined, self.ignore = list(declined or []), list(ignore or [])
        self.user, self.profile_yaml = user, profile_yaml

    def __eq__(self, other) -> bool:
        return isinstance(other, Answers) and vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"Answers({vars(self)!r})"

    def to_yaml(self) -> str:
        """The file the wizard writes: commented, in a fixed key order."""
        import yaml

        def block(key, value):
            return yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=100)

        out = ["# kvmprep answers: what was chosen in the wizard. Replay it on any host with",
               "#   kvmprep apply --answers FILE --yes      (or: kvmprep wizard --answers FILE)",
               "# Each host is planned afresh: fixes with nothing to do there are left out.",
               f"kvmprep_answers: {ANSWERS_VERSION}",
               "# a built-in profile's name, or the name of the profile in profile_yaml",
               block("profile", self.profile).rstrip()]
        if self.profile_yaml is not None:
            out += ["# the admin's own profile file, carried along (other hosts do not have it)",
                    block("profile_yaml", self.profile_yaml).rstrip()]
        out += ["# the fixes kept selected (remediation ids)", block("fixes", self.fixes).rstrip(),
                "# offered and dropped: not applied on replay either", block("declined", self.declined).rstrip(),
                "# checks whose failure only warns (kvmprep check --ignore)", block("ignore", self.ignore).rstrip()]
        if self.user:
            out += ["# the admin to add to the kvm and libvirt groups (as SUDO_USER would say)",
                    block("user", self.user).rstrip()]
        return "\n".join(out) + "\n"

    def profile_file(self, write_copy) -> str:
        """The profile to load: a built-in name, or ``write_copy(name, text)``'s
        path for an embedded profile (kvmprep keeps a copy: a detached apply
        and its second round load it again by path)."""
        if self.profile_yaml is None:
            return self.profile
        digest = hashlib.sha256(self.profile_yaml.encode()).hexdigest()[:12]
        return write_copy(f"profile-{digest}.yaml", self.profile_yaml)


def load_answers(path: str) -> Answers:
    """Read and validate an answers file (AnswersError on anything wrong)."""
    from checks.files import load_yaml_untrusted, read_regular, yaml_error_text

    try:
        data = read_regular(path, cap=MAX_BYTES)
    except OSError as exc:
        raise AnswersError(path, "(file)", exc.strerror or str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AnswersError(path, "(file)", "not UTF-8 text") from None
    try:
        doc = load_yaml_untrusted(text)
    except Exception as exc:  # yaml's errors
        raise AnswersError(path, "(file)", f"not YAML ({yaml_error_text(exc)})") from None
    return parse_answers(doc, path)


def parse_answers(doc: object, path: str = "answers") -> Answers:
    if not isinstance(doc, dict) or doc.get("kvmprep_answers") is None:
        raise AnswersError(path, "kvmprep_answers", "missing: not a kvmprep answers file")
    if doc.get("kvmprep_answers") != ANSWERS_VERSION:
        raise AnswersError(path, "kvmprep_answers", f"version {doc.get('kvmprep_answers')!r}; this kvmprep reads "
                                                    f"{ANSWERS_VERSION}")
    unknown = sorted(str(k) for k in set(doc) - _KEYS)
    if unknown:
        raise AnswersError(path, unknown[0], "unknown key (known: " + ", ".join(sorted(_KEYS)) + ")")
    profile = doc.get("profile")
    if not isinstance(profile, str) or not profile.strip():
        raise AnswersError(path, "profile", "a profile name")
    profile_yaml = doc.get("profile_yaml")
    if profile_yaml is not None and not isinstance(profile_yaml, str):
        raise AnswersError(path, "profile_yaml", "the text of a profile (a YAML string)")
    if profile_yaml is None and ("/" in profile or profile.endswith((".yaml", ".yml"))):
        raise AnswersError(path, "profile", "a built-in profile's name (an own profile goes in profile_yaml: "
                                            "a path would not exist on the other hosts)")
    known = all_remediations()
    fixes = _ids(doc, "fixes", path, known, required=True)
    declined = _ids(doc, "declined", path, known)
    both = sorted(set(fixes) & set(declined))
    if both:
        raise AnswersError(path, "declined", f"{both[0]} is also in fixes")
    ignore = _strings(doc, "ignore", path)  # check ids: checked against the profile by the caller
    user = doc.get("user")
    if user is not None:
        try:
            user = user_name(user)
        except BadName as exc:
            raise AnswersError(path, "user", str(exc)) from None
    return Answers(profile.strip(), fixes, declined, ignore, user, profile_yaml)


def _strings(doc: dict, key: str, path: str, required: bool = False) -> list[str]:
    value = doc.get(key)
    if value is None:
        if required:
            raise AnswersError(path, key, "missing: a list (it may be empty)")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AnswersError(path, key, "a list of ids")
    return list(dict.fromkeys(v.strip() for v in value if v.strip()))


def _ids(doc: dict, key: str, path: str, known, required: bool = False) -> list[str]:
    ids = _strings(doc, key, path, required)
    for rid in ids:
        if rid not in known:
            raise AnswersError(path, key, f"unknown fix {rid!r} (see 'kvmprep plan')")
    return ids


def from_wizard(profile, plan, selected: set, user: str | None) -> Answers:
    """The answers of a wizard run: the fixes kept (in plan order), those dropped,
    the profile (embedded when it is the admin's own file) and the admin user."""
    from checks.profile import is_builtin_file

    steps = [s.remediation for s in plan.steps] if plan is not None else []
    declined = [r for r in steps if r not in selected]
    # fixes planned once the packages are in (enable-libvirt) go too, unless dropped as a step
    later = [r for r in (plan.replan if plan is not None else []) if r not in declined]
    fixes = list(dict.fromkeys([r for r in steps if r in selected] + later))
    if is_builtin_file(profile.file):
        return Answers(profile.name, fixes, declined, user=user)
    with open(profile.file, encoding="utf-8") as fh:  # the admin's own profile, loaded a moment ago
        text = fh.read()
    return Answers(profile.name or os.path.basename(profile.file), fixes, declined, user=user, profile_yaml=text)
