"""Security: secure guest technologies, SELinux, AppArmor."""

from __future__ import annotations

from .. import bootcmdline
from ..bootcmdline import cmdline_value
from ..errors import NeedsRoot, ProbeError
from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check

_YES = ("y", "1", "on")  # kernel bool parameters; the kernel matches a prefix


def _on(value: str | None) -> bool:
    return bool(value) and value.strip().lower().startswith(_YES)


# ---------------------------------------------------------------------------
# Secure guests (AMD SEV / Intel TDX / IBM Secure Execution)
# ---------------------------------------------------------------------------

@check(
    "security.secure-guest",
    title="Secure guest support (AMD SEV, Intel TDX, IBM Secure Execution)",
    why="Confidential guests (memory encrypted against the host) need the CPU feature, firmware support and the KVM switch for it.",
    source="libvirt virt-host-validate (secure guest support)",
)
def secure_guest(ctx: Ctx):
    host, facts = ctx.host, ctx.facts
    cpu = facts.cpu
    flags = cpu.flags
    if not cpu.raw_keys and not host.is_dir("/sys/module"):
        return skipped("no /proc/cpuinfo or /sys/module in the root: secure guest support belongs to the running kernel")
    enabled: list[str] = []
    capable: list[tuple[str, str]] = []  # (what, hint)
    ev: list = []

    # AMD SEV, SEV-ES, SEV-SNP
    amd = {name: facts.module_param("kvm_amd", name) for name in ("sev", "sev_es", "sev_snp")}
    for name, value in amd.items():
        if value is not None:
            ev.append((ctx.show(f"/sys/module/kvm_amd/parameters/{name}"), value))
    labels = {"sev": "AMD SEV", "sev_es": "AMD SEV-ES", "sev_snp": "AMD SEV-SNP"}
    dev_sev = host.exists("/dev/sev")
    if any(v is not None for v in amd.values()) or flags & {"sev", "sev_es", "sev_snp"}:
        ev.append((ctx.show("/dev/sev"), "present" if dev_sev else "missing"))
    for name in ("sev", "sev_es", "sev_snp"):
        label = labels[name]
        if _on(amd[name]):
            if dev_sev:
                enabled.append(label)
            elif name == "sev":
                capable.append((f"{label} (kvm_amd.sev is on but /dev/sev is missing: off in firmware "
                                "or the ccp driver is not loaded)",
                                "enable SEV (SMEE and SEV ASIDs) in the BIOS/UEFI setup and load the ccp module"))
        elif name in flags:
            capable.append((f"{label} (the CPU has it, kvm_amd.{name} is off)",
                            f"add kvm_amd.{name}=1 to the kernel command line "
                            f"(or 'options kvm_amd {name}=1' in /etc/modprobe.d/kvm.conf) and reboot"))
    sev_flags = sorted(flags & {"sev", "sev_es", "sev_snp"})
    if sev_flags:
        ev.append((ctx.show("/proc/cpuinfo"), "flags: " + " ".join(sev_flags)))

    # Intel TDX
    tdx = facts.module_param("kvm_intel", "tdx")
    if tdx is not None:
        ev.append((ctx.show("/sys/module/kvm_intel/parameters/tdx"), tdx))
    if _on(tdx):
        enabled.append("Intel TDX")
    elif "tdx_host_platform" in flags:
        ev.append((ctx.show("/proc/cpuinfo"), "flags: tdx_host_platform"))
        capable.append(("Intel TDX (the platform has it, kvm_intel.tdx is off)",
                        "add kvm_intel.tdx=1 to the kernel command line and reboot"))

    # IBM Secure Execution (s390 Protected Virtualization)
    facilities = cpu.raw_keys.get("facilities", "").split()
    uv = host.is_dir("/sys/firmware/uv")
    if "158" in facilities or uv:
        ev.append((ctx.show("/sys/firmware/uv"), "present" if uv else "missing"))
        if "158" in facilities:
            ev.append((ctx.show("/proc/cpuinfo"), "facility 158 (ultravisor)"))
        pv_host = host.read_first_line("/sys/firmware/uv/prot_virt_host")
        arg = facts.kernel.param("prot_virt")
        cmd_src = ctx.show(facts.kernel.cmdline_source or "/proc/cmdline")
        ev.append((cmd_src, f"prot_virt={arg}" if arg is not None else "no prot_virt argument"))
        if pv_host is not None:
            ev.append((ctx.show("/sys/firmware/uv/prot_virt_host"), pv_host))
        on = _on(pv_host) if pv_host is not None else (uv and _on(arg))
        if on:
            enabled.append("IBM Secure Execution")
        elif not uv:
            capable.append(("IBM Secure Execution (the machine has the ultravisor, this kernel does not support it)",
                            "boot a kernel built with KVM protected virtualization support, with prot_virt=1"))
        else:
            capable.append(("IBM Secure Execution (ultravisor present, prot_virt=1 missing)",
                            "add prot_virt=1 to the kernel command line (zipl) and reboot"))

    if enabled:
        extra = f"; also capable: {'; '.join(c for c, _ in capable)}" if capable else ""
        return passed(f"enabled: {', '.join(enabled)}{extra}", *ev)
    if capable:
        return warned(f"capable but not enabled: {'; '.join(c for c, _ in capable)}", *ev,
                      hint="; ".join(dict.fromkeys(h for _, h in capable)))
    if not ev:
        ev.append((ctx.show("/proc/cpuinfo"), "no sev/sev_es/sev_snp/tdx_host_platform flag, no facility 158"))
    return warned("no secure guest technology on this host (checked AMD SEV, Intel TDX, IBM Secure Execution)", *ev)


