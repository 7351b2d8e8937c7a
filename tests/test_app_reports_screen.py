"""The Reports screen stays live while it builds, and a scope is chosen only when the person picks it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fieldkit.app import FieldkitApp
from fieldkit.demo import load_demo
from fieldkit.register import Register
from fieldkit.screens.reports import ReportsScreen
from test_app_helpers import screen_text, settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def demo(home: Path) -> Register:
    register = Register.open(home)
    load_demo(register, issues=245, municipalities=["BUF", "EC121", "EC122"])
    register.save_settings(name="Thandi Mokoena", municipalities=["BUF", "DC12", "EC122"], first_run_done=True)
    yield register
    register.close()


async def test_keys_are_handled_at_once_while_the_report_is_built_and_shown(demo: Register) -> None:
    app = FieldkitApp(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        started = time.perf_counter()
        await pilot.press("E")
        took = time.perf_counter() - started
        assert isinstance(app.screen, ReportsScreen)
        assert took < 0.6, f"a key typed while the report was shown took {took:.2f} s"
        await settle(pilot)
        assert "open" in str(app.screen.query_one("#report-understood").content)


async def test_a_partly_typed_scope_is_not_chosen_until_enter(demo: Register) -> None:
    app = FieldkitApp(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("R")
        await settle(pilot)
        screen = app.screen
        before = screen.asked
        await pilot.press(*"Q")
        await pilot.pause(0.6)
        await settle(pilot)
        assert screen.asked == before, "typing Q chose a scope by itself"
        assert "'Q' is not a scope yet" in " ".join(screen_text(app).split())
        await pilot.press("ctrl+u", *"Joe Gqabi", "enter")
        await settle(pilot)
        assert screen.asked.scope.code == "DC14"
        assert screen.query_one("#scope").value == "DC14"
