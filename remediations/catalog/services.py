"""Services: libvirt's daemons, nftables and the time daemon, enabled (and
started where systemd runs).

Enablement goes through EnableUnits: ``systemctl enable --now`` on a live
systemd host, ``systemctl enable`` on a live host whose PID 1 is not systemd
(systemctl edits the unit links itself there, but cannot start anything) and
``systemctl --root=DIR enable`` on an offline root.
"""

from __future__ import annotations

from checks import units
from checks.catalog.services import MOD_SOCKETS, libvirt_model
from checks.catalog.timesync import _survey

from ..actions import EnableUnits
from ..helpers import check_ctx, enable_units_action, refused_units
from ..registry import PlanCtx, Proposal, after_packages, nothing, remediation

# libvirt's log and lock daemons: the modular daemons need them as the monolithic one does
_MOD_HELPERS = ("virtlogd.socket", "virtlockd.socket")
_ON = ("enabled", "enabled-runtime", "static", "alias", "indirect")


def _systemd_runs(ctx: PlanCtx) -> bool:
    return units.systemd_running(ctx.host)


def _no_pid1_note(units_: list[str], how: str) -> str:
    return (f"systemd is not PID 1 here: {', '.join(units_)} will be enabled (they start at the next boot "
            f"with systemd), but systemctl cannot start them now; {how}")


def _enable(ctx: PlanCtx, wanted: list[str], why: str, start: bool = True) -> EnableUnits | None:
    """EnableUnits for what is missing; on a live host without systemd, enable only (no --now).
    ``wanted`` are unit names (``refused_units`` said so)."""
    action = enable_units_action(ctx, wanted, why)
    if action is None:
        return None
    if not ctx.host.live or not _systemd_runs(ctx) or not start:
        action.now = False
    return action


def _masked(ctx: PlanCtx, names: list[str]) -> list[str]:
    states, _ = units.enabled_states(ctx.host, names)
    return [u for u in names if states.get(u) == "masked"]


# ---------------------------------------------------------------- libvirt

@remediation(
    "enable-libvirt",
    title="Enable and start the libvirt daemon",
    fixes=("services.libvirt",),
    description="systemctl enable --now libvirtd (monolithic model), or the modular daemons' sockets "
                "(virtqemud.socket and its siblings, with virtlogd/virtlockd) where those units are "
                "installed and chosen; the model is decided as services.libvirt decides it. "
                "Offline: systemctl --root=DIR enable.",
)
def enable_libvirt(ctx: PlanCtx) -> Proposal:
    m = libvirt_model(ctx.host)
    if not m.installed:
        return after_packages("libvirt is not installed yet (no libvirtd.service or virtqemud.socket unit "
                              "file); install-virtualization-packages installs it")
    if m.conflict:
        return nothing("both the monolithic libvirtd and the modular virtqemud are enabled: they conflict; "
                       "kvmprep does not choose for you (see the services.libvirt hint)")
    masked = _masked(ctx, [u for u in m.main_units if m.paths.get(u)])
    if masked:
        return nothing(f"{', '.join(masked)} masked by the administrator: kvmprep leaves a mask alone "
                       f"(systemctl unmask {' '.join(masked)}, then plan again)")
    if m.model == "monolithic":
        wanted = ["libvirtd.service"]
        label, daemon = "libvirtd (monolithic)", "libvirtd -d"
    else:
        helpers = [u for u in _MOD_HELPERS if units.unit_path(ctx.host, u)]
        wanted = [u for u in MOD_SOCKETS if m.paths.get(u)] + helpers
        masked = _masked(ctx, wanted)
        wanted = [u for u in wanted if u not in masked]
        label, daemon = "virtqemud (modular)", "virtqemud -d"
    refused = refused_units(wanted, "libvirt's units")
    if refused:
        return nothing(refused)
    why = f"libvirt's {label} model ({m.why}): virsh and the platforms talk to it"
    prop = Proposal()
    action = _enable(ctx, wanted, why)
    if masked:
        prop.notes.append(f"left masked (by the administrator): {', '.join(masked)}")
    live_no_systemd = ctx.host.live and not _systemd_runs(ctx)
    if action is None:
        if live_no_systemd:
            return nothing(f"{label} is enabled; systemd is not PID 1 here, so systemctl cannot start it "
                           f"(start it by hand: {daemon})")
        return nothing(f"{label} is already enabled" + (" and running" if ctx.host.live else ""))
    prop.actions.append(action)
    if not ctx.host.live:
        prop.notes.append("offline root: units are enabled only; they start when that system boots")
    elif live_no_systemd:
        prop.notes.append(_no_pid1_note(action.units, f"start the daemon by hand ({daemon}) or boot with systemd"))
    return prop


