"""The register: every issue in a list that stays smooth at 100,000, searched as you type.

Typing restarts a short timer; when it fires, the question goes to the
register's in-memory index on a worker thread (exclusive, so a newer question
cancels an older one) and the answer replaces the list's rows. The keyboard
lives on the list; ``/`` goes to the search box and ``escape`` comes back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Header, Input, Static

from fieldkit import model, refdata
from fieldkit.filters import SORT_KEYS, IssueFilter, IssueRow, filter_rows
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.register_list import RegisterList
from fieldkit.widgets.field_input import FieldInput

#: How long typing must pause before the register is searched (bursts of keys are coalesced).
DEBOUNCE_S = 0.08

SORT_NAMES = {
    "updated": "Last changed",
    "created": "Captured",
    "severity": "Severity",
    "status": "Status",
    "municipality": "Municipality",
    "sector": "Sector",
    "title": "Title",
    "ref": "Reference",
    "ward": "Ward",
}


def narrows(before: IssueFilter, now: IssueFilter) -> bool:
    """Whether ``now`` can only match rows ``before`` matched: the same filters and order, more typed.

    Typing on at the end of the search words only ever narrows the answer (each word is a
    substring test), so each keystroke filters the previous answer instead of the register.
    """
    return now.text.startswith(before.text) and replace(before, text=now.text) == now


@dataclass(frozen=True)
class Narrowing:
    """The filters chosen besides the search words. Empty means any."""

    statuses: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    municipalities: frozenset[str] = frozenset()
    provinces: frozenset[str] = frozenset()
    open_only: bool = False

    def describe(self) -> str:
        parts = []
        if self.open_only:
            parts.append("open only")
        for label, chosen, names in (
            ("status", self.statuses, model.STATUSES),
            ("sector", self.sectors, model.SECTORS),
            ("severity", self.severities, model.SEVERITIES),
            ("province", self.provinces, refdata.PROVINCES),
        ):
            if chosen:
                parts.append(f"{label}: " + ", ".join(names.get(c, c) for c in sorted(chosen)))
        if self.municipalities:
            parts.append("municipality: " + ", ".join(sorted(self.municipalities)))
        return " · ".join(parts)


@dataclass
class Question:
    text: str = ""
    narrowing: Narrowing = field(default_factory=Narrowing)
    sort: str = "updated"
    descending: bool = True

    def as_filter(self) -> IssueFilter:
        n = self.narrowing
        return IssueFilter(
            text=self.text, statuses=n.statuses, sectors=n.sectors, severities=n.severities,
            municipalities=refdata.with_local_municipalities(n.municipalities), provinces=n.provinces, open_only=n.open_only,
            sort=self.sort, descending=self.descending,
        )


class RegisterScreen(Screen):
    CSS_PATH = "register.tcss"
    BINDING_GROUP_TITLE = "Register"
    AUTO_FOCUS = "RegisterList"

    BINDINGS = [
        Binding("f", "filters", "Filters", tooltip="Narrow by status, sector, severity, municipality, province.", id="register-filters", priority=True),
        Binding("o", "sort", "Sort", tooltip="Sort by another column.", id="register-sort", priority=True),
        Binding("O", "reverse", "Reverse", show=False, tooltip="Reverse the order.", id="register-reverse"),
        Binding("c", "clear", "Clear", show=False, tooltip="Clear the search words and filters.", id="register-clear"),
        Binding("e", "edit", "Edit", tooltip="Edit the highlighted issue.", id="register-edit", priority=True),
        Binding("s", "status", "Status", tooltip="Change the highlighted issue's status.", id="register-status", priority=True),
        Binding("a", "add_action", "Action", tooltip="Add a follow-up action to the highlighted issue.", id="register-action", priority=True),
        Binding("escape", "back", "Back", tooltip="From the search box to the list; from the list to the dashboard.", id="register-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.question = Question()
        self._timer: Timer | None = None
        self._asked: IssueFilter | None = None  # the question whose answer is awaited
        self._to_list_when_answered = False
        self._answer: tuple[IssueFilter, list[IssueRow]] | None = None  # the last question and its rows
        self.last_search_ms = 0.0
        self.total = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield FieldInput(placeholder="/ Search: words, reference, ward 12, municipality name or code…", id="search")
        yield Static("", id="narrowing")
        yield RegisterList(id="issues")
        yield Static("", id="register-status-line")
        yield KeyFooter()

    @property
    def issues(self) -> RegisterList:
        return self.query_one(RegisterList)

    def on_mount(self) -> None:
        self.sub_title = "Register"
        self.issues.show_sort(self.question.sort, self.question.descending)
        self.app.register_changed.subscribe(self, self._register_changed)
        self.app.in_background(lambda r: r.unsynced_record_ids(), self._unsynced_loaded, group="unsynced", exclusive=True)
        self.ask()

    def on_screen_resume(self) -> None:
        self.refresh_bindings()  # a form on top had the letter keys switched off

    def _unsynced_loaded(self, ids: set[str]) -> None:
        self.app.unsynced = ids
        self.issues.show_unsynced(ids)

    def _register_changed(self, unsynced: set[str]) -> None:
        self.issues.show_unsynced(unsynced)
        self._answer = None  # the register changed: the next question goes to the whole register
        self.ask()

    #: Keys that open a form: priority keys, so the keys typed after them reach the form, in order.
    FORM_KEYS = frozenset({"filters", "sort", "edit", "status", "add_action"})

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While the search box has the keyboard, its letters are words, not keys."""
        return not (action in self.FORM_KEYS and self.is_attached and isinstance(self.focused, Input))

    def focus_search(self) -> None:
        """Into the search box now (not after the keys already typed): "/" then words searches for them."""
        self.set_focus(self.query_one("#search", Input))

    # -- asking the register -------------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _typed(self, event: Input.Changed) -> None:
        self.question.text = event.value
        if self._timer is None:
            self._timer = self.set_timer(DEBOUNCE_S, self.ask)
        else:
            self._timer.reset()

    def ask(self) -> None:
        """Put the current question to the register, away from the interface thread."""
        self._timer = None
        question = self.question.as_filter()
        self._asked = question
        keep = self.issues.highlighted.id if self.issues.highlighted else None

        narrower = self._answer if self._answer is not None and narrows(self._answer[0], question) else None
        self.issues.wait_for_answer()

        def search(register) -> tuple[list[IssueRow], int, float]:
            started = time.perf_counter()
            rows = filter_rows(narrower[1], question) if narrower is not None else register.find(question)
            return rows, register.count(), (time.perf_counter() - started) * 1000

        self.app.in_background(search, lambda answer: self._answered(question, answer, keep), group="search", exclusive=True)

    @property
    def answer_pending(self) -> bool:
        """Typed words not yet answered: the list still shows the previous question's rows."""
        return self._timer is not None or self._asked is not None

    def _answered(self, question: IssueFilter, answer: tuple[list[IssueRow], int, float], keep: str | None) -> None:
        if question is self._asked:
            self._asked = None
        rows, total, took = answer
        self._answer = (question, rows)
        self.total, self.last_search_ms = total, took
        issues = self.issues
        issues.empty_message = "No issue matches: try fewer words, or c to clear the filters." if total else "The register is empty: n captures the first issue."
        issues.show_sort(self.question.sort, self.question.descending)
        issues.show_rows(rows, keep=keep)
        if self._asked is None:
            issues.answered()
        if self._to_list_when_answered and not self.answer_pending:
            self._to_list_when_answered = False
            issues.focus()
        narrowing = self.question.narrowing.describe()
        shown = self.query_one("#narrowing", Static)
        shown.update(f"Filters: {narrowing}   (f change · c clear)")
        shown.display = bool(narrowing)
        arrow = "↓" if self.question.descending else "↑"
        self.query_one("#register-status-line", Static).update(
            f"{len(rows):,} of {total:,} · by {SORT_NAMES[self.question.sort].lower()} {arrow} · "
            f"↑ not yet synced · {took:.0f} ms"
        )

    # -- keys ------------------------------------------------------------------------------------

    @on(Input.Submitted, "#search")
    def _to_list(self) -> None:
        self._go_to_list()

    def on_key(self, event) -> None:
        if event.key == "down" and self.focused is self.query_one("#search"):
            event.stop()
            self._go_to_list()

    def _go_to_list(self) -> None:
        """To the results, once they answer what was typed: enter never opens a row of the previous answer."""
        if self.answer_pending:
            self._to_list_when_answered = True
        else:
            self.issues.focus()

    @on(RegisterList.Opened)
    def _open(self, event: RegisterList.Opened) -> None:
        self.app.open_issue(event.issue_id)

    def _highlighted_id(self) -> str | None:
        row = self.issues.highlighted
        if row is None:
            self.notify("No issue is highlighted.", severity="warning")
        return row.id if row else None

    async def action_back(self) -> None:
        if self.focused is self.query_one("#search"):
            self.issues.focus()
        else:
            await self.app.show_view("dashboard")

    def action_clear(self) -> None:
        self.question.narrowing = Narrowing()
        with self.query_one("#search", Input).prevent(Input.Changed):
            self.query_one("#search", Input).value = ""
        self.question.text = ""
        self.ask()

    async def action_sort(self) -> None:
        from fieldkit.screens.dialogs import ChoiceScreen

        def chosen(sort: str | None) -> None:
            if sort is None:
                return
            if sort == self.question.sort:
                self.question.descending = not self.question.descending
            else:
                self.question.sort = sort
                self.question.descending = sort in ("updated", "created", "severity")
            self.ask()

        choices = [(key, SORT_NAMES[key]) for key in SORT_KEYS]
        await self.app.push_screen(ChoiceScreen("Sort by (the same again reverses)", choices, self.question.sort), chosen)
        self.app.screen.take_the_keyboard()

    def action_reverse(self) -> None:
        self.question.descending = not self.question.descending
        self.ask()

    async def action_filters(self) -> None:
        from fieldkit.screens.filters import FiltersScreen

        def chosen(narrowing: Narrowing | None) -> None:
            if narrowing is not None:
                self.question.narrowing = narrowing
                self.ask()

        await self.app.push_screen(FiltersScreen(self.question.narrowing), chosen)
        self.app.screen.take_the_keyboard()

    async def action_edit(self) -> None:
        issue_id = self._highlighted_id()
        if issue_id:
            await self.app.open_capture(issue_id=issue_id)
            self.app.screen.take_the_keyboard()

    async def action_status(self) -> None:
        from fieldkit.screens.issue import ask_status

        issue_id = self._highlighted_id()
        if issue_id:
            await ask_status(self.app, issue_id)
            self.app.screen.take_the_keyboard()

    async def action_add_action(self) -> None:
        from fieldkit.screens.issue import ask_action

        issue_id = self._highlighted_id()
        if issue_id:
            await ask_action(self.app, issue_id)
            self.app.screen.take_the_keyboard()
