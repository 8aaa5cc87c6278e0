"""KVM: modules, /dev/kvm (node, access, the real probe), nested, vhost-net, tun."""

from __future__ import annotations

import os
import re
import stat as stat_mod

from ..accounts import groups_of, read_groups, read_users, session_gids
from ..kvmprobe import OTHER_HYPERVISORS
from ..model import failed, passed, skipped, warned
from ..bootcmdline import cmdline_value, next_boot_value
from ..modprobe_conf import boot_modules, effective_conf_files, read_modprobe_config, truthy
from ..registry import Ctx, check

KVM_MAJOR, KVM_MINOR = 10, 232
UDEV_DIRS = ("/etc/udev/rules.d", "/run/udev/rules.d", "/usr/local/lib/udev/rules.d",
             "/usr/lib/udev/rules.d", "/lib/udev/rules.d")
# patterns are compiled on first use (re's cache), not at import
_UDEV_ASSIGN = r'\b(GROUP|MODE|OWNER)\s*:?=\s*"([^"]*)"'
_UDEV_KVM = r'KERNEL\s*==\s*"kvm"'


# ---- helpers -------------------------------------------------------------------

def _modules_wanted(ctx: Ctx) -> list[str]:
    vendor = ctx.facts.vendor_module
    return ["kvm"] + ([vendor] if vendor else [])


def _state_words(state: str) -> str:
    return {"loaded": "loaded", "builtin": "built in", "available": "available but not loaded",
            "absent": "not in this kernel", "unknown": "unknown"}.get(state, state)


def _mev(ctx: Ctx, m):
    """Evidence for a ModuleState: its source path shown inside the root."""
    src = m.source
    if src.startswith("/"):
        path, sep, rest = src.partition(" ")
        path = path.rstrip(",")
        src = ctx.show(path) + src[len(path):]
    return (src, f"{m.name}: {_state_words(m.state)}")


def _device(ctx: Ctx, path: str):
    """(stat, description) of a device node, or (None, why)."""
    st = ctx.host.stat(path)
    if st is None:
        return None, "does not exist"
    return st, _describe(ctx, st)


def _describe(ctx: Ctx, st: os.stat_result) -> str:
    users = {u.uid: u.name for u in read_users(ctx.host).values()}
    groups = {g.gid: g.name for g in read_groups(ctx.host).values()}
    text = f"{stat_mod.filemode(st.st_mode)} {users.get(st.st_uid, st.st_uid)} {groups.get(st.st_gid, st.st_gid)}"
    if stat_mod.S_ISCHR(st.st_mode):
        text += f" {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return text


def _udev_kvm_rule(ctx: Ctx) -> dict[str, tuple[str, str]]:
    """What udev rules set for /dev/kvm: key (GROUP/MODE/OWNER) -> (value, file)."""
    out: dict[str, tuple[str, str]] = {}
    for path in effective_conf_files(ctx.host, UDEV_DIRS, ".rules"):
        text = ctx.host.read_text(path) or ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("#") or not re.search(_UDEV_KVM, line):
                continue
            for key, value in re.findall(_UDEV_ASSIGN, line):
                out[key] = (value, ctx.show(path))
    return out


def _udev_ev(rule: dict[str, tuple[str, str]]):
    if not rule:
        return ("udev rules", 'no rule sets GROUP/MODE for KERNEL=="kvm"')
    files = sorted({f for _, f in rule.values()})
    return (", ".join(files), " ".join(f'{k}="{v}"' for k, (v, _) in sorted(rule.items())))


_UDEV_FIX = ("echo 'KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\"' > /etc/udev/rules.d/65-kvm.rules"
             " && udevadm trigger --name-match=kvm")


def _fix_hint(has_kvm_group: bool) -> str:
    return ("" if has_kvm_group else "groupadd -r kvm && ") + _UDEV_FIX


# ---- kvm.modules -----------------------------------------------------------------

