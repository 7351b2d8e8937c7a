"""Bundles from the app's sync screen: written to a stick it finds, taken in after showing what they hold.

Real registers (two or three laptops, each in its own folder), real bundles written by the
real code, a real ``fieldkit serve`` for the receipts; the stick is a folder under
``$FIELDKIT_DRIVES_ROOT``, the one thing stood in for.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from conftest import run_fieldkit
from fieldkit import bundle_sync, drives
from fieldkit.app import FieldkitApp
from fieldkit.bundles import BundleError
from fieldkit.register import Register
from fieldkit.screens.bundle_path import BundlePathScreen
from fieldkit.screens.dialogs import ChoiceScreen, ConfirmScreen
from fieldkit.screens.register import RegisterScreen
from fieldkit.screens.sync import LOOK_FOR_STICKS_S, SyncScreen
from fieldkit.server.db import Database
from fieldkit.sync import sync
from sync_fixtures import Central, ServerProcess, add_user, open_laptop
from test_app_helpers import TODAY, screen_text, settle

SIZE = (110, 44)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One real central store (SQLite) for the module's tests, each with its own accounts and laptops."""
    folder = tmp_path_factory.mktemp("central")
    url = f"sqlite:///{folder / 'central.sqlite3'}"
    Database(url).migrate()
    server = ServerProcess(url, folder).start()
    yield Central(url, server)
    server.stop()


