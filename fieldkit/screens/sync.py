"""Sync with the central server: address, sign-in token, a key to sync now, progress, a live log, the result.

The sync client (``fieldkit.sync``) blocks on the network, so it runs on a
thread with the register behind the app's lock one call at a time: the
facilitator can carry on capturing and searching while it works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, OptionList, ProgressBar, RichLog, Static
from textual.widgets.option_list import Option

from fieldkit.register import Register
from fieldkit.safe_text import safe_for_terminal
from fieldkit.screens.dashboard import sync_summary, when
from fieldkit.sync import REFUSED_ADVICE, refused_summary, remembered_token
from fieldkit.widgets.field_input import FieldInput
from fieldkit.widgets.key_footer import KeyFooter

#: Refused changes listed on the screen (the command line lists them all).
REFUSED_SHOWN = 200

NOT_AVAILABLE = "Sync is not available yet in this build of fieldkit (fieldkit.sync is missing)."


def sync_settings(register: Register) -> tuple[str, str]:
    """The server and token the sync client remembers from its last contact (the server also from settings)."""
    state = register.sync_state()
    return state.get("server") or register.settings().get("sync_server", ""), remembered_token(register, state) or ""


@dataclass(frozen=True)
class Refused:
    """One change the central store refused, as the sync screen lists it."""

    op_id: str
    issue_id: str
    what: str
    reason: str


def refused_changes(register: Register) -> list[Refused]:
    """The refused changes, described the way the command line describes them (no personal values)."""
    from fieldkit.sync import describe_op

    found = []
    for entry in register.rejected_ops():
        op = entry["op"]
        issue_id = op["id"] if op["type"] == "issue" else str(op["fields"].get("issue_id") or "")
        found.append(Refused(op["op_id"], issue_id, describe_op(register, op), entry.get("reason", "")))
    return found


class SyncScreen(Screen):
    CSS_PATH = "sync.tcss"
    BINDING_GROUP_TITLE = "Sync"
    BINDINGS = [
        Binding("ctrl+s", "sync_now", "Sync now", tooltip="Send this laptop's changes and receive everyone else's.", id="sync-now"),
        Binding("ctrl+r", "retry_refused", "Send refused again", tooltip="Queue every refused change again (once your scope or the municipality is fixed), then sync.", id="sync-retry-refused"),
        Binding("ctrl+d", "stop_sending", "Stop sending", show=False, tooltip="Stop sending the highlighted refused change: it stays on this laptop only.", id="sync-stop-sending"),
        Binding("escape", "back", "Back", tooltip="Back to the dashboard (a sync carries on).", id="sync-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self.refused: list[Refused] = []

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
        with Vertical(id="refused-box"):
            yield Label("", id="refused-title")
            yield OptionList(id="refused")
        yield RichLog(id="sync-log", wrap=True, markup=False, max_lines=500)
        yield KeyFooter()

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

    def _state_shown(self, summary: tuple[str, int, int]) -> None:
        last, waiting, refused = summary
        self.query_one("#sync-state", Static).update(
            f"Last sync: {when(last)} · ↑ {waiting} waiting" + (f" · ✗ {refused} refused" if refused else ""))
        self.app.in_background(refused_changes, self._show_refused, group="sync-refused", exclusive=True)

    def _show_refused(self, refused: list[Refused]) -> None:
        """Refused changes, each with the reason; enter opens the issue, ctrl+d stops sending one."""
        self.refused = refused
        self.refresh_bindings()
        box = self.query_one("#refused-box")
        box.display = bool(refused)
        if not refused:
            return
        self.query_one("#refused-title", Label).update(
            f"✗ {len(refused)} change{'s' if len(refused) != 1 else ''} refused by the central server — {REFUSED_ADVICE}. "
            "Enter opens the issue · ctrl+r sends them again · ctrl+d stops sending the highlighted one")
        options = self.query_one("#refused", OptionList)
        options.clear_options()
        options.add_options(Option(f"✗ {r.what} — {r.reason}", id=r.op_id) for r in refused[:REFUSED_SHOWN])
        options.highlighted = 0

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The refused-change keys are offered only while there are refused changes."""
        return bool(self.refused) if action in ("retry_refused", "stop_sending") else True

    def _highlighted_refused(self) -> Refused | None:
        options = self.query_one("#refused", OptionList)
        if not self.refused or options.highlighted is None:
            return None
        op_id = options.get_option_at_index(options.highlighted).id
        return next((r for r in self.refused if r.op_id == op_id), None)

    @on(OptionList.OptionSelected, "#refused")
    def _open_refused(self) -> None:
        chosen = self._highlighted_refused()
        if chosen is not None and chosen.issue_id:
            self.app.open_issue(chosen.issue_id)

    def action_retry_refused(self) -> None:
        if not self.refused:
            self.notify("The central server has refused none of this laptop's changes.", timeout=3)
            return

        def queued(count: int) -> None:
            self.notify(f"{count} refused change{'s' if count != 1 else ''} queued again.", timeout=3)
            self.start_sync()

        self.app.write(lambda r: r.retry_rejected(), queued)

    def action_stop_sending(self) -> None:
        chosen = self._highlighted_refused()
        if chosen is None:
            self.notify("No refused change is highlighted: tab to the list first.", severity="warning")
            return
        self.app.write(lambda r: r.acknowledge([chosen.op_id]),
                       lambda _v: (self.notify(f"{chosen.what} stays on this laptop only.", timeout=4), self._show_state()))

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
        await self.app.show_view("dashboard")

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
            lines += refused_summary(result.rejected)
            for conflict in result.conflicts:
                lines.append(f"Conflict to settle (open the issue): {conflict}")
            for notice in getattr(result, "notices", []):
                lines.append(notice)
            outcome.update("\n".join(lines))
            for line in lines:
                self.log_line(line.replace("[b]", "").replace("[/b]", ""))
        self.app.in_background(lambda r: None, changes=True)
        self._show_state()
