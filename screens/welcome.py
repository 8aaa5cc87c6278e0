"""Step 1: who and what this is, and which requirements to check."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from .base import WizardScreen
from .widgets import RowList


class WelcomeScreen(WizardScreen):
    STEP = "1/8 Welcome"
    HELP = ("What this server is, who runs kvmprep, and which platform's requirements to check. "
            "Pick a profile with Up/Down and press Enter to detect. Nothing is changed until you "
            "confirm a plan of fixes at the end.")
    BINDINGS = [Binding("enter", "start", "Detect", id="start", priority=True)]

    def compose(self) -> ComposeResult:
        yield self.header()
        with Vertical():
            yield Static(self.summary(), id="host-summary")
            yield Static("Profile (Up/Down, Enter to detect):", classes="title")
            yield RowList(*self.profile_options(), id="profiles")  # repaints only the two rows a move changes
        yield self.footer()

    def summary(self) -> Text:
        facts = self.state.facts
        host = self.state.host
        t = Text()
        # facts.safe: an unreadable fact shows as unknown here; its checks say why
        cpu, os_info, virt = facts.safe("cpu"), facts.safe("os"), facts.safe("virt")
        memory = facts.safe("memory")
        mem = memory.total_gib if memory else None
        os_name = (os_info.name or os_info.id) if os_info else None
        t.append("Host:    ", style="bold")
        t.append(f"{facts.safe('hostname') or '?'} - {os_name or 'unknown distribution'}\n")
        t.append("CPU:     ", style="bold")
        model = (cpu.model or cpu.arch) if cpu else None
        t.append(f"{' '.join((model or '?').split())}, {(cpu and cpu.count) or '?'} CPUs\n")
        t.append("Memory:  ", style="bold")
        t.append(f"{mem:.1f} GiB\n" if mem else "unknown\n")
        t.append("Machine: ", style="bold")
        if virt is None:
            t.append("cannot tell\n")
        elif virt.is_vm:
            t.append(f"virtual machine ({virt.kind or 'unknown hypervisor'})\n")
        elif virt.is_vm is False:
            t.append("bare metal\n")
        else:
            t.append("cannot tell\n")
        if not host.live:
            t.append("Root:    ", style="bold")
            t.append(f"{host.root} (an offline system: runtime probes are skipped)\n")
        t.append("User:    ", style="bold")
        if self.state.is_root:
            t.append("root: detection and fixes\n")
        else:
            t.append("not root: READ-ONLY mode. kvmprep detects and explains; to apply fixes run:\n")
            t.append(f"         {self.state.sudo_command()}\n", style="bold")
        if self.state.over_ssh:
            t.append("SSH:     ", style="bold")
            t.append("you are connected over SSH: start kvmprep inside tmux or screen before applying "
                     "fixes (an apply itself goes on if the connection drops).\n")
        from .wrap import wrap_styled

        return wrap_styled(t, self.app.size.width - 2, under=9)  # long values continue under themselves

    def profile_options(self) -> list[Option]:
        from checks.profile import builtin_names, load_profile

        from .wrap import hanging

        opts = []
        wanted = self.app.options.profile or "generic"
        names = builtin_names()
        if wanted not in names:
            names = [wanted] + names
        for name in names:
            try:
                p = load_profile(name)
                # a long description continues under itself, not under the list's edge
                about = p.description or (f"(from {p.file})" if p.file else "")
                label = "\n".join(hanging(f"{p.name:<16} {about}".rstrip(), self.app.size.width - 6, under=17))
            except Exception as exc:  # a bad user profile: say so, do not crash
                label = f"{name:<16} (cannot be loaded: {exc})"
            opts.append(Option(label, id=name))
        self._wanted = wanted
        return opts

    def on_mount(self) -> None:
        super().on_mount()
        ol = self.query_one("#profiles", OptionList)
        for i in range(ol.option_count):
            if ol.get_option_at_index(i).id == self._wanted:
                ol.highlighted = i
        ol.focus()
        # detection of the default profile starts once the screen is drawn,
        # while the admin reads it (the detection screen joins it)
        self.call_after_refresh(self.start_early_detection)

    def start_early_detection(self) -> None:
        from checks.background import BackgroundRun
        from checks.profile import load_profile

        if self.state.early is not None or self.state.report is not None:
            return
        try:
            profile = load_profile(self._wanted)
        except Exception:  # a bad profile is reported when it is chosen
            return
        self.state.early = BackgroundRun(self.state.host, self.state.facts, profile).start()
        self._early_for = self._wanted

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.start(event.option.id)

    def action_start(self) -> None:
        ol = self.query_one("#profiles", OptionList)
        if ol.highlighted is not None:
            self.start(ol.get_option_at_index(ol.highlighted).id)

    def start(self, profile_name: str) -> None:
        from checks.profile import ProfileError, load_profile

        from .detection import DetectionScreen

        early = self.state.early
        try:
            if early is not None and getattr(self, "_early_for", None) == profile_name:
                self.state.profile = early.profile  # the early run's own profile object
            else:
                self.state.profile = load_profile(profile_name)
        except ProfileError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.app.push_screen(DetectionScreen())
