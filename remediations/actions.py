"""Typed actions: each previews itself, runs exactly what it previewed, and
knows how to undo itself from the state it recorded before running."""

from __future__ import annotations

import difflib
import os
import shlex
from dataclasses import asdict, dataclass, field
from typing import ClassVar

from .fileops import FileState, atomic_write, backup_file, file_state, sha256
from .fileops import encode_text, readable, text_lines


class ActionFailed(Exception):
    """An action could not complete; the plan stops here."""

    def __init__(self, message: str, output: str = "", returncode: int | None = None):
        super().__init__(message)
        self.message, self.output, self.returncode = message, output, returncode


@dataclass
class Cmd:
    """One command exactly as apply runs it: argv (no shell) and extra environment."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def display(self) -> str:
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (env + " " if env else "") + shlex.join(self.argv)


@dataclass
class Action:
    """Base: ``runtime`` acts on the running system only (skipped offline);
    ``reboot`` takes effect only after a reboot."""

    KIND: ClassVar[str] = ""
    why: str = ""
    reboot: bool = False
    runtime: bool = False

    # -- what it will do ---------------------------------------------------
    def summary(self) -> str:
        raise NotImplementedError

    def commands(self) -> list[Cmd]:
        return []

    def preview(self) -> str:
        """Exact text of what apply runs: the commands, or a file's diff."""
        return "\n".join("$ " + c.display() for c in self.commands())

    @property
    def touches_files(self) -> list[str]:
        return []

    # -- doing it ------------------------------------------------------------
    def capture(self, ax) -> dict:
        """State before running, kept in the journal for undo."""
        return {}

    def execute(self, ax) -> dict:
        """Run; return extra undo data. Raise ActionFailed to stop the plan."""
        for cmd in self.commands():
            ax.run(cmd)
        return {}

    def undo(self, ax, before: dict, after: dict) -> str:
        """Put things back; return a sentence for the admin. Raise ActionFailed if it cannot."""
        return "nothing to undo"

    def after_failure(self, ax) -> dict | None:
        """What a failed run still changed (undo data), or None when it changed nothing."""
        return None

    def done_message(self, after: dict) -> str:
        """What the admin should know of a finished run beyond its summary ("" for nothing)."""
        return ""

    # -- serialization -------------------------------------------------------
    def to_dict(self) -> dict:
        return {"kind": self.KIND, **asdict(self)}


KINDS: dict[str, type[Action]] = {}


def _kind(cls):
    KINDS[cls.KIND] = cls
    return cls


def action_from_dict(data: dict) -> Action:
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in KINDS:
        raise ValueError(f"unknown action kind {kind!r}")
    cls = KINDS[kind]
    try:
        return cls(**data)
    except TypeError as exc:
        raise ValueError(f"bad {kind} action: {exc}") from None


