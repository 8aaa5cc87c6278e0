"""IOMMU: does the firmware describe one, and did the kernel turn it on?"""

from __future__ import annotations

import re

from ..model import failed, passed, skipped, warned
from ..bootcmdline import cmdline_value, next_boot_value
from ..registry import Ctx, check

ACPI_TABLES = "/sys/firmware/acpi/tables"
_TABLES = {
    "DMAR": ("intel", "Intel VT-d (ACPI DMAR table)"),
    "IVRS": ("amd", "AMD-Vi (ACPI IVRS table)"),
    "IORT": ("arm", "Arm SMMU (ACPI IORT table)"),
    "VIOT": ("virtio", "virtio-iommu (ACPI VIOT table)"),
}
_DT_ROOTS = ("/sys/firmware/devicetree/base", "/proc/device-tree")
_DT_RX = r"(?i)(^|[-_,])(iommu|smmu)"  # patterns are compiled on first use, not at import


def firmware_iommu(ctx: Ctx) -> tuple[list[tuple[str, str]], list[str]]:
    """[(vendor, description)] found in ACPI tables / device tree, and the table names."""
    names = ctx.host.listdir(ACPI_TABLES)
    tables = [n for n in names if not ctx.host.is_dir(f"{ACPI_TABLES}/{n}")]
    found = []
    for n in tables:
        base = re.sub(r"\d+$", "", n)
        if base in _TABLES and _TABLES[base] not in found:
            found.append(_TABLES[base])
    return found, tables


def _devicetree_iommu(ctx: Ctx) -> tuple[str | None, list[str]]:
    """A bounded walk of the device tree for iommu/smmu nodes."""
    for root in _DT_ROOTS:
        if not ctx.host.is_dir(root):
            continue
        hits: list[str] = []
        queue, seen = [(root, 0)], 0
        while queue and seen < 3000 and len(hits) < 4:
            path, depth = queue.pop(0)
            for name in ctx.host.listdir(path):
                seen += 1
                child = f"{path}/{name}"
                if not ctx.host.is_dir(child):
                    continue
                if re.search(_DT_RX, name.split("@", 1)[0]):
                    hits.append(child[len(root):])
                elif depth < 3:
                    queue.append((child, depth + 1))
        return root, hits
    return None, []


@check(
    "iommu.firmware",
    title="IOMMU described by the firmware",
    why="PCI device passthrough (GPUs, NICs, SR-IOV) needs an IOMMU (Intel VT-d, AMD-Vi, Arm SMMU); "
        "the firmware must describe it and have it enabled before the kernel can use it.",
    source="libvirt virt-host-validate ('IOMMU supported by hardware'); DaoCloud virtnest (IOMMU recommended)",
)
def iommu_firmware(ctx: Ctx):
    host = ctx.host
    cpu = ctx.facts.cpu
    if cpu.arch and cpu.arch.startswith("ppc"):
        plat = cpu.platform or "unknown"
        if plat == "PowerNV":
            return passed("POWER PowerNV: the IOMMU (TCE tables, PHB) is always present",
                          (ctx.show("/proc/cpuinfo"), f"platform: {plat}"))
        return warned(f"POWER platform {plat}: DMA translation belongs to the partition firmware (PowerVM), "
                      "not to a KVM host", (ctx.show("/proc/cpuinfo"), f"platform: {plat}"))
    if cpu.arch and cpu.arch.startswith("s390"):
        return passed("s390x: zPCI devices always go through the platform's DMA translation",
                      (ctx.show("/proc/cpuinfo"), "s390x"))
    if not host.is_dir("/sys/firmware"):
        why = "offline root has no /sys" if not host.live else "/sys/firmware is hidden (containers do this)"
        return skipped(f"cannot tell: {why}", (ctx.show("/sys/firmware"), "missing"))
    found, tables = firmware_iommu(ctx)
    tev = (ctx.show(ACPI_TABLES), " ".join(tables) if tables else "no ACPI tables")
    if found:
        return passed(", ".join(desc for _, desc in found), tev)
    dt_root, dt_hits = _devicetree_iommu(ctx)
    if dt_hits:
        return passed(f"device tree describes an IOMMU ({', '.join(dt_hits[:2])})", (ctx.show(dt_root), ", ".join(dt_hits)))
    ev = [tev]
    if dt_root:
        ev.append((ctx.show(dt_root), "no iommu/smmu node"))
    if not tables and not dt_root:
        return warned("the firmware exposes neither ACPI tables nor a device tree: no IOMMU to be seen",
                      (ctx.show("/sys/firmware"), " ".join(host.listdir("/sys/firmware")) or "empty"))
    virt = ctx.facts.virt
    if virt.is_vm:
        return warned(f"firmware reports no IOMMU: this virtual machine ({virt.kind or 'hypervisor'}) has no virtual IOMMU",
                      *ev, hint="give the VM a virtual IOMMU (e.g. QEMU -device intel-iommu) if guests need passthrough")
    return warned("firmware reports no IOMMU (VT-d/AMD-Vi off in BIOS or absent)", *ev,
                  hint="enable Intel VT-d / AMD IOMMU (AMD-Vi) in the BIOS/UEFI setup")


