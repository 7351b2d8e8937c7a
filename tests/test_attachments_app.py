"""Attaching from the issue screen, as a facilitator does it: a key, a path (typed, pasted or dropped), a caption."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.attachments import clean_path, start_folder
from fieldkit.register import Register
from fieldkit.screens.attach import AttachScreen
from fieldkit.screens.dialogs import ConfirmScreen
from fieldkit.screens.issue import IssueScreen
from photo_files import phone_photo
from test_app_helpers import app_on, screen_text, settle

SIZE = (110, 36)

pytestmark = pytest.mark.anyio


def test_a_dropped_or_pasted_path_is_read_as_the_file_it_names(tmp_path: Path) -> None:
    photo = tmp_path / "site visit" / "IMG 0412 (2).jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8\xff")
    for typed in (str(photo), f"'{photo}'", f'"{photo}"  ', photo.as_uri(),
                  str(photo).replace(" ", "\\ ").replace("(", "\\(").replace(")", "\\)"),
                  f"/home/me/Pictures/'{photo}'", f"/home/me/Pictures/{photo}", f"/home/me/Pictures/{photo.as_uri()}"):
        assert clean_path(typed) == photo, typed


def test_the_dialog_opens_in_the_last_folder_else_pictures_else_downloads(tmp_path: Path) -> None:
    (tmp_path / "Downloads").mkdir()
    assert start_folder({}, tmp_path) == tmp_path / "Downloads"
    (tmp_path / "Pictures").mkdir()
    assert start_folder({}, tmp_path) == tmp_path / "Pictures"
    assert start_folder({"attach_folder": str(tmp_path / "gone")}, tmp_path) == tmp_path / "Pictures"
    assert start_folder({"attach_folder": str(tmp_path)}, tmp_path) == tmp_path


async def test_attach_a_photo_from_the_issue_screen_and_take_its_position(fixed: Register, tmp_path: Path) -> None:
    issue_id = next(r.id for r in fixed.find() if r.lat is None)
    photo = phone_photo(tmp_path / "burst.jpg", lat=-32.9712, lon=27.8745)
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_issue(issue_id)
        await settle(pilot)
        assert "No photos or documents yet." in screen_text(app)
        await pilot.press("f")
        await pilot.pause(0.3)  # the folder tree's loader is a worker that lives as long as the dialog: not settle()
        assert isinstance(app.screen, AttachScreen)
        path_box = app.screen.query_one("#path")
        path_box.value = f"'{photo}'"  # as a terminal pastes a dropped file
        await pilot.press("enter")
        await pilot.press(*"Water in the school yard", "enter")
        await pilot.pause(0.3)
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "-32.97120, 27.87450" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        text = screen_text(app)
        assert "burst.jpg" in text and "JPEG photo" in text and "Water in the school yard" in text
    [record] = fixed.attachments(issue_id)
    assert record["caption"] == "Water in the school yard"
    values = fixed.issue_values(issue_id)
    assert (values["lat"], values["lon"]) == pytest.approx((-32.9712, 27.8745), abs=1e-4)
    assert fixed.settings()["attach_folder"] == str(tmp_path)


async def test_a_missing_file_is_said_in_the_dialog_and_nothing_is_attached(fixed: Register, tmp_path: Path) -> None:
    issue_id = next(r.id for r in fixed.find())
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_issue(issue_id)
        await settle(pilot)
        await pilot.press("f")
        await pilot.pause(0.3)  # the folder tree's loader is a worker that lives as long as the dialog: not settle()
        app.screen.query_one("#path").value = str(tmp_path / "nothing-here.jpg")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "There is no file at" in screen_text(app)
        assert isinstance(app.screen, AttachScreen)
    assert fixed.attachments(issue_id) == []