@_kind
@dataclass
class WriteFile(Action):
    """Replace a file's whole content (atomically, original backed up).

    ``content`` is the file's text as fileops.decode_text reads it: a byte that is
    not UTF-8 is a lone surrogate (U+DC80..U+DCFF), written, hashed and compared
    as that same byte (``data``). A plan file holds it as the escape \\udce9 (JSON
    and YAML read it back to the same text); the preview shows it as \\xe9."""

    KIND: ClassVar[str] = "write-file"
    path: str = ""  # absolute path inside the root
    content: str = ""
    mode: int = 0o644  # for a new file; an existing file keeps its own
    original_sha256: str | None = None  # what the preview was made against; None = file absent

    def summary(self) -> str:
        return f"{'create' if self.original_sha256 is None else 'edit'} {self.path}"

    @property
    def touches_files(self) -> list[str]:
        return [self.path]

    @property
    def data(self) -> bytes:
        """The bytes apply writes: every byte of the lines the fix did not change as it was."""
        return encode_text(self.content)

    def diff(self, old: str | None) -> str:
        """Unified diff by \\n-ended lines, shown readably: a byte that is not UTF-8 as
        \\xe9, a control character (an escape sequence, a lone carriage return) as \\x1b."""
        lines = list(difflib.unified_diff(
            text_lines(old or ""), text_lines(self.content),
            fromfile="/dev/null" if old is None else f"a{self.path}", tofile=f"b{self.path}"))
        return readable("".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                                for line in lines).rstrip("\n"))

    # The old text is part of the plan for the preview: kept out of to_dict
    # (the sha pins it), filled by the planner and on load.
    old_text: str | None = field(default=None, repr=False, compare=False)

    def preview(self) -> str:
        return self.diff(self.old_text)

    def to_dict(self) -> dict:
        d = super().to_dict()
        d.pop("old_text", None)
        return d

    def capture(self, ax) -> dict:
        real = ax.host.path(self.path)
        st = file_state(real)
        if st.exists and st.sha256 == sha256(self.data):
            return {"noop": True}  # this plan was applied already: nothing to change
        if (st.sha256 if st.exists else None) != self.original_sha256:
            raise ActionFailed(f"{ax.host.display(self.path)} changed since the plan was made; "
                               "make a new plan (kvmprep plan) and review it again")
        return {"existed": st.exists, "sha256": st.sha256, "mode": st.mode}

    def execute(self, ax) -> dict:
        real = ax.host.path(self.path)
        st = file_state(real)
        if st.exists and st.sha256 == sha256(self.data):
            ax.log(f"{ax.host.display(self.path)} already has this content: unchanged")
            return {"noop": True}
        backup = None
        if st.exists:
            from .journal import write_backup

            try:
                backup = write_backup(ax.journal, ax.apply_id, self.path, real)
            except OSError as exc:
                raise ActionFailed(f"cannot keep the original of {ax.host.display(self.path)} ({exc}): "
                                   "not changed") from None
        data = self.data
        try:
            atomic_write(real, data, like=st, mode=self.mode)
        except OSError as exc:
            raise ActionFailed(f"writing {ax.host.display(self.path)} failed: {exc.strerror or exc}; "
                               "the original is untouched") from exc
        ax.log(f"wrote {ax.host.display(self.path)} ({len(data)} bytes)"
               + (f", original saved as {backup}" if backup else ""))
        return {"backup": backup, "written_sha256": sha256(data)}

    def undo(self, ax, before: dict, after: dict) -> str:
        """Restore the original from the backup kvmprep keeps for this apply and
        path (its place is computed, never read from the journal), with the
        permission bits it had (no setuid/setgid: configuration never has them)."""
        from .journal import backup_path, read_backup

        real = ax.host.path(self.path)
        now = file_state(real)
        shown = ax.host.display(self.path)
        kept = backup_path(ax.journal, ax.apply_id, self.path)
        if after.get("noop"):
            return f"{shown} was not changed by this apply"
        if now.sha256 != after.get("written_sha256"):
            raise ActionFailed(f"{shown} was changed after kvmprep wrote it: left as it is"
                               + (f"; the original is in {kept}" if before.get("existed") else ""))
        try:
            data, mode = read_backup(ax.journal, ax.apply_id, self.path)
        except FileNotFoundError:
            if before.get("existed") is not False:
                raise ActionFailed(f"the original of {shown} is missing from {kept}: left as it is") from None
            os.unlink(real)
            return f"removed {shown} (kvmprep had created it)"
        except OSError as exc:
            raise ActionFailed(f"the original of {shown} in {kept} cannot be read ({exc}): left as it is") from None
        like = FileState(True, None, mode & 0o777, now.uid, now.gid, now.label)
        atomic_write(real, data, like=like)
        return f"restored {shown} from {kept}"


