"""The field app: the shell that wires screens, keys, themes and the register together.

Screens never touch the store: they ask the ``Register``. Everything that may
wait on the disk or the network runs in a thread worker holding
``register_lock`` (the store is not thread-safe), and comes back to the
interface with ``call_from_thread``. The sync client gets the register behind
the same lock, one call at a time, so saving and searching carry on while it
waits on the network.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal
from textual.theme import Theme
from textual.widget import AwaitMount
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from fieldkit.filters import IssueFilter
from fieldkit.model import ValidationError
from fieldkit.register import Ambiguous, NotFound, Register
from fieldkit.store import StoreError, default_home

log = logging.getLogger("fieldkit.app")

T = TypeVar("T")

#: Failures a person caused and can fix: shown as a message, never as a crash.
PERSON_ERRORS = (ValidationError, NotFound, Ambiguous, StoreError)

SUNLIGHT = Theme(
    name="fieldkit-sunlight",
    primary="#003f9e",
    secondary="#5a2d91",
    accent="#8a3b00",
    warning="#7a4d00",
    error="#b00020",
    success="#005c1f",
    foreground="#000000",
    background="#ffffff",
    surface="#f2f2f2",
    panel="#dcdcdc",
    dark=False,
    luminosity_spread=0.1,
    text_alpha=1.0,
)

#: The themes `ctrl+t` steps through: everyday dark, light, and high contrast for bright sunlight.
THEMES = ("textual-dark", "textual-light", "fieldkit-sunlight")

#: How often a running app looks for what another fieldkit process saved (``fieldkit add`` in a terminal).
LOOK_FOR_SAVES_S = 1.0

#: Screens other areas of fieldkit provide; their keys appear only when the module is there.
OPTIONAL_SCREENS = {
    "reports": ("fieldkit.screens.reports", "ReportsScreen"),
    "lessons": ("fieldkit.screens.lessons", "LessonsScreen"),
    "imports": ("fieldkit.screens.imports", "ImportScreen"),
}

#: App-wide single-letter keys. They are priority keys, so the app acts on them in turn with the
#: keys typed after them ("/" then "sewage" searches for sewage, even on a busy laptop); and they
#: are off while a form, a dialog or a text box has the keyboard, so typing never triggers them.
LETTER_ACTIONS = frozenset({"new_issue", "search", "dashboard", "register", "sync", "reports", "lessons", "help", "leave", "practice", "imports"})

PRACTICE_TITLE = "fieldkit · PRACTICE: made-up, never sent"


def _dashboard() -> Screen:
    from fieldkit.screens.dashboard import DashboardScreen

    return DashboardScreen()


def _register() -> Screen:
    from fieldkit.screens.register import RegisterScreen

    return RegisterScreen()


def _sync() -> Screen:
    from fieldkit.screens.sync import SyncScreen

    return SyncScreen()


def optional_screen(name: str) -> type[Screen] | None:
    module_name, class_name = OPTIONAL_SCREENS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            return None
        raise
    return getattr(module, class_name, None)


class Serialised:
    """The register seen from another thread: each call (also on its store) holds the app's register lock."""

    def __init__(self, target: Any, lock: threading.RLock):
        self._target = target
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name == "store":
            return Serialised(value, self._lock)
        if not callable(value):
            return value

        @functools.wraps(value)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return locked


