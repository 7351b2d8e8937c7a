"""Sync with the central server: address, sign-in token, a key to sync now, progress, a live log, the result.

The sync client (``fieldkit.sync``) blocks on the network, so it runs on a
thread with the register behind the app's lock one call at a time: the
facilitator can carry on capturing and searching while it works.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, ProgressBar, RichLog, Static

from fieldkit.register import Register
from fieldkit.safe_text import safe_for_terminal
from fieldkit.screens.dashboard import sync_summary, when
from fieldkit.sync import remembered_token
from fieldkit.widgets.field_input import FieldInput

NOT_AVAILABLE = "Sync is not available yet in this build of fieldkit (fieldkit.sync is missing)."


def sync_settings(register: Register) -> tuple[str, str]:
    """The server and token the sync client remembers from its last contact (the server also from settings)."""
    state = register.sync_state()
    return state.get("server") or register.settings().get("sync_server", ""), remembered_token(register, state) or ""


class SyncScreen(Screen):
    CSS_PATH = "sync.tcss"
    BINDING_GROUP_TITLE = "Sync"
    BINDINGS = [
        Binding("ctrl+s", "sync_now", "Sync now", tooltip="Send this laptop's changes and receive everyone else's.", id="sync-now"),
        Binding("escape", "back", "Back", tooltip="Back to the dashboard (a sync carries on).", id="sync-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="sync-form"):
            with Horizontal(classes="field"):
                yield Label("Server", classes="field-label")
                yield FieldInput(id="server", placeholder="address of the central server, e.g. https://fieldkit.example.org", compact=True)
            with Horizontal(classes="field"):
                yield Label("Sign-in token", classes="field-label")
                yield FieldInput(id="token", password=True, placeholder="the token your coordinator gave you", compact=True)
            with Horizontal(id="sync-buttons"):
                yield Button("Sync now (y / ctrl+s)", id="sync-now", variant="primary")
                yield Static("", id="sync-state")
            yield ProgressBar(id="progress", show_eta=False)
            yield Static("", id="sync-result")
        yield RichLog(id="sync-log", wrap=True, markup=False, max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Sync"
        server, token = self.app.read(sync_settings)
        self.query_one("#server", Input).value = server
        self.query_one("#token", Input).value = token
        self.query_one("#sync-log").border_title = "Log"
        self.query_one("#progress", ProgressBar).update(total=100, progress=0)

    def on_screen_resume(self) -> None:
        self.refresh_bindings()
        self._show_state()

    def _show_state(self) -> None:
        self.app.in_background(sync_summary, self._state_shown, group="sync-state", exclusive=True)

    def _state_shown(self, summary: tuple[str, int]) -> None:
        last, waiting = summary
        self.query_one("#sync-state", Static).update(f"Last sync: {when(last)} · ↑ {waiting} waiting")

    def start_sync(self) -> None:
        """Sync now, unless a sync is already running or there is nowhere to sync to."""
        if self.running:
            self.notify("A sync is already running.", timeout=3)
            return
        server = self.query_one("#server", Input).value.strip()
        token = self.query_one("#token", Input).value.strip()
        if not server:
            self.query_one("#server", Input).focus()
            self.notify("Type the central server's address first (your coordinator has it).", severity="warning", timeout=5)
            return
        self.running = True
        self.query_one("#sync-now", Button).disabled = True
        self.query_one("#sync-result", Static).update("")
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.log_line(f"Syncing with {server}…")
        self.query_one(RichLog).focus()  # out of the boxes, so the app's keys work while it runs
        self.app.in_background(lambda r: r.save_settings(sync_server=server), group="settings")
        self._sync(server, token)

    def action_sync_now(self) -> None:
        self.start_sync()

    async def action_back(self) -> None:
        await self.app.switch_mode("dashboard")

    @on(Button.Pressed, "#sync-now")
    def _pressed(self) -> None:
        self.start_sync()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.start_sync()

    def log_line(self, text: str) -> None:
        self.query_one(RichLog).write(safe_for_terminal(text))

    @work(thread=True, exclusive=True, group="sync", exit_on_error=False)
    def _sync(self, server: str, token: str) -> None:
        app = self.app
        try:
            from fieldkit.sync import sync
        except ImportError:
            app._from_thread(self._finished, None, NOT_AVAILABLE)
            return
        try:
            result = sync(app.serialised_register(), server=server, token=token or None,
                          progress=lambda p: app._from_thread(self._progress, p))
        except Exception as err:  # noqa: BLE001 - a failed sync is reported on the screen, not raised
            app._from_thread(self._finished, None, f"{type(err).__name__}: {err}")
            return
        app._from_thread(self._finished, result, None)

    def _progress(self, progress: Any) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=progress.total, progress=progress.done)
        if progress.message:
            self.log_line(f"{progress.phase}: {progress.message}")

    def _finished(self, result: Any, failure: str | None) -> None:
        self.running = False
        self.query_one("#sync-now", Button).disabled = False
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=100, progress=100 if result is not None and result.finished else 0)
        outcome = self.query_one("#sync-result", Static)
        if result is None:
            outcome.update(f"[b]Not synced.[/b] {failure}")
            self.log_line(failure or "")
        else:
            lines = [f"[b]{'Synced' if result.finished and not result.error else 'Sync stopped'}[/b] with {result.server}: "
                     f"{result.sent} sent, {result.received} received, {len(result.rejected)} rejected, {len(result.conflicts)} conflicts."]
            if result.error:
                lines.append(f"Problem: {result.error} — what was sent is kept; sync again to carry on.")
            for what, reason in result.rejected:
                lines.append(f"Rejected: {what} — {reason}")
            for conflict in result.conflicts:
                lines.append(f"Conflict to settle (open the issue): {conflict}")
            for notice in getattr(result, "notices", []):
                lines.append(notice)
            outcome.update("\n".join(lines))
            for line in lines:
                self.log_line(line.replace("[b]", "").replace("[/b]", ""))
        self.app.in_background(lambda r: None, changes=True)
        self._show_state()
