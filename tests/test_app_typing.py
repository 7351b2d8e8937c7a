"""Keys typed fast, in bursts, land where the person meant: the municipality box, the filters,
the highlighted row, a note filled in for them.

A burst is keys posted to the app all at once, as a terminal delivers keys typed ahead on a
busy laptop (Pilot's ``press`` waits between keys, which hides these races).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual import events

from fieldkit.register import Register
from fieldkit.screens.capture import CaptureScreen
from fieldkit.screens.issue import IssueScreen
from fieldkit.screens.register import RegisterScreen
from test_app_helpers import app_on, screen_text, settle

SIZE = (100, 30)

pytestmark = pytest.mark.anyio


def burst(app, *keys: str) -> None:
    """Keys arriving together, as typed ahead."""
    for key in keys:
        character = key if len(key) == 1 else (" " if key == "space" else None)
        event = events.Key(key, character)
        event.set_sender(app)
        app._driver.send_message(event)


async def test_after_picking_a_municipality_the_next_keys_go_to_the_ward(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        await pilot.press(*"buf", "enter")
        await pilot.pause()
        form = app.screen
        box = form.query_one("#municipality-input")
        assert box.cursor_position == len(box.value), "the cursor sits at the end of the chosen municipality"
        assert form.focused.id == "ward", "after a pick the next field has the keyboard"
        await pilot.press(*"12")
        await settle(pilot)
        assert box.value == "BUF Buffalo City (EC, metro)"
        assert form.query_one("#ward").value == "12"
        assert form.query_one("#municipality").value == "BUF"


async def test_keys_typed_ahead_in_the_filters_are_all_applied_in_order(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        burst(app, "f", "space", "down", "space")
        await settle(pilot)
        statuses = app.screen.query_one("#statuses")
        assert set(statuses.selected) == {"new", "acknowledged"}, "space, down, space ticks the first two statuses"


async def test_a_note_typed_straight_after_N_lands_in_the_note(fixed: Register) -> None:
    app = app_on(fixed)
    issue_id = next(r.id for r in fixed.find() if r.title.startswith("Clinic"))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_issue(issue_id)
        await settle(pilot)
        burst(app, "N", *"Tank empty")
        await settle(pilot)
        assert app.screen.query_one("#note-text").text == "Tank empty"


async def test_enter_opens_the_row_highlighted_on_screen_after_clearing_filters(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        register_screen = app.screen
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("down", "down", "down", "space", "ctrl+s")  # escalated only
        await pilot.pause(0.15)
        await settle(pilot)
        issues = register_screen.issues
        old_top = issues.rows[0].id
        await pilot.press("down")
        burst(app, "c", "home", "enter")  # clear, to the top, open: typed ahead of the answer
        await settle(pilot)
        await pilot.pause(0.1)
        await settle(pilot)
        assert isinstance(app.screen, IssueScreen)
        opened = app.screen.issue_id
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, RegisterScreen)
        assert len(issues.rows) == 8
        assert issues.cursor == 0
        assert opened == issues.rows[0].id, f"enter opened {fixed.issue_values(opened)['ref']}, the top row is {issues.rows[0].ref}"
        assert opened != old_top


async def test_the_duplicate_note_has_the_cursor_where_typing_continues(fixed: Register) -> None:
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, CaptureScreen)
        form.query_one("#municipality").set_value("BUF")
        form.query_one("#sector").value = "water"
        await pilot.pause()
        form.query_one("#title").value = "Water pipe burst in Oxford St"
        form.query_one("#lat").value = "-33.0155"
        form.query_one("#lon").value = "27.9117"
        await pilot.pause(0.4)
        await settle(pilot)
        await pilot.press("ctrl+o", "enter")
        await settle(pilot)
        await pilot.press(*" near the rank")
        await pilot.pause()
        assert app.screen.query_one("#note-text").text == "Water pipe burst in Oxford St near the rank"
        assert "Oxford St near the rank" in screen_text(app)


async def test_the_highlighted_row_stays_on_screen_when_the_filters_are_cleared(fixed: Register) -> None:
    """The kept highlight moved far down the longer list, but the list did not scroll: enter opened an unseen row."""
    for number in range(40):
        fixed.create_issue({"municipality": "BUF", "sector": "roads", "title": f"Pothole number {number}", "severity": "low"})
    app = app_on(fixed)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        issues = app.screen.issues
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("down", "down", "down", "space", "ctrl+s")  # escalated: two rows, no scrolling
        await pilot.pause(0.15)
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)
        kept = issues.highlighted
        await pilot.press("c")
        await pilot.pause(0.15)
        await settle(pilot)
        assert len(issues.rows) == 48
        assert issues.highlighted.id == kept.id
        assert issues.cursor > 20, "the kept issue is far down the whole register"
        assert kept.ref in screen_text(app), "the highlighted row is on screen"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.issue_id == kept.id


async def test_typing_in_the_form_does_not_lay_the_screen_out_and_long_text_scrolls(fixed: Register, monkeypatch) -> None:
    """Each key used to lay the whole form out again (25-70 ms a key); bench/bench_key_echo.py times it."""
    from textual.screen import Screen

    app = app_on(fixed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        box = app.screen.query_one("#title")
        box.focus()
        await pilot.pause(0.5)
        await settle(pilot)
        layouts = 0
        original = Screen._refresh_layout

        def counting(self, *args, **kwargs):
            nonlocal layouts
            layouts += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Screen, "_refresh_layout", counting)
        text = "Burst bulk main on Oxford Street next to the taxi rank, water everywhere now"
        await pilot.press(*text)
        await pilot.pause()
        assert box.value == text
        assert layouts <= 2, f"{layouts} layouts for {len(text)} keys"
        assert box.scroll_x > 0, "a long title scrolls sideways to keep the cursor in view"
        await pilot.pause(0.1)
        assert "water everywhere now" in screen_text(app)


async def test_a_municipality_picked_with_enter_then_a_ward_typed_straight_after(fixed: Register) -> None:
    """Typed as one burst in tmux: "buf⏎12" left "BUF Buffalo City" shown but nothing chosen, and no ward."""
    app = app_on(fixed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        burst(app, *"buf", "enter", *"12")
        await settle(pilot)
        await pilot.pause(0.1)
        form = app.screen
        assert form.query_one("#municipality").value == "BUF"
        assert form.query_one("#municipality-input").value == "BUF Buffalo City (EC, metro)"
        assert form.query_one("#ward").value == "12"
        assert "Choose a municipality from the list" not in screen_text(app)


async def test_un_ticking_an_action_keeps_its_done_line_in_the_timeline(fixed: Register) -> None:
    app = app_on(fixed)
    issue_id = next(r.id for r in fixed.find() if r.title.startswith("Clinic"))
    fixed.add_action(issue_id, "Deliver a water tank", "CFO", "2026-03-09")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_issue(issue_id)
        await settle(pilot)
        await pilot.press("tab", "x")  # to the actions, tick it off
        await settle(pilot)
        assert "Done: Deliver a water tank" in screen_text(app)
        await pilot.press("x")  # and open it again
        await settle(pilot)
        text = screen_text(app)
        assert fixed.actions(issue_id)[0]["done"] is False
        assert "Done: Deliver a water tank" in text, "un-ticking rewrote the timeline"
        assert "Open again: Deliver a water tank" in text
