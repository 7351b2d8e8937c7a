"""A text box that keeps fast typing in order, so a burst of keys never lands in the wrong field.

Textual hands a printable key straight to the focused box, but ``enter`` takes
a longer road (up through the containers to the key bindings). On a busy
laptop, typing "mbhashe⏎⇥7" quickly let the "7" reach the municipality box
before the enter had chosen the municipality (seen in tmux, two runs in
three). So here ``enter`` is handled in turn with the typing, where it was
pressed; and a letter typed after that enter that still reaches this box
(enter moves to the next field a moment later) goes to where focus is now.
``tab`` is a priority key of the app for the same reason: it moves focus
before the next key is handed out. Letters typed *before* a tab but not yet
handled when it moved focus stay here, where they were typed.
"""

from __future__ import annotations

from typing import Any, Callable

from textual import events
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Input


class FieldInput(Input):
    #: Textual's Input sets its virtual size on every keystroke (the text's width, for scrolling
    #: sideways), and the base reactive lays the whole screen out again each time: 25-70 ms a key
    #: in the capture form. A one-line box never changes the layout around it; it only repaints.
    virtual_size = Reactive(Size(0, 0), layout=False)

    _after_enter = False

    def __init__(self, *args: Any, on_enter: Callable[[], bool] | None = None, **kwargs: Any) -> None:
        """``on_enter``: asked first when enter is pressed, in turn with the typing; True if it dealt with it."""
        super().__init__(*args, **kwargs)
        self.on_enter = on_enter

    def on_focus(self, event: events.Focus) -> None:
        self._after_enter = False

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if not (self.on_enter is not None and self.on_enter()):
                await self.action_submit()
            self._after_enter = True
            return
        focused = self.screen.focused if self.is_attached else None
        if self._after_enter and event.is_printable and focused is not None and focused is not self:
            event.stop()
            event.prevent_default()
            focused.post_message(events.Key(event.key, event.character))
        # Anything else: Input's own key handler runs next (Textual calls each class's handler in turn).
