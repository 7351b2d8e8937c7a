"""A list of ticks that keeps up with fast typing.

Textual's SelectionList ticks whatever is highlighted when the "selected" message is read,
not what was highlighted when space was pressed: "space down space" typed ahead ticked the
second entry twice (so nothing). This one ticks the entry the message names.
"""

from __future__ import annotations

from textual.widgets import OptionList, SelectionList


class TickList(SelectionList):
    def _on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        event.prevent_default()  # the base class would tick the entry highlighted now
        self.toggle(self.get_option_at_index(event.option_index))
