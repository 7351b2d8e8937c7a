"""Sync against a real ``fieldkit serve`` process while things go wrong: connections cut mid-push and
mid-pull, the store killed and restarted mid-sync, batches sent twice, bad tokens, changes outside
the account's area, a laptop clock in the future, a store reset. Nothing is lost, nothing doubled.

The tests of a module share one server per backend (``central``); each uses new laptops and
accounts, and checks what its own laptops sent.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from pathlib import Path

import pytest

from fieldkit import protocol, refdata
from fieldkit.register import Register
from fieldkit.server.db import Database
from fieldkit.sync import sync, sync_status
from fieldkit.transport import Transport
from sync_fixtures import (  # noqa: F401 - fixtures
    Central,
    CuttingProxy,
    add_user,
    assert_seqs_dense,
    capture,
    central,
    device_ops,
    laptop_states,
    open_laptop,
    serve,
)

DAY_MS = 24 * 3600 * 1000


def assert_stored_once(central: Central, laptop: Register, made: list[str]) -> None:
    """Every change the laptop made is on the store exactly once, and nothing else from it."""
    held = device_ops(central.db_url, laptop.device_id)
    assert len(held) == len(set(held))
    assert set(held) == set(made)
    assert laptop.waiting_count() == 0
    assert_seqs_dense(central.db_url)


def made_on(laptop: Register) -> list[str]:
    return [op["op_id"] for op in laptop.pending_ops()]


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


SPARE = [m.code for m in refdata.municipalities().values() if m.category == "B" and m.province in ("LIM", "MP", "NW")]
random.Random(4).shuffle(SPARE)


@pytest.fixture
def area(central: Central) -> tuple[str, str]:
    """A municipality no other test here uses, and a facilitator's token for it: each test pulls only its own."""
    code = SPARE.pop()
    return code, add_user(central.db_url, name("facilitator"), "facilitator", (code,))


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 100 so that a few hundred issues make several batches and pages: the same code, less waiting."""
    monkeypatch.setattr(protocol, "PUSH_OPS", 100)
    monkeypatch.setattr(protocol, "PULL_PAGE", 100)


@pytest.fixture
def proxy(central: Central):
    cutter = CuttingProxy(central.server.port)
    yield cutter
    cutter.close()


def test_connections_cut_mid_push_and_mid_reply_lose_and_double_nothing(central: Central, proxy: CuttingProxy, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a")
    capture(laptop, 330, code)
    made = made_on(laptop)
    proxy.cut_up = [2_000, 9_000]  # inside the first push's body, then a later one
    proxy.cut_down = [1_500]  # a push reply lost after the store stored the batch
    result = sync(laptop, proxy.url, token)
    assert result.finished, result.error
    assert proxy.cuts == 3, proxy.totals
    assert result.sent == 330
    assert_stored_once(central, laptop, made)


def test_a_connection_cut_mid_pull_costs_at_most_a_page(central: Central, proxy: CuttingProxy, area, tmp_path: Path) -> None:
    code, token = area
    writer = open_laptop(tmp_path / "writer")
    capture(writer, 330, code)
    assert sync(writer, central.url, token).finished
    reader = open_laptop(tmp_path / "reader")
    proxy.cut_down = [3_000, 9_000]
    result = sync(reader, proxy.url, token)
    assert result.finished, result.error
    assert proxy.cuts == 2, proxy.totals
    assert laptop_states(reader) == laptop_states(writer)
    again = sync(reader)
    assert again.finished and again.received == 0


def test_an_unreachable_store_keeps_every_change_for_next_time(central: Central, proxy: CuttingProxy, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a")
    capture(laptop, 12, code)
    made = made_on(laptop)
    proxy.refuse = True
    result = sync(laptop, proxy.url, token)
    assert not result.finished
    assert result.error.startswith(f"cannot reach {proxy.url}: ")
    assert result.error.endswith("; your 12 changes are kept and will be sent next time")
    assert laptop.waiting_count() == 12
    assert sync_status(laptop)["last_error"] == result.error
    proxy.refuse = False
    assert sync(laptop, proxy.url, token).finished
    assert sync_status(laptop)["last_error"] is None
    assert_stored_once(central, laptop, made)


@pytest.mark.parametrize("phase", ["push", "pull"])
def test_the_store_killed_and_restarted_mid_sync(central: Central, area, tmp_path: Path, phase: str) -> None:
    code, token = area
    writer = open_laptop(tmp_path / "writer")
    capture(writer, 330, code)
    made = made_on(writer)
    if phase == "pull":
        assert sync(writer, central.url, token).finished
    laptop = writer if phase == "push" else open_laptop(tmp_path / "reader")
    restarts = []

    def kill_once(progress) -> None:
        if progress.phase == phase and progress.done >= 100 and not restarts:
            restarts.append(progress.done)
            central.server.restart()  # SIGKILL, then start again on the same port and database

    result = sync(laptop, central.url, token, progress=kill_once)
    assert restarts and result.finished, result.error
    assert_stored_once(central, writer, made)
    assert laptop_states(laptop) == laptop_states(writer)


def test_the_store_killed_at_random_moments_loses_nothing(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a")
    chance = random.Random(2026)
    made: list[str] = []
    for _ in range(2):
        capture(laptop, 300, code)
        made += made_on(laptop)
        worker = threading.Thread(target=sync, args=(laptop, central.url, token))
        worker.start()
        time.sleep(chance.uniform(0.1, 0.5))
        central.server.restart()  # the worker's retries meet the restarted store, or give up
        worker.join(60)
        result = sync(laptop, central.url, token)
        assert result.finished, result.error
    assert_stored_once(central, laptop, made)


def test_the_same_batch_sent_twice_is_stored_once(central: Central, tmp_path: Path) -> None:
    laptop = open_laptop(tmp_path / "a")
    capture(laptop, 40)
    ops = laptop.pending_ops()
    with Transport(central.url, central.token) as client:
        first = client.push(ops)
        second = client.push(ops)
    assert first.acknowledged == second.acknowledged == [op["op_id"] for op in ops]
    assert first.first_seq is not None and second.first_seq is None
    assert sorted(device_ops(central.db_url, laptop.device_id)) == sorted(op["op_id"] for op in ops)


def test_a_wrong_or_revoked_token_is_refused_clearly_and_nothing_is_lost(central: Central, tmp_path: Path) -> None:
    who = name("thandi")
    token = add_user(central.db_url, who, "facilitator", ("EC121",))
    laptop = open_laptop(tmp_path / "a")
    capture(laptop, 3)
    wrong = sync(laptop, central.url, "not-a-token")
    assert not wrong.finished
    assert "refused the token" in wrong.error and "does not know this token" in wrong.error
    assert "not-a-token" not in wrong.error
    assert laptop.waiting_count() == 3 and "token" not in laptop.sync_state()
    assert sync(laptop, central.url, token).finished
    Database(central.db_url).revoke_user(who)
    capture(laptop, 2)
    revoked = sync(laptop)
    assert not revoked.finished and f"{who} has been revoked" in revoked.error
    assert token not in revoked.error
    assert laptop.waiting_count() == 2


def test_changes_outside_the_account_are_refused_and_kept_marked(central: Central, tmp_path: Path) -> None:
    who = name("thandi")
    thandi = add_user(central.db_url, who, "facilitator", ("EC121",))
    buffalo = add_user(central.db_url, name("sipho"), "facilitator", ("BUF",))
    coordinator = add_user(central.db_url, name("lindiwe"), "coordinator", provinces=("NC",))
    laptop = open_laptop(tmp_path / "thandi")
    [mine] = capture(laptop, 1, "EC121")
    [theirs] = capture(laptop, 1, "BUF")
    [northern] = capture(laptop, 1, "NC091")
    laptop.add_note(theirs, "Spoke to the ward councillor")
    result = sync(laptop, central.url, thandi)
    assert result.finished and result.sent == 1
    out_of_area = f"the account {who} does not cover BUF (Buffalo City); it covers EC121"
    assert sorted(reason for _, reason in result.rejected) == sorted([
        out_of_area,
        f"it belongs to a change the central store refused: {out_of_area}",
        f"the account {who} does not cover NC091 (Sol Plaatjie); it covers EC121",
    ])
    refused = {entry["op"]["id"]: entry["reason"] for entry in laptop.rejected_ops()}
    assert theirs in refused and northern in refused and len(refused) == 3
    assert laptop.store.get("issue", theirs) is not None  # still on the laptop, marked
    assert len(device_ops(central.db_url, laptop.device_id)) == 1

    other = open_laptop(tmp_path / "sipho")
    assert sync(other, central.url, buffalo).finished
    assert mine not in other.store.documents("issue")
    northern_cape = open_laptop(tmp_path / "lindiwe")
    assert sync(northern_cape, central.url, coordinator).finished
    assert mine not in northern_cape.store.documents("issue")


def test_a_laptop_clock_in_the_future_is_refused_with_the_reason(central: Central, area, tmp_path: Path) -> None:
    code, token = area
    laptop = open_laptop(tmp_path / "a", skew_ms=3 * DAY_MS)
    capture(laptop, 1, code)
    result = sync(laptop, central.url, token)
    assert result.finished and result.sent == 0
    [(what, reason)] = result.rejected
    assert what.startswith(f"new issue {code}-")
    assert "more than a day ahead of the central store's clock" in reason and "correct the laptop's date and time" in reason
    assert len(laptop.rejected_ops()) == 1


def test_a_reset_store_gets_everything_back_from_the_laptops(central: Central, serve, tmp_path: Path) -> None:
    free_state = add_user(central.db_url, name("coordinator"), "coordinator", provinces=("FS",))
    first, second = open_laptop(tmp_path / "a"), open_laptop(tmp_path / "b")
    capture(first, 30, "FS161")
    capture(second, 20, "FS162")
    for laptop in (first, second, first):
        assert sync(laptop, central.url, free_state).finished
    fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    fresh = serve(fresh_url)
    fresh_token = add_user(fresh_url)
    result = sync(first, fresh.url, fresh_token)
    assert result.finished, result.error
    assert any("reset or restored" in notice for notice in result.notices)
    assert sync(second, fresh.url, fresh_token).finished
    assert sync(first).finished
    assert laptop_states(first) == laptop_states(second)
    assert len(laptop_states(first)) == 50
