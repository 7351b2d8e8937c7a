"""Every key, generated from the bindings themselves, so the help can never drift from the app.

First the keys in force on the screen underneath (the focused widget's, the
screen's, the app's), then the keys of every other screen and widget.
"""

from __future__ import annotations

from typing import Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


def other_places() -> list[tuple[str, type[DOMNode]]]:
    """Every screen and widget of the app that has keys of its own."""
    from fieldkit.screens.capture import CaptureScreen
    from fieldkit.screens.dashboard import DashboardScreen
    from fieldkit.screens.dialogs import ActionScreen, ConfirmScreen, NoteScreen, StatusScreen
    from fieldkit.screens.filters import FiltersScreen
    from fieldkit.screens.first_run import FirstRunScreen
    from fieldkit.screens.issue import IssueScreen
    from fieldkit.screens.photo import PhotoScreen
    from fieldkit.screens.register import RegisterScreen
    from fieldkit.screens.sync import SyncScreen
    from fieldkit.widgets.municipality_picker import MunicipalityPicker
    from fieldkit.widgets.register_list import RegisterList

    return [
        ("Dashboard", DashboardScreen), ("Register", RegisterScreen), ("Register list", RegisterList),
        ("Issue", IssueScreen), ("Photo", PhotoScreen), ("Capture and edit", CaptureScreen), ("Municipality box", MunicipalityPicker),
        ("Filters", FiltersScreen), ("Sync", SyncScreen), ("Change status", StatusScreen), ("Note", NoteScreen),
        ("Follow-up action", ActionScreen), ("Questions", ConfirmScreen), ("Welcome", FirstRunScreen),
    ]


def own_bindings(node: type[DOMNode]) -> list[Binding]:
    return [b for b in node.BINDINGS if isinstance(b, Binding)]


class HelpScreen(ModalScreen):
    CSS_PATH = "help.tcss"
    BINDING_GROUP_TITLE = "Help"
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close", tooltip="Back to where you were.", id="help-close"),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under
        self._shown_here: set[tuple[str, str]] = set()

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("Keys — escape closes; ctrl+p finds any command by name", id="help-title")
            with VerticalScroll():
                yield Static(self._keys_here(), id="keys-here")
                yield Static(self._keys_elsewhere(), id="keys-elsewhere")

    def _key(self, binding: Binding) -> str:
        keymap = getattr(self.app, "_keymap", {}) or {}
        if binding.id and binding.id in keymap:
            binding = binding.with_key(keymap[binding.id])
        return ", ".join(self.app.get_key_display(binding.with_key(key)) for key in binding.key.split(","))

    def _table(self, title: str) -> Table:
        table = Table(title=title, title_justify="left", title_style="bold", expand=True, box=None, padding=(0, 1), show_header=False)
        table.add_column("key", style="bold", no_wrap=True, min_width=10)
        table.add_column("what", no_wrap=True)
        table.add_column("more", ratio=1, style="dim")
        return table

    def _rows(self, table: Table, bindings: Iterable[Binding], seen: set[tuple[str, str]]) -> None:
        for binding in bindings:
            if binding.system or (binding.key, binding.action) in seen:
                continue
            seen.add((binding.key, binding.action))
            table.add_row(self._key(binding), binding.description or binding.action.replace("_", " "), Text(binding.tooltip))

    def _keys_here(self) -> Table:
        """The keys in force where the help was asked for: the focused widget's, the screen's, the app's."""
        title = self.under.sub_title or type(self.under).__name__
        table = self._table(f"Here ({title})")
        self._rows(table, (binding for binding, _node in self.app.keys_for(self.under)), self._shown_here)
        return table

    def _keys_elsewhere(self) -> Table:
        """The app's keys not already listed, then each screen's and widget's own."""
        table = self._table("Everywhere else")
        self._rows(table, own_bindings(type(self.app)), set(self._shown_here))
        for place, node in other_places():
            bindings = own_bindings(node)
            if bindings:
                table.add_row("", "")
                table.add_row(Text(place, style="bold underline"), "", "")
                self._rows(table, bindings, set())
        return table

    def action_close(self) -> None:
        self.dismiss()
