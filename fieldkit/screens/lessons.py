"""Lessons learned in the app: find one, read it, capture a new one.

The list is searched as you type (title, the three accounts, sector, place,
tags); the highlighted lesson is shown in full beside it. ``a`` opens the
capture form; ctrl+s there saves the lesson through the register, so it syncs
like an issue.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Input, Label, Markdown, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from fieldkit import lessons, model, refdata
from fieldkit.reports import md_cell
from fieldkit.widgets.key_footer import KeyFooter

LESSON_FIELDS = ("title", "what_happened", "what_worked", "what_did_not", "sector", "municipality", "tags", "issue_ids")


def lesson_markdown(lesson: dict[str, Any], refs: dict[str, str]) -> str:
    """One lesson as the reader sees it beside the list."""
    lines = [f"# {md_cell(lesson.get('title', ''))}"]
    facts = []
    if lesson.get("sector"):
        facts.append(model.sector_label(lesson["sector"]))
    muni = refdata.get(lesson.get("municipality") or "") if lesson.get("municipality") else None
    if muni:
        facts.append(f"{muni.current_name} ({muni.code}), {muni.province_name}")
    if lesson.get("created_at"):
        facts.append(f"{lesson['created_at'][:10]} by {lesson.get('created_by', '')}")
    if facts:
        lines += ["", "*" + md_cell(" · ".join(facts)) + "*"]
    for name, label in lessons.ACCOUNTS:
        if lesson.get(name):
            lines += ["", f"## {label}", "", lesson[name]]
    if lesson.get("tags"):
        lines += ["", "**Tags:** " + ", ".join(lesson["tags"])]
    linked = [refs.get(i, i[:8]) for i in lesson.get("issue_ids") or []]
    if linked:
        lines += ["", "**Linked issues:** " + ", ".join(linked)]
    return "\n".join(lines) + "\n"


def option_label(lesson: dict[str, Any]) -> str:
    where = " · ".join(v for v in (model.sector_label(lesson.get("sector")), lesson.get("municipality", "")) if v)
    day = (lesson.get("created_at") or "")[:10]
    return f"{day}  {lesson.get('title', '')}" + (f"\n            {where}" if where else "")


class LessonsScreen(Screen):
    """Every lesson on this laptop, searchable; the highlighted one in full."""

    CSS_PATH = "lessons.tcss"
    BINDING_GROUP_TITLE = "Lessons learned"
    BINDINGS = [
        Binding("a", "add", "Add lesson", tooltip="Capture a lesson learned.", id="lessons-add"),
        Binding("slash", "search", "Search", tooltip="Search the lessons by any word.", id="lessons-search"),
        Binding("f5", "refresh", "Refresh", show=False, tooltip="Read the lessons again.", id="lessons-refresh"),
        Binding("escape", "back", "Back", tooltip="From the search box to the list; from the list, close.", id="lessons-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.all_lessons: list[dict[str, Any]] = []
        self.shown: list[dict[str, Any]] = []
        self.refs: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="/ Search lessons: words, sector, municipality, tag…", id="lesson-search")
        with Horizontal(id="lesson-panes"):
            yield OptionList(id="lesson-list")
            with VerticalScroll(id="lesson-detail"):
                yield Markdown("", id="lesson-text")
        yield Static("", id="lessons-status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "Lessons learned"
        self.query_one("#lesson-list").border_title = "Lessons (a adds one)"
        self.action_refresh()
        self.query_one("#lesson-list").focus()

    def action_refresh(self, keep: str | None = None) -> None:
        def load(register) -> tuple[list[dict[str, Any]], dict[str, str]]:
            found = register.lessons()
            refs = {}
            for lesson in found:
                for issue_id in lesson.get("issue_ids") or []:
                    try:
                        refs[issue_id] = register.issue_values(issue_id).get("ref", issue_id[:8])
                    except LookupError:
                        refs[issue_id] = issue_id[:8]
            return found, refs

        self.app.in_background(load, lambda loaded: self._loaded(loaded, keep), group="lessons", exclusive=True)

    def _loaded(self, loaded: tuple[list[dict[str, Any]], dict[str, str]], keep: str | None) -> None:
        self.all_lessons, self.refs = loaded
        self._show(keep)

    def _show(self, keep: str | None = None) -> None:
        text = self.query_one("#lesson-search", Input).value
        self.shown = lessons.search(self.all_lessons, text)
        options = self.query_one("#lesson-list", OptionList)
        options.clear_options()
        options.add_options([Option(option_label(lesson), id=lesson["id"]) for lesson in self.shown])
        if self.shown:
            ids = [lesson["id"] for lesson in self.shown]
            options.highlighted = ids.index(keep) if keep in ids else 0
        else:
            self.query_one("#lesson-text", Markdown).update(
                "No lesson matches those words." if self.all_lessons else "No lessons yet. Press **a** to capture the first one.")
        total = len(self.all_lessons)
        self.query_one("#lessons-status", Static).update(f"{len(self.shown)} of {total} lesson{'s' if total != 1 else ''}")

    @on(Input.Changed, "#lesson-search")
    def _typed(self) -> None:
        self._show()

    @on(Input.Submitted, "#lesson-search")
    def _to_list(self) -> None:
        self.query_one("#lesson-list").focus()

    @on(OptionList.OptionHighlighted, "#lesson-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        lesson = next((item for item in self.shown if item["id"] == event.option.id), None)
        if lesson is not None:
            self.query_one("#lesson-text", Markdown).update(lesson_markdown(lesson, self.refs))

    def action_search(self) -> None:
        self.query_one("#lesson-search", Input).focus()

    def action_add(self) -> None:
        def saved(lesson: dict[str, Any] | None) -> None:
            if lesson:
                self.notify(f"Lesson saved: {lesson['title']}", timeout=4)
                self.action_refresh(keep=lesson["id"])

        self.app.push_screen(LessonFormScreen(), saved)

    def action_back(self) -> None:
        if self.focused is self.query_one("#lesson-search"):
            self.query_one("#lesson-list").focus()
        else:
            self.app.pop_screen()


class LessonFormScreen(Screen[dict[str, Any] | None]):
    """Capture a lesson: only the title is required; ctrl+s saves, escape leaves without saving."""

    CSS_PATH = "lessons.tcss"
    BINDING_GROUP_TITLE = "New lesson"
    FORM = True
    BINDINGS = [
        Binding("ctrl+s", "save", "Save lesson", tooltip="Save the lesson (it syncs like an issue).", id="lesson-save"),
        Binding("escape", "cancel", "Cancel", tooltip="Leave without saving.", id="lesson-cancel"),
    ]

    def compose(self) -> ComposeResult:
        from fieldkit.widgets.municipality_picker import MunicipalityPicker

        yield Header()
        with VerticalScroll(id="lesson-form"):
            yield Label("Title (the lesson in one line) *")
            yield Input(id="title", max_length=model.TITLE_MAX)
            yield Label("What happened")
            yield TextArea(id="what_happened", classes="account")
            yield Label("What worked")
            yield TextArea(id="what_worked", classes="account")
            yield Label("What did not work")
            yield TextArea(id="what_did_not", classes="account")
            yield Label("Sector")
            yield Select([(label, code) for code, label in model.SECTORS.items()], prompt="Sector (optional)", id="sector")
            yield Label("Municipality (optional)")
            yield MunicipalityPicker(id="municipality")
            yield Label("Tags (comma between them, e.g. imbizo, water board)")
            yield Input(id="tags")
            yield Label("Linked issues (references, comma between them)")
            yield Input(id="issues", placeholder="e.g. EC121-26-K7QM-0042")
            yield Static("", id="lesson-problems")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "New lesson"
        self.query_one("#title", Input).focus()

    def values(self) -> tuple[dict[str, Any], list[str]]:
        """The lesson's fields as typed, and the issue references still to be looked up."""
        from fieldkit.widgets.municipality_picker import MunicipalityPicker

        sector = self.query_one("#sector", Select).value
        fields: dict[str, Any] = {
            "title": self.query_one("#title", Input).value.strip(),
            "what_happened": self.query_one("#what_happened", TextArea).text.strip(),
            "what_worked": self.query_one("#what_worked", TextArea).text.strip(),
            "what_did_not": self.query_one("#what_did_not", TextArea).text.strip(),
            "sector": sector if isinstance(sector, str) else None,
            "municipality": self.query_one(MunicipalityPicker).value or None,
            "tags": lessons.parse_tags(self.query_one("#tags", Input).value),
        }
        refs = [r.strip() for r in self.query_one("#issues", Input).value.replace(";", ",").split(",") if r.strip()]
        return fields, refs

    def action_save(self) -> None:
        fields, refs = self.values()
        checked = {k: v for k, v in fields.items() if v not in (None, "", [])}
        problems = model.problems("lesson", checked)
        if problems:
            self._problem(" · ".join(problems.values()))
            return

        def save(register) -> dict[str, Any]:
            ids = list(dict.fromkeys(register.resolve(ref) for ref in refs))
            return register.save_lesson({**fields, "issue_ids": ids})

        self.app.write(save, done=self.dismiss, failed=lambda err: self._problem(str(err)))

    def _problem(self, text: str) -> None:
        self.query_one("#lesson-problems", Static).update(f"⚠ {text}")
        self.notify(text, title="Not saved", severity="error", timeout=6)

    def action_cancel(self) -> None:
        self.dismiss(None)
