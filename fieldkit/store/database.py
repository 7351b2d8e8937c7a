"""The register file: one SQLite database, written only inside transactions.

SQLite (the standard library's ``sqlite3``) is where the bytes live because it
gives, by construction, what a hand-made journal had to patch fault by fault:

- a transaction reads and writes under one lock (``BEGIN IMMEDIATE``), so a
  change is always based on what is saved now, whatever other process wrote;
- commit is atomic and durable (rollback journal, ``synchronous=FULL``): when a
  save returns it is on disk, a crash or a full disk leaves the old state or the
  new one, never half, and a failed command has changed nothing;
- an online backup API that makes real, independent copies.

The rollback journal (``journal_mode=TRUNCATE``) rather than WAL: committed data
is always in the one database file, a damaged journal cannot silently drop
acknowledged saves, and a copy on a read-only USB stick opens for lookups.

On top, every row carries a CRC-32 of its bytes, checked on every read, so a
flipped bit is refused with the file named instead of being read as data.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson

FORMAT = 2
MMAP_BYTES = 0x7FFF0000  # SQLite's own ceiling for a mapping
FILE_NAME = "register.sqlite"
MARKER_NAME = "fieldkit-store.json"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS record(
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    parent TEXT,
    seq INTEGER NOT NULL,
    doc BLOB NOT NULL,
    merge BLOB,
    crc INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS record_parent ON record(parent, kind) WHERE parent IS NOT NULL;
CREATE INDEX IF NOT EXISTS record_seq ON record(seq);
CREATE TABLE IF NOT EXISTS issue_line(
    id TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    municipality TEXT NOT NULL,
    status TEXT NOT NULL,
    line TEXT NOT NULL,
    words TEXT NOT NULL,
    crc INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS issue_line_ref ON issue_line(ref);
CREATE INDEX IF NOT EXISTS issue_line_filter ON issue_line(municipality, status);
CREATE INDEX IF NOT EXISTS issue_line_status ON issue_line(status);
CREATE VIRTUAL TABLE IF NOT EXISTS issue_text USING fts5(
    words, content='issue_line', tokenize='trigram', detail='none'
);
CREATE TRIGGER IF NOT EXISTS issue_line_added AFTER INSERT ON issue_line BEGIN
    INSERT INTO issue_text(rowid, words) VALUES (new.rowid, new.words);
END;
CREATE TRIGGER IF NOT EXISTS issue_line_removed AFTER DELETE ON issue_line BEGIN
    INSERT INTO issue_text(issue_text, rowid, words) VALUES ('delete', old.rowid, old.words);
END;
CREATE TRIGGER IF NOT EXISTS issue_line_changed AFTER UPDATE ON issue_line BEGIN
    INSERT INTO issue_text(issue_text, rowid, words) VALUES ('delete', old.rowid, old.words);
    INSERT INTO issue_text(rowid, words) VALUES (new.rowid, new.words);
END;
CREATE TABLE IF NOT EXISTS outbox(
    op_id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    op BLOB NOT NULL,
    crc INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox(state, op_id);
"""


#: An issue's lookup line is kept as its columns and, apart, the words a text search looks in (its last
#: column), which a trigram index (``issue_text``) finds by any part of a word. Written with an upsert so the
#: row keeps its rowid and the index's triggers see an update.
UPSERT_LINE = """
INSERT INTO issue_line(id, ref, municipality, status, line, words, crc) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET ref = excluded.ref, municipality = excluded.municipality, status = excluded.status,
    line = excluded.line, words = excluded.words, crc = excluded.crc
"""


def line_row(record_id: str, ref: str, municipality: str, status: str, text: str,
             seal: "Callable[[bytes], bytes] | None" = None) -> tuple[Any, ...]:
    """The ``issue_line`` row of one issue; sealed (encrypted) text keeps no searchable words."""
    if seal is not None:
        sealed = seal(text.encode("utf-8"))
        return record_id, ref.upper(), municipality, status, sealed, "", checksum(sealed)
    line, _, words = text.rpartition("\t")
    return record_id, ref.upper(), municipality, status, line, words, checksum(line, words)


class StoreError(Exception):
    """A problem with the store a person must act on; the message says what to do."""


class StoreCorrupt(StoreError):
    def __init__(self, path: Path, detail: str, backup: Path | None):
        self.path = path
        self.backup = backup
        where = f"the newest backup is {backup.name}" if backup else "there is no backup yet"
        super().__init__(
            f"{path} is damaged ({detail}); it has not been changed. "
            f"Run `fieldkit recover` to restore from a backup ({where})."
        )


class ReadOnly(StoreError):
    pass


