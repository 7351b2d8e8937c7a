"""The transport and the sync loop on their own: retries with back-off, gzip, the size limit, one-line
errors, progress from a thread. Against the app in this process (the database does not matter here)."""

from __future__ import annotations

import gzip
import threading
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI

from fieldkit.server.accounts import check_account
from fieldkit.server.app import create_app
from fieldkit.server.db import Database
from fieldkit.sync import sync
from fieldkit.transport import Refused, ServerError, Transport, Unreachable
from sync_fixtures import FaultyTransport, ThreadServer, capture, laptop_states, open_laptop


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('transport') / 'central.sqlite3'}")
    server = ThreadServer(create_app(database, max_body=48 * 1024))  # below the largest record the model allows
    server.token = database.add_user(check_account("admin", "admin", [], [])).token
    yield server
    server.stop()


def client(store: ThreadServer, faults: FaultyTransport, retries: int = 3) -> Transport:
    pauses: list[float] = []
    transport = Transport(store.url, store.token, transport=faults, retries=retries, sleep=pauses.append)
    transport.pauses = pauses
    return transport


def test_lost_requests_lost_replies_and_busy_answers_are_retried_with_growing_pauses(store: ThreadServer) -> None:
    faults = FaultyTransport()
    faults.plan = {0: "lose_request", 1: "busy", 2: "lose_reply"}
    with client(store, faults) as transport:
        assert transport.info().user == "admin"
        assert len(transport.pauses) == 3
        assert transport.pauses[0] < transport.pauses[1] < transport.pauses[2]


def test_giving_up_says_why_in_one_line(store: ThreadServer) -> None:
    faults = FaultyTransport()
    faults.plan = {0: "lose_request", 1: "lose_request"}
    with client(store, faults, retries=1) as transport, pytest.raises(Unreachable) as lost:
        transport.info()
    assert str(lost.value) == f"cannot reach {store.url}: injected: the request never arrived"
    faults.plan = {faults.count: "busy", faults.count + 1: "busy"}
    with client(store, faults, retries=1) as transport, pytest.raises(ServerError) as busy:
        transport.info()
    assert "answered 503 (busy or unavailable): the database is not answering" in str(busy.value)
    with Transport(store.url, "wrong") as transport, pytest.raises(Refused) as refused:
        transport.info()
    assert "wrong" not in str(refused.value)


def test_an_address_that_is_not_a_central_store_is_named(tmp_path: Path) -> None:
    other = ThreadServer(FastAPI())
    try:
        with Transport(other.url, "t") as transport, pytest.raises(ServerError) as wrong:
            transport.info()
        assert str(wrong.value) == f"{other.url} is not a fieldkit central store (it has no /sync/info); check the address"
    finally:
        other.stop()


def test_pushes_are_gzipped_and_replies_come_back_compressed(store: ThreadServer, tmp_path: Path) -> None:
    faults = FaultyTransport()
    laptop = open_laptop(tmp_path / "a")
    capture(laptop, 20)
    result = sync(laptop, client=client(store, faults))
    assert result.finished and result.sent == 20
    [push] = [r for r in faults.sent if r.url.path == "/sync/push"]
    assert push.headers["content-encoding"] == "gzip"
    assert len(orjson.loads(gzip.decompress(push.content))["ops"]) == 20
    assert all(r.headers["accept-encoding"] == "gzip" for r in faults.sent)


def test_batches_over_the_size_limit_are_split_and_a_lone_giant_is_refused_but_kept(store: ThreadServer, tmp_path: Path) -> None:
    laptop = open_laptop(tmp_path / "a")
    capture(laptop, 300)
    giant = laptop.create_issue({
        "municipality": "EC121", "sector": "water", "title": "Everything the imbizo asked for",
        "description": "€" * 5000, "commitment": "€" * 5000,
        "needs": [{"kind": "skills", "detail": "€" * 1000, "support_from": "DWS"} for _ in range(10)],
    })
    faults = FaultyTransport()
    result = sync(laptop, client=client(store, faults))
    assert result.finished and result.sent == 300
    assert result.rejected == [(f"new issue {giant['ref']}", "this change is larger than the central store accepts")]
    assert [entry["op"]["id"] for entry in laptop.rejected_ops()] == [giant["id"]]
    assert sum(1 for r in faults.sent if r.url.path == "/sync/push") > 3


def test_sync_runs_in_a_worker_thread_and_reports_progress(store: ThreadServer, tmp_path: Path) -> None:
    writer, reader = open_laptop(tmp_path / "w"), open_laptop(tmp_path / "r")
    capture(writer, 1200)
    seen = []
    worker = threading.Thread(target=lambda: seen.append(sync(writer, store.url, store.token, progress=seen.append)))
    worker.start()
    worker.join(60)
    *steps, result = seen
    assert result.finished and result.sent == 1200
    phases = [step.phase for step in steps]
    assert phases[0] == "push" and phases[-1] == "done" and phases.index("done") == len(phases) - 1
    assert [s.done for s in steps if s.phase == "push" and s.total == 1200][-1] == 1200
    pulled = sync(reader, store.url, store.token)
    assert pulled.finished and pulled.received >= 1200
    assert laptop_states(reader).items() >= laptop_states(writer).items()
