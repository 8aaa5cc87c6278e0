"""Kernel command line: turn the Intel IOMMU (VT-d) on at boot.

``intel_iommu=on`` goes on the kernel command line through
remediations/bootloader.py: ``grubby --update-kernel ALL --args intel_iommu=on``
on a live root with grubby (EL/Fedora); elsewhere into GRUB's settings
(/etc/default/grub and /etc/default/grub.d/*.cfg, every other line and the
quoting kept; an ``intel_iommu=off,sm_on`` list becomes ``on,sm_on`` where it
is), then the boot menu is regenerated (``update-grub`` or ``grub2-mkconfig -o
/boot/grub2/grub.cfg``; undo runs it again after the settings are restored).
AMD needs no argument at all (AMD-Vi is on by default when the firmware has an
IVRS table); ``amd_iommu=on`` is not even a valid value.
"""

from __future__ import annotations

from checks.catalog.iommu import _kernel_config, firmware_iommu
from checks.bootcmdline import cmdline_value, grub_cmdline, next_boot_value

from ..bootloader import (GRUB_D, GRUB_DEFAULT, boot_entry_cmdlines, grub_generator, has_grubby,  # noqa: F401
                          kernel_arg_proposal, menu_cmdlines, regenerate_menu)
from ..helpers import check_ctx
from ..registry import PlanCtx, Proposal, nothing, remediation

_INTEL_LIKE = ("intel", "centaur", "zhaoxin")  # VT-d through the DMAR table and intel_iommu=
ARG = "intel_iommu=on"


def _opts(value: str | None) -> list[str]:
    return [o.strip() for o in value.split(",")] if value is not None else []


def _fixed_value(value: str | None) -> str:
    """intel_iommu's new value: 'off' becomes 'on', other options (sm_on...) are kept."""
    opts = [o for o in _opts(value) if o and o != "off"]
    return ",".join(["on"] + [o for o in opts if o != "on"])


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

    if host.live and has_grubby(ctx):
        entries = boot_entry_cmdlines(ctx)
        values = [cmdline_value(e, "intel_iommu") for e in entries] or [cmdline_value(running, "intel_iommu")]
        if all("on" in _opts(v) for v in values):
            return nothing("intel_iommu=on is on every boot entry" + ("" if "on" in _opts(cmdline_value(
                running, "intel_iommu")) else "; it takes effect at the next reboot"))
        if default_on and all(v is None for v in values):
            return nothing("this kernel turns VT-d on by default (CONFIG_INTEL_IOMMU_DEFAULT_ON=y)")
        prop = kernel_arg_proposal(ctx, ARG, runtime=True,
                                   why="the kernel leaves Intel VT-d off unless told; grubby updates every boot entry")
        prop.notes[:0] = notes
        return prop

    grub = grub_cmdline(host)
    current = cmdline_value(grub[0], "intel_iommu") if grub else None
    if "on" in _opts(current):
        regen = grub_generator(ctx) if host.live else None
        menu = menu_cmdlines(ctx) if regen else []
        if menu and not all("on" in _opts(cmdline_value(m, "intel_iommu")) for m in menu):
            return Proposal(actions=[regenerate_menu(
                regen, runtime=True,
                why=f"{grub[1]} has intel_iommu=on but the generated grub.cfg does not yet")], notes=notes)
        return nothing(f"{grub[1]} already sets intel_iommu=on" + (
            "" if not host.live or "on" in _opts(cmdline_value(running, "intel_iommu"))
            else "; it takes effect at the next reboot"))
    if current is None and default_on:
        return nothing("this kernel turns VT-d on by default (CONFIG_INTEL_IOMMU_DEFAULT_ON=y)")
    in_kernel_cmdline = cmdline_value((host.read_text("/etc/kernel/cmdline") or "").split(), "intel_iommu")
    if in_kernel_cmdline is not None and "on" not in _opts(in_kernel_cmdline):
        notes.append(f"{host.display('/etc/kernel/cmdline')} sets intel_iommu too: change it there by hand")
    prop = kernel_arg_proposal(ctx, ARG, value=_fixed_value, runtime=True, guess_generator=False,
                               why=f"{ARG} on the kernel command line of every GRUB entry (GRUB_CMDLINE_LINUX)")
    if prop.nothing is None:
        prop.notes[:0] = notes
    return prop