def checksum(*parts: bytes | str | None) -> int:
    crc = 0
    for part in parts:
        if part:
            crc = zlib.crc32(part.encode("utf-8") if isinstance(part, str) else part, crc)
    return crc


def read_marker(home: Path) -> dict[str, Any] | None:
    try:
        found = orjson.loads((home / MARKER_NAME).read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"format": None}
    return found if isinstance(found, dict) else {"format": None}


class Database:
    """One connection to the register file, shared by the threads of one process."""

    def __init__(self, home: Path, newest_backup: Callable[[], Path | None]):
        self.home = home
        self.path = home / FILE_NAME
        self._newest_backup = newest_backup
        self._lock = threading.RLock()
        self._depth = 0
        self._wrote = False
        self.before_commit: list[Callable[[], None]] = []
        self.after_commit: list[Callable[[int, int], None]] = []
        self.after_rollback: list[Callable[[], None]] = []
        self.seq = 0
        self.number = 0  # counts transactions begun: what was read inside this one is still current
        self.read_only = not _writable(home, self.path)
        marker = read_marker(home)
        if marker is not None and marker.get("format") != FORMAT:
            found = marker.get("format")
            if isinstance(found, int) and found > FORMAT:
                raise StoreError(
                    f"{home} was written by a newer fieldkit (store format {found}; this one reads {FORMAT}); update fieldkit"
                )
            raise self.corrupt(home / MARKER_NAME, "it does not say which store format this is")
        if not self.path.exists():
            if marker is not None:
                raise self.corrupt(self.path, "the file is missing")
            if self.read_only:
                raise ReadOnly(f"{home} holds no register and cannot be written; set FIELDKIT_HOME to a folder you can write")
        try:
            if self.read_only:
                self.conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, isolation_level=None,
                                            check_same_thread=False)
            else:
                self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA busy_timeout = 15000")
            if not self.read_only:
                self.conn.execute("PRAGMA journal_mode = TRUNCATE")
                self.conn.execute("PRAGMA synchronous = FULL")
                os.chmod(self.path, 0o600)
            self.conn.execute("PRAGMA cache_size = -16000")
            has_schema = bool(self.conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone())
            if not self.read_only and not has_schema:
                self.conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect on a new file only
                self.conn.execute("BEGIN IMMEDIATE")
                for statement in _statements(SCHEMA):
                    self.conn.execute(statement)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT),))
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('seq', '0')")
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('uid', ?)", (os.urandom(8).hex(),))
                self.conn.execute("COMMIT")
            stored = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            raise self.translate(err) from None
        if stored.get("format") != str(FORMAT):
            raise StoreError(f"{self.path} is in store format {stored.get('format')}; this fieldkit reads {FORMAT}; update fieldkit")
        self.seq = int(stored.get("seq", 0))
        self.uid = stored.get("uid", "")
        self.data_version = self._data_version()
        if marker is None and not self.read_only:
            from fieldkit.store.files import atomic_write

            atomic_write(home / MARKER_NAME, orjson.dumps({"format": FORMAT}))

    # -- errors a person can act on ---------------------------------------------------------

    def corrupt(self, path: Path, detail: str) -> StoreCorrupt:
        return StoreCorrupt(path, detail, self._newest_backup())

    def translate(self, err: sqlite3.Error) -> StoreError:
        text = str(err)
        if "disk is full" in text or "disk I/O error" in text and _disk_full(self.home):
            return StoreError(
                f"The disk holding {self.home} is full: nothing was saved. "
                "Free some space there (old exports or downloads) and try again."
            )
        if "disk I/O error" in text:
            return StoreError(
                f"Could not write to {self.home} (the disk is full, too small for the file, or failing): nothing was saved. "
                "Free some space there and try again; if it goes on, run `fieldkit check`."
            )
        if "readonly" in text or "read-only" in text:
            return ReadOnly(f"{self.home} is read-only: lookups work, changes are off. Copy it to a folder you can write to change it.")
        if "locked" in text or "busy" in text:
            return StoreError(f"Another fieldkit is busy with {self.home} (a long import or sync?); try again in a moment")
        if isinstance(err, sqlite3.DatabaseError) and not isinstance(err, sqlite3.OperationalError) or "malformed" in text or "not a database" in text:
            return self.corrupt(self.path, text)
        return StoreError(f"Cannot use the register in {self.home}: {text}")

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is committed together, durably, or rolled back; nests."""
        with self._lock:
            if self._depth == 0:
                if self.read_only:
                    raise ReadOnly(f"{self.home} is read-only: lookups work, changes are off. Copy it to a folder you can write to change it.")
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    self.seq = int(self.conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
                except sqlite3.Error as err:
                    raise self.translate(err) from None
                self._wrote = False
                self.number += 1
            self._depth += 1
            try:
                yield
                if self._depth == 1:
                    for hook in self.before_commit:
                        hook()
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._rollback()
                raise
            self._depth -= 1
            if self._depth == 0:
                self._commit()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _commit(self) -> None:
        before = self.seq
        try:
            if self._wrote:
                self.conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(self.seq + 1),))
            self.conn.execute("COMMIT")
        except BaseException as err:
            self._rollback()
            if isinstance(err, sqlite3.Error):
                raise self.translate(err) from None
            raise
        if self._wrote:
            self.seq += 1
        for hook in self.after_commit:
            hook(before, self.seq)

    def _rollback(self) -> None:
        for hook in self.after_rollback:
            hook()
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back (a full disk does this itself)

    @property
    def next_seq(self) -> int:
        """The sequence number the rows written by this transaction carry."""
        return self.seq + 1

    def write(self, sql: str, params: Iterable[Any] = ()) -> None:
        if self._depth == 0:
            with self.transaction():
                self.write(sql, params)
            return
        self._wrote = True
        try:
            self.conn.execute(sql, tuple(params))
        except sqlite3.Error as err:
            raise self.translate(err) from None

    def write_many(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        if self._depth == 0:
            with self.transaction():
                self.write_many(sql, rows)
            return
        self._wrote = True
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.Error as err:
            raise self.translate(err) from None

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self.conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as err:
                raise self.translate(err) from None

    def stream(self, sql: str, params: Iterable[Any] = (), batch: int = 2000) -> Iterator[tuple[Any, ...]]:
        """Rows a batch at a time, for reading a whole table without holding it all.

        The lock is held only while a batch is fetched, so a reader that stops
        part-way (or is slow) never keeps another thread from the register.
        """
        try:
            with self._lock:
                cursor = self.conn.execute(sql, tuple(params))
            try:
                while True:
                    with self._lock:
                        found = cursor.fetchmany(batch)
                    if not found:
                        return
                    yield from found
            finally:
                try:
                    cursor.close()
                except sqlite3.Error:
                    pass  # the connection closed first: nothing is left to release
        except sqlite3.Error as err:
            raise self.translate(err) from None

    def _data_version(self) -> int:
        with self._lock:
            try:
                return self.conn.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error as err:
                raise self.translate(err) from None

    def changed_elsewhere(self) -> bool:
        """Whether another process committed since we last looked (cheap: no file is read)."""
        version = self._data_version()
        if version == self.data_version:
            return False
        self.data_version = version
        return True

    def stored_seq(self) -> int:
        return int(self.rows("SELECT value FROM meta WHERE key = 'seq'")[0][0])

    def scan(self, sql: str, params: Iterable[Any] = (), batch: int = 16) -> Iterator[tuple[Any, ...]]:
        """``stream`` for reading tens of MB: through memory-mapped pages, about a third of the CPU.

        The mapping lasts only while the rows are read. SQLite's locks keep the
        file's pages still meanwhile; a disk that fails under a mapping stops the
        process instead of raising an error, which is why it is kept this short.
        """
        self.rows(f"PRAGMA mmap_size = {MMAP_BYTES}")
        try:
            yield from self.stream(sql, params, batch)
        finally:
            try:
                self.rows("PRAGMA mmap_size = 0")
            except StoreError:
                pass  # closed meanwhile: nothing is mapped any more

    def give_back_space(self) -> None:
        """Return the pages freed by a large delete (an emptied outbox) to the file system."""
        free, total = self.rows("PRAGMA freelist_count")[0][0], self.rows("PRAGMA page_count")[0][0]
        if free > 256 and free * 4 > total and self._depth == 0:
            with self._lock:
                try:
                    self.conn.executescript("PRAGMA incremental_vacuum;")  # run to the end (execute() stops after one page)
                except sqlite3.Error as err:
                    raise self.translate(err) from None

    def quick_check(self) -> str | None:
        """SQLite's own check of the file's structure: None when it is sound."""
        found = self.rows("PRAGMA quick_check")
        return None if found == [("ok",)] else "; ".join(str(r[0]) for r in found[:3])

    def close(self) -> None:
        with self._lock:
            self.conn.close()


def _statements(script: str) -> Iterator[str]:
    """The statements of a script one by one (``executescript`` would commit the open transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def _writable(home: Path, path: Path) -> bool:
    if path.exists():
        return os.access(path, os.W_OK) and os.access(home, os.W_OK)
    return os.access(home, os.W_OK)


def _disk_full(home: Path) -> bool:
    try:
        stat = os.statvfs(home)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 1024 * 1024
