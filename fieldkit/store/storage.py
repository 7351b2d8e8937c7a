"""TinyDB storage that is durable, crash-safe and fast at 100,000 issues.

TinyDB's own JSONStorage rewrites the whole file in place on every change and
re-reads it on every query. Here the database lives in memory and on disk as:

``tables/<name>.json``
    one snapshot per table, ``{"watermark": seq, "documents": {id: doc}}``,
    written only by compaction (temporary file, fsync, rename, fsync the folder);
``journal.log``
    one line per transaction, ``<crc32> {"seq": n, "writes": {table: {id: doc|null}}}``,
    appended and fsynced before a save returns;
``backups/<time>-<seq>/``
    the snapshot and journal as they were before each compaction (hard links,
    so a backup costs no copying).

A save appends one short line instead of rewriting 100 MB; a crash mid-append
leaves a torn last line, which was never acknowledged and is dropped on the
next start. Anything else that does not read back is corruption: the store
refuses to open, names the file and the newest backup, and never writes over it.

Tables are loaded on first use, so ``fieldkit find`` reads only the issues.
Several processes may share one store: writes take an exclusive lock and first
replay whatever another process appended.
"""

from __future__ import annotations

import copy
import gc
import os
import shutil
import time
import zlib
from collections.abc import MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from fieldkit.ids import new_id
from fieldkit.store.files import AppendLog, DirectoryLock, atomic_write, fsync_dir

COMPACT_BYTES = 16 * 1024 * 1024
KEEP_BACKUPS = 3

Listener = Callable[[str, str, "dict[str, Any] | None"], None]


class StoreError(Exception):
    """A problem with the store a person must act on; the message says what to do."""


class StoreCorrupt(StoreError):
    def __init__(self, path: Path, detail: str, backup: Path | None):
        self.path = path
        self.backup = backup
        where = f"the last good backup is {backup}" if backup else "there is no backup yet"
        super().__init__(
            f"{path} is damaged ({detail}); it has not been changed. "
            f"Run `fieldkit recover` to restore from a backup ({where})."
        )


