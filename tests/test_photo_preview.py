"""Looking at an issue's photos in the terminal: p on a photo, left and right through them, escape back.

Real registers and real JPEGs (drawn with Pillow, dated and placed in their EXIF)
attached through the real code; the picture is asserted on what is drawn: the
half-block cells and their colours.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.color import Color
from textual.geometry import Region

from fieldkit.attachments import attach
from fieldkit.register import Register
from fieldkit.screens.issue import IssueScreen
from fieldkit.screens.photo import MISSING, PhotoScreen
from fieldkit.widgets.photo_view import HALFCELL, KITTY, SIXEL, picture_kind
from photo_files import two_colour_photo
from test_app_helpers import app_on, screen_text, settle, south_african_time  # noqa: F401 - fixture

SIZE = (100, 30)
RED, BLUE, GREEN, YELLOW = (220, 30, 30), (30, 60, 220), (30, 180, 60), (240, 220, 40)

pytestmark = pytest.mark.anyio


def first_issue(register: Register) -> str:
    return next(r.id for r in register.find() if r.title.startswith("Burst bulk main"))


def attach_photos(register: Register, issue_id: str, folder: Path) -> None:
    """Two photos (red over blue, then green over yellow) with a PDF between them."""
    attach(register, issue_id, two_colour_photo(folder / "burst-main.jpg", RED, BLUE), caption="Water in the school yard")
    pdf = folder / "minutes.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")
    attach(register, issue_id, pdf, caption="Minutes of the imbizo")
    attach(register, issue_id, two_colour_photo(folder / "valve.jpg", GREEN, YELLOW, width=900, height=1200,
                                                lat=None, lon=None, taken="2026:11:29 14:05:00"),
           caption="The valve chamber")


async def open_attachments(pilot, issue_id: str) -> None:
    """Open the issue and put the keyboard on its photos and documents."""
    app = pilot.app
    app.open_issue(issue_id)
    await settle(pilot)
    app.screen.query_one("#attachments").focus()
    await pilot.pause()


async def shown(pilot) -> None:
    await settle(pilot)
    await pilot.pause(0.05)
    await settle(pilot)


def words(app) -> str:
    """The screen's text with its lines joined (and the sides of boxes left out), as a sentence reads across a wrap."""
    return " ".join(screen_text(app).replace("│", " ").split())


def picture_colours(app) -> tuple[list[Color], list[Color]]:
    """The colours of the top half-cell of the picture's first row and of the bottom half-cell of its last."""
    picture = app.screen.query_one(".picture")
    width, height = picture.size
    strips = picture.render_lines(Region(0, 0, width, height))
    top = [s.style.color for s in strips[0] if s.text == "▀"]
    bottom = [s.style.bgcolor for s in strips[-1] if s.text == "▀"]
    return top, bottom


def near(colour: Color, rgb: tuple[int, int, int]) -> bool:
    triplet = colour.get_truecolor()
    return all(abs(a - b) <= 40 for a, b in zip(triplet, rgb))


async def test_a_photo_opens_in_the_terminal_with_its_caption_date_and_position(
        fixed: Register, tmp_path: Path, south_african_time) -> None:
    issue_id = first_issue(fixed)
    attach_photos(fixed, issue_id, tmp_path)
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_attachments(pilot, issue_id)
        await pilot.press("p")
        await shown(pilot)
        assert isinstance(app.screen, PhotoScreen)
        from textual_image.widget import HalfcellImage

        assert isinstance(app.screen.query_one(".picture"), HalfcellImage)
        text = words(app)
        assert "Water in the school yard Photo 1 of 2 · burst-main.jpg · 2000 × 1500 px" in text
        assert "\\n" not in text, "the facts are lines, not escaped line breaks"
        assert "Taken 2026-11-28 10:15 · at -32.97000, 27.87000" in text
        assert "showing the reduced copy" in text
        assert text.count("▀") > 40 * 20, "the photo fills the screen with half-block cells"
        top, bottom = picture_colours(app)
        assert top and all(near(c, RED) for c in top), "the top of the photo is red"
        assert bottom and all(near(c, BLUE) for c in bottom), "the bottom of the photo is blue"
    assert app._exception is None


