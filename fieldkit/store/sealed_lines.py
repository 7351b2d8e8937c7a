"""The lookup lines of an encrypted register, sealed a bucket at a time for searching.

SQLite cannot search sealed lines, so a text search of an encrypted register
looks for the words in Python. Opened one by one, 100,000 lines cost 100,000
decryptions; here the lines are also kept in 4,096 buckets by a hash of the
issue's id, each bucket sealed as one value with its lines' search words
first (about half its bytes) and the rest of the lines after. A search finds
the needle in the words' bytes and cuts out and decodes only the lines it is
found in. The per-issue sealed lines in ``issue_line`` stay: lookups by
reference, id, place or status read those.

Reading every bucket (47 MB at 100,000 issues) costs more than a whole cold
command, so each bucket also has a signature: an 8,192-bit Bloom filter of the
three-byte pieces of its lines' words, sealed eight buckets to a row with byte
``b`` holding bit ``b`` of all eight, so one AND of a few bytes answers for
eight buckets. A needle can only be in a bucket whose signature holds all its
pieces: a search reads the 4 MB of signatures first and opens only the buckets
that can match (a rare word, a few dozen; a common word, all of them, in
order). A signature only gains bits as lines change (a piece no longer there
costs a wasted look, never a missed line) and is made exact again when the
register is encrypted.

A save does not rewrite a bucket or a signature (several KB sealed: pages
written and journalled on every save). The records it writes carry the
transaction's sequence number, as every record does, and the sequence number
the buckets were last brought up to is kept in ``meta``; a search skips the
issues saved since in their buckets and reads their lines from ``issue_line``
instead, so the newest line wins. Once about 300 edits' records are newer than
the buckets, the save's transaction ends by folding those issues in (one save
in a few hundred). An issue taken out of the register leaves its bucket at once.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any, Callable, Iterable, Iterator


BUCKETS = 4096
TABLE = "CREATE TABLE IF NOT EXISTS sealed_lines(bucket INTEGER PRIMARY KEY, data BLOB NOT NULL)"
SIGN_BITS = 8192  # a bucket's signature: about a quarter set for 25 issues' words
PER_ROW = 8  # signatures sealed together in one row of sealed_signs: byte ``b`` holds bit ``b`` of all eight
SIGNS = "CREATE TABLE IF NOT EXISTS sealed_signs(row INTEGER PRIMARY KEY, data BLOB NOT NULL)"
FOLDED = "sealed_folded"  # meta: every issue saved before this sequence number is in its bucket
FOLD_AFTER = 768  # records saved since the last fold (about 300 edits) before a save folds them


def bucket_of(record_id: str) -> int:
    return zlib.crc32(record_id.encode("ascii", "replace")) % BUCKETS


_bits: dict[bytes, int] = {}


def pieces(words: bytes) -> set[int]:
    """The signature bits of some words: one for each three-byte piece."""
    found = {words[i:i + 3] for i in range(len(words) - 2)}
    unknown = found - _bits.keys()
    if unknown:
        if len(_bits) > 50_000:  # a few MB at most; the pieces of real words are far fewer
            _bits.clear()
            unknown = found
        _bits.update((piece, zlib.crc32(piece) % SIGN_BITS) for piece in unknown)
    return set(map(_bits.__getitem__, found))


def _new_part(old: bytes, new: bytes) -> bytes:
    """The part of ``new`` whose pieces ``old`` may not have had: all but what both begin and end with.

    A piece lying wholly in the beginning or the end the two share is a piece
    ``old`` had, so its bit is already set.
    """
    most = min(len(old), len(new))
    same = 0
    while same < most and old[same] == new[same]:
        same += 1
    tail = 0
    while tail < most - same and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return new[max(0, same - 2):len(new) - max(0, tail - 2)]


def words_of(line: str) -> bytes:
    """A lookup line's search words (its last column), as a signature sees them."""
    return line.rpartition("\t")[2].encode("utf-8")


def _has_table(db: Any, name: str) -> bool:
    return bool(db.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))


def _folded(db: Any) -> int | None:
    found = db.rows("SELECT value FROM meta WHERE key = ?", (FOLDED,))
    return int(found[0][0]) if found else None


