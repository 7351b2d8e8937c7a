"""The status report, previewed in the app before it goes to the task team meeting.

Type a scope (a municipality, a district with its locals, a province, or
nothing for the whole register) and a start date; the Markdown report is built
in the background and shown as it will read. ctrl+s writes it to the file named
at the bottom: Markdown for email and wikis, or printable HTML for a name ending
in .html. The figures come from ``fieldkit.reports``, the same as the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from rich.markdown import Markdown
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import Header, Input, Label, LoadingIndicator, Static

from fieldkit import refdata, reports
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.prerendered import Prerendered, lay_out

DEBOUNCE_S = 0.4
#: Lines a list shows in the preview: Textual's Markdown widget takes seconds over the full
#: report of a big register. The file written has the command line's default (25).
PREVIEW_LIMIT = 8


@dataclass(frozen=True, slots=True)
class Asked:
    """What the screen's boxes say, checked: the report to build."""

    scope: reports.Scope
    since: date


def exact_scope(text: str) -> reports.Scope | None:
    """The scope the text names exactly (a code, a province, a full name); None while it is only part of one."""
    typed = text.strip()
    if not typed:
        return reports.Scope()
    if refdata.province_code(typed) or refdata.get(typed):
        return reports.scope_from_text(typed)
    for muni in refdata.search(typed, limit=5):
        if typed.casefold() in (muni.current_name.casefold(), getattr(muni, "name", "").casefold()):
            return reports.Scope("district" if muni.category == "C" else "municipality", muni.code)
    return None


def read_boxes(scope_text: str, since_text: str, today: date, picked: bool = True) -> Asked:
    """The scope and start date typed in the boxes; raises ValueError with a one-line reason.

    While typing (``picked`` False) only an exact scope counts: "Q" must not quietly become Joe Gqabi.
    """
    scope = reports.scope_from_text(scope_text) if picked else exact_scope(scope_text)
    if scope is None:
        found = refdata.search(scope_text.strip(), limit=3)
        names = ", ".join(f"{m.current_name} ({m.code})" for m in found)
        raise ValueError(f"'{scope_text.strip()}' is not a scope yet" + (f" — enter takes {names.split(', ')[0]}; matches: {names}" if names else
                                                                         " — no municipality, district or province matches"))
    typed = since_text.strip()
    if not typed:
        return Asked(scope, reports.default_since(today))
    try:
        since = date.fromisoformat(typed)
    except ValueError:
        raise ValueError(f"'{typed}' is not a date; write it as YYYY-MM-DD") from None
    if since > today:
        raise ValueError(f"{since.isoformat()} is in the future")
    return Asked(scope, since)


def default_path(scope: reports.Scope, today: date) -> str:
    slug = scope.code.lower() if scope.code else "all"
    return str(Path.home() / f"status-report-{slug}-{today.isoformat()}.md")


