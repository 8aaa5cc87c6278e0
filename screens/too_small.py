"""Shown instead of a broken layout when the terminal is below 80x24."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static


class TooSmallScreen(Screen):
    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    def on_mount(self) -> None:
        self.update_text()

    def on_resize(self, event) -> None:
        self.update_text()

    def update_text(self) -> None:
        w, h = self.app.size
        self.query_one("#too-small", Static).update(
            f"The terminal is {w}x{h}; kvmprep needs at least 80x24.\n"
            "Make the window larger (on a serial console: stty rows 24 cols 80).\n"
            "q quits.")
