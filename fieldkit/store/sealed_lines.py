"""The lookup lines of an encrypted register, sealed a bucket at a time for searching.

SQLite cannot search sealed lines, so a cold ``fieldkit find`` must open them
in Python. Opened one by one, 100,000 lines cost 100,000 decryptions; here the
lines are also kept in 4,096 buckets (by a hash of the issue id), each sealed
as one value: a search opens 4,096 values, looks for the words in each bucket's
text at once, and splits only the buckets that hold them. A save rewrites the
one bucket of each issue it changed (about 25 lines at 100,000 issues).

The per-issue sealed lines in ``issue_line`` stay: lookups by reference or id
read those. Both are written in the same transaction.
"""

from __future__ import annotations

import zlib
from typing import Any, Iterable, Iterator

BUCKETS = 4096
TABLE = "CREATE TABLE IF NOT EXISTS sealed_lines(bucket INTEGER PRIMARY KEY, data BLOB NOT NULL)"


def bucket_of(record_id: str) -> int:
    return zlib.crc32(record_id.encode("ascii", "replace")) % BUCKETS


def _open(codec: Any, data: bytes) -> str:
    return codec.unseal(data).decode("utf-8")


def update(db: Any, codec: Any, lines: Iterable[tuple[str, str]], gone: Iterable[str] = ()) -> None:
    """Put ``(issue id, line)`` pairs into their buckets and take ``gone`` ids out (inside a transaction)."""
    changes: dict[int, dict[str, str | None]] = {}
    for record_id, line in lines:
        changes.setdefault(bucket_of(record_id), {})[record_id] = line
    for record_id in gone:
        changes.setdefault(bucket_of(record_id), {})[record_id] = None
    if not changes:
        return
    wanted = sorted(changes)
    stored: dict[int, bytes] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        stored.update(db.rows(f"SELECT bucket, data FROM sealed_lines WHERE bucket IN ({','.join('?' * len(chunk))})", chunk))
    rows = []
    for bucket, changed in changes.items():
        found = stored.get(bucket)
        held = {line.partition("\t")[0]: line for line in _open(codec, found).split("\n")} if found else {}
        for record_id, line in changed.items():
            if line is None:
                held.pop(record_id, None)
            else:
                held[record_id] = line
        rows.append((bucket, codec.seal("\n".join(held.values()).encode("utf-8"))))
    db.write_many("INSERT OR REPLACE INTO sealed_lines(bucket, data) VALUES (?, ?)", rows)


def rebuild(db: Any, codec: Any, lines: Iterable[tuple[str, str]]) -> None:
    """All buckets anew from every ``(issue id, line)`` (inside a transaction): when a register is encrypted."""
    db.write(TABLE)
    db.write("DELETE FROM sealed_lines")  # emptied, not dropped: the file's free pages are vacuumed after
    update(db, codec, lines)


def drop(db: Any) -> None:
    db.write("DROP TABLE IF EXISTS sealed_lines")


def search(db: Any, codec: Any, needle: str | None) -> Iterator[str]:
    """The lines holding ``needle`` (every line for None); a bucket that does not open is damage (ValueError)."""
    for _, data in db.stream("SELECT bucket, data FROM sealed_lines"):
        text = _open(codec, data)
        if not text:
            continue
        if needle is None:
            yield from text.split("\n")
        elif needle in text:
            yield from (line for line in text.split("\n") if needle in line)
