"""Importing a spreadsheet in the app: see what it will do before anything is written.

Name the file (CSV, XLSX, XLS or ODS) and, if a column was not recognised, map it
(``Problem=title, Notes=skip``). f5 reads it against the register and shows the
columns chosen and how many rows would be added, updated, left unchanged or
refused, each refusal with its row and reason. ctrl+s imports it: the file is
read and planned again at that moment, so what is written matches the register
as it is then. The rules are ``fieldkit.imports``, the same as ``fieldkit import``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Static

from fieldkit import imports
from fieldkit.spreadsheets import SpreadsheetError
from fieldkit.widgets.app_header import AppHeader


@dataclass(frozen=True, slots=True)
class Outcome:
    """What reading (or importing) the file came to: the summary lines, the details, or why it could not be read."""

    summary: str
    details: str
    problem: str = ""
    writes: int = 0


def mapping_pairs(text: str) -> list[str]:
    """'Problem=title, Notes=skip' (commas or semicolons between pairs) as the pairs ``--map`` takes."""
    return [pair.strip() for pair in text.replace(";", ",").split(",") if pair.strip()]


def plan_file(register, path: str, mapping_text: str, write: bool) -> Outcome:
    """Read and plan the file against the register (and write it when ``write``); a person's mistake is an Outcome."""
    try:
        mapping = imports.parse_mapping(mapping_pairs(mapping_text))
        book = imports.read_file(str(Path(path).expanduser()))
        plan = imports.plan_import(register, book, mapping)
        if write:
            imports.apply_import(register, plan)
    except SpreadsheetError as err:
        return Outcome("", "", problem=str(err))
    summary, details = imports.describe_plan(plan, dry_run=not write)
    return Outcome("\n".join(summary), "\n".join(details), writes=plan.writes)


class ImportScreen(Screen):
    """Preview a spreadsheet's import, then import it."""

    CSS_PATH = "imports.tcss"
    BINDING_GROUP_TITLE = "Import a spreadsheet"
    FORM = True  # the boxes take typing: the app's single-letter keys stay off here
    BINDINGS = [
        Binding("f5", "preview", "Preview", tooltip="Read the file and show what importing it would do; nothing is written.",
                id="import-preview"),
        Binding("ctrl+s", "import_file", "Import", tooltip="Import the file (read again now) into the register.", id="import-run"),
        Binding("escape", "back", "Back", tooltip="Close without importing.", id="import-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.outcome: Outcome | None = None

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Horizontal(id="import-file"):
            yield Label("File", classes="box-label")
            yield Input(placeholder="register.xlsx or register.csv (enter or f5 to preview)", id="import-path")
        with Horizontal(id="import-mapping"):
            yield Label("Map", classes="box-label")
            yield Input(placeholder="optional: Problem=title, Notes=skip", id="import-map")
        yield Static("Name a spreadsheet and press enter to see what importing it would do.", id="import-summary", markup=False)
        with VerticalScroll(id="import-preview"):
            yield Static("", id="import-details", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Import a spreadsheet"
        self.query_one("#import-preview").border_title = "Columns and refused rows"
        self.query_one("#import-path", Input).focus()

    @on(Input.Submitted, "#import-path")
    @on(Input.Submitted, "#import-map")
    def _submitted(self) -> None:
        self.action_preview()

    def _asked(self) -> tuple[str, str] | None:
        path = self.query_one("#import-path", Input).value.strip()
        if not path:
            self.notify("Name the spreadsheet to import first.", severity="warning")
            return None
        return path, self.query_one("#import-map", Input).value

    def action_preview(self) -> None:
        """Plan the import away from the interface thread; nothing is written."""
        asked = self._asked()
        if asked is None:
            return
        self.query_one("#import-summary", Static).update(f"Reading {asked[0]} …")
        self.app.in_background(lambda register: plan_file(register, *asked, write=False), self._show,
                               group="import-preview", exclusive=True)

    def action_import_file(self) -> None:
        """Import the file as it reads now, through the register: every change an operation that syncs."""
        asked = self._asked()
        if asked is None:
            return
        self.query_one("#import-summary", Static).update(f"Importing {asked[0]} …")
        self.app.in_background(lambda register: plan_file(register, *asked, write=True), self._imported,
                               group="import-run", exclusive=True, changes=True)

    def _show(self, outcome: Outcome) -> None:
        self.outcome = outcome
        if outcome.problem:
            self.query_one("#import-summary", Static).update(f"⚠ {outcome.problem}")
            self.query_one("#import-details", Static).update("")
            return
        self.query_one("#import-summary", Static).update(outcome.summary + "\nctrl+s imports it; f5 reads it again.")
        self.query_one("#import-details", Static).update(outcome.details)

    def _imported(self, outcome: Outcome) -> None:
        self._show(outcome)
        if outcome.problem:
            self.notify(outcome.problem, title="Not imported", severity="error", timeout=8)
        else:
            self.query_one("#import-summary", Static).update(outcome.summary)
            self.notify(outcome.summary, title="Imported", timeout=6)

    def action_back(self) -> None:
        self.app.pop_screen()
