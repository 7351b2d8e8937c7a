"""One issue: every field, its timeline, its follow-up actions, and any disagreement sync found.

From here the facilitator changes the status (with a note when escalating or
closing), adds notes and actions, ticks actions off, attaches photos and
documents (shows a photo in the terminal, opens or removes them), and settles
conflicts by choosing which value stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.css.query import NoMatches
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from fieldkit import model, refdata
from fieldkit.register import Register, TimelineEntry
from fieldkit.safe_text import safe_for_terminal
from fieldkit.screens.dialogs import ActionScreen, ChoiceScreen, NoteScreen, StatusScreen
from fieldkit.sync import REFUSED_ADVICE
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.register_list import SEVERITY_LABELS, UNSYNCED_MARK
from fieldkit.widgets.app_header import AppHeader

TIMELINE_LABELS = {
    "created": "captured",
    "status": "status",
    "note": "note",
    "action": "action",
    "action_done": "done",
    "attached": "attached",
    "detached": "removed",
    "action_reopened": "reopened",
    "edit": "edited",
}


def local_time(stamp: str) -> str:
    """A stored UTC time as the laptop's local time, to the minute."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M")


def ask_status(app: App, issue_id: str) -> AwaitMount:
    """Ask where the issue goes next and why, then save it (used by the register list too)."""
    values = app.read(lambda r: r.issue_values(issue_id))
    ref = values.get("ref", "")

    def chosen(answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        status, note = answer
        app.write(lambda r: r.change_status(issue_id, status, note or None),
                  lambda _v: app.notify(f"{ref} is now {model.STATUSES[status].lower()}.", timeout=3))

    return app.push_screen(StatusScreen(values.get("status", "new"), ref), chosen)


def ask_action(app: App, issue_id: str) -> AwaitMount:
    """Ask what must happen, who and by when, then save the follow-up action."""
    ref = app.read(lambda r: r.issue_values(issue_id)).get("ref", "")

    def chosen(answer: dict[str, Any] | None) -> None:
        if answer is None:
            return
        app.write(lambda r: r.add_action(issue_id, answer["text"], answer["owner"], answer["due"]),
                  lambda _v: app.notify(f"Follow-up action added to {ref}.", timeout=3))

    return app.push_screen(ActionScreen(app.today()), chosen)


@dataclass(frozen=True)
class SyncState:
    """This issue's changes on their way: not yet sent, and refused by the central server (with why)."""

    waiting: bool = False
    refused: tuple[str, ...] = ()


def sync_state_of(register: Register, issue_id: str, unsynced: set[str]) -> SyncState:
    """Whether the issue or any of its notes, actions and status changes waits, or was refused.

    ``unsynced``: the records with anything in the outbox (the app keeps it), so an issue with
    nothing on its way costs no look at the outbox.
    """
    ids = {issue_id, *(c["id"] for c in register.notes(issue_id)), *(c["id"] for c in register.actions(issue_id)),
           *(c["id"] for c in register.status_changes(issue_id))}
    on_the_way = ids & unsynced
    if not on_the_way:
        return SyncState()
    rejected = [e for e in register.rejected_ops() if e["op"]["id"] in on_the_way]
    refused = tuple(dict.fromkeys(e["reason"] for e in rejected))
    waiting = bool(on_the_way - {e["op"]["id"] for e in rejected}) or any(op["id"] in on_the_way for op in register.pending_ops())
    return SyncState(waiting, refused)


def attachment_line(record: dict[str, Any], here: bool) -> Text:
    """An attachment as a line: name, kind and size, caption, who and when; whether its file is here yet."""
    from fieldkit.attachments import size_text

    line = Text()
    kind = model.ATTACHMENT_TYPES.get(record.get("media_type", ""), "file")
    line.append(safe_for_terminal(record.get("name", "")), style="bold")
    line.append(f"  {kind}, {size_text(record.get('size', 0))}")
    if record.get("caption"):
        line.append(safe_for_terminal(f" — {record['caption']}"), style="italic")
    line.append(safe_for_terminal(f"  ({record.get('author', '')} {local_time(record.get('at', ''))[:10]})"), style="dim")
    if not here:
        line.append("  not on this laptop yet (sync brings it)", style="bold")
    return line


def ask_attachment(app: App, issue_id: str):
    """Choose a file and a caption, attach it, and offer a photo's position when the issue has none."""
    from fieldkit.attachments import attach, describe, position_offer, start_folder
    from fieldkit.screens.attach import AttachScreen
    from fieldkit.screens.dialogs import ConfirmScreen

    ref, folder = app.read(lambda r: (r.issue_values(issue_id).get("ref", ""), start_folder(r.settings())))

    def offer(record: dict[str, Any], position: tuple[float, float] | None) -> None:
        app.notify(f"Attached {describe(record)} to {ref}.", timeout=4)
        if position is None:
            return
        lat, lon = position

        def answered(yes: bool | None) -> None:
            if yes:
                app.write(lambda r: r.edit_issue(issue_id, {"lat": lat, "lon": lon}),
                          lambda _v: app.notify(f"{ref}'s location is now {lat:.5f}, {lon:.5f}.", timeout=3))

        app.push_screen(ConfirmScreen(f"The photo was taken at {lat:.5f}, {lon:.5f}. Use that as {ref}'s location?"), answered)

    def chosen(answer: dict[str, Any] | None) -> None:
        if answer is None:
            return

        def work(register: Register):
            done = attach(register, issue_id, answer["path"], caption=answer["caption"])
            register.save_settings(attach_folder=str(answer["path"].parent))
            return done.record, position_offer(register, issue_id, done.record)

        app.write(work, lambda result: offer(*result))

    return app.push_screen(AttachScreen(ref, folder), chosen)


def field_table(values: dict[str, Any], sync: SyncState) -> Table:
    """Every field of the issue, in the order of the capture form; empty ones left out."""
    table = Table.grid(padding=(0, 1))
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", ratio=1)

    def add(label: str, value: Any) -> None:
        if value not in (None, "", []):
            table.add_row(label, Text(safe_for_terminal(value, multiline=True)))

    code = values.get("municipality", "")
    muni = refdata.get(code) if code else None
    add("Status", model.STATUSES.get(values.get("status", ""), values.get("status")))
    add("Severity", SEVERITY_LABELS.get(values.get("severity", ""), values.get("severity")).strip())
    add("Municipality", f"{code} {muni.current_name} ({muni.province_name}, {muni.kind})" if muni else code)
    if values.get("sector") in ("water", "sanitation") and code:
        add("Water authority", refdata.water_services_authority(code)[1])
    add("Ward", values.get("ward"))
    add("Sector", model.sector_label(values.get("sector")))
    add("Category", model.category_label(values.get("sector"), values.get("category")))
    add("Description", values.get("description"))
    add("Location", values.get("address"))
    if values.get("lat") is not None:
        add("Coordinates", f"{values.get('lat')}, {values.get('lon')}")
    add("Responsible", values.get("responsible"))
    add("Source", model.SOURCES.get(values.get("source", ""), values.get("source")))
    add("Source detail", values.get("source_detail"))
    add("Commitment", values.get("commitment"))
    add("Contact", " · ".join(v for v in (values.get("contact_name"), values.get("contact_phone")) if v))
    for need in (n for n in values.get("needs") or [] if isinstance(n, dict)):  # a wrong value that got in is left out
        support = f" (from {need['support_from']})" if need.get("support_from") else ""
        add("Needs", f"{model.NEED_KINDS.get(need.get('kind', ''), need.get('kind'))}: {need.get('detail', '')}{support}")
    add("Captured", f"{local_time(values.get('created_at', ''))} by {values.get('created_by', '')}")
    add("Last change", f"{local_time(values.get('updated_at', ''))} by {values.get('updated_by', '')}")
    if sync.refused:
        table.add_row(Text("Sync", style="bold"), Text(
            f"✗ REFUSED by the central server: {'; '.join(sync.refused)}. What you can do: {REFUSED_ADVICE} (sync screen, y).",
            style="bold"))
    if sync.waiting:
        add("Sync", f"{UNSYNCED_MARK} changes not yet sent to the central server")
    return table


def timeline_table(entries: list[TimelineEntry]) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column("when", no_wrap=True, style="dim")
    table.add_column("what", no_wrap=True, style="bold")
    table.add_column("who", no_wrap=True)
    table.add_column("text", ratio=1)
    for entry in entries:
        table.add_row(local_time(entry.at), TIMELINE_LABELS.get(entry.kind, entry.kind), safe_for_terminal(entry.author), Text(safe_for_terminal(entry.text, multiline=True)))
    return table


def action_line(action: dict[str, Any], today: date) -> Text:
    """An action as a line: ticked or not, due date, LATE when overdue (in words, not only colour)."""
    line = Text()
    if action.get("done"):
        line.append("[x] ", style="bold")
    else:
        line.append("[ ] ", style="bold")
    if model.is_overdue(action, today):
        late = (today - date.fromisoformat(action["due"])).days
        line.append(f"OVERDUE {late}d ", style="bold reverse")
    if action.get("due"):
        line.append(f"due {action['due']}  ")
    line.append(safe_for_terminal(action.get("text", "")))
    if action.get("owner"):
        line.append(safe_for_terminal(f" — {action['owner']}"), style="italic")
    if action.get("done"):
        line.append(safe_for_terminal(f"  (done {local_time(action.get('done_at', ''))[:10]} by {action.get('done_by', '')})"), style="dim")
    return line


class IssueScreen(Screen):
    CSS_PATH = "issue.tcss"
    BINDING_GROUP_TITLE = "Issue"
    AUTO_FOCUS = "#body"
    BINDINGS = [
        Binding("e", "edit", "Edit", tooltip="Change the issue's fields.", id="issue-edit", priority=True),
        Binding("s", "status", "Status", tooltip="Change the status (say why when escalating or closing).", id="issue-status", priority=True),
        Binding("N", "note", "Note", tooltip="Add a note to the timeline.", id="issue-note", priority=True),
        Binding("a", "add_action", "Action", tooltip="Add a follow-up action with owner and due date.", id="issue-action", priority=True),
        Binding("x", "toggle_action", "Done", tooltip="Tick off (or un-tick) the highlighted follow-up action.", id="issue-action-done"),
        Binding("f", "attach", "Attach", tooltip="Attach a photo or document (PDF, Word, Excel) to this issue.", id="issue-attach", priority=True),
        Binding("p", "preview_attachment", "Preview", show=False,
                tooltip="Show the highlighted photo here in the terminal (a document opens in the system's viewer with o).",
                id="issue-attachment-preview"),
        Binding("o", "open_attachment", "Open", show=False, tooltip="Open the highlighted attachment in the system's viewer.",
                id="issue-attachment-open"),
        Binding("delete", "remove_attachment", "Remove", show=False,
                tooltip="Remove the highlighted attachment (the timeline keeps a record of it).", id="issue-attachment-remove"),

        Binding("escape", "back", "Back", tooltip="Back to where you came from.", id="issue-back"),
    ]

    def __init__(self, issue_id: str) -> None:
        super().__init__()
        self.issue_id = issue_id
        self.issue: model.Issue | None = None
        self.actions: list[dict[str, Any]] = []
        self.attachments: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Vertical(id="conflicts-box"):
            yield Label("Disagreements found by sync — tab here, enter chooses which value stands", classes="section")
            yield OptionList(id="conflicts")
        with VerticalScroll(id="body"):
            yield Static("", id="issue-title")
            yield Static("", id="issue-fields")
            yield Label("Timeline", classes="section")
            yield Static("", id="timeline")
        with Vertical(id="actions-box"):
            yield Label("Follow-up actions — a adds, x ticks off the highlighted one (tab to choose)", classes="section")
            yield OptionList(id="actions")
        with Vertical(id="attachments-box"):
            yield Label("Photos and documents — f attaches; tab here, p shows, o opens, delete removes", classes="section")
            yield OptionList(id="attachments")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.app.register_changed.subscribe(self, lambda _ids: self.load())
        self.load()

    def on_screen_resume(self) -> None:
        self.refresh_bindings()  # a form on top had the letter keys switched off

    def load(self) -> None:
        """Read the issue afresh: it is in memory, so this is quick enough for the interface thread."""
        issue_id = self.issue_id

        def read(register: Register):
            from fieldkit.attachments import is_here

            unsynced = self.app.unsynced
            attachments = [(a, is_here(register, a)) for a in register.attachments(issue_id)]
            return (register.issue(issue_id), register.timeline(issue_id), register.actions(issue_id),
                    sync_state_of(register, issue_id, unsynced), attachments)

        *shown, attachments = self.app.read(read)
        self._show(*shown)
        self._show_attachments(attachments)

    def _show_attachments(self, attachments: list[tuple[dict[str, Any], bool]]) -> None:
        self.attachments = [record for record, _ in attachments]
        try:
            listed = self.query_one("#attachments", OptionList)
        except NoMatches:
            return  # the issue was left before its details arrived
        highlighted = listed.highlighted
        listed.clear_options()
        if attachments:
            listed.add_options([Option(attachment_line(record, here), id=record["id"]) for record, here in attachments])
            listed.highlighted = min(highlighted or 0, len(attachments) - 1)
        else:
            listed.add_option(Option("No photos or documents yet.", disabled=True))

    def _show(self, issue: model.Issue, timeline: list[TimelineEntry], actions: list[dict[str, Any]], sync: SyncState) -> None:
        try:
            self._fill(issue, timeline, actions, sync)
        except NoMatches:
            pass  # the issue was left (its screen is closing) before its details arrived

    def _fill(self, issue: model.Issue, timeline: list[TimelineEntry], actions: list[dict[str, Any]], sync: SyncState) -> None:
        self.issue, self.actions = issue, actions
        values = issue.values
        self.sub_title = f"Issue {issue.ref}"
        title = Text()
        title.append(f"{issue.ref}  ", style="bold")
        title.append(safe_for_terminal(values.get("title", "")), style="bold")
        if values.get("deleted"):
            title.append("  (deleted)", style="italic")
        self.query_one("#issue-title", Static).update(title)
        self.query_one("#issue-fields", Static).update(field_table(values, sync))
        self._show_conflicts(issue)
        today = self.app.today()
        actions_list = self.query_one("#actions", OptionList)
        highlighted = actions_list.highlighted
        actions_list.clear_options()
        if actions:
            actions_list.add_options([Option(action_line(a, today), id=a["id"]) for a in actions])
            actions_list.highlighted = min(highlighted or 0, len(actions) - 1)
        else:
            actions_list.add_option(Option("No follow-up actions yet.", disabled=True))
        self.query_one("#timeline", Static).update(timeline_table(timeline))

    def _show_conflicts(self, issue: model.Issue) -> None:
        conflicts = self.query_one("#conflicts", OptionList)
        conflicts.clear_options()
        for number, conflict in enumerate(issue.conflicts):
            ours = issue.values.get(conflict.field)
            conflicts.add_option(Option(
                safe_for_terminal(f"{conflict.field}: now “{ours}” (by {issue.updated_by}) — also “{conflict.value}” (by {conflict.author})"),
                id=str(number),
            ))
        if issue.conflicts:
            conflicts.highlighted = 0
        self.query_one("#conflicts-box").display = bool(issue.conflicts)

    @on(OptionList.OptionSelected, "#conflicts")
    def _settle(self, event: OptionList.OptionSelected) -> None:
        assert self.issue is not None
        conflict = self.issue.conflicts[int(event.option.id or 0)]
        ours = self.issue.values.get(conflict.field)
        choices = [("ours", f"Keep “{ours}”"), ("theirs", f"Take “{conflict.value}” ({conflict.author})")]

        def chosen(answer: str | None) -> None:
            if answer is None:
                return
            value = ours if answer == "ours" else conflict.value
            self.app.write(lambda r: r.resolve_conflict(self.issue_id, conflict.field, value),
                           lambda _v: self.notify(f"{conflict.field} settled.", timeout=3))

        self.app.push_screen(ChoiceScreen(f"Which {conflict.field} stands?", choices), chosen)

    @on(OptionList.OptionSelected, "#actions")
    def _action_selected(self) -> None:
        self.action_toggle_action()

    def action_toggle_action(self) -> None:
        actions_list = self.query_one("#actions", OptionList)
        if not self.actions or actions_list.highlighted is None:
            self.notify("No follow-up action is highlighted: tab to the actions list first.", severity="warning")
            return
        action = self.actions[actions_list.highlighted]
        done = not action.get("done")
        self.app.write(lambda r: r.set_action_done(action["id"], done),
                       lambda _v: self.notify("Action ticked off." if done else "Action open again.", timeout=3))

    async def action_attach(self) -> None:
        await ask_attachment(self.app, self.issue_id)
        self.app.screen.take_the_keyboard()

    def _highlighted_attachment(self) -> dict[str, Any] | None:
        listed = self.query_one("#attachments", OptionList)
        if not self.attachments or listed.highlighted is None:
            self.notify("No attachment is highlighted: tab to the attachments list first.", severity="warning")
            return None
        return self.attachments[listed.highlighted]

    @on(OptionList.OptionSelected, "#attachments")
    def _attachment_selected(self) -> None:
        """Enter shows a photo here and opens a document in the system's viewer."""
        from fieldkit.attachments import is_photo

        record = self._highlighted_attachment()
        if record is not None and is_photo(record):
            self.action_preview_attachment()
        elif record is not None:
            self.action_open_attachment()

    def action_preview_attachment(self) -> None:
        from fieldkit.attachments import is_photo

        record = self._highlighted_attachment()
        if record is None:
            return
        if not is_photo(record):
            kind = model.ATTACHMENT_TYPES.get(record.get("media_type", ""), "file")
            self.notify(f"{record.get('name', 'This file')} is a {kind}: only photos show here; press o to open it in the system's viewer.",
                        severity="warning", timeout=5)
            return
        from fieldkit.screens.photo import PhotoScreen

        photos = [a for a in self.attachments if is_photo(a)]
        ref = self.issue.ref if self.issue is not None else ""
        self.app.push_screen(PhotoScreen(ref, photos, photos.index(record)))

    def action_open_attachment(self) -> None:
        """A copy of the file, under its own name, opened by the system's viewer (the stored file is never handed out)."""
        record = self._highlighted_attachment()
        if record is None:
            return

        def work(register: Register) -> str:
            from fieldkit.attachments import open_copy

            return open_copy(register, record)

        self.app.in_background(work, lambda message: self.notify(message, timeout=4))

    def action_remove_attachment(self) -> None:
        record = self._highlighted_attachment()
        if record is None:
            return
        from fieldkit.screens.dialogs import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.app.write(lambda r: r.remove_attachment(record["id"]),
                               lambda _v: self.notify(f"Removed {record.get('name', '')}; the timeline keeps a record of it.", timeout=3))

        self.app.push_screen(ConfirmScreen(f"Remove {record.get('name', '')} from this issue?"), answered)

    # The keys that open a form are priority keys, handled in turn with the keys typed after them;
    # the form has the keyboard before those are handed out.

    async def action_edit(self) -> None:
        await self.app.open_capture(issue_id=self.issue_id)
        self.app.screen.take_the_keyboard()

    async def action_status(self) -> None:
        await ask_status(self.app, self.issue_id)
        self.app.screen.take_the_keyboard()

    async def action_add_action(self) -> None:
        await ask_action(self.app, self.issue_id)
        self.app.screen.take_the_keyboard()

    async def action_note(self) -> None:
        issue_id = self.issue_id

        def written(text: str | None) -> None:
            if text:
                self.app.write(lambda r: r.add_note(issue_id, text), lambda _v: self.notify("Note added.", timeout=3))

        await self.app.push_screen(NoteScreen(), written)
        self.app.screen.take_the_keyboard()

    def action_back(self) -> None:
        self.dismiss()
