"""`?`: the keys of the current step and what the step is for."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,enter,q", "close", "Close", id="close-help")]

    def __init__(self, screen) -> None:
        super().__init__()
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        text = Text()
        title = getattr(self.for_screen, "STEP", "") or "kvmprep"
        text.append(f"{title}\n\n", style="bold")
        help_text = getattr(self.for_screen, "HELP", "")
        if help_text:
            text.append(help_text.strip() + "\n\n")
        text.append("Keys:\n", style="bold")
        # one line per action: "Enter/n  Fixes", "q/F10  Quit"
        lines: dict[str, list[str]] = {}
        for binding in list(getattr(self.for_screen, "BINDINGS", [])) + list(self.app.BINDINGS):
            if not hasattr(binding, "key") or not binding.description:
                continue
            for k in binding.key.split(","):
                shown = self.app.get_key_display(type(binding)(k.strip(), binding.action))
                keys = lines.setdefault(binding.description, [])
                if shown not in keys:
                    keys.append(shown)
        for description, keys in lines.items():
            text.append(f"  {'/'.join(keys):<14} {description}\n")
        text.append("\nEsc closes this help.")
        with Vertical(id="dialog", classes="help"):
            with VerticalScroll(id="help-text"):
                yield Static(text)

    def action_close(self) -> None:
        self.dismiss(None)
