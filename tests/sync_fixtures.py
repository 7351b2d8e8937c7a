"""Shared helpers for the sync and server tests: databases, servers, laptops and faults.

Load with ``pytest_plugins = ["tests.sync_fixtures"]`` or import the helpers.

PostgreSQL comes from ``$FIELDKIT_TEST_PG`` (default: the local test server);
each test gets a schema of its own, dropped afterwards. When PostgreSQL cannot
be reached its tests are skipped — and fail when ``$CI`` is set, so CI never
passes by silently testing less.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from fieldkit.hlc import Clock
from fieldkit.ids import new_device_id, new_id
from fieldkit.register import Register
from fieldkit.server.accounts import check_account
from fieldkit.server.db import Database

PG_URL = os.environ.get("FIELDKIT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


# -- databases -----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def pg_problem() -> str | None:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return str(err).strip().splitlines()[0]
    return None


def need_postgres() -> None:
    problem = pg_problem()
    if problem:
        message = f"PostgreSQL at {PG_URL} is not reachable: {problem}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def new_pg_schema() -> tuple[str, str]:
    """A fresh schema; returns its name and a URL whose connections use it."""
    import psycopg

    need_postgres()
    name = f"fk_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    separator = "&" if "?" in PG_URL else "?"
    return name, f"{PG_URL}{separator}options=-csearch_path%3D{name}"


def drop_pg_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def fresh_database(backend: str, tmp: Path) -> tuple[Database, Any]:
    """An empty, migrated central database on ``backend``, and a function that closes and removes it."""
    if backend == "sqlite":
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(dir=tmp))
        database = Database(f"sqlite:///{folder / 'central.sqlite3'}")
        database.migrate()
        return database, lambda: (database.close(), shutil.rmtree(folder, ignore_errors=True))
    name, url = new_pg_schema()
    database = Database(url)
    database.migrate()
    return database, lambda: (database.close(), drop_pg_schema(name))


@pytest.fixture
def pg_url() -> Iterator[str]:
    name, url = new_pg_schema()
    yield url
    drop_pg_schema(name)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, migrated central-store database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
        Database(url).migrate()
        yield url
        return
    name, url = new_pg_schema()
    Database(url).migrate()
    yield url
    drop_pg_schema(name)


def add_user(db_url: str, name: str = "admin", role: str = "admin", municipalities: tuple[str, ...] = (),
             provinces: tuple[str, ...] = ()) -> str:
    """Make an account; returns its token."""
    database = Database(db_url)
    try:
        return database.add_user(check_account(name, role, list(municipalities), list(provinces))).token
    finally:
        database.close()


def device_ops(db_url: str, device: str) -> list[str]:
    """The op ids the central store holds from one laptop, duplicates included."""
    database = Database(db_url)
    try:
        with database.read() as tx:
            return [row[0] for row in tx.rows("SELECT op_id FROM ops WHERE device = ? ORDER BY seq", (device,))]
    finally:
        database.close()


def assert_seqs_dense(db_url: str) -> None:
    """Sequence numbers are 1..N: given under the write lock, never skipped, never reused."""
    seqs = [seq for seq, _, _ in server_log(db_url)]
    assert seqs == list(range(1, len(seqs) + 1))


def server_log(db_url: str) -> list[tuple[int, str, str]]:
    """(seq, op_id, kind) of every operation the central store holds, in order."""
    database = Database(db_url)
    try:
        with database.read() as tx:
            return [tuple(row) for row in tx.rows("SELECT seq, op_id, kind FROM ops ORDER BY seq")]
    finally:
        database.close()


def server_states(db_url: str) -> dict[str, dict[str, Any]]:
    import orjson

    database = Database(db_url)
    try:
        with database.read() as tx:
            return {rid: core(orjson.loads(state)) for rid, state in tx.rows("SELECT record_id, state FROM records")}
    finally:
        database.close()


# -- laptops -------------------------------------------------------------------------------


def core(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of a merge state that must agree everywhere."""
    return {key: state.get(key, {}) for key in ("values", "stamps", "by", "seen", "rivals")}


def laptop_states(register: Register) -> dict[str, dict[str, Any]]:
    register.refresh()
    return {record_id: core(state) for record_id, state in register.all_ops_for_snapshot()}


def open_laptop(folder: Path, author: str = "Thandi Mokoena", skew_ms: int = 0) -> Register:
    register = Register.open(folder, author=author)
    if skew_ms:
        register.clock = Clock(register.device_id, register.clock.last, now=lambda: int(time.time() * 1000) + skew_ms)
    return register


