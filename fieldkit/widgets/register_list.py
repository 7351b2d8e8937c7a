"""The register as a Line-API list (after Toolong's LogLines): only the rows on screen are drawn.

Textual's DataTable measures every cell of every row up front (27 s at 100,000
issues); this list keeps the rows as plain ``IssueRow`` objects and renders the
twenty or so that are visible, so 100,000 issues scroll like ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from fieldkit.filters import IssueRow
from fieldkit.safe_text import safe_for_terminal

#: Severity as a symbol and a word, so it reads without colour.
SEVERITY_LABELS = {"critical": "‼ CRIT", "high": "! high", "medium": "· med", "low": "  low"}
STATUS_LABELS = {
    "new": "new",
    "acknowledged": "acknowl.",
    "in_progress": "in prog.",
    "escalated": "ESCALATED",
    "resolved": "resolved",
    "closed": "closed",
}
SECTOR_SHORT = {
    "water": "water",
    "sanitation": "sanitation",
    "electricity": "electricity",
    "roads": "roads",
    "waste": "refuse",
    "housing": "housing",
    "facilities": "facilities",
    "other": "other",
}
#: Sector names for a narrow terminal, still words rather than codes.
SECTOR_TINY = {
    "water": "water",
    "sanitation": "sanit.",
    "electricity": "electr.",
    "roads": "roads",
    "waste": "refuse",
    "housing": "housing",
    "facilities": "facil.",
    "other": "other",
}
#: Shown on a row whose changes have not reached the central server yet.
UNSYNCED_MARK = "↑"


@dataclass(frozen=True)
class Column:
    key: str  # the sort it answers to
    title: str
    width: int  # 0: takes what is left


def columns_for(width: int, ref_width: int) -> list[Column]:
    """The columns that fit: narrow terminals lose the date, wide ones gain the institution."""
    wide = width >= 100
    columns = [
        Column("ref", "Reference", ref_width),
        Column("severity", "Sev.", 6),
        Column("status", "Status", 9),
        Column("municipality", "Munic.", 6),
        Column("ward", "Ward", 4),
        Column("sector", "Sector", 11 if wide else 7),
    ]
    if width >= 100:
        columns.append(Column("updated", "Updated", 10))
    columns.append(Column("title", "Title", 0))
    if width >= 130:
        columns.append(Column("responsible", "Responsible", 24))
    return columns


def fit(text: str, width: int) -> str:
    """Text cut or padded to exactly ``width`` cells, with an ellipsis where it was cut."""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else set_cell_size(text, width)
    return set_cell_size(text, width)


class RegisterList(ScrollView, can_focus=True):
    """Every issue that answers the search, one line each, with a header that stays put."""

    BINDING_GROUP_TITLE = "Register list"

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False, tooltip="Highlight the issue above.", id="list-up"),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip="Highlight the issue below.", id="list-down"),
        Binding("pageup", "page_up", "Page up", show=False, tooltip="Up a screenful.", id="list-page-up"),
        Binding("pagedown", "page_down", "Page down", show=False, tooltip="Down a screenful.", id="list-page-down"),
        Binding("home,g", "first", "First", show=False, tooltip="The first issue.", id="list-first"),
        Binding("end,G", "last", "Last", show=False, tooltip="The last issue.", id="list-last"),
        Binding("enter", "open", "Open", tooltip="Open the highlighted issue: fields, timeline, actions.", id="open-issue"),
    ]

    COMPONENT_CLASSES = {
        "register-list--header",
        "register-list--cursor",
        "register-list--critical",
        "register-list--high",
        "register-list--medium",
        "register-list--low",
        "register-list--escalated",
        "register-list--done",
        "register-list--unsynced",
        "register-list--empty",
    }

    DEFAULT_CSS = """
    RegisterList {
        overflow-x: hidden;
    }
    """

    cursor: reactive[int] = reactive(0, always_update=True)

    @dataclass
    class Highlighted(Message):
        """The highlight moved to another issue (or to none)."""

        register_list: "RegisterList"
        issue_id: str | None

        @property
        def control(self) -> "RegisterList":
            return self.register_list

    @dataclass
    class Opened(Message):
        """The facilitator asked to open an issue."""

        register_list: "RegisterList"
        issue_id: str

        @property
        def control(self) -> "RegisterList":
            return self.register_list

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.rows: list[IssueRow] = []
        self.unsynced: set[str] = set()
        self.sort = "updated"
        self.descending = True
        self.empty_message = "Loading the register…"
        self._ref_width = 18
        self.waiting = False  # a newer answer is on its way: keys wait for it
        self._held: list[Callable[[], None]] = []

    # -- what to show ------------------------------------------------------------------------

    def show_rows(self, rows: list[IssueRow], keep: str | None = None) -> None:
        """Show new results, keeping the highlight on the same issue where it is still there."""
        self.rows = rows
        self._ref_width = max(18, max((len(r.ref) for r in rows), default=0))  # every row: a reference is never cut
        position = 0
        if keep is not None:
            position = next((i for i, row in enumerate(rows) if row.id == keep), 0)
        self.virtual_size = Size(self.size.width, len(rows) + 1)
        self.cursor = min(position, max(len(rows) - 1, 0))
        if keep is None:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.refresh()

    def wait_for_answer(self) -> None:
        """New rows are coming: moves and enter typed meanwhile are kept, to act on the rows shown next."""
        self.waiting = True

    def answered(self) -> None:
        """The newest rows are shown: the keys typed while they came act on them, in order."""
        self.waiting = False
        held, self._held = self._held, []
        for action in held:
            action()

    def _in_turn(self, action: Callable[[], None]) -> None:
        if self.waiting:
            self._held.append(action)
        else:
            action()

    def show_unsynced(self, ids: set[str]) -> None:
        self.unsynced = ids
        self.refresh()

    def show_sort(self, sort: str, descending: bool) -> None:
        self.sort, self.descending = sort, descending
        self.refresh()

    @property
    def highlighted(self) -> IssueRow | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    # -- moving ------------------------------------------------------------------------------

    @property
    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def watch_cursor(self, old: int, new: int) -> None:
        self._keep_cursor_visible()
        self.refresh()
        row = self.highlighted
        self.post_message(self.Highlighted(self, row.id if row else None))

    def _keep_cursor_visible(self) -> None:
        """Scroll so the highlighted row is on screen.

        ``force``: right after new rows arrive Textual has not yet decided the list may scroll, and a
        plain scroll did nothing, leaving the highlighted row off screen (enter then opened a row
        nobody could see).
        """
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True, force=True)
        elif self.cursor >= top + self._page:
            self.scroll_to(y=self.cursor - self._page + 1, animate=False, immediate=True, force=True)

    def _move(self, to: int) -> None:
        if self.rows:
            self.cursor = max(0, min(to, len(self.rows) - 1))

    def action_cursor_up(self) -> None:
        self._in_turn(lambda: self._move(self.cursor - 1))

    def action_cursor_down(self) -> None:
        self._in_turn(lambda: self._move(self.cursor + 1))

    def action_page_up(self) -> None:
        self._in_turn(lambda: self._move(self.cursor - self._page))

    def action_page_down(self) -> None:
        self._in_turn(lambda: self._move(self.cursor + self._page))

    def action_first(self) -> None:
        self._in_turn(lambda: self._move(0))

    def action_last(self) -> None:
        self._in_turn(lambda: self._move(len(self.rows) - 1))

    def action_open(self) -> None:
        """Open exactly the row highlighted on screen (once the rows being fetched are shown)."""
        self._in_turn(self._open_highlighted)

    def _open_highlighted(self) -> None:
        row = self.highlighted
        if row is not None:
            self.post_message(self.Opened(self, row.id))

    def on_click(self, event: events.Click) -> None:
        index = round(self.scroll_y) + event.y - 1
        if event.y >= 1 and 0 <= index < len(self.rows):
            self.cursor = index
            if event.chain >= 2:
                self.action_open()

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.rows) + 1)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- drawing -----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            return self._header(width, base)
        index = round(self.scroll_y) + y - 1
        if not self.rows:
            if y == 2:
                style = base + self.get_component_rich_style("register-list--empty")
                return Strip([Segment(fit("  " + self.empty_message, width), style)])
            return Strip.blank(width, base)
        if index >= len(self.rows):
            return Strip.blank(width, base)
        return self._row(self.rows[index], index == self.cursor, width, base)

    def _header(self, width: int, base: Style) -> Strip:
        style = base + self.get_component_rich_style("register-list--header")
        segments = [Segment(" ", style)]
        for column in columns_for(width, self._ref_width):
            arrow = ("↓" if self.descending else "↑") if column.key == self.sort else ""
            size = column.width or self._title_width(width)
            segments.append(Segment(fit(column.title + arrow, size) + " ", style))
        return Strip(segments).adjust_cell_length(width, style)

    def _title_width(self, width: int) -> int:
        used = 1 + sum(c.width + 1 for c in columns_for(width, self._ref_width) if c.width)
        return max(width - used - 1, 8)

    def _ink(self, component: str) -> Style:
        """A component's colour and weight without its background, so the highlight shows through."""
        full = self.get_component_rich_style(component)
        return Style(color=full.color, bold=full.bold, italic=full.italic, underline=full.underline)

    def _row(self, row: IssueRow, is_cursor: bool, width: int, base: Style) -> Strip:
        style = base
        if is_cursor:
            cursor = self.get_component_rich_style("register-list--cursor")
            style = base + (cursor if self.has_focus else Style(underline=True))
        unsynced = row.id in self.unsynced
        segments = [
            Segment(UNSYNCED_MARK if unsynced else " ", style + self._ink("register-list--unsynced") if unsynced else style)
        ]
        for column in columns_for(width, self._ref_width):
            size = column.width or self._title_width(width)
            text, extra = self._cell(row, column.key)
            cell_style = style + self._ink(extra) if extra else style
            segments.append(Segment(fit(safe_for_terminal(text), size), cell_style))
            segments.append(Segment(" ", style))
        return Strip(segments).adjust_cell_length(width, style)

    def _cell(self, row: IssueRow, key: str) -> tuple[str, str | None]:
        if key == "ref":
            return row.ref, None
        if key == "severity":
            return SEVERITY_LABELS.get(row.severity, row.severity), f"register-list--{row.severity}" if row.severity in SEVERITY_LABELS else None
        if key == "status":
            extra = "register-list--escalated" if row.status == "escalated" else ("register-list--done" if row.status in ("resolved", "closed") else None)
            return STATUS_LABELS.get(row.status, row.status), extra
        if key == "municipality":
            return row.municipality, None
        if key == "ward":
            return (str(row.ward) if row.ward else "").rjust(4), None
        if key == "sector":
            names = SECTOR_SHORT if self.scrollable_content_region.width >= 100 else SECTOR_TINY
            return names.get(row.sector, row.sector), None
        if key == "updated":
            return row.updated_at[:10], None
        if key == "responsible":
            return row.responsible, None
        return row.title, "register-list--critical" if row.severity == "critical" else None
