"""Where the keyboard is shows at a glance: in every theme, on a 256-colour terminal too.

The focused box must look clearly unlike the same box unfocused (its fill, seen through a
256-colour palette, moves a long way), and in the capture form its label turns into a bar.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.color import Color, ColorSystem
from textual.widget import Widget
from textual.widgets import Button, Select
from textual.widgets._select import SelectCurrent

from fieldkit.app import THEMES
from fieldkit.register import Register
from test_app_helpers import app_on, settle

pytestmark = pytest.mark.anyio

#: How far apart (in RGB) the focused and unfocused fill must be after the 256-colour palette.
CLEARLY_APART = 60


def in_256_colours(color: Color | None) -> tuple[int, int, int]:
    assert color is not None
    triplet = color.downgrade(ColorSystem.EIGHT_BIT).get_truecolor()
    return triplet.red, triplet.green, triplet.blue


def apart(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def face(widget: Widget) -> Widget:
    """The part of a widget a person looks at (a Select shows its current value)."""
    return widget.query_one(SelectCurrent) if isinstance(widget, Select) else widget


def look(widget: Widget) -> tuple[tuple[int, int, int], bool]:
    style = face(widget).rich_style
    return in_256_colours(style.bgcolor), bool(style.reverse)


@pytest.mark.parametrize("theme", THEMES)
async def test_the_focused_field_stands_out_in_every_theme(fixed: Register, theme: str) -> None:
    app = app_on(fixed)
    async with app.run_test(size=(100, 40)) as pilot:
        app.theme = theme
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        fields = [w for w in form.query("#form Input, #form Select, #form TextArea, #form Button") if w.focusable]
        kinds = {type(w).__name__ for w in fields}
        assert {"FieldInput", "Select", "TextArea", "Button"} <= kinds
        for widget in fields:
            row = next((a for a in widget.ancestors if a.has_class("field")), None)
            label = row.query_one(".field-label") if row is not None else None
            form.query_one("#form").scroll_to_widget(widget, animate=False)
            (fields[-1] if widget is not fields[-1] else fields[0]).focus(scroll_visible=False)
            await pilot.pause(0.05)
            unfocused = look(widget)
            label_before = in_256_colours(label.rich_style.bgcolor) if label else None
            widget.focus()
            await pilot.pause(0.05)
            focused = look(widget)
            name = widget.id or type(widget).__name__
            if isinstance(widget, Button):
                assert focused[1] != unfocused[1] or apart(focused[0], unfocused[0]) >= CLEARLY_APART, f"{name} in {theme}"
                continue
            assert apart(focused[0], unfocused[0]) >= CLEARLY_APART, f"focused {name} looks like unfocused in {theme}: {focused} vs {unfocused}"
            if widget.has_class("-textual-compact"):
                assert face(widget).styles.border_top[0] in ("", "none"), f"a border hides the one line of {name} when focused"
            if label is not None:
                assert apart(in_256_colours(label.rich_style.bgcolor), label_before) >= CLEARLY_APART, f"the label of {name} is not marked in {theme}"
