"""The field app driven by its keys, as a facilitator uses it: every flow from first start to quitting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fieldkit.app import FieldkitApp
from fieldkit.hlc import ZERO
from fieldkit.register import Register
from fieldkit.screens.capture import CaptureScreen
from fieldkit.screens.dashboard import DashboardScreen
from fieldkit.screens.dialogs import ConfirmScreen
from fieldkit.screens.first_run import FirstRunScreen
from fieldkit.screens.help import HelpScreen
from fieldkit.screens.issue import IssueScreen
from fieldkit.screens.register import RegisterScreen
from fieldkit.widgets.register_list import RegisterList
from test_app_helpers import TODAY, app_on, screen_text, settle

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


def rendered(renderable) -> str:
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


def issue_titled(register: Register, start: str) -> str:
    return next(r.id for r in register.find() if r.title.startswith(start))


async def open_issue(pilot, issue_id: str) -> None:
    """Start the app, then open one issue's detail screen."""
    await settle(pilot)
    pilot.app.open_issue(issue_id)
    await settle(pilot)


async def search_for(pilot, words: str) -> RegisterList:
    await pilot.press("slash", *words)
    await pilot.pause(0.15)
    await settle(pilot)
    return pilot.app.screen.query_one(RegisterList)


async def test_first_run_asks_once_and_keeps_the_register_empty(home: Path) -> None:
    register = Register.open(home)
    app = FieldkitApp(register, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FirstRunScreen)
        await pilot.press("ctrl+s")
        assert "name is needed" in screen_text(app)
        await pilot.press(*"Thandi Mokoena", "enter")
        await pilot.press(*"mbhashe", "enter")
        await pilot.press(*"buffalo", "enter")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        assert "Thandi Mokoena" in screen_text(app)
    settings = register.settings()
    assert settings["name"] == "Thandi Mokoena"
    assert settings["municipalities"] == ["EC121", "BUF"]
    assert settings["first_run_done"] is True
    assert register.count() == 0, "nothing made up goes into the real register"
    register.close()

    again = Register.open(home)
    app = FieldkitApp(again, today=TODAY)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
    again.close()


