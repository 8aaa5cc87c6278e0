"""Time: the clock is synchronised by a time daemon."""

from __future__ import annotations

from ..errors import ProbeError
from ..model import failed, passed, warned
from ..record import Record
from ..registry import Ctx, check
from ..units import enabled_states, systemd_running, unit_path

ENABLED = ("enabled", "enabled-runtime")


class Daemon(Record):
    def __init__(self, name: str, units: tuple[str, ...], binaries: tuple[str, ...], procs: tuple[str, ...],
                 installed: str | None = None, enabled: str | None = None, states: dict[str, str] | None = None,
                 running: list[int] | None = None):
        self.name = name
        self.units = units
        self.binaries = binaries
        self.procs = procs
        self.installed = installed  # where it was seen
        self.enabled = enabled  # the unit that is enabled
        self.states = {} if states is None else states
        self.running = [] if running is None else running

    @property
    def main_unit(self) -> str:
        return self.units[0]


def _daemons() -> list[Daemon]:
    return [
        Daemon("chrony", ("chronyd.service", "chrony.service"),
               ("/usr/sbin/chronyd", "/sbin/chronyd"), ("chronyd",)),
        Daemon("systemd-timesyncd", ("systemd-timesyncd.service",),
               ("/lib/systemd/systemd-timesyncd", "/usr/lib/systemd/systemd-timesyncd"),
               ("systemd-timesyncd", "systemd-timesyn")),
        Daemon("ntpd", ("ntpd.service", "ntp.service", "ntpsec.service"),
               ("/usr/sbin/ntpd", "/sbin/ntpd"), ("ntpd",)),
    ]


def _survey(ctx: Ctx) -> list[Daemon]:
    daemons = _daemons()
    for d in daemons:
        present = [u for u in d.units if unit_path(ctx.host, u)]
        if present:
            d.installed = unit_path(ctx.host, present[0])
        else:
            d.installed = next((b for b in d.binaries if ctx.host.exists(b)), None)
        if present:
            try:
                states, _ = enabled_states(ctx.host, present)
            except ProbeError:  # no systemctl here: look for the install symlinks
                states = {u: ("enabled" if any(ctx.host.exists(f"{w}/{u}") or ctx.host.readlink(f"{w}/{u}")
                                               for w in ctx.host.glob("/etc/systemd/system", "*.wants"))
                              else "disabled") for u in present}
            d.states = {u: s for u, s in states.items() if u in present}
            d.enabled = next((u for u, s in d.states.items() if s in ENABLED), None)
            # prefer the real unit over an alias when naming it
            real = [u for u in present if not ctx.host.readlink(unit_path(ctx.host, u) or "")]
            if real:
                d.units = tuple(dict.fromkeys(real + list(d.units)))
        if ctx.host.live:
            d.running = [p.pid for p in ctx.facts.running(*d.procs)]
    return daemons


def _describe(ctx: Ctx, d: Daemon) -> tuple[str, str]:
    bits = ["installed"]
    if d.states:
        bits.append(", ".join(f"{u} {s}" for u, s in d.states.items()))
    if ctx.host.live:
        bits.append(f"running (pid {', '.join(map(str, d.running[:3]))})" if d.running else "not running")
    return ctx.show(d.installed or d.name), ", ".join(bits)


def _install_hint(ctx: Ctx, want: list[Daemon], installed: list[Daemon]) -> str:
    offline = not ctx.host.live
    systemctl = f"systemctl --root={ctx.host.root} enable" if offline else "systemctl enable --now"
    usable = [d for d in installed if d in want]
    if usable:
        cmd = f"{systemctl} {usable[0].main_unit}"
    else:
        fam = ctx.facts.os.family
        pm = ctx.facts.os.package_manager
        unit = "chrony.service" if fam == "debian" else "chronyd.service"
        install = {"apt": "apt-get install -y chrony", "dnf": "dnf install -y chrony",
                   "yum": "yum install -y chrony", "zypper": "zypper install -y chrony"}.get(pm or "", "install chrony")
        if offline:
            cmd = f"{install} (inside the root, e.g. with chroot), then {systemctl} {unit}"
        else:
            cmd = f"{install} && {systemctl} {unit}"
    if ctx.host.live and not systemd_running(ctx.host):
        d = usable[0] if usable else None
        binary = (next((b for b in d.binaries if ctx.host.exists(b)), d.binaries[0]) if d
                  else "chronyd")
        cmd += f" (systemd is not running here, so also start {binary} directly)"
    return cmd


