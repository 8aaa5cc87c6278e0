"""Small builders shared by the remediation planners."""

from __future__ import annotations

from checks import units
from checks.kernel import norm_module

from .actions import EnableUnits, WriteFile
from .fileops import file_state
from .registry import PlanCtx


def write_file(ctx: PlanCtx, path: str, content: str, why: str, mode: int = 0o644,
               reboot: bool = False) -> WriteFile | None:
    """A WriteFile action, or None when the file already holds exactly this."""
    real = ctx.host.path(path)
    st = file_state(real)
    old = None
    if st.exists:
        with open(real, "rb") as fh:
            old = fh.read().decode("utf-8", "replace")
        if old == content:
            return None
    return WriteFile(path=path, content=content, mode=mode, why=why, reboot=reboot,
                     original_sha256=st.sha256 if st.exists else None, old_text=old)


def current_text(ctx: PlanCtx, path: str) -> str | None:
    return ctx.host.read_text(path)


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
    """EnableUnits for those of ``wanted`` that are not enabled (and, live, running)."""
    states, _ = units.enabled_states(ctx.host, wanted)
    todo = [u for u in wanted if states.get(u) not in ("enabled", "enabled-runtime", "static", "alias", "indirect")]
    if ctx.host.live and units.systemd_running(ctx.host):
        todo += [u for u in wanted if u not in todo and units.active_state(ctx.host, u) != "active"]
    if not todo:
        return None
    return EnableUnits(units=todo, root=str(ctx.host.root), now=ctx.host.live, why=why)


def check_ctx(ctx: PlanCtx, check_id: str):
    """The ``Ctx`` a check function gets (its params: defaults plus the profile's), so a
    planner can reuse a check's own helpers and decide exactly as the check does."""
    from checks.registry import Ctx, all_checks

    spec = all_checks()[check_id]
    return Ctx(ctx.host, ctx.facts, {**spec.params, **(ctx.params.get(check_id) or {})}, spec)


def text_for_edit(ctx: PlanCtx, path: str) -> tuple[str | None, str | None]:
    """(text, problem) of a file a planner edits line by line: None text when it is absent;
    a problem when it is not UTF-8 (rewriting it would change bytes on other lines)."""
    data = ctx.host.read_bytes(path)
    if data is None:
        return None, None
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, (f"{ctx.host.display(path)} is not UTF-8 text (byte {exc.start}): "
                      "kvmprep edits only files it can rewrite byte for byte; edit it by hand")
