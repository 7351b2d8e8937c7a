"""The footer, with Help and Quit first: a narrow terminal cuts keys off the right, never these two.

On the main screens they are ``?`` and ``q``; where a form has the letter keys, ``f1`` and ``ctrl+q``.
Keys are told apart by key and action together (a form's own ``leave`` is its Back key).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

HELP = ("question_mark", "help")
HELP_WHILE_TYPING = ("f1", "help('always')")
QUIT = ("q", "leave")
QUIT_WHILE_TYPING = ("ctrl+q", "quit")


def _which(key: object) -> tuple[str, str]:
    return getattr(key, "key", ""), getattr(key, "action", "")


class KeyFooter(Footer):
    def compose(self) -> ComposeResult:
        keys = list(super().compose())
        shown = {_which(key) for key in keys}
        hidden = {HELP_WHILE_TYPING if HELP in shown else HELP, QUIT_WHILE_TYPING if QUIT in shown else QUIT}
        keys = [key for key in keys if _which(key) not in hidden]
        order = (HELP, HELP_WHILE_TYPING, QUIT, QUIT_WHILE_TYPING)
        first = sorted((key for key in keys if _which(key) in order), key=lambda key: order.index(_which(key)))
        yield from first + [key for key in keys if key not in first]
