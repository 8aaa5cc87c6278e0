"""Step 4: the fixes for what fails, all selected; the admin can drop any.
What kvmprep cannot fix (firmware switches, hardware) is listed with the
manual step."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from .base import WizardScreen
from .widgets import DetailsPane, RowTable


class FixesScreen(WizardScreen):
    STEP = "4/8 Fixes"
    HELP = ("The fixes kvmprep proposes for the checks that fail or warn, all selected. Space "
            "selects or drops the highlighted fix; the lower pane says what it changes and whether "
            "it needs a reboot. Rows marked [!] need a manual step (a BIOS setting, hardware). "
            "Enter shows the exact preview of the selected fixes.")
    BINDINGS = [
        Binding("space", "toggle", "Select/drop", id="toggle"),
        Binding("a", "all", "All/none", id="all"),
        Binding("enter", "next", "Preview", id="next", priority=True),
        Binding("n", "next", "Preview", show=False, id="next-n"),
        Binding("escape,b", "back", "Back", id="back"),
    ]

    def compose(self) -> ComposeResult:
        yield self.header()
        banner = ("Fixes for this host (Space: select/drop):" if self.state.is_root else
                  f"READ-ONLY (not root): you can review the fixes; to apply them run {self.state.sudo_command()}")
        yield Static(banner, classes="title" if self.state.is_root else "warning", id="fixes-banner")
        yield RowTable(id="fixes-table", cursor_type="row")
        yield DetailsPane("Working out the fixes...", id="fix-details")
        yield self.footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_column("Use", width=3, key="use")
        table.add_column("Fix", width=31, key="fix")
        table.add_column("Changes", width=max(20, self.app.size.width - 56), key="changes")
        table.add_column("Reboot", width=6, key="reboot")
        if self.state.plan is None:
            self.make_plan()
        else:
            self.fill()

    @work(thread=True, exclusive=True, group="plan")
    def make_plan(self) -> None:
        from remediations.plan import build_plan

        try:
            plan = build_plan(self.state.host, self.state.facts, self.state.report,
                              profile_name=self.state.profile.name)
        except Exception as exc:  # one error handler: say it, keep the wizard alive
            self.app.call_from_thread(self.query_one("#fix-details", DetailsPane).update,
                                      f"Could not work out the fixes: {exc}")
            return
        self.app.call_from_thread(self.planned, plan)

    def planned(self, plan) -> None:
        self.state.plan = plan
        self.state.selected = self.state.first_selection(plan)
        self.fill()

    def fill(self) -> None:
        plan = self.state.plan
        table = self.query_one(DataTable)
        table.clear()
        for step in plan.steps:
            mark = "[x]" if step.remediation in self.state.selected else "[ ]"
            changes = "; ".join(a.summary() for a in step.actions)
            # Text, never markup: "[x]" and file names must show as they are
            table.add_row(Text(mark), Text(step.remediation), Text(changes),
                          Text("yes" if step.needs_reboot else "-"), key=f"fix:{step.remediation}")
        for rid in plan.replan:
            table.add_row(Text("[+]"), Text(rid), Text("after the packages are installed"), Text("-"),
                          key=f"later:{rid}")
        for m in plan.manual:
            table.add_row(Text("[!]"), Text(m["check"]), Text("manual: " + (m.get("hint") or m["detail"])),
                          Text("-"), key=f"manual:{m['check']}")
        if not table.row_count:
            self.query_one("#fix-details", DetailsPane).update("Nothing to fix: no failing check has a fix, "
                                                               "and none needs a manual step.")
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value or ""
        kind, _, ident = key.partition(":")
        t = Text()
        if kind == "fix":
            step = next(s for s in self.state.plan.steps if s.remediation == ident)
            t.append(f"{step.remediation}: {step.title}\n", style="bold")
            t.append(f"fixes {', '.join(step.fixes)}\n")
            for a in step.actions:
                flags = [f for f, on in (("pending reboot", a.reboot), ("running system only", a.runtime)) if on]
                t.append(f"- {a.summary()}" + (f" [{', '.join(flags)}]" if flags else "") + "\n")
            for n in step.notes:
                t.append(f"note: {n}\n")
        elif kind == "later":
            t.append(f"{ident}: planned once the selected packages are installed\n", style="bold")
            t.append(self.state.plan.nothing_to_do.get(ident, ""))
        elif kind == "manual":
            m = next(m for m in self.state.plan.manual if m["check"] == ident)
            t.append(f"{ident}: kvmprep cannot change this\n", style="bold")
            t.append(m["detail"] + "\n")
            if m.get("hint"):
                t.append("What to do: ", style="bold")
                t.append(m["hint"])
        self.query_one("#fix-details", DetailsPane).update(t)

    def _current(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        kind, _, ident = key.partition(":")
        return ident if kind == "fix" else None

    def action_toggle(self) -> None:
        rid = self._current()
        if rid is None:
            return
        sel = self.state.selected
        sel.symmetric_difference_update({rid})
        table = self.query_one(DataTable)
        table.update_cell(f"fix:{rid}", "use", Text("[x]" if rid in sel else "[ ]"))

    def action_all(self) -> None:
        if self.state.plan is None:
            return
        every = {s.remediation for s in self.state.plan.steps}
        self.state.selected = set() if self.state.selected == every else every
        table = self.query_one(DataTable)
        for rid in every:  # the marks that change, in place: the cursor stays, the rest is not redrawn
            mark = "[x]" if rid in self.state.selected else "[ ]"
            if table.get_cell(f"fix:{rid}", "use").plain != mark:
                table.update_cell(f"fix:{rid}", "use", Text(mark))

    def action_next(self) -> None:
        from .preview import PreviewScreen

        if self.state.plan is None:
            return
        if not self.state.selected:
            self.notify("No fix selected: select one with Space, or go back.", severity="warning")
            return
        self.app.push_screen(PreviewScreen())

    def action_back(self) -> None:
        self.app.pop_screen()