def _set_folded(db: Any, seq: int) -> None:
    db.write("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
             (FOLDED, str(seq)))


def changed(db: Any) -> list[str]:
    """Ids of the issues saved since their buckets were written: a search reads their lines from ``issue_line``.

    Every save gives the records it writes the transaction's sequence number
    (``record.seq``, indexed), so they are found without a list of their own.
    """
    since = _folded(db)
    if since is None:
        return []  # written whole (by fieldkit encrypt) and not saved to since
    return [row[0] for row in db.rows(
        "SELECT id FROM record INDEXED BY record_seq WHERE seq >= ? AND kind = 'issue'", (since,))]


def fold_if_due(db: Any, codec: Any, lines_of: Callable[[list[str]], dict[str, str]]) -> None:
    """At the end of a save's transaction: once about 300 edits' records are newer than the buckets, fold them in.

    The buckets are written then, in one save in a few hundred, rather than
    one bucket (several KB sealed, pages written and journalled) in every save.
    ``lines_of`` gives the current lookup lines of issues by id.
    """
    since = _folded(db)
    if since is None:
        _set_folded(db, db.next_seq)  # the buckets were kept whole until now (an older fieldkit): from here on
        return
    newer = db.rows("SELECT count(*) FROM record INDEXED BY record_seq WHERE seq >= ?", (since,))[0][0]
    if newer < FOLD_AFTER:
        return
    ids = changed(db)
    found = lines_of(ids)
    _put(db, codec, {record_id: found.get(record_id) for record_id in ids})
    _set_folded(db, db.next_seq + 1)  # this transaction's records too: nothing is written after this


def removed(db: Any, codec: Any, ids: Iterable[str]) -> None:
    """Issues taken out of the register leave their buckets at once (they have no record left to be found by)."""
    _put(db, codec, {record_id: None for record_id in ids})


WORDS_FIRST = b"\x00"  # a bucket's layout: its lines' words together, then the rest of each line
HEADER = struct.Struct("<II")  # lines in the bucket, bytes of words; then where each line's rest starts


def _seal(codec: Any, lines: Iterable[str]) -> bytes:
    """A bucket's lines sealed as one value, their words first so a search reads only those."""
    words, rests, starts, at = [], [], [0], 0
    for line in lines:
        rest, _, word = line.rpartition("\t")
        rests.append(rest.encode("utf-8"))
        words.append(word.encode("utf-8"))
        at += len(rests[-1]) + 1
        starts.append(at)
    text = b"\n".join(words)
    layout = WORDS_FIRST + HEADER.pack(len(rests), len(text)) + struct.pack(f"<{len(starts)}I", *starts)
    return codec.seal(layout + text + b"\n".join(rests))


def _layout(text: bytes) -> tuple[int, int, int] | None:
    """How many lines a bucket holds, and where its words start and end (the rests follow); None for whole lines."""
    if not text.startswith(WORDS_FIRST):
        return None  # written before the words were put first: whole lines, one after the other
    count, size = HEADER.unpack_from(text, 1)
    words = 1 + HEADER.size + 4 * (count + 1)
    if words + size > len(text):
        raise ValueError("a bucket's layout does not fit its bytes")
    return count, words, words + size


def _starts(text: bytes, count: int) -> tuple[int, ...]:
    """Where each line's rest starts, after the words (and where the last one ends, plus one)."""
    return struct.unpack_from(f"<{count + 1}I", text, 1 + HEADER.size)


def _open(codec: Any, data: bytes) -> dict[str, str]:
    """A bucket's lines by issue id."""
    text = codec.unseal(data)
    layout = _layout(text)
    if layout is None:
        lines = text.decode("utf-8").split("\n") if text else []
    else:
        count, words, end = layout
        if count == 0:
            return {}
        rests, kept = text[end:].decode("utf-8").split("\n"), text[words:end].decode("utf-8").split("\n")
        if len(rests) != count or len(kept) != count:
            raise ValueError("a bucket's words do not match its lines")
        lines = [f"{rest}\t{word}" for rest, word in zip(rests, kept)]
    return {line.partition("\t")[0]: line for line in lines}


