"""Sync with the central server: address, sign-in token, a key to sync now, progress, a live log, the result.

The sync client (``fieldkit.sync``) blocks on the network, so it runs on a
thread with the register behind the app's lock one call at a time: the
facilitator can carry on capturing and searching while it works.

Without a network, bundles: written to a USB stick the screen finds (or a
folder chosen), taken in after showing what they hold. The screen lists the
bundles on the sticks plugged in and in the last folder used, looking again
every few seconds, so a receipt carried back shows as soon as the stick is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Header, Input, Label, OptionList, ProgressBar, RichLog, Static
from textual.widgets.option_list import Option

from fieldkit import bundle_sync, practice
from fieldkit.bundles import BundleError, read_bytes
from fieldkit.register import Register
from fieldkit.safe_text import safe_for_terminal
from fieldkit.screens.dashboard import sync_summary, when
from fieldkit.sync import REFUSED_ADVICE, refused_summary, remembered_token
from fieldkit.widgets.field_input import FieldInput
from fieldkit.widgets.key_footer import KeyFooter

#: Refused changes listed on the screen (the command line lists them all).
REFUSED_SHOWN = 200

NOT_AVAILABLE = "Sync is not available yet in this build of fieldkit (fieldkit.sync is missing)."

#: How often the screen looks for a stick plugged in, and for bundles on it (seconds).
LOOK_FOR_STICKS_S = 3.0

#: The choice that opens the folder picker, among the sticks found.
CHOOSE_FOLDER = "choose"


def sync_settings(register: Register) -> tuple[str, str]:
    """The server and token the sync client remembers from its last contact (the server also from settings)."""
    state = register.sync_state()
    return state.get("server") or register.settings().get("sync_server", ""), remembered_token(register, state) or ""


def looked_for_bundles(register: Register, known: dict) -> tuple[list[tuple[str, Path]], list[bundle_sync.Listed], str]:
    """The places, the bundles in them, or why bundles are not for this register (the practice one)."""
    if practice.is_practice(register):
        return [], [], practice.BUNDLES_REFUSED
    places = bundle_sync.places(register.settings())
    return places, bundle_sync.look_in(register, places, known), ""


def plain(text: str) -> Text:
    """Text from a bundle or a file name, shown as it is (never read as markup), made safe for the terminal."""
    return Text(safe_for_terminal(text, multiline=True))


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
        Binding("ctrl+b", "write_bundle", "Bundle out", id="sync-bundle-out",
                tooltip="Write this laptop's changes not yet acknowledged to a USB stick or a folder, to carry to the central store."),
        Binding("ctrl+o", "take_in_bundle", "Bundle in", id="sync-bundle-in",
                tooltip="Take in a receipt or another laptop's bundle from a USB stick or a folder, after seeing what it holds."),
        Binding("escape", "back", "Back", tooltip="Back to the dashboard (a sync carries on).", id="sync-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self.refused: list[Refused] = []
        self.places: list[tuple[str, Path]] = []
        self.bundles: list[bundle_sync.Listed] = []
        self.known_bundles: dict[tuple[str, int, int], str] = {}
        self.focus_bundles_next = False  # after a bundle was written or taken in: enter on the list takes in the next

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
        with Vertical(id="bundles-box"):
            yield Static("", id="bundles-where")
            yield OptionList(id="bundles", compact=True, markup=False)
            yield Static("", id="bundle-result")
        yield RichLog(id="sync-log", wrap=True, markup=False, max_lines=500)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "Sync"
        server, token = self.app.read(sync_settings)
        self.query_one("#server", Input).value = server
        self.query_one("#token", Input).value = token
        self.query_one("#sync-log").border_title = "Log"
        self.query_one("#bundles-box").border_title = "Bundles: sync by hand, on a USB stick"
        self.query_one("#progress", ProgressBar).update(total=100, progress=0)
        self.app.register_changed.subscribe(self, self._register_changed)
        self.set_interval(LOOK_FOR_STICKS_S, self._look_again)

    def on_screen_resume(self) -> None:
        self.refresh_bindings()
        self._show_state()
        self.look_for_bundles()

    def _register_changed(self, _unsynced: set[str]) -> None:
        """What the bundles would do here has changed (a receipt taken in): read them again."""
        self.known_bundles = {}
        if self.is_current:
            self.look_for_bundles()

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

    # -- bundles -------------------------------------------------------------------------------

    def _look_again(self) -> None:
        """Every few seconds while the screen shows: a stick plugged in, or a receipt copied onto it."""
        if self.is_current and not any(w.group == "bundle-list" and w.is_running for w in self.app.workers):
            self.look_for_bundles()

    def look_for_bundles(self) -> None:
        known = self.known_bundles
        self.app.in_background(lambda r: looked_for_bundles(r, known), self._show_bundles, group="bundle-list", exclusive=True)

    def _show_bundles(self, found: tuple[list[tuple[str, Path]], list[bundle_sync.Listed], str]) -> None:
        places, listed, refused = found
        self.places = places
        where = self.query_one("#bundles-where", Static)
        options = self.query_one("#bundles", OptionList)
        if refused:
            where.update(plain(f"Bundles are not for the practice register: {refused}."))
        elif not places:
            where.update("No USB stick found: plug one in, or choose a folder (ctrl+b writes a bundle, ctrl+o takes one in).")
        else:
            count = f"{len(listed)} bundle{'' if len(listed) == 1 else 's'}" if listed else "no bundles yet"
            where.update(plain(f"On {' and '.join(label for label, _ in places)}: {count}. "
                               "ctrl+b writes a bundle · ctrl+o takes one in · enter takes in the highlighted one"))
        if [(b.path, b.line) for b in listed] != [(b.path, b.line) for b in self.bundles]:
            self.bundles = listed
            options.display = bool(listed)
            highlighted = options.highlighted
            options.clear_options()
            options.add_options(Option(plain(f"{b.path.name} — {b.line}"), id=str(b.path)) for b in listed)
            if listed:
                options.highlighted = min(highlighted or 0, len(listed) - 1)
        if self.focus_bundles_next and listed:
            self.focus_bundles_next = False
            options.focus()

    @property
    def bundling(self) -> bool:
        """A bundle is being written or taken in."""
        return any(worker.group == "bundle-work" and worker.is_running for worker in self.app.workers)

    def _cannot_bundle_now(self) -> bool:
        if self.app.read(practice.is_practice):
            self._bundle_said(f"Not done: {practice.BUNDLES_REFUSED}.", problem=True)
            return True
        if self.bundling:
            self.notify("A bundle is being written or taken in: wait for it to finish.", timeout=3)
            return True
        return False

    def _start_folder(self) -> Path:
        """Where the pickers open: a stick plugged in, else the last folder used, else the home folder."""
        return next((path for _, path in self.places if path.is_dir()), Path.home())

    def action_write_bundle(self) -> None:
        if self._cannot_bundle_now():
            return
        self.app.in_background(lambda r: bundle_sync.places(r.settings()), self._offer_places, group="bundle-places")

    def _offer_places(self, places: list[tuple[str, Path]]) -> None:
        from fieldkit.screens.dialogs import ChoiceScreen

        choices = [(str(path), escape(safe_for_terminal(label))) for label, path in places]
        choices.append((CHOOSE_FOLDER, "A folder I choose…"))
        question = "Write a bundle of this laptop's changes to:" if places else "No USB stick found. Write the bundle to:"
        self.app.push_screen(ChoiceScreen(question, choices), self._place_chosen)

    def _place_chosen(self, answer: str | None) -> None:
        from fieldkit.screens.bundle_path import BundlePathScreen

        if answer == CHOOSE_FOLDER:
            self.app.push_screen(BundlePathScreen(self._start_folder(), choosing_folder=True),
                                 lambda folder: folder is not None and self.write_bundle(folder))
        elif answer is not None:
            self.write_bundle(Path(answer))

    def write_bundle(self, folder: Path) -> None:
        """Write the bundle in a worker; then say its file name and what it holds."""
        self._bundle_said(f"Writing a bundle in {folder}…")

        def write(register: Register) -> tuple[Path | None, bundle_sync.Contents | None, str]:
            try:
                path, made = bundle_sync.write_to(register, folder)
                register.save_settings(bundle_folder=str(path.parent))
                return path, bundle_sync.describe(register, made.data, path.name), ""
            except BundleError as err:
                return None, None, str(err)

        self.app.in_background(write, self._written, group="bundle-work")

    def _written(self, result: tuple[Path | None, bundle_sync.Contents | None, str]) -> None:
        path, contents, problem = result
        if path is None or contents is None:
            self._bundle_said(f"No bundle written: {problem}.", problem=True)
            return
        for line in [f"Wrote {path.name} in {path.parent}:", *contents.lines()]:
            self.log_line(line)
        what = contents.held() if contents.changes else "nothing was waiting (its receipt still brings what others changed)"
        self._bundle_said(f"Wrote {path.name} in {path.parent}: {what}, for {' and '.join(contents.made_for)}. "
                          "Carry it to the central store, then take in the receipt written beside it (ctrl+o).", log=False)
        self.notify(f"Wrote {path.name}: {contents.held()}.", title="Bundle written", timeout=6)
        self.focus_bundles_next = True
        self.look_for_bundles()

    def action_take_in_bundle(self) -> None:
        from fieldkit.screens.bundle_path import BundlePathScreen

        if self._cannot_bundle_now():
            return
        self.app.push_screen(BundlePathScreen(self._start_folder(), choosing_folder=False),
                             lambda path: path is not None and self.show_bundle(path))

    @on(OptionList.OptionSelected, "#bundles")
    def _bundle_selected(self, event: OptionList.OptionSelected) -> None:
        if not self._cannot_bundle_now() and event.option.id:
            self.show_bundle(Path(event.option.id))

    def show_bundle(self, path: Path) -> None:
        """What a bundle holds, before anything is applied; a bundle that cannot come in says why, in one line."""

        def read(register: Register) -> tuple[bundle_sync.Contents | None, str]:
            try:
                return bundle_sync.describe(register, read_bytes(path), path.name), ""
            except BundleError as err:
                return None, str(err)

        self.app.in_background(read, lambda result: self._offer_bundle(path, *result), group="bundle-work")

    def _offer_bundle(self, path: Path, contents: bundle_sync.Contents | None, problem: str) -> None:
        from fieldkit.screens.dialogs import ConfirmScreen

        if contents is None or contents.own or contents.problem or not contents.readable:
            if contents is not None and contents.own:
                problem = ("this bundle was made on this laptop: take it to the central store or to another laptop "
                           f"({contents.held()})")
            elif contents is not None:
                problem = contents.problem or "this bundle was sealed for others: this laptop cannot read it"
            self._bundle_said(f"Not taken in: {problem}.", problem=True)
            return
        question = "\n".join([f"Take in {path.name}?", *contents.lines()])

        def answered(yes: bool | None) -> None:
            if yes:
                self.take_in_bundle(path)

        self.app.push_screen(ConfirmScreen(escape(safe_for_terminal(question, multiline=True)), yes="Take it in", no="Not now"),
                             answered)

    def take_in_bundle(self, path: Path) -> None:
        """Apply it in a worker; the register list and the dashboard hear of the changes."""
        self._bundle_said(f"Taking in {path.name}…")

        def take(register: Register) -> tuple[list[str], str]:
            try:
                taken = bundle_sync.take_in(register, read_bytes(path), path.name)
            except BundleError as err:
                return [], str(err)
            register.save_settings(bundle_folder=str(path.parent))
            return bundle_sync.said(taken), ""

        self.app.in_background(take, self._taken_in, group="bundle-work", changes=True)

    def _taken_in(self, result: tuple[list[str], str]) -> None:
        lines, problem = result
        if problem:
            self._bundle_said(f"Not taken in: {problem}.", problem=True)
        else:
            self._bundle_said("\n".join(line[0].upper() + line[1:] for line in lines))
            self.notify(lines[0][0].upper() + lines[0][1:], title="Bundle taken in", timeout=6)
        self._show_state()
        self.focus_bundles_next = True
        self.look_for_bundles()

    def _bundle_said(self, text: str, problem: bool = False, log: bool = True) -> None:
        """The outcome under the list of bundles and in the log; a refusal also as a message."""
        result = self.query_one("#bundle-result", Static)
        result.update(plain(text))
        result.display = True
        result.set_class(problem, "-problem")
        if log:
            for line in text.splitlines():
                self.log_line(line)
        if problem:
            self.notify(text, title="Bundles", severity="error", timeout=10)

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
