"""Quit? (default No). During an apply: the apply goes on without the wizard."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class QuitScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes, quit", id="quit-yes"),
        Binding("n,escape", "answer(False)", "No", id="quit-no"),
    ]

    def __init__(self, applying: bool = False) -> None:
        super().__init__()
        self.applying = applying

    def compose(self) -> ComposeResult:
        text = "Quit kvmprep?"
        if self.applying:
            text += ("\n\nThe apply goes on in the background: it runs detached from this window. "
                     "Run 'kvmprep apply --attach' to follow it again, 'kvmprep undo' to revert it.")
        with Vertical(id="dialog"):
            yield Static(text + "\n\ny: yes   n or Esc: no (the default)")
            with Horizontal(id="dialog-buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button("Yes, quit", id="yes")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