# ---------------------------------------------------------------------------
# SELinux
# ---------------------------------------------------------------------------

_MODES = ("enforcing", "permissive", "disabled")
_CONFIG = "/etc/selinux/config"


def _selinux_config(text: str | None) -> tuple[str | None, str]:
    """(mode, what the file says): mode None when missing, '?' when unusable.

    libselinux takes the first SELINUX= line and compares case-insensitively.
    """
    if text is None:
        return None, "missing"
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#") or "=" not in s:
            continue
        key, _, value = s.partition("=")
        if key.strip() == "SELINUX":
            v = value.strip()
            if v.lower() in _MODES:
                return v.lower(), f"SELINUX={v}"
            return "?", f"unrecognised value {v!r} in {s!r}"
    return "?", "no SELINUX= line"


def _set_mode_cmd(conf: str | None, mode: str) -> str:
    if conf in _MODES:
        return f"sed -i 's/^SELINUX=.*/SELINUX={mode}/' {_CONFIG}"
    return f"make the only SELINUX line of {_CONFIG} read SELINUX={mode}"


def _selinux_runtime(ctx: Ctx) -> tuple[str | None, str]:
    enforce = ctx.host.read_first_line("/sys/fs/selinux/enforce")
    if enforce is not None:
        mode = {"1": "enforcing", "0": "permissive"}.get(enforce)
        return mode, f"{enforce or '(empty)'} ({mode or 'unrecognised'})"
    if ctx.host.is_dir("/sys/fs/selinux"):
        return "disabled", "no enforce file: enabled in the kernel but no policy loaded"
    if ctx.host.live:
        return "disabled", "missing: SELinux is off in the running kernel"
    return None, "not present in an offline root (runtime state unknown)"


def _next_boot_args(ctx: Ctx) -> tuple[list[list[str]], str] | None:
    """Kernel arguments the next boot gets: BLS entries, /etc/kernel/cmdline, GRUB's settings."""
    host = ctx.host
    try:
        sets = bootcmdline.bls_cmdlines(host, skip_rescue=True)
        if sets:
            return sets, f"{ctx.show(bootcmdline.BLS_ENTRIES)} ({len(sets)} boot entries)"
        text = host.read_text("/etc/kernel/cmdline")
        if text is not None:
            return [text.split()], ctx.show("/etc/kernel/cmdline")
        grub = bootcmdline.grub_cmdline(host)
        if grub is not None:
            return [grub[0]], grub[1]
    except (NeedsRoot, ProbeError):
        return None
    return None


def _needs_kernel_arg(os) -> bool:
    """RHEL 9+ and Fedora: SELINUX=disabled no longer really disables SELinux."""
    if os.family != "rhel":
        return False
    major = os.major
    if os.id == "fedora":
        return major is None or major >= 34
    if os.id == "amzn":
        return major is not None and major >= 2022
    return major is not None and major >= 9


