"""Identifiers made offline: record ids, device ids and the short reference.

Record ids are UUIDv7 (RFC 9562): time-ordered, so a new issue needs no server
and ids sort by creation. Python 3.11's uuid module has no uuid7, and the
format is twelve lines, so it lives here rather than in a dependency.
"""

from __future__ import annotations

import os
import re
import time
import uuid

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_last_ms = 0
_last_rand = 0


def new_id(now_ms: int | None = None, shard: str | None = None) -> str:
    """A UUIDv7 string; monotonic within one process even within a millisecond.

    ``shard`` fixes the last hex digit (the first release's store sharded
    records by it and kept a note beside its issue). Ids made in the same
    millisecond step by sixteen, never in the last digit, so fixing it cannot
    make two ids equal.
    """
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if ms <= _last_ms:
        ms = _last_ms
        rand = _last_rand + 16
    else:
        rand = int.from_bytes(os.urandom(10), "big") >> 6  # 74 random bits
    _last_ms, _last_rand = ms, rand
    if shard is not None:
        rand = (rand & ~0xF) | int(shard, 16)
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def new_device_id() -> str:
    return os.urandom(8).hex()


def device_code(device_id: str, length: int = 4) -> str:
    """A short, readable code for a device (Crockford base32, no I/L/O/U)."""
    value = int(device_id, 16)
    chars = []
    for _ in range(length):
        chars.append(CROCKFORD[value % 32])
        value //= 32
    return "".join(chars)


def issue_ref(municipality: str, year: int, device_id: str, sequence: int) -> str:
    """The short reference read out over the phone, e.g. BUF-26-K7QM-0042.

    Unique without a network: the device code separates laptops and the
    sequence counts on each laptop.
    """
    return f"{municipality.upper()}-{year % 100:02d}-{device_code(device_id)}-{sequence:04d}"


REF_PATTERN = re.compile(r"^[A-Z0-9]{2,6}-\d{2}-[0-9A-Z]{4}-\d{4,}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def looks_like_ref(text: str) -> bool:
    return bool(REF_PATTERN.match(text.strip().upper()))


def is_record_id(text: str) -> bool:
    return bool(ID_PATTERN.match(text))
