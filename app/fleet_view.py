"""``kvmprep fleet``: read the hosts' reports, run the fleet checks, print them.

The engine is ``checks.fleet``; this module only picks the profile and draws
the table: 80 columns whatever the fleet's size, so the host x check matrix
shows one column per check that is not PASS on every host (the others are
counted) and one line per host.
"""

from __future__ import annotations

import sys
import textwrap

from checks.model import Status

from .table import _COLORS, _paint, use_color

_MARKS = {"pass": ".", "warn": "w", "fail": "F", "skip": "s", "error": "E", None: "-"}
# Reports come from other machines: a hostname, kernel release or model name in
# one may hold terminal control sequences. The table shows them escaped.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}


def printable(text: str) -> str:
    return text.translate(_CONTROL)


def _wrap(text: str, width: int, **kw) -> list[str]:
    # hostnames (node-a), terms (host-model) and XML to paste are not split
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False, **kw)


def choose_profile(given: str | None, hosts) -> tuple[object, str]:
    """The profile named on the command line; else the one every report was
    checked with, when it is a built-in one; else the default."""
    from checks.profile import DEFAULT_PROFILE, builtin_names, load_profile

    if given:
        return load_profile(given), "given"
    used = {h.profile for h in hosts}
    if len(used) == 1 and next(iter(used)) in builtin_names():
        return load_profile(next(iter(used))), "the reports'"
    return load_profile(DEFAULT_PROFILE), "default"


def cmd_fleet(args, error_type) -> int:
    """Exit status: 0 every host ready and no fleet check fails, 1 otherwise;
    a bad report raises ``error_type`` (exit 2) naming the file and why."""
    from checks.fleet import BadReport, load_reports, run_fleet

    try:
        hosts = load_reports(args.reports)
    except BadReport as exc:
        raise error_type(printable(str(exc))) from None
    profile, origin = choose_profile(args.profile, hosts)
    fleet = run_fleet(hosts, profile, origin)
    if args.format == "json":
        sys.stdout.write(dump_json(fleet.to_document()))
    else:
        sys.stdout.write(render_fleet(fleet, color=use_color(sys.stdout)))
    return 0 if fleet.ready else 1


