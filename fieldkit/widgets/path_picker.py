"""Choosing a file or a folder: a path box (type, paste or drop a path) over a folder tree.

A terminal has no file dialog, so the box takes what people paste or drop (quotes,
``file://`` and escaped spaces undone) and the tree lists only the files wanted.
The attach dialog and the bundle dialogs of the sync screen share it; the screen
using it decides what choosing means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DirectoryTree, Input

from fieldkit.attachments import clean_path


class FilteredTree(DirectoryTree):
    """Folders and the files ``wanted`` accepts; hidden ones left out."""

    def __init__(self, path: Path, wanted: Callable[[Path], bool], **kwargs) -> None:
        self.wanted = wanted
        super().__init__(path, **kwargs)

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or self.wanted(p))]


class PathPicker(Vertical):
    """The path box (``#path``) over the tree (``#files``); a folder typed in the box opens in the tree,
    a file typed there goes on to the screen (``Input.Submitted``), as does a file chosen in the tree
    (``DirectoryTree.FileSelected``, after filling the box).

    ``follow_folders``: a folder chosen in the tree fills the box too (when a folder is what is chosen).
    """

    DEFAULT_CSS = """
    PathPicker {
        height: 1fr;
    }
    PathPicker #files {
        height: 1fr;
        border: round $primary 40%;
    }
    """

    def __init__(self, folder: Path, wanted: Callable[[Path], bool], follow_folders: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.folder, self.wanted, self.follow_folders = folder, wanted, follow_folders

    def compose(self) -> ComposeResult:
        yield Input(str(self.folder) + "/", id="path")
        yield FilteredTree(self.folder, self.wanted, id="files")

    @property
    def path(self) -> Path | None:
        """The path in the box, as the person meant it (made absolute); None while the box is empty."""
        text = self.query_one("#path", Input).value
        return clean_path(text).absolute() if text.strip() else None

    def show(self, path: Path) -> None:
        self.query_one("#path", Input).value = str(path)

    @on(Input.Submitted, "#path")
    def _path_entered(self, event: Input.Submitted) -> None:
        path = clean_path(event.value)
        if path.is_dir():
            event.stop()  # a folder opens below; the screen hears only of files
            self.query_one("#files", FilteredTree).path = path

    @on(DirectoryTree.FileSelected, "#files")
    def _file_chosen(self, event: DirectoryTree.FileSelected) -> None:
        self.show(event.path)

    @on(DirectoryTree.DirectorySelected, "#files")
    def _folder_chosen(self, event: DirectoryTree.DirectorySelected) -> None:
        if self.follow_folders:
            self.show(event.path)
