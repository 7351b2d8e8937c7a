"""Each screen at 80x24 with the fixed register: a picture to compare against, so layout changes are seen.

Update the pictures after a deliberate change with ``pytest tests/test_app_snapshots.py --snapshot-update``
and look at them (tests/__snapshots__/test_app_snapshots/*.svg) before committing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.app import FieldkitApp
from fieldkit.register import Register
from test_app_helpers import TODAY, app_on, fixed_register, settle, south_african_time  # noqa: F401 - a fixture

SIZE = (80, 24)


@pytest.fixture
def app(home: Path, monkeypatch: pytest.MonkeyPatch, south_african_time) -> FieldkitApp:  # noqa: F811
    register = fixed_register(home, monkeypatch)
    yield app_on(register)
    register.close()


def issue_titled(app: FieldkitApp, start: str) -> str:
    return next(row.id for row in app.register.find() if row.title.startswith(start))


def test_first_run(home: Path, snap_compare) -> None:
    register = Register.open(home)
    app = FieldkitApp(register, today=TODAY)

    async def fill_in(pilot) -> None:
        await pilot.press(*"Thandi", "enter", *"mbhashe")

    assert snap_compare(app, terminal_size=SIZE, run_before=fill_in)
    register.close()


def test_dashboard(app: FieldkitApp, snap_compare) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_dashboard_in_sunlight_theme(app: FieldkitApp, snap_compare) -> None:
    async def sunlight(pilot) -> None:
        pilot.app.theme = "fieldkit-sunlight"
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=sunlight)


def test_register_list(app: FieldkitApp, snap_compare) -> None:
    async def open_register(pilot) -> None:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("down")

    assert snap_compare(app, terminal_size=SIZE, run_before=open_register)


def test_issue_detail(app: FieldkitApp, snap_compare) -> None:
    async def open_issue(pilot) -> None:
        await settle(pilot)
        pilot.app.open_issue(issue_titled(pilot.app, "Burst bulk main"))
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_issue)


def test_capture_with_a_wrong_ward(app: FieldkitApp, snap_compare) -> None:
    async def capture(pilot) -> None:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"buffalo", "enter", *"12b")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=capture)


def test_change_status_dialog(app: FieldkitApp, snap_compare) -> None:
    async def status(pilot) -> None:
        await settle(pilot)
        pilot.app.open_issue(issue_titled(pilot.app, "Clinic without water"))
        await settle(pilot)
        await pilot.press("s", "down", "down", "ctrl+s")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=status)


def test_sync(app: FieldkitApp, snap_compare) -> None:
    async def sync_screen(pilot) -> None:
        await settle(pilot)
        await pilot.app.switch_mode("sync")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=sync_screen)


def test_help(app: FieldkitApp, snap_compare) -> None:
    async def help_screen(pilot) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=help_screen)


def test_capture_with_the_keyboard_on_a_choice(app: FieldkitApp, snap_compare) -> None:
    """The focused field shows at a glance: its label is a bar, the choice box fills with the accent."""
    async def capture(pilot) -> None:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"buffalo", "enter", *"12", "tab")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=capture)


def test_issue_detail_with_the_keyboard_on_the_actions(app: FieldkitApp, snap_compare) -> None:
    async def open_issue(pilot) -> None:
        await settle(pilot)
        pilot.app.open_issue(issue_titled(pilot.app, "Burst bulk main"))
        await settle(pilot)
        await pilot.press("tab")
        await settle(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=open_issue)
