"""Stored text made safe to show in a terminal. A pure function, no I/O.

Values reach the register from many people and many laptops. Validation
refuses control characters where a value enters, but a value that got in
before (or through an older laptop) must still never reach a terminal as an
escape sequence: ESC ] 0 ; would retitle the window, ESC [ 2 J would clear the
screen, a carriage return or backspace would overwrite what is shown. Every
place that prints stored text passes it through ``safe_for_terminal``.
"""

from __future__ import annotations

import re
from typing import Any

#: C0 controls, DEL and C1 controls: everything a terminal may act on instead of showing.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def _escape_but_newline(match: re.Match[str]) -> str:
    char = match.group()
    return char if char == "\n" else _escape(match)


def safe_for_terminal(value: Any, multiline: bool = False) -> str:
    """``value`` as text in which every control character is written out visibly (ESC as \\x1b).

    ``multiline`` keeps line breaks (for a description printed as a paragraph).
    """
    text = value if isinstance(value, str) else str(value)
    if not CONTROL.search(text):
        return text
    return CONTROL.sub(_escape_but_newline if multiline else _escape, text)


def shown(value: Any, width: int = 40) -> str:
    """A value quoted in a message: safe for a terminal and cut short, so a huge value is not echoed whole."""
    text = safe_for_terminal(value)
    return text if len(text) <= width else text[: width - 1] + "…"


_C1_AND_DEL = re.compile(r"[\x7f-\x9f]")


def json_for_terminal(text: str) -> str:
    """JSON text whose strings escape DEL and C1 controls too (``json.dumps`` escapes only C0 ones).

    Control characters can only stand inside JSON strings, where ``\\u0085`` means the same character,
    so the document reads back unchanged.
    """
    return _C1_AND_DEL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
