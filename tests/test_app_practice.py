"""Made-up issues never leave the laptop and never mix with real ones: the practice register.

First run offers a practice register in a folder of its own, marked on every screen; sync refuses
to run from it; a real ``fieldkit serve`` never receives one of its issues, from the app or from
the command line; going back to the real register finds it exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit import practice
from fieldkit.app import FieldkitApp
from fieldkit.register import Register
from fieldkit.screens.dashboard import DashboardScreen
from fieldkit.screens.first_run import FirstRunScreen
from sync_fixtures import add_user, db_url, serve, server_log  # noqa: F401 - fixtures
from conftest import run_fieldkit
from test_app_helpers import TODAY, screen_text, settle

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


async def first_run_with_practice(pilot) -> None:
    app = pilot.app
    await pilot.pause()
    assert isinstance(app.screen, FirstRunScreen)
    assert app.screen.query_one("#practice").value is False, "practice is a choice, not the default"
    await pilot.press(*"Thandi Mokoena", "enter", *"mbhashe", "enter", "tab", "space", "ctrl+s")
    for _ in range(200):
        await settle(pilot)
        if app.in_practice:
            break
        await pilot.pause(0.1)
    await settle(pilot)


async def test_demo_issues_never_reach_a_real_server(home: Path, db_url: str, serve) -> None:  # noqa: F811
    server = serve(db_url)
    token = add_user(db_url, "thandi", role="facilitator", municipalities=("EC121",))
    real = Register.open(home)
    real.create_issue({"municipality": "EC121", "sector": "water", "title": "A real burst main", "severity": "high"})
    app = FieldkitApp(real, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await first_run_with_practice(pilot)
        assert app.in_practice
        assert app.register.count() == practice.ISSUES
        assert real.count() == 1, "the real register never gets made-up issues"
        assert (home / "practice").is_dir()
        for keys in ((), ("r",), ("r", "enter"), ("y",)):
            await pilot.press("d")
            await settle(pilot)
            for key in keys:
                await pilot.press(key)
                await settle(pilot)
            assert "PRACTICE" in screen_text(app).splitlines()[0], f"not marked after {keys}"
        sync_screen = app.screen
        sync_screen.query_one("#server").value = server.url
        sync_screen.query_one("#token").value = token
        await pilot.press("ctrl+s")
        for _ in range(100):
            await settle(pilot, 1)
            if not sync_screen.running:
                break
        assert "practice register" in screen_text(app)
        assert server_log(db_url) == [], "nothing from the practice register reached the server"

    done = run_fieldkit(home / "practice", "sync", "--server", server.url, "--token", token)
    assert done.returncode != 0 and "practice register" in done.stderr
    assert "Traceback" not in done.stderr
    assert server_log(db_url) == []

    done = run_fieldkit(home, "sync", "--server", server.url, "--token", token)
    assert done.returncode == 0, done.stderr
    sent = server_log(db_url)
    assert len(sent) == 1, "the real register sends its one real issue and nothing else"
    real.close()


async def test_practice_is_left_and_thrown_away_and_the_real_register_is_as_it_was(home: Path) -> None:
    real = Register.open(home)
    app = FieldkitApp(real, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await first_run_with_practice(pilot)
        assert app.in_practice
        await pilot.press("P")
        await settle(pilot)
        await pilot.press("n")  # throw it away
        await settle(pilot)
        assert not app.in_practice
        assert isinstance(app.screen, DashboardScreen)
        assert "PRACTICE" not in screen_text(app)
        assert "open of 0" in screen_text(app)
    assert not practice.exists(home)
    assert real.count() == 0
    real.close()