class ReportsScreen(Screen):
    """Build, preview and save the task-team status report."""

    CSS_PATH = "reports.tcss"
    BINDING_GROUP_TITLE = "Status report"
    FORM = True  # the boxes take typing: the app's single-letter keys stay off here
    BINDINGS = [
        Binding("ctrl+s", "write", "Write to file", tooltip="Write the report to the file named at the bottom (.md or .html).", id="reports-write"),
        Binding("f5", "refresh", "Refresh", tooltip="Build the report again from the register.", id="reports-refresh"),
        Binding("escape", "back", "Back", tooltip="Close the report.", id="reports-back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._timer = None
        self.asked: Asked | None = None
        self.markdown_text = ""

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="report-scope"):
            yield Label("Scope", classes="box-label")
            yield Input(placeholder="blank: everything · EC121 · DC12 (district) · EC (province) · a name", id="scope")
            yield Label("Since", classes="box-label")
            yield Input(placeholder="YYYY-MM-DD", id="since", max_length=10)
        yield Static("", id="report-understood")
        yield LoadingIndicator(id="building")
        yield Prerendered(id="report-preview")  # laid out by the worker: Textual's Markdown froze the app for seconds
        with Horizontal(id="report-save"):
            yield Label("Write to", classes="box-label")
            yield Input(id="report-path")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "Status report"
        today = self.app.today()
        mine = self.app.my_municipalities
        self.query_one("#scope", Input).value = mine[0] if len(mine) == 1 else ""
        self.query_one("#since", Input).value = reports.default_since(today).isoformat()
        self.query_one("#report-preview").border_title = "Preview (as it reads in an email or wiki)"
        self.action_refresh()
        self.query_one("#scope", Input).focus()

    @on(Input.Changed, "#scope")
    @on(Input.Changed, "#since")
    def _typed(self) -> None:
        if self._timer is None:
            self._timer = self.set_timer(DEBOUNCE_S, self._typed_pause)
        else:
            self._timer.reset()

    def _typed_pause(self) -> None:
        self._timer = None
        self.action_refresh(picked=False)

    @on(Input.Submitted, "#scope")
    @on(Input.Submitted, "#since")
    def _submitted(self) -> None:
        self.action_refresh()

    @on(Input.Submitted, "#report-path")
    def _path_submitted(self) -> None:
        self.action_write()

    def _read(self, picked: bool = True) -> Asked | None:
        try:
            return read_boxes(self.query_one("#scope", Input).value, self.query_one("#since", Input).value, self.app.today(), picked)
        except ValueError as err:
            self.query_one("#report-understood", Static).update(Text(f"⚠ {err}", style="bold"))
            return None

    def action_refresh(self, picked: bool = True) -> None:
        """Build the report for what the boxes say, away from the interface thread.

        ``picked``: enter or f5 was pressed, so a partly typed name takes its best match (shown in the box).
        """
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        asked = self._read(picked)
        if asked is None:
            return
        if picked and asked.scope.code and self.query_one("#scope", Input).value.strip().upper() != asked.scope.code:
            with self.query_one("#scope", Input).prevent(Input.Changed):
                self.query_one("#scope", Input).value = asked.scope.code  # what was chosen, plainly
        self.query_one("#building").display = True
        today = self.app.today()
        path_box = self.query_one("#report-path", Input)
        if not path_box.value or self.asked is None or path_box.value == default_path(self.asked.scope, today):
            path_box.value = default_path(asked.scope, today)
        self.asked = asked
        self.query_one("#report-understood", Static).update(
            f"{asked.scope.label} · changes since {asked.since.isoformat()} · building…")

        width = self.query_one("#report-preview").scrollable_content_region.width or self.app.size.width - 4  # before layout

        def build(register) -> tuple[Asked, reports.ReportData, str, list[Strip]]:
            data = reports.build_report(register, asked.scope, since=asked.since, today=today, limit=PREVIEW_LIMIT)
            text = reports.render_markdown(data)
            return asked, data, text, lay_out(Markdown(text), width)

        self.app.in_background(build, self._show, group="report-preview", exclusive=True)

    def _show(self, built: tuple[Asked, reports.ReportData, str, list[Strip]]) -> None:
        asked, data, text, preview = built
        if asked != self.asked:
            return  # the boxes changed while this one was being built
        self.markdown_text = text
        self.query_one("#building").display = False
        self.query_one(Prerendered).show(preview)
        t = data.totals
        self.query_one("#report-understood", Static).update(
            f"{data.scope_label} · since {data.since.isoformat()} · {t.open} open, {t.escalated} escalated, "
            f"{t.overdue_actions} actions overdue · preview lists {PREVIEW_LIMIT} lines a section, ctrl+s writes them all (up to {reports.DEFAULT_LIMIT})")

    def action_write(self) -> None:
        """Write the report for what the boxes say to the named file (HTML for .html, else Markdown)."""
        asked = self._read()
        if asked is None:
            return
        target = self.query_one("#report-path", Input).value.strip()
        if not target:
            self.notify("Name the file to write at the bottom first.", severity="warning")
            return
        path = Path(target).expanduser()
        fmt = "html" if path.suffix.lower() in (".html", ".htm") else "md"
        today = self.app.today()

        def write(register) -> str:
            from fieldkit.exports import write_files

            data = reports.build_report(register, asked.scope, since=asked.since, today=today)
            try:
                write_files({str(path): reports.render(data, fmt).encode("utf-8")})
            except OSError as err:
                return f"⚠ Not written: {err.strerror or err} ({path})"
            return f"Wrote {path}"

        self.app.in_background(write, self._written, group="report-write", exclusive=True)

    def _written(self, message: str) -> None:
        failed = message.startswith("⚠")
        self.notify(message, title="Status report", severity="error" if failed else "information", timeout=8 if failed else 4)

    def action_back(self) -> None:
        self.app.pop_screen()
