"""Pictures in the terminal: which way this terminal can show one, and textual-image's widget for it.

textual-image draws a photo with the Kitty graphics protocol, Sixel, or coloured
half-blocks (``▀``), which every terminal with colour shows. Left to itself it
asks the terminal which it supports as it is imported, by writing a question to
the terminal and reading the answer from the keyboard. Once the app runs, the
keyboard is Textual's: the answer would arrive as stray keys, and a key typed
meanwhile could be lost. So fieldkit decides from the environment the terminal
sets (no question asked), and imports textual-image only when a photo is first
shown, with the terminal hidden from it for the moment of the import.
``FIELDKIT_PICTURES=kitty|sixel|halfcell`` overrides the choice.
"""

from __future__ import annotations

import io
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, Mapping

KITTY, SIXEL, HALFCELL = "kitty", "sixel", "halfcell"
KINDS = (KITTY, SIXEL, HALFCELL)

#: What each kind is called where a person reads it.
KIND_NAMES = {KITTY: "Kitty graphics", SIXEL: "Sixel", HALFCELL: "half-blocks"}

_importing = threading.Lock()


def picture_kind(environ: Mapping[str, str]) -> str:
    """How this terminal shows pictures, judged from what it sets in the environment.

    Kitty draws with its own protocol; foot, WezTerm, iTerm2 and Konsole with Sixel (textual-image's Kitty
    placeholders work only in Kitty itself). tmux and screen pass neither reliably, and any other terminal
    gets half-blocks, which always work.
    """
    chosen = environ.get("FIELDKIT_PICTURES", "").strip().lower()
    if chosen in KINDS:
        return chosen
    term = environ.get("TERM", "")
    if environ.get("TMUX") or environ.get("STY") or term.startswith(("screen", "tmux")):
        return HALFCELL
    if term == "xterm-kitty" or environ.get("KITTY_WINDOW_ID"):
        return KITTY
    if (environ.get("TERM_PROGRAM") in ("WezTerm", "iTerm.app") or term.startswith("foot")
            or environ.get("KONSOLE_VERSION")):
        return SIXEL
    return HALFCELL


def _cell_pixels() -> tuple[int, int] | None:
    """The size of a character cell in pixels, from the kernel (no question to the terminal), when it knows."""
    try:
        import fcntl
        import struct
        import termios

        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else -1
        rows, columns, width, height = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    except (ImportError, OSError, ValueError, AttributeError):
        return None
    if not (rows and columns and width and height):
        return None
    return round(width / columns), round(height / rows)


@contextmanager
def _terminal_hidden() -> Iterator[None]:
    """While textual-image is imported: it sees no terminal, so asks none, and takes the cell size offered."""
    cell = _cell_pixels()
    saved_stdout = sys.__stdout__
    saved_env = {name: os.environ.get(name) for name in ("TEXTUAL_CELL_WIDTH", "TEXTUAL_CELL_HEIGHT")}
    if cell is not None and saved_env["TEXTUAL_CELL_WIDTH"] is None:
        os.environ["TEXTUAL_CELL_WIDTH"], os.environ["TEXTUAL_CELL_HEIGHT"] = str(cell[0]), str(cell[1])
    sys.__stdout__ = io.StringIO()  # type: ignore[misc]  # not a terminal: textual-image asks nothing
    try:
        yield
    finally:
        sys.__stdout__ = saved_stdout  # type: ignore[misc]
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def image_widget(kind: str) -> type:
    """textual-image's widget class for ``kind``; imported on first use (never at start-up)."""
    with _importing:
        if "textual_image.widget" not in sys.modules:
            with _terminal_hidden():
                import textual_image.widget  # noqa: F401
    from textual_image.widget import HalfcellImage, SixelImage, TGPImage

    return {KITTY: TGPImage, SIXEL: SixelImage}.get(kind, HalfcellImage)
