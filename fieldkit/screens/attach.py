"""Choosing a file to attach: a path box (type, paste or drop a path) over a folder tree.

It opens in the folder the last file came from, else Pictures or Downloads,
lists only files that can be attached, and asks for a caption. The issue
screen does the attaching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DirectoryTree, Input, Label

from fieldkit import model
from fieldkit.attachments import attachable, clean_path
from fieldkit.screens.dialogs import FormDialog


class AttachableTree(DirectoryTree):
    """Folders and the files that can be attached; hidden ones left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or attachable(p))]


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
            yield Input(str(self.folder) + "/", id="path")
            yield AttachableTree(self.folder, id="files")
            yield Input(placeholder="Caption: what it shows (optional)", id="caption", max_length=300)
            yield Label("", id="problem")
            with Horizontal(classes="buttons"):
                yield Button("Attach", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(DirectoryTree.FileSelected, "#files")
    def _chosen(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#path", Input).value = str(event.path)
        self.query_one("#caption", Input).focus()

    @on(Input.Submitted, "#path")
    def _path_entered(self, event: Input.Submitted) -> None:
        path = clean_path(event.value)
        if path.is_dir():
            self.query_one("#files", AttachableTree).path = path
            return
        self.query_one("#caption", Input).focus()

    @on(Input.Submitted, "#caption")
    def _caption_entered(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        path = clean_path(self.query_one("#path", Input).value)
        problem = None
        if not path.is_file():
            problem = f"There is no file at {path}" if not path.is_dir() else "Choose a file, not a folder"
        elif path.stat().st_size > model.ATTACHMENT_MAX_BYTES:
            problem = f"{path.name} is over {model.ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB, the most that can be attached"
        if problem:
            self.query_one("#problem", Label).update(problem)
            return
        self.dismiss({"path": path, "caption": self.query_one("#caption", Input).value.strip()})
