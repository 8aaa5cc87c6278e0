"""Kernel modules: load KVM now and at boot, nested virtualization, vhost-net.

Rules these planners follow:

* Module state comes from ``ctx.facts.module`` (/sys/module, then
  lib/modules/<release>). On a live host a device node with no module file
  behind it (``/dev/net/tun`` with no ``tun`` in /sys/module or modules.dep)
  means the driver is built in: built-in code without parameters has no
  /sys/module entry.
* "Load now" is a ``LoadModule`` marked ``runtime`` (skipped on an offline
  root, with a note); "load at boot" is one line per module in a
  modules-load.d file, appended to whatever that file already holds.
* A ``blacklist <module>`` line in modprobe.d stops the boot from loading it
  even when modules-load.d lists it (systemd-modules-load applies kmod's
  blacklist: "Module 'kvm_amd' is deny-listed"; udev's autoload does too),
  while ``modprobe <module>`` by name ignores it. So a module listed for boot
  gets its blacklist lines in /etc/modprobe.d commented out (every other byte
  kept; undo restores the file); a blacklist in a package's directory
  (/usr/lib/modprobe.d...) gets a note. Found on a real Debian 12 kernel by
  the lab (tests/lab/test_lab_kernel.py).
* Nested virtualization of a loadable vendor module is an ``options`` line in
  /etc/modprobe.d/kvm-nested.conf (other lines kept). The running module is
  reloaded only when nothing holds it (refcnt 0, no /dev/kvm or kvm-vm file
  descriptor open, no QEMU running); otherwise the change waits for a reboot.
  A built-in module takes ``<module>.nested=1`` on the kernel command line
  (remediations/bootloader.py: grubby, or GRUB's settings and the boot menu).
* The initramfs is regenerated when its configuration puts the vendor module
  into the image, because modprobe.d is copied into the image and the module
  is then loaded (with the old options) before the root file system:
  initramfs-tools lists it in /etc/initramfs-tools/modules,
  /etc/initramfs-tools/modules.d/* or /usr/share/initramfs-tools/modules.d/*;
  dracut names it in add_drivers/force_drivers/drivers of /etc/dracut.conf,
  /etc/dracut.conf.d/*.conf or /usr/lib/dracut/dracut.conf.d/*.conf. The image
  itself (a compressed cpio) is not unpacked: an existing image older than
  the modprobe.d file is what tells that it still needs regenerating.
"""

from __future__ import annotations

import re

from checks import names
from checks.kernel import ModuleState, norm_module
from checks.bootcmdline import cmdline_value
from checks.modprobe_conf import (MODPROBE_DIRS, ModprobeConfig, effective_conf_files, parse_modprobe_text,
                                  truthy)

from ..actions import LoadModule, RunCommand
from ..bootloader import boot_arg_value, grub_with_arg, kernel_arg_proposal  # noqa: F401 (grub_with_arg: tests)
from ..helpers import modules_listed_for_boot, text_for_edit, write_file
from ..registry import PlanCtx, Proposal, nothing, remediation

NESTED_CONF = "/etc/modprobe.d/kvm-nested.conf"

# The check a module alone answers: a kernel without it means that check is not
# fixed by loading modules (kvm and the vendor module are KVM itself).
_CHECK_OF = {"tun": "kvm.tun", "vhost_net": "kvm.vhost-net"}

# Device nodes that prove a driver is present even without a /sys/module entry.
_DEVICES = {"kvm": "/dev/kvm", "tun": "/dev/net/tun", "vhost_net": "/dev/vhost-net"}


# ---- module state -----------------------------------------------------------------

def _state(ctx: PlanCtx, name: str) -> ModuleState:
    st = ctx.facts.module(name)
    dev = _DEVICES.get(norm_module(name))
    if (st.state in ("absent", "unknown") and ctx.host.live and dev
            and ctx.host.is_char_device(dev)):
        return ModuleState(st.name, "builtin", f"{dev} exists and no module file provides it: built in")
    return st