@check(
    "kvm.modules",
    title="KVM kernel modules",
    why="/dev/kvm exists only while kvm and the CPU's vendor module (kvm_intel, kvm_amd, kvm_hv...) are loaded or built in.",
    source="OpenStack Nova / Taikun OCP (kvm + kvm_intel/kvm_amd loaded and listed for boot); QEMU/KVM guide",
    remediations=("load-kvm-modules",),
)
def kvm_modules(ctx: Ctx):
    names = _modules_wanted(ctx)
    states = [ctx.facts.module(n) for n in names]
    boot = boot_modules(ctx.host)
    conf = read_modprobe_config(ctx.host)
    ev = []
    for st in states:
        ev.append(_mev(ctx, st))
    for st in states:
        if st.name in boot:
            ev.append((boot[st.name], f"{st.name} listed for loading at boot"))
        elif st.state == "builtin":
            ev.append((ctx.show("/etc/modules-load.d"), f"{st.name} not listed for boot (built in: not needed)"))
        else:
            ev.append((ctx.show("/etc/modules-load.d"), f"{st.name} not listed for boot (udev loads KVM from the CPU's features)"))
        if st.name in conf.blacklist:
            ev.append((conf.blacklist[st.name], f"blacklist {st.name}"))
        if st.name in conf.install:
            cmd, f = conf.install[st.name]
            ev.append((f, f"install {st.name} {cmd}"))
    if ctx.facts.vendor_module is None:
        ev.append(("/proc/cpuinfo", "no vendor KVM module known for this CPU (kvm alone serves s390x and arm64)"))
    summary = ", ".join(f"{s.name} {_state_words(s.state)}" for s in states)
    absent = [s for s in states if s.state == "absent"]
    avail = [s for s in states if s.state == "available"]
    unknown = [s for s in states if s.state == "unknown"]
    if absent:
        names_ = ", ".join(s.name for s in absent)
        return failed(f"{summary}: this kernel has no {names_}", *ev,
                      hint="install the kernel's modules package (or a kernel built with CONFIG_KVM) and boot it")
    denied = _denied_at_boot(states, conf)
    if denied:
        fix = "; ".join(f"remove 'blacklist {n}' from {conf.blacklist[n]}" for n in denied)
    if avail:
        if not ctx.host.live:
            if denied:
                return warned(f"{summary}, but blacklisted: the boot will not load {', '.join(denied)}", *ev,
                              hint=fix)
            return passed(f"{summary} (offline root: loadable modules are loaded at boot)", *ev)
        blocked = [s.name for s in avail if s.name in conf.install
                   and re.search(r"/bin/(false|true)\b", conf.install[s.name][0])]
        detail = f"{summary}"
        if blocked:
            detail += f" ('install ... /bin/false' in modprobe.d blocks {', '.join(blocked)})"
        last = avail[-1].name
        return failed(detail, *ev, hint=f"modprobe {last}")
    if unknown:
        return skipped(f"{summary}: the root has neither /sys/module nor /lib/modules for its kernel", *ev)
    if denied:
        return warned(f"{summary} now, but blacklisted: the next boot will not load {', '.join(denied)}", *ev,
                      hint=fix)
    return passed(summary, *ev)


def _denied_at_boot(states, conf) -> list[str]:
    """Loadable modules that no boot loads: blacklisted in modprobe.d. systemd-modules-load
    applies kmod's blacklist even to modules-load.d's list ("Module 'kvm_amd' is deny-listed"),
    and so does udev's autoload; only an explicit ``modprobe NAME`` ignores it. kvm alone
    blacklisted still comes in as the vendor module's dependency."""
    denied = [s.name for s in states if s.state in ("loaded", "available") and s.name in conf.blacklist]
    if "kvm" in denied and len(states) > 1 and states[1].name not in denied and states[1].state != "absent":
        denied.remove("kvm")
    return denied


# ---- kvm.device ------------------------------------------------------------------

