"""The footer, with Help and Quit first: a narrow terminal cuts keys off the right, never these two."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

#: The app's actions whose keys are always shown.
ALWAYS = ("help", "leave")


class KeyFooter(Footer):
    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        first = [key for key in keys if getattr(key, "action", None) in ALWAYS]
        yield from first + [key for key in keys if key not in first]
