"""CPU: architecture, virtualization extensions, 64-bit, x86-64 level, size."""

from __future__ import annotations

import re

from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check

KVM_ARCHES = ["x86_64", "aarch64", "ppc64le", "ppc64", "s390x"]
_BIOS_RX = re.compile(r"(VMX \(outside TXT\) disabled by BIOS|SVM disabled \(by BIOS\)|"
                      r"kvm: disabled by bios|disabled by bios)", re.I)
_EXT_NAMES = {"vmx": "Intel VT-x (vmx)", "svm": "AMD-V (svm)",
              "powernv": "POWER hypervisor mode (PowerNV)", "sie": "s390 SIE"}


def _cpuinfo_ev(ctx: Ctx, what: str):
    return (ctx.show("/proc/cpuinfo"), what)


@check(
    "cpu.arch",
    title="CPU architecture supported by KVM",
    why="KVM exists for x86_64, aarch64, POWER and s390x only; platforms may narrow this further.",
    source="libvirt; VMmanager (x86_64 Intel/AMD only)",
    params={"allowed": list(KVM_ARCHES)},
)
def cpu_arch(ctx: Ctx):
    arch = ctx.facts.cpu.arch
    ev = (ctx.facts.arch_source, arch or "unknown")
    if arch is None:
        return skipped("architecture unknown: no /proc/cpuinfo or binaries to read in the root", ev)
    allowed = ctx.params["allowed"]
    if arch in allowed:
        return passed(f"{arch} is supported", ev)
    return failed(f"{arch} is not supported here (supported: {', '.join(allowed)})", ev,
                  hint="use a server of a supported architecture")


def _msr_firmware_disabled(ctx: Ctx) -> tuple[bool | None, str]:
    """Read the firmware lock MSR when the msr device already exists (never load it)."""
    import os

    msr = ctx.host.path("/dev/cpu/0/msr")
    if not ctx.host.live or not ctx.host.is_root or not os.path.exists(msr):
        return None, ""
    vendor = ctx.facts.cpu.vendor
    reg = 0x3A if vendor == "intel" else 0xC0010114 if vendor in ("amd", "hygon") else None
    if reg is None:
        return None, ""
    try:
        fd = os.open(msr, os.O_RDONLY)
        try:
            value = int.from_bytes(os.pread(fd, 8, reg), "little")
        finally:
            os.close(fd)
    except OSError:
        return None, ""
    if reg == 0x3A:  # IA32_FEATURE_CONTROL: locked and VMX-outside-SMX off
        return bool(value & 1 and not value & 4), f"MSR 0x3A = {value:#x}"
    return bool(value & 0x10), f"MSR 0xC0010114 (VM_CR) = {value:#x}"