@check(
    "kvm.device",
    title="/dev/kvm device node",
    why="QEMU opens /dev/kvm to create accelerated guests; without it QEMU falls back to slow emulation (TCG).",
    source="libvirt virt-host-validate ('/dev/kvm exists')",
    remediations=("load-kvm-modules",),
)
def kvm_device(ctx: Ctx):
    st, desc = _device(ctx, "/dev/kvm")
    ev = (ctx.show("/dev/kvm"), desc)
    if st is None:
        if not ctx.host.live:
            return skipped("offline root: /dev/kvm is created by the running kernel, an image has none", ev)
        mods = [ctx.facts.module(n) for n in _modules_wanted(ctx)]
        inactive = [m for m in mods if not m.active]
        mev = [_mev(ctx, m) for m in mods]
        if inactive:
            return failed(f"/dev/kvm missing: {', '.join(m.name + ' ' + _state_words(m.state) for m in inactive)}",
                          ev, *mev, hint=f"modprobe {inactive[-1].name}")
        return failed("/dev/kvm missing although the KVM modules are active (devtmpfs/udev did not create it; "
                      "the vendor module may have refused the CPU)", ev, *mev,
                      hint=f"mknod -m 0660 /dev/kvm c {KVM_MAJOR} {KVM_MINOR} && chgrp kvm /dev/kvm")
    if not stat_mod.S_ISCHR(st.st_mode):
        return failed("/dev/kvm exists but is not a character device", ev,
                      hint=f"rm /dev/kvm && mknod -m 0660 /dev/kvm c {KVM_MAJOR} {KVM_MINOR}")
    numbers = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if numbers != (KVM_MAJOR, KVM_MINOR):
        return failed(f"/dev/kvm is character device {numbers[0]}:{numbers[1]}, not KVM's {KVM_MAJOR}:{KVM_MINOR}", ev,
                      hint=f"rm /dev/kvm && mknod -m 0660 /dev/kvm c {KVM_MAJOR} {KVM_MINOR}")
    return passed(f"character device {KVM_MAJOR}:{KVM_MINOR}", ev)


# ---- kvm.device-access -----------------------------------------------------------

def _policy_ok(group: str | None, mode: int) -> bool:
    """What libvirt/qemu users need: group kvm with rw for the group (or rw for all)."""
    return (mode & 0o006) == 0o006 or (group == "kvm" and (mode & 0o060) == 0o060)


