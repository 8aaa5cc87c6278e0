"""Hardware: memory, disk space for images, server-class board."""

from __future__ import annotations

import os
import posixpath
import re

from ..errors import NeedsRoot, ProbeError
from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check
from ..virt import dmi_vm_kind

TOLERANCE = 0.05  # MemTotal is below the installed RAM; filesystems are below the disk size


# ---------------------------------------------------------------- memory


@check(
    "hw.memory",
    title="Memory (RAM)",
    why="Guests' memory comes from the host's RAM; the host and its services need some too.",
    source="VMmanager (8 GB minimum, 16 GB recommended); Harvester installer (MemTotal with ~5 % tolerance)",
    params={"min_gib": 2.0, "recommended_gib": 4.0},
)
def hw_memory(ctx: Ctx):
    path = "/proc/meminfo"
    mem = ctx.facts.memory
    if mem.total_kib is None:
        if not ctx.host.exists(path):
            why = "an offline root has no running kernel to ask" if not ctx.host.live else "it is missing"
            return skipped(f"cannot measure memory: no {path} ({why})", (ctx.show(path), "missing"))
        return skipped(f"cannot measure memory: no readable MemTotal line in {path}",
                       (ctx.show(path), "no MemTotal line"))
    gib = mem.total_kib / 1024 / 1024
    ev = (ctx.show(path), f"MemTotal: {mem.total_kib} kB ({gib:.1f} GiB)")
    lo, rec = float(ctx.params["min_gib"]), float(ctx.params["recommended_gib"])
    tol = f" (with {TOLERANCE:.0%} tolerance: MemTotal is below the installed RAM)"
    if gib < lo * (1 - TOLERANCE):
        return failed(f"{gib:.1f} GiB of RAM, below the {lo:g} GiB required{tol}", ev,
                      hint=f"add memory: at least {lo:g} GiB")
    if gib < rec * (1 - TOLERANCE):
        return warned(f"{gib:.1f} GiB of RAM, below the {rec:g} GiB recommended{tol}", ev,
                      hint=f"{rec:g} GiB or more leaves room for guests")
    return passed(f"{gib:.1f} GiB of RAM", ev)


# ---------------------------------------------------------------- disk


def _nearest_existing(ctx: Ctx, path: str) -> str:
    path = posixpath.normpath("/" + path.lstrip("/"))
    while path != "/" and not ctx.host.is_dir(path):
        path = posixpath.dirname(path)
    return path


def _decode_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mount_of(ctx: Ctx, real: str, dev: int) -> tuple[str, str, str] | None:
    """(mount point, fstype, source) of the mount holding ``real`` on a live host."""
    try:
        text = ctx.host.read_text("/proc/self/mountinfo") or ""
    except (NeedsRoot, ProbeError):
        return None
    want = f"{os.major(dev)}:{os.minor(dev)}"
    best = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or " - " not in line:
            continue
        mnt = _decode_mount(fields[4])
        inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
        if not inside:
            continue
        after = line.split(" - ", 1)[1].split()
        cand = (mnt, after[0] if after else "?", after[1] if len(after) > 1 else "?")
        score = (fields[2] == want, len(mnt))
        if best is None or score >= best[0]:
            best = (score, cand)
    return best[1] if best else None


def _gb(n: float) -> str:
    return f"{n / 1e12:.2f} TB" if n >= 1e12 else f"{n / 1e9:.1f} GB"


@check(
    "hw.disk",
    title="Disk space for guest images",
    why="Guest disks live in the image directory; a small or full filesystem stops guests from being "
        "created or makes running ones pause on I/O errors.",
    source="VMmanager (1 TB minimum, 2 TB recommended, with the space in /); libvirt default pool "
           "/var/lib/libvirt/images",
    params={"path": "/var/lib/libvirt/images", "min_gb": 20.0, "recommended_gb": 100.0, "min_free_gb": 10.0},
)
def hw_disk(ctx: Ctx):
    want = str(ctx.params["path"]) or "/"
    measured = _nearest_existing(ctx, want)
    real = ctx.host.path(measured)
    try:
        st = os.statvfs(real)
        dev = os.stat(real).st_dev
    except PermissionError:
        if not ctx.host.is_root:
            raise NeedsRoot(ctx.show(measured))
        raise ProbeError(ctx.show(measured), "permission denied")
    except OSError as exc:
        raise ProbeError(ctx.show(measured), exc.strerror or str(exc))
    size = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    if size == 0:
        return skipped(f"{ctx.show(measured)} is on a filesystem that reports no size (pseudo filesystem)",
                       (f"statvfs {ctx.show(measured)}", "0 blocks"))
    where = ctx.show(measured) + ("" if measured == want else f" ({want} does not exist yet)")
    if ctx.host.live:
        mount = _mount_of(ctx, str(real), dev)
        fs = f"the {mount[1]} filesystem mounted on {mount[0]} ({mount[2]})" if mount else "its filesystem"
    else:
        fs = "the filesystem it is on here (offline root: the image's final disk may differ)"
    ev = [(f"statvfs {ctx.show(measured)}", f"size {_gb(size)}, available {_gb(free)} "
           f"({st.f_blocks} x {st.f_frsize} B blocks, {st.f_bavail} available)")]
    if measured != want:
        ev.append((ctx.show(want), f"missing: measured the nearest existing parent {ctx.show(measured)}"))
    lo, rec, lo_free = (float(ctx.params[k]) for k in ("min_gb", "recommended_gb", "min_free_gb"))
    head = f"{where}: {fs}, {_gb(size)} with {_gb(free)} free"
    if size < lo * 1e9 * (1 - TOLERANCE):
        return failed(f"{head}; below the {lo:g} GB required", *ev,
                      hint=f"put {want} on a filesystem of at least {lo:g} GB")
    if free < lo_free * 1e9:
        return failed(f"{head}; less than the {lo_free:g} GB free required", *ev,
                      hint=f"free space on the filesystem holding {ctx.show(measured)} or move {want} to a larger filesystem")
    if size < rec * 1e9 * (1 - TOLERANCE):
        return warned(f"{head}; below the {rec:g} GB recommended", *ev,
                      hint=f"put {want} on a filesystem of {rec:g} GB or more")
    return passed(head, *ev)


