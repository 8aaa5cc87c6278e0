"""The Textual App: one wizard from first look to a ready host.

Screens live in screens/ (one per file); this module wires them, holds the
wizard's state, and adapts to the console: TERM=linux or --ascii gives the
ANSI theme and ASCII-only glyphs, serial lines or --slow give no animation,
a low frame rate and batched logs. Import it only on the wizard path.
"""

from __future__ import annotations

import os

from .wizard_state import WizardOptions

MIN_WIDTH, MIN_HEIGHT = 80, 24
HERE = os.path.dirname(os.path.abspath(__file__))


def stylesheet(ascii: bool) -> str:
    """The wizard's styles, read through this module's loader: plain files when
    installed, archive members inside kvmprep.pyz (Textual's css_path cannot
    open those). The ASCII sheet comes last, so that it wins ties."""
    names = ["kvmprep.tcss"] + (["ascii.tcss"] if ascii else [])
    return "\n".join(__loader__.get_data(os.path.join(HERE, n)).decode("utf-8") for n in names)


def prepare_environment(options: WizardOptions) -> None:
    """Textual reads these when it is imported: set them first."""
    os.environ.setdefault("ESCDELAY", "200")  # arrow keys over slow SSH are not Escape+letters
    if options.slow or options.ascii:
        os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    if options.slow:
        # serial lines and --slow: ~4 frames/s keeps a 115200-baud line ahead;
        # the local console (TERM=linux) is not bandwidth-bound: 20 frames/s (a key
        # is answered within 50 ms; idle, nothing is drawn at any rate)
        os.environ.setdefault("TEXTUAL_FPS", "20" if options.console_only else "4")


def build_app(options: WizardOptions):
    prepare_environment(options)
    from textual.app import App
    from textual.binding import Binding

    from screens.help import HelpScreen
    from screens.quit import QuitScreen
    from screens.too_small import TooSmallScreen
    from screens.welcome import WelcomeScreen

    from .wizard_state import WizardState

    class KvmprepApp(App[int]):
        """kvmprep's wizard."""

        TITLE = "kvmprep"
        SUB_TITLE = "prepare this server for KVM"
        ENABLE_COMMAND_PALETTE = False
        CSS = stylesheet(options.ascii)
        BINDINGS = [
            Binding("q", "request_quit", "Quit", id="quit"),
            Binding("f10", "request_quit", "Quit", show=False, id="quit-f10"),
            Binding("question_mark", "help", "Help", key_display="?", id="help"),
        ]

        def __init__(self) -> None:
            super().__init__(ansi_color=options.ascii)
            self.options = options
            self.state = WizardState(options)
            if options.ascii:
                self.theme = "ansi-dark"
                _ascii_scrollbars()
            if options.slow:
                self.animation_level = "none"
            self.apply_running = False  # set by the apply screen
            self._too_small = False
            self._started = False  # a Resize can arrive before on_mount pushed the first step

        def on_mount(self) -> None:
            from checks.facts import Facts
            from checks.host import Host

            env = options.env if options.env is not None else None
            self.state.host = Host(options.root, env=env, euid=options.euid)
            self.state.facts = Facts(self.state.host)
            self.push_screen(WelcomeScreen())
            self._started = True
            self.call_after_refresh(self._check_size)

        def on_resize(self, event) -> None:
            if self._started:
                self._check_size(event.size)  # self.size is updated only after this handler

        def _check_size(self, size=None) -> None:
            size = size or self.size
            small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
            if small and not self._too_small:
                self._too_small = True
                self.push_screen(TooSmallScreen())
            elif not small and self._too_small:
                self._too_small = False
                if isinstance(self.screen, TooSmallScreen):
                    self.pop_screen()

        def action_help(self) -> None:
            if not isinstance(self.screen, HelpScreen):
                self.push_screen(HelpScreen(self.screen))

        def action_request_quit(self) -> None:
            if isinstance(self.screen, QuitScreen):
                return

            def done(quit_now: bool | None) -> None:
                if quit_now:
                    self.exit(0)

            self.push_screen(QuitScreen(applying=self.apply_running), done)

        def get_key_display(self, binding) -> str:
            if options.ascii:
                return _ASCII_KEYS.get(binding.key, binding.key_display or binding.key)
            return super().get_key_display(binding)

    return KvmprepApp()


_ASCII_KEYS = {"enter": "Enter", "escape": "Esc", "space": "Space", "question_mark": "?",
               "f10": "F10", "left": "Left", "right": "Right", "up": "Up", "down": "Down", "tab": "Tab"}


def _ascii_scrollbars() -> None:
    """Scrollbar ends drawn with 1/8 blocks need glyphs a VGA console lacks."""
    from textual.scrollbar import ScrollBar, ScrollBarRender

    class AsciiScrollBarRender(ScrollBarRender):
        VERTICAL_BARS = [" "] * 8
        HORIZONTAL_BARS = [" "] * 8

    ScrollBar.renderer = AsciiScrollBarRender


def run_wizard(options: WizardOptions) -> int:
    app = build_app(options)
    rc = app.run(mouse=not options.ascii)
    # a crash inside Textual returns None with a non-zero return_code
    return app.return_code or rc or 0