def plug_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder standing in for a USB stick the desktop mounted under /mnt."""
    root = tmp_path / "drives"
    stick = root / "mnt" / "STICK"
    stick.mkdir(parents=True)
    monkeypatch.setenv(drives.ROOT_VARIABLE, str(root))
    return stick


def laptop(folder: Path, name: str) -> Register:
    register = open_laptop(folder, name)
    register.save_settings(name=name, municipalities=["EC121"], first_run_done=True)
    return register


def online_once(register: Register, store: Central) -> None:
    """The first online sync: the laptop's bundle key goes to its account, the store's key comes back."""
    token = add_user(store.db_url, f"fac-{secrets.token_hex(4)}", "facilitator", ("EC121",))
    result = sync(register, server=store.url, token=token)
    assert result.finished, result.error


def introduce(one: Register, other: Register, one_name: str, other_name: str) -> None:
    bundle_sync.trust(one, bundle_sync.public_key(other).line(), other_name)
    bundle_sync.trust(other, bundle_sync.public_key(one).line(), one_name)


def new_issue(register: Register, title: str) -> str:
    return register.create_issue({"municipality": "EC121", "sector": "water", "title": title})["id"]


def words(app: FieldkitApp) -> str:
    """What the screen shows, as one line of words: boxes and wrapping taken away."""
    text = screen_text(app)
    for mark in "│▊▎▌▐":
        text = text.replace(mark, " ")
    return " ".join(text.split())


async def to_sync(pilot) -> SyncScreen:
    await settle(pilot)
    await pilot.app.show_view("sync")
    await settle(pilot)
    assert isinstance(pilot.app.screen, SyncScreen)
    return pilot.app.screen


async def choose_bundle(pilot, path: Path) -> None:
    """ctrl+o, then the bundle typed in the path box, as a facilitator pastes it."""
    await pilot.press("ctrl+o")
    await pilot.pause(0.3)  # the folder tree's loader lives as long as the dialog: not settle()
    assert isinstance(pilot.app.screen, BundlePathScreen)
    pilot.app.screen.query_one("#path").value = str(path)
    await pilot.press("ctrl+s")
    await settle(pilot)


def titles(register: Register) -> list[str]:
    register.refresh()
    return [row.title for row in register.find()]


# -- finding sticks ----------------------------------------------------------------------------


def test_sticks_are_found_where_desktops_mount_them(tmp_path: Path) -> None:
    root = tmp_path / "machine"
    mounted = {root / "media" / "thandi" / "KINGSTON", root / "run" / "media" / "thandi" / "SD CARD", root / "mnt" / "usb",
               root / "mnt" / "wsl", root / "Volumes" / "STICK"}
    for folder in [*mounted, root / "mnt" / "old-backup", root / "media" / "thandi" / ".hidden", root / "media" / "sipho" / "THEIRS"]:
        folder.mkdir(parents=True)
    (root / "Volumes" / "Macintosh HD").symlink_to(root)

    def is_mount(path: Path) -> bool:
        return path in mounted

    linux = drives.find(root, user="thandi", system="linux", is_mount=is_mount)
    assert [(d.name, d.path) for d in linux] == [
        ("KINGSTON", root / "media" / "thandi" / "KINGSTON"), ("SD CARD", root / "run" / "media" / "thandi" / "SD CARD"),
        ("usb", root / "mnt" / "usb")]
    mac = drives.find(root, user="thandi", system="darwin", is_mount=is_mount)
    assert [d.name for d in mac] == ["STICK"]
    assert drives.find(tmp_path / "nothing-here", user="thandi", system="linux") == []


def test_the_drives_root_stands_a_folder_in_for_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    assert [(d.name, d.path) for d in drives.plugged_in()] == [("STICK", stick)]


# -- writing a bundle --------------------------------------------------------------------------


async def test_a_bundle_is_written_to_the_stick_found_and_says_what_it_holds(store, tmp_path: Path, monkeypatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    thandi = laptop(tmp_path / "thandi", "Thandi Mokoena")
    online_once(thandi, store)
    issue = new_issue(thandi, "Burst main at Dutywa")
    thandi.add_note(issue, "The valve chamber is flooded")
    app = FieldkitApp(thandi, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await to_sync(pilot)
        assert "On USB stick STICK" in words(app) and "no bundles yet" in words(app)
        await pilot.press("ctrl+b")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        assert f"USB stick STICK ({stick})" in words(app) and "A folder I choose" in words(app)
        await pilot.press("enter")
        await settle(pilot)
        (written,) = stick.iterdir()
        shown = words(app)
        assert f"Wrote {written.name} in {stick}: 2 changes (1 issue, 1 note), for the central store." in shown
        assert f"{written.name} — from this laptop" in shown, "the bundle is listed on the stick"
        assert "2 changes in it still wait for the central store's receipt" in shown

        shared = tmp_path / "shared folder"
        shared.mkdir()
        await pilot.press("ctrl+b")
        await settle(pilot)
        await pilot.press("down", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, BundlePathScreen)
        app.screen.query_one("#path").value = f"'{shared}'"  # as a terminal pastes a dropped folder
        await pilot.press("ctrl+s")
        await settle(pilot)
        (also,) = shared.iterdir()
        assert f"Wrote {also.name} in {shared}" in words(app)
    assert thandi.settings()["bundle_folder"] == str(shared)
    thandi.close()

    taken = run_fieldkit(tmp_path / "operator", "server", "bundle-in", str(written), "--db", store.db_url)
    assert taken.returncode == 0, taken.stderr
    assert "2 changes, 2 new, 0 already here" in taken.stdout, "the central store reads what the app wrote"


async def test_a_laptop_that_never_synced_is_told_how_to_learn_the_stores_key(tmp_path: Path, monkeypatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    thandi = laptop(tmp_path / "thandi", "Thandi Mokoena")
    new_issue(thandi, "Burst main at Dutywa")
    app = FieldkitApp(thandi, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await to_sync(pilot)
        await pilot.press("ctrl+b")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert "No bundle written: this laptop does not know the central store's key yet: sync online once" in words(app)
        assert "--for" not in words(app)
    assert list(stick.iterdir()) == [] and thandi.waiting_count() == 1
    thandi.close()


# -- taking bundles in -------------------------------------------------------------------------


async def test_a_bundle_from_another_laptop_comes_in_once_however_often_it_is_taken_in(tmp_path: Path, monkeypatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    thandi, sipho = laptop(tmp_path / "thandi", "Thandi Mokoena"), laptop(tmp_path / "sipho", "Sipho Dlamini")
    introduce(thandi, sipho, "Thandi", "Sipho")
    new_issue(sipho, "Sewage spill near the clinic")
    bundle, _ = bundle_sync.write_to(sipho, stick)
    app = FieldkitApp(thandi, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.show_view("register")
        await settle(pilot)
        assert "Sewage spill near the clinic" not in words(app)
        screen = await to_sync(pilot)
        assert f"{bundle.name} — from laptop Sipho" in words(app) and "1 new here, 0 already here" in words(app)

        await choose_bundle(pilot, bundle)
        assert isinstance(app.screen, ConfirmScreen), "what it holds is shown before anything is applied"
        shown = words(app)
        assert "changes from laptop Sipho by Sipho Dlamini, made" in shown and "1 change (1 issue)" in shown
        assert "Sewage spill near the clinic" not in titles(thandi)
        await pilot.press("y")
        await settle(pilot)
        assert "Took in the bundle from Sipho (by Sipho Dlamini, made" in words(app)
        assert "1 change, 1 new, 0 already here" in words(app)
        await app.show_view("register")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen) and "Sewage spill near the clinic" in words(app)

        await to_sync(pilot)
        assert "0 new here, 1 already here" in words(app)
        screen.query_one("#bundles").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert "1 change, 0 new, 1 already here" in words(app)
    assert titles(thandi).count("Sewage spill near the clinic") == 1
    thandi.close()
    sipho.close()


def tampered(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


@pytest.mark.parametrize(("case", "said"), [
    ("altered", "was altered after it was made"),
    ("cut short", "is cut short"),
    ("from a laptop never introduced", "this laptop has not been introduced to laptop"),
])
async def test_a_bundle_that_cannot_come_in_says_why_in_one_line_and_nothing_is_applied(
        case: str, said: str, tmp_path: Path, monkeypatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    thandi, sipho = laptop(tmp_path / "thandi", "Thandi Mokoena"), laptop(tmp_path / "sipho", "Sipho Dlamini")
    if case == "from a laptop never introduced":
        bundle_sync.trust(sipho, bundle_sync.public_key(thandi).line(), "Thandi")  # sealed for Thandi, who never trusted Sipho
    else:
        introduce(thandi, sipho, "Thandi", "Sipho")
    new_issue(sipho, "Sewage spill near the clinic")
    bundle, _ = bundle_sync.write_to(sipho, stick)
    if case == "altered":
        tampered(bundle)
    elif case == "cut short":
        cut_short(bundle)
    app = FieldkitApp(thandi, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await to_sync(pilot)
        assert said in words(app), "the list on the stick says it already"
        await choose_bundle(pilot, bundle)
        assert isinstance(app.screen, SyncScreen), "nothing to confirm: it cannot come in"
        assert f"Not taken in: {bundle.name if case != 'from a laptop never introduced' else 'refused'}" in words(app)
        assert said in words(app)
        result = app.screen.query_one("#bundle-result")
        assert result.has_class("-problem") and len(str(result.render()).splitlines()) <= 3
    assert titles(thandi) == []
    thandi.close()
    sipho.close()


async def test_a_receipt_carried_back_shows_on_the_stick_and_empties_the_outbox(store, tmp_path: Path, monkeypatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    thandi = laptop(tmp_path / "thandi", "Thandi Mokoena")
    online_once(thandi, store)
    new_issue(thandi, "Burst main at Dutywa")
    app = FieldkitApp(thandi, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await to_sync(pilot)
        assert "↑ 1 waiting" in words(app)
        await pilot.press("ctrl+b")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        (written,) = stick.iterdir()

        # at the office, the operator takes it in; the receipt is written beside it on the stick
        at_office = run_fieldkit(tmp_path / "operator", "server", "bundle-in", str(written), "--db", store.db_url)
        assert at_office.returncode == 0, at_office.stderr
        receipt = stick / written.name.replace(".fkbundle", ".receipt.fkbundle")
        assert receipt.is_file()

        for _ in range(int(LOOK_FOR_STICKS_S * 10) + 20):  # the screen looks again by itself, no key pressed
            await pilot.pause(0.1)
            if "waiting to be taken in" in words(app):
                break
        await settle(pilot)
        assert f"{receipt.name} — receipt from the central store" in words(app)
        assert "waiting to be taken in: takes 1 change out of the outbox" in words(app)

        options = screen.query_one("#bundles")
        options.focus()
        options.highlighted = [b.path for b in screen.bundles].index(receipt)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "receipt from the central store, made" in words(app) and "1 acknowledgement, 0 refusals" in words(app)
        await pilot.press("y")
        await settle(pilot)
        assert "Took in the central store's receipt" in words(app) and "1 change acknowledged" in words(app)
        assert "↑ 0 waiting" in words(app)
        assert "already taken in: it changes nothing here" in words(app)
    assert thandi.waiting_count() == 0
    thandi.close()

    shown = run_fieldkit(tmp_path / "thandi", "bundle", "show", str(receipt))
    assert shown.returncode == 0, shown.stderr
    assert "receipt from the central store" in shown.stdout and "already taken in" in shown.stdout


# -- the practice register ---------------------------------------------------------------------------


async def test_bundles_are_refused_in_the_practice_register(tmp_path: Path, monkeypatch) -> None:
    stick = plug_in(tmp_path, monkeypatch)
    sipho = laptop(tmp_path / "sipho", "Sipho Dlamini")
    trying = laptop(tmp_path / "practice", "Thandi Mokoena")
    trying.save_settings(practice=True)
    bundle_sync.trust(trying, bundle_sync.public_key(sipho).line(), "Sipho")
    bundle_sync.trust(sipho, bundle_sync.public_key(trying).line(), "Thandi")
    new_issue(sipho, "Sewage spill near the clinic")
    new_issue(trying, "A made-up issue")
    bundle, _ = bundle_sync.write_to(sipho, stick)
    with pytest.raises(BundleError, match="this is the practice register"):
        bundle_sync.make_bundle(trying)
    with pytest.raises(BundleError, match="this is the practice register"):
        bundle_sync.take_in(trying, bundle.read_bytes())
    app = FieldkitApp(trying, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await to_sync(pilot)
        assert "Bundles are not for the practice register" in words(app)
        for key in ("ctrl+b", "ctrl+o"):
            await pilot.press(key)
            await settle(pilot)
            assert isinstance(app.screen, SyncScreen), f"{key} offers nothing in the practice register"
            assert "Not done: this is the practice register" in words(app)
    assert list(stick.iterdir()) == [bundle]
    assert "Sewage spill near the clinic" not in titles(trying)
    trying.close()
    sipho.close()