def _put(db: Any, codec: Any, entries: dict[str, str | None]) -> None:
    """Write ``{id: line, or None to take it out}`` into the buckets and their signatures (inside a transaction)."""
    by_bucket: dict[int, dict[str, str | None]] = {}
    for record_id, line in entries.items():
        by_bucket.setdefault(bucket_of(record_id), {})[record_id] = line
    if not by_bucket:
        return
    if not _has_table(db, "sealed_signs"):
        _sign_all(db, codec)  # a register encrypted before buckets had signatures: once
    stored = _rows(db, "sealed_lines", "bucket", sorted(by_bucket))
    rows, added = [], {}
    for bucket, changes in by_bucket.items():
        held = _open(codec, stored[bucket]) if bucket in stored else {}
        bits: set[int] = set()
        for record_id, line in changes.items():
            if line is None:
                held.pop(record_id, None)
                continue
            words = words_of(line)
            bits |= pieces(_new_part(words_of(held[record_id]), words) if record_id in held else words)
            held[record_id] = line
        rows.append((bucket, _seal(codec, held.values())))
        if bits:
            added[bucket] = bits
    db.write_many("INSERT OR REPLACE INTO sealed_lines(bucket, data) VALUES (?, ?)", rows)
    _sign(db, codec, added)


def _rows(db: Any, table: str, key: str, wanted: list[int]) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        found.update(db.rows(f"SELECT {key}, data FROM {table} WHERE {key} IN ({','.join('?' * len(chunk))})", chunk))
    return found


