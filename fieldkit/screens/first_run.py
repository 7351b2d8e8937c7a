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

def settle_in(register: Register, name: str, municipalities: list[str], passphrase: str = "") -> str | None:
    """Keep the answers in the real register (made-up issues never go into it: they have a register of their
    own), and encrypt it if asked; returns the recovery key to show once when it was encrypted."""
    register.save_settings(name=name, municipalities=municipalities, first_run_done=True)
    if passphrase:
        from fieldkit.encryption import encrypt

        return encrypt(register.store, passphrase)
    return None


def passphrase_problem(passphrase: str, again: str) -> str | None:
    """What is wrong with the optional passphrase typed at first start, or None."""
    from fieldkit.encryption import MIN_LENGTH

    if not passphrase and not again:
        return None
    if len(passphrase) < MIN_LENGTH:
        return f"A passphrase needs at least {MIN_LENGTH} characters (a few words are easiest to remember); or leave both empty"
    if passphrase != again:
        return "The two passphrases differ; type the same one twice"
    return None


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
            yield Label("Encrypt this laptop's register (optional): a passphrase, twice; leave empty to keep it unencrypted")
            yield FieldInput(id="passphrase", password=True, placeholder="at least 8 characters; asked each time fieldkit starts",
                             compact=True)
            yield FieldInput(id="passphrase-again", password=True, placeholder="the same passphrase again", compact=True)
            yield Static("", id="passphrase-problem", classes="problem")
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
        passphrase = self.query_one("#passphrase", Input).value
        wrong = passphrase_problem(passphrase, self.query_one("#passphrase-again", Input).value)
        shown = self.query_one("#passphrase-problem", Static)
        shown.display = bool(wrong)
        if wrong:
            shown.update(wrong)
            self.query_one("#passphrase", Input).focus()
            return
        practise = self.query_one("#practice", Checkbox).value
        self.query_one("#working").display = practise
        self.query_one("#start", Button).disabled = True

        def settled() -> None:
            app = self.app
            self.dismiss()
            if practise:
                app.notify("Making the practice register…", timeout=4)
                app.open_practice(name, municipalities)

        def done(recovery_key: str | None) -> None:
            if recovery_key:  # shown once: the only way back in if the passphrase is forgotten
                from fieldkit.screens.unlock import RecoveryKeyScreen

                self.app.push_screen(RecoveryKeyScreen(recovery_key), lambda _: settled())
                return
            settled()

        self.app.write(lambda r: settle_in(r, name, municipalities, passphrase), done, self._failed)

    def _failed(self, err: Exception) -> None:
        self.query_one("#working").display = False
        self.query_one("#start", Button).disabled = False
        self.app.show_problem(err)

    @on(Button.Pressed, "#start")
    def _pressed(self) -> None:
        self.action_start()
