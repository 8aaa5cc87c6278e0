"""Which QEMU and libvirt a root has installed, for the report's ``packages`` section.

Live migration between hosts goes to the same or a newer QEMU/libvirt only, so
``kvmprep fleet`` compares these versions across reports. Only the names below
are looked up, the way the packages check does it (``pkgdb.installed``: in a
dpkg status file a name is found with ``bytes.find``, on rpm one ``rpm -q``),
and every one of them is a name the packages check already asked about in this
run: the answer comes from pkgdb's memo of that lookup, not a second one.
"""

from __future__ import annotations

from . import pkgdb
from .host import Host

# QEMU's system emulator package per architecture (Debian/Ubuntu, SUSE); the
# packages check asks for the same names.
QEMU_DEBIAN = {"x86_64": "qemu-system-x86", "i686": "qemu-system-x86", "aarch64": "qemu-system-arm",
                "ppc64": "qemu-system-ppc", "ppc64le": "qemu-system-ppc", "s390x": "qemu-system-s390x"}
QEMU_SUSE = {"x86_64": "qemu-x86", "i686": "qemu-x86", "aarch64": "qemu-arm",
              "ppc64": "qemu-ppc", "ppc64le": "qemu-ppc", "s390x": "qemu-s390x"}


def stack_names(family: str | None, arch: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(QEMU package names, libvirt daemon package names), each in order of
    preference: the first installed one gives the version. They are names
    packages.virtualization asks about too, so its answers are reused. The
    libvirt clients alone do not count: without the daemon no guest runs."""
    if family == "rhel":
        return ("qemu-kvm", "qemu-kvm-core", "qemu-kvm-ev", "qemu-kvm-rhev"), ("libvirt-daemon-kvm", "libvirt")
    if family == "suse":
        return (QEMU_SUSE.get(arch or "", "qemu-x86"), "qemu-kvm"), ("libvirt-daemon",)
    return (QEMU_DEBIAN.get(arch or "", "qemu-system-x86"), "qemu-kvm"), ("libvirt-daemon-system",)


def stack_versions(host: Host, family: str | None, arch: str | None) -> dict:
    """``{"qemu": {"package", "version"} | None, "libvirt": ... | None,
    "installed": {name: version}, "source": where it was read}``; every value
    None when the root has no package database."""
    kind = pkgdb.database_kind(host, family or "")
    if kind is None:
        return {"qemu": None, "libvirt": None, "installed": {}, "source": None}
    qemu_names, libvirt_names = stack_names(family, arch)
    found, source = pkgdb.installed(host, kind, list(qemu_names + libvirt_names))
    installed = {n: v for n, v in sorted(found.items()) if v}

    def first(names):
        name = next((n for n in names if found.get(n)), None)
        return {"package": name, "version": found[name]} if name else None

    return {"qemu": first(qemu_names), "libvirt": first(libvirt_names), "installed": installed,
            "source": source}
