"""The last question before anything changes. Default: No."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from remediations.plan import counted


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes, apply", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]

    def __init__(self, actions: int = 0, files: int = 0, commands: int = 0, reboot: bool = False,
                 text: str | None = None, yes: str = "Yes, apply") -> None:
        super().__init__()
        self.counts = (actions, files, commands, reboot)
        self.text, self.yes = text, yes

    def compose(self) -> ComposeResult:
        actions, files, commands, reboot = self.counts
        text = self.text or (f"Apply {counted(actions, 'action')}?\n\n"
                f"They change {counted(files, 'file')} and run {counted(commands, 'command')}. "
                "Nothing has been changed yet.\n"
                "Every file is backed up first; 'kvmprep undo' reverts the apply.")
        if reboot and not self.text:
            text += "\nSome changes take effect only after a reboot."
        with Vertical(id="dialog"):
            yield Static(text + "\n\ny: yes   n or Esc: no (the default)")
            with Horizontal(id="dialog-buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button(self.yes, id="yes")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
