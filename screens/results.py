"""Step 3: the verdict; checks grouped by category, problems first; details
of the highlighted check: what was found, why it matters, who requires it,
how it is fixed."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import DataTable, Static

from .base import WizardScreen
from .style import problem_rank, status_text
from .widgets import DetailsPane, RowTable


class ResultsScreen(WizardScreen):
    STEP = "3/8 Results"
    HELP = ("Every check of the profile, grouped by category with problems first. Up/Down moves; "
            "the lower pane explains the highlighted check: what kvmprep found (evidence), why it "
            "matters, which platform requires it and how to fix it. f shows only problems or all.")
    BINDINGS = [
        Binding("enter", "next", "Fixes", id="next", priority=True),
        Binding("n", "next", "Fixes", show=False, id="next-n"),
        Binding("f", "filter", "Problems/all", id="filter"),
        Binding("r", "rerun", "Re-run", id="rerun"),
        Binding("escape,b", "back", "Back", id="back"),
    ]

    problems_only: reactive[bool] = reactive(False, init=False)

    def __init__(self) -> None:
        super().__init__()
        self.row_checks: dict[str, object] = {}

    def compose(self) -> ComposeResult:
        yield self.header()
        yield Static(self.verdict(), id="verdict")
        table = RowTable(id="results-table", cursor_type="row", zebra_stripes=False)
        yield table
        yield DetailsPane("", id="details")
        yield self.footer()

    def verdict(self) -> Text:
        report = self.state.report
        s = report.summary
        t = Text()
        if report.ready:
            t.append(" READY ", style="bold green reverse")
            t.append(" no required check fails. ")
        else:
            t.append(" NOT READY ", style="bold red reverse")
            t.append(f" required: {', '.join(r.id for r in report.blocking)}. ")
        t.append(f"{s['pass']} pass, {s['warn']} warn, {s['fail']} fail, {s['skip']} skip, {s['error']} error")
        return t

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one(DataTable)
        table.add_column("Status", width=6, key="status")
        table.add_column("Check", width=24, key="check")
        table.add_column("Detail", key="detail")
        self.fill()
        table.focus()
        if self.state.plan is None:
            # after the first frame: the planner's imports and work would
            # otherwise hold the GIL while the results are drawn
            self.call_after_refresh(self.make_plan)

    @work(thread=True, exclusive=True, group="plan")
    def make_plan(self) -> None:
        """The plan, worked out while the admin reads the results: the details
        pane offers a fix only where the planner really acts for that check,
        and the Fixes screen starts from it."""
        from remediations.plan import build_plan

        try:
            plan = build_plan(self.state.host, self.state.facts, self.state.report,
                              profile_name=self.state.profile.name)
        except Exception:  # the Fixes screen works it out again and says what failed
            return
        self.app.call_from_thread(self.planned, plan)

    def planned(self, plan) -> None:
        if self.state.plan is None:
            self.state.plan = plan
            self.state.selected = self.state.first_selection(plan)
        table = self.query_one(DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            r = self.row_checks.get(key)
            if r is not None:
                self.query_one("#details", DetailsPane).update(details_text(r, self.state.plan))

    def ordered(self):
        from checks.registry import CATEGORIES

        results = self.state.report.results
        if self.problems_only:
            results = [r for r in results if r.status.value != "pass"]
        by_cat: dict[str, list] = {}
        for r in results:
            by_cat.setdefault(r.category, []).append(r)
        cats = sorted(by_cat, key=lambda c: (min(problem_rank(r) for r in by_cat[c]), list(CATEGORIES).index(c)))
        return [(c, sorted(by_cat[c], key=problem_rank)) for c in cats]

    def fill(self) -> None:
        from checks.registry import CATEGORIES

        table = self.query_one(DataTable)
        table.clear()
        self.row_checks.clear()
        for cat, rows in self.ordered():
            key = f"cat:{cat}"
            table.add_row(Text(""), Text(f"-- {CATEGORIES[cat]} --", style="bold"), Text(""), key=key)
            for r in rows:
                sev = "" if r.severity == "required" or r.status.value == "pass" else f" [{r.severity}]"
                table.add_row(status_text(r.status.value), Text(r.id), Text(r.detail + sev), key=r.id)
                self.row_checks[r.id] = r
        if not self.row_checks:
            self.query_one("#details", DetailsPane).update("No problems: every check passes.")
        else:
            first = next(iter(self.row_checks))
            table.move_cursor(row=table.get_row_index(first))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        r = self.row_checks.get(event.row_key.value)
        if r is not None:
            self.query_one("#details", DetailsPane).update(details_text(r, self.state.plan))

    def action_filter(self) -> None:
        self.problems_only = not self.problems_only

    def watch_problems_only(self, problems_only: bool) -> None:
        self.fill()
        self.notify("showing problems only" if problems_only else "showing all checks", timeout=2)

    def action_rerun(self) -> None:
        from .detection import DetectionScreen

        self.app.switch_screen(DetectionScreen())

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_next(self) -> None:
        from .fixes import FixesScreen

        self.app.push_screen(FixesScreen())


def details_text(r, plan=None) -> Text:
    t = Text()
    t.append_text(status_text(r.status.value))
    t.append(f" {r.id}", style="bold")
    t.append(f"  ({r.severity}{', ignored' if r.ignored else ''}) {r.title}\n")
    t.append(r.detail + "\n")
    for e in r.evidence[:4]:
        t.append("Found: ", style="bold")
        t.append(f"{e.source} = {e.value}\n")
    t.append("Why: ", style="bold")
    t.append(r.why + "\n")
    t.append("Required by: ", style="bold")
    t.append(r.source + "\n")
    if r.status.value != "pass":
        if r.hint:
            t.append("Fix: ", style="bold")
            t.append(r.hint + "\n")
        offered, refused = (plan.offers(r.id, r.remediations) if plan is not None
                            else (list(r.remediations), []))
        if offered:
            t.append("kvmprep can fix it: ", style="bold")
            t.append(", ".join(offered) + ("" if plan is not None else " (working out the plan...)") + "\n")
        elif refused:
            t.append("kvmprep cannot fix it here: ", style="bold")
            t.append("; ".join(refused) + "\n")
        if not r.remediations and not r.hint:
            t.append("Fix: ", style="bold")
            t.append("nothing kvmprep can change; see the detail above\n")
    return t