async def test_left_and_right_step_through_the_issues_photos_only(fixed: Register, tmp_path: Path, south_african_time) -> None:
    issue_id = first_issue(fixed)
    attach_photos(fixed, issue_id, tmp_path)
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_attachments(pilot, issue_id)
        await pilot.press("enter")  # enter on a photo shows it too
        await shown(pilot)
        await pilot.press("right")
        await shown(pilot)
        text = words(app)
        assert "The valve chamber" in text and "Photo 2 of 2 · valve.jpg" in text, "the PDF between them is passed over"
        assert "Taken 2026-11-29 14:05 · no position in the photo" in text
        top, bottom = picture_colours(app)
        assert all(near(c, GREEN) for c in top) and all(near(c, YELLOW) for c in bottom)
        await pilot.press("right")
        await shown(pilot)
        assert "Photo 1 of 2 · burst-main.jpg" in words(app), "after the last photo comes the first"
        await pilot.press("left")
        await shown(pilot)
        assert "Photo 2 of 2" in words(app)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        assert app.screen.issue_id == issue_id
        assert "burst-main.jpg" in words(app)
    assert app._exception is None


async def test_a_document_says_it_opens_only_in_the_systems_viewer(fixed: Register, tmp_path: Path) -> None:
    issue_id = first_issue(fixed)
    attach_photos(fixed, issue_id, tmp_path)
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_attachments(pilot, issue_id)
        await pilot.press("down", "p")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        said = [n.message for n in app._notifications]
        assert any("minutes.pdf is a PDF document" in m and "press o to open it in the system's viewer" in m for m in said), said


def remove_files(register: Register, *shas: str) -> None:
    """As on a laptop that has the attachment's record from sync but not yet these files."""
    for sha in shas:
        register.store.blobs.path(sha).unlink()


async def test_a_photo_not_on_this_laptop_says_sync_fetches_it(fixed: Register, tmp_path: Path) -> None:
    issue_id = first_issue(fixed)
    attach_photos(fixed, issue_id, tmp_path)
    first = fixed.attachments(issue_id)[0]
    remove_files(fixed, first["sha256"], first["reduced_sha256"], first["thumb_sha256"])
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_attachments(pilot, issue_id)
        assert "not on this laptop yet (sync brings it)" in words(app)
        await pilot.press("p")
        await shown(pilot)
        assert isinstance(app.screen, PhotoScreen)
        text = words(app)
        assert MISSING in text, text
        assert "Water in the school yard" in text, "what is known about the photo is still shown"
        assert not app.screen.query(".picture"), "no picture where there are no bytes"
        await pilot.press("right")
        await shown(pilot)
        assert app.screen.query(".picture"), "the next photo is here, and shows"


async def test_only_the_thumbnail_here_shows_the_thumbnail_and_says_so(fixed: Register, tmp_path: Path) -> None:
    issue_id = first_issue(fixed)
    attach_photos(fixed, issue_id, tmp_path)
    first = fixed.attachments(issue_id)[0]
    remove_files(fixed, first["sha256"], first["reduced_sha256"])
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_attachments(pilot, issue_id)
        await pilot.press("p")
        await shown(pilot)
        text = words(app)
        assert "showing the thumbnail only" in text
        top, bottom = picture_colours(app)
        assert all(near(c, RED) for c in top) and all(near(c, BLUE) for c in bottom)


async def test_a_damaged_photo_file_is_one_clear_line(fixed: Register, tmp_path: Path) -> None:
    issue_id = first_issue(fixed)
    attach_photos(fixed, issue_id, tmp_path)
    first = fixed.attachments(issue_id)[0]
    path = fixed.store.blobs.path(first["reduced_sha256"])
    path.write_bytes(path.read_bytes()[:-100] + b"\0" * 100)
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_attachments(pilot, issue_id)
        await pilot.press("p")
        await shown(pilot)
        text = words(app)
        assert "is damaged (its bytes do not match its hash)" in text and "fieldkit recover --files" in text
        assert not app.screen.query(".picture")
    assert app._exception is None


