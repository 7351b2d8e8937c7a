"""TinyDB's document API over the register file.

``Store.table("issue")`` is a TinyDB ``Table``: ``get``, ``search`` with
``Query``, ``insert``, ``update``, ``upsert``, ``remove``, ``all``, ``len``.
Documents are keyed by fieldkit's own ids (UUIDv7), not TinyDB's integers.
TinyDB's own table logic reads and rewrites the whole table on every change;
here each call goes to the rows it names, inside the store's transactions, so
its writes are as durable and as checked as the register's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from fieldkit.ids import new_id

if TYPE_CHECKING:
    from fieldkit.store import Store

KINDS = ("issue", "note", "action", "status_change", "lesson", "attachment", "local")


class RegisterStorage(Storage):
    """What TinyDB sees as the whole database; the tables below never go through it."""

    def __init__(self, store: "Store"):
        self.store = store

    def read(self) -> dict[str, dict[str, Any]]:
        return {kind: dict(self.store.documents(kind).items()) for kind in KINDS}

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        with self.store.transaction():
            for kind in KINDS:
                wanted = data.get(kind, {})
                for record_id in set(self.store.documents(kind)) - set(wanted):
                    self.store.delete(kind, record_id)
                for record_id, doc in wanted.items():
                    self.store.put(kind, record_id, dict(doc))


class DocumentTable(Table):
    """A TinyDB table whose documents live as rows of the register file."""

    document_id_class = str

    def __init__(self, storage: RegisterStorage, name: str, cache_size: int = 0):
        super().__init__(storage, name, cache_size=0)
        self._store = storage.store

    def _document(self, record_id: str, doc: dict[str, Any]) -> Document:
        return Document(doc, record_id)  # type: ignore[arg-type]

    def _get_next_id(self) -> str:  # type: ignore[override]
        return new_id()

    def all(self) -> list[Document]:
        return [self._document(i, doc) for i, doc in self._store.documents(self.name).items()]

    def __iter__(self) -> Iterator[Document]:
        return iter(self.all())

    def __len__(self) -> int:
        return self._store.count(self.name)

    def search(self, cond: Callable[[Mapping], bool]) -> list[Document]:  # type: ignore[override]
        return [self._document(i, doc) for i, doc in self._store.documents(self.name).items() if cond(doc)]

    def get(self, cond=None, doc_id=None, doc_ids=None):  # type: ignore[override]
        if doc_id is not None:
            found = self._store.get(self.name, str(doc_id))
            return self._document(str(doc_id), found) if found is not None else None
        if doc_ids is not None:
            return [self._document(str(i), d) for i in doc_ids if (d := self._store.get(self.name, str(i))) is not None]
        if cond is None:
            raise RuntimeError("get() needs a condition or a document id")
        return next(iter(self.search(cond)), None)

    def contains(self, cond=None, doc_id=None) -> bool:  # type: ignore[override]
        if doc_id is not None:
            return self._store.get(self.name, str(doc_id)) is not None
        return self.get(cond) is not None

    def count(self, cond) -> int:  # type: ignore[override]
        return len(self.search(cond))

    def insert(self, document: Mapping) -> str:  # type: ignore[override]
        record_id = str(document.doc_id) if isinstance(document, Document) else self._get_next_id()
        if self._store.get(self.name, record_id) is not None:
            raise ValueError(f"Document with ID {record_id} already exists")
        self._store.put(self.name, record_id, dict(document))
        return record_id

    def insert_multiple(self, documents: Iterable[Mapping]) -> list[str]:  # type: ignore[override]
        with self._store.transaction():
            return [self.insert(document) for document in documents]

    def _targets(self, cond, doc_ids) -> list[Document]:
        if doc_ids is not None:
            return self.get(doc_ids=doc_ids)
        if cond is not None:
            return self.search(cond)
        return self.all()

    def update(self, fields, cond=None, doc_ids=None) -> list[str]:  # type: ignore[override]
        changed = []
        with self._store.transaction():
            for document in self._targets(cond, doc_ids):
                doc = dict(document)
                if callable(fields):
                    fields(doc)
                else:
                    doc.update(fields)
                self._store.put(self.name, str(document.doc_id), doc)
                changed.append(str(document.doc_id))
        return changed

    def upsert(self, document: Mapping, cond=None) -> list[str]:  # type: ignore[override]
        if isinstance(document, Document):
            self._store.put(self.name, str(document.doc_id), dict(document))
            return [str(document.doc_id)]
        with self._store.transaction():
            updated = self.update(document, cond) if cond is not None else []
            return updated or [self.insert(document)]

    def remove(self, cond=None, doc_ids=None) -> list[str]:  # type: ignore[override]
        if cond is None and doc_ids is None:
            raise RuntimeError("Use truncate() to remove all documents")
        removed = []
        with self._store.transaction():
            for document in self._targets(cond, doc_ids):
                self._store.delete(self.name, str(document.doc_id))
                removed.append(str(document.doc_id))
        return removed

    def truncate(self) -> None:
        with self._store.transaction():
            for record_id in list(self._store.documents(self.name)):
                self._store.delete(self.name, record_id)


class RegisterDB(TinyDB):
    table_class = DocumentTable

    def __init__(self, store: "Store"):
        self._storage = RegisterStorage(store)
        self._opened = True
        self._tables = {}


def open_tables(store: "Store") -> dict[str, DocumentTable]:
    db = RegisterDB(store)
    return {kind: db.table(kind) for kind in KINDS}  # type: ignore[misc]
