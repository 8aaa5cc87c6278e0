"""Kernel command line: turn the Intel IOMMU (VT-d) on at boot.

EL/Fedora (grubby in the root, live): ``grubby --update-kernel ALL --args
intel_iommu=on``. Elsewhere: ``intel_iommu=on`` goes into GRUB_CMDLINE_LINUX of
/etc/default/grub (every other line and the quoting kept), then the boot menu
is regenerated (``update-grub`` or ``grub2-mkconfig -o /boot/grub2/grub.cfg``).

Undo runs actions in reverse order, so a regeneration placed after the file
edit would be undone *before* the file is restored. The regeneration that undo
needs therefore hangs on an action placed *before* the edit: a dry run of the
generator (it prints the menu and writes nothing, and proves the generator
works before anything is changed) whose undo regenerates the menu from the
restored file. AMD needs no argument at all (AMD-Vi is on by default when the
firmware has an IVRS table); ``amd_iommu=on`` is not even a valid value.
"""

from __future__ import annotations

import re

from checks.catalog.iommu import _kernel_config, firmware_iommu
from checks.modprobe_conf import _grub_cmdline, cmdline_value, next_boot_value

from ..actions import AddKernelArgs, RunCommand
from ..helpers import check_ctx, text_for_edit, write_file
from ..registry import PlanCtx, Proposal, nothing, remediation

GRUB_DEFAULT = "/etc/default/grub"
GRUB_D = "/etc/default/grub.d"
_BIN_DIRS = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
_INTEL_LIKE = ("intel", "centaur", "zhaoxin")  # VT-d through the DMAR table and intel_iommu=
ARG = "intel_iommu=on"

# GRUB_CMDLINE_LINUX= / GRUB_CMDLINE_LINUX_DEFAULT= assignments (optionally exported)
_ASSIGN = re.compile(r"^(?P<lead>[ \t]*(?:export[ \t]+)?)(?P<key>GRUB_CMDLINE_LINUX(?:_DEFAULT)?)="
                     r"(?P<rest>.*?)(?P<eol>\r?\n?)$", re.S)
_TOKEN = re.compile(r"(?<![^\s\"'])intel[-_]iommu(?:=(?P<val>[^\s\"']*))?(?![^\s\"'])")


def _tool(ctx: PlanCtx, *names: str) -> str | None:
    for name in names:
        if any(ctx.host.exists(f"{d}/{name}") for d in _BIN_DIRS):
            return name
    return None


def _opts(value: str | None) -> list[str]:
    return [o.strip() for o in value.split(",")] if value is not None else []


def _fixed_value(value: str | None) -> str:
    """intel_iommu's new value: 'off' becomes 'on', other options (sm_on...) are kept."""
    opts = [o for o in _opts(value) if o and o != "off"]
    return ",".join(["on"] + [o for o in opts if o != "on"])


# ---- /etc/default/grub ---------------------------------------------------------

def _split_value(rest: str) -> tuple[str, str, str, str]:
    """An assignment's right side -> (quote, content, closing quote, trailing text)."""
    if rest[:1] in ("'", '"'):
        q = rest[0]
        i = 1
        while i < len(rest):
            if rest[i] == "\\" and q == '"':
                i += 2
                continue
            if rest[i] == q:
                return q, rest[1:i], q, rest[i + 1:]
            i += 1
        return q, rest[1:], "", ""  # unbalanced: leave the line alone (caller checks)
    m = re.match(r"(\S*)(.*)", rest, re.S)
    return "", m.group(1), "", m.group(2)


def _replace_tokens(line: str) -> str | None:
    """The assignment line with its intel_iommu tokens set to on (their other options kept);
    None when its value names no intel_iommu (a trailing comment does not count)."""
    m = _ASSIGN.match(line)
    q, content, close, trail = _split_value(m.group("rest"))
    if not _TOKEN.search(content) or (q and not close):
        return None
    content = _TOKEN.sub(lambda t: "intel_iommu=" + _fixed_value(t.group("val")), content)
    return f"{m.group('lead')}{m.group('key')}={q}{content}{close}{trail}{m.group('eol')}"


