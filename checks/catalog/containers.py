"""Containers: a Docker Engine, where present, new enough to share the host with KVM."""

from __future__ import annotations

import re

from .. import pkgdb
from ..errors import ProbeError
from ..model import failed, passed, skipped, warned
from ..registry import Ctx, check
from .packages import query_installed

# Docker Engine packages: Docker's own repos, Debian/Ubuntu, Fedora, EL/SUSE's own build.
DOCKER_PACKAGES_DPKG = ("docker-ce", "docker-ee", "docker.io", "docker-engine", "moby-engine")
# "docker" on Debian was an unrelated tray applet: only rpm distributions call the engine that.
DOCKER_PACKAGES_RPM = ("docker-ce", "docker-ee", "docker", "docker-engine", "moby-engine")
DOCKERD_PATHS = ("/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd")

_VERSION_RX = r"(\d+(?:\.\d+)*)"  # compiled on first use, not at import


def parse_docker_version(text: str) -> tuple[int, ...] | None:
    """Upstream version of a Docker package or ``dockerd --version`` line.

    ``5:20.10.12~3-0~ubuntu-focal`` -> (20, 10, 12); ``20.10.24+dfsg1-1`` ->
    (20, 10, 24); ``24.0.7-1.el8`` -> (24, 0, 7); ``Docker version 24.0.7,
    build afdd53b`` -> (24, 0, 7); ``17.03.2~ce-0`` -> (17, 3, 2).
    """
    text = (text or "").strip()
    if text.startswith("Docker version"):
        text = text[len("Docker version"):].strip()
    text = re.sub(r"^\d+:", "", text)  # Debian/rpm epoch
    m = re.match(_VERSION_RX, text)
    if not m:
        return None
    return tuple(int(x) for x in m.group(1).split("."))


def _older(version: tuple[int, ...], minimum: tuple[int, ...]) -> bool:
    n = max(len(version), len(minimum))
    return version + (0,) * (n - len(version)) < minimum + (0,) * (n - len(minimum))


def _upgrade_command(ctx: Ctx, names: list[str]) -> str:
    pm = ctx.facts.os.package_manager
    pkgs = " ".join(names)
    if pm == "apt":
        return f"DEBIAN_FRONTEND=noninteractive apt-get install -y --only-upgrade {pkgs}"
    if pm in ("dnf", "yum"):
        return f"{pm} upgrade -y {pkgs}"
    if pm == "zypper":
        return f"zypper update -y {pkgs}"
    return f"upgrade {pkgs} to a current Docker Engine release"


@check(
    "containers.docker",
    title="Docker Engine version (when Docker is installed)",
    why="Where Docker is the node's container runtime, platforms that run VMs beside containers "
        "(DaoCloud virtnest on KubeVirt) require Docker Engine newer than 20.10.10.",
    source="DaoCloud virtnest (Docker Engine newer than 20.10.10)",
    params={"min_version": "20.10.11"},
)
def docker_version(ctx: Ctx):
    minimum_text = str(ctx.params.get("min_version") or "20.10.11")
    minimum = parse_docker_version(minimum_text)
    if minimum is None:
        return failed(f"min_version {minimum_text!r} is not a version", hint="set min_version: \"20.10.11\"")
    host = ctx.host
    kind = pkgdb.database_kind(host, ctx.facts.os.family)
    names = list(DOCKER_PACKAGES_RPM if kind == "rpm" else DOCKER_PACKAGES_DPKG)
    found, source, problem = query_installed(ctx, names, "Docker")
    dockerd = next((p for p in DOCKERD_PATHS if host.is_file(p)), None)
    installed = {n: v for n, v in (found or {}).items() if v}
    ev = []
    if found is not None:
        ev.append((source, "; ".join(f"{n} {v}" for n, v in installed.items()) or "no Docker package installed"))
    elif problem is not None:
        ev.append(("package database", problem.detail))
    ev.append((host.display(dockerd) if dockerd else ", ".join(ctx.show(p) for p in DOCKERD_PATHS),
               "present" if dockerd else "missing"))

    if installed:
        old, unparsed, good = [], [], []
        for name, version in installed.items():
            parsed = parse_docker_version(version)
            if parsed is None:
                unparsed.append(f"{name} {version}")
            elif _older(parsed, minimum):
                old.append((name, version, parsed))
            else:
                good.append(f"{name} {version}")
        if old:
            what = ", ".join(f"{n} {v} (Docker {'.'.join(map(str, p))})" for n, v, p in old)
            return failed(f"Docker is too old: {what}; {minimum_text} or newer is needed", *ev,
                          hint=_upgrade_command(ctx, [n for n, _, _ in old]))
        if unparsed:
            return warned(f"cannot read a Docker version from {', '.join(unparsed)}", *ev,
                          hint=f"make sure Docker Engine is {minimum_text} or newer (dockerd --version)")
        return passed(f"Docker is new enough: {', '.join(good)} (at least {minimum_text})", *ev)

    if not dockerd:
        if problem is not None and problem.status.value == "fail":
            return warned(f"no dockerd binary; the package database could not be read ({problem.detail})", *ev)
        return passed("Docker is not installed: nothing to check", *ev)

    # dockerd without a package (static binaries, a tarball install): ask the binary itself
    if not host.live:
        return skipped(f"{ctx.show(dockerd)} is not from a package and an offline root's binary is not run: "
                       "its version cannot be read", *ev,
                       hint=f"run {dockerd} --version on that system (needs {minimum_text} or newer)")
    try:
        res = host.run([str(host.path(dockerd)), "--version"], timeout=10)
    except ProbeError as exc:
        return warned(f"{dockerd} --version failed: {exc.message}", *ev,
                      hint=f"make sure Docker Engine is {minimum_text} or newer")
    line = (res.stdout.strip() or res.stderr.strip()).splitlines()[0] if (res.stdout.strip() or res.stderr.strip()) else ""
    ev.append((f"{dockerd} --version", line or f"exit {res.returncode}"))
    parsed = parse_docker_version(line)
    if parsed is None:
        return warned(f"cannot read a version from {dockerd} --version", *ev,
                      hint=f"make sure Docker Engine is {minimum_text} or newer")
    version = ".".join(map(str, parsed))
    if _older(parsed, minimum):
        return failed(f"Docker {version} ({dockerd}, not from a package) is older than {minimum_text}", *ev,
                      hint=f"replace {dockerd} with Docker Engine {minimum_text} or newer")
    return passed(f"Docker {version} ({dockerd}, not from a package) is new enough", *ev)
