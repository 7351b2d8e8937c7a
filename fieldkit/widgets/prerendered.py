"""Lines laid out on a worker thread, drawn only where they show (after Toolong's LogLines).

A long Markdown report drawn by a Static (or Textual's Markdown widget) was laid out in full on the
interface thread, freezing the app while it appeared. Here the worker makes the lines and the
widget only crops the twenty or so on screen.
"""

from __future__ import annotations

import io

from rich.console import Console, RenderableType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip


def lay_out(renderable: RenderableType, width: int) -> list[Strip]:
    """Rich's lines for ``renderable`` at ``width`` cells (safe on any thread: no widget is touched)."""
    console = Console(width=width, file=io.StringIO(), force_terminal=True, color_system="truecolor", legacy_windows=False)
    return [Strip(line) for line in console.render_lines(renderable, console.options.update_width(width), pad=False)]


class Prerendered(ScrollView, can_focus=True):
    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.lines: list[Strip] = []

    def show(self, lines: list[Strip]) -> None:
        self.lines = lines
        self.virtual_size = Size(max((line.cell_length for line in lines), default=0), len(lines))
        self.scroll_to(y=0, animate=False, immediate=True, force=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = round(self.scroll_y) + y
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        return self.lines[index].crop_extend(round(self.scroll_x), round(self.scroll_x) + width, self.rich_style)
