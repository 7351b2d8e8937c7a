"""Textual's Header, safe when a title changes while its screen is being closed."""

from __future__ import annotations

from textual.css.query import NoMatches
from textual.events import Mount
from textual.screen import Screen
from textual.dom import NoScreen
from textual.widgets import Header
from textual.widgets._header import HeaderTitle


class AppHeader(Header):
    """Header whose title watcher lets go of a screen that is closing.

    Textual 8.2's Header updates its title from watchers on the app and the
    screen and catches only ``NoScreen``: opening an issue and pressing `r`
    at once changed the app's title while the issue screen's header had lost
    its children, and the app ended with ``NoMatches``.
    """

    def _on_mount(self, event: Mount) -> None:
        event.prevent_default()

        async def set_title() -> None:
            try:
                self.query_one(HeaderTitle).update(self.format_title())
            except (NoScreen, NoMatches):
                pass  # the screen is closing: nothing to show the title on

        screen: Screen = self.screen
        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(screen, "title", set_title)
        self.watch(screen, "sub_title", set_title)