@check(
    "time.sync",
    title="Clock synchronised (chrony / NTP)",
    why="Live migration, TLS certificates, cluster membership and logs need the hosts' clocks to agree; "
        "guests inherit the host's time.",
    source="VMmanager (time synchronised with chrony); systemd timedatectl (NTPSynchronized from adjtimex)",
    remediations=("enable-time-sync",),
    params={"daemon": "any"},
)
def time_sync(ctx: Ctx):
    wanted = str(ctx.params["daemon"]).strip().lower() or "any"
    daemons = _survey(ctx)
    if wanted in ("any", ""):
        want = daemons
    else:
        want = [d for d in daemons if d.name == wanted or d.name.startswith(wanted)]
        if not want:
            raise ProbeError("parameter daemon", f"{wanted!r} is not one of any, chrony, systemd-timesyncd, ntpd")
    want_text = "a time daemon (chrony, systemd-timesyncd or ntpd)" if want == daemons else want[0].name
    installed = [d for d in daemons if d.installed]
    ev = [_describe(ctx, d) for d in installed]
    hint = _install_hint(ctx, want, installed)
    good_enabled = [d for d in want if d.enabled]
    good_running = [d for d in want if d.running]
    other = [d for d in installed if d not in want and (d.enabled or d.running)]
    other_text = f" ({', '.join(d.name for d in other)} is used instead)" if other else ""

    if not ctx.host.live:
        note = "offline root: runtime synchronisation cannot be checked"
        if good_enabled:
            return passed(f"{good_enabled[0].name} is enabled ({good_enabled[0].enabled}); {note}", *ev)
        if any(d.installed for d in want):
            d = next(d for d in want if d.installed)
            return failed(f"{d.name} is installed but not enabled{other_text}; {note}", *ev, hint=hint)
        if not installed:
            return failed(f"no time daemon installed (looked for chrony, systemd-timesyncd, ntpd); {note}",
                          hint=hint)
        return failed(f"{want_text} is not installed{other_text}; {note}", *ev, hint=hint)

    from ..timex import read_clock_state

    clock = read_clock_state()
    ev.insert(0, ("adjtimex(2)", clock.summary))
    if any(d.name == "systemd-timesyncd" for d in installed):
        flag = "/run/systemd/timesync/synchronized"
        ev.append((ctx.show(flag), "present" if ctx.host.exists(flag) else "missing"))

    def daemon_state() -> str:
        if good_running:
            return f"{good_running[0].name} is running"
        if good_enabled:
            return f"{good_enabled[0].name} is enabled but not running"
        if any(d.installed for d in want):
            return f"{next(d for d in want if d.installed).name} is installed but neither enabled nor running"
        if not installed:
            return "no time daemon is installed"
        return f"{want_text} is not installed{other_text}"

    container = ctx.facts.virt.container
    if container and not clock.synchronized:
        # the kernel's clock is the host's: a container cannot set it (no CAP_SYS_TIME),
        # so a daemon in here cannot fix it and kvmprep offers nothing in here
        state = "is not synchronised" if clock.synchronized is False else \
            f"cannot be read ({clock.error})"
        return warned(f"the clock is the host's, and it {state}: this {container} container cannot set "
                      f"or synchronise it ({daemon_state()} in the container)", *ev,
                      hint="synchronise the clock on the container's host (chrony there)")
    if clock.synchronized is None:
        if good_running:
            return warned(f"{daemon_state()}, but the kernel's synchronisation state cannot be read "
                          f"({clock.error})", *ev)
        return failed(f"{daemon_state()}; the kernel's synchronisation state cannot be read ({clock.error})",
                      *ev, hint=hint)
    if clock.synchronized:
        if good_running:
            return passed(f"clock synchronised; {daemon_state()}", *ev)
        if want != daemons:
            return warned(f"clock synchronised, but not by {want_text}: {daemon_state()}", *ev, hint=hint)
        if ctx.facts.virt.container:
            return passed(f"clock synchronised (by the {ctx.facts.virt.container} container's host); "
                          "no time daemon runs in the container", *ev)
        return warned(f"clock synchronised now, but {daemon_state()}: nothing keeps it in sync here", *ev,
                      hint=hint)
    if good_running:
        return warned(f"clock not synchronised yet although {daemon_state()} (servers unreachable, or it "
                      "just started)", *ev,
                      hint="chronyc sources -v (or timedatectl timesync-status) shows which servers answer")
    return failed(f"clock not synchronised: {daemon_state()}", *ev, hint=hint)