def _modprobe_config(ctx: PlanCtx, replace: dict[str, str] | None = None) -> ModprobeConfig:
    """modprobe.d as modprobe reads it (not memoized: planning again must see new files);
    ``replace`` substitutes a file's content (host path -> text) to predict a change."""
    replace = replace or {}
    cfg = ModprobeConfig()
    chosen = {p.rsplit("/", 1)[1]: p for p in effective_conf_files(ctx.host, MODPROBE_DIRS)}
    for path in replace:  # files kvmprep writes live in /etc/modprobe.d, which masks the other dirs
        chosen[path.rsplit("/", 1)[1]] = path
    for path in (chosen[n] for n in sorted(chosen)):
        text = replace[path] if path in replace else ctx.host.read_text(path)
        if text is None:
            continue
        cfg.files.append(path)
        parse_modprobe_text(text, path, cfg)  # host paths: they are edited below
    return cfg


# ---- load now and at boot -----------------------------------------------------------

def _load_now_and_at_boot(ctx: PlanCtx, modules: list[str], conf: str, why: str,
                          strict: bool = False) -> Proposal:
    """LoadModule (live, not loaded yet) and modules-load.d/<conf> for ``modules``.

    ``strict``: a module whose presence cannot be told (offline root without
    lib/modules) is not listed; otherwise it is (KVM is worth a boot-time try).
    """
    prop = Proposal()
    # module names only: modprobe's operand, one line of modules-load.d each
    modules, bad = names.partition(names.module_name, modules)
    prop.notes += [f"{b}: not loaded" for b in bad]
    listed = modules_listed_for_boot(ctx)
    blocked = _modprobe_config(ctx).install
    to_list, to_load, settled, for_boot = [], [], [], []
    for name in modules:
        state = _state(ctx, name)
        if state.state == "builtin":
            settled.append(f"{name} built in")
            continue
        if state.state == "absent" or (state.state == "unknown" and (ctx.host.live or strict)):
            missing = (f"{name}: not available in this kernel ({state.source})" if state.state == "absent" else
                       f"{name}: cannot tell whether this kernel has it ({state.source})")
            prop.notes.append(missing)  # (not `why`: that is every LoadModule's reason below)
            if name in _CHECK_OF:
                prop.cannot[_CHECK_OF[name]] = missing
            continue
        for_boot.append(name)
        if name in blocked and re.search(r"/bin/(false|true)\b", blocked[name][0]):
            prop.notes.append(f"{name}: 'install {name} {blocked[name][0]}' in {ctx.host.display(blocked[name][1])} "
                              "stops modprobe from loading it; remove that line first")
        if state.state != "loaded":
            to_load.append(name)
        if name not in listed:
            to_list.append(name)
        elif state.state == "loaded":
            settled.append(f"{name} loaded and listed for boot")
        else:
            settled.append(f"{name} listed for boot")
    for name in to_load:
        if ctx.offline:
            prop.notes.append(f"modprobe {name} now: skipped, an offline root has no running kernel "
                              "(it loads at boot from the list)")
        else:
            prop.actions.append(LoadModule(module=name, runtime=True, why=why))
    _unblacklist(ctx, for_boot, prop)
    if to_list:
        path = f"/etc/modules-load.d/{conf}"
        old = text_for_edit(ctx, path)
        if old and old.strip():
            content = old + ("" if old.endswith("\n") else "\n") + "\n".join(to_list) + "\n"
        else:
            content = "# written by kvmprep: load these modules at boot\n" + "\n".join(to_list) + "\n"
        action = write_file(ctx, path, content, why=f"load {', '.join(to_list)} at every boot")
        if action:
            prop.actions.append(action)
    if not prop.actions:
        prop.nothing = "; ".join(settled + [n for n in prop.notes if not n.startswith("modprobe ")]) \
            or "already loaded (or built in) and listed for boot"
    return prop


