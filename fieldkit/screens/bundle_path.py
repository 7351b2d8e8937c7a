"""Where a bundle goes, or which bundle comes in: the shared path box over a folder tree.

Writing, it asks for a folder (the tree lists folders and the bundles already
there); taking in, for a bundle file (the tree lists only bundles). The sync
screen does the writing and the taking in.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DirectoryTree, Input, Label

from fieldkit.bundles import SUFFIX
from fieldkit.screens.dialogs import FormDialog
from fieldkit.widgets.path_picker import PathPicker


def is_bundle(path: Path) -> bool:
    return path.name.endswith(SUFFIX)


class BundlePathScreen(FormDialog):
    """Answers the chosen folder (``folder=True``) or bundle file, as a Path; None when cancelled."""

    CSS_PATH = Path(__file__).with_name("bundle_path.tcss")
    BINDINGS = [
        Binding("ctrl+s", "save", "Choose", tooltip="Choose the folder or the bundle in the box.", id="bundle-path-choose"),
    ]

    def __init__(self, folder: Path, choosing_folder: bool) -> None:
        super().__init__()
        self.folder, self.choosing_folder = folder, choosing_folder

    def compose(self) -> ComposeResult:
        with Vertical(id="bundle-path-dialog"):
            if self.choosing_folder:
                yield Label("Write the bundle in which folder?", classes="title")
                yield Label("Type, paste or drop a folder's path — or choose it below — then ctrl+s", classes="hint")
            else:
                yield Label("Take in which bundle or receipt?", classes="title")
                yield Label(f"Type, paste or drop its path — or choose it below (only {SUFFIX} files are listed)", classes="hint")
            yield PathPicker(self.folder, is_bundle, follow_folders=self.choosing_folder, id="picker")
            yield Label("", id="problem")
            with Horizontal(classes="buttons"):
                yield Button("Write it here (ctrl+s)" if self.choosing_folder else "Show what it holds (ctrl+s)",
                             id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#files").focus()

    @on(DirectoryTree.FileSelected, "#files")
    @on(Input.Submitted, "#path")
    def _file_chosen(self) -> None:
        if not self.choosing_folder:
            self.action_save()

    def action_save(self) -> None:
        path = self.query_one(PathPicker).path
        if path is None:
            problem = f"Type, paste or choose the {'folder' if self.choosing_folder else 'bundle'} first"
        elif self.choosing_folder:
            problem = "" if path.is_dir() else f"There is no folder {path}: is the stick plugged in?"
        elif path.is_dir():
            problem = "Choose a bundle file, not a folder"
        else:
            problem = "" if path.is_file() else f"There is no file at {path}"
        if problem:
            self.query_one("#problem", Label).update(problem)
            return
        self.dismiss(path)
