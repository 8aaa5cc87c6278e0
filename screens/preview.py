"""Step 5: every action of the chosen plan exactly as apply runs it: file
diffs and commands. Nothing is written yet."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from remediations.plan import counted

from .base import WizardScreen


class PreviewScreen(WizardScreen):
    STEP = "5/8 Preview"
    HELP = ("The exact changes: a unified diff for every file and the exact command line of every "
            "command, in the order they run. Up/Down/PgUp/PgDn scroll. Nothing has been changed; "
            "Enter asks for confirmation before applying.")
    BINDINGS = [
        Binding("enter", "apply", "Apply...", id="apply", priority=True),
        Binding("a", "apply", "Apply...", show=False, id="apply-a"),
        Binding("escape,b", "back", "Back", id="back"),
    ]

    def compose(self) -> ComposeResult:
        from remediations.plan import render_preview

        self.plan = self.state.chosen_plan()
        self.text = render_preview(self.plan)
        self.width = 0
        yield self.header()
        files, commands = self.plan.counts()
        yield Static(f"{counted(len(self.plan.actions), 'action')}: {counted(files, 'file')}, "
                     f"{counted(commands, 'command')}. "
                     "Nothing is written until you confirm.", classes="title")
        with VerticalScroll(id="preview-scroll"):
            yield Static(self.rendered(self.app.size.width), id="preview-text")
        yield self.footer()

    def rendered(self, screen_width: int):
        """The preview wrapped with hanging indents (screens/wrap.py): a long
        command continues under itself, not at column 0."""
        from .wrap import wrapped_text

        self.width = screen_width
        return wrapped_text(self.text, screen_width - 3)  # the scrollbar and a margin

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self.width:
            self.query_one("#preview-text", Static).update(self.rendered(event.size.width))

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#preview-scroll").focus()

    def action_apply(self) -> None:
        from .confirm import ConfirmScreen

        if not self.state.is_root:
            self.notify(f"Read-only mode: to apply these fixes run {self.state.sudo_command()}",
                        severity="warning", timeout=8)
            return
        files, commands = self.plan.counts()

        def answered(yes: bool | None) -> None:
            if yes:
                from .apply import ApplyScreen

                self.app.push_screen(ApplyScreen(self.plan))

        self.app.push_screen(ConfirmScreen(len(self.plan.actions), files, commands,
                                           any(a.reboot for a in self.plan.actions)), answered)

    def action_back(self) -> None:
        self.app.pop_screen()
