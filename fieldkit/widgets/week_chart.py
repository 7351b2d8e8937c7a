"""Issues opened and resolved per week, as bars of block characters: a trend reads faster than a table.

Two bars a week in different glyphs (█ opened, ░ resolved) with the numbers
beside them, so the chart says the same in monochrome, in sunlight and to a
screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import Static

EIGHTHS = " ▏▎▍▌▋▊▉█"


@dataclass(frozen=True)
class Week:
    label: str  # e.g. "02 Mar", the Monday the week starts
    opened: int
    resolved: int


def bar(value: int, top: int, width: int) -> str:
    """A bar of ``width`` cells at most, in eighths of a cell."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    return "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")


def shade(value: int, top: int, width: int) -> str:
    """The resolved bar: whole cells of a light shade (shades have no eighths)."""
    if top <= 0 or value <= 0:
        return ""
    return "░" * max(1, round(value / top * width))


class WeekChart(Static):
    """Opened ░ resolved, one line a week, newest last."""

    DEFAULT_CSS = """
    WeekChart { height: auto; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", id=id, classes=classes)
        self.weeks: list[Week] = []

    def show_weeks(self, weeks: list[Week]) -> None:
        self.weeks = weeks
        self.refresh(layout=True)

    def render(self) -> Content:
        width = self.content_region.width or 40
        if not self.weeks:
            return Content("No issues opened in these weeks.")
        top = max(max(w.opened, w.resolved) for w in self.weeks)
        number = len(str(top))
        span = max((width - 7 - 2 * (number + 2)) // 2, 3)
        parts: list[str | tuple[str, str]] = [("█ opened", "bold $primary"), "   ", ("░ resolved", "bold $success")]
        for week in self.weeks:
            parts += [
                f"\n{week.label} ",
                (bar(week.opened, top, span).ljust(span), "$primary"),
                f" {week.opened:>{number}} ",
                (shade(week.resolved, top, span).ljust(span), "$success"),
                f" {week.resolved:>{number}}",
            ]
        return Content.assemble(*parts)
