"""Kernel modules: load KVM now and at boot, nested virtualization, vhost-net."""

from __future__ import annotations

from ..actions import LoadModule
from ..helpers import modules_listed_for_boot, write_file
from ..registry import PlanCtx, Proposal, nothing, remediation


def _load_now_and_at_boot(ctx: PlanCtx, modules: list[str], conf: str, why: str) -> Proposal:
    prop = Proposal()
    listed = modules_listed_for_boot(ctx)
    to_list = []
    for name in modules:
        state = ctx.facts.module(name)
        if state.state == "builtin":
            continue
        if state.state in ("absent", "unknown") and not (state.state == "unknown" and ctx.offline):
            prop.notes.append(f"{name}: {state.state} in this kernel ({state.source}); cannot be loaded")
            continue
        if state.state != "loaded":
            if ctx.offline:
                prop.notes.append(f"modprobe {name} now: skipped, an offline root has no running kernel")
            else:
                prop.actions.append(LoadModule(module=name, runtime=True, why=why))
        if name not in listed:
            to_list.append(name)
    if to_list:
        path = f"/etc/modules-load.d/{conf}"
        old = ctx.host.read_text(path) or ""
        lines = old.splitlines()
        content = "\n".join(lines + to_list) + "\n" if lines else (
            "# written by kvmprep: load these modules at boot\n" + "\n".join(to_list) + "\n")
        action = write_file(ctx, path, content, why=f"load {', '.join(to_list)} at every boot")
        if action:
            prop.actions.append(action)
    if not prop.actions:
        prop.nothing = "; ".join(prop.notes) or "already loaded (or built in) and listed for boot"
    return prop


@remediation(
    "load-kvm-modules",
    title="Load the KVM modules now and at every boot",
    fixes=("kvm.modules", "kvm.device", "kvm.usable", "cpu.virt-extensions", "kvm.tun"),
    description="modprobe kvm and kvm_intel/kvm_amd (kvm_hv on POWER) and tun now, and list them in "
                "/etc/modules-load.d/kvm.conf for boot.",
)
def load_kvm_modules(ctx: PlanCtx) -> Proposal:
    vendor = ctx.facts.vendor_module
    wanted = ["kvm"] + ([vendor] if vendor and vendor != "kvm_pvm" else []) + ["tun"]
    if vendor is None:
        return nothing("the CPU vendor is unknown (no proc/cpuinfo): cannot tell kvm_intel from kvm_amd")
    return _load_now_and_at_boot(ctx, wanted, "kvm.conf", "KVM needs kvm plus the CPU vendor's module")
