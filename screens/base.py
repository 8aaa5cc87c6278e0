"""What every wizard step shares: header, footer, the step's help text."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer, Header


class WizardScreen(Screen):
    """A step of the wizard. ``HELP`` is shown by ``?`` with the step's keys."""

    HELP = ""
    STEP = ""

    @property
    def state(self):
        return self.app.state

    @property
    def ascii(self) -> bool:
        return self.app.options.ascii

    def header(self) -> Header:
        return Header(icon="*" if self.ascii else "⚙")

    def footer(self) -> Footer:
        return Footer(show_command_palette=False)

    def on_mount(self) -> None:
        if self.STEP:
            if self.ascii:  # the header joins title and subtitle with an em dash
                self.title, self.sub_title = f"kvmprep - {self.STEP}", ""
            else:
                self.sub_title = self.STEP
