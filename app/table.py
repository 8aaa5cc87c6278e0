"""The plain-text report of ``kvmprep check``: ASCII always, colour only on a capable terminal."""

from __future__ import annotations

import os
import sys
import textwrap

from checks.model import Status
from checks.registry import CATEGORIES
from checks.runner import Report

_COLORS = {Status.PASS: "32", Status.WARN: "33", Status.FAIL: "31;1", Status.SKIP: "36", Status.ERROR: "35;1"}
_ORDER = [Status.FAIL, Status.ERROR, Status.WARN, Status.SKIP, Status.PASS]


def use_color(stream=None, env=None) -> bool:
    """Colour only for a terminal that is not the Linux console and no NO_COLOR."""
    stream = stream or sys.stdout
    env = os.environ if env is None else env
    if "NO_COLOR" in env or env.get("TERM", "") in ("linux", "dumb", ""):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def host_line(report: Report) -> str:
    f = report.facts
    os_info, cpu, mem, virt = f.safe("os"), f.safe("cpu"), f.safe("memory"), f.safe("virt")
    os_name = (os_info.name or os_info.id) if os_info else None
    parts = [f.safe("hostname") or "?", os_name or "unknown distribution", (cpu and cpu.arch) or "?"]
    if cpu and cpu.model:
        parts.append(" ".join(cpu.model.split()))
    if cpu and cpu.count:
        parts.append(f"{cpu.count} CPUs")
    if mem and mem.total_gib:
        parts.append(f"{mem.total_gib:.1f} GiB")
    if virt is None:
        pass
    elif virt.is_vm:
        parts.append(f"virtual machine ({virt.kind or 'unknown hypervisor'})")
    elif virt.is_vm is False:
        parts.append("bare metal")
    return " | ".join(parts)


def render_table(report: Report, color: bool = False, width: int = 80) -> str:
    width = max(60, width)
    lines = []
    prof = report.profile
    lines.append(f"kvmprep {_version()}  profile: {prof.name}  root: {report.host.root}")
    lines.extend(textwrap.wrap("host: " + host_line(report), width, subsequent_indent="      "))
    if report.host.live and not report.host.is_root:
        lines.append("note: not running as root; checks that need root are skipped (use sudo)")
    id_w = max((len(r.id) for r in report.results), default=16) + 1
    indent = " " * (2 + 5 + 2 + id_w + 1)
    for cat in CATEGORIES:
        rows = [r for r in report.results if r.category == cat]
        if not rows:
            continue
        lines.append("")
        lines.append(_paint(CATEGORIES[cat], "1", color))
        for r in rows:
            tag = f" [{r.severity}]" if r.severity != "required" and r.status is not Status.PASS else ""
            if r.ignored:
                tag += " [ignored]"
            word = _paint(f"{r.status.word:<5}", _COLORS[r.status], color)
            head = f"  {word}  {r.id:<{id_w}} "
            body = textwrap.wrap(r.detail + tag, width - len(indent)) or [""]
            lines.append(head + body[0])
            lines.extend(indent + b for b in body[1:])
            if r.status is not Status.PASS and r.hint:
                for b in textwrap.wrap("fix: " + r.hint, width - len(indent), subsequent_indent="     "):
                    lines.append(indent + b)
    lines.append("")
    verdict = textwrap.wrap(verdict_line(report), width, subsequent_indent="         ")
    if color:
        verdict[0] = _paint_verdict(verdict[0])
    lines.extend(verdict)
    return "\n".join(lines) + "\n"


def _paint_verdict(line: str) -> str:
    if line.startswith("Verdict: NOT READY"):
        return line.replace("NOT READY", _paint("NOT READY", _COLORS[Status.FAIL], True), 1)
    if line.startswith("Verdict: READY"):
        return line.replace("READY", _paint("READY", _COLORS[Status.PASS], True), 1)
    return line


def verdict_line(report: Report) -> str:
    s = report.summary
    counts = (f"{s['pass']} passed, {s['warn']} warnings, {s['fail']} failed, "
              f"{s['skip']} skipped, {s['error']} errors")
    if report.ready:
        return f"Verdict: READY - no required check fails ({counts})"
    ids = ", ".join(r.id for r in report.blocking)
    return f"Verdict: NOT READY - required checks fail: {ids} ({counts})"


def _version() -> str:
    from checks import __version__

    return __version__
