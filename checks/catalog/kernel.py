"""Kernel version (running, and what a reboot would bring)."""

from __future__ import annotations

import re

from ..kernel import version_key
from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check


def _numeric(release: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        return ()
    return tuple(int(x) for x in m.groups(default="0"))


@check(
    "kernel.version",
    title="Kernel version",
    why="KVM features (and KubeVirt) need a recent kernel; a newer installed kernel means a reboot is pending.",
    source="KubeVirt/DaoCloud virtnest (newer than 3.15); Deckhouse (same kernel on every node)",
    params={"min_version": "3.10"},
)
def kernel_version(ctx: Ctx):
    k = ctx.facts.kernel
    if not k.release:
        return skipped("kernel unknown: no proc/version or lib/modules in the root")
    ev = [(ctx.show(k.release_source) if k.release_source.startswith("/") else k.release_source, k.release)]
    have, want = _numeric(k.release), _numeric(str(ctx.params["min_version"]))
    if not have:
        return failed(f"cannot read a version number from {k.release!r}", *ev)
    if want and have < want:
        return failed(f"{k.release} is older than the required {ctx.params['min_version']}", *ev,
                      hint="install and boot a newer kernel")
    installed = [r for r in ctx.host.listdir("/lib/modules") if ctx.host.is_dir(f"/lib/modules/{r}")]
    if ctx.host.live and installed:
        newest = max(installed, key=version_key)
        if k.release not in installed:
            return warned(f"{k.release} runs, but its modules are not installed (newest: {newest}); reboot into {newest}",
                          *ev, ("/lib/modules", ", ".join(installed)))
        if version_key(newest) > version_key(k.release):
            return warned(f"{k.release} runs; {newest} is installed and waits for a reboot",
                          *ev, ("/lib/modules", ", ".join(installed)))
    return passed(f"{k.release}", *ev)
