"""Services: libvirt's daemons and nftables, enabled (and running on a live host).

The unit files present decide what is installed and which libvirt service
model applies (monolithic libvirtd vs the modular virt*d daemons); enablement
comes from ``systemctl --root=DIR is-enabled``, which works offline and
without systemd as PID 1. Whether something runs is asked of systemd only
when systemd runs; otherwise the process table tells.
"""

from __future__ import annotations

from .. import units
from ..model import failed, passed, warned
from ..record import Record
from ..registry import Ctx, check
from .packages import install_command

# is-enabled states that mean "starts at boot"
ON_STATES = {"enabled", "enabled-runtime", "alias", "generated"}

MONO_UNITS = ("libvirtd.service", "libvirtd.socket")
MOD_MAIN = ("virtqemud.socket", "virtqemud.service")
# the other modular drivers: networks, storage pools, host devices, filters, secrets, interfaces
MOD_DRIVERS = ("virtqemud", "virtnetworkd", "virtstoraged", "virtnodedevd", "virtnwfilterd",
               "virtsecretd", "virtinterfaced")
MOD_SOCKETS = tuple(f"{d}{s}.socket" for d in MOD_DRIVERS for s in ("", "-ro", "-admin"))
MOD_COMPANIONS = tuple(f"{d}.socket" for d in MOD_DRIVERS[1:])


def _on(state: str | None) -> bool:
    return state in ON_STATES


def _states_text(states: dict[str, str], names) -> str:
    return ", ".join(f"{u} {states[u]}" for u in names if states.get(u, "not-found") != "not-found")


def _unit_dirs_text(ctx: Ctx) -> str:
    return ", ".join(ctx.show(d) for d in units.UNIT_DIRS)


def _is_active(ctx: Ctx, names) -> tuple[list[str], list[tuple[str, str]]]:
    """Units among ``names`` systemd calls active, and the evidence."""
    active, ev = [], []
    for u in names:
        state = units.active_state(ctx.host, u)
        ev.append((f"systemctl is-active {u}", state or "unknown"))
        if state == "active":
            active.append(u)
    return active, ev


def _preset_ev(ctx: Ctx, presets: list[str]) -> list[tuple[str, str]]:
    out = []
    for p in presets:
        path, _, line = p.partition(": ")
        out.append((ctx.show(path), line))
    return out


def _not_pid1_ev(ctx: Ctx):
    return (ctx.show("/run/systemd/system"), "missing: systemd is not PID 1 here")


class LibvirtModel(Record):
    """Which libvirt service model a root uses, decided from its unit files.

    Shared by the check services.libvirt and the remediation enable-libvirt.
    ``model`` is None when neither libvirtd.service nor virtqemud is installed;
    ``conflict`` when both models are enabled at once.
    """

    def __init__(self, paths: dict[str, str | None], model: str | None = None, why: str = "",
                 states: dict[str, str] | None = None, source: str = "", present: list[str] | None = None,
                 presets: list[str] | None = None, mono_on: bool = False, mod_on: bool = False,
                 conflict: bool = False):
        self.paths = paths
        self.model = model  # "monolithic" | "modular" | None
        self.why = why
        self.states = {} if states is None else states
        self.source = source
        self.present = [] if present is None else present
        self.presets = [] if presets is None else presets  # preset lines enabling virtqemud (when they decided)
        self.mono_on = mono_on
        self.mod_on = mod_on
        self.conflict = conflict

    @property
    def installed(self) -> bool:
        return self.model is not None or self.conflict

    @property
    def main_units(self) -> tuple[str, ...]:
        return MONO_UNITS if self.model == "monolithic" else MOD_MAIN


def libvirt_model(host) -> LibvirtModel:
    """Decide the libvirt service model of a root exactly as services.libvirt does."""
    names = MONO_UNITS + MOD_MAIN + tuple(u for u in MOD_SOCKETS if u not in MOD_MAIN)
    paths = {u: units.unit_path(host, u) for u in names}
    m = LibvirtModel(paths)
    has_mono = bool(paths["libvirtd.service"])
    has_mod = bool(paths["virtqemud.socket"] or paths["virtqemud.service"])
    if not has_mono and not has_mod:
        return m
    m.present = [u for u in names if paths[u]]
    m.states, m.source = units.enabled_states(host, m.present)
    m.mono_on = any(_on(m.states.get(u)) for u in MONO_UNITS)
    m.mod_on = any(_on(m.states.get(u)) for u in MOD_MAIN)
    if has_mono and has_mod:
        presets = units.presets_enabling(host, "virtqemud")
        if m.mono_on and m.mod_on:
            m.conflict, m.presets = True, presets
            return m
        if m.mono_on or m.mod_on:
            m.model, m.why = ("monolithic" if m.mono_on else "modular"), "the one enabled"
        elif presets:
            m.model, m.why, m.presets = "modular", "the distribution's preset enables virtqemud", presets
        else:
            m.model, m.why = "monolithic", "libvirtd.service is installed and no preset enables virtqemud"
    else:
        m.model = "monolithic" if has_mono else "modular"
        m.why = "only its unit files are installed"
    return m


