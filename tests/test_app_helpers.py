"""Shared by the app's tests: a register with fixed contents, and waiting for the app to settle.

The fixed register is the same on every run and every day (fixed device, ids,
clock, "now" and "today"), so snapshots of the screens do not drift.
"""

from __future__ import annotations

import itertools
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from fieldkit import model
from fieldkit import register as register_module
from fieldkit.app import FieldkitApp
from fieldkit.hlc import ZERO
from fieldkit.register import Register
from fieldkit.store import Store
from textual.worker import WorkerCancelled

TODAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
DEVICE = "00000000000000a1"


class FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return NOW if tz else NOW.replace(tzinfo=None)


def freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fixed ids, clock and 'now' for everything the register stamps."""
    counter = itertools.count(1)

    def fixed_id(now_ms: int | None = None, shard: str | None = None) -> str:
        n = next(counter)
        return f"01900000-{n:04x}-7000-8000-{n:011x}{shard or format(n % 16, 'x')}"

    monkeypatch.setattr(register_module, "new_id", fixed_id)
    monkeypatch.setattr(register_module, "datetime", FrozenDatetime)
    ticks = itertools.count()
    monkeypatch.setattr(model, "now_iso", lambda: (NOW + timedelta(minutes=next(ticks))).isoformat())


@pytest.fixture
def south_african_time(monkeypatch: pytest.MonkeyPatch):
    """Times on screen are local: pin the zone so snapshots read the same on any machine."""
    monkeypatch.setenv("TZ", "Africa/Johannesburg")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fixed_register(home: Path, monkeypatch: pytest.MonkeyPatch) -> Register:
    """A small register in two municipalities, with histories, notes and actions, the same every time."""
    freeze(monkeypatch)
    store = Store(home)
    with store.transaction():
        store.set_local("replica", {"device_id": DEVICE, "clock": ZERO, "next_seq": 1})
    register = Register(store, author="Thandi Mokoena")
    ms = itertools.count(int(NOW.timestamp() * 1000) - 10 * 86_400_000, 60_000)
    register.clock._now = lambda: next(ms)
    register.save_settings(name="Thandi Mokoena", municipalities=["BUF", "EC121"], first_run_done=True)

    def day(weeks_ago: float) -> str:
        return (NOW - timedelta(weeks=weeks_ago)).isoformat()

    issues = [
        ({"municipality": "BUF", "ward": 12, "sector": "water", "category": "burst_main", "title": "Burst bulk main on Oxford Street",
          "severity": "critical", "description": "Water running down Oxford Street; the valve chamber is flooded.",
          "address": "Oxford Street, next to the taxi rank", "lat": -33.0153, "lon": 27.9116, "responsible": "Buffalo City Metro",
          "source": "site_visit", "contact_name": "Sipho Dlamini", "contact_phone": "082 123 4567"}, 6.5,
         [("acknowledged", None, 6), ("escalated", "No response after two follow-ups; escalated to DWS.", 4)]),
        ({"municipality": "BUF", "ward": 12, "sector": "sanitation", "category": "sewer_blockage", "title": "Sewage spilling next to the school",
          "severity": "high", "source": "community_report"}, 5.2, [("acknowledged", None, 5)]),
        ({"municipality": "BUF", "ward": 3, "sector": "electricity", "category": "streetlights", "title": "High-mast light out at the taxi rank",
          "severity": "medium", "source": "imbizo", "source_detail": "Imbizo at Mdantsane hall", "commitment": "Repair within 30 days."}, 4.1,
         [("in_progress", None, 3)]),
        ({"municipality": "EC121", "ward": 5, "sector": "water", "category": "no_supply", "title": "No water in ward 5 for 12 days",
          "severity": "critical", "responsible": "Amathole District Municipality",
          "needs": [{"kind": "skills", "detail": "Process controller training", "support_from": "Amatola Water"}]}, 3.3,
         [("acknowledged", None, 3), ("in_progress", None, 2)]),
        ({"municipality": "EC121", "ward": 9, "sector": "roads", "category": "potholes", "title": "Potholes on the R61 turn-off",
          "severity": "low"}, 2.4, [("acknowledged", None, 2), ("in_progress", None, 1.5), ("resolved", None, 1)]),
        ({"municipality": "EC121", "ward": 2, "sector": "waste", "category": "missed_collection", "title": "Refuse not collected for 3 weeks",
          "severity": "high"}, 1.6, [("escalated", "The contractor has left; escalated to the municipal manager.", 1)]),
        ({"municipality": "BUF", "ward": 20, "sector": "housing", "category": "house_defects", "title": "Cracks in subsidised houses",
          "severity": "medium"}, 0.8, [("resolved", None, 0.5), ("closed", "Confirmed fixed on a site visit.", 0.3)]),
        ({"municipality": "EC121", "ward": 11, "sector": "facilities", "category": "clinic", "title": "Clinic without water",
          "severity": "high"}, 0.4, []),
    ]
    ids = []
    for fields, weeks_ago, history in issues:
        values = register.create_issue(fields, at=day(weeks_ago))
        ids.append(values["id"])
        for status, note, when in history:
            register.change_status(values["id"], status, note, at=day(when))
    register.add_note(ids[0], "Met the technical services manager on site; parts are on order.", at=day(5))
    register.add_action(ids[0], "Get a written repair plan with dates", "Technical Services manager", (TODAY - timedelta(days=6)).isoformat())
    register.add_action(ids[0], "Report back at the next imbizo", "Ward councillor", (TODAY + timedelta(days=3)).isoformat())
    done = register.add_action(ids[3], "Confirm budget with the CFO", "CFO", (TODAY - timedelta(days=10)).isoformat())
    register.set_action_done(done["id"])
    register.add_action(ids[5], "Find a new refuse contractor", "Municipal manager", (TODAY - timedelta(days=2)).isoformat())
    return register


def app_on(register: Register) -> FieldkitApp:
    return FieldkitApp(register, today=TODAY)


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Let workers finish and their results reach the screen (a result may start another worker)."""
    from textual.widgets import DirectoryTree

    for _ in range(rounds):
        # A folder tree's loader waits for folders to open for as long as the tree is shown: not waited for
        # (and an empty list would make Textual wait for every worker).
        waited = [worker for worker in pilot.app.workers if not isinstance(worker.node, DirectoryTree)]
        try:
            if waited:
                await pilot.app.workers.wait_for_complete(waited)
        except WorkerCancelled:
            pass  # replaced by a newer one of its group, which is waited for next round
        await pilot.pause()


def screen_text(app: FieldkitApp) -> str:
    """What the terminal shows, as plain text (for asserting on words, not pixels)."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, color_system="truecolor",
                      record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


def test_fixed_register_is_the_same_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = fixed_register(tmp_path / "a", monkeypatch)
    second = fixed_register(tmp_path / "b", monkeypatch)
    rows = [(r.ref, r.title, r.status, r.updated_at) for r in first.find()]
    assert rows == [(r.ref, r.title, r.status, r.updated_at) for r in second.find()]
    assert len(rows) == 8
    first.close()
    second.close()