@check(
    "kvm.device-access",
    title="/dev/kvm permissions",
    why="QEMU runs as an unprivileged user (libvirt-qemu/qemu) in group kvm: /dev/kvm must be group kvm with mode 0660, "
        "and an admin running guests directly needs read-write access.",
    source="libvirt virt-host-validate ('/dev/kvm is accessible'); OpenStack Nova / Taikun OCP (group kvm, udevadm trigger, re-login)",
    remediations=("fix-kvm-permissions", "add-user-to-groups"),
)
def kvm_device_access(ctx: Ctx):
    host = ctx.host
    groups = read_groups(host)
    has_kvm_group = "kvm" in groups
    gev = (ctx.show("/etc/group"), "group kvm " + (f"exists (gid {groups['kvm'].gid})" if has_kvm_group else "missing"))
    rule = _udev_kvm_rule(ctx)
    st = host.stat("/dev/kvm")
    if st is None:
        if host.live:
            return skipped("no /dev/kvm to check (kvm.device says why)", (ctx.show("/dev/kvm"), "does not exist"), gev)
        # offline: predict from the udev rules
        if not rule:
            if not any(host.is_dir(d) for d in UDEV_DIRS):
                return skipped("offline root: no /dev and no udev rules to predict /dev/kvm's permissions", gev)
            return warned("no udev rule sets /dev/kvm's group or mode: the kernel creates it root:root 0600, "
                          "so qemu running as its own user cannot open it", _udev_ev(rule), gev,
                          hint=_fix_hint(has_kvm_group))
        group = rule.get("GROUP", ("root", ""))[0]
        try:
            mode = int(rule.get("MODE", ("0600", ""))[0], 8)
        except ValueError:
            mode = 0o600
        if _policy_ok(group, mode) and (group != "kvm" or has_kvm_group):
            return passed(f"udev will create /dev/kvm as group {group}, mode {mode:04o}", _udev_ev(rule), gev)
        return warned(f"udev will create /dev/kvm as group {group}, mode {mode:04o}"
                      + ("" if has_kvm_group else "; group kvm does not exist"),
                      _udev_ev(rule), gev, hint=_fix_hint(has_kvm_group))

    dev_group = next((g.name for g in groups.values() if g.gid == st.st_gid), None)
    mode = stat_mod.S_IMODE(st.st_mode)
    dev_ev = (ctx.show("/dev/kvm"), _describe(ctx, st))
    policy_ok = _policy_ok(dev_group, mode)
    policy = f"group {dev_group or st.st_gid}, mode {mode:04o}"
    want = "group kvm, mode 0660" + ("" if has_kvm_group else " (and group kvm does not exist)")
    user, user_source = ctx.facts.user
    uev = (user_source, f"invoking admin: {user or 'unknown'}")
    users = read_users(host)
    uid = 0 if user == "root" else (users[user].uid if user in users else None)

    if user is None or uid is None:
        if policy_ok and has_kvm_group:
            return passed(f"{policy} (invoking user unknown)", dev_ev, gev, uev, _udev_ev(rule))
        return warned(f"{policy}; qemu/libvirt need {want} (invoking user unknown)", dev_ev, gev, uev,
                      _udev_ev(rule), hint=_fix_hint(has_kvm_group))

    if uid == 0:
        if policy_ok and (dev_group != "kvm" or has_kvm_group):
            return passed(f"root can open it; {policy} lets qemu/libvirt users in", dev_ev, gev, uev)
        return warned(f"root can open it, but {policy}: libvirt's qemu user and group kvm members cannot; want {want}",
                      dev_ev, gev, uev, _udev_ev(rule), hint=_fix_hint(has_kvm_group))

    member_of = groups_of(host, user)
    gids = {groups[n].gid for n in member_of if n in groups}
    if uid == st.st_uid:
        bits, via = (mode >> 6) & 0o7, "owner"
    elif st.st_gid in gids:
        bits, via = (mode >> 3) & 0o7, f"group {dev_group or st.st_gid}"
    else:
        bits, via = mode & 0o7, "others"
    can = (bits & 0o6) == 0o6
    mev = (ctx.show("/etc/group"), f"{user} is in: {', '.join(sorted(member_of)) or 'no groups'}")
    add_hint = f"usermod -aG {dev_group if dev_group and dev_group != 'root' else 'kvm'} {user}  # then log out and back in"
    if not can:
        fix = add_hint if (dev_group and dev_group != "root" and (mode & 0o060) == 0o060) else _fix_hint(has_kvm_group) + f" && usermod -aG kvm {user}"
        return failed(f"{user} cannot open /dev/kvm read-write ({policy}, access as {via}: {bits:o})",
                      dev_ev, mev, gev, uev, hint=fix)
    # live and running as that very user (not through sudo): the session's groups are what count
    if host.live and user_source != "SUDO_USER" and host.euid == uid and via.startswith("group"):
        if st.st_gid not in session_gids():
            return warned(f"{user} is in {via} per /etc/group, but this login session predates it", dev_ev, mev, uev,
                          hint="log out and back in (or run: newgrp kvm)")
    if not policy_ok:
        return warned(f"{user} can open it (as {via}), but {policy}: libvirt's qemu user cannot; want {want}",
                      dev_ev, mev, gev, uev, hint=_fix_hint(has_kvm_group))
    return passed(f"{user} can open it read-write (as {via}); {policy}", dev_ev, mev, gev, uev)


# ---- kvm.usable ------------------------------------------------------------------

