"""Home: my municipalities at a glance — what is open, what is critical, what is late, what waits to sync.

Everything is counted on worker threads in three steps, so the screen is up
as soon as the issue index answers: the issues of my municipalities (the
index only), then follow-up actions (every action is read), then the weekly
chart (every status change is read) and the sync line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from fieldkit import model, refdata
from fieldkit.filters import IssueFilter, IssueRow, due_this_week
from fieldkit.register import Register
from fieldkit.safe_text import safe_for_terminal
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.register_list import SECTOR_SHORT
from fieldkit.widgets.week_chart import Week, WeekChart
from fieldkit.widgets.app_header import AppHeader

OPEN_COLUMNS = ("new", "acknowledged", "in_progress", "escalated")
COLUMN_TITLES = {"new": "New", "acknowledged": "Ack.", "in_progress": "Prog.", "escalated": "Esc."}
WEEKS = 8
LISTED = 40


@dataclass
class Figures:
    """What the dashboard shows about issues, counted away from the interface thread."""

    scope: list[str]
    mine: dict[str, IssueRow] = field(default_factory=dict)
    open_by_sector: dict[str, Counter] = field(default_factory=dict)
    open: int = 0
    critical_count: int = 0
    escalated_count: int = 0
    critical: list[IssueRow] = field(default_factory=list)
    escalated: list[IssueRow] = field(default_factory=list)


@dataclass
class FollowUps:
    """Follow-up actions that are late or due this week, on open issues in scope."""

    overdue: list[dict[str, Any]]
    due_this_week: list[dict[str, Any]]


def count_figures(register: Register, municipalities: list[str], today: date) -> Figures:
    """Open issues by sector and status, and the critical and escalated ones (the index only: quick)."""
    rows = register.find(IssueFilter(municipalities=refdata.with_local_municipalities(municipalities), sort="severity"))
    figures = Figures(scope=list(municipalities), mine={row.id: row for row in rows})
    for row in rows:
        if not row.is_open:
            continue
        figures.open += 1
        figures.open_by_sector.setdefault(row.sector, Counter())[row.status] += 1
        if row.severity == "critical":
            figures.critical_count += 1
            if len(figures.critical) < LISTED:
                figures.critical.append(row)
        if row.status == "escalated":
            figures.escalated_count += 1
            if len(figures.escalated) < LISTED:
                figures.escalated.append(row)
    return figures


def count_follow_ups(register: Register, mine: dict[str, IssueRow], today: date) -> FollowUps:
    """Late and coming follow-up actions on my open issues (reads every action once: the second step)."""
    overdue: list[dict[str, Any]] = []
    coming: list[dict[str, Any]] = []
    for action in register.all_actions():
        row = mine.get(action.get("issue_id", ""))
        if row is None or not row.is_open or action.get("done"):
            continue
        if model.is_overdue(action, today):
            overdue.append(action)
        elif due_this_week(action.get("due"), today):
            coming.append(action)
    return FollowUps(overdue=sorted(overdue, key=_by_due), due_this_week=sorted(coming, key=_by_due))


def _by_due(action: dict[str, Any]) -> tuple[str, str]:
    return action["due"], action["id"]


def sync_summary(register: Register) -> tuple[str, int, int]:
    """When this laptop last synced, how many changes wait, how many the central store refused."""
    try:
        from fieldkit.sync import sync_status
    except ImportError:
        state = register.sync_state()
        return str(state.get("last_sync_at") or ""), register.waiting_count(), len(register.rejected_ops())
    status = sync_status(register)
    return str(status.get("last_sync_at") or ""), int(status.get("waiting") or 0), int(status.get("rejected") or 0)


def week_starts(today: date, weeks: int = WEEKS) -> list[date]:
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def count_weeks(register: Register, mine: dict[str, IssueRow], today: date) -> list[Week]:
    """Issues opened and resolved in each of the last eight weeks (Monday to Sunday)."""
    starts = week_starts(today)
    first = starts[0].isoformat()
    opened: Counter = Counter()
    resolved: Counter = Counter()

    def week_of(stamp: str) -> date | None:
        if not stamp or stamp[:10] < first:
            return None
        day = model.stored_day(stamp[:10])
        return day - timedelta(days=day.weekday()) if day is not None and day <= today else None

    for row in mine.values():
        week = week_of(row.created_at)
        if week is not None and not row.deleted:
            opened[week] += 1
    for change in register.all_status_changes():
        if change.get("to_status") == "resolved" and change.get("issue_id") in mine:
            week = week_of(change.get("at", ""))
            if week is not None:
                resolved[week] += 1
    return [Week(start.strftime("%d %b"), opened[start], resolved[start]) for start in starts]


def when(stamp: str) -> str:
    if not stamp:
        return "never"
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment.tzinfo else moment.strftime("%Y-%m-%d %H:%M")


SECTOR_WIDTH = 11


def columns_that_fit(figures: Figures, width: int) -> tuple[str, ...]:
    """The status columns that fit beside the sector and the total: the rest are dropped, never clipped."""
    def cells(status: str | None) -> int:
        title = COLUMN_TITLES.get(status, "Open") if status else "Open"
        figures_width = max((len(str(sum(c.values()) if status is None else c[status])) for c in figures.open_by_sector.values()), default=1)
        return max(len(title), figures_width) + 1

    used = SECTOR_WIDTH + 1 + cells(None)
    shown: list[str] = []
    for status in OPEN_COLUMNS:
        if used + cells(status) > width:
            break
        used += cells(status)
        shown.append(status)
    return tuple(shown)


def sector_table(figures: Figures, width: int = 80) -> Table:
    columns = columns_that_fit(figures, width)
    table = Table(box=None, padding=(0, 1), collapse_padding=True, pad_edge=False, expand=True, show_edge=False)
    table.add_column("Sector", no_wrap=True, overflow="ellipsis", min_width=SECTOR_WIDTH)
    for status in columns:
        table.add_column(COLUMN_TITLES[status], justify="right", no_wrap=True)
    table.add_column("Open", justify="right", style="bold", no_wrap=True)
    for sector in model.SECTORS:
        counts = figures.open_by_sector.get(sector)
        if not counts:
            continue
        table.add_row(SECTOR_SHORT[sector].capitalize(), *(str(counts[s]) if counts[s] else "·" for s in columns), str(sum(counts.values())))
    if not figures.open_by_sector:
        table.add_row("No open issues", *("" for _ in columns), "0")
    return table


class DashboardScreen(Screen):
    """The home screen; enter on a line of 'Needs attention' opens that issue."""

    CSS_PATH = "dashboard.tcss"
    BINDING_GROUP_TITLE = "Dashboard"
    BINDINGS = [
        Binding("f5", "refresh", "Refresh", show=False, tooltip="Count again (after another program changed the register).", id="dashboard-refresh"),
    ]

    @dataclass
    class Ready(Message):
        """The figures are on the screen: the app is up (start-up is measured to here)."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: Figures | None = None
        self.follow_ups: FollowUps | None = None
        self._announced = False

    def compose(self) -> ComposeResult:
        yield AppHeader()
        yield Static("Counting the register…", id="summary")
        with Horizontal(id="top"):
            yield Static("", id="sectors")
            yield WeekChart(id="chart")
        yield OptionList(id="attention")
        yield Static("", id="sync-line")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#sectors").border_title = "Open issues by sector"
        self.query_one("#chart").border_title = f"Opened and resolved, last {WEEKS} weeks"
        self.query_one("#attention").border_title = "Needs attention (enter opens)"
        self.app.register_changed.subscribe(self, self._register_changed)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.refresh_bindings()  # a form on top had the letter keys switched off
        if self.figures is not None:
            self.action_refresh()

    def _register_changed(self, _unsynced: set[str]) -> None:
        if self.is_current:
            self.action_refresh()

    def action_refresh(self) -> None:
        app = self.app
        municipalities = app.my_municipalities
        today = app.today()
        name = app.settings.get("name") or ""
        self.sub_title = f"Dashboard · {name}" if name else "Dashboard"
        app.in_background(lambda r: count_figures(r, municipalities, today), self._show, group="dashboard", exclusive=True)

    def _show(self, figures: Figures) -> None:
        """The issue figures first; follow-ups, the chart and the sync line fill in after."""
        self.figures = figures
        scope = ", ".join(figures.scope) if figures.scope else "all municipalities"
        self.query_one("#sectors").border_subtitle = scope
        self._show_sectors()
        self.call_after_refresh(self._show_sectors)  # again once laid out, at the panel's real width
        self._show_summary()
        self._fill_attention()
        mine, today = figures.mine, self.app.today()
        self.app.in_background(lambda r: count_follow_ups(r, mine, today), self._show_follow_ups, group="dashboard-follow-ups", exclusive=True)
        self.app.in_background(lambda r: count_weeks(r, mine, today), self._show_weeks, group="dashboard-chart", exclusive=True)
        self.app.in_background(sync_summary, self._show_sync, group="dashboard-sync", exclusive=True)
        if not self._announced:
            self._announced = True
            self.post_message(self.Ready())

    def _show_sectors(self) -> None:
        sectors = self.query_one("#sectors", Static)
        if self.figures is not None:
            sectors.update(sector_table(self.figures, sectors.content_region.width or 80))

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_sectors)

    def _show_summary(self) -> None:
        figures, follow_ups = self.figures, self.follow_ups
        if figures is None:
            return
        late = f"{len(follow_ups.overdue)}" if follow_ups else "…"
        week = f"{len(follow_ups.due_this_week)}" if follow_ups else "…"
        self.query_one("#summary", Static).update(
            f"[b]‼ {figures.critical_count} critical[/] · [b]◆ {late} overdue[/] · ◷ {week} due this week · "
            f"⇪ {figures.escalated_count} escalated · {figures.open} open of {len(figures.mine)}"
        )

    def _show_follow_ups(self, follow_ups: FollowUps) -> None:
        self.follow_ups = follow_ups
        self._show_summary()
        self._fill_attention()

    def _show_sync(self, summary: tuple[str, int, int]) -> None:
        last, waiting, refused = summary
        line = f"Last sync: {when(last)}  ·  ↑ {waiting} change{'s' if waiting != 1 else ''} waiting to be sent"
        if refused:
            line += f"  ·  [b]✗ {refused} refused[/b] (y shows why)"
        self.query_one("#sync-line", Static).update(line)

    def _show_weeks(self, weeks: list[Week]) -> None:
        self.query_one(WeekChart).show_weeks(weeks)

    def _fill_attention(self) -> None:
        """Critical issues, late follow-ups, escalations, then what is due this week: enter opens each."""
        figures, follow_ups = self.figures, self.follow_ups
        if figures is None:
            return
        attention = self.query_one("#attention", OptionList)
        highlighted = attention.highlighted
        attention.clear_options()
        today = self.app.today()

        def ref(action: dict[str, Any]) -> str:
            row = figures.mine.get(action["issue_id"])
            return row.ref if row else ""

        options: list[Option] = [Option(safe_for_terminal(f"‼ CRITICAL   {row.ref}  {row.title}"), id=f"critical:{row.id}") for row in figures.critical]
        for action in (follow_ups.overdue[:LISTED] if follow_ups else []):
            late = (today - date.fromisoformat(action["due"])).days
            owner = f" — {action['owner']}" if action.get("owner") else ""
            options.append(Option(safe_for_terminal(f"◆ OVERDUE {late:>3}d {ref(action)}  {action['text']}{owner}"),
                                  id=f"overdue:{action['issue_id']}:{action['id']}"))
        for row in figures.escalated:
            to = row.responsible or "no institution named"
            options.append(Option(safe_for_terminal(f"⇪ ESCALATED  {row.ref}  to {to}: {row.title}"), id=f"escalated:{row.id}"))
        for action in (follow_ups.due_this_week[:LISTED] if follow_ups else []):
            options.append(Option(safe_for_terminal(f"◷ DUE {action['due'][5:]}  {ref(action)}  {action['text']}"),
                                  id=f"week:{action['issue_id']}:{action['id']}"))
        if not options:
            options.append(Option("Nothing needs attention: no critical issues, nothing late.", disabled=True))
        attention.add_options(options)
        attention.highlighted = highlighted if highlighted is not None and highlighted < attention.option_count else 0

    @on(OptionList.OptionSelected, "#attention")
    def _open(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.app.open_issue(event.option.id.split(":")[1])