def dump_json(doc: dict) -> str:
    """The document with one line per top-level key, and one per host, fleet
    check and matrix row: readable, grep-able, and written by json's C encoder
    (``indent=`` makes json use its Python one, ~3x slower for 1000 hosts)."""
    import json

    dumps = json.dumps

    def items(values: list, pad: str) -> str:
        if not values:
            return "[]"
        return "[\n" + ",\n".join(pad + "  " + dumps(v) for v in values) + "\n" + pad + "]"

    parts = []
    for key, value in doc.items():
        if key in ("hosts", "fleet"):
            text = items(value, "  ")
        elif key == "matrix":
            text = (f'{{"checks": {dumps(value["checks"])},\n   "rows": '
                    + items(value["rows"], "   ") + "}")
        else:
            text = dumps(value)
        parts.append(f"  {dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _word(status: str, color: bool) -> str:
    return _paint(f"{status.upper():<5}", _COLORS[Status(status)], color)


def render_fleet(fleet, color: bool = False, width: int = 80) -> str:
    from checks import __version__

    lines = [f"kvmprep {__version__} fleet  profile: {fleet.profile.name} ({fleet.profile_origin})  "
             f"hosts: {len(fleet.hosts)}"]
    for note in fleet.notes:
        lines.extend(_wrap("note: " + printable(note), width, subsequent_indent="      "))
    lines += ["", _paint("Fleet checks", "1", color)]
    # a fleet check's detail is a paragraph: under its id, 71 columns wide (a
    # 45-column text column as in the host table would make it three times taller)
    indent = " " * 9
    id_w = max((len(r.id) for r in fleet.results), default=20)
    for r in fleet.results:
        tag = f" [{r.severity}]" if r.severity != "required" and r.status != "pass" else ""
        lines.append(f"  {_word(r.status, color)}  {r.id:<{id_w}}  {r.title}")
        lines.extend(indent + b for b in _wrap(printable(r.detail) + tag, width - len(indent)))
        if r.status != "pass" and r.recommendation:
            lines.extend(indent + b for b in _wrap("fix: " + printable(r.recommendation), width - len(indent),
                                                   subsequent_indent="     "))
    lines += [""] + _matrix(fleet, width, color) + [""]
    verdict = _wrap(verdict_line(fleet), width, subsequent_indent="         ")
    if color:
        word = "NOT READY" if not fleet.ready else "READY"
        verdict[0] = verdict[0].replace(word, _paint(word, _COLORS[Status.PASS if fleet.ready else Status.FAIL],
                                                     True), 1)
    lines.extend(verdict)
    return "\n".join(lines) + "\n"


def _matrix(fleet, width: int, color: bool) -> list[str]:
    """Hosts down, checks across: only the checks that are not PASS on every
    host get a column (numbered, named below), in blocks that fit the width."""
    ids, rows = fleet.matrix()
    cols = [i for i, cid in enumerate(ids) if any(statuses[i] != "pass" for _, statuses in rows)]
    lines = [_paint("Hosts", "1", color) + " (a column per check that is not PASS on every host)",
             "  . pass  w warn  F fail  s skip  E error  - not run"]
    name_w = min(max([4] + [len(printable(h.name)) for h, _ in rows]), 24)
    head = f"  {'host':<{name_w}}  {'verdict':<9}"
    per_block = max(1, (width - len(head)) // 3)
    blocks = [cols[i:i + per_block] for i in range(0, len(cols), per_block)] or [[]]
    for b, block in enumerate(blocks):
        if b:
            lines.append("")
        lines.append(head + "".join(f"{n + 1:>3}" for n in range(b * per_block, b * per_block + len(block))))
        for h, statuses in rows:
            name = printable(h.name)
            name = name if len(name) <= name_w else name[:name_w - 1] + "~"
            verdict = "READY" if h.ready else "NOT READY"
            if color:
                verdict = _paint(f"{verdict:<9}", _COLORS[Status.PASS if h.ready else Status.FAIL], True)
            else:
                verdict = f"{verdict:<9}"
            marks = "".join(f"{_MARKS.get(statuses[i], '?'):>3}" for i in block)
            lines.append(f"  {name:<{name_w}}  {verdict}{marks}")
    if cols:
        entry_w = 4 + max(len(ids[i]) for i in cols) + 2
        per_line = max(1, (width - 2) // entry_w)
        legend = [f"{n + 1:>3} {ids[i]:<{entry_w - 4}}" for n, i in enumerate(cols)]
        for i in range(0, len(legend), per_line):
            lines.append(" " + "".join(legend[i:i + per_line]).rstrip())
    passing = len(ids) - len(cols)
    lines.append(f"  {passing} of {len(ids)} checks pass on every host"
                 + ("" if cols else ": nothing to show per host"))
    return lines


def verdict_line(fleet) -> str:
    s = fleet.summary()
    f = s["fleet"]
    counts = f"{f['pass']} passed, {f['warn']} warning{'' if f['warn'] == 1 else 's'}, {f['fail']} failed"
    n = s["hosts"]
    if fleet.ready:
        hosts = "the only host" if n == 1 else "both hosts" if n == 2 else f"all {n} hosts"
        return f"Verdict: READY - {hosts} ready, no fleet check fails (fleet checks: {counts})"
    why = []
    if s["not_ready"]:
        names = s["not_ready"]
        shown = printable(", ".join(names[:6])) + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
        why.append(f"{len(names)} of {n} hosts not ready: {shown}")
    if s["blocking"]:
        why.append("fleet checks fail: " + ", ".join(s["blocking"]))
    return f"Verdict: NOT READY - {'; '.join(why)} (fleet checks: {counts})"