@check(
    "kvm.usable",
    title="KVM creates a virtual machine",
    why="The only proof KVM works: open /dev/kvm, KVM_GET_API_VERSION must be 12, KVM_CREATE_VM must succeed. "
        "CPU flags only explain a failure (kvm_pvm needs no vmx/svm; another hypervisor can hold VT-x).",
    source="Linux KVM API (ioctls 0xAE00, 0xAE01); what virt-host-validate and kvm-ok get wrong",
    remediations=("load-kvm-modules", "fix-kvm-permissions", "add-user-to-groups"),
)
def kvm_usable(ctx: Ctx):
    probe = ctx.facts.kvm
    ev = ("/dev/kvm (open, KVM_GET_API_VERSION, KVM_CREATE_VM)", probe.detail)
    if probe.outcome == "offline":
        return skipped("offline root: only the running kernel can create a VM", ev)
    if probe.ok:
        mod = ctx.facts.vendor_module
        return passed(f"KVM_CREATE_VM succeeded (API {probe.api_version}" + (f", through {mod})" if mod else ")"), ev)
    if probe.outcome == "busy":
        others = [desc for name, desc in OTHER_HYPERVISORS.items() if ctx.host.is_dir(f"/sys/module/{name}")]
        mev = [(ctx.show(f"/sys/module/{n}"), "loaded") for n in OTHER_HYPERVISORS if ctx.host.is_dir(f"/sys/module/{n}")]
        if others:
            first = next(n for n in OTHER_HYPERVISORS if ctx.host.is_dir(f"/sys/module/{n}"))
            return failed(f"another hypervisor holds the CPU's virtualization: {', '.join(others)}", ev, *mev,
                          hint=f"stop its VMs and unload it: modprobe -r {first}")
        return failed("KVM_CREATE_VM is busy: another hypervisor holds VT-x/AMD-V (none of "
                      f"{', '.join(OTHER_HYPERVISORS)} is loaded)", ev,
                      hint="stop the other hypervisor's VMs and unload its kernel module")
    if probe.outcome == "denied":
        st = ctx.host.stat("/dev/kvm")
        group = None
        if st is not None:
            group = next((g.name for g in read_groups(ctx.host).values() if g.gid == st.st_gid), str(st.st_gid))
        if not ctx.host.is_root:
            who = f"membership in group {group}" if group and group != "root" else "a /dev/kvm permission fix"
            return skipped(f"cannot test: /dev/kvm is not open to this user; needs root or {who}", ev,
                           (ctx.show("/dev/kvm"), _describe(ctx, st) if st else "?"))
        return failed("root is denied /dev/kvm (a container's device cgroup, SELinux or seccomp blocks it)", ev)
    if probe.outcome == "no-device":
        return failed("no /dev/kvm: the KVM modules are not active", ev, hint=f"modprobe {_modules_wanted(ctx)[-1]}")
    if probe.outcome == "bad-api":
        return failed(f"unexpected KVM API version {probe.api_version} (expected 12)", ev)
    return failed(probe.detail, ev)


# ---- kvm.nested ------------------------------------------------------------------

def _nested_now(ctx: Ctx, mod: str) -> tuple[str | None, str]:
    path = f"/sys/module/{mod}/parameters/nested"
    return ctx.host.read_first_line(path), ctx.show(path)


def _yn(value: str | None) -> str:
    b = truthy(value)
    return "unknown" if value is None else (value if b is None else ("Y" if b else "N"))