# ---------------------------------------------------------------- server board

# SMBIOS 3.x, System Enclosure or Chassis Types (table 17)
CHASSIS_TYPES = {
    1: "Other", 2: "Unknown", 3: "Desktop", 4: "Low Profile Desktop", 5: "Pizza Box",
    6: "Mini Tower", 7: "Tower", 8: "Portable", 9: "Laptop", 10: "Notebook", 11: "Hand Held",
    12: "Docking Station", 13: "All in One", 14: "Sub Notebook", 15: "Space-saving",
    16: "Lunch Box", 17: "Main Server Chassis", 18: "Expansion Chassis", 19: "SubChassis",
    20: "Bus Expansion Chassis", 21: "Peripheral Chassis", 22: "RAID Chassis",
    23: "Rack Mount Chassis", 24: "Sealed-case PC", 25: "Multi-system chassis",
    26: "Compact PCI", 27: "Advanced TCA", 28: "Blade", 29: "Blade Enclosure", 30: "Tablet",
    31: "Convertible", 32: "Detachable", 33: "IoT Gateway", 34: "Embedded PC", 35: "Mini PC",
    36: "Stick PC",
}
SERVER_CHASSIS = {17, 23, 25, 26, 27, 28, 29}
CLIENT_CHASSIS = {3, 4, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 30, 31, 32, 35, 36}
_SERVER_NAMES = (  # compiled on first use (re's cache), not at import; case-insensitive
    r"PowerEdge|ProLiant|Synergy|Apollo|ThinkSystem|System x|ThinkAgile|PRIMERGY|UCS|Supermicro|"
    r"ASRock ?Rack|Tyan|Inspur|Quanta|Wiwynn|Huawei|xFusion|FusionServer|Gigabyte.*(MZ|MS|MR|R\d{3})|"
    r"Intel.*Server|S2600|M50CYP|Cisco|Nutanix|Oracle.*Server|Sun Fire|IBM|Lenovo.*SR\d|Ampere")
_DMI = "/sys/class/dmi/id"


@check(
    "hw.server-board",
    title="Server-class motherboard",
    why="Server boards bring ECC memory, remote management (BMC/IPMI) and firmware that supports "
        "virtualization features (VT-d, SR-IOV) reliably; desktop boards often lack them.",
    source="VMmanager (server motherboard)",
)
def hw_server_board(ctx: Ctx):
    fields = {}
    for name in ("chassis_type", "sys_vendor", "product_name", "board_vendor", "board_name"):
        value = ctx.host.read_first_line(f"{_DMI}/{name}")
        if value:
            fields[name] = value
    if not fields:
        return skipped(f"no SMBIOS data: {ctx.show(_DMI)} is missing or empty (ARM, POWER, s390x, some VMs "
                       "and containers do not publish DMI)", (ctx.show(_DMI), "missing"))
    ev = [(ctx.show(f"{_DMI}/{k}"), v) for k, v in fields.items()]
    raw = fields.get("chassis_type")
    ctype = int(raw) if raw and raw.isdigit() else None
    if ctype is not None:
        cname = f"{CHASSIS_TYPES.get(ctype, 'unlisted type')}, type {ctype}"
    else:
        cname = f"unreadable chassis_type {raw!r}" if raw else "chassis_type not published"
    board = " ".join(v for k, v in fields.items() if k in ("board_vendor", "board_name")) or "unknown board"
    product = " ".join(v for k, v in fields.items() if k in ("sys_vendor", "product_name")) or "unknown system"
    vm = next((k for v in fields.values() if (k := dmi_vm_kind(v))), None)
    if vm:
        return warned(f"virtual machine ({vm}): {product} is not a server board", *ev,
                      hint="run the KVM host on a physical server")
    if ctype in SERVER_CHASSIS:
        return passed(f"server chassis ({cname}): {product}, board {board}", *ev)
    named_server = re.search(_SERVER_NAMES, f"{product} {board}", re.I)
    if ctype in CLIENT_CHASSIS:
        return warned(f"desktop/laptop chassis ({cname}): {product}, board {board}", *ev,
                      hint="use a server (rack, blade or server tower) with ECC memory and a BMC")
    if named_server:
        return passed(f"server system {named_server.group(0)} (chassis: {cname}): {product}, board {board}", *ev)
    return warned(f"cannot tell a server board: chassis {cname}, {product}, board {board}", *ev,
                  hint="check that the machine is a server (rack, blade or server tower) with ECC memory and a BMC")
