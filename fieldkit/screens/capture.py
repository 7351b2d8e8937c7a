"""Capture or edit an issue, in the order a facilitator standing at a broken pump thinks of it.

Where first (municipality, ward), then what (sector, category, title,
severity, description), then where exactly, who is responsible, where it came
from, what was promised, who to call, and what support is needed.

Nothing typed is lost: every few seconds the form is kept as a draft in the
register (durably), and the next start offers it back. Values are checked as
they are typed with the model's own messages; ``ctrl+s`` saves.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option
from textual.widgets.select import InvalidSelectValueError

from fieldkit import model, refdata
from fieldkit.filters import IssueFilter, IssueRow
from fieldkit.register import Register
from fieldkit.widgets.field_input import FieldInput
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.municipality_picker import MunicipalityPicker
from fieldkit.widgets.register_list import STATUS_LABELS
from fieldkit.widgets.app_header import AppHeader

AUTOSAVE_S = 3.0
SAME_PROBLEM_M = 50.0
DUPLICATE_FIELDS = frozenset({"municipality", "sector", "category", "ward", "lat", "lon"})

#: The form's fields in the order they are asked; each is also the model's field name.
TEXT_FIELDS = ("ward", "title", "address", "lat", "lon", "responsible", "source_detail", "contact_name", "contact_phone")
AREA_FIELDS = ("description", "commitment")
CHOICE_FIELDS = ("sector", "category", "severity", "source")
FORM_FIELDS = ("municipality", "ward", "sector", "category", "title", "severity", "description", "address", "lat", "lon",
               "responsible", "source", "source_detail", "commitment", "contact_name", "contact_phone", "needs")
NEEDS_SHOWN = 2


def parse(raw: dict[str, Any]) -> dict[str, Any]:
    """The form's text as the model's values: numbers where numbers belong, blanks left out."""
    values: dict[str, Any] = {}
    for name in FORM_FIELDS:
        value = raw.get(name)
        if name == "needs":
            needs = [n for n in value or [] if (n.get("detail") or "").strip()]
            if needs:
                values["needs"] = [{k: (v or "").strip() for k, v in n.items() if (v or "").strip()} for n in needs]
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if name == "ward":
            value = model.parse_ward(value)
        elif name in ("lat", "lon"):
            value = model.parse_float(value)
        elif isinstance(value, str) and name not in AREA_FIELDS:
            value = value.strip()
        values[name] = value
    return values


def same_problem(register: Register, values: dict[str, Any], editing: str | None) -> list[IssueRow]:
    """Open issues that may be this one: same municipality and sector within about 50 m, or same ward and category."""
    code = values.get("municipality")
    sector = values.get("sector")
    if not code or not sector:
        return []
    lat, lon = values.get("lat"), values.get("lon")
    has_point = isinstance(lat, float) and isinstance(lon, float)
    ward, category = values.get("ward"), values.get("category")
    found = []
    for row in register.find(IssueFilter(municipalities=frozenset({code}), sectors=frozenset({sector}), open_only=True)):
        if row.id == editing:
            continue
        near = has_point and row.lat is not None and row.lon is not None and model.distance_m(lat, lon, row.lat, row.lon) <= SAME_PROBLEM_M
        same_place = isinstance(ward, int) and bool(category) and row.ward == ward and row.category == category
        if near or same_place:
            found.append(row)
            if len(found) >= 5:
                break
    return found


class CaptureScreen(Screen):
    """A new issue, or changes to one; ``escape`` asks before throwing changes away."""

    CSS_PATH = "capture.tcss"
    BINDING_GROUP_TITLE = "Capture"
    FORM = True
    AUTO_FOCUS = "#municipality-input"

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Check and save the issue.", id="capture-save"),
        Binding("ctrl+o", "same_problem", "Same problem?", tooltip="Look at open issues that may be this one, to add a note there instead.", id="capture-same-problem"),
        Binding("ctrl+n", "add_need", "Add need", show=False, tooltip="Another capacity-building need.", id="capture-add-need"),
        Binding("escape", "leave", "Back", tooltip="Leave the form (asks before throwing changes away).", id="capture-back"),
    ]

    def __init__(self, issue_id: str | None = None, draft: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.issue_id = issue_id or (draft or {}).get("issue_id")
        self.draft = draft
        self.original: dict[str, Any] = {}
        self.dirty = draft is not None
        self._draft_behind = draft is not None
        self._generation = 0  # bumped when the form is saved or thrown away: older draft writes then skip
        self._initial: dict[str, Any] = {}
        self._needs = NEEDS_SHOWN
        self._duplicate_timer: Timer | None = None
        self.candidates: list[IssueRow] = []
        self._loading = True
        self._shown_problems: dict[str, str] = {}

    # -- the form ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Vertical(id="same-problem-box"):
            yield Label("", id="same-problem-label")
            yield OptionList(id="same-problem")
        with VerticalScroll(id="form"):
            yield from self._row("municipality", "Municipality", MunicipalityPicker(compact=True, id="municipality"))
            yield from self._row("ward", "Ward", FieldInput(id="ward", placeholder="ward number, e.g. 12", compact=True))
            yield from self._row("sector", "Sector", Select(((label, key) for key, label in model.SECTORS.items()), id="sector", prompt="Choose the sector", compact=True))
            yield from self._row("category", "Category", Select([], id="category", prompt="Choose the sector first", compact=True))
            yield from self._row("title", "Title", FieldInput(id="title", placeholder="what is wrong, in a few words", compact=True))
            yield from self._row("severity", "Severity", Select(((label, key) for key, label in model.SEVERITIES.items()), id="severity", value="medium", allow_blank=False, compact=True))
            yield from self._row("description", "Description", TextArea(id="description", compact=True, tab_behavior="focus"))
            yield from self._row("address", "Location", FieldInput(id="address", placeholder="address or landmark, e.g. next to the clinic", compact=True))
            yield from self._row("lat", "Latitude", FieldInput(id="lat", placeholder="e.g. -32.9761 (decimal degrees)", compact=True))
            yield from self._row("lon", "Longitude", FieldInput(id="lon", placeholder="e.g. 27.8693", compact=True))
            yield from self._row("responsible", "Responsible", FieldInput(id="responsible", placeholder="institution responsible, e.g. Amatola Water",
                                                                     suggester=SuggestFromList(model.RESPONSIBLE_SUGGESTIONS, case_sensitive=False), compact=True))
            yield from self._row("source", "Source", Select(((label, key) for key, label in model.SOURCES.items()), id="source", value="site_visit", allow_blank=False, compact=True))
            yield from self._row("source_detail", "Source detail", FieldInput(id="source_detail", placeholder="e.g. Imbizo at Dutywa town hall, 12 Oct", compact=True))
            yield from self._row("commitment", "Commitment", TextArea(id="commitment", compact=True, tab_behavior="focus"))
            yield from self._row("contact_name", "Contact name", FieldInput(id="contact_name", placeholder="community contact (personal information)", compact=True))
            yield from self._row("contact_phone", "Contact phone", FieldInput(id="contact_phone", placeholder="e.g. 082 123 4567", compact=True))
            yield Label("Capacity-building needs (leave blank if none; ctrl+n adds another)", classes="section")
            with Vertical(id="needs"):
                for number in range(NEEDS_SHOWN):
                    yield self._need_row(number)
            yield Static("", id="needs-problem", classes="problem")
            with Horizontal(id="form-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Back (esc)", id="leave")
        yield KeyFooter()

    def _row(self, name: str, label: str, widget: Widget) -> ComposeResult:
        with Horizontal(classes="field", id=f"{name}-row"):
            yield Label(label, classes="field-label")
            yield widget
        yield Static("", id=f"{name}-problem", classes="problem")

    def _need_row(self, number: int) -> Horizontal:
        return Horizontal(
            Select(((label, key) for key, label in model.NEED_KINDS.items()), prompt="Kind", id=f"need-{number}-kind", compact=True),
            FieldInput(placeholder="what is needed", id=f"need-{number}-detail", compact=True),
            FieldInput(placeholder="support from", id=f"need-{number}-support", compact=True,
                  suggester=SuggestFromList(model.SUPPORT_SOURCES, case_sensitive=False)),
            classes="need",
        )

    def on_mount(self) -> None:
        self.sub_title = "Edit issue" if self.issue_id and not self.draft else ("Carry on with the draft" if self.draft else "New issue")
        self.query_one("#same-problem-box").display = False
        if self.issue_id:
            self.original = self.app.read(lambda r: r.issue_values(self.issue_id))
        start = (self.draft or {}).get("values") or self._as_raw(self.original)
        if not self.issue_id and not self.draft:
            mine = self.app.my_municipalities
            if len(mine) == 1:
                start = {**start, "municipality": mine[0]}
        self.fill(start)
        self.query_one(MunicipalityPicker).input.select_all()  # what I type replaces a municipality filled in for me
        self._initial = self.raw()
        self.set_interval(AUTOSAVE_S, self._autosave)
        self.call_after_refresh(self._loaded)

    def take_the_keyboard(self) -> None:
        """The first field has the keyboard now, so what is typed straight after ``n`` lands in it."""
        self.set_focus(self.query_one(MunicipalityPicker).input)

    def _loaded(self) -> None:
        self._loading = False
        self._check()
        if self.draft is not None:
            self._look_for_same_problem()

    @staticmethod
    def _as_raw(values: dict[str, Any]) -> dict[str, Any]:
        raw = {name: "" if values.get(name) is None else values.get(name) for name in FORM_FIELDS if name != "needs"}
        for name in ("ward", "lat", "lon"):
            raw[name] = str(raw[name]) if raw[name] != "" else ""
        raw["needs"] = list(values.get("needs") or [])
        return raw

    def fill(self, raw: dict[str, Any]) -> None:
        """Put values (an issue's, or a draft's) into the form."""
        self.query_one(MunicipalityPicker).set_value(raw.get("municipality") or "")
        sector = raw.get("sector") or None
        self._choices_for(sector)
        for name in CHOICE_FIELDS:
            value = raw.get(name) or None
            if value is not None:
                try:
                    self.query_one(f"#{name}", Select).value = value
                except InvalidSelectValueError:
                    pass  # a choice the model no longer has: the check will say so
        for name in TEXT_FIELDS:
            self.query_one(f"#{name}", Input).value = str(raw.get(name) or "")
        for name in AREA_FIELDS:
            self.query_one(f"#{name}", TextArea).text = str(raw.get(name) or "")
        needs = list(raw.get("needs") or [])
        while len(needs) > self._needs:
            self.action_add_need()
        for number, need in enumerate(needs):
            if need.get("kind") in model.NEED_KINDS:
                self.query_one(f"#need-{number}-kind", Select).value = need["kind"]
            self.query_one(f"#need-{number}-detail", Input).value = need.get("detail", "")
            self.query_one(f"#need-{number}-support", Input).value = need.get("support_from", "")

    def _choices_for(self, sector: str | None) -> None:
        category = self.query_one("#category", Select)
        current = category.value
        choices = model.CATEGORIES.get(sector or "", {})
        category.set_options((label, key) for key, label in choices.items())
        category.prompt = "Choose the category" if choices else "Choose the sector first"
        if current in choices:
            category.value = current

    def raw(self) -> dict[str, Any]:
        """The form as typed (strings), for the draft: half-typed values survive too."""
        raw: dict[str, Any] = {"municipality": self.query_one(MunicipalityPicker).value}
        for name in CHOICE_FIELDS:
            value = self.query_one(f"#{name}", Select).value
            raw[name] = value if isinstance(value, str) else ""
        for name in TEXT_FIELDS:
            raw[name] = self.query_one(f"#{name}", Input).value
        for name in AREA_FIELDS:
            raw[name] = self.query_one(f"#{name}", TextArea).text
        needs = []
        for number in range(self._needs):
            kind = self.query_one(f"#need-{number}-kind", Select).value
            needs.append({
                "kind": kind if isinstance(kind, str) else "",
                "detail": self.query_one(f"#need-{number}-detail", Input).value,
                "support_from": self.query_one(f"#need-{number}-support", Input).value,
            })
        raw["needs"] = needs
        return raw

    # -- checking as you go --------------------------------------------------------------------------

    @on(Input.Changed)
    @on(TextArea.Changed)
    @on(Select.Changed)
    @on(MunicipalityPicker.Changed)
    def _edited(self, event: Any) -> None:
        if self._loading:
            return
        widget_id = getattr(event.control, "id", "") or ""
        if widget_id == "sector":
            self._choices_for(event.value if isinstance(event.value, str) else None)
        self.dirty = self.draft is not None or self.raw() != self._initial
        self._draft_behind = True
        if widget_id in ("municipality", "sector"):
            self._suggest_responsible()
        self._check()
        if widget_id in DUPLICATE_FIELDS:
            self._look_for_same_problem()

    def _suggest_responsible(self) -> None:
        """For water and sanitation, the municipality's Water Services Authority is the likely answer."""
        code = self.query_one(MunicipalityPicker).value
        sector = self.query_one("#sector", Select).value
        responsible = self.query_one("#responsible", Input)
        wsa = refdata.water_services_authority(code)[0] if code and sector in ("water", "sanitation") else None
        responsible.placeholder = (f"e.g. {wsa.current_name} (the Water Services Authority)" if wsa
                                   else "institution responsible, e.g. Amatola Water")

    def _check(self, complete: bool = False) -> dict[str, str]:
        """Show the model's message under each field that is wrong; returns them all."""
        raw = self.raw()
        values = parse(raw)
        if complete:
            values.setdefault("status", "new")  # set by the register when it saves a new issue
        problems = model.problems("issue", values, partial=not complete)
        picker = self.query_one(MunicipalityPicker)
        if not picker.value and picker.input.value.strip():
            problems["municipality"] = "Choose a municipality from the list (↑ ↓ then enter)"
        needs = values.get("needs")
        if needs and any(not n.get("kind") for n in needs):
            problems["needs"] = "Choose a kind for each need"
        for name in FORM_FIELDS:
            message = problems.get(name, "")
            if message != self._shown_problems.get(name, ""):
                self._show_problem(name, message)
        return problems

    def _show_problem(self, name: str, message: str) -> None:
        """One field's message under it (only touched when it changes: a keystroke redraws little)."""
        self._shown_problems[name] = message
        box = self.query_one(f"#{name}-problem", Static)
        box.update(message)
        box.display = bool(message)
        row = self.query(f"#{name}-row")
        if row:
            row.first().set_class(bool(message), "-wrong")

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        if event.input.id != "municipality-input":
            self.focus_next()

    # -- the same problem, captured before ----------------------------------------------------------

    def _look_for_same_problem(self) -> None:
        if self._duplicate_timer is not None:
            self._duplicate_timer.stop()
        self._duplicate_timer = self.set_timer(0.3, self._ask_for_same_problem)

    def _ask_for_same_problem(self) -> None:
        values, editing = parse(self.raw()), self.issue_id
        self.app.in_background(lambda r: same_problem(r, values, editing), self._show_same_problem,
                               group="same-problem", exclusive=True)

    def _show_same_problem(self, rows: list[IssueRow]) -> None:
        self.candidates = rows
        box = self.query_one("#same-problem-box")
        box.display = bool(rows)
        if not rows:
            return
        self.query_one("#same-problem-label", Label).update(
            f"May be the same problem ({len(rows)} open) — ctrl+o to look; enter adds a note there instead of a new issue:")
        options = self.query_one("#same-problem", OptionList)
        options.clear_options()
        options.add_options(Option(f"{r.ref}  {STATUS_LABELS.get(r.status, r.status)}  ward {r.ward or '-'}  {r.title}", id=r.id) for r in rows)
        options.highlighted = 0

    def action_same_problem(self) -> None:
        if self.candidates:
            self.query_one("#same-problem", OptionList).focus()
        else:
            self.notify("No open issue looks like this one (same municipality and sector, within 50 m or same ward and category).", timeout=4)

    @on(OptionList.OptionSelected, "#same-problem")
    def _note_instead(self, event: OptionList.OptionSelected) -> None:
        from fieldkit.screens.dialogs import NoteScreen

        issue_id = event.option.id or ""
        row = next(r for r in self.candidates if r.id == issue_id)
        raw = self.raw()
        text = "\n".join(t for t in (raw.get("title", "").strip(), raw.get("description", "").strip()) if t)

        def written(note: str | None) -> None:
            if not note:
                return

            def add(register: Register) -> None:
                register.add_note(issue_id, note)
                self._forget_draft(register)

            self.app.write(add, lambda _v: self._went_to(issue_id, f"Note added to {row.ref}; no new issue was made."))

        self.app.push_screen(NoteScreen(f"Add a note to {row.ref} instead: {row.title}", text), written)

    def _went_to(self, issue_id: str, message: str) -> None:
        self.dirty = False
        self.notify(message, timeout=4)
        self.dismiss()
        self.app.open_issue(issue_id)

    # -- more needs ------------------------------------------------------------------------------------

    def action_add_need(self) -> None:
        self.query_one("#needs").mount(self._need_row(self._needs))
        self._needs += 1

    # -- drafts ----------------------------------------------------------------------------------------

    def _draft_doc(self) -> dict[str, Any]:
        return {"issue_id": self.issue_id, "values": self.raw(), "saved_at": model.now_iso()}

    def _autosave(self) -> None:
        if not (self._draft_behind and self.dirty):
            return
        self._draft_behind = False
        doc, generation = self._draft_doc(), self._generation

        def keep(register: Register) -> None:
            if generation == self._generation:
                register.save_draft(doc)

        self.app.in_background(keep, group="draft", exclusive=True)

    def _forget_draft(self, register: Register) -> None:
        """Called with the register locked, as the form is saved or thrown away."""
        self._generation += 1
        register.clear_draft()

    def keep_draft_now(self) -> None:
        """Save the draft on this thread: the app is about to close."""
        self.app.register.save_draft(self._draft_doc())

    # -- saving and leaving ----------------------------------------------------------------------------

    def action_save(self) -> None:
        self.query_one(MunicipalityPicker).commit()
        problems = self._check(complete=not self.issue_id)
        if self.issue_id:
            merged = {**{k: v for k, v in self.original.items() if k in model.FIELDS["issue"]}, **parse(self.raw())}
            problems = {**model.problems("issue", merged), **problems}
        if problems:
            first = next(name for name in FORM_FIELDS if name in problems) if any(n in problems for n in FORM_FIELDS) else None
            if first is not None:
                self._focus_field(first)
            self.notify("; ".join(problems.values()), title=f"Not saved: {len(problems)} to fix", severity="error", timeout=6)
            return
        values = parse(self.raw())
        if self.issue_id:
            issue_id = self.issue_id
            changes = {name: values.get(name, "") for name in FORM_FIELDS
                       if values.get(name) != self.original.get(name) and not (name not in values and self.original.get(name) in (None, ""))}

            def save(register: Register) -> dict[str, Any]:
                saved = register.edit_issue(issue_id, changes)
                self._forget_draft(register)
                return saved
        else:
            def save(register: Register) -> dict[str, Any]:
                saved = register.create_issue(values)
                self._forget_draft(register)
                return saved

        self.app.write(save, self._saved, self._not_saved)

    def _saved(self, values: dict[str, Any]) -> None:
        self.dirty = self._draft_behind = False
        if self.issue_id:
            self.notify(f"Saved {values.get('ref', '')}.", timeout=3)
            self.dismiss()
        else:
            self._went_to(values["id"], f"Saved {values.get('ref', '')}.")

    def _not_saved(self, err: Exception) -> None:
        problems = getattr(err, "problems", None) or {"title": str(err)}
        for name, message in problems.items():
            if name in FORM_FIELDS:
                self._show_problem(name, message)
        self.notify(str(err), title="Not saved", severity="error", timeout=8)

    def _focus_field(self, name: str) -> None:
        if name == "municipality":
            self.query_one(MunicipalityPicker).focus()
        elif name == "needs":
            self.query_one("#need-0-kind").focus()
        else:
            self.query_one(f"#{name}").focus()

    def action_leave(self) -> None:
        if self.focused is not None and self.focused.id == "same-problem":
            self.query_one(MunicipalityPicker).focus()
            return
        if not self.dirty:
            self.dismiss()
            return
        from fieldkit.screens.dialogs import ConfirmScreen

        def answer(throw_away: bool | None) -> None:
            if throw_away:
                self.dirty = self._draft_behind = False
                self.app.in_background(self._forget_draft, group="forget-draft")
                self.dismiss()

        self.app.push_screen(ConfirmScreen("Throw away what you typed in this form?", yes="Throw away", no="Keep editing"), answer)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#leave")
    def _leave_pressed(self) -> None:
        self.action_leave()
