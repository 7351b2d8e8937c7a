"""The local store: the only code that touches fieldkit's files on a laptop.

``Store`` wraps a TinyDB database on ``JournalStorage``. Tables:

- ``issue``, ``note``, ``action``, ``status_change``, ``lesson``: each record's
  current values, keyed by record id (one table per record type);
- ``merge``: each record's merge state (stamps, who, seen, rivals);
- ``outbox``: operations not yet acknowledged by the central store;
- ``local``: this replica's own documents (device id and clock, sync cursor,
  settings, the app's draft).

The record tables are *sharded*: each is sixteen TinyDB tables named by the
last hex digit of the record id (``issue.7``). Opening one issue at 100,000
then reads a sixteenth of the register, not all of it. Callers name the logical
table; the shard is found from the id.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from fieldkit.store.storage import (
    FieldkitDB,
    JournalStorage,
    JournalTable,
    StoreCorrupt,
    StoreError,
)

__all__ = ["Store", "StoreError", "StoreCorrupt", "default_home", "SHARDED", "SHARDS"]

SHARDED = frozenset({"issue", "note", "action", "status_change", "lesson", "merge"})
SHARDS = "0123456789abcdef"


def shard_name(name: str, record_id: str) -> str:
    """The physical table holding a record of a sharded table."""
    return f"{name}.{record_id[-1]}" if name in SHARDED else name


class ShardedView(Mapping):
    """All shards of a sharded table read as one mapping (loads every shard)."""

    def __init__(self, storage: JournalStorage, name: str):
        self._shards = [storage.table(f"{name}.{digit}") for digit in SHARDS]

    def __getitem__(self, record_id: str) -> dict[str, Any]:
        return self._shards[SHARDS.index(record_id[-1])][record_id] if record_id else {}[record_id]

    def __iter__(self) -> Iterator[str]:
        for shard in self._shards:
            yield from shard

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and bool(record_id) and record_id[-1] in SHARDS and record_id in self._shards[SHARDS.index(record_id[-1])]


def default_home() -> Path:
    """The data directory: ``$FIELDKIT_HOME`` or the platform's user data folder."""
    configured = os.environ.get("FIELDKIT_HOME")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_path

    return user_data_path("fieldkit", appauthor=False)


class Store:
    def __init__(self, home: str | os.PathLike | None = None, compact_bytes: int | None = None):
        self.home = Path(home) if home is not None else default_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"Cannot create the data folder {self.home}: {err.strerror}; set FIELDKIT_HOME to a folder you can write") from None
        kwargs = {"compact_bytes": compact_bytes} if compact_bytes else {}
        self.db = FieldkitDB(self.home, storage=JournalStorage, **kwargs)
        self.storage: JournalStorage = self.db.storage  # type: ignore[assignment]
        self._tables: dict[str, JournalTable] = {}

    def table(self, name: str) -> JournalTable:
        found = self._tables.get(name)
        if found is None:
            found = self._tables[name] = self.db.table(name, cache_size=0)  # type: ignore[assignment]
        return found

    def documents(self, name: str) -> Mapping[str, Any]:
        """The live documents of a table by id: read them, never change them."""
        if name in SHARDED:
            return ShardedView(self.storage, name)
        return self.storage.table(name)

    def shard(self, name: str, record_id: str) -> dict[str, Any]:
        """The live documents of the one shard that holds ``record_id`` (and its children)."""
        return self.storage.table(shard_name(name, record_id))

    def get(self, name: str, doc_id: str) -> dict[str, Any] | None:
        """A copy of one document, or None."""
        found = self.storage.table(shard_name(name, doc_id)).get(doc_id)
        return copy.deepcopy(found) if found is not None else None

    def put(self, name: str, doc_id: str, doc: dict[str, Any], owned: bool = False) -> None:
        """Store a whole document under its id (replacing what was there).

        ``owned`` says the caller made ``doc`` for the store and keeps no
        reference to change later, so it is stored without copying.
        """
        self.table(shard_name(name, doc_id)).put(doc_id, doc if owned else copy.deepcopy(doc))

    def delete(self, name: str, doc_id: str) -> None:
        name = shard_name(name, doc_id)
        if doc_id in self.storage.table(name):
            self.table(name).delete(doc_id)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything written inside is saved durably together, or not at all."""
        with self.storage.transaction():
            yield

    def local(self, key: str) -> dict[str, Any]:
        return self.get("local", key) or {}

    def set_local(self, key: str, doc: dict[str, Any]) -> None:
        self.put("local", key, doc)

    def refresh(self) -> None:
        self.storage.refresh()

    def compact(self) -> None:
        self.storage.compact()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