def _without_blacklist(text: str, module: str) -> str:
    """``text`` with its ``blacklist <module>`` lines commented out ('-' and '_' alike),
    every other line and byte kept."""
    mod = norm_module(module)
    out = []
    for line in text.splitlines(keepends=True):
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] == "blacklist" and norm_module(words[1]) == mod:
            body = line.rstrip("\r\n")
            line = f"# {body}  # disabled by kvmprep: {module} is loaded at boot{line[len(body):]}"
        out.append(line)
    return "".join(out)


def _unblacklist(ctx: PlanCtx, modules: list[str], prop: Proposal) -> None:
    """Comment out the modprobe.d blacklist lines of ``modules`` (listed for boot), see
    the module doc: a WriteFile per file under /etc, a note for any other file."""
    cfg = _modprobe_config(ctx)
    denied = [m for m in modules if norm_module(m) in cfg.blacklist]
    for path in cfg.files if denied else []:
        old = text_for_edit(ctx, path)
        if old is None:
            continue
        new = old
        for m in denied:
            new = _without_blacklist(new, m)
        if new == old:
            continue
        mods = [m for m in denied if _without_blacklist(old, m) != old]
        why = (f"'blacklist {', '.join(mods)}' keeps the boot from loading {', '.join(mods)} "
               "(systemd-modules-load and udev skip blacklisted modules)")
        if not path.startswith("/etc/"):
            prop.notes.append(f"{why}: it is in {ctx.host.display(path)}; copy that file to /etc/modprobe.d/ "
                              "without those lines")
            continue
        action = write_file(ctx, path, new, why=why)
        if action:
            prop.actions.append(action)


@remediation(
    "load-kvm-modules",
    title="Load the KVM modules now and at every boot",
    fixes=("kvm.modules", "kvm.device", "kvm.usable", "cpu.virt-extensions", "kvm.tun"),
    description="modprobe kvm and kvm_intel/kvm_amd (kvm_hv on POWER) and tun now, and list them in "
                "/etc/modules-load.d/kvm.conf for boot.",
)
def load_kvm_modules(ctx: PlanCtx) -> Proposal:
    vendor = ctx.facts.vendor_module
    arch = ctx.facts.cpu.arch or ""
    if vendor is None and not arch.startswith(("s390", "aarch64", "arm64")):
        return nothing("the CPU vendor is unknown (no proc/cpuinfo): cannot tell kvm_intel from kvm_amd")
    # kvm_pvm is what this kernel already runs KVM through (built in); arm64/s390x need kvm alone.
    wanted = ["kvm"] + ([vendor] if vendor and vendor != "kvm_pvm" else []) + ["tun"]
    return _load_now_and_at_boot(ctx, wanted, "kvm.conf", "KVM needs kvm plus the CPU vendor's module; "
                                 "tun gives guests tap network devices")


@remediation(
    "load-vhost-net",
    title="Load vhost_net now and at every boot",
    fixes=("kvm.vhost-net",),
    description="modprobe vhost_net now and list it in /etc/modules-load.d/vhost-net.conf for boot "
                "(nothing when it is built in or not in this kernel).",
)
def load_vhost_net(ctx: PlanCtx) -> Proposal:
    state = _state(ctx, "vhost_net")
    if state.state == "absent":
        return nothing(f"this kernel has no vhost_net ({state.source}): use a kernel built with CONFIG_VHOST_NET")
    if state.state == "unknown":
        return nothing(f"cannot tell whether this kernel has vhost_net ({state.source})")
    return _load_now_and_at_boot(ctx, ["vhost_net"], "vhost-net.conf",
                                 "vhost-net moves guest network packets in the kernel instead of QEMU", strict=True)


# ---- modprobe.d options ---------------------------------------------------------------

