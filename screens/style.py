"""Small renderers shared by the screens: status words, progress bars (ASCII)."""

from __future__ import annotations

from rich.text import Text

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "cyan", "error": "bold magenta",
                "done": "green", "pending-reboot": "yellow", "failed": "bold red", "skipped": "cyan",
                "not-run": "dim", "running": "bold", "waiting": "dim",
                "undone": "yellow", "kept": "cyan", "not-undone": "bold red"}
ORDER = {"fail": 0, "error": 1, "warn": 2, "skip": 3, "pass": 4}
SEVERITY = {"required": 0, "recommended": 1, "info": 2}


def problem_rank(result) -> tuple[int, int]:
    """Required failures first, then other failures, errors, warnings..."""
    return ORDER[result.status.value], SEVERITY.get(result.severity, 3)


def status_text(status: str) -> Text:
    """The status as a word (never colour alone), coloured where colour exists."""
    return Text(status.upper(), style=STATUS_STYLE.get(status, ""))


def bar(done: int, total: int, what: str, width: int = 40) -> str:
    total = max(total, 1)
    filled = int(width * done / total)
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} {what}"
