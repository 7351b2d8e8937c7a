"""The central store's data access: the one place with SQL, for SQLite and PostgreSQL alike.

Tables:

``ops``
    every operation accepted, once (``op_id`` is unique), numbered by ``seq``:
    the sync log and the audit trail (who: ``user_name``; which laptop:
    ``device``; when: ``hlc`` and ``received_at``);
``records``
    each record's merge state, kept up to date as operations arrive, with the
    municipality and province it belongs to (a child's are its issue's), so
    scope checks, snapshots and the Open311 routes read one row per record;
``users``
    accounts, with the SHA-256 of their token and their scope;
``meta``
    ``server_id``: a new random id for every new (or deliberately renewed)
    database, so laptops notice a reset or a restore; ``bundle_keys``: the
    store's private keys for bundles (``fieldkit.bundles``);
``devices``
    each laptop's public bundle keys and the account it speaks for, registered
    on its first online sync or by an operator (``fieldkit user add-device``);
``schema_version``
    the migrations applied.

Writes are serialised — ``BEGIN IMMEDIATE`` on SQLite (WAL mode), a
transaction-scoped advisory lock on PostgreSQL — and sequence numbers are
given under that lock, so they become visible in order and a reader of
``seq > cursor`` never skips a row, however many server processes share the
database. Reads run on one snapshot (``REPEATABLE READ`` on PostgreSQL).

The server process keeps nothing of its own besides connections: every answer
comes from the database, so several processes can serve one PostgreSQL.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit, urlunsplit

import orjson

from fieldkit import erasure, merge
from fieldkit.bundles import STORE_KEY, Keys, PublicKey, b64, unb64
from fieldkit.ids import is_record_id, new_id
from fieldkit.protocol import CENTRAL_DEVICE, op_mark, state_ops
from fieldkit.server import rules
from fieldkit.server.accounts import AccountError, NewAccount, User, new_token, token_hash
from fieldkit.server.rules import Record

SQLITE_NAME = "server.sqlite3"
LOCK_CLASS = 0x6669656C  # "fiel": the advisory lock's first key; the second is the schema's hash

MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE ops (
            seq BIGINT PRIMARY KEY,
            op_id TEXT NOT NULL UNIQUE,
            record_type TEXT NOT NULL,
            record_id TEXT {collate} NOT NULL,
            device TEXT NOT NULL,
            author TEXT NOT NULL,
            hlc TEXT NOT NULL,
            op TEXT NOT NULL,
            received_at TEXT NOT NULL,
            user_name TEXT NOT NULL,
            kind TEXT NOT NULL
        )""",
        "CREATE INDEX ops_record ON ops (record_id)",
        """CREATE TABLE records (
            record_id TEXT {collate} PRIMARY KEY,
            type TEXT NOT NULL,
            issue_id TEXT {collate},
            municipality TEXT,
            province TEXT,
            state TEXT NOT NULL,
            last_seq BIGINT NOT NULL
        )""",
        "CREATE INDEX records_issue ON records (issue_id)",
        "CREATE INDEX records_municipality ON records (municipality)",
        "CREATE INDEX records_province ON records (province)",
        """CREATE TABLE users (
            name TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            municipalities TEXT NOT NULL,
            provinces TEXT NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""",
    ]),
    (2, [
        """CREATE TABLE devices (
            device TEXT PRIMARY KEY,
            user_name TEXT NOT NULL,
            sign_key TEXT NOT NULL,
            box_key TEXT NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0,
            registered_at TEXT NOT NULL,
            registered_by TEXT NOT NULL
        )""",
    ]),
    (3, [
        # which attachment records name which file: a file is served to whoever may see one of them
        """CREATE TABLE attachment_files (
            sha256 TEXT NOT NULL,
            record_id TEXT {collate} NOT NULL,
            PRIMARY KEY (sha256, record_id)
        )""",
        "CREATE INDEX attachment_files_record ON attachment_files (record_id)",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


class DatabaseError(Exception):
    """The database cannot be used as configured; the message says what to do."""


class Unavailable(DatabaseError):
    """The database is busy or the connection dropped: try again shortly."""


class OutsideScope(Exception):
    """A bundle holds changes outside its account's area: none of it is applied."""

    def __init__(self, refused: list[dict[str, str]]):
        super().__init__(refused[0]["reason"])
        self.refused = refused


@dataclass(frozen=True, slots=True)
class Device:
    """A laptop the store knows the bundle keys of."""

    device: str
    user_name: str
    sign_key: bytes
    box_key: bytes
    revoked: bool


def default_url() -> str:
    """``$FIELDKIT_SERVER_DB``, else a SQLite file in the data folder."""
    configured = os.environ.get("FIELDKIT_SERVER_DB")
    if configured:
        return configured
    from fieldkit.store import default_home

    return f"sqlite:///{default_home() / SQLITE_NAME}"


def describe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:"):]
        return Path(rest[2:] if rest.startswith("//") else rest).expanduser()
    if "://" not in url:
        return Path(url).expanduser()
    return None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Tx:
    """One transaction on one connection, with ``?`` placeholders on both databases."""

    def __init__(self, conn: Any, postgres: bool):
        self._conn = conn
        self._postgres = postgres

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql

    def run(self, sql: str, params: Iterable[Any] = ()) -> Any:
        return self._conn.execute(self._sql(sql), tuple(params))

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self.run(sql, params).fetchall()

    def one(self, sql: str, params: Iterable[Any] = ()) -> tuple | None:
        return self.run(sql, params).fetchone()

    def many(self, sql: str, rows: list[tuple]) -> None:
        if not rows:
            return
        if self._postgres:
            with self._conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        else:
            self._conn.executemany(sql, rows)


def _marks(values: list[Any] | set[Any] | tuple[Any, ...]) -> str:
    return ",".join("?" * len(values))


class Database:
    """The central store's database, SQLite or PostgreSQL, behind one set of methods."""

    def __init__(self, url: str | None = None, pool_size: int = 8):
        self.url = url or default_url()
        self.sqlite_path = _sqlite_path(self.url)
        scheme = urlsplit(self.url).scheme
        if self.sqlite_path is None and scheme not in ("postgresql", "postgres"):
            raise DatabaseError(f"--db must be a PostgreSQL URL (postgresql://user@host/db) or a SQLite file, not {describe_url(self.url)}")
        self.postgres = self.sqlite_path is None
        self._pg: Any = importlib.import_module("psycopg") if self.postgres else None
        self._errors: tuple[type[Exception], ...] = (self._pg.OperationalError,) if self.postgres else (sqlite3.OperationalError,)
        self._idle: list[Any] = []
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    def describe(self) -> str:
        return f"PostgreSQL {describe_url(self.url)}" if self.postgres else f"SQLite {self.sqlite_path}"

    # -- connections and transactions ---------------------------------------------

    def _connect(self) -> Any:
        if self.postgres:
            try:
                return self._pg.connect(self.url, autocommit=True, connect_timeout=10)
            except self._pg.Error as err:
                first = (str(err).strip().splitlines() or ["no answer"])[0]
                raise Unavailable(f"cannot connect to {self.describe()}: {first}") from None
        assert self.sqlite_path is not None
        try:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except (OSError, sqlite3.Error) as err:
            raise DatabaseError(f"cannot open {self.describe()}: {err}") from None
        return conn

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        if not self._slots.acquire(timeout=30):
            raise Unavailable("the central store is too busy; try again shortly")
        conn = None
        healthy = True
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            yield conn
        except (Unavailable, *self._errors):
            healthy = False
            raise
        finally:
            if conn is not None:
                if healthy:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is dropped either way
                        pass
            self._slots.release()

    @contextmanager
    def _transaction(self, begin: str, lock: bool) -> Iterator[Tx]:
        with self._connection() as conn:
            tx = Tx(conn, self.postgres)
            try:
                conn.execute(begin)
                if lock and self.postgres:
                    conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_CLASS}, hashtext(current_schema()))")
                yield tx
                conn.execute("COMMIT")
            except BaseException as err:
                try:
                    conn.execute("ROLLBACK")
                except Exception:  # noqa: BLE001 - the connection is dropped below
                    raise Unavailable("the database connection dropped; try again") from None
                if isinstance(err, self._errors):
                    first = (str(err).strip().splitlines() or ["busy"])[0]
                    raise Unavailable(f"the database is not answering ({first}); try again shortly") from None
                raise

    def write(self) -> Any:
        """A transaction that changes data; one at a time across every process."""
        return self._transaction("BEGIN" if self.postgres else "BEGIN IMMEDIATE", lock=True)

    def read(self) -> Any:
        """A transaction that sees one consistent snapshot."""
        return self._transaction("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" if self.postgres else "BEGIN", lock=False)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # -- schema -------------------------------------------------------------------

    def migrate(self) -> int:
        """Bring the schema up to date (safe to run from several processes at once); returns its version."""
        collate = 'COLLATE "C"' if self.postgres else ""
        with self.write() as tx:
            tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
            current = tx.one("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
            if current > SCHEMA_VERSION:
                raise DatabaseError(
                    f"{self.describe()} was set up by a newer fieldkit (schema {current}, this one knows {SCHEMA_VERSION}); upgrade fieldkit"
                )
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    tx.run(statement.format(collate=collate))
                tx.run("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, _now_iso()))
            if tx.one("SELECT value FROM meta WHERE key = 'server_id'") is None:
                tx.run("INSERT INTO meta (key, value) VALUES ('server_id', ?)", (new_id(),))
        return SCHEMA_VERSION

    def renew_server_id(self) -> str:
        """Give the store a new identity, after restoring it from a backup: every laptop then re-sends what it holds."""
        server_id = new_id()
        with self.write() as tx:
            tx.run("UPDATE meta SET value = ? WHERE key = 'server_id'", (server_id,))
        return server_id

    @staticmethod
    def _server_id(tx: Tx) -> str:
        row = tx.one("SELECT value FROM meta WHERE key = 'server_id'")
        if row is None:
            raise DatabaseError("the database has no server id; run `fieldkit serve` once to set it up")
        return row[0]

    @staticmethod
    def _last_seq(tx: Tx) -> int:
        return tx.one("SELECT COALESCE(MAX(seq), 0) FROM ops")[0]

    def health(self) -> dict[str, Any]:
        with self.read() as tx:
            version = tx.one("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0]
            last = self._last_seq(tx)
        return {"status": "ok", "database": self.dialect, "schema_version": version, "last_seq": last}

    # -- accounts -----------------------------------------------------------------

    @staticmethod
    def _user(row: tuple) -> User:
        name, role, municipalities, provinces, revoked, created_at = row
        return User(name, role, tuple(orjson.loads(municipalities)), tuple(orjson.loads(provinces)), bool(revoked), created_at)

    _USER_COLUMNS = "name, role, municipalities, provinces, revoked, created_at"

    def add_user(self, user: User) -> NewAccount:
        token = new_token()
        with self.write() as tx:
            if tx.one("SELECT 1 FROM users WHERE name = ?", (user.name,)):
                raise AccountError(f"There is already an account named {user.name}; choose another name, or `fieldkit user new-token {user.name}`")
            created = _now_iso()
            tx.run(
                "INSERT INTO users (name, token_hash, role, municipalities, provinces, revoked, created_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
                (user.name, token_hash(token), user.role, orjson.dumps(list(user.municipalities)).decode(),
                 orjson.dumps(list(user.provinces)).decode(), created),
            )
        return NewAccount(User(user.name, user.role, user.municipalities, user.provinces, False, created), token)

    def users(self) -> list[User]:
        with self.read() as tx:
            return [self._user(row) for row in tx.rows(f"SELECT {self._USER_COLUMNS} FROM users ORDER BY name")]

    def user_for_token(self, token: str) -> User | None:
        with self.read() as tx:
            row = tx.one(f"SELECT {self._USER_COLUMNS} FROM users WHERE token_hash = ?", (token_hash(token),))
        return self._user(row) if row else None

    def revoke_user(self, name: str) -> None:
        with self.write() as tx:
            if tx.one("SELECT 1 FROM users WHERE name = ?", (name,)) is None:
                raise AccountError(f"There is no account named {name} (`fieldkit user list` shows them)")
            tx.run("UPDATE users SET revoked = 1 WHERE name = ?", (name,))

    def new_token(self, name: str) -> NewAccount:
        """A fresh token for an account (the old one stops working); also lifts a revocation."""
        token = new_token()
        with self.write() as tx:
            row = tx.one(f"SELECT {self._USER_COLUMNS} FROM users WHERE name = ?", (name,))
            if row is None:
                raise AccountError(f"There is no account named {name} (`fieldkit user list` shows them)")
            tx.run("UPDATE users SET token_hash = ?, revoked = 0 WHERE name = ?", (token_hash(token), name))
        user = self._user(row)
        return NewAccount(User(user.name, user.role, user.municipalities, user.provinces, False, user.created_at), token)

    def user_named(self, name: str) -> User | None:
        with self.read() as tx:
            row = tx.one(f"SELECT {self._USER_COLUMNS} FROM users WHERE name = ?", (name,))
        return self._user(row) if row else None

    # -- bundle keys: the store's own, and each laptop's ---------------------------

    def bundle_keys(self) -> Keys:
        """The store's private bundle keys, made the first time they are asked for."""
        with self.read() as tx:
            row = tx.one("SELECT value FROM meta WHERE key = 'bundle_keys'")
        if row is None:
            with self.write() as tx:
                row = tx.one("SELECT value FROM meta WHERE key = 'bundle_keys'")
                if row is None:
                    row = (orjson.dumps(Keys.new().to_text()).decode(),)
                    tx.run("INSERT INTO meta (key, value) VALUES ('bundle_keys', ?)", row)
        return Keys.from_text(orjson.loads(row[0]))

    def store_key(self) -> PublicKey:
        """The line laptops need to seal bundles for this store and check its receipts."""
        keys = self.bundle_keys()
        with self.read() as tx:
            server_id = self._server_id(tx)
        return keys.public(STORE_KEY, server_id)

    def device(self, device: str) -> Device | None:
        with self.read() as tx:
            row = tx.one("SELECT device, user_name, sign_key, box_key, revoked FROM devices WHERE device = ?", (device,))
        if row is None:
            return None
        return Device(row[0], row[1], unb64(row[2]), unb64(row[3]), bool(row[4]))

    def register_device(self, user: User, key: PublicKey, by_operator: bool = False) -> None:
        """Record which account a laptop's bundles speak for.

        On a laptop's online sync (its token proves the account) a new laptop is
        added and a known one may move to the account now syncing it; a different
        key for a known laptop, or a revoked laptop, needs an operator.
        """
        with self.write() as tx:
            row = tx.one("SELECT sign_key, box_key, revoked FROM devices WHERE device = ?", (key.name,))
            if row is not None and not by_operator:
                if row[2]:
                    raise AccountError(f"laptop {key.name} was revoked on this central store; its bundles are refused "
                                       "until an operator adds it again (`fieldkit user add-device`)")
                if (unb64(row[0]), unb64(row[1])) != (key.sign, key.box):
                    raise AccountError(f"laptop {key.name} is registered with another key; an operator can register "
                                       "this one with `fieldkit user add-device`")
            tx.run("DELETE FROM devices WHERE device = ?", (key.name,))
            tx.run(
                "INSERT INTO devices (device, user_name, sign_key, box_key, revoked, registered_at, registered_by) "
                "VALUES (?, ?, ?, ?, 0, ?, ?)",
                (key.name, user.name, b64(key.sign), b64(key.box), _now_iso(), "operator" if by_operator else "online sync"),
            )

    def revoke_device(self, device: str) -> None:
        with self.write() as tx:
            if tx.one("SELECT 1 FROM devices WHERE device = ?", (device,)) is None:
                raise AccountError(f"this central store knows no laptop {device}")
            tx.run("UPDATE devices SET revoked = 1 WHERE device = ?", (device,))

    # -- a relay's bookkeeping (fieldkit.server.relay) -------------------------------

    def setting(self, key: str) -> str | None:
        with self.read() as tx:
            row = tx.one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    def save_setting(self, key: str, value: str) -> None:
        with self.write() as tx:
            tx.run("DELETE FROM meta WHERE key = ?", (key,))
            tx.run("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))

    def ops_by_id(self, op_ids: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        with self.read() as tx:
            for start in range(0, len(op_ids), 500):
                chunk = op_ids[start:start + 500]
                found += [orjson.loads(op) for (op,) in tx.rows(f"SELECT op FROM ops WHERE op_id IN ({_marks(chunk)})", chunk)]
        return found

    def changes_after(self, after: int, limit: int, leave_out_user: str) -> list[tuple[int, dict[str, Any]]]:
        """Changes laptops sent here after ``after`` (not copies, not what came from ``leave_out_user``), oldest first."""
        with self.read() as tx:
            rows = tx.rows("SELECT seq, op FROM ops WHERE seq > ? AND kind = 'change' AND user_name <> ? ORDER BY seq LIMIT ?",
                           (after, leave_out_user, limit))
        return [(seq, orjson.loads(op)) for seq, op in rows]

    # -- sync ---------------------------------------------------------------------

    def info(self, user: User) -> dict[str, Any]:
        with self.read() as tx:
            server_id, last = self._server_id(tx), self._last_seq(tx)
        return {
            "server_id": server_id,
            "user": user.name,
            "role": user.role,
            "municipalities": list(user.municipalities),
            "provinces": list(user.provinces),
            "last_seq": last,
            "server_time": _now_iso(),
        }

    def _load_records(self, tx: Tx, ids: Iterable[str], column: str = "record_id") -> list[Record]:
        wanted = sorted(set(ids))
        found = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for rid, rtype, issue_id, muni, province, state in tx.rows(
                f"SELECT record_id, type, issue_id, municipality, province, state FROM records WHERE {column} IN ({_marks(chunk)})",
                chunk,
            ):
                found.append(Record(rid, rtype, issue_id, muni, province, orjson.loads(state)))
        return found

    def push(self, user: User, ops: list[Any], now_ms: int | None = None, whole: bool = False) -> dict[str, Any]:
        """Check and apply a batch of operations in one transaction; each is acknowledged, rejected or deferred.

        ``whole`` (a bundle): when any operation is outside the user's area, nothing
        is applied and ``OutsideScope`` names them.
        """
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        acknowledged: list[str] = []
        rejected: list[dict[str, str]] = []
        deferred: list[dict[str, str]] = []
        fine = []
        for op in ops:
            problem = rules.op_problem(op, now_ms)
            if problem:
                op_id = op.get("op_id") if isinstance(op, dict) else None
                rejected.append({"op_id": op_id if isinstance(op_id, str) else "", "reason": problem})
            else:
                fine.append(op)
        fine.sort(key=lambda op: op["type"] != "issue")  # an issue before the notes that hang on it
        received_at = _now_iso()
        with self.write() as tx:
            server_id = self._server_id(tx)
            op_ids = sorted({op["op_id"] for op in fine})
            stored: set[str] = set()
            for start in range(0, len(op_ids), 500):
                chunk = op_ids[start:start + 500]
                stored.update(r[0] for r in tx.rows(f"SELECT op_id FROM ops WHERE op_id IN ({_marks(chunk)})", chunk))
            wanted = {op["id"] for op in fine}
            wanted.update(op["fields"]["issue_id"] for op in fine if isinstance(op["fields"].get("issue_id"), str))
            records = {r.record_id: r for r in self._load_records(tx, wanted)}
            seq = first_seq = self._last_seq(tx)
            rows: list[tuple] = []
            dirty: dict[str, int] = {}
            moved: set[str] = set()
            outside: list[dict[str, str]] = []
            erased: set[str] = set()
            for op in fine:
                op_id = op["op_id"]
                if op_id in stored:
                    acknowledged.append(op_id)
                    continue
                record = records.get(op["id"])
                verdict = rules.judge(user, op, record, records.get)
                if verdict:
                    (deferred if verdict[0] == rules.DEFER else rejected).append({"op_id": op_id, "reason": verdict[1]})
                    if verdict[0] == rules.OUTSIDE:
                        outside.append({"op_id": op_id, "reason": verdict[1]})
                    continue
                if record is None:
                    record = records[op["id"]] = Record(op["id"], op["type"], None, None, None, merge.empty_state())
                before = record.municipality
                kept = orjson.dumps(record.state) if record.state["stamps"] else None
                merge.apply_op_in_place(record.state, op)
                if kept is not None and record.state["rivals"]:
                    problem = rules.state_size_problem(record.state)
                    if problem:
                        record.state = orjson.loads(kept)
                        rejected.append({"op_id": op_id, "reason": problem})
                        continue
                rules.place(record, records.get)
                if record.type == "issue" and before and record.municipality != before:
                    moved.add(record.record_id)
                seq += 1
                if erasure.is_erasure(op):
                    erased.add(record.record_id)
                op = erasure.scrub(op, record.state)  # a contact erased before this change arrived is not logged again
                rows.append((seq, op_id, op["type"], op["id"], op["device"], op["author"], op["hlc"],
                             orjson.dumps(op).decode(), received_at, user.name, "change"))
                stored.add(op_id)
                acknowledged.append(op_id)
                dirty[record.record_id] = seq
            if outside and whole:
                raise OutsideScope(outside)
            if moved:
                seq = self._copy_moved(tx, moved, records, dirty, rows, seq, user, received_at)
            if erased:
                self._scrub_log(tx, {rid: records[rid].state for rid in erased})
            tx.many(
                "INSERT INTO ops (seq, op_id, record_type, record_id, device, author, hlc, op, received_at, user_name, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            tx.many(
                "INSERT INTO records (record_id, type, issue_id, municipality, province, state, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (record_id) DO UPDATE SET type = excluded.type, issue_id = excluded.issue_id, "
                "municipality = excluded.municipality, province = excluded.province, state = excluded.state, last_seq = excluded.last_seq",
                [
                    (r.record_id, r.type, r.issue_id, r.municipality, r.province, orjson.dumps(r.state).decode(), dirty[r.record_id])
                    for r in (records[rid] for rid in dirty)
                ],
            )
            tx.many(
                "INSERT INTO attachment_files (sha256, record_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                sorted({(sha, r.record_id) for r in (records[rid] for rid in dirty) if r.type == "attachment"
                        for sha in rules.attachment_files(r.state["values"])}),
            )
        return {
            "server_id": server_id,
            "acknowledged": acknowledged,
            "rejected": rejected,
            "deferred": deferred,
            "first_seq": first_seq + 1 if rows else None,
            "last_seq": seq,
        }

    @staticmethod
    def _scrub_log(tx: Tx, states: dict[str, dict[str, Any]]) -> None:
        """An erased contact: blank the name and phone in every operation of the log that the erasure overruled."""
        for record_id, state in states.items():
            changed = []
            for seq, text in tx.rows("SELECT seq, op FROM ops WHERE record_id = ?", (record_id,)):
                op = orjson.loads(text)
                scrubbed = erasure.scrub(op, state)
                if scrubbed is not op:
                    changed.append((orjson.dumps(scrubbed).decode(), seq))
            if changed:
                tx.many("UPDATE ops SET op = ? WHERE seq = ?", changed)

    def _copy_moved(self, tx: Tx, moved: set[str], records: dict[str, Record], dirty: dict[str, int],
                    rows: list[tuple], seq: int, user: User, received_at: str) -> int:
        """An issue moved to another municipality: its children follow it, and the whole of it is logged again.

        People who newly cover the issue pulled none of its earlier operations
        (they were out of their scope then), so the store appends a copy of the
        current states as operations; for everyone else applying them changes nothing.
        """
        for child in self._load_records(tx, moved, column="issue_id"):
            records.setdefault(child.record_id, child)
        family = [r for r in records.values() if r.record_id in moved or r.issue_id in moved]
        for record in family:
            rules.place(record, records.get)
            for op in state_ops(record.type, record.record_id, record.state, CENTRAL_DEVICE):
                seq += 1
                rows.append((seq, op["op_id"], op["type"], op["id"], op["device"], op["author"], op["hlc"],
                             orjson.dumps(op).decode(), received_at, user.name, "copy"))
                dirty[record.record_id] = seq
        return seq

    @staticmethod
    def _scope(user: User, alias: str = "r") -> tuple[str, list[str]]:
        if user.is_admin:
            return "", []
        parts = [f"{alias}.type = 'lesson'"]
        if user.municipalities:
            parts.append(f"{alias}.municipality IN ({_marks(user.municipalities)})")
        if user.provinces:
            parts.append(f"{alias}.province IN ({_marks(user.provinces)})")
        return " AND (" + " OR ".join(parts) + ")", [*user.municipalities, *user.provinces]

    def pull(self, user: User, after: int, limit: int, skip_device: str | None = None, skip_from: int | None = None) -> bytes:
        """A page of operations after ``after`` in the user's scope, as the JSON reply.

        ``skip_device``/``skip_from`` leave out the caller's own operations
        stored from ``skip_from`` on (it pushed them in this same sync, so it
        has them): a laptop that pushed 10,000 issues does not download them back.
        """
        scope, params = self._scope(user)
        skip = ""
        if skip_device and skip_from:
            skip = " AND NOT (o.device = ? AND o.seq >= ?)"
            params = [*params, skip_device, skip_from]
        with self.read() as tx:
            server_id, last = self._server_id(tx), self._last_seq(tx)
            rows = tx.rows(
                "SELECT o.seq, o.op FROM ops o JOIN records r ON r.record_id = o.record_id "
                f"WHERE o.seq > ? AND o.seq <= ?{scope}{skip} ORDER BY o.seq LIMIT ?",
                [after, last, *params, limit],
            )
            more = len(rows) == limit
            following = rows[-1][0] if more else max(after, last)
            marks = self._op_marks(tx, (after, following))
        return orjson.dumps({
            "server_id": server_id,
            "next": following,
            "more": more,
            "ops": [orjson.Fragment(op) for _, op in rows],
            "mark": marks.get(after, ""),
            "next_mark": marks.get(following, ""),
        })

    @staticmethod
    def _op_marks(tx: Any, seqs: Iterable[int]) -> dict[int, str]:
        """The marks of the operations at these sequence numbers, so a laptop notices a store restored from a backup."""
        wanted = sorted({seq for seq in seqs if seq > 0})
        if not wanted:
            return {}
        rows = tx.rows(f"SELECT seq, op_id FROM ops WHERE seq IN ({_marks(wanted)})", wanted)
        return {seq: op_mark(op_id) for seq, op_id in rows}

    def snapshot(self, user: User, after_id: str, limit: int) -> bytes:
        """A page of current record states in the user's scope, written as operations, as the JSON reply."""
        scope, params = self._scope(user)
        with self.read() as tx:
            server_id, last = self._server_id(tx), self._last_seq(tx)
            rows = tx.rows(
                f"SELECT r.record_id, r.type, r.state FROM records r WHERE r.record_id > ?{scope} ORDER BY r.record_id LIMIT ?",
                [after_id, *params, limit],
            )
            upto_mark = self._op_marks(tx, (last,)).get(last, "")
        ops: list[dict[str, Any]] = []
        for record_id, record_type, state in rows:
            ops.extend(state_ops(record_type, record_id, orjson.loads(state), CENTRAL_DEVICE))
        return orjson.dumps({
            "server_id": server_id,
            "upto": last,
            "upto_mark": upto_mark,
            "next_id": rows[-1][0] if rows else after_id,
            "more": len(rows) == limit,
            "ops": ops,
        })

    def history(self, user: User, record_id: str) -> list[dict[str, Any]]:
        """The audit trail of one record in the user's scope: who, from which laptop, when, which fields."""
        scope, params = self._scope(user)
        with self.read() as tx:
            rows = tx.rows(
                "SELECT o.seq, o.user_name, o.device, o.author, o.hlc, o.received_at, o.kind, o.op "
                f"FROM ops o JOIN records r ON r.record_id = o.record_id WHERE o.record_id = ?{scope} ORDER BY o.seq",
                [record_id, *params],
            )
        return [
            {"seq": seq, "user": name, "device": device, "author": author, "hlc": hlc, "received_at": received,
             "kind": kind, "fields": sorted(orjson.loads(op)["fields"])}
            for seq, name, device, author, hlc, received, kind, op in rows
        ]

    def file_visible(self, user: User, sha: str) -> bool:
        """Whether an attachment this user may see names this file (the same scope as its issue)."""
        scope, params = self._scope(user)
        with self.read() as tx:
            return tx.one(
                "SELECT 1 FROM attachment_files f JOIN records r ON r.record_id = f.record_id "
                f"WHERE f.sha256 = ?{scope} LIMIT 1",
                [sha, *params],
            ) is not None

    # -- reading records (for the Open311 routes and reports) ---------------------

    def records(self, user: User, record_type: str = "issue", after_id: str = "", limit: int = 1000) -> list[Record]:
        """Records of one type in the user's scope, by id, a page at a time."""
        scope, params = self._scope(user)
        with self.read() as tx:
            rows = tx.rows(
                "SELECT r.record_id, r.type, r.issue_id, r.municipality, r.province, r.state FROM records r "
                f"WHERE r.type = ? AND r.record_id > ?{scope} ORDER BY r.record_id LIMIT ?",
                [record_type, after_id, *params, limit],
            )
        return [Record(rid, rtype, issue_id, muni, province, orjson.loads(state)) for rid, rtype, issue_id, muni, province, state in rows]

    def record(self, user: User, record_id: str) -> Record | None:
        """One record, or None when there is none or it is outside the user's scope."""
        if not is_record_id(record_id):
            return None
        scope, params = self._scope(user)
        with self.read() as tx:
            row = tx.one(
                "SELECT r.record_id, r.type, r.issue_id, r.municipality, r.province, r.state FROM records r "
                f"WHERE r.record_id = ?{scope}",
                [record_id, *params],
            )
        return Record(*row[:5], orjson.loads(row[5])) if row else None

    def forget_contact(self, user: User, issue_id: str) -> dict[str, Any] | None:
        """An administrator erases an issue's community contact (POPIA): an erasure and a timeline note,
        stored like a laptop's changes so every laptop applies them at its next sync; None when there is no such issue."""
        from fieldkit.hlc import Clock
        from fieldkit.model import now_iso

        record = self.record(user, issue_id)
        if record is None or record.type != "issue":
            return None
        stamps = [*record.state["stamps"].values(), *record.state["seen"].values()]
        clock = Clock(CENTRAL_DEVICE, max(stamps, default=None))
        base = {"type": "issue", "id": issue_id, "device": CENTRAL_DEVICE, "author": user.name}
        erase = erasure.erase_fields({**base, "op_id": new_id(), "hlc": clock.tick()})
        at = now_iso()
        note = {**base, "op_id": new_id(), "type": "note", "id": new_id(shard=issue_id[-1]), "hlc": clock.tick(), "seen": {},
                "fields": {"issue_id": issue_id, "text": erasure.erased_note(user.name, at), "author": user.name, "at": at}}
        return self.push(user, [erase, note])

    def children(self, user: User, issue_id: str) -> list[Record]:
        """An issue's notes, follow-up actions and status changes (empty when out of scope)."""
        scope, params = self._scope(user)
        with self.read() as tx:
            rows = tx.rows(
                "SELECT r.record_id, r.type, r.issue_id, r.municipality, r.province, r.state FROM records r "
                f"WHERE r.issue_id = ?{scope} ORDER BY r.record_id",
                [issue_id, *params],
            )
        return [Record(rid, rtype, iid, muni, province, orjson.loads(state)) for rid, rtype, iid, muni, province, state in rows]