def _with_option(old: str | None, module: str, param: str, value: str) -> str:
    """``old`` with ``module param=value`` set: the value replaced on every options line
    for the module that sets it, or one options line appended; every other line kept."""
    mod = norm_module(module)
    token = re.compile(r"(?<!\S)" + "[-_]".join(re.escape(p) for p in re.split(r"[-_]", param)) + r"=\S*")
    lines = (old or "").splitlines(keepends=True)
    found = False
    for i, line in enumerate(lines):
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[0] == "options" and norm_module(words[1]) == mod:
            head, sep, rest = line.partition(words[1])
            new_rest, n = token.subn(f"{param}={value}", rest)
            if n:
                found = True
                lines[i] = head + sep + new_rest
    if found:
        return "".join(lines)
    text = "".join(lines)
    if not text.strip():
        text = "# written by kvmprep: nested virtualization (read by modprobe when the module loads)\n"
    elif not text.endswith("\n"):
        text += "\n"
    return text + f"options {module} {param}={value}\n"


# ---- nested: who holds the module, the initramfs ------------------------------------------

def kvm_holders(ctx: PlanCtx, module: str) -> list[str]:
    """What keeps ``module`` from being unloaded: processes with /dev/kvm or a
    KVM VM open, running QEMU guests, modules that depend on it."""
    found: dict[int, str] = {}
    for pid in ctx.host.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = ctx.host.listdir(f"/proc/{pid}/fd")
        except Exception:  # another user's process (needs root) or gone
            continue
        for fd in fds:
            link = ctx.host.readlink(f"/proc/{pid}/fd/{fd}") or ""
            if link == "/dev/kvm" or link.startswith("anon_inode:kvm-vm"):
                try:
                    comm = (ctx.host.read_text(f"/proc/{pid}/comm") or "").strip()
                except Exception:
                    comm = ""
                found[int(pid)] = comm or "?"
                break
    for p in ctx.facts.guests:
        found.setdefault(p.pid, p.comm)
    out = [f"{comm} (pid {pid})" for pid, comm in sorted(found.items())]
    out += [f"module {m}" for m in ctx.host.listdir(f"/sys/module/{module}/holders")]
    return out


def _initramfs_includes(ctx: PlanCtx, module: str) -> tuple[str, str] | None:
    """(tool, file) when the initramfs configuration adds ``module`` to the image."""
    mod = norm_module(module)
    for path in (["/etc/initramfs-tools/modules"] + ctx.host.glob("/etc/initramfs-tools/modules.d", "*")
                 + ctx.host.glob("/usr/share/initramfs-tools/modules.d", "*")):
        for line in (ctx.host.read_text(path) or "").splitlines():
            words = line.split("#", 1)[0].split()
            if words and norm_module(words[0]) == mod:
                return "initramfs-tools", path
    drv = re.compile(r"^\s*(?:add_drivers|force_drivers|drivers)\s*\+?=\s*[\"']?([^\"'#]*)")
    for path in (["/etc/dracut.conf"] + effective_conf_files(ctx.host, ("/etc/dracut.conf.d",
                                                                       "/usr/lib/dracut/dracut.conf.d"))):
        for line in (ctx.host.read_text(path) or "").splitlines():
            m = drv.match(line)
            if m and mod in {norm_module(w) for w in m.group(1).split()}:
                return "dracut", path
    return None


def _initramfs_image(ctx: PlanCtx, release: str) -> str | None:
    for path in (f"/boot/initrd.img-{release}", f"/boot/initramfs-{release}.img", f"/boot/initrd-{release}"):
        if ctx.host.is_file(path):
            return path
    return None


def _mtime(ctx: PlanCtx, path: str) -> float | None:
    st = ctx.host.stat(path)
    return None if st is None else st.st_mtime


def _initramfs_step(ctx: PlanCtx, module: str, conf_changes: bool, conf_files: list[str], prop: Proposal) -> None:
    """Regenerate the initramfs when it carries ``module`` and its copy of modprobe.d is stale."""
    inc = _initramfs_includes(ctx, module)
    release = ctx.facts.kernel.release
    if inc is None or not release:
        return
    tool, listed_in = inc
    image = _initramfs_image(ctx, release)
    if not conf_changes:
        if image is None:
            return
        newest = max((_mtime(ctx, f) or 0 for f in conf_files), default=0)
        if (_mtime(ctx, image) or 0) >= newest:
            return  # the image was built after the options changed
    argv = (["update-initramfs", "-u", "-k", release] if tool == "initramfs-tools"
            else ["dracut", "-f", "--kver", release])
    where = f"{module} is in the initramfs ({ctx.host.display(listed_in)})"
    if ctx.offline:
        prop.notes.append(f"{where}: regenerate it inside the root before booting it: "
                          f"chroot {ctx.host.root} {' '.join(argv)}")
        return
    prop.actions.append(RunCommand(argv=argv, reboot=True, title=f"regenerate the initramfs for {release}",
                                   undo_argv=argv, undo_at_end=True,
                                   why=f"{where}: it loads there with the options copied into the image"))