def _kernel_config(ctx: Ctx) -> tuple[dict[str, str], str | None]:
    release = ctx.facts.kernel.release
    cands = [f"/boot/config-{release}"] if release else []
    cands += [f"/lib/modules/{release}/config"] if release else []
    for path in cands:
        text = ctx.host.read_text(path)
        if text is not None:
            return _parse_config(text), ctx.show(path)
    if ctx.host.live:
        raw = ctx.host.read_bytes("/proc/config.gz")
        if raw:
            import zlib  # gzip's format, without importing the gzip module (~1 ms)

            try:
                text = zlib.decompress(raw, 16 + zlib.MAX_WBITS).decode("utf-8", "replace")
            except zlib.error:
                pass
            else:
                return _parse_config(text), ctx.show("/proc/config.gz")
    return {}, None


_CONFIG_SET = r"(?m)^[ \t]*(CONFIG_\w+)=(.*?)[ \t]*$"
_CONFIG_UNSET = r"(?m)^[ \t]*# (CONFIG_\w+) is not set"


def _parse_config(text: str) -> dict[str, str]:
    """The IOMMU options of a kernel config (only those lines are parsed: it is 8000 lines)."""
    wanted = "\n".join(line for line in text.splitlines() if "IOMMU" in line)
    out = {m.group(1): "n" for m in re.finditer(_CONFIG_UNSET, wanted)}
    out.update((m.group(1), m.group(2)) for m in re.finditer(_CONFIG_SET, wanted))
    return out