async def test_a_photo_in_an_encrypted_register_shows_without_its_bytes_leaving_memory(tmp_path: Path) -> None:
    from fieldkit.encryption import encrypt, open_register

    laptop = tmp_path / "laptop"
    with Register.open(laptop, author="Thandi Mokoena") as register:
        issue = register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main at the clinic"})
        attach(register, issue["id"], two_colour_photo(tmp_path / "clinic.jpg", RED, BLUE), caption="At the clinic gate")
        encrypt(register.store, "blue reservoir at dawn")
    register = open_register(laptop, ask=lambda _: "blue reservoir at dawn")
    record = register.attachments(issue["id"])[0]
    assert not register.store.blobs.path(record["reduced_sha256"]).read_bytes().startswith(b"\xff\xd8"), "sealed on disk"
    before = sorted(p for p in laptop.rglob("*") if p.is_file())
    try:
        app = app_on(register)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await open_attachments(pilot, issue["id"])
            await pilot.press("p")
            await shown(pilot)
            assert "At the clinic gate" in words(app)
            top, bottom = picture_colours(app)
            assert all(near(c, RED) for c in top) and all(near(c, BLUE) for c in bottom)
    finally:
        register.close()
    assert sorted(p for p in laptop.rglob("*") if p.is_file() and "backups" not in p.parts) == \
        [p for p in before if "backups" not in p.parts], "nothing written beside the register"


# -- which way a terminal shows pictures, and never asking it while the app has the keyboard -------------


def test_the_way_of_showing_pictures_follows_the_terminal() -> None:
    assert picture_kind({"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"}) == KITTY
    assert picture_kind({"TERM": "foot"}) == SIXEL
    assert picture_kind({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}) == SIXEL
    assert picture_kind({"TERM": "xterm-256color", "KONSOLE_VERSION": "240202"}) == SIXEL
    assert picture_kind({"TERM": "xterm-256color"}) == HALFCELL, "GNOME Terminal, xterm: half-blocks"
    assert picture_kind({"TERM": "tmux-256color", "TMUX": "/tmp/tmux-0/default,1,0", "KITTY_WINDOW_ID": "1"}) == HALFCELL
    assert picture_kind({"TERM": "screen"}) == HALFCELL
    assert picture_kind({"TERM": "xterm-256color", "FIELDKIT_PICTURES": "Sixel"}) == SIXEL
    assert picture_kind({"TERM": "xterm-kitty", "FIELDKIT_PICTURES": "halfcell"}) == HALFCELL
    assert picture_kind({"TERM": "xterm-kitty", "FIELDKIT_PICTURES": "nonsense"}) == KITTY


def written_to_the_terminal(code: str) -> bytes:
    """What a Python process running ``code`` writes to a real terminal (a pty) that never answers."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-c", code])
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        elif os.waitpid(pid, os.WNOHANG) != (0, 0):
            break
    os.close(fd)
    return out


QUESTIONS = (b"\x1b[c", b"\x1b_G", b"\x1b[16t")


def test_getting_the_picture_widget_asks_the_terminal_nothing() -> None:
    """The app has the keyboard when a photo is first shown: an answer would arrive as stray keys."""
    ours = written_to_the_terminal(
        "from fieldkit.widgets.photo_view import image_widget\n"
        "import sys\n"
        "for kind in ('halfcell', 'sixel', 'kitty'): image_widget(kind)\n"
        "assert sys.__stdout__.isatty()\n"
        "print('READY')\n")
    assert b"READY" in ours, ours
    assert not [q for q in QUESTIONS if q in ours], ours
    left_alone = written_to_the_terminal("import textual_image.widget\nprint('READY')\n")
    assert any(q in left_alone for q in QUESTIONS), "textual-image on its own asks the terminal (what this guards)"


def test_the_app_starts_without_loading_the_picture_library() -> None:
    done = subprocess.run([sys.executable, "-c",
                           "import sys, fieldkit.app, fieldkit.screens.issue, fieldkit.screens.photo, fieldkit.screens.help\n"
                           "print('textual_image' in sys.modules, 'PIL' in sys.modules)"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stdout + done.stderr