async def test_capture_shows_the_models_message_then_saves_once_fixed_and_search_finds_it(fixed: Register) -> None:
    app = app_on(fixed)
    before = fixed.count()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, CaptureScreen)
        await pilot.press(*"mbhashe", "enter")
        await pilot.press(*"ward 4x", "tab")
        await pilot.press("enter", *"wat", "enter", "tab")
        await pilot.press("enter", "down", "down", "enter", "tab")
        await pilot.press(*"Pump stolen")
        assert "Ward must be a whole number" in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, CaptureScreen), "a wrong ward must not be saved"
        assert fixed.count() == before
        assert app.screen.focused.id == "ward"
        await pilot.press("ctrl+u", *"4")
        assert "Ward must be" not in screen_text(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        assert fixed.count() == before + 1
        saved = fixed.issue_values(app.screen.issue_id)
        assert (saved["municipality"], saved["ward"], saved["sector"], saved["category"]) == ("EC121", 4, "water", "burst_main")
        assert saved["title"] == "Pump stolen"
        assert fixed.draft() is None

        await pilot.press("escape")
        issues = await search_for(pilot, "pump")
        assert [row.title for row in issues.rows] == ["Pump stolen"]
        assert isinstance(app.screen, RegisterScreen)
        await pilot.press("enter", "enter")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        assert app.screen.issue_id == saved["id"]


async def test_search_by_reference_ward_and_municipality_name(fixed: Register) -> None:
    app = app_on(fixed)
    ref = next(r.ref for r in fixed.find() if r.title.startswith("Potholes"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        issues = await search_for(pilot, ref.lower())
        assert [row.ref for row in issues.rows] == [ref]
        await pilot.press("ctrl+u", *"mbhashe no water")
        await pilot.pause(0.15)
        await settle(pilot)
        assert [row.title for row in issues.rows] == ["No water in ward 5 for 12 days"]
        assert "1 of 8" in screen_text(app)


async def test_change_status_needs_a_note_to_escalate(fixed: Register) -> None:
    app = app_on(fixed)
    issue_id = issue_titled(fixed, "Clinic without water")
    async with app.run_test(size=SIZE) as pilot:
        await open_issue(pilot, issue_id)
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("down", "down")  # New → acknowledged, in progress, escalated
        await pilot.press("ctrl+s")
        assert "Say why when escalating" in screen_text(app)
        assert fixed.issue_values(issue_id)["status"] == "new"
        await pilot.press("enter", *"No reply.", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
    assert fixed.issue_values(issue_id)["status"] == "escalated"
    change = fixed.status_changes(issue_id)[-1]
    assert (change["to_status"], change["note"]) == ("escalated", "No reply.")


async def test_add_a_follow_up_action_then_tick_it_off(fixed: Register) -> None:
    app = app_on(fixed)
    issue_id = issue_titled(fixed, "Clinic without water")
    async with app.run_test(size=SIZE) as pilot:
        await open_issue(pilot, issue_id)
        await pilot.press("a")
        await pilot.pause()
        await pilot.press(*"Water tank", "enter", *"CFO", "enter", *"+7", "enter")
        await settle(pilot)
        actions = fixed.actions(issue_id)
        assert [(a["text"], a["owner"], a["due"], a["done"]) for a in actions] == [("Water tank", "CFO", "2026-03-09", False)]
        assert "due 2026-03-09" in screen_text(app)
        await pilot.press("x")
        await settle(pilot)
        assert fixed.actions(issue_id)[0]["done"] is True
        assert "[x]" in screen_text(app)


async def test_overdue_actions_stand_out_in_words(fixed: Register) -> None:
    app = app_on(fixed)
    issue_id = issue_titled(fixed, "Burst bulk main")
    async with app.run_test(size=SIZE) as pilot:
        await open_issue(pilot, issue_id)
        text = screen_text(app)
        assert "OVERDUE 6d due 2026-02-24" in text
        assert "OVERDUE" not in text.split("Report back at the next imbizo")[0].splitlines()[-1]


async def test_escape_asks_before_throwing_a_form_away(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen), "an untouched form leaves without asking"
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("tab", *"7", "escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, CaptureScreen)
        await pilot.press("escape", "y")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
    assert fixed.draft() is None


async def test_an_issue_that_may_be_the_same_problem_is_offered_and_gets_the_note(fixed: Register) -> None:
    app = app_on(fixed)
    existing = next(r for r in fixed.find() if r.title.startswith("Burst bulk main"))
    before = fixed.count()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        form.query_one("#municipality").set_value("BUF")
        form.query_one("#sector").value = "water"
        await pilot.pause()
        form.query_one("#title").value = "Water pouring out near the taxi rank"
        form.query_one("#lat").value = "-33.0155"
        form.query_one("#lon").value = "27.9117"
        await pilot.pause(0.4)
        await settle(pilot)
        assert [r.id for r in form.candidates] == [existing.id]
        assert "May be the same problem" in screen_text(app)
        await pilot.press("ctrl+o", "enter")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        assert app.screen.issue_id == existing.id
    assert fixed.count() == before
    assert fixed.notes(existing.id)[-1]["text"] == "Water pouring out near the taxi rank"


async def test_a_conflict_from_sync_shows_both_values_and_can_be_settled(fixed: Register) -> None:
    issue = next(r for r in fixed.find() if r.title.startswith("Potholes"))
    fixed.apply_remote([{
        "op_id": "01900000-0000-7000-8000-ffffffffff01", "type": "issue", "id": issue.id, "device": "00000000000000b2",
        "author": "Sipho Dlamini", "hlc": f"{int(time.time() * 1000) + 10**9:016d}:0000:00000000000000b2",
        "fields": {"title": "Potholes on the R61 turn-off and bridge"}, "seen": {"title": ZERO},
    }])
    assert fixed.issue(issue.id).conflicts
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_issue(issue.id)
        await settle(pilot)
        text = screen_text(app)
        assert "Disagreements found by sync" in text
        conflicts = app.screen.query_one("#conflicts")
        shown = str(conflicts.get_option_at_index(0).prompt)
        assert "now “Potholes on the R61 turn-off and bridge” (by Sipho Dlamini)" in shown
        assert "also “Potholes on the R61 turn-off” (by Thandi Mokoena)" in shown
        conflicts.focus()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("down", "enter")  # take the other value
        await settle(pilot)
        assert not fixed.issue(issue.id).conflicts
        assert "Disagreements found by sync" not in screen_text(app)
    assert fixed.issue_values(issue.id)["title"] == "Potholes on the R61 turn-off"


async def test_help_lists_every_key_from_the_bindings(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        text = "".join(rendered(help_screen.query_one(part).content) for part in ("#keys-here", "#keys-elsewhere"))
        for binding in FieldkitApp.BINDINGS:
            assert binding.tooltip in text
        for tooltip in ("Change the status (say why when escalating or closing).", "Check and save the issue.",
                        "Tick off (or un-tick) the highlighted follow-up action.", "Open the highlighted issue: fields, timeline, actions."):
            assert tooltip in text
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DashboardScreen)


async def test_theme_is_switched_and_remembered(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t", "ctrl+t")
        await settle(pilot)
        assert app.theme == "fieldkit-sunlight"
    assert fixed.settings()["theme"] == "fieldkit-sunlight"
    again = app_on(fixed)
    async with again.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert again.theme == "fieldkit-sunlight"


async def test_letter_keys_type_into_forms_instead_of_acting(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("tab", "tab", "q", "y", "n", "slash")  # on the sector list: nothing global fires
        await pilot.pause()
        assert isinstance(app.screen, CaptureScreen)
        assert app.is_running


async def test_command_palette_reaches_the_actions_of_the_keys(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"New", "Search", "Dashboard", "Register", "Sync", "Help", "Quit"} <= titles
        await pilot.press("r")
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Open", "Filters", "Sort", "Edit", "Status", "Action"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"new")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, CaptureScreen)


async def test_filters_and_sort_narrow_and_order_the_register(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("down", "down", "down", "space", "ctrl+s")  # status: escalated
        await pilot.pause(0.15)
        await settle(pilot)
        issues = screen.query_one(RegisterList)
        assert {row.status for row in issues.rows} == {"escalated"}
        assert "status: Escalated" in screen_text(app)
        await pilot.press("c")
        await settle(pilot)
        assert len(issues.rows) == 8
        await pilot.press("o")
        await pilot.pause()
        await pilot.press("end", "up", "up", "enter")  # Title
        await settle(pilot)
        titles = [row.title for row in issues.rows]
        assert titles == sorted(titles, key=str.lower)


async def test_sync_screen_reports_a_server_that_cannot_be_reached(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert "central server's address" in " ".join(n.message for n in app._notifications)
        screen = app.screen
        screen.query_one("#server").value = "http://127.0.0.1:9"
        screen.query_one("#token").value = "not-a-token"
        await pilot.press("ctrl+s")
        for _ in range(100):
            await settle(pilot, 1)
            if not screen.running:
                break
        text = screen_text(app)
        assert "Sync stopped" in text or "Not synced" in text
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, CaptureScreen), "the app stays usable after a failed sync"


CRASHING_CAPTURE = textwrap.dedent('''
    import asyncio, sys, time
    from fieldkit.app import FieldkitApp
    from fieldkit.register import Register
    from fieldkit.screens import capture

    capture.AUTOSAVE_S = 0.3  # the test need not wait the usual three seconds for the draft

    async def main():
        register = Register.open(sys.argv[1])
        app = FieldkitApp(register)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("n")
            await pilot.pause()
            await pilot.press(*"buffalo", "enter", *"12", "tab")
            await pilot.press("tab", "tab", *"Reservoir overflowing")
            while register.draft() is None or register.draft()["values"]["title"] != "Reservoir overflowing":
                await pilot.pause(0.2)
            print("DRAFT KEPT", flush=True)
            time.sleep(60)

    asyncio.run(main())
''')


async def test_a_draft_survives_the_app_being_killed_and_is_offered_back(fixed: Register, home: Path, tmp_path: Path) -> None:
    fixed.close()
    script = tmp_path / "crashing_capture.py"
    script.write_text(CRASHING_CAPTURE)
    here = str(Path(__file__).resolve().parent.parent)  # this checkout's fieldkit, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}
    child = subprocess.Popen([sys.executable, str(script), str(home)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline()
        assert line.strip() == "DRAFT KEPT"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    register = Register.open(home)
    assert register.draft() is not None
    app = app_on(register)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "Reservoir overflowing" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, CaptureScreen)
        assert form.query_one("#title").value == "Reservoir overflowing"
        assert form.query_one("#ward").value == "12"
        assert form.query_one("#municipality").value == "BUF"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert form.query_one("#sector-problem").display, "the sector was never chosen: the form says so"
        form.query_one("#sector").value = "water"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
    assert register.draft() is None
    assert any(r.title == "Reservoir overflowing" for r in register.find())
    register.close()


async def test_quitting_mid_form_keeps_the_draft(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        app.screen.query_one("#title").value = "Streetlights out on Main Road"
        await pilot.pause()
        await pilot.press("ctrl+q")
        await pilot.pause()
    assert fixed.draft()["values"]["title"] == "Streetlights out on Main Road"


async def test_the_register_list_shows_100000_issues_and_reaches_the_last(fixed: Register) -> None:
    """The Line-API list holds 100,000 rows and draws only the visible ones (timed in bench/, not here)."""
    from dataclasses import replace

    template = fixed.find()[0]
    rows = [replace(template, id=f"{n:036d}", ref=f"BUF-26-AAAA-{n:05d}", title=f"Issue number {n}") for n in range(100_000)]
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        issues = app.screen.query_one(RegisterList)
        issues.show_rows(rows)
        await pilot.pause()
        assert "BUF-26-AAAA-00000" in screen_text(app)
        await pilot.press("end")
        await pilot.pause()
        assert issues.cursor == 99_999
        assert "Issue number 99999" in screen_text(app)
        await pilot.press("pageup", "up")
        await pilot.pause()
        assert issues.highlighted.title == f"Issue number {99_999 - issues._page - 1}"


async def test_the_app_makes_the_days_backup_without_holding_up_the_dashboard(home):
    from fieldkit.register import Register

    with Register.open(home, author="Thandi Mokoena") as register:
        register.save_settings(name="Thandi Mokoena", municipalities=["BUF"], first_run_done=True)
        register.create_issue({"municipality": "BUF", "sector": "water", "title": "Burst main"})
    from fieldkit.app import FieldkitApp

    register = Register.open(home)
    app = FieldkitApp(register)
    async with app.run_test() as pilot:
        for _ in range(100):
            await pilot.pause(0.05)
            if register.store.backups.list():
                break
    register.close()
    backups = register.store.backups.list()
    assert len(backups) == 1 and backups[0].name == "backup-000001.sqlite.gz"


async def test_opening_an_issue_and_leaving_it_at_once_never_ends_the_app(home):
    """Textual's header once ended the app when a title changed while its screen was closing."""
    from fieldkit.register import Register

    with Register.open(home, author="Thandi Mokoena") as register:
        register.save_settings(name="Thandi Mokoena", municipalities=["BUF"], first_run_done=True)
        ids = [register.create_issue({"municipality": "BUF", "sector": "water", "title": f"Burst main {n}"})["id"] for n in range(5)]
    from fieldkit.app import FieldkitApp

    register = Register.open(home)
    app = FieldkitApp(register)
    async with app.run_test() as pilot:
        for _ in range(4):
            for issue_id in ids:
                app.open_issue(issue_id)
                await app.show_view("register")
                await app.show_view("dashboard")
        await pilot.pause(0.3)
        assert app.is_running and app.return_code is None
    register.close()