@check(
    "services.libvirt",
    title="libvirt daemon enabled and running",
    why="virsh, virt-install and every platform talk to libvirt's daemon: monolithic libvirtd, or "
        "virtqemud and its sibling daemons in the modular model (EL 9+, Fedora, SLES 15 SP6+).",
    source="QEMU/KVM guide (systemctl enable --now libvirtd); libvirt daemons documentation",
    remediations=("enable-libvirt", "install-virtualization-packages"),
)
def libvirt_service(ctx: Ctx):
    host = ctx.host
    m = libvirt_model(host)
    paths = m.paths
    if not m.installed:
        cmd = install_command(ctx.facts.os, ["libvirt"] if ctx.facts.os.family == "rhel" else
                              ["libvirt-daemon-system"] if ctx.facts.os.family == "debian" else
                              ["libvirt-daemon"])
        return failed("libvirt is not installed: no libvirtd.service or virtqemud.socket unit file",
                      (_unit_dirs_text(ctx), "no libvirtd.service, virtqemud.socket, virtqemud.service"),
                      hint=cmd or "install the libvirt daemon package")
    present, states = m.present, m.states
    ev = [(m.source, _states_text(states, present))]
    mono_on, mod_on = m.mono_on, m.mod_on

    # which service model applies
    if m.conflict:
        presets = m.presets
        keep, drop = (("modular", "libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket")
                      if presets else ("monolithic", "virtqemud.service virtqemud.socket"))
        return warned("both the monolithic libvirtd and the modular virtqemud are enabled: they "
                      "conflict (virtqemud.service has Conflicts=libvirtd.service)", *ev,
                      *_preset_ev(ctx, presets),
                      hint=f"keep the {keep} model: systemctl disable --now {drop}")
    model, why = m.model, m.why
    if m.presets:
        ev += _preset_ev(ctx, m.presets)

    if model == "monolithic":
        main_units, enabled = MONO_UNITS, mono_on
        enable_hint = "systemctl enable --now libvirtd"
        start_hint = "systemctl start libvirtd"
        daemons = ("libvirtd",)
        label = "libvirtd (monolithic)"
    else:
        main_units, enabled = MOD_MAIN, mod_on
        sockets = [u for u in MOD_SOCKETS if paths.get(u) and not _on(states.get(u))]
        enable_hint = "systemctl enable --now " + " ".join(sockets or ["virtqemud.socket"])
        start_hint = "systemctl start virtqemud.socket"
        daemons = ("virtqemud",)
        label = "virtqemud (modular)"
    masked = [u for u in main_units if states.get(u) == "masked"]
    if masked:
        return failed(f"{label} is masked: {', '.join(masked)} cannot start", *ev,
                      hint=f"systemctl unmask {' '.join(masked)} && {enable_hint}")

    running_note, run_ev, running = "", [], None
    if host.live:
        if units.systemd_running(host):
            active, run_ev = _is_active(ctx, main_units)
            running = bool(active)
        else:
            procs = ctx.facts.running(*daemons)
            running = bool(procs)
            run_ev = [_not_pid1_ev(ctx),
                      ("/proc/*/comm", ", ".join(f"{p.comm} (pid {p.pid})" for p in procs)
                       or f"no {'/'.join(daemons)} process")]
            running_note = "systemd is not PID 1 here, "

    if not enabled:
        now = ""
        if running:
            now = ", although it runs now"
        return failed(f"{label} is installed but not enabled: it will not start at boot{now} "
                      f"(model: {why})", *ev, *run_ev, hint=enable_hint)

    companions_off = []
    if model == "modular":
        companions_off = [u for u in MOD_COMPANIONS if paths.get(u) and not _on(states.get(u))]

    if not host.live:
        detail = f"{label} is enabled ({why}); offline root: nothing can be running there"
    elif running_note:
        if running:
            detail = f"{label} is enabled and its daemon runs ({running_note}the process table tells)"
        else:
            return warned(f"{label} is enabled, but {running_note}and no {'/'.join(daemons)} process runs: "
                          "nothing starts it on this system", *ev, *run_ev,
                          hint=f"boot with systemd, or start it by hand: {daemons[0]} -d")
    elif running:
        detail = f"{label} is enabled and active"
    else:
        return failed(f"{label} is enabled but not running", *ev, *run_ev, hint=start_hint)

    if companions_off:
        return warned(f"{detail}; but {', '.join(companions_off)} not enabled: virtual networks, storage "
                      "pools or host devices will not work", *ev, *run_ev,
                      hint="systemctl enable --now " + " ".join(companions_off))
    return passed(detail, *ev, *run_ev)


@check(
    "services.nftables",
    title="nftables service enabled",
    why="VMmanager manages the node's firewall through nftables and needs nftables.service "
        "installed and enabled so its ruleset loads at boot.",
    source="VMmanager KVM node requirements (nftables enabled on AlmaLinux)",
    remediations=("enable-nftables",),
)
def nftables_service(ctx: Ctx):
    host = ctx.host
    unit = "nftables.service"
    path = units.unit_path(host, unit)
    if not path:
        return failed("nftables is not installed: no nftables.service unit file",
                      (_unit_dirs_text(ctx), "no nftables.service"),
                      hint=install_command(ctx.facts.os, ["nftables"]) or "install the nftables package")
    states, source = units.enabled_states(host, [unit])
    state = states[unit]
    ev = [(ctx.show(path), "unit file present"), (source, state)]
    if state == "masked":
        return failed("nftables.service is masked: the ruleset never loads", *ev,
                      hint="systemctl unmask nftables.service && systemctl enable --now nftables")
    if not _on(state):
        return failed(f"nftables.service is installed but not enabled (is-enabled: {state}): the ruleset "
                      "does not load at boot", *ev,
                      hint="systemctl enable --now nftables")
    if not host.live:
        return passed("nftables.service is enabled; offline root: nothing can be running there", *ev)
    if not units.systemd_running(host):
        return passed("nftables.service is enabled; systemd is not PID 1 here, so whether the ruleset "
                      "was loaded cannot be asked", *ev, _not_pid1_ev(ctx))
    active, run_ev = _is_active(ctx, [unit])
    if not active:
        return warned("nftables.service is enabled but not active: its ruleset is not loaded now",
                      *ev, *run_ev, hint="systemctl start nftables")
    return passed("nftables.service is enabled and active", *ev, *run_ev)
