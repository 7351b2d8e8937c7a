"""A photo of an issue, shown in the terminal, with its caption, size, date and position.

The copy shown is the reduced one kept for sync and reports (or the thumbnail
when only that is on this laptop). Its bytes come through the attachments API,
so a register sealed at rest is opened in memory and never written out; they
are read and decoded in a worker. Left and right step through the issue's
photos; ``o`` opens the photo in the system's viewer.
"""

from __future__ import annotations

import os
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from fieldkit.attachments import PhotoBytes, photo_to_show, size_text
from fieldkit.photos import NotAnImage, for_screen
from fieldkit.register import Register
from fieldkit.safe_text import safe_for_terminal
from fieldkit.screens.issue import local_time
from fieldkit.widgets.app_header import AppHeader
from fieldkit.widgets.key_footer import KeyFooter
from fieldkit.widgets.photo_view import HALFCELL, KITTY, SIXEL, image_widget, picture_kind

#: The long side a decoded photo is brought down to: half-blocks show two pixels a cell, so a few
#: hundred are plenty; Kitty and Sixel draw real pixels.
LONGEST_SIDE = {HALFCELL: 480, SIXEL: 1280, KITTY: 1280}

MISSING = "This photo is on the central store, not on this laptop yet: sync (y) to fetch it."

COPY_NOTES = {
    "reduced": "the reduced copy",
    "original": "the photo as taken",
    "thumbnail": "the thumbnail only: the larger copy is not on this laptop yet (sync brings it)",
}


def photo_facts(record: dict[str, Any], number: int, count: int, copy: str = "") -> Text:
    """What is known about the photo: its caption; which photo, file and size; when and where it was taken;
    who attached it and which copy is shown."""
    facts = Text()
    facts.append(safe_for_terminal(record.get("caption") or record.get("name", "")), style="bold")
    size = size_text(record.get("size", 0))
    if record.get("width") and record.get("height"):
        size = f"{record['width']} × {record['height']} px, {size}"
    facts.append("\n" + safe_for_terminal(f"Photo {number} of {count} · {record.get('name', '')} · {size}"))
    when = f"Taken {local_time(record['taken_at'])}" if record.get("taken_at") else "No date in the photo"
    if record.get("lat") is not None and record.get("lon") is not None:
        where = f"at {record['lat']:.5f}, {record['lon']:.5f}"
    else:
        where = "no position in the photo"
    facts.append(f"\n{when} · {where}")
    who = f"Attached by {record.get('author', '')} on {local_time(record.get('at', ''))[:10]}"
    if copy in COPY_NOTES:
        who += f" · showing {COPY_NOTES[copy]}"
    facts.append("\n" + safe_for_terminal(who), style="dim")
    return facts


class PhotoScreen(Screen):
    CSS_PATH = "photo.tcss"
    BINDING_GROUP_TITLE = "Photo"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the issue.", id="photo-back"),
        Binding("right", "step(1)", "Next photo", tooltip="The issue's next photo.", id="photo-next"),
        Binding("left", "step(-1)", "Previous photo", tooltip="The issue's previous photo.", id="photo-previous"),
        Binding("o", "open", "Open", tooltip="Open the photo in the system's viewer (full size where it is on this laptop).",
                id="photo-open"),
    ]

    def __init__(self, ref: str, photos: list[dict[str, Any]], index: int = 0) -> None:
        super().__init__()
        self.ref = ref
        self.photos = photos
        self.index = index
        self.kind = picture_kind(os.environ)

    def compose(self) -> ComposeResult:
        yield AppHeader()
        with Vertical(id="picture-box"):
            yield Static("Loading the photo…", id="picture-message")
        yield Static("", id="photo-facts")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = f"Issue {self.ref} · photo"
        if self.app.is_headless:
            self.kind = HALFCELL  # a test's screen has no terminal to draw pixels on
        self.show_photo()

    @property
    def record(self) -> dict[str, Any]:
        return self.photos[self.index]

    def show_photo(self) -> None:
        """Say what is known at once; read and decode the picture in a worker."""
        record, kind = self.record, self.kind
        self._facts()
        self._message("Loading the photo…")

        def load(register: Register) -> tuple[PhotoBytes, Any, type | None, str]:
            found = photo_to_show(register, record)
            if found.data is None:
                return found, None, None, MISSING
            try:
                picture = for_screen(found.data, LONGEST_SIDE[kind])
            except NotAnImage:
                return found, None, None, f"{record.get('name', 'This photo')} cannot be shown: its file is not a picture this laptop can read."
            return found, picture, image_widget(kind), ""

        def failed(err: Exception) -> None:
            self._message(str(err))

        self.app.in_background(load, lambda result: self._shown(record["id"], *result), failed,
                               group="photo", exclusive=True)

    def _shown(self, record_id: str, found: PhotoBytes, picture: Any, widget: type | None, problem: str) -> None:
        if not self.is_attached or record_id != self.record["id"]:
            return  # stepped on, or closed, while it loaded
        self._facts(found.copy)
        if widget is None:
            self._message(problem)
            return
        self._clear_picture()
        self.query_one("#picture-message").display = False
        self.query_one("#picture-box").mount(widget(picture, classes="picture"))

    def _facts(self, copy: str = "") -> None:
        self.query_one("#photo-facts", Static).update(photo_facts(self.record, self.index + 1, len(self.photos), copy))

    def _message(self, text: str) -> None:
        self._clear_picture()
        message = self.query_one("#picture-message", Static)
        message.update(Text(text))
        message.display = True

    def _clear_picture(self) -> None:
        self.query(".picture").remove()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "step":
            return len(self.photos) > 1
        return True

    def action_step(self, by: int) -> None:
        self.index = (self.index + by) % len(self.photos)
        self.show_photo()

    def action_open(self) -> None:
        record = self.record

        def work(register: Register) -> str:
            from fieldkit.attachments import open_copy

            return open_copy(register, record)

        self.app.in_background(work, lambda message: self.notify(message, timeout=4))

    def action_back(self) -> None:
        self.dismiss()
