"""Narrow the register: status, severity, province, sector, municipality, open only.

A dialog over the register; ``ctrl+s`` applies, ``escape`` leaves things as
they were. Space or enter ticks an entry in a list.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, SelectionList

from fieldkit.widgets.tick_list import TickList

from fieldkit import model, refdata
from fieldkit.screens.register import Narrowing
from fieldkit.widgets.municipality_picker import MunicipalityPicker


class FiltersScreen(ModalScreen[Narrowing | None]):
    CSS_PATH = "filters.tcss"
    BINDING_GROUP_TITLE = "Filters"
    BINDINGS = [
        Binding("ctrl+s", "apply", "Apply", tooltip="Show the register with these filters.", id="filters-apply"),
        Binding("ctrl+r", "reset", "Clear all", tooltip="Untick everything.", id="filters-reset"),
        Binding("escape", "cancel", "Cancel", tooltip="Keep the filters as they were.", id="filters-cancel"),
    ]

    def __init__(self, narrowing: Narrowing) -> None:
        super().__init__()
        self.narrowing = narrowing

    def compose(self) -> ComposeResult:
        n = self.narrowing
        with Vertical(classes="dialog"):
            yield Label("Filters (space ticks · ctrl+s applies · esc cancels)", classes="dialog-title")
            with VerticalScroll():
                with Horizontal(classes="lists"):
                    yield TickList(*((label, key, key in n.statuses) for key, label in model.STATUSES.items()), id="statuses")
                    yield TickList(*((label, key, key in n.severities) for key, label in model.SEVERITIES.items()), id="severities")
                    yield TickList(*((label, key, key in n.sectors) for key, label in model.SECTORS.items()), id="sectors")
                with Horizontal(classes="lists"):
                    yield TickList(*((name, code, code in n.provinces) for code, name in refdata.PROVINCES.items()), id="provinces")
                    with Vertical(id="where"):
                        yield Label("Municipalities")
                        yield MunicipalityPicker(multiple=True, values=sorted(n.municipalities), id="filter-municipalities")
                        yield Checkbox("Open issues only", n.open_only, id="open-only")
            with Horizontal(classes="buttons"):
                yield Button("Apply (ctrl+s)", id="apply", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        for list_id, title in (("statuses", "Status"), ("severities", "Severity"), ("sectors", "Sector"), ("provinces", "Province")):
            self.query_one(f"#{list_id}").border_title = title

    def take_the_keyboard(self) -> None:
        """The status list has the keyboard now: "space down space" typed ahead ticks two statuses."""
        self.set_focus(self.query_one("#statuses"))

    def chosen(self) -> Narrowing:
        def ticked(list_id: str) -> frozenset[str]:
            return frozenset(self.query_one(f"#{list_id}", SelectionList).selected)

        return Narrowing(
            statuses=ticked("statuses"),
            severities=ticked("severities"),
            sectors=ticked("sectors"),
            provinces=ticked("provinces"),
            municipalities=frozenset(self.query_one(MunicipalityPicker).values),
            open_only=self.query_one("#open-only", Checkbox).value,
        )

    def action_apply(self) -> None:
        self.dismiss(self.chosen())

    def action_reset(self) -> None:
        self.dismiss(Narrowing())

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()
