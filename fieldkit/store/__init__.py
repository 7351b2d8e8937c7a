"""The local store: the only code that touches fieldkit's files on a laptop.

One SQLite file (``register.sqlite``, see ``database.py``) holds, in tables:

- ``record``: every issue, note, follow-up action, status change, lesson and
  this replica's own documents (``local``: device and clock, settings, sync
  state, the app's draft), each with its merge state packed beside it;
- ``issue_line``: one compact line an issue, what lookups read (``index.py``);
- ``outbox``: operations not yet acknowledged by the central store.

Callers see TinyDB's document API (``Store.table(name)``, see
``documents.py``) plus the few fast paths the register needs. Every row's
checksum is verified as it is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson

from fieldkit.store.backups import Backups
from fieldkit.store.database import (
    FILE_NAME,
    UPSERT_LINE,
    Database,
    ReadOnly,
    StoreCorrupt,
    StoreError,
    checksum,
    line_row,
)

__all__ = ["Store", "StoreError", "StoreCorrupt", "ReadOnly", "default_home", "RECORD_KINDS"]

RECORD_KINDS = ("issue", "note", "action", "status_change", "lesson", "attachment")
CHILD_KINDS = ("note", "action", "status_change", "attachment")

STAGE_LIMIT = 5000

#: An issue's lookup line as the register hands it over: reference, municipality, status, and the line itself.
LookupLine = tuple[str, str, str, str]
#: Works out a staged record's packed merge state and lookup line when the transaction is written.
Finish = Callable[[], "tuple[dict[str, Any] | None, LookupLine | None]"]

Listener = Callable[[str, str, "dict[str, Any] | None"], None]


def default_home() -> Path:
    """The data directory: ``$FIELDKIT_HOME`` or the platform's user data folder."""
    configured = os.environ.get("FIELDKIT_HOME")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_path

    return user_data_path("fieldkit", appauthor=False)


class PlainCodec:
    """How record bytes are written and read back: as they are (the register unencrypted).

    The one seam for encryption at rest: a codec that seals every record,
    line and operation on the way in and opens them on the way out.
    ``searchable`` says whether SQLite may search the lookup lines itself.
    """

    searchable = True

    def seal(self, data: bytes) -> bytes:
        return data

    def unseal(self, data: bytes) -> bytes:
        return data


