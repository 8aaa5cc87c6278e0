"""TPM: a host TPM 2.0 device (measured boot, vTPM-backed guests)."""

from __future__ import annotations

import re

from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check


def _tpm_version(ctx: Ctx, name: str) -> tuple[int | None, tuple[str, str] | None]:
    """TPM major version of /sys/class/tpm/<name> (or the older class/misc)."""
    host = ctx.host
    for base in (f"/sys/class/tpm/{name}", f"/sys/class/misc/{name}"):
        major = host.read_first_line(f"{base}/tpm_version_major")
        if major is not None:
            if major.strip().isdigit():
                return int(major), (ctx.show(f"{base}/tpm_version_major"), major)
            continue
        desc = host.read_first_line(f"{base}/device/description")
        if desc:
            m = re.search(r"TPM\s*([12])\.(\d)", desc)
            if m:
                return int(m.group(1)), (ctx.show(f"{base}/device/description"), desc)
        caps = host.read_text(f"{base}/device/caps")
        if caps:
            m = re.search(r"TCG version:\s*(\d)\.(\d)", caps)
            if m:
                return int(m.group(1)), (ctx.show(f"{base}/device/caps"), f"TCG version: {m.group(1)}.{m.group(2)}")
    return None, None


@check(
    "tpm.device",
    title="TPM 2.0 device",
    why="A host TPM 2.0 anchors measured boot and attestation; OpenStack/Taikun host guides ask for one with tpm2-tools.",
    source="OpenStack Nova / Taikun OCP host requirements (TPM 2.0 device and tpm2-tools)",
    params={"min_version": 2},
)
def tpm_device(ctx: Ctx):
    host = ctx.host
    want = int(ctx.params["min_version"])
    names = sorted({n for d in ("/sys/class/tpm", "/sys/class/misc") for n in host.listdir(d)
                    if re.fullmatch(r"tpm\d+", n)})
    devs = [d for d in ("/dev/tpmrm0", "/dev/tpm0") if host.exists(d)]
    if not names and not devs and not host.live and not host.is_dir("/sys/class"):
        return skipped("an offline root has no /sys/class/tpm or /dev/tpm*: the TPM belongs to the running machine")
    ev: list = [(ctx.show(d), "present") for d in devs]
    version, vev = None, None
    for name in names:
        version, vev = _tpm_version(ctx, name)
        if version is not None:
            break
    if vev:
        ev.append(vev)
    if version is None and "/dev/tpmrm0" in devs:
        version = 2  # the kernel creates the resource manager only for TPM 2.0 chips
        ev.append((ctx.show("/dev/tpmrm0"), "resource manager device: TPM 2.0 only"))
    if not names and not devs:
        ev.append((ctx.show("/sys/class/tpm"), "no tpm device"))
        return failed("no TPM device (no /dev/tpm0, /dev/tpmrm0 or /sys/class/tpm/tpm0)", *ev,
                      hint="enable the TPM 2.0 (AMD fTPM / Intel PTT / discrete module) in the BIOS/UEFI setup, then power-cycle")
    label = f"TPM {version}.0" if version == 2 else "TPM 1.2" if version == 1 else "TPM of unknown version"
    where = ", ".join(devs) or ", ".join(f"/sys/class/tpm/{n}" for n in names)
    if version is None:
        return warned(f"a TPM is present ({where}) but its version cannot be read", *ev,
                      hint="tpm2_getcap properties-fixed  (tpm2-tools) shows the version")
    if version < want:
        return warned(f"{label} present ({where}), older than the TPM {want}.0 wanted (vTPM and tpm2-tools need 2.0)",
                      *ev, hint="switch the TPM to 2.0 mode in the BIOS/UEFI setup (many chips can), or fit a TPM 2.0 module")
    return passed(f"{label} present ({where})", *ev)