# ---- enable-nested ------------------------------------------------------------------------------

def _nested_pvm(ctx: PlanCtx) -> Proposal:
    for name in ("nested_pvm", "kvm_pvm.nested"):
        value, source = boot_arg_value(ctx, name)
        if value is None:
            continue
        if truthy(value) is True:
            return nothing(f"kvm_pvm: PVM nesting is controlled by the kernel command line (nested_pvm=), "
                           f"not modprobe.d; it is already on: {name}={value} ({source})")
        prop = kernel_arg_proposal(ctx, f"{name}=1", why="kvm_pvm reads nesting from the kernel command line only")
        prop.notes.insert(0, f"kvm_pvm: PVM nesting is controlled by the kernel command line; now {name}={value} "
                             f"({source})")
        return prop
    prop = kernel_arg_proposal(ctx, "nested_pvm=1", why="kvm_pvm reads nesting from the kernel command line only")
    prop.notes.insert(0, "kvm_pvm: PVM nesting is controlled by the kernel command line (nested_pvm=), not modprobe.d")
    return prop


@remediation(
    "enable-nested",
    title="Enable nested virtualization",
    fixes=("kvm.nested",),
    description="options kvm_intel|kvm_amd nested=1 in /etc/modprobe.d/kvm-nested.conf; reload the module now "
                "when nothing holds it (otherwise pending reboot); kernel argument when KVM is built in; "
                "regenerate the initramfs when it carries the module.",
)
def enable_nested(ctx: PlanCtx) -> Proposal:
    mod = ctx.facts.vendor_module
    if mod is None and (ctx.facts.cpu.arch or "").startswith("s390"):
        mod = "kvm"  # s390x: nested is a parameter of kvm itself
    if mod is None:
        return nothing("no vendor KVM module known for this CPU (no proc/cpuinfo or not x86/POWER/s390x)")
    if mod == "kvm_pvm":
        return _nested_pvm(ctx)
    try:  # modprobe's operand, a word of modprobe.d and of the kernel command line
        names.module_name(mod)
    except names.BadName as exc:
        return nothing(f"the CPU's KVM module: {exc}: nested not enabled")
    state = _state(ctx, mod)
    if state.state in ("absent", "unknown") and not (state.state == "unknown" and ctx.offline):
        return nothing(f"{mod} is {'not in this kernel' if state.state == 'absent' else 'unknown'} ({state.source})")
    now = ctx.facts.module_param(mod, "nested") if ctx.host.live else None
    now_on = truthy(now)
    cmd_value, cmd_source = boot_arg_value(ctx, f"{mod}.nested")

    if state.state == "builtin":
        if truthy(cmd_value) is True or (cmd_value is None and now_on is True):
            return nothing(f"{mod} is built in and nested is on"
                           + (f": {mod}.nested={cmd_value} ({cmd_source})" if cmd_value is not None else f" now ({now})"))
        prop = kernel_arg_proposal(ctx, f"{mod}.nested=1",
                                   why=f"{mod} is built in: only the kernel command line sets its parameters")
        prop.notes.insert(0, f"{mod} is built in ({state.source}): modprobe.d does not apply")
        return prop

    prop = Proposal()
    running_cmd = cmdline_value(ctx.facts.kernel.cmdline, f"{mod}.nested") if ctx.host.live else None
    cur = _modprobe_config(ctx).option(mod, "nested")
    after = cmd_value if cmd_value is not None else (cur.value if cur is not None else now)
    if now_on is True and truthy(after) is not False:
        return nothing(f"{mod} nested is on now ({now}) and nothing turns it off at the next boot")

    # 1. modprobe.d: options <mod> nested=1, and nothing read later turns it off
    changes: dict[str, str] = {}
    if cur is None or truthy(cur.value) is not True:
        changes[NESTED_CONF] = _with_option(text_for_edit(ctx, NESTED_CONF), mod, "nested", "1")
        opt = _modprobe_config(ctx, changes).option(mod, "nested")
        if opt is not None and truthy(opt.value) is not True and opt.file != NESTED_CONF \
                and opt.file.startswith("/etc/"):
            changes[opt.file] = _with_option(text_for_edit(ctx, opt.file), mod, "nested", "1")
        elif opt is not None and truthy(opt.value) is not True and opt.file != NESTED_CONF:
            prop.notes.append(f"'{opt.line}' in {ctx.host.display(opt.file)} is read after {NESTED_CONF} "
                              "and still wins: copy that file to /etc/modprobe.d/ and set nested=1 there")
    eff = _modprobe_config(ctx, changes).option(mod, "nested")
    conf_ok = eff is not None and truthy(eff.value) is True
    held: list[str] = []
    if ctx.host.live and state.state == "loaded" and now_on is not True:
        refcnt = ctx.host.read_first_line(f"/sys/module/{mod}/refcnt")
        held = kvm_holders(ctx, mod)
        if not held and refcnt and refcnt.isdigit() and int(refcnt) > 0:
            held = [f"{refcnt} user(s) (/sys/module/{mod}/refcnt)"]
    file_actions = []
    for path, content in changes.items():
        action = write_file(ctx, path, content, reboot=bool(held),
                            why=f"modprobe passes nested=1 to {mod} whenever it loads it")
        if action:
            file_actions.append(action)
    prop.actions += file_actions

    # 2. the kernel command line wins over modprobe.d
    if cmd_value is not None and truthy(cmd_value) is not True:
        kprop = kernel_arg_proposal(ctx, f"{mod}.nested=1",
                                    why=f"{mod}.nested={cmd_value} on the kernel command line overrides modprobe.d")
        prop.actions += kprop.actions
        prop.notes += kprop.notes + ([kprop.nothing] if kprop.nothing else [])

    # 3. the initramfs copy of modprobe.d
    _initramfs_step(ctx, mod, bool(file_actions), [NESTED_CONF, *changes], prop)

    # 4. the running module
    if now_on is True:
        pass
    elif ctx.offline:
        if prop.actions:
            prop.notes.append(f"offline root: {mod} reads nested=1 when it loads at boot (no reload here)")
    elif state.state != "loaded":
        if prop.actions and truthy(running_cmd) is False:
            # modprobe adds the running command line's options after modprobe.d's: they win until the reboot
            prop.notes.append(f"{mod} is not loaded; until the reboot, modprobe {mod} passes {mod}.nested={running_cmd} "
                              "from the running kernel command line (/proc/cmdline): nested stays off until then")
        elif prop.actions:
            prop.notes.append(f"{mod} is not loaded: it reads nested=1 when it is loaded (modprobe {mod})")
    elif held:
        prop.notes.append(f"pending reboot: {mod} cannot be reloaded now, held by {', '.join(held)}")
    elif not conf_ok or truthy(running_cmd) is False:
        prop.notes.append(f"{mod} is not reloaded: modprobe would not pass nested=1 yet (see above)")
    else:
        prop.actions.append(LoadModule(module=mod, reload=True, runtime=True,
                                       why=f"nothing holds {mod}: reloading it applies nested=1 now"))

    if not prop.actions:
        settled = (f"'{eff.line}' is set ({ctx.host.display(eff.file)})" if conf_ok and eff is not None
                   else f"options {mod} nested=1 cannot take effect")
        return nothing("; ".join([settled] + prop.notes))
    return prop