class Store:
    def __init__(self, home: str | os.PathLike | None = None, codec: PlainCodec | None = None):
        self.home = Path(home) if home is not None else default_home()
        self.codec = codec or PlainCodec()
        if not self.home.exists():
            try:
                self.home.mkdir(parents=True, mode=0o700)
            except OSError as err:
                raise StoreError(f"Cannot create the data folder {self.home}: {err.strerror}; set FIELDKIT_HOME to a folder you can write") from None
        self.backups = Backups(self.home)
        from fieldkit.store import legacy

        if legacy.is_legacy(self.home):
            legacy.migrate(self.home, self.backups)
        self.db = Database(self.home, self.backups.newest)
        self._check_codec()
        if not self.db.read_only:
            self.backups.clean_leftovers()
        self._listeners: list[Listener] = []
        self._tables: dict[str, Any] = {}
        self._seen_seq = self.db.seq
        self._mark: Path | None = None
        # Writes inside a transaction are kept here and written in one statement a table at commit:
        # a demo or an import of 100,000 issues costs a few executemany calls, not a million statements.
        self._staged: dict[tuple[str, str], tuple[Any, Any, Any, Any]] = {}
        self._staged_refs: set[str] = set()
        self._staged_ops: list[dict[str, Any]] = []
        self._written: list[tuple[str, str, dict[str, Any] | None]] = []
        self.db.before_commit.append(self._flush)
        self.db.before_commit.append(self._fold)  # after the last flush: nothing is written after it
        self.db.after_commit.append(self._committed)
        self.db.after_rollback.append(self._forget)
        if not self.codec.searchable and not self.read_only:
            from fieldkit.store.sealing import finish_sealing, sealing_unfinished

            if sealing_unfinished(self):  # `fieldkit encrypt` was cut short after the rows were sealed
                finish_sealing(self, PlainCodec())

    @property
    def read_only(self) -> bool:
        return self.db.read_only

    @property
    def blobs(self):
        """Attached files, stored by content beside the register (``blobs.py``), through the same codec."""
        from fieldkit.store.blobs import Blobs

        return Blobs(self.home, self.codec)

    def _check_codec(self) -> None:
        """An encrypted register opened without its key: say so, rather than call every row damaged."""
        found = self.db.rows("SELECT value FROM meta WHERE key = 'codec'")
        sealed = bool(found) and found[0][0] == "sealed"
        if sealed and self.codec.searchable:
            self.db.close()
            from fieldkit.store.sealing import Locked

            raise Locked(f"The register in {self.home} is encrypted: give its passphrase "
                         "(`fieldkit unlock`, FIELDKIT_PASSPHRASE, the OS keyring, or run fieldkit in a terminal to be asked)")

    # -- TinyDB's document API ---------------------------------------------------------

    def table(self, name: str):
        """The TinyDB table of one kind of record (``issue``, ``note``, ... ``local``)."""
        found = self._tables.get(name)
        if found is None:
            from fieldkit.store.documents import open_tables

            self._tables = open_tables(self)
            found = self._tables.get(name)
            if found is None:
                raise KeyError(name)
        return found

    # -- records ------------------------------------------------------------------------

    def _decode(self, kind: str, record_id: str, doc: bytes, merge: bytes | None, crc: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if checksum(doc, merge) != crc:
            raise self.db.corrupt(self.db.path, f"{kind} {record_id} does not match its checksum")
        try:
            unseal = self.codec.unseal
            return orjson.loads(unseal(doc)), (orjson.loads(unseal(merge)) if merge else None)
        except ValueError:  # not JSON, or a sealed value that does not open
            raise self.db.corrupt(self.db.path, f"{kind} {record_id} does not read back") from None

    def get(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """One record's values, or None."""
        staged = self._staged.get((kind, record_id))
        if staged is not None:
            return dict(staged[0]) if staged[0] is not None else None
        found = self.db.rows("SELECT doc, merge, crc FROM record WHERE kind = ? AND id = ?", (kind, record_id))
        return self._decode(kind, record_id, *found[0])[0] if found else None

    def get_with_state(self, kind: str, record_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """One record's values and its packed merge state, or None."""
        found = self.get_many_with_state([(kind, record_id)])
        return found.get((kind, record_id))

    def get_many_with_state(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]]:
        """Many records' values and packed merge states at once, by (kind, id)."""
        by_kind: dict[str, list[str]] = {}
        found: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        for kind, record_id in keys:
            staged = self._staged.get((kind, record_id))
            if staged is None:
                by_kind.setdefault(kind, []).append(record_id)
            elif staged[0] is not None:
                packed = staged[3]()[0] if staged[3] is not None else staged[1]
                found[(kind, record_id)] = (dict(staged[0]), packed or {})
        for kind, ids in by_kind.items():
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for record_id, doc, merge, crc in self.db.rows(
                    f"SELECT id, doc, merge, crc FROM record WHERE kind = ? AND id IN ({','.join('?' * len(chunk))})",
                    (kind, *chunk),
                ):
                    values, packed = self._decode(kind, record_id, doc, merge, crc)
                    found[(kind, record_id)] = (values, packed or {})
        return found

    def ref_taken(self, ref: str) -> bool:
        return ref.upper() in self._staged_refs or bool(self.db.rows("SELECT 1 FROM issue_line WHERE ref = ?", (ref.upper(),)))

    def file_identity(self) -> str:
        """What tells this register file from a copy of it: a restored or copied file is a new file."""
        stat = os.stat(self.db.path)
        return f"{stat.st_dev}:{stat.st_ino}"

    def _mark_path(self) -> Path:
        if self._mark is None:
            configured = os.environ.get("FIELDKIT_STATE")
            if configured:
                folder = Path(configured)
            else:
                from platformdirs import user_state_path

                folder = user_state_path("fieldkit", appauthor=False)
            self._mark = folder / "stores" / f"{self.db.uid}.seq"
        return self._mark

    def _write_mark(self, seq: int) -> None:
        """Note, outside the data folder, how far this register has come (no fsync: a hint, not data)."""
        path = self._mark_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(seq))
        except OSError:
            pass

    def went_back(self) -> bool:
        """Whether this register file is older than one this machine already had: a restored copy."""
        try:
            return int(self._mark_path().read_text() or 0) > self.db.seq
        except (OSError, ValueError):
            return False

    def accept_restore(self) -> None:
        self._write_mark(self.db.seq)

    def kind_of(self, record_id: str) -> str | None:
        for kind in RECORD_KINDS:
            if (kind, record_id) in self._staged:
                return kind
        for kind in RECORD_KINDS:
            if self.db.rows("SELECT 1 FROM record WHERE kind = ? AND id = ?", (kind, record_id)):
                return kind
        return None

    def put(self, kind: str, record_id: str, doc: dict[str, Any], merge: dict[str, Any] | None = None,
            line: "LookupLine | None" = None, finish: "Finish | None" = None) -> None:
        """Save a whole record (its values, merge state and, for an issue, its lookup line).

        ``finish``, instead of ``merge`` and ``line``, works them out when the
        transaction is written: a record changed several times in one
        transaction (an import, a pulled page) is packed once.
        """
        if not self.db.in_transaction:
            with self.db.transaction():
                return self.put(kind, record_id, doc, merge, line, finish)
        self._staged[(kind, record_id)] = (doc, merge, line, finish)
        if kind == "issue" and doc.get("ref"):
            self._staged_refs.add(str(doc["ref"]).upper())
        self._written.append((kind, record_id, doc))
        if len(self._staged) >= STAGE_LIMIT:
            self._flush()  # still inside the transaction: a long import holds a few thousand records, not all

    def staged_finish(self, kind: str, record_id: str) -> "Finish | None":
        """The ``finish`` a record was staged with in this transaction, if any."""
        staged = self._staged.get((kind, record_id))
        return staged[3] if staged is not None else None

    def delete(self, kind: str, record_id: str) -> None:
        """Remove a local document (records of the register are never removed: they get tombstones)."""
        with self.db.transaction():
            self._staged[(kind, record_id)] = (None, None, None, None)
            self._written.append((kind, record_id, None))

    def _flush(self) -> None:
        """Write what this transaction staged: one statement a table."""
        if not (self._staged or self._staged_ops):
            return
        seq = self.db.next_seq
        seal = self.codec.seal
        rows, lines, gone = [], [], []
        for (kind, record_id), (doc, merge, line, finish) in self._staged.items():
            if finish is not None:
                merge, line = finish()
            if doc is None:
                gone.append((kind, record_id))
                continue
            doc_bytes = seal(orjson.dumps(doc))
            merge_bytes = seal(orjson.dumps(merge)) if merge is not None else None
            parent = doc.get("issue_id") if kind in CHILD_KINDS else None
            rows.append((kind, record_id, parent, seq, doc_bytes, merge_bytes, checksum(doc_bytes, merge_bytes)))
            if line is not None:
                lines.append(line_row(record_id, *line, seal=None if self.codec.searchable else seal))
        ops = []
        for op in self._staged_ops:
            payload = seal(orjson.dumps(op))
            ops.append((op["op_id"], op["id"], "pending", "", payload, checksum(payload)))
        self._staged.clear()
        self._staged_refs.clear()
        self._staged_ops.clear()
        if rows:
            self.db.write_many("INSERT OR REPLACE INTO record(kind, id, parent, seq, doc, merge, crc) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if lines:
            self.db.write_many(UPSERT_LINE, lines)
        if gone:
            self.db.write_many("DELETE FROM record WHERE kind = ? AND id = ?", gone)
            self.db.write_many("DELETE FROM issue_line WHERE id = ?", [(record_id,) for _, record_id in gone])
        gone_issues = [record_id for kind, record_id in gone if kind == "issue"]
        if not self.codec.searchable and gone_issues:
            from fieldkit.store import sealed_lines

            sealed_lines.removed(self.db, self.codec, gone_issues)
        if ops:
            self.db.write_many("INSERT OR REPLACE INTO outbox(op_id, record_id, state, reason, op, crc) VALUES (?, ?, ?, ?, ?, ?)", ops)

    def _read(self) -> Database:
        """The database, with this transaction's staged writes in it, for a query."""
        if self.db.in_transaction:
            self._flush()
        return self.db

    def _committed(self, before: int, after: int) -> None:
        """Tell the listeners once the transaction has committed; never about one rolled back."""
        written, self._written = self._written, []
        if after != before:
            self._write_mark(after)
        if self._seen_seq == before:
            self._seen_seq = after
        for kind, record_id, doc in written:
            for listener in self._listeners:
                listener(kind, record_id, doc)

    def _forget(self) -> None:
        self._staged.clear()
        self._staged_refs.clear()
        self._staged_ops.clear()
        self._written.clear()

    def children(self, kind: str, parent: str) -> list[dict[str, Any]]:
        """The notes, actions or status changes of one issue."""
        found = self._read().rows("SELECT id, doc, merge, crc FROM record WHERE parent = ? AND kind = ?", (parent, kind))
        return [self._decode(kind, record_id, doc, merge, crc)[0] for record_id, doc, merge, crc in found]

    def documents(self, kind: str) -> "KindView":
        """All records of one kind by id, read lazily: iterate, look up, count."""
        return KindView(self, kind)

    def iter_kind(self, kind: str, with_state: bool = False) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
        for record_id, doc, merge, crc in self._read().stream("SELECT id, doc, merge, crc FROM record WHERE kind = ?", (kind,)):
            values, state = self._decode(kind, record_id, doc, merge, crc)
            yield record_id, values, state

    def count(self, kind: str) -> int:
        return self._read().rows("SELECT count(*) FROM record WHERE kind = ?", (kind,))[0][0]

    # -- this replica's own documents ----------------------------------------------------

    def local(self, key: str) -> dict[str, Any]:
        return self.get("local", key) or {}

    def set_local(self, key: str, doc: dict[str, Any]) -> None:
        self.put("local", key, doc)

    # -- the outbox ----------------------------------------------------------------------

    def queue(self, ops: Iterable[dict[str, Any]]) -> None:
        """Put operations in the outbox, waiting to be sent."""
        if not self.db.in_transaction:
            with self.db.transaction():
                return self.queue(ops)
        self._staged_ops.extend(ops)

    def _op(self, op_id: str, payload: bytes, crc: int) -> dict[str, Any]:
        if checksum(payload) != crc:
            raise self.db.corrupt(self.db.path, f"the unsent change {op_id} does not match its checksum")
        try:
            return orjson.loads(self.codec.unseal(payload))
        except ValueError:
            raise self.db.corrupt(self.db.path, f"the unsent change {op_id} does not read back") from None

    def outbox(self, state: str, limit: int | None = None) -> list[tuple[dict[str, Any], str]]:
        """Operations in one state, oldest first (ids are time-ordered), with their reasons."""
        sql = "SELECT op_id, op, crc, reason FROM outbox WHERE state = ? ORDER BY op_id"
        params: tuple[Any, ...] = (state,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [(self._op(op_id, payload, crc), self._reason(reason)) for op_id, payload, crc, reason in self._read().rows(sql, params)]

    def _reason(self, stored: str | bytes) -> str:
        """A refusal reason as the central store wrote it (sealed like the rest: it may quote a value)."""
        if isinstance(stored, str):
            return stored
        try:
            return self.codec.unseal(stored).decode("utf-8")
        except ValueError:
            raise self.db.corrupt(self.db.path, "a refusal reason does not read back") from None

    def outbox_count(self, state: str) -> int:
        return self._read().rows("SELECT count(*) FROM outbox WHERE state = ?", (state,))[0][0]

    def outbox_record_ids(self, state: str | None = None) -> set[str]:
        if state is None:
            return {r[0] for r in self._read().rows("SELECT DISTINCT record_id FROM outbox")}
        return {r[0] for r in self._read().rows("SELECT DISTINCT record_id FROM outbox WHERE state = ?", (state,))}

    def outbox_mark(self) -> tuple[int, int]:
        """Where the outbox stands: how many times operations have left it, and its newest row.

        Operations only leave the outbox through ``unqueue``, which counts it; rows are
        numbered upwards, so while the count holds, what was queued since a mark is
        exactly the rows after it.
        """
        found = self._read().rows("SELECT (SELECT value FROM meta WHERE key = 'outbox_cut'), (SELECT max(rowid) FROM outbox)")[0]
        return int(found[0] or 0), int(found[1] or 0)

    def outbox_record_ids_since(self, mark: tuple[int, int]) -> tuple[set[str], tuple[int, int]] | None:
        """The records of operations queued after ``mark``, and the new mark; None when some have left since."""
        now = self.outbox_mark()
        if now[0] != mark[0] or now[1] < mark[1]:
            return None
        return {r[0] for r in self._read().rows("SELECT DISTINCT record_id FROM outbox WHERE rowid > ?", (mark[1],))}, now

    def outbox_states(self, op_ids: Iterable[str]) -> dict[str, str]:
        wanted = list(op_ids)
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(self._read().rows(f"SELECT op_id, state FROM outbox WHERE op_id IN ({marks})", chunk))
        return found

    def unqueue(self, op_ids: Iterable[str]) -> None:
        self._read().write_many("DELETE FROM outbox WHERE op_id = ?", ((op_id,) for op_id in op_ids))
        self.outbox_cut()

    def outbox_cut(self) -> None:
        """Count that operations left the outbox or its rows were renumbered (see ``outbox_mark``)."""
        self.db.write("INSERT INTO meta VALUES ('outbox_cut', '1') "
                      "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def give_back_space(self) -> None:
        """After a sync emptied the outbox: give the freed space back (not inside a transaction)."""
        self.db.give_back_space()

    def mark(self, marks: dict[str, tuple[str, str]]) -> None:
        """Set the state and reason of operations: ``{op_id: (state, reason)}``."""
        seal = (lambda text: text) if self.codec.searchable else (lambda text: self.codec.seal(text.encode("utf-8")) if text else "")
        self._read().write_many("UPDATE outbox SET state = ?, reason = ? WHERE op_id = ?",
                           ((state, seal(reason), op_id) for op_id, (state, reason) in marks.items()))

    # -- the lookup lines ------------------------------------------------------------------

    def issue_lines(self, needle: str | None = None, ref: str | None = None, ids: Iterable[str] | None = None,
                    municipalities: Iterable[str] | None = None, statuses: Iterable[str] | None = None) -> Iterator[str]:
        """The compact lines of the issues that can match, checked: those holding ``needle`` in their
        words (all of them for None), with a reference, with ids, in some municipalities or statuses."""
        columns = "l.id, l.line, l.words, l.crc"
        chosen = [(name, list(values)) for name, values in (("id", ids), ("municipality", municipalities), ("status", statuses))
                  if values is not None]
        if ref is not None:
            found: Iterable[tuple[str, str, str, int]] = self._read().rows(
                f"SELECT {columns} FROM issue_line l WHERE ref = ?", (ref.upper(),))
        elif chosen:
            column, wanted = chosen[0]
            found = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                found += self._read().rows(
                    f"SELECT {columns} FROM issue_line l WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)
        elif not self.codec.searchable and needle is not None:
            yield from self._searched_sealed_lines(needle)
            return
        elif needle is not None and self.codec.searchable and len(needle) >= 3 and not set(needle) & set("%_\\"):
            found = self._read().stream(  # the trigram index: any part of a word, without reading every line
                f"SELECT {columns} FROM issue_text JOIN issue_line l ON l.rowid = issue_text.rowid "
                "WHERE issue_text.words LIKE ?", (f"%{needle}%",))
        elif needle is not None and self.codec.searchable:
            found = self._read().stream(f"SELECT {columns} FROM issue_line l WHERE instr(l.words, ?) > 0", (needle,))
        else:
            found = self._read().stream(f"SELECT {columns} FROM issue_line l")
        if not self.codec.searchable:
            yield from self._unsealed_lines(((record_id, line, crc) for record_id, line, _, crc in found), None)
            return
        for record_id, line, words, crc in found:
            if checksum(line, words) != crc:
                raise self.db.corrupt(self.db.path, f"the lookup line of issue {record_id} does not match its checksum")
            yield f"{line}\t{words}"

    def _unsealed_lines(self, found: Iterable[tuple[str, bytes, int]], needle: str | None) -> Iterator[str]:
        """Sealed lines cannot be searched by SQLite: open each and look for ``needle`` here."""
        unseal = self.codec.unseal
        for record_id, sealed, crc in found:
            if checksum(sealed) != crc:
                raise self.db.corrupt(self.db.path, f"the lookup line of issue {record_id} does not match its checksum")
            try:
                line = unseal(sealed).decode("utf-8")
            except ValueError:
                raise self.db.corrupt(self.db.path, f"the lookup line of issue {record_id} does not read back") from None
            if needle is None or needle in line:
                yield line

    def _searched_sealed_lines(self, needle: str) -> Iterator[str]:
        """A search of an encrypted register: the lines whose words hold ``needle``, from the buckets
        that can hold it (``sealed_lines.py``), then from the issues changed since their buckets were written.

        Each bucket is sealed with AES-GCM, whose tag already refuses a changed byte.
        """
        from fieldkit.store import sealed_lines

        db = self._read()
        changed = sealed_lines.changed(db)
        try:
            yield from sealed_lines.search(db, self.codec, needle, set(changed))
        except ValueError:
            raise self.db.corrupt(self.db.path, "a bucket of lookup lines does not read back") from None
        yield from (line for line in self._sealed_lines_of(changed).values() if needle in line.rpartition("\t")[2])

    def _sealed_lines_of(self, ids: list[str]) -> dict[str, str]:
        """The lookup lines of some issues, opened, by id (those without a line left out)."""
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self.db.rows(f"SELECT id, line, crc FROM issue_line WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update((line.partition("\t")[0], line) for line in self._unsealed_lines(rows, None))
        return found

    def _fold(self) -> None:
        """At the end of a transaction of an encrypted register: fold the issues saved lately into their buckets when due."""
        if not self.codec.searchable:
            from fieldkit.store import sealed_lines

            sealed_lines.fold_if_due(self.db, self.codec, self._sealed_lines_of)

    def refs_starting(self, prefix: str, limit: int) -> list[str]:
        upper = prefix.upper()
        end = upper[:-1] + chr(ord(upper[-1]) + 1) if upper else ""
        return [r[0] for r in self._read().rows("SELECT id FROM issue_line WHERE ref >= ? AND ref < ? ORDER BY ref LIMIT ?", (upper, end, limit))]

    def ids_starting(self, prefix: str, limit: int) -> list[str]:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""
        return [r[0] for r in self._read().rows("SELECT id FROM issue_line WHERE id >= ? AND id < ? ORDER BY id LIMIT ?", (prefix, end, limit))]

    def issue_count(self) -> int:
        return self._read().rows("SELECT count(*) FROM issue_line")[0][0]

    # -- transactions, other processes ---------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside is saved durably together, or not at all.

        Whatever is read inside is what is saved now: another process's writes
        wait until this one commits.
        """
        with self.db.transaction():
            yield

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(kind, id, values or None)`` for every change, ours or another process's."""
        self._listeners.append(listener)

    def refresh(self) -> bool:
        """Take in what another process saved since we last looked; True when there was something."""
        if not self.db.changed_elsewhere():
            return False
        stored = self.db.stored_seq()
        if stored > self._seen_seq and self._listeners:
            for record_id, kind, doc, merge, crc in self.db.rows(
                "SELECT id, kind, doc, merge, crc FROM record WHERE seq > ?", (self._seen_seq,)
            ):
                values = self._decode(kind, record_id, doc, merge, crc)[0]
                for listener in self._listeners:
                    listener(kind, record_id, values)
        self._seen_seq = max(stored, self._seen_seq)
        return True

    # -- backups ---------------------------------------------------------------------------

    def backup(self, elsewhere: bool = False) -> Path:
        """A verified, independent, compressed copy of the register (see ``backups.py``), and its attached files;
        ``elsewhere`` makes the register's copy in a process of its own (the app, beside its interface)."""
        made = self.backups.make_elsewhere(self.db.path) if elsewhere else self.backups.make(self.db.path)
        self.blobs.back_up(self.backups.folder / "files")
        return made

    def check(self) -> None:
        """Read every row back and check the file's structure: StoreCorrupt if anything is wrong."""
        problem = self.db.quick_check()
        if problem:
            raise self.db.corrupt(self.db.path, problem)
        for kind in (*RECORD_KINDS, "local"):
            for _ in self.iter_kind(kind):
                pass
        for _ in self.issue_lines():
            pass
        if not self.codec.searchable:
            from fieldkit.store import sealed_lines

            try:
                sealed_lines.check(self.db, self.codec)
            except ValueError:
                raise self.db.corrupt(self.db.path, "a bucket of lookup lines does not read back") from None
        self.outbox("pending")
        self.outbox("rejected")
        blobs = self.blobs
        for sha in blobs.stored():
            blobs.get(sha)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KindView(Mapping):
    """All records of one kind as a read-only mapping, read from the file as it is used."""

    def __init__(self, store: Store, kind: str):
        self._store = store
        self._kind = kind

    def __getitem__(self, record_id: str) -> dict[str, Any]:
        found = self._store.get(self._kind, record_id)
        if found is None:
            raise KeyError(record_id)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([r[0] for r in self._store._read().rows("SELECT id FROM record WHERE kind = ?", (self._kind,))])

    def __len__(self) -> int:
        return self._store.count(self._kind)

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and self._store.get(self._kind, record_id) is not None

    def items(self):  # type: ignore[override]
        return [(record_id, values) for record_id, values, _ in self._store.iter_kind(self._kind)]

    def values(self):  # type: ignore[override]
        return [values for _, values, _ in self._store.iter_kind(self._kind)]