@check(
    "kvm.nested",
    title="Nested virtualization",
    why="Guests can run their own hypervisor (KubeVirt nodes in VMs, CI, demos) only with nested enabled in the vendor module.",
    source="Linux docs 'Running nested guests with KVM'; OpenStack Nova (/etc/modprobe.d/kvm.conf); Deckhouse (nested for demos)",
    remediations=("enable-nested",),
)
def kvm_nested(ctx: Ctx):
    mod = ctx.facts.vendor_module
    kernel = ctx.facts.kernel
    running = kernel.cmdline
    if mod == "kvm_pvm":
        ev = [(ctx.show("/sys/module/kvm_pvm/parameters"), "no 'nested' parameter")]
        for name in ("kvm_pvm.nested", "nested_pvm"):
            now = cmdline_value(running, name) if ctx.host.live else None
            after, source = next_boot_value(ctx.host, running, name)
            if now is None and after is None:
                continue
            if now is not None:
                ev.append((ctx.show("/proc/cmdline"), f"{name}={now}"))
            if after is not None and source != ctx.show("/proc/cmdline"):
                ev.append((source, f"{name}={after}"))
            shown_now, shown_after = (now if now is not None else "unset"), (after if after is not None else "unset")
            text = (f"kvm_pvm now: {name}={shown_now}; after reboot: {name}={shown_after} ({source})"
                    if ctx.host.live else f"kvm_pvm after boot: {name}={shown_after} ({source})")
            if truthy(after) is True and truthy(now) is not False:
                return passed(text, *ev)
            return warned(text, *ev, hint=f"set {name}=1 on the kernel command line and reboot")
        return skipped("kvm_pvm has no nested parameter and the kernel command line sets none "
                       "(kvm_pvm.nested=, nested_pvm=): nothing to judge", *ev)
    mods = [mod] if mod else []
    if not mods:
        if ctx.host.is_dir("/sys/module/kvm/parameters") and ctx.host.exists("/sys/module/kvm/parameters/nested"):
            mods = ["kvm"]  # s390x
        else:
            return skipped("no vendor KVM module known for this CPU: nested virtualization cannot be judged")
    mod = mods[0]
    state = ctx.facts.module(mod)
    now, now_src = _nested_now(ctx, mod) if ctx.host.live or ctx.host.is_dir(f"/sys/module/{mod}") else (None, "")
    ev = []
    if now is not None:
        ev.append((now_src, now))
    # after reboot: modprobe.d (for a loadable module), then the kernel command line wins
    opt = read_modprobe_config(ctx.host).option(mod, "nested")
    cmd_value, cmd_src = next_boot_value(ctx.host, running, f"{mod}.nested")
    after, after_why = None, "no setting: the kernel's default"
    if opt is not None and state.state != "builtin":
        after, after_why = opt.value, f"options {mod} nested={opt.value} in {opt.file}"
        ev.append((opt.file, opt.line))
    elif opt is not None:
        ev.append((opt.file, f"{opt.line} (ignored: {mod} is built in)"))
    if cmd_value is not None:
        after, after_why = cmd_value, f"{mod}.nested={cmd_value} in {cmd_src}"
        ev.append((cmd_src, f"{mod}.nested={cmd_value}"))
    if after is None and now is not None:
        after = now  # nothing configured: same default as now
    now_on, after_on = truthy(now), truthy(after)
    text = f"{mod} now: {_yn(now)}; after reboot: {_yn(after)} ({after_why})"

    # who holds the module (blocks a reload now)
    refcnt = ctx.host.read_first_line(f"/sys/module/{mod}/refcnt")
    guests = ctx.facts.guests if ctx.host.live else []
    if state.state == "builtin":
        ev.append((_mev(ctx, state)[0], f"{mod} is built in: only the kernel command line changes it"))
    elif refcnt is not None:
        ev.append((ctx.show(f"/sys/module/{mod}/refcnt"), refcnt))
    if guests:
        ev.append(("/proc/*/cmdline", "running guests: " + ", ".join(f"{p.comm} ({p.pid})" for p in guests[:5])))
    held = bool(guests) or (refcnt is not None and refcnt.isdigit() and int(refcnt) > 0)

    if now is None and after is None:
        if not ctx.host.live:
            return skipped(f"offline root: no nested setting for {mod} in modprobe.d or the boot command line "
                           "(the kernel's default decides; upstream enables it since 4.20)", *ev)
        return skipped(f"{mod} is not loaded: no nested parameter to read", *ev)
    # modprobe passes the running command line's <mod>.nested after modprobe.d's: a reload keeps it
    running_off = cmdline_value(running, f"{mod}.nested") if ctx.host.live else None
    if truthy(running_off) is not False:
        running_off = None
    if state.state == "builtin":
        fix = f"add {mod}.nested=1 to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub), update the boot loader and reboot"
    else:
        fix = f"echo 'options {mod} nested=1' > /etc/modprobe.d/kvm-nested.conf"
        if opt is not None and truthy(opt.value) is False:
            fix = f"remove '{opt.line}' from {opt.file}; " + fix
        if cmd_value is not None and truthy(cmd_value) is not True:
            fix += (f"; {mod}.nested={cmd_value} on the kernel command line ({cmd_src}) wins over modprobe.d: "
                    f"set {mod}.nested=1 there, update the boot loader and reboot")
        elif running_off is not None:
            fix += f"  # then reboot: until then modprobe passes {mod}.nested={running_off} from /proc/cmdline"
        elif now_on is not True:
            fix += f" && modprobe -r {mod} && modprobe {mod}" if not held else "  # then stop all guests and reload the module"
    if now_on is True and after_on is not False:
        return passed(text, *ev)
    if now_on is True and after_on is False:
        return warned(f"{text}: a reboot turns it off", *ev, hint=fix)
    if now_on is None and now is not None:
        return warned(f"{mod} nested reads {now!r}, not a boolean; after reboot: {_yn(after)}", *ev, hint=fix)
    if now is None:  # offline
        if after_on is True:
            return passed(f"{mod} after boot: {_yn(after)} ({after_why})", *ev)
        return warned(f"{mod} after boot: {_yn(after)} ({after_why})", *ev, hint=fix)
    suffix = ""
    if after_on is True and running_off is not None and state.state != "builtin":
        suffix = (f": enabled after a reboot (until then modprobe passes {mod}.nested={running_off} "
                  "from /proc/cmdline, also to a reload)")
    elif after_on is True:
        suffix = ": enabled after a " + ("reload (guests hold it now) or reboot" if held else "module reload or reboot")
    elif held:
        suffix = "; running guests hold the module, so it cannot be reloaded now"
    return warned(f"{text}{suffix}", *ev, hint=fix)