@check(
    "security.selinux",
    title="SELinux mode (runtime, config file, kernel command line)",
    why="Some platforms need SELinux permissive or disabled; runtime, config and boot arguments often disagree until a reboot.",
    source="VMmanager (SELinux disabled, config + reboot); RHEL 9 SELinux guide (selinux=0 kernel argument)",
    remediations=("disable-selinux", "selinux-permissive"),
    params={"want": "any"},
)
def selinux(ctx: Ctx):
    want = str(ctx.params["want"]).lower()
    if want not in ("any", "permissive-or-disabled", "disabled"):
        return failed(f"unknown want {want!r} (use any, permissive-or-disabled or disabled)")
    os_info = ctx.facts.os
    kernel = ctx.facts.kernel
    now, now_ev = _selinux_runtime(ctx)
    conf_text = ctx.host.read_text(_CONFIG)
    conf, conf_ev = _selinux_config(conf_text)
    cur_sel = kernel.param("selinux")
    cur_enf = kernel.param("enforcing")
    cur_args = " ".join(f"{k}={v}" for k, v in (("selinux", cur_sel), ("enforcing", cur_enf)) if v is not None)
    nb = _next_boot_args(ctx)

    ev = [(ctx.show("/sys/fs/selinux/enforce"), now_ev),
          (ctx.show(_CONFIG), conf_ev)]
    if kernel.cmdline_source:
        ev.append((ctx.show(kernel.cmdline_source), cur_args or "no selinux= or enforcing= argument"))
    if nb is not None:
        sets, nb_src = nb
        nb_sel = [cmdline_value(t, "selinux") for t in sets]
        nb_enf_vals = [cmdline_value(t, "enforcing") for t in sets]
        n0 = sum(1 for v in nb_sel if v == "0")
        ev.append((nb_src, f"selinux=0 in {n0} of {len(sets)}" if len(sets) > 1 else
                   (f"selinux={nb_sel[0]}" if nb_sel[0] is not None else "no selinux= argument")))
        next_sel0 = bool(sets) and n0 == len(sets)
        nb_enf = nb_enf_vals[0] if nb_enf_vals and len(set(nb_enf_vals)) == 1 else None
    else:
        next_sel0 = cur_sel == "0"
        nb_enf = cur_enf
    needs_arg = _needs_kernel_arg(os_info)
    if needs_arg:
        ev.append((ctx.show(os_info.source or "/etc/os-release"),
                   f"{os_info.name or os_info.id}: SELINUX=disabled alone no longer disables SELinux"))

    # What the next boot brings.
    if next_sel0:
        nxt = "disabled"
    elif conf in (None, "disabled"):
        nxt = "disabled"
    elif conf == "?":
        nxt = None
    elif now == "disabled" and os_info.family != "rhel":
        nxt = "disabled"  # the kernel does not enable SELinux (AppArmor distributions)
    else:
        nxt = {"0": "permissive", "1": "enforcing"}.get(nb_enf or "", conf)

    parts = [f"runtime {now or 'unknown'}",
             f"config {conf if conf not in (None, '?') else 'file missing' if conf is None else conf_ev}",
             f"kernel command line {cur_args or 'has no selinux argument'}" if kernel.cmdline_source
             else "kernel command line unknown"]
    if nb is not None:
        parts.append(f"next boot {'selinux=0' if next_sel0 else 'without selinux=0'}")
    state = "; ".join(parts)
    config_line_hint = f"write one line SELINUX=enforcing|permissive|disabled in {_CONFIG}"

    if want == "any":
        if conf == "?":
            return warned(f"{_CONFIG} is unusable ({conf_ev}); {state}", *ev, hint=config_line_hint)
        if now is not None and nxt is not None and now != nxt:
            if now == "disabled":
                hint = "touch /.autorelabel && reboot  (re-enabling SELinux needs a relabel)"
            elif nxt == "disabled":
                hint = "reboot to disable SELinux"
            elif nxt == "enforcing":
                hint = f"setenforce 1  (or keep permissive: SELINUX=permissive in {_CONFIG})"
            else:
                hint = "setenforce 0  (or reboot)"
            return warned(f"pending reboot: {now} now, {nxt} after the next boot ({state})", *ev, hint=hint)
        return passed(f"SELinux {now or f'{nxt} from boot'} ({state})", *ev)

    if want == "permissive-or-disabled":
        permissive_hint = f"{_set_mode_cmd(conf, 'permissive')} && setenforce 0"
        if nxt is None:
            return failed(f"{_CONFIG} is unusable ({conf_ev}); {state}", *ev, hint=permissive_hint)
        if nxt == "enforcing":
            when = "now and after reboot" if now == "enforcing" else "after the next boot"
            return failed(f"SELinux is enforcing {when} ({state})", *ev, hint=permissive_hint)
        if now == "enforcing":
            return warned(f"enforcing until reboot: the config says {nxt} ({state})", *ev, hint="setenforce 0")
        return passed(f"SELinux {now or f'{nxt} from boot'} ({state})", *ev)

    # want == "disabled"
    config_ok = conf in (None, "disabled")
    arg_needed = needs_arg and not next_sel0
    if next_sel0:
        next_disabled = True
    elif config_ok:
        next_disabled = not needs_arg
    else:  # enforcing/permissive in the config (or unusable): off only where the kernel never enables it
        next_disabled = nxt == "disabled"
    if not next_disabled:
        missing, hints = [], []
        if not config_ok:
            missing.append(f"the config says {conf_ev if conf == '?' else conf}")
            hints.append(_set_mode_cmd(conf, "disabled"))
        if arg_needed:
            missing.append(f"{os_info.name or os_info.id} also needs the kernel argument selinux=0")
            hints.append("grubby --update-kernel ALL --args selinux=0")
        hints.append("reboot")
        return failed(f"SELinux is not disabled for the next boot: {'; '.join(missing)} ({state})", *ev,
                      hint=" && ".join(hints))
    if now in ("enforcing", "permissive"):
        return warned(f"pending reboot: disabled from the next boot, still {now} now ({state})", *ev,
                      hint="reboot")
    return passed(f"SELinux disabled ({state})", *ev)