@_kind
@dataclass
class InstallPackages(Action):
    """Install packages with the distribution's package manager.

    The journal keeps what the transaction did, not only what was asked for:
    ``added``, every package present after it and not before (dependencies:
    419 packages for 5 named on Debian 12), ``removed`` (conflicts it replaced)
    and ``enabled_units``, the watched units the packages' own scripts enabled
    (Debian's postinst enables libvirtd). ``installed`` (the named ones) stays,
    so journals written before ``added`` existed still undo.
    See remediations/packageops.py."""

    KIND: ClassVar[str] = "install-packages"
    manager: str = ""
    packages: list[str] = field(default_factory=list)
    cmds: list[dict] = field(default_factory=list)  # Cmd dicts, built by the planner

    def summary(self) -> str:
        return f"install {', '.join(self.packages)} ({self.manager})"

    def commands(self) -> list[Cmd]:
        return [Cmd(**c) for c in self.cmds]

    def capture(self, ax) -> dict:
        from .packageops import watched_units

        try:
            every = ax.installed_names()
        except ActionFailed as exc:
            raise ActionFailed(f"{exc.message}: nothing installed (undo could not tell what the "
                               "install adds)") from None
        return {"installed": sorted(ax.installed_packages(self.packages)), "all": sorted(every),
                "units": ax.unit_states(watched_units())}

    def execute(self, ax) -> dict:
        for cmd in self.commands():
            ax.run(cmd)
        after = self._changes(ax, ax.before)
        ax.log(self.done_message(after))
        return after

    def after_failure(self, ax) -> dict | None:
        # apt-get or dnf failing midway may have installed some of the packages
        return self._changes(ax, ax.before)

    def _changes(self, ax, before: dict | None) -> dict:
        """The packages and units as they are now, against ``before``: this run's
        capture, or (undo of an interrupted apply) the journal's, names checked."""
        from .packageops import newly_enabled

        out = {"installed": sorted(ax.installed_packages(self.packages))}
        if not before or "all" not in before:
            return out  # undo meeting an interrupted apply compares with the journal (_recorded)
        try:
            now = ax.installed_names()
        except ActionFailed as exc:
            ax.log(f"{exc.message}: undo will compare with the packages recorded before the install")
            return out
        was = set(before["all"])
        units_now = ax.unit_states(list(before.get("units") or {}))
        out.update(added=sorted(now - was), removed=sorted(was - now), units=units_now,
                   enabled_units=newly_enabled(before.get("units") or {}, units_now))
        return out

    def done_message(self, after: dict) -> str:
        from .packageops import packages, shown

        added = after.get("added")
        if not isinstance(added, list):
            return ""
        if not added:
            return "no package added: everything asked for was installed already"
        pulled = [n for n in added if n not in self.packages]
        parts = [f"added {packages(len(added))} ({len(added) - len(pulled)} asked for, "
                 f"{len(pulled)} pulled in" + (f": {shown(pulled)}" if pulled else "") + ")"]
        if after.get("removed"):
            parts.append(f"the install removed {shown(after['removed'])} (undo does not reinstall them)")
        if after.get("enabled_units"):
            parts.append("the packages enabled these units on their own: "
                         f"{', '.join(after['enabled_units'])} (undo disables them again)")
        return "; ".join(parts)

    def undo(self, ax, before: dict, after: dict) -> str:
        """Disable the units the packages enabled (first: removing the packages takes
        their unit files, and Debian's postrm leaves the links), then remove every
        package the install added in one resolver transaction (--remove-packages),
        or say what is left and the command that removes it."""
        from . import packageops as ops

        added, enabled = self._recorded(ax, before, after)
        said = [ops.disable(ax, enabled)] if enabled else []
        present = ax.installed_names()
        keep = [n for n in added if n in present]
        gone = [n for n in added if n not in present]
        if not keep:
            packages = ("no package was installed by this action" if not added
                        else "none of the packages this action added is installed any more")
        elif ax.remove_packages:
            packages = ops.remove(ax, self.manager, keep, self.packages)
        else:
            packages = ops.leave(ax, self.manager, keep, self.packages)
        if gone and keep:
            packages += f"; no longer installed (removed since the apply), left out: {ops.shown(gone)}"
        return "; ".join([packages] + said)

    def _recorded(self, ax, before: dict, after: dict) -> tuple[list[str], list[str]]:
        """The added packages and the units the packages enabled, from the journal:
        every name in its grammar before any of them reaches a command."""
        from checks import names

        from .undo_rules import BadEntry, package_grammar, state_list, unit_states

        grammar = package_grammar(self.manager)
        try:
            if "added" not in after and "all" in before:  # interrupted while running: compare with now
                checked = {"all": state_list(before.get("all"), grammar, "packages before the install"),
                           "units": unit_states(before.get("units"))}
                after = {**after, **self._changes(ax, checked)}
            if "added" in after:
                added = state_list(after.get("added"), grammar, "added packages")
            else:  # a journal from before "added": the named packages it installed
                was = set(state_list(before.get("installed"), grammar, "packages"))
                now = set(state_list(after.get("installed"), grammar, "packages"))
                added = sorted((now - was) & set(self.packages))
            enabled = state_list(after.get("enabled_units"), names.unit_name, "units the packages enabled")
        except BadEntry as exc:
            raise BadEntry(f"the journal's record of this install is not what kvmprep writes ({exc}): "
                           "nothing removed or disabled") from None
        return added, enabled