def _append_token(line: str) -> str | None:
    """The assignment line with intel_iommu=on appended inside its value (quoting kept)."""
    m = _ASSIGN.match(line)
    q, content, close, trail = _split_value(m.group("rest"))
    if q and not close:
        return None
    content = (content.rstrip() + " " + ARG) if content.strip() else ARG
    if not q:
        q = close = '"'  # the value now has a blank in it: it needs quotes
    return f"{m.group('lead')}{m.group('key')}={q}{content}{close}{trail}{m.group('eol')}"


def _grub_files(ctx: PlanCtx) -> list[str]:
    return [GRUB_DEFAULT] + sorted(ctx.host.glob(GRUB_D, "*.cfg"))


def plan_grub_edits(ctx: PlanCtx) -> tuple[dict[str, tuple[str | None, str]], str | None]:
    """{path: (old text, new text)} that puts intel_iommu=on on GRUB's command line, or a problem."""
    texts: dict[str, str | None] = {}
    for path in _grub_files(ctx):
        text, problem = text_for_edit(ctx, path)
        if problem:
            return {}, problem
        texts[path] = text
    new: dict[str, list[str]] = {p: (t or "").splitlines(keepends=True) for p, t in texts.items()}
    replaced = False
    last = None  # (path, index) of the last GRUB_CMDLINE_LINUX assignment, in reading order
    for path, lines in new.items():
        for i, line in enumerate(lines):
            m = _ASSIGN.match(line)
            if not m:
                continue
            if m.group("key") == "GRUB_CMDLINE_LINUX":
                last = (path, i)
            edited = _replace_tokens(line)
            if edited is not None:
                lines[i] = edited
                replaced = True
    if not replaced:
        if last is not None:
            path, i = last
            edited = _append_token(new[path][i])
            if edited is None:
                return {}, (f"cannot edit {ctx.host.display(path)} line {i + 1} (unbalanced quotes): "
                            f"add {ARG} to GRUB_CMDLINE_LINUX by hand")
            new[path][i] = edited
        else:
            lines = new[GRUB_DEFAULT]
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines.append(f'GRUB_CMDLINE_LINUX="{ARG}"\n')
    out = {}
    for path, lines in new.items():
        content = "".join(lines)
        if content != (texts[path] or ""):
            out[path] = (texts[path], content)
    return out, None


# ---- boot menu ---------------------------------------------------------------------

def _generator(ctx: PlanCtx) -> tuple[list[str], list[str]] | None:
    """(command that regenerates grub.cfg, dry run of the generator that writes nothing)."""
    if _tool(ctx, "update-grub"):
        return ["update-grub"], ["grub-mkconfig"]
    if _tool(ctx, "grub2-mkconfig"):
        return ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"], ["grub2-mkconfig"]
    if _tool(ctx, "grub-mkconfig"):
        return ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"], ["grub-mkconfig"]
    return None


def _menu_cmdlines(ctx: PlanCtx) -> list[list[str]]:
    """Kernel arguments of the linux lines of the generated grub.cfg (none with BLS entries)."""
    out = []
    for p in ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg"):
        for line in (ctx.host.read_text(p) or "").splitlines():
            words = line.split()
            if words and words[0] in ("linux", "linux16", "linuxefi"):
                out.append(words[2:])
        if out:
            break
    return out


# ---- boot entries (grubby) -------------------------------------------------------

def _boot_entry_cmdlines(ctx: PlanCtx) -> list[list[str]]:
    """Kernel arguments of every boot entry: BLS entries ($kernelopts from grubenv), else grub.cfg."""
    host = ctx.host
    env = {}
    for p in ("/boot/grub2/grubenv", "/boot/grub/grubenv"):
        for line in (host.read_text(p) or "").splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() and not k.startswith("#"):
                env.setdefault(k.strip(), v)
    out = []
    for p in sorted(host.glob("/boot/loader/entries", "*.conf")):
        for line in (host.read_text(p) or "").splitlines():
            words = line.split()
            if words and words[0] == "options":
                toks = []
                for w in words[1:]:
                    toks += env.get(w[1:], "").split() if w.startswith("$") else [w]
                out.append(toks)
    return out or _menu_cmdlines(ctx)


