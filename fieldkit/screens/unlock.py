"""Encryption in the app: unlocking the register at start, and the recovery key shown once.

Unlocking is a small app of its own, run before the main one: the register
cannot be opened (and the main app not built) until its key is unlocked.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from fieldkit import session
from fieldkit.encryption import SealedCodec, StoreError, start_session, unlock
from fieldkit.screens.dialogs import Dialog


class UnlockScreen(Screen):
    CSS_PATH = "unlock.tcss"
    AUTO_FOCUS = "#passphrase"
    BINDINGS = [
        Binding("escape", "app.quit", "Quit", tooltip="Leave fieldkit without opening the register.", id="unlock-quit"),
    ]

    def __init__(self, home: Path) -> None:
        super().__init__()
        self.home = home

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="unlock"):
            yield Static("[b]This laptop's register is encrypted.[/b] Type its passphrase to open it.", id="intro")
            yield Label("Passphrase")
            yield Input(id="passphrase", password=True, placeholder="the passphrase set with `fieldkit encrypt`")
            yield Static("", id="problem", classes="problem")
            kept = ("It stays unlocked for this login for 8 hours, for the app and the `fieldkit` commands; "
                    "`fieldkit lock` locks it sooner. " if session.available() else "")
            yield Static(f"{kept}Forgotten it? In a terminal, `fieldkit unlock --recovery-key` sets a new one with "
                         "the recovery key printed when encryption was turned on.", id="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Unlock"
        self.query_one("#problem").display = False

    @on(Input.Submitted, "#passphrase")
    def _submitted(self, event: Input.Submitted) -> None:
        if event.value:
            event.input.disabled = True
            self._try(event.value)

    @work(thread=True, exclusive=True)
    def _try(self, passphrase: str) -> None:
        try:
            codec = unlock(self.home, passphrase)
        except StoreError as err:
            self.app.call_from_thread(self._refused, str(err))
            return
        start_session(self.home, codec)  # as a passphrase typed at a command's prompt does
        self.app.call_from_thread(self.app.exit, codec)

    def _refused(self, message: str) -> None:
        problem = self.query_one("#problem", Static)
        problem.update(message)
        problem.display = True
        field = self.query_one("#passphrase", Input)
        field.disabled = False
        field.value = ""
        field.focus()


class UnlockApp(App[SealedCodec]):
    """Asks for the passphrase; returns the unlocked key, or None when the person quits."""

    TITLE = "fieldkit"

    def __init__(self, home: Path) -> None:
        super().__init__()
        self.home = home

    def on_mount(self) -> None:
        self.push_screen(UnlockScreen(self.home))


class RecoveryKeyScreen(Dialog):
    """The recovery key, shown this once after the register was encrypted."""

    BINDINGS = [
        Binding("enter", "written", "Written down", tooltip="Close: the key is not shown again.", id="recovery-written"),
    ]

    def __init__(self, recovery_key: str) -> None:
        super().__init__()
        self.recovery_key = recovery_key

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("[b]The register on this laptop is now encrypted.[/b]")
            yield Static("Your recovery key, shown only this once. Write it down and keep it away from the laptop; "
                         "with it `fieldkit unlock --recovery-key` sets a new passphrase if this one is forgotten.")
            yield Static(self.recovery_key, id="recovery-key")
            yield Button("I have written it down (enter)", id="written", variant="primary")

    def action_written(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#written")
    def _pressed(self) -> None:
        self.dismiss(None)
