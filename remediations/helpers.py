"""Small builders shared by the remediation planners."""

from __future__ import annotations

from checks import names, units
from checks.kernel import norm_module

from .actions import EnableUnits, WriteFile
from .fileops import TEXT_ERRORS, decode_text, encode_text, sha256
from .registry import PlanCtx


def write_file(ctx: PlanCtx, path: str, content: str, why: str, mode: int = 0o644,
               reboot: bool = False) -> WriteFile | None:
    """A WriteFile action, or None when the file already holds exactly this.
    ``content`` is text as ``text_for_edit`` gives it: a byte that is not UTF-8 is a
    lone surrogate and is written back as that same byte (fileops.encode_text)."""
    data = ctx.host.read_bytes(path)
    if data is not None and data == encode_text(content):
        return None
    # the sha of the very bytes the diff shows: the file is read once
    return WriteFile(path=path, content=content, mode=mode, why=why, reboot=reboot,
                     original_sha256=sha256(data) if data is not None else None,
                     old_text=decode_text(data) if data is not None else None)


def current_text(ctx: PlanCtx, path: str) -> str | None:
    """A file's text for an edit (see ``text_for_edit``)."""
    return text_for_edit(ctx, path)


def modules_listed_for_boot(ctx: PlanCtx) -> set[str]:
    """Module names in modules-load.d (and Debian's /etc/modules)."""
    names: set[str] = set()
    files = []
    for d in ("/etc/modules-load.d", "/run/modules-load.d", "/usr/lib/modules-load.d", "/lib/modules-load.d"):
        files += ctx.host.glob(d, "*.conf")
    files.append("/etc/modules")
    for f in files:
        for line in (ctx.host.read_text(f) or "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(norm_module(line.split()[0]))
    return names


def enable_units_action(ctx: PlanCtx, wanted: list[str], why: str) -> EnableUnits | None:
    """EnableUnits for those of ``wanted`` that are not enabled (and, live, running).
    Every name must be a unit name (``refused_units`` first): BadName otherwise."""
    for u in wanted:
        names.unit_name(u)  # never an option or a path for systemctl
    states, _ = units.enabled_states(ctx.host, wanted)
    todo = [u for u in wanted if states.get(u) not in ("enabled", "enabled-runtime", "static", "alias", "indirect")]
    if ctx.host.live and units.systemd_running(ctx.host):
        todo += [u for u in wanted if u not in todo and units.active_state(ctx.host, u) != "active"]
    if not todo:
        return None
    return EnableUnits(units=todo, root=str(ctx.host.root), now=ctx.host.live, why=why)


def refused_units(wanted: list[str], source: str) -> str | None:
    """Why nothing is enabled when one of ``wanted`` is not a unit name (naming it and
    ``source``, where it came from), else None."""
    _, bad = names.partition(names.unit_name, wanted)
    return "; ".join(f"{source}: {b}: nothing enabled" for b in bad) or None


def check_ctx(ctx: PlanCtx, check_id: str):
    """The ``Ctx`` a check function gets (its params: defaults plus the profile's), so a
    planner can reuse a check's own helpers and decide exactly as the check does."""
    from checks.registry import Ctx, all_checks

    spec = all_checks()[check_id]
    return Ctx(ctx.host, ctx.facts, {**spec.params, **(ctx.params.get(check_id) or {})}, spec)


def text_for_edit(ctx: PlanCtx, path: str) -> str | None:
    """The text of a file a planner edits line by line (None when it is absent): UTF-8,
    each byte that is not as a lone surrogate (``fileops.decode_text``), so that writing
    the edited text gives back every byte of the lines the edit does not change."""
    return ctx.host.read_text(path, errors=TEXT_ERRORS)