@check(
    "cpu.virt-extensions",
    title="Hardware virtualization (VT-x / AMD-V / PowerNV / SIE)",
    why="KVM runs guests at native speed only with the CPU's virtualization extensions; without them QEMU falls back to slow emulation.",
    source="libvirt virt-host-validate; OpenStack Nova; Deckhouse (VMX/SVM enabled in BIOS/UEFI)",
    remediations=("load-kvm-modules",),
)
def cpu_virt_extensions(ctx: Ctx):
    cpu, kvm = ctx.facts.cpu, ctx.facts.kvm
    ext = cpu.virt_extension
    if ext:
        return passed(f"{_EXT_NAMES[ext]} present", _cpuinfo_ev(ctx, f"{ext} present"))
    if not cpu.raw_keys:  # an image or a mounted disk: the CPU is not part of it
        why, state = ctx.facts.cpuinfo_unseen()
        return skipped(f"{why}: the CPU cannot be seen", (ctx.show("/proc/cpuinfo"), state))
    ev = []
    if cpu.arch in ("x86_64", "i686"):
        ev.append(_cpuinfo_ev(ctx, "no vmx or svm in the flags line"))
    if kvm.ok:
        mod = ctx.facts.vendor_module or "kvm"
        return passed(f"no VT-x/AMD-V flag shown, but /dev/kvm creates VMs (through {mod})",
                      *ev, ("/dev/kvm", kvm.detail))
    if cpu.arch == "aarch64":
        if kvm.outcome == "offline":
            return skipped("aarch64 does not show EL2 in cpuinfo: only /dev/kvm on the running host can tell",
                           _cpuinfo_ev(ctx, "no EL2 information"))
        return failed("no usable /dev/kvm: the kernel did not start in EL2 (hypervisor mode)",
                      ("/dev/kvm", kvm.detail), hint="boot the kernel at EL2 (firmware setting) and load kvm")
    if cpu.arch and cpu.arch.startswith("ppc"):
        plat = cpu.platform or "unknown"
        return failed(f"platform is {plat}, not PowerNV: KVM-HV needs a bare-metal POWER host",
                      _cpuinfo_ev(ctx, f"platform: {plat}"),
                      hint="run on a PowerNV (OPAL) system; a PowerVM LPAR cannot host KVM-HV")
    if cpu.arch and cpu.arch.startswith("s390"):
        return failed("no sie in the features line: this s390 LPAR/guest cannot host KVM",
                      _cpuinfo_ev(ctx, "sie absent"))
    # x86 without the flag: say why, from the strongest signal available.
    log, log_source = ctx.facts.kernel_log
    bios_lines = [line for line in log if _BIOS_RX.search(line)]
    if bios_lines:
        return failed("disabled in firmware: the kernel logged that BIOS/UEFI turned it off",
                      *ev, (log_source, bios_lines[-1].strip()),
                      hint="enable Intel VT-x / AMD SVM in the BIOS/UEFI setup, then power-cycle")
    disabled, msr_ev = _msr_firmware_disabled(ctx)
    if disabled:
        return failed("disabled in firmware (the CPU has it, the lock MSR turns it off)",
                      *ev, ("/dev/cpu/0/msr", msr_ev),
                      hint="enable Intel VT-x / AMD SVM in the BIOS/UEFI setup, then power-cycle")
    if kvm.outcome == "denied":
        # KVM may still work without the flag (kvm_pvm, a hypervisor hiding
        # it): only opening /dev/kvm can tell, and this user cannot.
        return skipped("needs root: no VT-x/AMD-V flag shown, and only opening /dev/kvm can tell "
                       "whether KVM works without it", *ev, ("/dev/kvm", kvm.detail))
    virt = ctx.facts.virt
    if virt.is_vm or "hypervisor" in cpu.flags:
        what = virt.kind or "a hypervisor"
        return failed(f"inside a virtual machine ({what}) without nested virtualization",
                      *ev, *virt.evidence[:2], (("/dev/kvm", kvm.detail) if kvm.outcome != "offline" else None),
                      hint="enable nested virtualization on the outer hypervisor and give this VM the host CPU model (host-passthrough)")
    return failed("no VT-x/AMD-V flag: the CPU lacks it, firmware disabled it, or a hypervisor "
                  "hides it (no kernel log line, MSR or VM sign tells which)", *ev,
                  (log_source, "no 'disabled by BIOS' line"),
                  hint="check the CPU model's specification, then the BIOS/UEFI virtualization setting")


@check(
    "cpu.64bit",
    title="64-bit CPU and kernel",
    why="Current QEMU/libvirt and every platform here need a 64-bit host.",
    source="QEMU/KVM guide (flag lm); VMmanager (x86_64)",
)
def cpu_64bit(ctx: Ctx):
    cpu = ctx.facts.cpu
    arch = cpu.arch
    why, state = ctx.facts.cpuinfo_unseen()
    if arch is None:
        return skipped(why, (ctx.show("/proc/cpuinfo"), state))
    if not cpu.raw_keys:
        # only the system's binaries are visible (an image): say what they are, not what the CPU is
        bits = "64-bit" if arch in ("x86_64", "aarch64", "ppc64", "ppc64le", "s390x", "riscv64") else "32-bit"
        return skipped(f"{why}: the CPU cannot be seen; the system is {arch} ({bits})",
                       (ctx.facts.arch_source, arch), (ctx.show("/proc/cpuinfo"), state))
    if cpu.is_x86:
        if "lm" not in cpu.flags:
            return failed("32-bit CPU: no lm (long mode) flag", _cpuinfo_ev(ctx, "lm absent"),
                          hint="KVM hosts need a 64-bit (x86-64) CPU")
        if arch == "i686":
            return failed("the CPU is 64-bit but the system is 32-bit", _cpuinfo_ev(ctx, "lm present"),
                          (ctx.facts.arch_source, arch), hint="install a 64-bit (amd64/x86_64) distribution")
        return passed("x86-64 CPU (lm) with a 64-bit system", _cpuinfo_ev(ctx, "lm present"),
                      (ctx.facts.arch_source, arch))
    if arch in ("aarch64", "ppc64", "ppc64le", "s390x", "riscv64"):
        return passed(f"{arch} is 64-bit", (ctx.facts.arch_source, arch))
    return failed(f"{arch} is a 32-bit architecture", (ctx.facts.arch_source, arch))