# ---------------------------------------------------------------- nftables

@remediation(
    "enable-nftables",
    title="Enable the nftables service",
    fixes=("services.nftables",),
    description="systemctl enable nftables.service so its ruleset loads at boot (and start it now "
                "where systemd runs, unless over SSH or with firewalld running). Never touches the "
                "rules or their policies.",
)
def enable_nftables(ctx: PlanCtx) -> Proposal:
    unit = "nftables.service"
    if not units.unit_path(ctx.host, unit):
        return nothing("nftables is not installed (no nftables.service unit file): install the nftables "
                       "package first")
    if _masked(ctx, [unit]):
        return nothing("nftables.service is masked by the administrator: kvmprep leaves a mask alone "
                       "(systemctl unmask nftables.service, then plan again)")
    prop = Proposal()
    start, why_not = True, ""
    if ctx.host.live and _systemd_runs(ctx):
        if ctx.host.env.get("SSH_CONNECTION"):
            start, why_not = False, "you are connected over SSH"
        elif units.active_state(ctx.host, "firewalld.service") == "active":
            start, why_not = False, "firewalld is running (starting nftables.service replaces its ruleset)"
    if start:
        action = _enable(ctx, [unit], "VMmanager needs nftables.service enabled so its ruleset loads at boot")
    else:
        states, _ = units.enabled_states(ctx.host, [unit])
        action = None
        if states.get(unit) not in _ON:
            action = EnableUnits(units=[unit], root=str(ctx.host.root), now=False,
                                 why="VMmanager needs nftables.service enabled so its ruleset loads at boot")
        note = (f"not started now because {why_not}: starting it loads the configured ruleset "
                "(/etc/nftables.conf or /etc/sysconfig/nftables.conf); review it, then systemctl start nftables")
        if action is None:
            return nothing(f"nftables.service is enabled; {note}")
        prop.notes.append(note)
    if action is None:
        if ctx.host.live and not _systemd_runs(ctx):
            return nothing("nftables.service is enabled; systemd is not PID 1 here, so it cannot be started "
                           "by systemctl")
        return nothing("nftables.service is already enabled" + (" and active" if ctx.host.live else ""))
    prop.actions.append(action)
    if not ctx.host.live:
        prop.notes.append("offline root: enabled only; the ruleset loads when that system boots")
    elif not _systemd_runs(ctx):
        prop.notes.append(_no_pid1_note([unit], "load the ruleset by hand (nft -f /etc/nftables.conf) "
                                                "or boot with systemd"))
    return prop


# ---------------------------------------------------------------- time

def _real_unit(ctx: PlanCtx, names: tuple[str, ...], prefer: str | None = None) -> str | None:
    """The unit to enable among ``names``: a real unit file, never an alias symlink."""
    present = [u for u in names if units.unit_path(ctx.host, u)]
    real = [u for u in present if not ctx.host.readlink(units.unit_path(ctx.host, u) or "")]
    for pool in (real, present):
        if prefer in pool:
            return prefer
        if pool:
            return pool[0]
    return None