# ---- kvm.vhost-net / kvm.tun -------------------------------------------------------

def _char_ok(ctx: Ctx, path: str):
    st = ctx.host.stat(path)
    if st is None:
        return None, (ctx.show(path), "does not exist")
    return stat_mod.S_ISCHR(st.st_mode), (ctx.show(path), _describe(ctx, st))


@check(
    "kvm.vhost-net",
    title="vhost-net (in-kernel virtio-net)",
    why="vhost-net moves guest network packets in the kernel instead of QEMU: much faster virtio networking.",
    source="libvirt virt-host-validate ('/dev/vhost-net', WARN); OpenStack Nova (vhost_net)",
    remediations=("load-vhost-net",),
)
def kvm_vhost_net(ctx: Ctx):
    ok, dev_ev = _char_ok(ctx, "/dev/vhost-net")
    m = ctx.facts.module("vhost_net")
    mev = _mev(ctx, m)
    if ok:
        return passed("/dev/vhost-net is present", dev_ev, mev)
    if ok is False:
        return warned("/dev/vhost-net exists but is not a character device", dev_ev, mev,
                      hint="rm /dev/vhost-net && modprobe vhost_net")
    if not ctx.host.live:
        if m.state in ("builtin", "available"):
            return passed(f"vhost_net {_state_words(m.state)} (offline root: the device appears at boot)", mev)
        if m.state == "unknown":
            return skipped("offline root without /lib/modules for its kernel: cannot tell", mev)
        return warned("this kernel has no vhost_net: virtio-net packets go through QEMU (slower)", mev)
    if m.state == "available":
        return warned("vhost_net is available but not loaded: virtio-net packets go through QEMU (slower)",
                      dev_ev, mev, hint="modprobe vhost_net && echo vhost_net > /etc/modules-load.d/vhost-net.conf")
    if m.active:
        return warned(f"vhost_net is {_state_words(m.state)} but /dev/vhost-net is missing", dev_ev, mev,
                      hint="mknod -m 0660 /dev/vhost-net c 10 238 && chgrp kvm /dev/vhost-net")
    return warned("no /dev/vhost-net and no vhost_net module: virtio-net packets go through QEMU (slower)",
                  dev_ev, mev, hint="use a kernel built with CONFIG_VHOST_NET")


@check(
    "kvm.tun",
    title="TUN/TAP device (/dev/net/tun)",
    why="libvirt and QEMU attach guests to bridges and NAT networks through tap devices created via /dev/net/tun.",
    source="libvirt virt-host-validate ('/dev/net/tun', FAIL)",
    remediations=("load-kvm-modules",),
)
def kvm_tun(ctx: Ctx):
    ok, dev_ev = _char_ok(ctx, "/dev/net/tun")
    m = ctx.facts.module("tun")
    mev = _mev(ctx, m)
    if ok:
        return passed("/dev/net/tun is present", dev_ev)
    if ok is False:
        return failed("/dev/net/tun exists but is not a character device", dev_ev,
                      hint="rm /dev/net/tun && mknod -m 0666 /dev/net/tun c 10 200")
    if not ctx.host.live:
        if m.state in ("builtin", "available"):
            return passed(f"tun {_state_words(m.state)} (offline root: the device appears at boot)", mev)
        if m.state == "unknown":
            return skipped("offline root without /lib/modules for its kernel: cannot tell", mev)
        return failed("this kernel has no tun module: guests cannot get tap network devices", mev,
                      hint="use a kernel built with CONFIG_TUN")
    if m.state == "available":
        return warned("tun is available but not loaded (opening /dev/net/tun loads it once the node exists)",
                      dev_ev, mev, hint="modprobe tun")
    if m.active:
        return failed(f"tun is {_state_words(m.state)} but /dev/net/tun is missing", dev_ev, mev,
                      hint="mkdir -p /dev/net && mknod -m 0666 /dev/net/tun c 10 200")
    return failed("no /dev/net/tun and no tun module: guests cannot get tap network devices", dev_ev, mev,
                  hint="use a kernel built with CONFIG_TUN")
