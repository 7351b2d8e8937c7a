"""Stores written by fieldkit 0.1 (format 1: JSON snapshots and a journal) are migrated on open.

Format 1 kept ``tables/<name>.json`` snapshots, a CRC-checked ``journal.log``
and hard-linked backups. Its files are read (every check they had still
applies: a damaged one stops the migration with the file named), written into
the register file in one transaction, and then moved, untouched, to
``backups/format-1-original/``. Migrating again after a crash part-way gives
the same result: every write is keyed by the record's own id.
"""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from fieldkit.store.database import FILE_NAME, UPSERT_LINE, Database, StoreCorrupt, line_row

if TYPE_CHECKING:
    from fieldkit.store.backups import Backups

ORIGINAL = "format-1-original"


def is_legacy(home: Path) -> bool:
    return (home / "journal.log").exists() or (home / "tables").is_dir()


def _read_tables(home: Path) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    watermarks: dict[str, int] = {}
    folder = home / "tables"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            snapshot = orjson.loads(path.read_bytes())
            watermarks[path.stem] = int(snapshot["watermark"])
            tables[path.stem] = dict(snapshot["documents"])
        except (ValueError, KeyError, TypeError) as err:
            raise StoreCorrupt(path, f"it does not read back: {err}", None) from None
    journal = home / "journal.log"
    raw = journal.read_bytes() if journal.exists() else b""
    lines = raw.split(b"\n")
    for number, line in enumerate(lines):
        if not line:
            continue
        body = line[9:]
        try:
            if line[8:9] != b" " or int(line[:8], 16) != zlib.crc32(body):
                raise ValueError("checksum")
            entry = orjson.loads(body)
        except ValueError:
            if number == len(lines) - 1:
                break  # an unterminated last line: a write torn by a crash, never acknowledged
            raise StoreCorrupt(journal, f"line {number + 1} does not read back", None) from None
        for name, writes in entry["writes"].items():
            if entry["seq"] <= watermarks.get(name, 0):
                continue
            documents = tables.setdefault(name, {})
            for doc_id, doc in writes.items():
                if doc is None:
                    documents.pop(doc_id, None)
                else:
                    documents[doc_id] = doc
    return tables


def migrate(home: Path, backups: "Backups") -> None:
    """Move a format-1 store into the register file; keep the original files as they were."""
    if not _already_migrated(home, backups):
        _copy_into_register(home, backups)
    kept = home / "backups" / ORIGINAL
    kept.mkdir(parents=True, exist_ok=True)
    for name in ("tables", "journal.log", "store.lock"):
        if (home / name).exists():
            shutil.move(str(home / name), str(kept / name))
    for old in (home / "backups").iterdir():
        if old.is_dir() and old.name != ORIGINAL:
            shutil.move(str(old), str(kept / old.name))


def _already_migrated(home: Path, backups: "Backups") -> bool:
    """A migration that committed but was stopped before the old files were moved away."""
    if not (home / FILE_NAME).exists():
        return False
    db = Database(home, backups.newest)
    try:
        return bool(db.rows("SELECT 1 FROM meta WHERE key = 'migrated_from'"))
    finally:
        db.close()


def _copy_into_register(home: Path, backups: "Backups") -> None:
    from fieldkit.filters import row_from_values, row_to_line
    from fieldkit.merge import pack_state
    from fieldkit.store.database import checksum

    tables = _read_tables(home)
    merged: dict[str, dict[str, Any]] = {}
    for name, documents in tables.items():
        if name.split(".")[0] == "merge":
            merged.update(documents)
    db = Database(home, backups.newest)
    try:
        with db.transaction():
            seq = db.next_seq
            for name, documents in tables.items():
                kind = name.split(".")[0]
                if kind in ("merge", "outbox"):
                    continue
                for record_id, doc in documents.items():
                    state = merged.get(record_id)
                    packed = orjson.dumps(pack_state(state)) if state else None
                    payload = orjson.dumps(doc)
                    parent = doc.get("issue_id") if kind in ("note", "action", "status_change") else None
                    db.write("INSERT OR REPLACE INTO record(kind, id, parent, seq, doc, merge, crc) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (kind, record_id, parent, seq, payload, packed, checksum(payload, packed)))
                    if kind == "issue":
                        row = row_from_values(record_id, doc)
                        db.write(UPSERT_LINE, line_row(record_id, row.ref, row.municipality, row.status, row_to_line(row)))
            for op_id, entry in tables.get("outbox", {}).items():
                op = orjson.dumps(entry["op"])
                db.write("INSERT OR REPLACE INTO outbox(op_id, record_id, state, reason, op, crc) VALUES (?, ?, ?, ?, ?, ?)",
                         (op_id, entry["op"]["id"], entry.get("state", "pending"), entry.get("reason", ""), op, checksum(op)))
            db.write("INSERT OR REPLACE INTO meta VALUES ('migrated_from', '1')")
    finally:
        db.close()
