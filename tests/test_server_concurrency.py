"""Two ``fieldkit serve`` processes on one database taking pushes at once, while a laptop pulls:
exactly the sum of the operations is stored, none twice, and the puller sees every sequence number —
none skipped by a transaction that committed late (the PostgreSQL visibility trap)."""

from __future__ import annotations

import threading
from pathlib import Path

from fieldkit.transport import Transport
from sync_fixtures import add_user, assert_seqs_dense, db_url, issue_op, serve, server_log  # noqa: F401 - fixtures

PUSHERS = 6
BATCHES = 8
BATCH = 60


def test_two_servers_on_one_database_store_exactly_the_sum(db_url: str, serve, tmp_path: Path) -> None:
    token = add_user(db_url)
    servers = [serve(db_url), serve(db_url)]
    pushed: list[str] = []
    pulled: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()
    lock = threading.Lock()

    def push(number: int) -> None:
        try:
            with Transport(servers[number % 2].url, token) as client:
                for _ in range(BATCHES):
                    ops = [issue_op(title=f"pusher {number}") for _ in range(BATCH)]
                    reply = client.push(ops + ops[:5])  # a few sent twice in the same batch
                    assert sorted(reply.acknowledged) == sorted(op["op_id"] for op in ops + ops[:5])
                    with lock:
                        pushed.extend(op["op_id"] for op in ops)
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    def pull() -> None:
        cursor = 0
        try:
            with Transport(servers[1].url, token) as client:
                while True:
                    finished = done.is_set()
                    reply = client.pull(cursor, limit=97)
                    pulled.extend(op["op_id"] for op in reply.ops)
                    cursor = reply.next
                    if finished and not reply.more:
                        return
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    puller = threading.Thread(target=pull)
    puller.start()
    pushers = [threading.Thread(target=push, args=(n,)) for n in range(PUSHERS)]
    for thread in pushers:
        thread.start()
    for thread in pushers:
        thread.join(120)
    done.set()
    puller.join(120)
    assert not errors, errors
    assert len(pushed) == PUSHERS * BATCHES * BATCH
    log = server_log(db_url)
    assert len(log) == len(pushed) and {op_id for _, op_id, _ in log} == set(pushed)
    assert_seqs_dense(db_url)
    assert len(pulled) == len(set(pulled)) == len(pushed)