@_kind
@dataclass
class LoadModule(Action):
    """Load a kernel module now (or unload and load it again to apply options)."""

    KIND: ClassVar[str] = "load-module"
    module: str = ""
    reload: bool = False

    def summary(self) -> str:
        return f"{'reload' if self.reload else 'load'} kernel module {self.module} now"

    def commands(self) -> list[Cmd]:
        if self.reload:
            return [Cmd(["modprobe", "-r", "--", self.module]), Cmd(["modprobe", "--", self.module])]
        return [Cmd(["modprobe", "--", self.module])]

    def capture(self, ax) -> dict:
        return {"loaded": ax.host.is_dir(f"/sys/module/{self.module.replace('-', '_')}")}

    def undo(self, ax, before: dict, after: dict) -> str:
        if before.get("loaded") or self.reload:
            return f"{self.module} was already loaded before: left loaded"
        ax.run(Cmd(["modprobe", "-r", "--", self.module]))
        return f"unloaded {self.module}"


@_kind
@dataclass
class EnableUnits(Action):
    """Enable (and start, on a live host) systemd units."""

    KIND: ClassVar[str] = "enable-units"
    units: list[str] = field(default_factory=list)
    root: str = "/"
    now: bool = True

    def summary(self) -> str:
        return f"enable{' and start' if self.now else ''} {', '.join(self.units)}"

    def commands(self) -> list[Cmd]:
        if self.root != "/":
            return [Cmd(["systemctl", f"--root={self.root}", "enable", "--", *self.units])]
        return [Cmd(["systemctl", "enable", *(["--now"] if self.now else []), "--", *self.units])]

    def capture(self, ax) -> dict:
        return {"enabled": ax.unit_states(self.units)}

    def undo(self, ax, before: dict, after: dict) -> str:
        was = before.get("enabled", {})
        off = [u for u in self.units if was.get(u) not in ("enabled", "enabled-runtime", "static", "alias")]
        if not off:
            return "the units were enabled before: left enabled"
        if self.root != "/":
            ax.run(Cmd(["systemctl", f"--root={self.root}", "disable", "--", *off]))
        else:
            ax.run(Cmd(["systemctl", "disable", *(["--now"] if self.now else []), "--", *off]))
        return "disabled " + ", ".join(off)


@_kind
@dataclass
class AddKernelArgs(Action):
    """Add kernel command-line arguments to every boot entry with grubby."""

    KIND: ClassVar[str] = "kernel-args"
    args: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return f"add kernel arguments {' '.join(self.args)} (next boot)"

    def commands(self) -> list[Cmd]:
        return [Cmd(["grubby", "--update-kernel", "ALL", "--args", " ".join(self.args)])]

    def undo(self, ax, before: dict, after: dict) -> str:
        names = " ".join(a.split("=", 1)[0] for a in self.args)
        ax.run(Cmd(["grubby", "--update-kernel", "ALL", "--remove-args", names]))
        return f"removed kernel arguments {names}"


@_kind
@dataclass
class AddUserToGroups(Action):
    """Add a user to supplementary groups (a new login picks them up)."""

    KIND: ClassVar[str] = "user-groups"
    user: str = ""
    groups: list[str] = field(default_factory=list)
    root: str = "/"

    def summary(self) -> str:
        return f"add {self.user} to {', '.join(self.groups)} (takes effect at the next login)"

    def _root_opt(self) -> list[str]:
        return [] if self.root == "/" else ["--root", self.root]

    def commands(self) -> list[Cmd]:
        return [Cmd(["usermod", *self._root_opt(), "-aG", ",".join(self.groups), "--", self.user])]

    def capture(self, ax) -> dict:
        return {"groups": sorted(ax.groups_of(self.user))}

    def undo(self, ax, before: dict, after: dict) -> str:
        added = [g for g in self.groups if g not in before.get("groups", [])]
        for g in added:
            ax.run(Cmd(["gpasswd", *(["-Q", self.root] if self.root != "/" else []), "-d", self.user, g]))
        return f"removed {self.user} from {', '.join(added)}" if added else "the user was in those groups before"


@_kind
@dataclass
class RunCommand(Action):
    """A command where no typed action fits; undone by ``undo_argv`` if given."""

    KIND: ClassVar[str] = "run"
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    undo_argv: list[str] | None = None
    title: str = ""
    # Regenerating commands (update-grub, update-initramfs) are undone by
    # running them again once the files they read are restored: last.
    undo_at_end: bool = False

    def summary(self) -> str:
        return self.title or shlex.join(self.argv)

    def commands(self) -> list[Cmd]:
        return [Cmd(list(self.argv), dict(self.env))]

    def undo(self, ax, before: dict, after: dict) -> str:
        if not self.undo_argv:
            raise ActionFailed(f"cannot be reverted automatically: {shlex.join(self.argv)}")
        ax.run(Cmd(list(self.undo_argv), dict(self.env)))
        return "ran " + shlex.join(self.undo_argv)
