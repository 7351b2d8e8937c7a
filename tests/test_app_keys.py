"""Every key the footer offers, pressed on every screen: none ends the app; the view keys go to their view.

Each place is reached the way a person reaches it (keys from the dashboard); for each key
its footer shows, a fresh app goes there and presses it. A place that needs something in the
register (a photo to look at) has it put there first, through the real code. The app must still be running, with
no "Something went wrong" message, and ``d`` / ``r`` must show the dashboard / the register.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.app import FieldkitApp
from fieldkit.register import Register
from fieldkit.screens.dashboard import DashboardScreen
from fieldkit.screens.register import RegisterScreen
from test_app_helpers import app_on, settle

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


#: Each place in the app, and the keys that reach it from the dashboard just after start.
PLACES = {
    "dashboard": (),
    "issue from the dashboard": ("tab", "enter"),
    "register": ("r",),
    "issue from the register": ("r", "enter"),
    "issue from the register, then the dashboard": ("r", "enter", "d"),
    "sync": ("y",),
    "lessons": ("L",),
    "lessons over the register": ("r", "L"),
    "reports": ("R",),
    "capture": ("n",),
    "help": ("question_mark",),
    "help over an issue": ("r", "enter", "question_mark"),
    "filters": ("r", "f"),
    "sort": ("r", "o"),
    "status dialog": ("r", "enter", "s"),
    "note dialog": ("r", "enter", "N"),
    "action dialog": ("r", "enter", "a"),
    "photo preview": ("r", "enter", "p"),
}


def with_photos(register: Register, folder: Path) -> None:
    """Two photos on every issue, so the preview opens from any of them and steps between its photos."""
    from fieldkit.attachments import attach
    from photo_files import phone_photo

    photos = [phone_photo(folder / f"site-{n}.jpg", width=640, height=480, seed=n) for n in (1, 2)]
    for row in register.find():
        for photo in photos:
            attach(register, row.id, photo, caption="Burst main at the school gate")


#: What a place needs in the register before the app starts.
PREPARE = {"photo preview": with_photos}


@pytest.fixture
def prepared(fixed: Register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fixed register, made ready for a place; "open in the system's viewer" copies go to the test's folder."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def prepare(place: str) -> Register:
        if place in PREPARE:
            PREPARE[place](fixed, tmp_path)
        return fixed

    return prepare

#: Keys that end the app on purpose: pressed once, at the end, where offered.
LEAVING = {"q", "ctrl+q"}


def footer_keys(app: FieldkitApp) -> list[str]:
    """The keys the footer shows now (the first of each binding's keys)."""
    keys = []
    for active in app.screen.active_bindings.values():
        if active.binding.show and active.enabled:
            keys.append(active.binding.key.split(",")[0])
    return list(dict.fromkeys(keys))


def failures(app: FieldkitApp) -> list[str]:
    return [n.message for n in app._notifications if n.title == "Something went wrong"]


async def go(pilot, keys: tuple[str, ...]) -> None:
    await settle(pilot)
    for key in keys:
        await pilot.press(key)
        await settle(pilot)


async def keys_at(fixed: Register, place: str) -> list[str]:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, PLACES[place])
        keys = footer_keys(app)
        await pilot.press("ctrl+q")
    fixed.clear_draft()
    return keys


@pytest.mark.parametrize("place", PLACES)
async def test_every_footer_key_on_every_screen_leaves_the_app_running(prepared, place: str) -> None:
    fixed = prepared(place)
    keys = await keys_at(fixed, place)
    assert keys, f"the footer on {place} offers no key"
    for key in keys:
        if key in LEAVING:
            continue
        app = app_on(fixed)
        async with app.run_test(size=SIZE) as pilot:
            await go(pilot, PLACES[place])
            await pilot.press(key)
            await settle(pilot)
            await pilot.pause(0.1)
            await settle(pilot)
            assert app.is_running, f"{key} on {place} ended the app"
            assert app.return_value is None, f"{key} on {place} ended the app"
            assert not failures(app), f"{key} on {place}: {failures(app)}"
            await pilot.press("ctrl+q")
        assert app._exception is None, f"{key} on {place} raised {app._exception!r}"
        fixed.clear_draft()


@pytest.mark.parametrize("place", [p for p in PLACES if "dialog" not in p and p not in ("capture", "reports", "filters", "sort")])
@pytest.mark.parametrize(("key", "view"), [("d", DashboardScreen), ("r", RegisterScreen)])
async def test_view_keys_go_to_their_view_from_every_screen(prepared, place: str, key: str, view: type) -> None:
    app = app_on(prepared(place))
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, PLACES[place])
        if key not in footer_keys(app):  # a box or the help has the keyboard: escape hands it back
            await pilot.press("escape")
            await settle(pilot)
            assert key in footer_keys(app), f"{key} is not offered on {place}, even after escape"
        await pilot.press(key)
        await settle(pilot)
        assert isinstance(app.screen, view), f"{key} from {place} shows {type(app.screen).__name__} ({app.screen.sub_title})"
        again = "r" if key == "d" else "d"
        await pilot.press(again, key)
        await settle(pilot)
        assert isinstance(app.screen, view), f"{again} then {key} from {place} shows {type(app.screen).__name__}"


async def test_search_key_from_an_opened_issue_searches_the_register(fixed: Register) -> None:
    """The crash in the issue: r, enter, / ended the app with an AttributeError."""
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, ("r", "enter"))
        await pilot.press("slash", *"sewage")
        await pilot.pause(0.2)
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert app.screen.query_one("#search").value == "sewage"
        assert [row.title for row in app.screen.issues.rows] == ["Sewage spilling next to the school"]
    assert app._exception is None


@pytest.mark.parametrize("place", ["dashboard", "register", "issue from the register", "lessons"])
async def test_help_and_quit_stay_in_the_footer_at_80_columns(fixed: Register, place: str) -> None:
    from test_app_helpers import screen_text

    app = app_on(fixed)
    async with app.run_test(size=(80, 24)) as pilot:
        await go(pilot, PLACES[place])
        footer = screen_text(app).rstrip("\n").splitlines()[-1]
        assert "? Help" in footer and "q Quit" in footer, f"{place}: {footer!r}"


async def test_the_command_palette_lists_each_command_once(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
        assert "Theme" in titles


async def test_help_and_quit_stay_in_the_footer_of_a_form(fixed: Register) -> None:
    from test_app_helpers import screen_text

    app = app_on(fixed)
    async with app.run_test(size=(80, 24)) as pilot:
        await go(pilot, PLACES["capture"])
        footer = screen_text(app).rstrip("\n").splitlines()[-1]
        assert "f1 Help" in footer and "^q Quit" in footer, footer
        await pilot.press("escape")
        await settle(pilot)
        footer = screen_text(app).rstrip("\n").splitlines()[-1]
        assert "f1" not in footer and "^q" not in footer, f"one Help and one Quit on the dashboard: {footer}"
