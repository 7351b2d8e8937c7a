"""The small questions the app asks on top of a screen: are you sure, which status and why, a note,
a follow-up action, one of a few choices.

Each dialog only gathers an answer and checks it with the model's own rules;
the screen that asked does the saving.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from fieldkit import model
from fieldkit.widgets.field_input import FieldInput

CSS = Path(__file__).with_name("dialogs.tcss")


class Dialog(ModalScreen):
    CSS_PATH = CSS
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without changing anything.", id="dialog-cancel"),
    ]

    def action_cancel(self) -> None:
        self.dismiss(None)

    def take_the_keyboard(self) -> None:
        take_the_keyboard(self)


def take_the_keyboard(screen: ModalScreen) -> None:
    """Focus the dialog's first field now, not a moment later: keys typed straight after the key
    that opened it (space, down, a note) land in it, in the order they were typed."""
    chain = screen.focus_chain
    if chain:
        screen.set_focus(chain[0])


class FormDialog(Dialog):
    """A dialog that gathers an answer: its Save button saves (``action_save``), Cancel closes."""

    def action_save(self) -> None:
        raise NotImplementedError

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)


class ConfirmScreen(Dialog):
    """A yes-or-no question; escape answers neither (None)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", tooltip="Answer yes.", id="confirm-yes"),
        Binding("n", "answer(False)", "No", tooltip="Answer no.", id="confirm-no"),
    ]

    def __init__(self, question: str, yes: str = "Yes", no: str = "No", danger_no: bool = False) -> None:
        super().__init__()
        self.question, self.yes, self.no, self.danger_no = question, yes, no, danger_no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="primary")
                yield Button(f"{self.no} (n)", id="no", variant="error" if self.danger_no else "default")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class ChoiceScreen(Dialog):
    """Pick one of a few things: enter takes the highlighted one."""

    def __init__(self, title: str, choices: list[tuple[str, str]], current: str | None = None) -> None:
        super().__init__()
        self.title_text, self.choices, self.current = title, choices, current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield OptionList(*(Option(label, id=key) for key, label in self.choices))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        keys = [key for key, _ in self.choices]
        options.highlighted = keys.index(self.current) if self.current in keys else 0

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class StatusScreen(FormDialog):
    """Where the issue goes next, and why: a note is required to escalate, close or reopen."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Change status", tooltip="Change the status, with the note.", id="status-save"),
    ]

    def __init__(self, current: str, ref: str = "") -> None:
        super().__init__()
        self.current, self.ref = current, ref
        self.targets = [s for s in model.STATUSES if s in model.TRANSITIONS.get(current, frozenset())]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{self.ref} is {model.STATUSES.get(self.current, self.current).lower()}. Change it to:", classes="dialog-title")
            yield OptionList(*(Option(model.STATUSES[s], id=s) for s in self.targets), id="status-choice")
            yield Label("Why? (needed when escalating, closing or reopening)")
            yield TextArea(id="status-note", classes="note")
            yield Static("", id="status-problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Change status (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    @property
    def chosen(self) -> str | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    @on(OptionList.OptionSelected)
    def _picked(self) -> None:
        self.query_one(TextArea).focus()

    @on(OptionList.OptionHighlighted)
    @on(TextArea.Changed)
    def _check(self) -> None:
        if self.query_one("#status-problem", Static).content:
            self._problem()

    def _problem(self) -> str | None:
        new = self.chosen
        note = self.query_one(TextArea).text
        problem = "Choose a status" if new is None else model.check_transition(self.current, new, note)
        self.query_one("#status-problem", Static).update(problem or "")
        return problem

    def action_save(self) -> None:
        if self._problem() is None:
            self.dismiss((self.chosen, self.query_one(TextArea).text.strip()))
        else:
            self.query_one(TextArea).focus()


class NoteScreen(FormDialog):
    """A note for the issue's timeline: what was seen, said or agreed."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Add note", tooltip="Add the note to the timeline.", id="note-save"),
    ]

    def __init__(self, title: str = "Add a note", text: str = "") -> None:
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield TextArea(self.text, id="note-text", classes="note")
            yield Static("", id="note-problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Add note (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.move_cursor(area.document.end)  # a note filled in for me: typing carries on after it

    def action_save(self) -> None:
        text = self.query_one(TextArea).text.strip()
        problem = model.check_field("note", "text", text) if text else "Write the note first"
        if problem:
            self.query_one("#note-problem", Static).update(problem)
            return
        self.dismiss(text)


def parse_due(text: str, today: date) -> str:
    """A due date as typed: YYYY-MM-DD, or +N for N days from today (what people say on site)."""
    cleaned = text.strip()
    if cleaned.startswith("+") and cleaned[1:].isdigit():
        return (today + timedelta(days=int(cleaned[1:]))).isoformat()
    return cleaned


class ActionScreen(FormDialog):
    """A follow-up action: what, who, by when."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Add action", tooltip="Add the follow-up action.", id="action-save"),
    ]

    def __init__(self, today: date) -> None:
        super().__init__()
        self.today = today

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Add a follow-up action", classes="dialog-title")
            yield Label("What must happen")
            yield FieldInput(id="action-text", placeholder="e.g. Get a written repair plan with dates")
            yield Label("Who (owner)")
            yield FieldInput(id="action-owner", placeholder="e.g. Technical Services manager")
            yield Label("Due (YYYY-MM-DD, or +7 for a week from today)")
            yield FieldInput(id="action-due", placeholder=(self.today + timedelta(days=7)).isoformat())
            yield Static("", id="action-problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Add action (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def values(self) -> dict[str, Any]:
        return {
            "text": self.query_one("#action-text", Input).value.strip(),
            "owner": self.query_one("#action-owner", Input).value.strip(),
            "due": parse_due(self.query_one("#action-due", Input).value, self.today) or None,
        }

    def action_save(self) -> None:
        values = self.values()
        problems = model.problems("action", {"issue_id": "-", **{k: v for k, v in values.items() if v}})
        if problems:
            self.query_one("#action-problem", Static).update("; ".join(problems.values()))
            return
        self.dismiss(values)

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        if event.input.id == "action-due":
            self.action_save()
        else:
            self.focus_next()
