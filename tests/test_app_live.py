"""A running app sees what another process saved, within a second or two, without a key press.

The real command line (``python -m fieldkit add``) writes to the same data folder while the app
runs under Pilot; the dashboard's counts and the register list must show the new issue.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fieldkit.register import Register
from conftest import run_fieldkit
from test_app_helpers import app_on, screen_text, settle

pytestmark = pytest.mark.anyio

#: A person notices "a second or two"; the app looks every second.
WITHIN_S = 3.0


async def add_from_the_command_line(home: Path, title: str) -> None:
    done = await asyncio.to_thread(run_fieldkit, home, "add", "--municipality", "BUF", "--sector", "water", "--title", title)
    assert done.returncode == 0, done.stderr


async def shown_within(pilot, seen, seconds: float = WITHIN_S) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await pilot.pause(0.1)
        if seen():
            return True
    return False


async def test_a_cli_write_shows_in_the_running_app_without_a_key_press(fixed: Register, home: Path) -> None:
    app = app_on(fixed)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert "open of 8" in screen_text(app)
        started = time.monotonic()
        await add_from_the_command_line(home, "Tap leaking at the library")
        assert await shown_within(pilot, lambda: "open of 9" in screen_text(app)), \
            f"the dashboard still counts 8 issues {time.monotonic() - started:.1f} s after fieldkit add"

        await pilot.press("r")
        await settle(pilot)
        issues = app.screen.issues
        await add_from_the_command_line(home, "Reservoir overflowing")
        assert await shown_within(pilot, lambda: "Reservoir overflowing" in screen_text(app)), \
            "the register list does not show the issue added from the command line"
        assert any(r.title == "Reservoir overflowing" for r in issues.rows)
