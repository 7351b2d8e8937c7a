"""Changes the central store refuses: summarised by the command line, shown as refused (with why) in the app.

A real ``fieldkit serve`` whose account covers EC121 only; the laptop captured issues in NMA too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldkit.app import FieldkitApp
from fieldkit.register import Register
from fieldkit.screens.issue import IssueScreen
from fieldkit.screens.sync import SyncScreen
from conftest import run_fieldkit
from sync_fixtures import add_user, capture, db_url, serve  # noqa: F401 - fixtures
from test_app_helpers import TODAY, screen_text, settle

REFUSED = 12


@pytest.fixture
def laptop(home: Path, db_url: str, serve):  # noqa: F811
    server = serve(db_url)
    token = add_user(db_url, "thandi", role="facilitator", municipalities=("EC121",))
    register = Register.open(home, author="Thandi Mokoena")
    register.save_settings(name="Thandi Mokoena", municipalities=["EC121", "NMA"], first_run_done=True)
    capture(register, REFUSED, municipality="NMA")
    capture(register, 1, municipality="EC121")
    register.close()
    return home, server, token


def test_sync_summarises_refused_changes_by_reason(laptop) -> None:
    home, server, token = laptop
    done = run_fieldkit(home, "sync", "--server", server.url, "--token", token)
    assert done.returncode == 0, done.stderr
    refused_lines = [line for line in done.stdout.splitlines() if "NMA" in line or "refused" in line]
    assert len(refused_lines) <= 4, done.stdout
    assert f"{REFUSED} ×" in done.stdout, done.stdout
    assert f"and {REFUSED - 3} more" in done.stdout
    assert "fieldkit sync --rejected" in done.stdout
    listed = run_fieldkit(home, "sync", "--rejected")
    assert len(listed.stdout.splitlines()) == REFUSED


@pytest.mark.anyio
async def test_the_app_shows_refused_changes_as_refused_with_the_reason(laptop) -> None:
    home, server, token = laptop
    assert run_fieldkit(home, "sync", "--server", server.url, "--token", token).returncode == 0
    register = Register.open(home)
    reasons = {entry["reason"] for entry in register.rejected_ops()}
    assert len(register.rejected_ops()) == REFUSED and len(reasons) == 1
    reason = reasons.pop()
    refused_issue = next(r.id for r in register.find() if r.municipality == "NMA")
    app = FieldkitApp(register, today=TODAY)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert f"✗ {REFUSED} refused" in screen_text(app), "the dashboard says changes were refused"
        app.open_issue(refused_issue)
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        text = " ".join(screen_text(app).replace("▌", " ").split())
        assert "REFUSED by the central server" in text and reason in text
        assert "not yet sent" not in text
        await pilot.press("y")
        for _ in range(100):
            await settle(pilot, 1)
            if isinstance(app.screen, SyncScreen) and not app.screen.running:
                break
        await settle(pilot)
        sync_screen = app.screen
        assert len(sync_screen.refused) == REFUSED
        text = screen_text(app)
        assert f"✗ {REFUSED} changes refused by the central server" in text
        assert reason[:30] in text
        sync_screen.query_one("#refused").focus()
        await pilot.press("ctrl+d")
        await settle(pilot)
        assert len(sync_screen.refused) == REFUSED - 1, "ctrl+d stops sending the highlighted change"
    register.close()