class FieldkitApp(App[int]):
    """Capture, follow-up and quick lookups, all from the keyboard."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses (the benchmark's) live elsewhere
    TITLE = "fieldkit"
    DEFAULT_MODE = "dashboard"
    MODES = {"dashboard": _dashboard, "register": _register, "sync": _sync}

    BINDINGS = [
        Binding("n", "new_issue", "New", tooltip="Capture a new issue.", priority=True, id="new-issue"),
        Binding("slash", "search", "Search", tooltip="Find issues by words, reference, ward or municipality.", priority=True, id="search"),
        Binding("d", "dashboard", "Dashboard", tooltip="My municipalities at a glance.", priority=True, id="dashboard"),
        Binding("r", "register", "Register", tooltip="Every issue in the register.", priority=True, id="register"),
        Binding("y", "sync", "Sync", tooltip="Send and receive changes with the central server.", priority=True, id="sync"),
        Binding("R", "reports", "Reports", tooltip="Status reports per municipality.", priority=True, id="reports"),
        Binding("L", "lessons", "Lessons", tooltip="Lessons learned, captured and shared.", priority=True, id="lessons"),
        Binding("I", "imports", "Import", show=False, tooltip="Import a register kept in a spreadsheet, previewed first.",
                priority=True, id="imports"),
        Binding("P", "practice", "Practice", show=False, priority=True, id="practice",
                tooltip="Switch between your register and the practice register (made-up issues, never sent)."),
        Binding("question_mark", "help", "Help", tooltip="Every key, on this screen and everywhere.", priority=True, id="help"),
        Binding("f1", "help('always')", "Help", tooltip="Every key, even while typing in a form.", id="help-f1"),
        Binding("ctrl+t", "next_theme", "Next theme", show=False, tooltip="Dark, light, or high contrast for bright sunlight.", id="next-theme"),
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True,
                tooltip="Move to the next field (handled in turn with fast typing).", id="next-field"),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True,
                tooltip="Move to the previous field.", id="previous-field"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit-anywhere",
                tooltip="Leave fieldkit from anywhere, even a form (the form is kept as a draft)."),
        Binding("q", "leave", "Quit", tooltip="Leave fieldkit; an unsaved form is kept as a draft (ctrl+q works even in a form).", priority=True, id="quit"),
    ]

    def __init__(self, register: Register | None = None, home: str | os.PathLike | None = None,
                 today: date | None = None) -> None:
        super().__init__()
        self.register = register if register is not None else Register.open(home)
        self.real_register = self.register
        self.practice_register: Register | None = None
        self.home = Path(home) if home is not None else Path(getattr(self.register.store, "home", None) or default_home())
        self.register_lock = threading.RLock()
        self.register_changed: Signal[set[str]] = Signal(self, "register-changed")
        self._today = today
        self._started = time.perf_counter()
        self.started_in_ms: float | None = None
        self.unsynced: set[str] = set()
        self.optional = {name: optional_screen(name) for name in OPTIONAL_SCREENS}
        self.register_theme(SUNLIGHT)
        settings = self.register.settings()
        if settings.get("theme") in self.available_themes:
            self.theme = settings["theme"]
        if isinstance(settings.get("keymap"), dict):
            self.set_keymap(settings["keymap"])

    def today(self) -> date:
        """Today, or the day tests and snapshots fix."""
        return self._today or date.today()

    @property
    def settings(self) -> dict[str, Any]:
        return self.register.settings()

    @property
    def my_municipalities(self) -> list[str]:
        return list(self.register.settings().get("municipalities") or [])

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._remember_theme)
        self.set_interval(LOOK_FOR_SAVES_S, self.look_for_other_saves)
        self.in_background(lambda r: r.unsynced_record_ids(), self._unsynced_loaded, group="unsynced")
        if not self.settings.get("first_run_done"):
            from fieldkit.screens.first_run import FirstRunScreen

            self.push_screen(FirstRunScreen(), self._first_run_finished)
        else:
            self.call_after_refresh(self.offer_draft)

    def _unsynced_loaded(self, unsynced: set[str]) -> None:
        """What is on its way to the central server (the issue screen marks it), read once at start."""
        self.unsynced = unsynced

    def _first_run_finished(self, _result: object = None) -> None:
        self.register_changed.publish(set())

    def offer_draft(self) -> None:
        """A form that was never saved (the laptop died, the app was killed) is offered back."""
        draft = self.read(lambda r: r.draft())
        if not draft or not isinstance(draft.get("values"), dict):
            return
        from fieldkit.screens.dialogs import ConfirmScreen

        when = str(draft.get("saved_at", ""))[:16].replace("T", " ")
        what = draft.get("values", {}).get("title") or "an issue without a title yet"
        question = f"A capture from {when} was not saved: “{what}”. Carry on with it?"

        def answer(carry_on: bool | None) -> None:
            if carry_on:
                self.open_capture(draft=draft)
            elif carry_on is False:
                self.write(lambda r: r.clear_draft())
            # escape: neither; the draft is offered again next time

        self.push_screen(ConfirmScreen(question, yes="Carry on", no="Throw it away", danger_no=True), answer)

    # -- the practice register ------------------------------------------------------------

    @property
    def in_practice(self) -> bool:
        return self.register is not self.real_register

    async def use_register(self, register: Register) -> None:
        """Work in another register (the practice one, or back to the real one): every view starts afresh."""
        for mode in ("register", "sync", "dashboard"):  # nothing opened from the other register stays open
            await self.show_view(mode)
        with self.register_lock:
            self.register = register
            self.unsynced = register.unsynced_record_ids()
        self.title = PRACTICE_TITLE if self.in_practice else self.TITLE
        self.set_class(self.in_practice, "-practice")
        self.register_changed.publish(self.unsynced)

    def open_practice(self, name: str, municipalities: list[str], done: Callable[[], Any] | None = None) -> None:
        """Make (the first time) and open the practice register, away from the interface thread."""
        from fieldkit import practice

        async def ready(register: Register) -> None:
            self.practice_register = register
            if self.busy_elsewhere():
                self.notify("The practice register is ready: P switches to it when this is done.", title="Practice", timeout=8)
                return
            await self.use_register(register)
            self.notify("This is the practice register: made-up issues, never sent to the central server. "
                        "P goes back to your own register.", title="Practice", timeout=8)
            if done is not None:
                done()

        self.in_background(lambda _r: practice.open_practice(self.home, name, municipalities), ready, group="practice")

    def busy_elsewhere(self) -> bool:
        """A form or a question is open somewhere: switching registers now would throw it away."""
        return any(getattr(screen, "FORM", False) or screen.is_modal
                   for stack in self._screen_stacks.values() for screen in stack)

    async def action_practice(self) -> None:
        """To the practice register; from it, back to your own (keeping it, or throwing it away)."""
        from fieldkit import practice

        if not self.in_practice:
            if self.practice_register is not None:
                await self.use_register(self.practice_register)
                return
            settings = self.real_register.settings()
            self.notify("Making the practice register…", timeout=4)
            self.open_practice(settings.get("name") or "", list(settings.get("municipalities") or []))
            return
        from fieldkit.screens.dialogs import ConfirmScreen

        async def answer(keep: bool | None) -> None:
            if keep is None:
                return
            await self.use_register(self.real_register)
            if not keep and self.practice_register is not None:
                with self.register_lock:
                    self.practice_register.close()
                    self.practice_register = None
                    practice.throw_away(self.home)
                self.notify("The practice register is thrown away.", timeout=4)

        self.push_screen(ConfirmScreen("Back to your own register. Keep the practice register for another time?",
                                       yes="Keep it", no="Throw it away", danger_no=True), answer)

    # -- talking to the register ----------------------------------------------------------

    def read(self, question: Callable[[Register], T]) -> T:
        """A quick in-memory read on the interface thread (never a first load of a big table)."""
        with self.register_lock:
            return question(self.register)

    def in_background(self, work: Callable[[Register], T], done: Callable[[T], Any] | None = None,
                      failed: Callable[[Exception], Any] | None = None, group: str = "register",
                      exclusive: bool = False, changes: bool = False) -> Worker:
        """Run ``work`` on a thread with the register locked; hand its result to ``done`` on the interface.

        ``changes`` says the work writes: screens hear of it through ``register_changed``.
        """

        def job() -> None:
            worker = get_current_worker()
            try:
                with self.register_lock:
                    result = work(self.register)
                    changed = self.register.unsynced_record_ids() if changes else None
            except PERSON_ERRORS as err:
                self._from_thread(failed or self.show_problem, err)
                return
            if changed is not None:
                self._from_thread(self._changed, changed)
            if done is not None and not worker.is_cancelled:  # a newer question replaced this one
                self._from_thread(done, result)

        return self.run_worker(job, thread=True, group=group, exclusive=exclusive, exit_on_error=False)

    def write(self, change: Callable[[Register], T], done: Callable[[T], Any] | None = None,
              failed: Callable[[Exception], Any] | None = None) -> Worker:
        return self.in_background(change, done, failed, group="saving", changes=True)

    def _from_thread(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            self.call_from_thread(callback, *args)
        except RuntimeError:
            pass  # the app closed while the worker ran; nothing left to update

    def _changed(self, unsynced: set[str]) -> None:
        self.unsynced = unsynced
        self.register_changed.publish(unsynced)

    def look_for_other_saves(self) -> None:
        """Take in what another process saved (the command line, a second window) and show it, without a key press.

        ``Register.refresh()`` answers True when another process saved since it last looked; then
        every screen that listens to ``register_changed`` reads what it shows again.
        """
        if any(worker.group == "look-for-saves" and worker.is_running for worker in self.workers):
            return  # the last look has not come back yet (a big catch-up): one at a time

        def look(register: Register) -> set[str] | None:
            return register.unsynced_record_ids() if register.refresh() is True else None

        def looked(unsynced: set[str] | None) -> None:
            if unsynced is not None:
                self._changed(unsynced)

        self.in_background(look, looked, group="look-for-saves")

    def show_problem(self, err: Exception) -> None:
        self.notify(str(err), title="Not saved", severity="error", timeout=8)

    def serialised_register(self) -> Serialised:
        return Serialised(self.register, self.register_lock)

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """One place where an unexpected failure in the background becomes a message, not a crash."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            log.exception("background work failed", exc_info=err)
            self.notify(f"{type(err).__name__}: {err}", title="Something went wrong", severity="error", timeout=10)

    def on_dashboard_screen_ready(self) -> None:
        """The dashboard is up: note the start-up time, then get the whole register list ready meanwhile."""
        if self.started_in_ms is None:
            self.started_in_ms = (time.perf_counter() - self._started) * 1000
            log.info("started in %.0f ms", self.started_in_ms)
            self.in_background(lambda r: r.find(IssueFilter(limit=1)), group="warm-up")
            self.run_worker(self._daily_backup, thread=True, group="backup", exit_on_error=False)

    def _daily_backup(self) -> None:
        """A checked backup once a day, made in a process of its own beside the app's work (see ``Backups.make_elsewhere``)."""
        if self.register.backup_if_due(elsewhere=True):
            log.info("backed up the register to %s", self.register.store.backups.newest())

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if not self.screen_stack:
            return True
        screen = self.screen
        typing = screen.is_modal or isinstance(screen.focused, (Input, TextArea))
        return self._allowed(action, parameters, screen) and not (action in LETTER_ACTIONS and not parameters and typing)

    def _allowed(self, action: str, parameters: tuple[object, ...], screen: Screen) -> bool:
        """Whether an app action makes sense over this screen (a form has the letter keys to itself)."""
        if action in LETTER_ACTIONS and not parameters and getattr(screen, "FORM", False):
            return False
        if action in LETTER_ACTIONS and not parameters and callable(getattr(screen, f"action_{action}", None)):
            return False  # the screen has its own meaning for the key (the lessons search box)
        return not (action in OPTIONAL_SCREENS and self.optional.get(action) is None)

    def open_capture(self, issue_id: str | None = None, draft: dict[str, Any] | None = None) -> AwaitMount:
        from fieldkit.screens.capture import CaptureScreen

        return self.push_screen(CaptureScreen(issue_id=issue_id, draft=draft))

    def open_issue(self, issue_id: str) -> None:
        from fieldkit.screens.issue import IssueScreen

        self.push_screen(IssueScreen(issue_id))

    async def action_new_issue(self) -> None:
        await self.open_capture()
        self.screen.take_the_keyboard()

    async def show_view(self, mode: str) -> Screen:
        """Go to a view's own screen, as lazygit and k9s do: ``d`` is the dashboard from anywhere.

        What was opened over the view (an issue, the lessons) is closed, so the view shows itself
        and not the last thing opened there.
        """
        await self.switch_mode(mode)
        while len(self.screen_stack) > 1:
            await self.pop_screen()
        return self.screen

    async def action_search(self) -> None:
        screen = await self.show_view("register")
        screen.focus_search()

    async def action_dashboard(self) -> None:
        await self.show_view("dashboard")

    async def action_register(self) -> None:
        await self.show_view("register")

    async def action_sync(self) -> None:
        screen = await self.show_view("sync")
        screen.start_sync()

    def action_reports(self) -> None:
        screen = self.optional.get("reports")
        if screen is not None:
            self.push_screen(screen())

    def action_lessons(self) -> None:
        screen = self.optional.get("lessons")
        if screen is not None:
            self.push_screen(screen())

    def action_imports(self) -> None:
        screen = self.optional.get("imports")
        if screen is not None:
            self.push_screen(screen())

    def action_help(self, _via: str = "") -> None:
        from fieldkit.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_next_theme(self) -> None:
        position = THEMES.index(self.theme) if self.theme in THEMES else -1
        self.theme = THEMES[(position + 1) % len(THEMES)]
        self.notify(f"Theme: {self.theme}", timeout=2)

    def _remember_theme(self, theme: Theme) -> None:
        if theme.name != self.settings.get("theme"):
            self.in_background(lambda r: r.save_settings(theme=theme.name), group="settings")

    async def action_leave(self) -> None:
        await self.action_quit()

    async def action_quit(self) -> None:
        """Leave, keeping any form being filled in as a draft for next time."""
        from fieldkit.screens.capture import CaptureScreen

        for screen in self.screen_stack:
            if isinstance(screen, CaptureScreen) and screen.dirty:
                with self.register_lock:
                    screen.keep_draft_now()
        self.exit(0)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette reaches every action with a key, generated from the bindings.

        The palette is a screen of its own, so the app's keys are judged by the screen beneath it.
        """
        seen: set[str] = set()
        for command in super().get_system_commands(screen):
            seen.add(command.title)  # Textual's own Quit and Theme: each command is listed once
            yield command
        for binding, node in self.keys_for(screen):
            if not binding.tooltip or binding.description in seen:
                continue
            seen.add(binding.description)
            yield SystemCommand(binding.description, f"{binding.tooltip} ({self.get_key_display(binding)})",
                                functools.partial(self._run_from_palette, binding.action, node))

    def keys_for(self, screen: Screen) -> list[tuple[Binding, Any]]:
        """The keys in force on a screen, with where each is defined: the screen's, the app's, the widgets'.

        Asked while a dialog (help, the command palette) is over the screen, so the app's
        keys are judged by the screen beneath it, not by the dialog.
        """
        others = [(a.binding, a.node) for a in screen.active_bindings.values() if a.enabled and a.node is not self]
        own = [(binding, node) for binding, node in others if node is screen]
        app = [(binding, self) for binding in self.BINDINGS if self._allowed(binding.action, (), screen)]
        return own + app + [(binding, node) for binding, node in others if node is not screen]

    async def _run_from_palette(self, action: str, node: Any) -> None:
        await self.run_action(action, node)


def run_app() -> int:
    """Open the register on this laptop (asking its passphrase when it is encrypted) and run the app until the facilitator quits."""
    from fieldkit import encryption
    from fieldkit.store import default_home

    home = default_home()
    codec = None
    if encryption.is_sealed(home):
        try:
            codec = encryption.codec_for(home, ask=None)
        except encryption.Locked:
            from fieldkit.screens.unlock import UnlockApp

            codec = UnlockApp(home).run()
            if codec is None:
                return 0
    register = Register.open(home, codec=codec)
    app: FieldkitApp | None = None
    try:
        app = FieldkitApp(register)
        result = app.run()
    finally:
        if app is not None and app.practice_register is not None:
            app.practice_register.close()
        register.close()
    return result if isinstance(result, int) else 0

