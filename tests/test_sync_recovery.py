"""Sync recovers on its own from two things that went wrong elsewhere: a laptop whose clock was days
ahead (its refused changes are re-stamped once the clock is right), and a central store restored from
an older copy without ``--new-server-id`` (laptops notice at their cursor and send what it lost)."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import time
from pathlib import Path

from fieldkit.hlc import wall_ms
from fieldkit.sync import sync
from sync_fixtures import (  # noqa: F401 - fixtures
    Central,
    add_user,
    capture,
    central,
    laptop_states,
    open_laptop,
    serve,
    server_states,
)

DAY_MS = 24 * 3600 * 1000


def test_changes_made_while_the_clock_was_days_ahead_go_through_once_it_is_right(central: Central, tmp_path: Path) -> None:
    token = add_user(central.db_url, f"thandi-{secrets.token_hex(3)}", "facilitator", ("EC121",))
    folder = tmp_path / "thandi"
    laptop = open_laptop(folder, skew_ms=3 * DAY_MS)
    first, second = capture(laptop, 2, "EC121")
    laptop.edit_issue(first, {"title": "Burst main on the R61, valve chamber flooded"})
    laptop.add_note(first, "Spoke to the plant superintendent")
    refused = sync(laptop, central.url, token)
    assert refused.finished and refused.sent == 0 and len(refused.rejected) == 5  # the edit comes with its timeline line
    assert all("correct the laptop's date and time" in reason for _, reason in refused.rejected)
    laptop.close()

    laptop = open_laptop(folder)  # the date is put right; the saved clock is still three days ahead
    laptop.change_status(second, "acknowledged")
    result = sync(laptop)
    assert result.finished, result.error
    assert result.rejected == [] and laptop.rejected_ops() == [] and laptop.waiting_count() == 0
    assert result.sent == 7
    [notice] = result.notices
    assert "clock was set about 3 days ahead when 7 changes were made" in notice and "sent again" in notice
    now = int(time.time() * 1000)
    assert wall_ms(laptop.clock.last) < now + 60_000
    for state in laptop_states(laptop).values():
        assert all(wall_ms(stamp) < now + 60_000 for stamp in state["stamps"].values())

    other = open_laptop(tmp_path / "sipho")
    assert sync(other, central.url, token).finished
    assert other.issue_values(first)["title"] == "Burst main on the R61, valve chamber flooded"
    assert other.issue_values(second)["status"] == "acknowledged"
    assert [n["text"] for n in other.notes(first) if not n.get("edit")] == ["Spoke to the plant superintendent"]
    other.edit_issue(first, {"severity": "critical"})  # an edit made now, elsewhere, still wins over the old ones
    assert sync(other).finished and sync(laptop).finished
    assert laptop.issue_values(first)["severity"] == "critical"
    assert laptop_states(laptop) == laptop_states(other)


def test_a_laptop_whose_clock_is_still_wrong_is_not_re_stamped(central: Central, tmp_path: Path) -> None:
    token = add_user(central.db_url, f"thandi-{secrets.token_hex(3)}", "facilitator", ("EC121",))
    laptop = open_laptop(tmp_path / "a", skew_ms=3 * DAY_MS)
    capture(laptop, 1, "EC121")
    assert sync(laptop, central.url, token).sent == 0
    again = sync(laptop)
    assert again.notices == [] and len(laptop.rejected_ops()) == 1


def _backup(db_file: Path, copy: Path) -> None:
    """What an operator does: SQLite's online backup of the live database."""
    with sqlite3.connect(db_file) as source, sqlite3.connect(copy) as target:
        source.backup(target)


def test_a_store_restored_from_an_older_copy_gets_back_what_it_lost(serve, tmp_path: Path) -> None:
    db_file = tmp_path / "central.sqlite3"
    db_url = f"sqlite:///{db_file}"
    server = serve(db_url)
    token = add_user(db_url, "coordinator", "coordinator", provinces=("EC",))
    a, b = open_laptop(tmp_path / "a"), open_laptop(tmp_path / "b")
    capture(a, 3, "EC121")
    capture(b, 2, "EC122")
    for laptop in (a, b, a):
        assert sync(laptop, server.url, token).finished
    _backup(db_file, tmp_path / "backup.sqlite3")

    lost = capture(b, 5, "EC122")  # reach the store after the backup was taken
    assert sync(b).finished and all(issue in server_states(db_url) for issue in lost)

    server.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "backup.sqlite3", db_file)
    server = serve(db_url, server.port)  # restored without --new-server-id
    assert not any(issue in server_states(db_url) for issue in lost)

    capture(a, 10, "EC121")  # a pushes first: the sequence moves past b's cursor
    assert sync(a).finished
    result = sync(b)
    assert result.finished, result.error
    assert any("restored from an older copy" in notice for notice in result.notices), result.notices
    assert all(issue in server_states(db_url) for issue in lost)

    newcomer = open_laptop(tmp_path / "c")
    assert sync(newcomer, server.url, token).finished
    assert sync(a).finished and sync(b).finished
    assert len(newcomer.find()) == 20
    assert laptop_states(a) == laptop_states(b) == laptop_states(newcomer)