# ---- the remediation ---------------------------------------------------------------

@remediation(
    "enable-iommu",
    title="Turn the IOMMU on at boot (intel_iommu=on)",
    fixes=("iommu.kernel",),
    description="Intel: add intel_iommu=on to the kernel command line with grubby (EL/Fedora) or in "
                "GRUB_CMDLINE_LINUX of /etc/default/grub followed by update-grub / grub2-mkconfig; "
                "takes effect after a reboot. AMD needs no argument (AMD-Vi is on when the firmware "
                "has it on).",
)
def enable_iommu(ctx: PlanCtx) -> Proposal:
    host = ctx.host
    cctx = check_ctx(ctx, "iommu.kernel")
    cpu = ctx.facts.cpu
    if cpu.arch and cpu.arch not in ("x86_64", "i686", "i386"):
        return nothing(f"{cpu.arch}: the IOMMU needs no kernel argument on this architecture")
    if host.live:
        groups = host.listdir("/sys/kernel/iommu_groups")
        if groups:
            return nothing(f"the kernel already enabled the IOMMU ({len(groups)} IOMMU groups)")
    if cpu.vendor in ("amd", "hygon"):
        off = [f"{n}=off" for n in ("amd_iommu", "iommu")
               if "off" in _opts(cmdline_value(ctx.facts.kernel.cmdline, n) if host.live
                                 else next_boot_value(host, [], n)[0])]
        return nothing("AMD: no kernel argument is needed (AMD-Vi is on by default when the firmware has an "
                       "IVRS table); enable IOMMU (AMD-Vi) in the BIOS/UEFI setup"
                       + (f", and remove {' '.join(off)} from the kernel command line" if off else ""))
    if cpu.vendor not in _INTEL_LIKE:
        return nothing("the CPU vendor is unknown (no proc/cpuinfo): cannot tell Intel VT-d from AMD-Vi")

    running = ctx.facts.kernel.cmdline if host.live else []
    config, config_src = _kernel_config(cctx)
    if config.get("CONFIG_INTEL_IOMMU") == "n":
        return nothing(f"this kernel is built without Intel IOMMU support ({config_src}: "
                       "CONFIG_INTEL_IOMMU is not set): boot a kernel built with it")
    default_on = config.get("CONFIG_INTEL_IOMMU_DEFAULT_ON") == "y"

    notes: list[str] = []
    if host.is_dir("/sys/firmware"):
        found, _ = firmware_iommu(cctx)
        if "intel" not in {v for v, _ in found}:
            notes.append("the firmware reports no VT-d (no ACPI DMAR table): enable VT-d in the BIOS/UEFI "
                         "setup too, or intel_iommu=on has nothing to turn on")
    for name in ("amd_iommu", "iommu"):
        if "off" in _opts(cmdline_value(running, name)):
            notes.append(f"{name}=off is on the running command line: remove it by hand")

    grubby = host.live and _tool(ctx, "grubby")
    if grubby:
        entries = _boot_entry_cmdlines(ctx)
        values = [cmdline_value(e, "intel_iommu") for e in entries] or [cmdline_value(running, "intel_iommu")]
        if all("on" in _opts(v) for v in values):
            return nothing("intel_iommu=on is on every boot entry" + ("" if "on" in _opts(cmdline_value(
                running, "intel_iommu")) else "; it takes effect at the next reboot"))
        if default_on and all(v is None for v in values):
            return nothing("this kernel turns VT-d on by default (CONFIG_INTEL_IOMMU_DEFAULT_ON=y)")
        return Proposal(actions=[AddKernelArgs(
            args=[ARG], reboot=True, runtime=True,
            why="the kernel leaves Intel VT-d off unless told; grubby updates every boot entry")], notes=notes)

    grub = _grub_cmdline(host)
    current = cmdline_value(grub[0], "intel_iommu") if grub else None
    if "on" in _opts(current):
        tools = _generator(ctx) if host.live else None
        menu = _menu_cmdlines(ctx) if tools else []
        if menu and not all("on" in _opts(cmdline_value(m, "intel_iommu")) for m in menu):
            regen, _ = tools
            return Proposal(actions=[RunCommand(
                argv=regen, undo_argv=regen, runtime=True, reboot=True,
                title=f"regenerate the boot menu ({' '.join(regen)})",
                why=f"{grub[1]} has intel_iommu=on but the generated grub.cfg does not yet (undo regenerates "
                    "it again from the settings as they are then)")], notes=notes)
        return nothing(f"{grub[1]} already sets intel_iommu=on" + (
            "" if not host.live or "on" in _opts(cmdline_value(running, "intel_iommu"))
            else "; it takes effect at the next reboot"))
    if current is None and default_on:
        return nothing("this kernel turns VT-d on by default (CONFIG_INTEL_IOMMU_DEFAULT_ON=y)")
    in_kernel_cmdline = cmdline_value((host.read_text("/etc/kernel/cmdline") or "").split(), "intel_iommu")
    if in_kernel_cmdline is not None and "on" not in _opts(in_kernel_cmdline):
        notes.append(f"{host.display('/etc/kernel/cmdline')} sets intel_iommu too: change it there by hand")
    if not host.exists(GRUB_DEFAULT) and not host.glob(GRUB_D, "*.cfg"):
        return nothing(f"no GRUB configuration ({host.display(GRUB_DEFAULT)}) and no grubby: add {ARG} to the "
                       "boot loader's kernel command line by hand (systemd-boot: /etc/kernel/cmdline)")
    edits, problem = plan_grub_edits(ctx)
    if problem:
        return nothing(problem)
    writes = [write_file(ctx, path, new, reboot=True,
                         why=f"{ARG} on the kernel command line of every GRUB entry (GRUB_CMDLINE_LINUX)")
              for path, (_, new) in edits.items()]
    writes = [w for w in writes if w]
    if not writes:
        return nothing("GRUB's command line already has intel_iommu=on")

    fam = ctx.facts.os.family
    if host.live:
        tools = _generator(ctx)
        if tools:
            regen, dry = tools
        else:
            notes.append("neither update-grub nor grub2-mkconfig/grub-mkconfig is installed: regenerate the "
                         "boot loader configuration by hand, or the change waits for it")
            return Proposal(actions=writes, notes=notes)
        shown = " ".join(regen)
        actions = [
            RunCommand(argv=dry, undo_argv=regen, runtime=True,
                       title=f"check that {dry[0]} works with the current settings (prints the menu, writes nothing)",
                       why=f"nothing is edited if the generator fails; on undo this step runs {shown} "
                           "after the original settings are back"),
            *writes,
            RunCommand(argv=regen, undo_argv=dry, runtime=True, reboot=True,
                       title=f"regenerate the boot menu ({shown})",
                       why="the boot loader reads the generated grub.cfg, not /etc/default/grub; "
                           "undo regenerates it (the step before) once the file is restored"),
        ]
        return Proposal(actions=actions, notes=notes)
    cmd = "update-grub" if fam == "debian" else "grub2-mkconfig -o /boot/grub2/grub.cfg"
    notes.append("offline root: only the GRUB settings are edited; the boot menu is regenerated at the next "
                 f"kernel update, or run `{cmd}` inside the system")
    if _tool(ctx, "grubby"):
        notes.append("this root uses grubby/BLS entries, which keep their own options: run "
                     f"`grubby --update-kernel ALL --args {ARG}` inside the system")
    return Proposal(actions=writes, notes=notes)