@check(
    "cpu.x86-64-level",
    title="x86-64 micro-architecture level",
    why="Guests built for a newer level do not boot on an older CPU: RHEL 9 needs x86-64-v2, RHEL 10 needs v3.",
    source="KubeVirt/DaoCloud virtnest (at least x86-64-v2); RHEL 9/10 requirements",
    params={"min_level": 1, "warn_below": 2},
)
def cpu_x86_64_level(ctx: Ctx):
    cpu = ctx.facts.cpu
    if not cpu.raw_keys:
        why, state = ctx.facts.cpuinfo_unseen()
        return skipped(why, (ctx.show("/proc/cpuinfo"), state))
    if not cpu.is_x86:
        return skipped(f"not applicable on {cpu.arch or 'this architecture'}")
    level = cpu.x86_64_level
    if level is None:
        missing = ", ".join(cpu.missing_for_level(1))
        return failed(f"not x86-64 capable (missing {missing})", _cpuinfo_ev(ctx, f"missing: {missing}"))
    want, warn = int(ctx.params["min_level"]), int(ctx.params["warn_below"])
    ev = _cpuinfo_ev(ctx, f"x86-64-v{level}")
    nxt = f"; v{level + 1} would need {', '.join(cpu.missing_for_level(level + 1))}" if level < 4 else ""
    if level < want:
        return failed(f"x86-64-v{level}, below the required v{want} (missing {', '.join(cpu.missing_for_level(want))})",
                      ev, hint="guests that need a newer level will not boot here; use a newer CPU")
    if level < warn:
        return warned(f"x86-64-v{level}: guests needing v{warn} or newer will not boot{nxt}", ev)
    return passed(f"x86-64-v{level}{nxt}", ev)


@check(
    "cpu.cores",
    title="Number of CPUs",
    why="Each guest needs vCPUs backed by host CPUs; the host itself needs some too.",
    source="VMmanager (4 cores minimum, 8 recommended)",
    params={"min": 2, "recommended": 4},
)
def cpu_cores(ctx: Ctx):
    count = 0
    online = ctx.host.read_first_line("/sys/devices/system/cpu/online")
    source = ctx.show("/sys/devices/system/cpu/online")
    if online:
        try:
            for part in online.split(","):
                lo, _, hi = part.partition("-")
                first = int(lo)
                count += (int(hi) - first + 1) if hi else 1
        except ValueError:
            count = 0
    if not count:
        count, source = ctx.facts.cpu.count, ctx.show("/proc/cpuinfo")
    if not count:
        return skipped("cannot count CPUs: no /sys/devices/system/cpu/online or /proc/cpuinfo")
    ev = (source, f"{count} logical CPUs")
    lo, rec = ctx.params["min"], ctx.params["recommended"]
    if count < lo:
        return failed(f"{count} logical CPUs, fewer than the {lo} required", ev)
    if count < rec:
        return warned(f"{count} logical CPUs, fewer than the {rec} recommended", ev)
    return passed(f"{count} logical CPUs", ev)


@check(
    "cpu.frequency",
    title="CPU clock speed",
    why="Guest performance scales with the host's per-core speed.",
    source="VMmanager (2.4 GHz minimum, 3 GHz recommended)",
    params={"min_ghz": 0.0, "recommended_ghz": 0.0},
)
def cpu_frequency(ctx: Ctx):
    ghz, ev = None, None
    khz = ctx.host.read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz and khz.isdigit():
        ghz, ev = int(khz) / 1e6, (ctx.show("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"), f"{khz} kHz")
    cpu = ctx.facts.cpu
    if ghz is None and cpu.model and (m := re.search(r"@\s*([\d.]+)\s*GHz", cpu.model)):
        ghz, ev = float(m.group(1)), _cpuinfo_ev(ctx, f"model name: {cpu.model}")
    if ghz is None and cpu.mhz:
        ghz, ev = cpu.mhz / 1000, _cpuinfo_ev(ctx, f"cpu MHz: {cpu.mhz:g} (current clock)")
    if ghz is None:
        return skipped("no clock speed published (no cpufreq, model name or cpu MHz)")
    lo, rec = float(ctx.params["min_ghz"]), float(ctx.params["recommended_ghz"])
    if ghz < lo:
        return failed(f"{ghz:.2f} GHz, below the {lo:g} GHz required", ev)
    if ghz < rec:
        return warned(f"{ghz:.2f} GHz, below the {rec:g} GHz recommended", ev)
    return passed(f"{ghz:.2f} GHz", ev)