def capture(register: Register, count: int, municipality: str = "EC121", sector: str = "water") -> list[str]:
    """``count`` new issues in one write; returns their ids."""
    ids = []
    with register.store.transaction():
        for number in range(count):
            values = register.create_issue({
                "municipality": municipality, "sector": sector, "title": f"Burst main number {number}",
                "description": "Water running down the street since Monday; the reservoir is emptying.",
                "ward": 1 + number % 30, "severity": "high",
            })
            ids.append(values["id"])
    return ids


def issue_op(municipality: str = "EC121", title: str = "Burst main", device: str | None = None) -> dict[str, Any]:
    """A new-issue operation made without a register (for load tests)."""
    device = device or new_device_id()
    clock = Clock(device)
    return {
        "op_id": new_id(), "type": "issue", "id": new_id(), "device": device, "author": "Load Test",
        "hlc": clock.tick(), "seen": {},
        "fields": {"municipality": municipality, "sector": "water", "title": title, "severity": "high", "status": "new"},
    }


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {log.read_text()[-2000:] if log else ''}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server at {url} did not come up: {log.read_text()[-2000:] if log else ''}")


class ServerProcess:
    """``fieldkit serve`` in a subprocess on a free port: the real thing, killable."""

    def __init__(self, db_url: str, home: Path, port: int | None = None):
        self.db_url = db_url
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = home / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "ServerProcess":
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FIELDKIT_HOME": str(self.home)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fieldkit", "serve", "--db", self.db_url, "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        wait_healthy(self.url, process=self.process, log=self.log)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to finish a request or a transaction."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()


class Central:
    """A central store for a module's tests: a database, a running server, an administrator's token."""

    def __init__(self, db_url: str, server: ServerProcess):
        self.db_url = db_url
        self.server = server
        self.url = server.url
        self.token = add_user(db_url)


@pytest.fixture(scope="module", params=BACKENDS)
def central(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Central]:
    """One ``fieldkit serve`` process per backend, shared by a module's tests (each uses its own laptops)."""
    folder = tmp_path_factory.mktemp("central")
    schema = None
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'central.sqlite3'}"
    else:
        schema, url = new_pg_schema()
    Database(url).migrate()
    server = ServerProcess(url, folder).start()
    yield Central(url, server)
    server.stop()
    if schema:
        drop_pg_schema(schema)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """Start ``fieldkit serve`` processes; all are stopped after the test."""
    started: list[ServerProcess] = []

    def start(db_url: str, port: int | None = None) -> ServerProcess:
        server = ServerProcess(db_url, tmp_path / "server-home", port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


class ThreadServer:
    """The app under uvicorn in a thread of this process: real HTTP, no process start-up."""

    def __init__(self, app: Any):
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        # host and port, not a pre-bound socket: uvicorn's sockets= path answers loopback 40 ms late (Nagle)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("the in-process server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


# -- faults --------------------------------------------------------------------------------


class CuttingProxy:
    """A TCP proxy that cuts the connection once the bytes sent one way pass a mark.

    ``cut_up`` marks count bytes from the laptop to the server (a request cut
    mid-body), ``cut_down`` bytes from the server to the laptop (a reply lost
    after the server did the work). Each mark cuts once.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cut_up: list[int] = []
        self.cut_down: list[int] = []
        self.totals = {"up": 0, "down": 0}
        self.cuts = 0
        self.refuse = False
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refuse:
                self._abort(client)
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                self._abort(client)
                continue
            pair = (client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream, "up", pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, "down", pair), daemon=True).start()

    @staticmethod
    def _abort(sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _pump(self, source: socket.socket, target: socket.socket, direction: str, pair: tuple) -> None:
        marks = self.cut_up if direction == "up" else self.cut_down
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    target.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self._lock:
                total = self.totals[direction]
                cut = bool(marks) and total + len(data) > marks[0]
                if cut:
                    data = data[: max(0, marks.pop(0) - total)]
                    self.cuts += 1
                self.totals[direction] = total + len(data)
            try:
                if data:
                    target.sendall(data)
            except OSError:
                return
            if cut:
                for sock in pair:
                    self._abort(sock)
                return

    def close(self) -> None:
        self._closed = True
        self.listener.close()


class FaultyTransport(httpx.BaseTransport):
    """An httpx transport that loses, repeats or answers 'busy' to chosen requests by their number."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.plan: dict[int, str] = {}
        self.count = 0
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        number, self.count = self.count, self.count + 1
        self.sent.append(request)
        fault = self.plan.pop(number, None)
        if fault == "lose_request":
            raise httpx.ConnectError("injected: the request never arrived")
        if fault == "busy":
            return httpx.Response(503, json={"detail": "the database is not answering; try again shortly"})
        response = self.inner.handle_request(request)
        response.read()
        if fault == "lose_reply":
            raise httpx.ReadError("injected: the reply was lost")
        if fault == "repeat":
            response = self.inner.handle_request(request)
            response.read()
        return response

    def close(self) -> None:
        self.inner.close()
