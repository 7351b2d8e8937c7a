"""Pick a municipality by typing part of its name or code: nobody remembers that Mbhashe is EC121.

Typing searches all 257 municipalities; the arrow keys move through what
matches while the cursor stays in the box; enter takes the highlighted one,
and so does leaving the box (tab) while matches are shown: a fast typist's
"mbhashe, tab" means Mbhashe. With ``multiple`` it keeps a set (the first
run's "municipalities I cover"): enter adds the highlighted one, or takes it
out again.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from fieldkit import refdata
from fieldkit.widgets.field_input import FieldInput

SHOWN = 8


def describe(code: str) -> str:
    """How a chosen municipality reads in the box: code, the name people use, province."""
    muni = refdata.get(code)
    if muni is None:
        return code
    return f"{muni.code} {muni.current_name} ({muni.province}, {muni.kind})"


class Matches(OptionList, can_focus=False):
    """The matches under the box: the keyboard stays in the box, so tab skips them."""


class MunicipalityPicker(Vertical, can_focus=False):
    BINDING_GROUP_TITLE = "Municipality"

    BINDINGS = [
        Binding("down", "move(1)", "Next match", show=False, tooltip="Highlight the next municipality that matches.", id="municipality-next"),
        Binding("up", "move(-1)", "Previous match", show=False, tooltip="Highlight the previous match.", id="municipality-previous"),
    ]

    DEFAULT_CSS = """
    MunicipalityPicker { height: auto; }
    MunicipalityPicker Matches { display: none; max-height: 8; }
    MunicipalityPicker.-searching Matches { display: block; }
    MunicipalityPicker .chosen { height: auto; color: $text-muted; }
    """

    @dataclass
    class Changed(Message):
        """The chosen municipality (or set of them) changed."""

        picker: "MunicipalityPicker"
        value: str
        values: tuple[str, ...]

        @property
        def control(self) -> "MunicipalityPicker":
            return self.picker

    def __init__(self, value: str = "", *, multiple: bool = False, values: list[str] | None = None,
                 placeholder: str = "Type a name or code, e.g. Mbhashe or EC121", compact: bool = False,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.multiple = multiple
        self.value = "" if multiple else value
        self.values: list[str] = list(values or [])
        self._placeholder = placeholder
        self._compact = compact

    def compose(self) -> ComposeResult:
        shown = "" if self.multiple or not self.value else describe(self.value)
        yield FieldInput(shown, placeholder=self._placeholder, compact=self._compact, id=f"{self.id}-input" if self.id else None,
                         on_enter=None if self.multiple else self._enter_now)
        yield Matches()
        if self.multiple:
            yield Static(self._chosen_text(), classes="chosen")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    def focus(self, scroll_visible: bool = True) -> "MunicipalityPicker":
        self.input.focus(scroll_visible)
        return self

    def _chosen_text(self) -> str:
        if not self.values:
            return "None chosen yet: type, then enter to add."
        return "Chosen: " + ", ".join(describe(code) for code in self.values)

    def _show_matches(self, text: str) -> None:
        options = self.query_one(Matches)
        options.clear_options()
        found = refdata.search(text, limit=SHOWN)
        for muni in found:
            tick = "✓ " if self.multiple and muni.code in self.values else ""
            options.add_option(Option(f"{tick}{describe(muni.code)}", id=muni.code))
        if found:
            options.highlighted = 0
        self.set_class(bool(found) and bool(text.strip()), "-searching")

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        text = self.input.value  # what the box holds now: a change read late must not undo a pick made since
        if not self.multiple and self.value and text == describe(self.value):
            return
        self._show_matches(text)
        if not self.multiple:
            exact = refdata.get(text) if text.strip() else None
            self._set_value(exact.code if exact is not None and text.strip().upper() == exact.code else "")

    @on(Input.Submitted)
    def _take(self, event: Input.Submitted) -> None:
        """Enter takes the highlighted match; with one municipality to choose, the next field follows."""
        event.stop()
        if not self.commit():
            self.post_message(self.Changed(self, self.value, tuple(self.values)))
        if not self.multiple and self.value:
            self.screen.focus_next()

    def _enter_now(self) -> bool:
        """Enter, handled in turn with the keys typed around it ("buf⏎12" fast): take the best match
        for what the box holds now, then hand the keyboard to the next field before "12" arrives."""
        text = self.input.value
        if not (self.value and text == describe(self.value)):
            self._show_matches(text)
            if not self.commit():
                return False
        if not self.value:
            return False
        self.screen.focus_next()
        return True

    def commit(self) -> bool:
        """Take the highlighted match, if matches are shown; returns whether one was taken."""
        found = self.query(Matches)
        if not found or not self.has_class("-searching") or found.first().highlighted is None:
            return False  # nothing shown (or the box is being taken down with its screen)
        options = found.first()
        code = options.get_option_at_index(options.highlighted).id or ""
        if self.multiple and code in self.values:
            return False  # leaving the box never takes a municipality out again
        self._choose(code)
        return True

    @on(OptionList.OptionSelected)
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id or "")
        self.input.focus()

    def _choose(self, code: str) -> None:
        if self.multiple:
            if code in self.values:
                self.values.remove(code)
            else:
                self.values.append(code)
            self.query_one(".chosen", Static).update(self._chosen_text())
            self.input.value = ""
            self.set_class(False, "-searching")
            self.post_message(self.Changed(self, "", tuple(self.values)))
        else:
            self._show_chosen(code)
            self.set_class(False, "-searching")
            self._set_value(code)

    def _set_value(self, code: str) -> None:
        if code != self.value:
            self.value = code
            self.post_message(self.Changed(self, code, ()))

    def set_value(self, code: str) -> None:
        """Show a municipality chosen elsewhere (a recovered draft, an issue being edited)."""
        self._show_chosen(code)
        self.value = code

    def _show_chosen(self, code: str) -> None:
        """The chosen municipality in the box, the cursor after it: more typing never lands inside it."""
        box = self.input
        with box.prevent(Input.Changed):
            box.value = describe(code) if code else ""
        box.cursor_position = len(box.value)

    def action_move(self, step: int) -> None:
        options = self.query_one(Matches)
        if not self.has_class("-searching") or not options.option_count:
            self.screen.focus_next() if step > 0 else self.screen.focus_previous()
            return
        current = options.highlighted or 0
        options.highlighted = max(0, min(current + step, options.option_count - 1))

    def on_descendant_blur(self) -> None:
        self.call_after_refresh(self._close_if_left)

    def _close_if_left(self) -> None:
        if not self.is_attached:
            return  # the screen closed (e.g. the first run finished)
        focused = self.screen.focused
        if focused is None or self not in focused.ancestors_with_self:
            self.commit()
            self.set_class(False, "-searching")
