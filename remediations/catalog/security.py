"""SELinux: disabled (or permissive) in /etc/selinux/config, now and at boot.

Only the SELINUX= line libselinux reads (the first one) changes; every other
line (comments, SELINUXTYPE, blank lines, line endings) stays byte for byte.
``setenforce 0`` switches a running, enforcing system to permissive now; on
RHEL 9+/Fedora the kernel argument selinux=0 is what really disables it.
"""

from __future__ import annotations

from checks.bootcmdline import cmdline_value
from checks.catalog.security import _CONFIG, _needs_kernel_arg, _next_boot_args, _selinux_config

from ..actions import AddKernelArgs, RunCommand
from ..helpers import check_ctx, text_for_edit, write_file
from ..registry import PlanCtx, Proposal, nothing, remediation


def _set_mode(text: str, mode: str) -> str:
    """The config with its first SELINUX= line saying ``mode`` (appended when there is none)."""
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#") or "=" not in s:
            continue
        key = s.partition("=")[0]
        if key.strip() == "SELINUX":
            body = line.rstrip("\r\n")
            ending = line[len(body):]
            indent = body[: len(body) - len(body.lstrip())]
            lines[i] = f"{indent}SELINUX={mode}{ending}"
            return "".join(lines)
    if text and not text.endswith("\n"):
        text += "\n"
    return text + f"SELINUX={mode}\n"


def _runtime_enforcing(ctx: PlanCtx) -> bool:
    return ctx.host.live and ctx.host.read_first_line("/sys/fs/selinux/enforce") == "1"


def _setenforce(ctx: PlanCtx, prop: Proposal) -> None:
    """setenforce 0 when the running system enforces (runtime only; undo: setenforce 1)."""
    if _runtime_enforcing(ctx):
        prop.actions.append(RunCommand(argv=["setenforce", "0"], undo_argv=["setenforce", "1"], runtime=True,
                                       title="switch SELinux to permissive now (setenforce 0)",
                                       why="SELinux enforces now; setenforce 0 makes it permissive until reboot"))
    elif not ctx.host.live and prop.actions:
        prop.notes.append("setenforce 0: skipped, an offline root has no running kernel")


def _config_action(ctx: PlanCtx, mode: str, reboot: bool):
    text = text_for_edit(ctx, _CONFIG)
    if text is None:
        return None, "missing"
    current, said = _selinux_config(text)
    if current == mode:
        return None, said
    action = write_file(ctx, _CONFIG, _set_mode(text, mode), reboot=reboot,
                        why=f"SELINUX={mode} in {_CONFIG} (was: {said}); the other lines stay as they are")
    return action, said


@remediation(
    "disable-selinux",
    title="Disable SELinux",
    fixes=("security.selinux",),
    description="SELINUX=disabled in /etc/selinux/config (every other line untouched), setenforce 0 now "
                "when enforcing, and on RHEL 9+/Fedora the kernel argument selinux=0 via grubby; "
                "complete after a reboot.",
)
def disable_selinux(ctx: PlanCtx) -> Proposal:
    prop = Proposal()
    action, said = _config_action(ctx, "disabled", reboot=True)
    if action:
        prop.actions.append(action)
    if _needs_kernel_arg(ctx.facts.os):
        nb = _next_boot_args(check_ctx(ctx, "security.selinux"))
        if nb is not None:
            sets, _ = nb
            has_arg = bool(sets) and all(cmdline_value(t, "selinux") == "0" for t in sets)
        else:
            has_arg = ctx.facts.kernel.param("selinux") == "0"
        if not has_arg:
            os_name = ctx.facts.os.name or ctx.facts.os.id
            if ctx.host.live:
                prop.actions.append(AddKernelArgs(
                    args=["selinux=0"], reboot=True,
                    why=f"{os_name}: SELINUX=disabled alone no longer disables SELinux; the kernel argument does"))
            else:
                prop.notes.append(f"{os_name} also needs the kernel argument selinux=0: grubby acts on the "
                                  "system it runs on, so run on that system once booted: "
                                  "grubby --update-kernel ALL --args selinux=0")
    _setenforce(ctx, prop)
    if not prop.actions:
        if ctx.host.live and ctx.host.read_first_line("/sys/fs/selinux/enforce") == "0":
            return nothing(f"already disabled for the next boot ({_CONFIG}: {said}); permissive until the reboot")
        reason = ("SELinux is not configured here (no /etc/selinux/config)" if said == "missing"
                  else f"already disabled ({_CONFIG}: {said})")
        if prop.notes:
            reason += "; " + "; ".join(prop.notes)
        return nothing(reason)
    return prop


@remediation(
    "selinux-permissive",
    title="Make SELinux permissive",
    fixes=("security.selinux",),
    description="SELINUX=permissive in /etc/selinux/config (every other line untouched) and "
                "setenforce 0 now when enforcing; a config saying disabled is left alone.",
)
def selinux_permissive(ctx: PlanCtx) -> Proposal:
    prop = Proposal()
    text = text_for_edit(ctx, _CONFIG)
    current, said = _selinux_config(text)
    if current not in (None, "disabled", "permissive"):  # enforcing, or unusable
        action = write_file(ctx, _CONFIG, _set_mode(text or "", "permissive"),
                            why=f"SELINUX=permissive in {_CONFIG} (was: {said}); the other lines stay as they are")
        if action:
            prop.actions.append(action)
    _setenforce(ctx, prop)
    if not prop.actions:
        if current is None:
            return nothing("SELinux is not configured here (no /etc/selinux/config)")
        return nothing(f"not enforcing ({_CONFIG}: {said}"
                       + ("; permissive now)" if ctx.host.live and ctx.host.exists("/sys/fs/selinux/enforce") else ")"))
    return prop