def _encode_line(seq: int, writes: dict[str, dict[str, Any]]) -> bytes:
    body = orjson.dumps({"seq": seq, "writes": writes})
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """A journal entry, or None when the line is torn or damaged."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        entry = orjson.loads(body)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "seq" in entry and "writes" in entry else None


class _Tables(MutableMapping):
    """What TinyDB sees as 'the whole database': tables appear as they are first touched."""

    def __init__(self, storage: "JournalStorage"):
        self._storage = storage

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self._storage.table_names():
            raise KeyError(name)
        return self._storage.table(name)

    def __setitem__(self, name: str, documents: dict[str, Any]) -> None:
        raise TypeError("tables change through the store, not by assignment")

    def __delitem__(self, name: str) -> None:
        raise TypeError("tables change through the store, not by deletion")

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._storage.table_names()))

    def __len__(self) -> int:
        return len(self._storage.table_names())


class JournalStorage(Storage):
    """The TinyDB ``Storage`` behind fieldkit: snapshot per table plus an fsynced journal."""

    def __init__(self, home: str | os.PathLike, compact_bytes: int = COMPACT_BYTES):
        self.home = Path(home)
        self.tables_dir = self.home / "tables"
        self.backups_dir = self.home / "backups"
        self.journal_path = self.home / "journal.log"
        self.compact_bytes = compact_bytes
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        self._lock = DirectoryLock(self.home / "store.lock")
        self._listeners: list[Listener] = []
        self._derived: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {}
        self._reset_listeners: list[Callable[[], None]] = []
        self._staged: dict[str, dict[str, Any]] = {}
        self._before: dict[tuple[str, str], Any] = {}
        self._depth = 0
        self._log: AppendLog | None = None
        with self._lock.hold(exclusive=False):
            self._load()

    # -- reading -----------------------------------------------------------------

    def _load(self) -> None:
        self._loaded: dict[str, dict[str, Any]] = {}
        self._pending: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._names = {p.stem for p in self.tables_dir.glob("*.json")}
        self._dirty: set[str] = set()  # tables with journal entries not yet in their snapshot
        self._seq = 0
        self._offset = 0
        self._inode = None
        if self.journal_path.exists():
            self._read_journal(from_offset=0)
        # New entries must sort after every snapshot, also after a compaction emptied the journal.
        marks = [self.snapshot_watermark(name) or 0 for name in self._names]
        self._seq = max([self._seq, *marks])

    def _read_journal(self, from_offset: int) -> list[dict[str, Any]]:
        with open(self.journal_path, "rb") as journal:
            stat = os.fstat(journal.fileno())
            journal.seek(from_offset)
            raw = journal.read()
        entries = []
        offset = from_offset
        lines = raw.split(b"\n")
        for number, line in enumerate(lines):
            last = number == len(lines) - 1
            if last and not line:
                break
            entry = _decode_line(line)
            if entry is None:
                if last or (number == len(lines) - 2 and not lines[-1]):
                    break  # a torn final write: it was never acknowledged
                raise StoreCorrupt(self.journal_path, f"entry at byte {offset} does not read back", self.newest_backup())
            offset += len(line) + 1
            entries.append(entry)
        self._inode = stat.st_ino
        self._offset = offset
        for entry in entries:
            self._absorb(entry)
        return entries

    def _absorb(self, entry: dict[str, Any]) -> None:
        seq = entry["seq"]
        if seq <= self._seq:
            return
        self._seq = seq
        for name, writes in entry["writes"].items():
            self._names.add(name)
            self._dirty.add(name)
            if name in self._loaded:
                self._apply(name, writes, notify=True)
            else:
                self._pending.setdefault(name, []).append((seq, writes))

    def _apply(self, name: str, writes: dict[str, Any], notify: bool) -> None:
        documents = self._loaded[name]
        for doc_id, doc in writes.items():
            if doc is None:
                documents.pop(doc_id, None)
            else:
                documents[doc_id] = doc
            if notify:
                for listener in self._listeners:
                    listener(name, doc_id, doc)

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def snapshot_watermark(self, name: str) -> int | None:
        """The journal sequence a table's snapshot includes, read from its first bytes only."""
        path = self.tables_dir / f"{name}.json"
        try:
            with open(path, "rb") as snapshot:
                head = snapshot.read(64)
        except FileNotFoundError:
            return None
        prefix = b'{"watermark":'
        if not head.startswith(prefix):
            return None
        digits = head[len(prefix):].split(b",", 1)[0]
        return int(digits) if digits.isdigit() else None

    def pending_writes(self, name: str, after: int) -> dict[str, Any]:
        """What the journal changed in a table that is not loaded, after a sequence number."""
        merged: dict[str, Any] = {}
        for seq, writes in self._pending.get(name, []):
            if seq > after:
                merged.update(writes)
        return merged

    def add_derived(self, name: str, table: str, render: Callable[[dict[str, Any]], bytes]) -> None:
        """Keep ``tables/<name>`` (a compact view of ``table``) beside its snapshot at each compaction."""
        self._derived[name] = (table, render)

    def read_derived(self, name: str) -> tuple[int, bytes] | None:
        """A derived view and the watermark it was made at, or None if there is none."""
        path = self.tables_dir / name
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        head, _, body = raw.partition(b"\n")
        words = head.split()
        if len(words) != 2 or words[0] != b"fieldkit-derived" or not words[1].isdigit():
            return None
        return int(words[1]), body

    def table_names(self) -> set[str]:
        return self._names | set(self._loaded)

    def table(self, name: str) -> dict[str, Any]:
        """A table's documents by id, loaded from its snapshot and the journal on first use."""
        documents = self._loaded.get(name)
        if documents is not None:
            return documents
        path = self.tables_dir / f"{name}.json"
        watermark = 0
        documents = {}
        if path.exists():
            try:
                snapshot = orjson.loads(path.read_bytes())
                watermark = int(snapshot["watermark"])
                documents = snapshot["documents"]
                if not isinstance(documents, dict):
                    raise ValueError("documents is not an object")
            except (ValueError, KeyError, TypeError) as err:
                raise StoreCorrupt(path, f"it does not read back: {err}", self.newest_backup()) from None
        self._loaded[name] = documents
        for seq, writes in self._pending.pop(name, []):
            if seq > watermark:
                self._apply(name, writes, notify=False)
        if len(documents) > 1000:
            gc.freeze()  # long-lived documents: keep full collections from walking them mid-lookup
        return documents

    def read(self) -> MutableMapping:
        return _Tables(self)

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """TinyDB calls this only to drop tables; ordinary writes come through ``stage``."""
        with self.transaction():
            for name in self.table_names() - set(data):
                documents = self.table(name)
                for doc_id in list(documents):
                    self._remember(name, doc_id, documents)
                    del documents[doc_id]
                    self._staged.setdefault(name, {})[doc_id] = None

    # -- writing -----------------------------------------------------------------

    def on_change(self, listener: Listener) -> None:
        """Call ``listener(table, id, doc or None)`` for every change, ours or another process's."""
        self._listeners.append(listener)

    def on_reset(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` when another process compacted the store and it was reloaded."""
        self._reset_listeners.append(listener)

    def refresh(self) -> None:
        """Catch up with what another process wrote since we last looked."""
        with self._lock.hold(exclusive=False):
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        try:
            stat = os.stat(self.journal_path)
        except FileNotFoundError:
            return
        if self._inode is not None and stat.st_ino != self._inode:
            if self._log:
                self._log.close()
                self._log = None
            self._load()
            for listener in self._reset_listeners:
                listener()
        elif stat.st_size > self._offset:
            self._read_journal(from_offset=self._offset)

    def _remember(self, name: str, doc_id: str, documents: dict[str, Any], replacing: bool = False) -> None:
        """Keep a document as it was before this transaction, to put back if it fails.

        A document about to be replaced whole is kept as it is (nothing changes
        it after); one about to be changed in place is copied first.
        """
        key = (name, doc_id)
        if key not in self._before:
            old = documents.get(doc_id)
            self._before[key] = old if replacing or old is None else copy.deepcopy(old)

    def write_document(self, name: str, doc_id: str, doc: dict[str, Any] | None) -> None:
        """Replace (or with None remove) one document: the fast path for whole-document writes."""
        if self._depth == 0:
            with self.transaction():
                self.write_document(name, doc_id, doc)
            return
        documents = self.table(name)
        self._remember(name, doc_id, documents, replacing=True)
        if doc is None:
            documents.pop(doc_id, None)
        else:
            documents[doc_id] = doc
        self._staged.setdefault(name, {})[doc_id] = doc
        self._names.add(name)

    def stage(self, name: str, doc_ids: set[str]) -> None:
        """Record that these documents changed; they are written when the transaction commits."""
        documents = self.table(name)
        staged = self._staged.setdefault(name, {})
        for doc_id in doc_ids:
            staged[doc_id] = documents.get(doc_id)
        self._names.add(name)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group changes into one journal line: all of them are on disk, or none."""
        with self._lock.hold(exclusive=True):
            if self._depth == 0:
                self._refresh_locked()
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._rollback()
                raise
            self._depth -= 1
            if self._depth == 0:
                self._commit()

    def _rollback(self) -> None:
        for (name, doc_id), doc in self._before.items():
            documents = self._loaded.get(name)
            if documents is None:
                continue
            if doc is None:
                documents.pop(doc_id, None)
            else:
                documents[doc_id] = doc
        self._before.clear()
        self._staged.clear()

    def _commit(self) -> None:
        writes = {name: docs for name, docs in self._staged.items() if docs}
        if not writes:
            self._before.clear()
            self._staged.clear()
            return
        line = _encode_line(self._seq + 1, writes)
        if self.journal_path.exists() and os.path.getsize(self.journal_path) > self._offset:
            self._undo_append()  # a torn last line from a crash: never acknowledged, so cut it off
        if self._log is None:
            self._log = AppendLog(self.journal_path)
            if self._inode is None:
                self._inode = os.fstat(self._log._fd).st_ino
        try:
            self._log.append(line)
        except BaseException:
            self._undo_append()
            self._rollback()
            raise
        self._seq += 1
        self._offset += len(line)
        self._dirty.update(writes)
        self._before.clear()
        self._staged.clear()
        for name, docs in writes.items():
            for doc_id, doc in docs.items():
                for listener in self._listeners:
                    listener(name, doc_id, doc)
        if self._offset > self.compact_bytes:
            self.compact()

    def _undo_append(self) -> None:
        """A failed append may have left part of a line: cut it off so the journal stays readable."""
        try:
            os.truncate(self.journal_path, self._offset)
        except OSError:
            pass

    # -- compaction and backups ------------------------------------------------------

    def compact(self) -> None:
        """Fold the journal into the snapshots; the files as they were become a backup.

        Only tables the journal touched are rewritten: an edit since the last
        compaction costs the issue table and one merge shard, not the whole store.
        """
        with self._lock.hold(exclusive=True):
            self._refresh_locked()
            if self._offset == 0:
                return
            names = sorted(self._dirty)
            for name in names:
                self.table(name)
            backup = self.backups_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{self._seq:08d}"
            backup.mkdir(parents=True, exist_ok=True)
            for path in [*self.tables_dir.glob("*.json"), self.journal_path]:
                if path.exists():
                    os.link(path, backup / path.name)
            fsync_dir(backup)
            for name in names:
                payload = orjson.dumps({"watermark": self._seq, "documents": self._loaded[name]})
                atomic_write(self.tables_dir / f"{name}.json", payload)
            for derived, (table, render) in self._derived.items():
                if table in names:
                    body = render(self._loaded[table])
                    atomic_write(self.tables_dir / derived, b"fieldkit-derived %d\n" % self._seq + body)
            if self._log:
                self._log.close()
                self._log = None
            atomic_write(self.journal_path, b"")
            self._inode = os.stat(self.journal_path).st_ino
            self._offset = 0
            self._dirty.clear()
            for old in self.backups()[KEEP_BACKUPS:]:
                shutil.rmtree(old, ignore_errors=True)

    def backups(self) -> list[Path]:
        """Backups, newest first."""
        if not self.backups_dir.exists():
            return []
        return sorted((p for p in self.backups_dir.iterdir() if p.is_dir()), reverse=True)

    def newest_backup(self) -> Path | None:
        found = self.backups()
        return found[0] if found else None

    @property
    def journal_bytes(self) -> int:
        return self._offset

    def close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None
        self._lock.close()


class _TrackedTable(MutableMapping):
    """The view TinyDB's table updaters work on: every document they touch is noted."""

    def __init__(self, storage: JournalStorage, name: str):
        self._storage = storage
        self._name = name
        self._documents = storage.table(name)
        self.touched: set[str] = set()

    def _touch(self, doc_id: str, replacing: bool) -> None:
        self._storage._remember(self._name, doc_id, self._documents, replacing)
        self.touched.add(doc_id)

    def __getitem__(self, doc_id: str) -> Any:
        doc_id = str(doc_id)
        self._touch(doc_id, replacing=False)
        return self._documents[doc_id]

    def __setitem__(self, doc_id: str, doc: Any) -> None:
        doc_id = str(doc_id)
        self._touch(doc_id, replacing=True)
        self._documents[doc_id] = doc

    def __delitem__(self, doc_id: str) -> None:
        doc_id = str(doc_id)
        self._touch(doc_id, replacing=True)
        del self._documents[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return str(doc_id) in self._documents

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._documents))

    def __len__(self) -> int:
        return len(self._documents)

    def clear(self) -> None:
        for doc_id in list(self._documents):
            del self[doc_id]


class JournalTable(Table):
    """A TinyDB Table whose documents are keyed by fieldkit's own ids and written by the journal.

    TinyDB's ``_update_table`` copies the whole table on every write (O(n) at
    100,000 issues); here only the touched documents are staged.
    """

    document_id_class = str

    def _get_next_id(self) -> str:  # type: ignore[override]
        return new_id()

    def put(self, doc_id: str, doc: dict[str, Any]) -> None:
        """Store a whole document under its id, replacing any there (one tracked write, no scan)."""
        self._storage.write_document(self.name, doc_id, doc)  # type: ignore[attr-defined]
        self.clear_cache()

    def delete(self, doc_id: str) -> None:
        self._storage.write_document(self.name, doc_id, None)  # type: ignore[attr-defined]
        self.clear_cache()

    def _update_table(self, updater) -> None:  # type: ignore[override]
        storage: JournalStorage = self._storage  # type: ignore[assignment]
        with storage.transaction():
            tracked = _TrackedTable(storage, self.name)
            updater(tracked)
            storage.stage(self.name, tracked.touched)
        self.clear_cache()


class FieldkitDB(TinyDB):
    table_class = JournalTable
    default_storage_class = JournalStorage


def document(doc: dict[str, Any], doc_id: str) -> Document:
    return Document(doc, doc_id)  # type: ignore[arg-type]