# ---------------------------------------------------------------------------
# AppArmor
# ---------------------------------------------------------------------------

_LIBVIRT_DAEMONS = (("/usr/sbin/libvirtd", "/etc/apparmor.d/usr.sbin.libvirtd", "libvirtd"),
                    ("/usr/sbin/virtqemud", "/etc/apparmor.d/usr.sbin.virtqemud", "virtqemud"))


@check(
    "security.apparmor",
    title="AppArmor state and libvirt's profiles",
    why="On Debian/Ubuntu/SUSE libvirt confines itself and every guest with AppArmor; a missing libvirt profile leaves them unconfined.",
    source="libvirt AppArmor security driver; Debian/Ubuntu libvirt-daemon-system packaging",
    root_reads="/sys/kernel/security/apparmor/profiles (list of loaded profiles)",
)
def apparmor(ctx: Ctx):
    host = ctx.host
    param_path = "/sys/module/apparmor/parameters/enabled"
    enabled = ctx.facts.module_param("apparmor", "enabled")
    ev = [(ctx.show(param_path), enabled if enabled is not None else "missing")]
    lsm = None
    try:
        lsm = host.read_first_line("/sys/kernel/security/lsm")
    except (NeedsRoot, ProbeError):
        pass
    if lsm:
        ev.append((ctx.show("/sys/kernel/security/lsm"), lsm))

    daemons = [(d, prof, name) for d, prof, name in _LIBVIRT_DAEMONS if host.exists(d)]
    missing_profiles = []
    for daemon, prof, _ in daemons:
        present = host.exists(prof)
        ev.append((ctx.show(prof), "present" if present else "missing"))
        if not present:
            missing_profiles.append((daemon, prof))
    # one profile is enough when both daemons are installed (libvirtd or modular virtqemud)
    have_any_profile = len(missing_profiles) < len(daemons)

    if enabled is None:
        if not host.live and not host.is_dir("/sys/module"):
            if daemons and not have_any_profile:
                return warned("offline root: libvirt is installed without its AppArmor profile "
                              f"({missing_profiles[0][1]} missing)", *ev,
                              hint="apt-get install --reinstall libvirt-daemon-system")
            return passed("offline root: AppArmor's runtime state is unknown; libvirt's profile files are "
                          + ("present" if daemons else "not needed (libvirt not installed)"), *ev)
        return passed("AppArmor is not in this kernel (not in use)", *ev)
    if not _on(enabled):
        return passed("AppArmor is built in but not enabled (not in use)", *ev)
    if lsm is not None and "apparmor" not in lsm.split(","):
        return passed("AppArmor is not among the active LSMs (not in use)", *ev)

    loaded: list[str] | None = None
    try:
        text = host.read_text("/sys/kernel/security/apparmor/profiles")
        if text is not None:
            loaded = [line.strip() for line in text.splitlines() if line.strip()]
    except (NeedsRoot, ProbeError):
        ev.append((ctx.show("/sys/kernel/security/apparmor/profiles"), "not readable without root"))
    if loaded is not None:
        lv = [p for p in loaded if "libvirt" in p or "virtqemud" in p or "virt-aa-helper" in p]
        ev.append((ctx.show("/sys/kernel/security/apparmor/profiles"),
                   f"{len(loaded)} profiles loaded" + (f"; libvirt: {', '.join(lv[:6])}" if lv else "; none of libvirt")))

    if not daemons:
        return passed("AppArmor is enabled; libvirt is not installed, so no libvirt profile is expected", *ev)
    if not have_any_profile:
        return warned(f"AppArmor is enabled but libvirt's profile {missing_profiles[0][1]} is missing: "
                      "libvirt and its guests run unconfined", *ev,
                      hint="apt-get install --reinstall libvirt-daemon-system  (restores /etc/apparmor.d/usr.sbin.libvirtd)")
    if loaded is not None:
        names = {name for d, prof, name in daemons if host.exists(prof)}
        if not any(n in p for p in loaded for n in names):
            prof = next(prof for d, prof, name in daemons if host.exists(prof))
            return warned(f"AppArmor is enabled and {prof} exists, but the profile is not loaded", *ev,
                          hint=f"apparmor_parser -r {prof} && systemctl restart libvirtd")
        return passed("AppArmor is enabled and libvirt's profile is loaded", *ev)
    return passed("AppArmor is enabled and libvirt's profile is installed (loaded profiles need root to list)", *ev)