def _install_chrony(ctx: PlanCtx, want) -> Proposal:
    """No usable daemon installed: install chrony (as install-tools would) and enable it."""
    chrony = next((d for d in want if d.name == "chrony"), None)
    if chrony is None:
        return nothing(f"{want[0].name} is not installed: install it with the package manager, then plan again")
    if chrony.installed:
        return nothing(f"chrony is installed ({ctx.host.display(chrony.installed)}) but has no chronyd.service "
                       "or chrony.service unit file: reinstall the chrony package")
    from checks.catalog.packages import tool_package

    from .packages import CannotPlan, install_actions

    family = ctx.facts.os.family
    package = tool_package("chrony", family)
    try:
        actions, notes = install_actions(ctx, "enable-time-sync", [package], why="no time daemon the profile accepts is installed; "
                                                             "chrony keeps the clock synchronised")
    except CannotPlan as exc:
        return nothing(f"chrony is not installed, and cannot be installed here: {exc}")
    unit = "chrony.service" if family == "debian" else "chronyd.service"
    live_systemd = ctx.host.live and _systemd_runs(ctx)
    actions.append(EnableUnits(units=[unit], root=str(ctx.host.root), now=live_systemd,
                               why="chrony keeps the clock synchronised (live migration, TLS, clusters)"))
    prop = Proposal(actions=actions, notes=notes)
    prop.notes.append(f"the chrony package ships {unit}; install-tools installs the same package when the "
                      "profile lists chrony (the second install then changes nothing)")
    if not ctx.host.live:
        prop.notes.append("offline root: enabled only; it starts when that system boots")
    elif not live_systemd:
        prop.notes.append(_no_pid1_note([unit], "start chronyd by hand or boot with systemd"))
    return prop


@remediation(
    "enable-time-sync",
    title="Enable the time daemon (chrony)",
    fixes=("time.sync",),
    description="Enable (and start where systemd runs) chronyd.service (EL/SUSE) or chrony.service "
                "(Debian/Ubuntu) when chrony is installed; without chrony, an installed systemd-timesyncd "
                "or ntpd when the profile accepts any daemon; with none installed, install chrony (the "
                "same install action as install-tools) and enable it.",
)
def enable_time_sync(ctx: PlanCtx) -> Proposal:
    container = ctx.host.live and ctx.facts.virt.container
    if container:
        return nothing(f"the clock is the host's: a daemon in this {container} container cannot set it "
                       "(no CAP_SYS_TIME); synchronise the host")
    cctx = check_ctx(ctx, "time.sync")
    wanted = str(cctx.params.get("daemon") or "any").strip().lower() or "any"
    daemons = _survey(cctx)
    want = daemons if wanted == "any" else [d for d in daemons if d.name == wanted or d.name.startswith(wanted)]
    if not want:
        return nothing(f"time.sync's daemon parameter {wanted!r} is not one of any, chrony, "
                       "systemd-timesyncd, ntpd")
    # chrony first, then whatever else the profile accepts that is installed with a unit file
    candidates = [d for d in want if d.installed and any(units.unit_path(ctx.host, u) for u in d.units)]
    enabled = [d for d in candidates if d.enabled]
    chosen = enabled[0] if enabled else (candidates[0] if candidates else None)
    if chosen is None:
        return _install_chrony(ctx, want)
    prefer = "chrony.service" if ctx.facts.os.family == "debian" else None
    unit = chosen.enabled or _real_unit(ctx, chosen.units, prefer)
    refused = refused_units([unit], f"{chosen.name}'s unit")
    if refused:
        return nothing(refused)
    if _masked(ctx, [unit]):
        return nothing(f"{unit} is masked by the administrator: kvmprep leaves a mask alone "
                       f"(systemctl unmask {unit}, then plan again)")
    action = _enable(ctx, [unit], f"{chosen.name} keeps the clock synchronised (live migration, TLS, clusters)")
    live_no_systemd = ctx.host.live and not _systemd_runs(ctx)
    binary = next((b for b in chosen.binaries if ctx.host.exists(b)), chosen.binaries[0])
    if action is None:
        if live_no_systemd:
            return nothing(f"{unit} is enabled; systemd is not PID 1 here, so systemctl cannot start it "
                           f"(start {binary} by hand)")
        return nothing(f"{unit} is already enabled" + (" and active" if ctx.host.live else ""))
    prop = Proposal(actions=[action])
    others = [d.name for d in daemons if d is not chosen and d.enabled]
    if others:
        prop.notes.append(f"{', '.join(others)} is enabled too: two time daemons fight over the clock; "
                          "disable the one you do not want")
    if not ctx.host.live:
        prop.notes.append("offline root: enabled only; it starts when that system boots")
    elif live_no_systemd:
        prop.notes.append(_no_pid1_note([unit], f"start {binary} by hand or boot with systemd"))
    return prop
