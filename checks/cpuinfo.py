"""Parse /proc/cpuinfo of any architecture into the facts checks need."""

from __future__ import annotations

import re

from .record import Record

# x86-64 micro-architecture levels, with flag names as cpuinfo shows them
# (SSE3 is "pni", LZCNT is "abm"; "syscall" is hidden by Intel on 32-bit
# kernels and OSXSAVE is never shown, so neither is required).
X86_LEVELS: list[frozenset[str]] = [
    frozenset("lm cmov cx8 fpu fxsr mmx sse sse2".split()),
    frozenset("cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3".split()),
    frozenset("avx avx2 bmi1 bmi2 f16c fma abm movbe xsave".split()),
    frozenset("avx512f avx512bw avx512cd avx512dq avx512vl".split()),
]

X86_VENDORS = {
    "GenuineIntel": "intel",
    "AuthenticAMD": "amd",
    "HygonGenuine": "hygon",
    "CentaurHauls": "centaur",
    "  Shanghai  ": "zhaoxin",
}

# The flags of the "flags" line that say what this CPU offers hardware
# virtualization (VT-x/AMD-V and what makes it fast: EPT/NPT, VPID, AVIC...), or
# that the host is itself a guest (hypervisor). A nested guest, and its live
# migration, needs the same ones on every host of a fleet.
VIRT_FLAGS = frozenset(
    "vmx svm hypervisor ept vpid ept_ad flexpriority tpr_shadow vnmi npt nrip_save vmcb_clean "
    "avic x2avic v_vmsave_vmload vgif lbrv tsc_scale decodeassists flushbyasid pausefilter "
    "pfthreshold svm_lock v_spec_ctrl sev sev_es sev_snp".split())

ARM_IMPLEMENTERS = {
    "0x41": "arm", "0x42": "broadcom", "0x43": "cavium", "0x46": "fujitsu",
    "0x48": "hisilicon", "0x4e": "nvidia", "0x50": "apm", "0x51": "qualcomm",
    "0x61": "apple", "0xc0": "ampere",
}


class CpuInfo(Record):
    def __init__(self, arch: str | None = None, vendor: str | None = None, model: str | None = None,
                 flags: frozenset[str] = frozenset(), vmx_flags: frozenset[str] = frozenset(),
                 features: frozenset[str] = frozenset(), platform: str | None = None, count: int = 0,
                 mhz: float | None = None, raw_keys: dict[str, str] | None = None):
        self.arch = arch  # best guess from cpuinfo alone
        self.vendor = vendor
        self.model = model
        self.flags = flags
        self.vmx_flags = vmx_flags
        self.features = features  # s390 "features", arm "Features"
        self.platform = platform  # POWER: PowerNV / pSeries
        self.count = count
        self.mhz = mhz
        self.raw_keys = {} if raw_keys is None else raw_keys

    @property
    def is_x86(self) -> bool:
        return self.arch in ("x86_64", "i686")

    @property
    def virt_extension(self) -> str | None:
        if "vmx" in self.flags:
            return "vmx"
        if "svm" in self.flags:
            return "svm"
        if self.platform and self.platform.lower() == "powernv":
            return "powernv"
        if "sie" in self.features:
            return "sie"
        return None

    @property
    def x86_64_level(self) -> int | None:
        """1-4 for an x86-64 CPU; None when not x86 or not 64-bit capable."""
        if not self.is_x86 or not X86_LEVELS[0] <= self.flags:
            return None
        level = 0
        for need in X86_LEVELS:
            if not need <= self.flags:
                break
            level += 1
        return level

    @property
    def signature(self) -> dict[str, int | None] | None:
        """x86 family/model/stepping as numbers (what libvirt's CPU models are
        keyed on); None on other architectures."""
        if not self.is_x86:
            return None
        out: dict[str, int | None] = {}
        for key, name in (("cpu family", "family"), ("model", "model"), ("stepping", "stepping")):
            value = self.raw_keys.get(key, "")
            out[name] = int(value) if value.isdigit() else None
        return out

    def missing_for_level(self, level: int) -> list[str]:
        need: set[str] = set()
        for req in X86_LEVELS[:level]:
            need |= req
        return sorted(need - self.flags)


_KV = r"^([^:]+?)\s*:\s?(.*)$"  # compiled on first use (re's cache), not at import


def parse_cpuinfo(text: str) -> CpuInfo:
    info = CpuInfo()
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        m = re.match(_KV, line)
        if not m:
            continue
        key, value = m.group(1).strip(), m.group(2).strip()
        current.setdefault(key, value)
    if current:
        blocks.append(current)
    merged: dict[str, str] = {}
    for b in blocks:
        for k, v in b.items():
            merged.setdefault(k, v)
    info.raw_keys = merged

    info.count = sum(1 for b in blocks if "processor" in b)
    if "# processors" in merged:  # s390
        try:
            info.count = int(merged["# processors"])
        except ValueError:
            pass

    # Only the line whose key is exactly "flags" (6.2+ adds "vmx flags").
    info.flags = frozenset(merged.get("flags", "").split())
    info.vmx_flags = frozenset(merged.get("vmx flags", "").split())
    info.features = frozenset((merged.get("features") or merged.get("Features") or "").split())
    info.platform = merged.get("platform")

    vendor_id = merged.get("vendor_id")
    if vendor_id in X86_VENDORS or (vendor_id and "flags" in merged):
        info.vendor = X86_VENDORS.get(vendor_id, vendor_id.lower())
        info.arch = "x86_64" if "lm" in info.flags else "i686"
        info.model = merged.get("model name")
    elif vendor_id and "S390" in vendor_id.upper():
        info.vendor = "ibm"
        info.arch = "s390x" if "zarch" in info.features else "s390"
        m = re.search(r"machine = (\w+)", text)
        info.model = f"IBM Z machine type {m.group(1)}" if m else "IBM Z"
    elif "cpu" in merged and merged["cpu"].upper().startswith(("POWER", "PPC")):
        info.vendor = "ibm"
        info.arch = "ppc64"
        info.model = merged["cpu"]
    elif "CPU implementer" in merged or merged.get("CPU architecture") == "8":
        impl = merged.get("CPU implementer", "").lower()
        info.vendor = ARM_IMPLEMENTERS.get(impl, f"arm-implementer-{impl}" if impl else "arm")
        info.arch = "aarch64" if merged.get("CPU architecture", "8") in ("8", "AArch64") else "arm"
        info.model = merged.get("model name") or (
            f"ARM part {merged['CPU part']}" if "CPU part" in merged else None)

    mhz = merged.get("cpu MHz") or merged.get("cpu MHz dynamic") or merged.get("clock")
    if mhz:
        m = re.match(r"([\d.]+)", mhz)
        if m:
            try:
                info.mhz = float(m.group(1))
            except ValueError:
                pass
    return info


def elf_arch(header: bytes | None) -> str | None:
    """Architecture of an ELF binary from its header (root's userland)."""
    if not header or len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    is64 = header[4] == 2
    little = header[5] == 1
    machine = int.from_bytes(header[18:20], "little" if little else "big")
    return {
        0x03: "i686",
        0x3E: "x86_64",
        0xB7: "aarch64",
        0x28: "arm",
        0x15: "ppc64le" if little else "ppc64",
        0x14: "ppc",
        0x16: "s390x" if is64 else "s390",
        0xF3: "riscv64" if is64 else "riscv32",
    }.get(machine)
