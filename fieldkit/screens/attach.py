"""Choosing a file to attach: a path box (type, paste or drop a path) over a folder tree.

It opens in the folder the last file came from, else Pictures or Downloads,
lists only files that can be attached, and asks for a caption. The issue
screen does the attaching.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DirectoryTree, Input, Label

from fieldkit import model
from fieldkit.attachments import attachable
from fieldkit.screens.dialogs import FormDialog
from fieldkit.widgets.path_picker import PathPicker


class AttachScreen(FormDialog):
    CSS_PATH = Path(__file__).with_name("attach.tcss")
    BINDINGS = [
        Binding("ctrl+s", "save", "Attach", tooltip="Attach the file with its caption.", id="attach-save"),
    ]

    def __init__(self, ref: str, folder: Path) -> None:
        super().__init__()
        self.ref = ref
        self.folder = folder

    def compose(self) -> ComposeResult:
        with Vertical(id="attach-dialog"):
            yield Label(f"Attach a photo or document to {self.ref}", classes="title")
            yield Label("Type, paste or drop a file's path — or choose it below", classes="hint")
            yield PathPicker(self.folder, attachable, id="picker")
            yield Input(placeholder="Caption: what it shows (optional)", id="caption", max_length=300)
            yield Label("", id="problem")
            with Horizontal(classes="buttons"):
                yield Button("Attach", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(DirectoryTree.FileSelected, "#files")
    @on(Input.Submitted, "#path")
    def _chosen(self) -> None:
        self.query_one("#caption", Input).focus()

    @on(Input.Submitted, "#caption")
    def _caption_entered(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        path = self.query_one(PathPicker).path
        problem = None
        if path is None:
            problem = "Type, paste or choose the file to attach"
        elif not path.is_file():
            problem = f"There is no file at {path}" if not path.is_dir() else "Choose a file, not a folder"
        elif path.stat().st_size > model.ATTACHMENT_MAX_BYTES:
            problem = f"{path.name} is over {model.ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB, the most that can be attached"
        if problem:
            self.query_one("#problem", Label).update(problem)
            return
        self.dismiss({"path": path, "caption": self.query_one("#caption", Input).value.strip()})
