"""Wrapping that keeps indentation: a long line continues under its own text,
never at column 0 (an 80-column console wraps every apt-get command of the
preview). Display only: what runs is the plan, not these lines."""

from __future__ import annotations

import re
import textwrap

from rich.text import Text

HANG = 4  # continuation lines: this much further in than the line's own indent


def hanging(line: str, width: int, under: int | None = None) -> list[str]:
    """``line`` cut to ``width`` columns; the pieces after the first are
    indented HANG columns more than the line itself (or ``under`` columns:
    a list's second column)."""
    width = max(20, width)
    if len(line) <= width:
        return [line]
    body = line.lstrip(" ")
    indent = min(len(line) - len(body), width // 2)
    lead, more = " " * indent, " " * min(under if under is not None else indent + HANG, width // 2)
    return textwrap.wrap(body, width, initial_indent=lead, subsequent_indent=more, break_long_words=True,
                         break_on_hyphens=False, replace_whitespace=False, drop_whitespace=True) or [line]


def _style(line: str, color: bool) -> str:
    if not color:
        return ""
    s = line.lstrip(" ")
    if s.startswith(("+++", "---")):
        return "bold"
    if s.startswith("+"):
        return "green"
    if s.startswith("-"):
        return "red"
    if s.startswith("@@"):
        return "cyan"
    if s.startswith("$ "):
        return "bold"
    if s.startswith("["):
        return "bold"
    return ""


def wrapped_text(text: str, width: int, color: bool = True) -> Text:
    """``text`` wrapped line by line with hanging indents; a line's colour
    (diff +/-, commands) carries over to its continuation lines."""
    out = Text()
    for line in text.splitlines():
        style = _style(line, color)
        for piece in hanging(line, width):
            out.append(piece + "\n", style=style)
    out.rstrip()
    return out


# a line's own lead: its indent, then a list bullet or a short "Label: "
_LEAD = r" *(?:[-*+] |\[[^\]]{1,3}\] |[A-Za-z][\w ]{0,20}: )?"


def lead_width(line: str, cap: int) -> int:
    """Where a line's continuation goes: under the text after its indent and
    its bullet or label ("Found: ", "- ", "note: "), at most ``cap``."""
    return min(len(re.match(_LEAD, line).group(0)), cap)


def wrap_labelled(text: Text, width: int) -> Text:
    """A styled Text wrapped at spaces to ``width``, each line continuing under
    its own text (``lead_width``): the details panes."""
    return wrap_styled(text, width, under=None)


def wrap_styled(text: Text, width: int, under: int | None) -> Text:
    """A styled Text wrapped at spaces to ``width``; continuation lines start
    at column ``under`` (the value column of "Label:   value" lines), or, for
    None, under each line's own lead (``lead_width``)."""
    width = max(20, width)
    out = Text()
    for n, line in enumerate(text.split("\n", allow_blank=True)):
        if n:
            out.append("\n")
        first = True
        hang = min(under, width // 2) if under is not None else lead_width(line.plain, width // 3)
        while True:
            room = width if first else width - hang
            if not first:
                out.append(" " * hang)
            if line.cell_len <= room:
                out.append_text(line)
                break
            cut = line.plain.rfind(" ", 1, room + 1)
            # no break that leaves text on this line after its lead ("Found: " and a long
            # path): cut the word at the edge instead of leaving the label alone
            lead = len(line.plain) - len(line.plain.lstrip(" ")) if not first else (
                lead_width(line.plain, width // 3) if under is None else 0)
            cut = cut if cut > lead else room
            out.append_text(line[:cut])
            out.append("\n")
            rest = line[cut:]
            line = rest[len(rest.plain) - len(rest.plain.lstrip(" ")):]
            first = False
    return out