def _sign(db: Any, codec: Any, added: dict[int, set[int]]) -> None:
    """Set the bits ``{bucket: bits}`` in the buckets' signatures."""
    by_row: dict[int, list[int]] = {}
    for bucket in added:
        by_row.setdefault(bucket // PER_ROW, []).append(bucket)
    stored = _rows(db, "sealed_signs", "row", sorted(by_row))
    rows = []
    for row, buckets in by_row.items():
        signs = bytearray(codec.unseal(stored[row])) if row in stored else bytearray(SIGN_BITS)
        for bucket in buckets:
            mask = 1 << (bucket % PER_ROW)
            for bit in added[bucket]:
                signs[bit] |= mask
        rows.append((row, codec.seal(bytes(signs))))
    db.write_many("INSERT OR REPLACE INTO sealed_signs(row, data) VALUES (?, ?)", rows)


def _exact_signs(db: Any, codec: Any) -> dict[int, set[int]]:
    """Every bucket's signature bits from its lines as they are."""
    return {bucket: set().union(*(pieces(words_of(line)) for line in _open(codec, data).values()))
            for bucket, data in db.stream("SELECT bucket, data FROM sealed_lines", batch=16)}


def _sign_all(db: Any, codec: Any) -> None:
    db.write(SIGNS)
    db.write("DELETE FROM sealed_signs")
    _sign(db, codec, _exact_signs(db, codec))


def rebuild(db: Any, codec: Any, lines: Iterable[tuple[str, str]]) -> None:
    """All buckets and signatures anew from every ``(issue id, line)`` (inside a transaction): when a register is encrypted."""
    db.write(TABLE)
    db.write(SIGNS)
    db.write("DELETE FROM sealed_lines")  # emptied, not dropped: the file's free pages are vacuumed after
    db.write("DELETE FROM sealed_signs")
    _put(db, codec, dict(lines))
    _set_folded(db, db.next_seq)


def drop(db: Any) -> None:
    db.write("DROP TABLE IF EXISTS sealed_lines")
    db.write("DROP TABLE IF EXISTS sealed_signs")
    db.write("DELETE FROM meta WHERE key = ?", (FOLDED,))


def _candidates(db: Any, codec: Any, pattern: bytes) -> list[int] | None:
    """The buckets whose signature holds every piece of ``pattern``; None when all must be read."""
    if len(pattern) < 3 or not _has_table(db, "sealed_signs"):
        return None
    bits = sorted(pieces(pattern))
    found: list[int] = []
    for read, (row, data) in enumerate(db.scan("SELECT row, data FROM sealed_signs", batch=64), 1):
        signs = codec.unseal(data)
        held = 0xFF
        for bit in bits:
            held &= signs[bit]
        while held:
            place = held.bit_length() - 1
            found.append(row * PER_ROW + place)
            held ^= 1 << place
        if read % 32 == 0 and len(found) > read * PER_ROW // 2:
            return None  # half the buckets so far: reading them all in order is cheaper than picking
    return found


def search(db: Any, codec: Any, needle: str, skip: set[str]) -> list[str]:
    """The lines whose search words hold ``needle``, but those of the issues in ``skip``.

    Only the buckets whose signature allows the needle are opened; in each the
    needle is looked for in the words' bytes (UTF-8 keeps a match a match) and
    only the lines it is found in are cut out and decoded. A bucket that does
    not open is damage (ValueError).
    """
    if "\n" in needle or "\t" in needle:
        return []  # no line's words hold a line break or a tab
    pattern = needle.encode("utf-8")
    skipped = {record_id.encode("utf-8") + b"\t" for record_id in skip}
    found: list[str] = []
    for data in _buckets(db, _candidates(db, codec, pattern)):
        text = codec.unseal(data)
        layout = _layout(text)
        if layout is None:
            _search_whole_lines(text, pattern, skip, found)
            continue
        count, words, end_of_words = layout
        at = text.find(pattern, words, end_of_words)
        if at < 0:
            continue
        rests, starts = end_of_words, _starts(text, count)
        place, counted = 0, words  # the line ``place`` starts at ``counted`` in the words
        while at >= 0:
            start = text.rfind(b"\n", words, at) + 1 or words
            end = text.find(b"\n", at + len(pattern), end_of_words)
            end = end_of_words if end < 0 else end
            place += text.count(b"\n", counted, start)
            counted = start
            if place + 1 >= len(starts):
                raise ValueError("a bucket's words do not match its lines")
            rest = text[rests + starts[place]:rests + starts[place + 1] - 1]
            if not skipped or rest[:rest.find(b"\t") + 1] not in skipped:  # the id and its tab
                found.append((rest + b"\t" + text[start:end]).decode("utf-8"))
            at = text.find(pattern, end, end_of_words)
    return found


def _search_whole_lines(text: bytes, pattern: bytes, skip: set[str], found: list[str]) -> None:
    """A bucket of whole lines one after the other, as fieldkit wrote them before the words were put first."""
    at = text.find(pattern)
    while at >= 0:
        start = text.rfind(b"\n", 0, at) + 1
        end = text.find(b"\n", at + len(pattern))
        end = len(text) if end < 0 else end
        words = text.rfind(b"\t", start, end) + 1
        if at < words:  # in the columns before the words: look on from the words
            at = text.find(pattern, words)
            continue
        line = text[start:end].decode("utf-8")
        if line.partition("\t")[0] not in skip:
            found.append(line)
        at = text.find(pattern, end)


def _buckets(db: Any, wanted: list[int] | None) -> Iterator[bytes]:
    """The sealed buckets, all (None) or those wanted, a few at a time: their memory is reused."""
    if wanted is None:
        yield from (data for _, data in db.scan("SELECT bucket, data FROM sealed_lines"))
        return
    for start in range(0, len(wanted), 2048):
        chunk = wanted[start:start + 2048]
        yield from (data for _, data in db.scan(
            f"SELECT bucket, data FROM sealed_lines WHERE bucket IN ({','.join('?' * len(chunk))})", chunk))


def check(db: Any, codec: Any) -> None:
    """Open every bucket and check its signature holds its lines (ValueError when not)."""
    exact = _exact_signs(db, codec)
    if not _has_table(db, "sealed_signs"):
        return
    kept = dict(db.rows("SELECT row, data FROM sealed_signs"))
    for bucket, bits in exact.items():
        if not bits:
            continue
        signs = codec.unseal(kept[bucket // PER_ROW]) if bucket // PER_ROW in kept else b""
        mask = 1 << (bucket % PER_ROW)
        if len(signs) != SIGN_BITS or any(not signs[bit] & mask for bit in bits):
            raise ValueError("a bucket's signature misses some of its words")
