"""Convergence: laptops edit at random and sync in random orders through lost, repeated and cut
messages, the central store is restored from a backup now and then — and after everyone syncs
twice, every laptop and the store hold the same register, with no accepted edit lost.

Runs against the real app and data layer over loopback HTTP (uvicorn in a thread), on SQLite
and PostgreSQL. The reference is the merge of every operation any laptop ever made: all are
accepted (the account is an administrator and clocks stay within a day of the store's).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from fieldkit import merge, model
from fieldkit.hlc import Clock
from fieldkit.register import Register
from fieldkit.server.accounts import check_account
from fieldkit.server.app import create_app
from fieldkit.server.db import Database
from fieldkit.sync import sync
from fieldkit.transport import Transport
from sync_fixtures import (
    BACKENDS,
    FaultyTransport,
    ThreadServer,
    core,
    fresh_database,
    laptop_states,
    need_postgres,
    open_laptop,
)

DAY_MS = 24 * 3600 * 1000
MUNICIPALITIES = ("EC121", "BUF", "NMA")
TABLES = ("meta", "ops", "records", "users")
WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=12).filter(lambda t: t.strip())
EDITS = st.one_of(
    st.tuples(st.just("severity"), st.sampled_from(list(model.SEVERITIES))),
    st.tuples(st.just("title"), WORDS),
    st.tuples(st.just("ward"), st.integers(1, 200)),
    st.tuples(st.just("responsible"), st.sampled_from(["Eskom", "Amatola Water", "Municipality"])),
    st.tuples(st.just("municipality"), st.sampled_from(MUNICIPALITIES)),
)
FAULTS = st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["lose_request", "lose_reply", "repeat"])), max_size=2)


class World:
    """What the machine runs against: one in-process server whose database each example replaces."""

    server: ThreadServer
    backend: str
    tmp: Path

    def new_database(self) -> tuple[Database, Any]:
        return fresh_database(self.backend, self.tmp)


WORLD = World()


class Laptop:
    def __init__(self, register: Register):
        self.register = register
        self.faults = FaultyTransport()


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(dir=WORLD.tmp))
        self.cleanups = []
        self.database = self._use_new_database()
        self.token = self.database.add_user(check_account("admin", "admin", [], [])).token
        self.laptops: list[Laptop] = []
        self.made: dict[str, dict[str, Any]] = {}
        self.backups: list[dict[str, list[tuple]]] = []
        for skew in (0, -365 * DAY_MS, DAY_MS // 4):
            self._join(skew)
            self.laptops[-1].register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main"})
            self._remember(self.laptops[-1].register)

    def _use_new_database(self) -> Database:
        database, cleanup = WORLD.new_database()
        self.cleanups.append(cleanup)
        WORLD.server.app.state.db = database
        return database

    def _join(self, skew_ms: int) -> None:
        number = len(self.laptops)
        self.laptops.append(Laptop(open_laptop(self.folder / f"laptop{number}", f"Person {number}", skew_ms)))

    def _laptop(self, who: int) -> Laptop:
        return self.laptops[who % len(self.laptops)]

    def _remember(self, register: Register) -> None:
        for op in register.pending_ops():
            self.made.setdefault(op["op_id"], op)

    def _issue(self, register: Register, pick: int) -> str | None:
        ids = sorted(register.store.documents("issue"))
        return ids[pick % len(ids)] if ids else None

    def _sync(self, laptop: Laptop, retries: int) -> Any:
        client = Transport(WORLD.server.url, self.token, transport=laptop.faults, retries=retries, sleep=lambda _: None)
        return sync(laptop.register, client=client)

    @rule(who=st.integers(0, 4), municipality=st.sampled_from(MUNICIPALITIES), title=WORDS)
    def capture(self, who: int, municipality: str, title: str) -> None:
        register = self._laptop(who).register
        register.create_issue({"municipality": municipality, "sector": "water", "title": title})
        self._remember(register)

    @rule(who=st.integers(0, 4), pick=st.integers(0, 99), edit=EDITS)
    def edit(self, who: int, pick: int, edit: tuple[str, Any]) -> None:
        register = self._laptop(who).register
        issue_id = self._issue(register, pick)
        if issue_id:
            register.edit_issue(issue_id, {edit[0]: edit[1]})
            self._remember(register)

    @rule(who=st.integers(0, 4), pick=st.integers(0, 99), text=WORDS)
    def note(self, who: int, pick: int, text: str) -> None:
        register = self._laptop(who).register
        issue_id = self._issue(register, pick)
        if issue_id:
            register.add_note(issue_id, text)
            self._remember(register)

    @rule(who=st.integers(0, 4), pick=st.integers(0, 99), choice=st.integers(0, 9))
    def change_status(self, who: int, pick: int, choice: int) -> None:
        register = self._laptop(who).register
        issue_id = self._issue(register, pick)
        if issue_id:
            current = register.issue_values(issue_id).get("status", "new")
            options = sorted(model.TRANSITIONS[current])
            register.change_status(issue_id, options[choice % len(options)], note="checked on site")
            self._remember(register)

    @rule(who=st.integers(0, 4), pick=st.integers(0, 99))
    def delete(self, who: int, pick: int) -> None:
        register = self._laptop(who).register
        issue_id = self._issue(register, pick)
        if issue_id:
            register.delete_issue(issue_id)
            self._remember(register)

    @rule(who=st.integers(0, 4), faults=FAULTS, retries=st.sampled_from([0, 2]))
    def sync(self, who: int, faults: list[tuple[int, str]], retries: int) -> None:
        laptop = self._laptop(who)
        laptop.faults.plan = {laptop.faults.count + number: fault for number, fault in faults}
        result = self._sync(laptop, retries)
        assert result.finished or result.error
        assert not result.rejected, result.rejected
        self._back_up()

    @rule()
    def everyone_syncs(self) -> None:
        for laptop in self.laptops:
            laptop.faults.plan.clear()
            assert self._sync(laptop, retries=0).finished
        self._back_up()

    @rule(who=st.integers(0, 4), back_ms=st.integers(1, 400 * DAY_MS))
    def clock_jumps_back(self, who: int, back_ms: int) -> None:
        register = self._laptop(who).register
        register.clock = Clock(register.device_id, register.clock.last, now=lambda: int(time.time() * 1000) - back_ms)

    @precondition(lambda self: len(self.laptops) < 5)
    @rule()
    def new_laptop(self) -> None:
        self._join(0)

    def _back_up(self) -> None:
        with self.database.read() as tx:
            self.backups.append({table: tx.rows(f"SELECT * FROM {table}") for table in TABLES})

    @precondition(lambda self: bool(self.backups))
    @rule(which=st.integers(0, 99))
    def restore_the_store_from_a_backup(self, which: int) -> None:
        """The store's database is replaced by an earlier copy and given a new identity, as an administrator would."""
        backup = self.backups[which % len(self.backups)]
        database = self._use_new_database()
        with database.write() as tx:
            tx.run("DELETE FROM meta")
            for table, rows in backup.items():
                if rows:
                    tx.many(f"INSERT INTO {table} VALUES ({','.join('?' * len(rows[0]))})", [tuple(r) for r in rows])
        database.renew_server_id()
        self.database = database

    def teardown(self) -> None:
        try:
            for _ in range(2):
                for laptop in self.laptops:
                    laptop.faults.plan.clear()
                    result = self._sync(laptop, retries=2)
                    assert result.finished, result.error
                    assert not result.deferred, result.deferred
            by_record: dict[str, list[dict[str, Any]]] = {}
            for op in self.made.values():
                by_record.setdefault(op["id"], []).append(op)
            expected = {record_id: core(merge.apply_ops(None, ops)) for record_id, ops in by_record.items()}
            with self.database.read() as tx:
                held = {rid: core(orjson.loads(state)) for rid, state in tx.rows("SELECT record_id, state FROM records")}
                seqs = [row[0] for row in tx.rows("SELECT seq FROM ops ORDER BY seq")]
            assert held == expected
            assert seqs == sorted(set(seqs))
            for laptop in self.laptops:
                assert laptop_states(laptop.register) == expected
                assert laptop.register.waiting_count() == 0
                assert laptop.register.rejected_ops() == []
        finally:
            for laptop in self.laptops:
                laptop.register.close()
                laptop.faults.close()
            for cleanup in self.cleanups:
                cleanup()
            shutil.rmtree(self.folder, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_laptops_and_the_store_converge_whatever_happens_on_the_way(backend: str, tmp_path: Path) -> None:
    WORLD.backend = backend
    WORLD.tmp = tmp_path
    placeholder = Database(f"sqlite:///{tmp_path / 'placeholder.sqlite3'}")
    if backend == "postgresql":
        need_postgres()
    WORLD.server = ThreadServer(create_app(placeholder))
    try:
        run_state_machine_as_test(
            SyncMachine,
            settings=settings(max_examples=10, stateful_step_count=20, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
        )
    finally:
        WORLD.server.stop()
