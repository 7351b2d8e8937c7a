"""The first start on a laptop: who is working, which municipalities they cover, and an optional practice register.

Asked once: the answers are kept in the register's settings, and the name is
what every change is signed with.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Label, LoadingIndicator, Static

from fieldkit import practice
from fieldkit.register import Register
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.municipality_picker import MunicipalityPicker
from fieldkit.widgets.field_input import FieldInput
from fieldkit.widgets.app_header import AppHeader

def settle_in(register: Register, name: str, municipalities: list[str]) -> None:
    """Keep the answers in the real register; made-up issues never go into it (they have a register of their own)."""
    register.save_settings(name=name, municipalities=municipalities, first_run_done=True)


class FirstRunScreen(Screen):
    CSS_PATH = "first_run.tcss"
    BINDING_GROUP_TITLE = "Welcome"
    FORM = True
    AUTO_FOCUS = "#name"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start", tooltip="Keep these answers and open the dashboard.", id="first-run-start"),
    ]

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with VerticalScroll(id="welcome"):
            yield Static(
                "[b]Welcome to fieldkit.[/b] Two questions, asked only this once; "
                "you can sign every change with your name and see your municipalities first.",
                id="intro",
            )
            yield Label("Your name (signs every change you make)")
            yield FieldInput(id="name", placeholder="e.g. Thandi Mokoena", compact=True)
            yield Static("", id="name-problem", classes="problem")
            yield Label("Municipalities you cover: type a name or code, enter adds it (or takes it out)")
            yield MunicipalityPicker(multiple=True, compact=True, id="my-municipalities")
            yield Label(f"Practise first? A separate practice register: {practice.ISSUES} made-up issues in your municipalities, "
                        "never sent to the central server; P switches back, and it can be thrown away.")
            yield Checkbox("Practise first", value=False, id="practice")
            with Horizontal(id="buttons"):
                yield Button("Start (ctrl+s)", id="start", variant="primary")
            with Vertical(id="working"):
                yield LoadingIndicator()
                yield Static("Making the practice register…", id="working-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "Welcome"
        self.query_one("#working").display = False

    @on(Input.Submitted, "#name")
    def _next(self) -> None:
        self.query_one(MunicipalityPicker).focus()

    def action_start(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        problem = self.query_one("#name-problem", Static)
        if not name:
            problem.update("Your name is needed: it signs every change you make")
            problem.display = True
            self.query_one("#name", Input).focus()
            return
        problem.display = False
        picker = self.query_one(MunicipalityPicker)
        picker.commit()
        municipalities = list(picker.values)
        practise = self.query_one("#practice", Checkbox).value
        self.query_one("#working").display = practise
        self.query_one("#start", Button).disabled = True

        def done(_result: object) -> None:
            app = self.app
            self.dismiss()
            if practise:
                app.notify("Making the practice register…", timeout=4)
                app.open_practice(name, municipalities)

        self.app.write(lambda r: settle_in(r, name, municipalities), done, self._failed)

    def _failed(self, err: Exception) -> None:
        self.query_one("#working").display = False
        self.query_one("#start", Button).disabled = False
        self.app.show_problem(err)

    @on(Button.Pressed, "#start")
    def _pressed(self) -> None:
        self.action_start()
