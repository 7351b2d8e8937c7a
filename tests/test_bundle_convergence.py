"""Every route converges: three laptops, a regional store relaying to a national one, changes carried
online, by bundle (taken in twice, out of order, receipts late or twice), laptop to laptop, through the
relay, with cut connections between every tier and bundles cut short on the way — and at the end every
replica holds the same register: no change lost, none stored twice, every conflict kept as online.

Laptop 0 syncs online with the national store, laptop 1 with the regional office (and carries its
bundles there); laptop 2 never syncs online: an operator registered its key at the national store and
it moves everything by bundle. The office relays online, or carries bundles to the national store. The reference is the merge of every operation any laptop made.
Runs over loopback HTTP (uvicorn in threads), the national store on SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from fieldkit import bundle_sync, bundles, merge, model
from fieldkit.bundles import LAPTOP_KEY, PublicKey
from fieldkit.server.accounts import check_account
from fieldkit.server.app import create_app
from fieldkit.server.bundles import apply_bundle
from fieldkit.server.db import Database
from fieldkit.server.relay import Relay, bundle_for_national, take_national_receipt, trust_national
from fieldkit.sync import sync
from fieldkit.transport import Transport
from sync_fixtures import BACKENDS, FaultyTransport, ThreadServer, core, fresh_database, laptop_states, need_postgres, open_laptop

MUNICIPALITIES = ("EC121", "BUF")
WORDS = st.text(alphabet="abcdefghij klmnop", min_size=1, max_size=10).filter(lambda t: t.strip())
EDITS = st.one_of(
    st.tuples(st.just("severity"), st.sampled_from(list(model.SEVERITIES))),
    st.tuples(st.just("title"), WORDS),
    st.tuples(st.just("municipality"), st.sampled_from(MUNICIPALITIES)),
)
FAULTS = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["lose_request", "lose_reply", "repeat"])), max_size=2)
OFFLINE = 2  # the laptop that never syncs online
REGIONAL = 1  # the laptop of the regional office


class World:
    server: ThreadServer  # the national store
    regional: ThreadServer
    backend: str
    tmp: Path

    def new_database(self) -> tuple[Database, Any]:
        return fresh_database(self.backend, self.tmp)


WORLD = World()


class RoutesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(dir=WORLD.tmp))
        self.database, self.cleanup = WORLD.new_database()
        WORLD.server.app.state.db = self.database
        user = check_account("district", "facilitator", list(MUNICIPALITIES), [])
        self.token = self.database.add_user(user).token
        self.user = self.database.user_named("district")
        self.relay_token = self.database.add_user(check_account("Eastern Cape office", "coordinator", [], ["EC"])).token
        self.regional = Database(f"sqlite:///{self.folder / 'regional.sqlite3'}")
        self.regional.migrate()
        WORLD.regional.app.state.db = self.regional
        self.regional_token = self.regional.add_user(user).token
        self.relay_faults = FaultyTransport()
        self.relay = Relay(self.regional, WORLD.server.url, self.relay_token, transport=self.relay_faults)
        # the office may also go without its link and carry bundles to the national store
        self.database.register_device(self.database.user_named("Eastern Cape office"), self.regional.store_key(), by_operator=True)
        trust_national(self.regional, self.database.store_key().line())
        self.office_bundles: list[bytes] = []
        self.office_receipts: list[bytes] = []
        self.laptops = [open_laptop(self.folder / f"laptop{n}", f"Person {n}") for n in range(3)]
        self.faults = [FaultyTransport() for _ in self.laptops]
        self.made: dict[str, dict[str, Any]] = {}
        self.to_store: list[bytes] = []  # bundles on the stick to the central store
        self.to_peers: list[tuple[int, bytes]] = []  # (maker, bundle) sealed for the other laptops
        self.receipts: list[tuple[int, bytes]] = []
        for number, laptop in enumerate(self.laptops):
            if number != OFFLINE:
                self._sync(number, retries=0)
        offline = self.laptops[OFFLINE]
        self.database.register_device(self.user, bundle_sync.public_key(offline), by_operator=True)
        bundle_sync.trust(offline, self.database.store_key().line())
        for number, laptop in enumerate(self.laptops):
            for other, peer in enumerate(self.laptops):
                if other != number:
                    bundle_sync.trust(laptop, bundle_sync.public_key(peer).line(), f"laptop{other}")
        for laptop in self.laptops:
            laptop.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main"})
            self._remember(laptop)

    def _remember(self, register) -> None:
        for op in register.pending_ops():
            self.made.setdefault(op["op_id"], op)

    def _issue(self, register, pick: int) -> str | None:
        ids = sorted(register.store.documents("issue"))
        return ids[pick % len(ids)] if ids else None

    def _sync(self, number: int, retries: int) -> Any:
        url, token = (WORLD.regional.url, self.regional_token) if number == REGIONAL else (WORLD.server.url, self.token)
        client = Transport(url, token, transport=self.faults[number], retries=retries, sleep=lambda _: None)
        return sync(self.laptops[number], client=client)

    def _store_of(self, number: int) -> Database:
        return self.regional if number == REGIONAL else self.database

    # -- work on a laptop ---------------------------------------------------------------------

    @rule(who=st.integers(0, 2), municipality=st.sampled_from(MUNICIPALITIES), title=WORDS)
    def capture(self, who: int, municipality: str, title: str) -> None:
        self.laptops[who].create_issue({"municipality": municipality, "sector": "water", "title": title})
        self._remember(self.laptops[who])

    @rule(who=st.integers(0, 2), pick=st.integers(0, 99), edit=EDITS)
    def edit(self, who: int, pick: int, edit: tuple[str, Any]) -> None:
        register = self.laptops[who]
        issue_id = self._issue(register, pick)
        if issue_id:
            register.edit_issue(issue_id, {edit[0]: edit[1]})
            self._remember(register)

    @rule(who=st.integers(0, 2), pick=st.integers(0, 99), text=WORDS)
    def note(self, who: int, pick: int, text: str) -> None:
        register = self.laptops[who]
        issue_id = self._issue(register, pick)
        if issue_id:
            register.add_note(issue_id, text)
            self._remember(register)

    # -- the routes -----------------------------------------------------------------------------

    @rule(who=st.sampled_from([0, 1]), faults=FAULTS, retries=st.sampled_from([0, 2]))
    def sync_online(self, who: int, faults: list[tuple[int, str]], retries: int) -> None:
        self.faults[who].plan = {self.faults[who].count + number: fault for number, fault in faults}
        result = self._sync(who, retries)
        assert result.finished or result.error
        assert not result.rejected, result.rejected

    @rule(who=st.integers(0, 2), everything=st.booleans())
    def bundle_for_the_store(self, who: int, everything: bool) -> None:
        self.to_store.append(bundle_sync.make_bundle(self.laptops[who], everything=everything).data)

    @rule(who=st.integers(0, 2))
    def bundle_for_the_others(self, who: int) -> None:
        others = [f"laptop{n}" for n in range(3) if n != who]
        self.to_peers.append((who, bundle_sync.make_bundle(self.laptops[who], peers=others).data))

    @precondition(lambda self: bool(self.to_store))
    @rule(pick=st.integers(0, 99), cut=st.booleans())
    def the_store_takes_a_bundle(self, pick: int, cut: bool) -> None:
        """Any bundle on the stick, again or out of order; one cut short is refused and changes nothing."""
        data = self.to_store[pick % len(self.to_store)]
        if cut:
            before = self._store_rows()
            with pytest.raises(bundles.BundleError, match="cut short"):
                apply_bundle(self.database, data[: len(data) * 2 // 3])
            assert self._store_rows() == before
            return
        maker = self._maker(data)
        outcome = apply_bundle(self._store_of(maker), data)
        assert outcome.refused is None and not outcome.rejected
        self.receipts.append((maker, outcome.receipt))

    @rule(faults=FAULTS)
    def the_relay_exchanges(self, faults: list[tuple[int, str]]) -> None:
        """The regional office's link to the national store: up, down, or cut part way."""
        self.relay_faults.plan = {self.relay_faults.count + number: fault for number, fault in faults}
        report = self.relay.once()
        assert not report.refused, report.refused

    @precondition(lambda self: bool(self.receipts))
    @rule(pick=st.integers(0, 99))
    def a_receipt_goes_back(self, pick: int) -> None:
        maker, receipt = self.receipts[pick % len(self.receipts)]
        bundle_sync.take_in(self.laptops[maker], receipt)

    @precondition(lambda self: bool(self.to_peers))
    @rule(pick=st.integers(0, 99), to=st.integers(1, 2))
    def a_laptop_takes_a_peers_bundle(self, pick: int, to: int) -> None:
        maker, data = self.to_peers[pick % len(self.to_peers)]
        bundle_sync.take_in(self.laptops[(maker + to) % 3], data)

    @rule()
    def the_office_writes_a_bundle(self) -> None:
        self.office_bundles.append(bundle_for_national(self.regional)[0])

    @precondition(lambda self: bool(self.office_bundles))
    @rule(pick=st.integers(0, 99))
    def the_national_store_takes_the_offices_bundle(self, pick: int) -> None:
        outcome = apply_bundle(self.database, self.office_bundles[pick % len(self.office_bundles)])
        assert outcome.refused is None and not outcome.rejected
        self.office_receipts.append(outcome.receipt)

    @precondition(lambda self: bool(self.office_receipts))
    @rule(pick=st.integers(0, 99))
    def the_office_takes_a_receipt(self, pick: int) -> None:
        report = take_national_receipt(self.regional, bundles.read(self.office_receipts[pick % len(self.office_receipts)]))
        assert not report.refused

    def _maker(self, data: bytes) -> int:
        sender = bundles.read(data).sender
        return next(n for n, laptop in enumerate(self.laptops) if laptop.device_id == sender)

    def _store_rows(self) -> list[tuple]:
        rows = []
        for database in (self.database, self.regional):
            with database.read() as tx:
                rows.append(tx.rows("SELECT seq, op_id FROM ops ORDER BY seq"))
        return rows

    # -- the end: everyone catches up, by their own route ------------------------------------------

    def _by_bundle(self, number: int) -> None:
        outcome = apply_bundle(self._store_of(number), bundle_sync.make_bundle(self.laptops[number]).data)
        assert outcome.refused is None and not outcome.rejected
        bundle_sync.take_in(self.laptops[number], outcome.receipt)

    def teardown(self) -> None:
        try:
            # rounds enough for a change deferred at one tier (a note on an issue still on a stick or on its
            # way through the relay) to go up in the next, and down the other side after that
            self.relay_faults.plan.clear()
            for _ in range(4):
                for number in range(3):
                    self.faults[number].plan.clear()
                    if number == OFFLINE:
                        self._by_bundle(number)
                    else:
                        result = self._sync(number, retries=2)
                        assert result.finished, result.error
                report = self.relay.once()
                assert report.error is None and not report.refused, report
            by_record: dict[str, list[dict[str, Any]]] = {}
            for op in self.made.values():
                by_record.setdefault(op["id"], []).append(op)
            expected = {record_id: core(merge.apply_ops(None, ops)) for record_id, ops in by_record.items()}
            with self.database.read() as tx:
                held = {rid: core(orjson.loads(state)) for rid, state in tx.rows("SELECT record_id, state FROM records")}
                logged = [row[0] for row in tx.rows("SELECT op_id FROM ops")]
            assert held == expected
            with self.regional.read() as tx:
                regional = {rid: core(orjson.loads(state)) for rid, state in tx.rows("SELECT record_id, state FROM records")}
            assert regional == expected
            with self.database.read() as tx:
                carriers = {row[0] for row in tx.rows("SELECT user_name FROM ops WHERE device = ?", (self.laptops[REGIONAL].device_id,))}
            assert carriers <= {"Eastern Cape office"}  # the national audit trail names the relay that carried them
            assert len(logged) == len(set(logged))
            made_ids = set(self.made)
            assert made_ids <= set(logged)  # every change made is in the store's log, once
            for laptop in self.laptops:
                assert laptop_states(laptop) == expected
                assert laptop.waiting_count() == 0 and laptop.rejected_ops() == []
        finally:
            for laptop in self.laptops:
                laptop.close()
            for faults in (*self.faults, self.relay_faults):
                faults.close()
            self.regional.close()
            self.cleanup()
            shutil.rmtree(self.folder, ignore_errors=True)


def test_bundle_key_lines_round_trip() -> None:
    keys = bundles.Keys.new()
    key = keys.public(LAPTOP_KEY, "0123456789abcdef")
    assert PublicKey.parse(key.line()) == key


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_route_converges(backend: str, tmp_path: Path) -> None:
    WORLD.backend = backend
    WORLD.tmp = tmp_path
    if backend == "postgresql":
        need_postgres()
    WORLD.server = ThreadServer(create_app(Database(f"sqlite:///{tmp_path / 'placeholder.sqlite3'}")))
    WORLD.regional = ThreadServer(create_app(Database(f"sqlite:///{tmp_path / 'placeholder-regional.sqlite3'}")))
    try:
        run_state_machine_as_test(
            RoutesMachine,
            settings=settings(max_examples=10, stateful_step_count=25, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]),
        )
    finally:
        WORLD.server.stop()
        WORLD.regional.stop()