@check(
    "iommu.kernel",
    title="IOMMU enabled by the kernel",
    why="Even with VT-d/AMD-Vi in firmware, device passthrough (VFIO) works only when the kernel turned the IOMMU on "
        "and put devices into IOMMU groups.",
    source="libvirt virt-host-validate ('IOMMU is enabled by kernel'); DaoCloud virtnest (IOMMU recommended)",
    remediations=("enable-iommu",),
)
def iommu_kernel(ctx: Ctx):
    host = ctx.host
    groups = host.listdir("/sys/kernel/iommu_groups")
    units = host.listdir("/sys/class/iommu")
    gev = (ctx.show("/sys/kernel/iommu_groups"), f"{len(groups)} groups" if groups else "empty or missing")
    uev = (ctx.show("/sys/class/iommu"), " ".join(units) if units else "empty or missing")
    if groups:
        return passed(f"{len(groups)} IOMMU groups" + (f" ({', '.join(units[:4])})" if units else ""), gev, uev)

    k = ctx.facts.kernel
    running = k.cmdline
    args = {}
    ev = []
    for name in ("intel_iommu", "amd_iommu", "iommu"):
        value, source = (cmdline_value(running, name), ctx.show("/proc/cmdline")) if host.live \
            else next_boot_value(host, running, name)
        if value is not None:
            args[name] = value
            ev.append((source, f"{name}={value}"))
    if not args:
        ev.append((ctx.show("/proc/cmdline") if host.live or running else "kernel command line",
                   "no intel_iommu=, amd_iommu= or iommu=" if (host.live or running) else "not known"))
    config, config_src = _kernel_config(ctx)
    default_on = config.get("CONFIG_INTEL_IOMMU_DEFAULT_ON") == "y"
    if config_src:
        ev.append((config_src, "CONFIG_INTEL_IOMMU=" + config.get("CONFIG_INTEL_IOMMU", "?") +
                   ", CONFIG_INTEL_IOMMU_DEFAULT_ON=" + config.get("CONFIG_INTEL_IOMMU_DEFAULT_ON", "?") +
                   ", CONFIG_AMD_IOMMU=" + config.get("CONFIG_AMD_IOMMU", "?")))
    found, _ = firmware_iommu(ctx) if host.is_dir("/sys/firmware") else ([], [])
    vendors = {v for v, _ in found}
    intel_opts = [o.strip() for o in args.get("intel_iommu", "").split(",")]
    off = [f"{n}={v}" for n, v in args.items() if "off" in [o.strip() for o in v.split(",")]]
    if args.get("amd_iommu", "").startswith("off"):
        off.append("amd_iommu=off")

    if not host.live:
        if off:
            return failed(f"the boot command line turns the IOMMU off ({', '.join(sorted(set(off)))})", *ev,
                          hint="remove " + " ".join(sorted(set(off))) + " from the kernel command line")
        if "on" in intel_opts or default_on:
            why = "intel_iommu=on" if "on" in intel_opts else "CONFIG_INTEL_IOMMU_DEFAULT_ON=y"
            return passed(f"the kernel will enable Intel VT-d at boot ({why}) if the firmware has it on", *ev)
        if config.get("CONFIG_AMD_IOMMU") == "y" and ctx.facts.cpu.vendor in ("amd", "hygon"):
            return passed("the kernel enables AMD-Vi by default when the firmware has an IVRS table", *ev)
        return skipped("offline root: no IOMMU groups to read, and the command line and kernel config do not decide it", *ev)

    ev = [gev, uev] + ev
    if off:
        return failed(f"turned off on the kernel command line ({', '.join(sorted(set(off)))})", *ev,
                      hint="remove " + " ".join(sorted(set(off))) + " from the kernel command line and reboot")
    if "intel" in vendors:
        if config.get("CONFIG_INTEL_IOMMU") == "n":
            return failed("the firmware has VT-d, but this kernel is built without Intel IOMMU support", *ev,
                          hint="boot a kernel built with CONFIG_INTEL_IOMMU=y")
        if "on" in intel_opts or default_on:
            return failed("VT-d is in firmware and the kernel is told to use it, yet there are no IOMMU groups "
                          "(look for DMAR errors in the kernel log)", *ev,
                          hint="dmesg | grep -i -e DMAR -e IOMMU")
        return failed("the firmware has VT-d, but this kernel leaves it off by default", *ev,
                      hint="add intel_iommu=on to the kernel command line (GRUB_CMDLINE_LINUX in /etc/default/grub), "
                           "update the boot loader and reboot")
    if "amd" in vendors:
        return failed("the firmware has an IVRS table and AMD-Vi is on by default, yet there are no IOMMU groups", *ev,
                      hint="check the BIOS/UEFI IOMMU (AMD-Vi) setting and dmesg | grep AMD-Vi; AMD needs no kernel argument to enable it")
    if vendors:
        return failed(f"the firmware describes an IOMMU ({', '.join(d for _, d in found)}), but the kernel did not enable it",
                      *ev, hint="dmesg | grep -i iommu")
    if not host.is_dir("/sys/firmware"):
        return failed("no IOMMU groups, and /sys/firmware is hidden so the firmware side cannot be seen", *ev,
                      hint="enable Intel VT-d / AMD IOMMU in the BIOS/UEFI setup; on Intel also add intel_iommu=on")
    if ctx.facts.virt.is_vm:
        return failed("no IOMMU active; this virtual machine's firmware reports none either (see iommu.firmware)", *ev,
                      hint="give the VM a virtual IOMMU (e.g. QEMU -device intel-iommu) if guests need passthrough")
    return failed("no IOMMU active; the firmware reports none either (see iommu.firmware)", *ev,
                  hint="enable Intel VT-d / AMD IOMMU in the BIOS/UEFI setup first")
