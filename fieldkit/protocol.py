"""The sync protocol between a laptop and the central store: message shapes, no I/O.

Both sides speak JSON over HTTP (``fieldkit.transport`` carries it, the server
in ``fieldkit.server`` answers it). The conversation, all authenticated with
``Authorization: Bearer <token>``:

``GET /sync/info``
    who the token belongs to, the store's ``server_id`` and its last sequence
    number. A laptop that sees a ``server_id`` it does not remember (or a last
    sequence below its cursor) is talking to a store that was reset or restored:
    it queues everything it holds to be sent again and starts pulling from 0.
``POST /sync/push`` ``{"ops": [op, ...]}``
    at most ``PUSH_OPS`` operations; each is *acknowledged* (stored now or
    before: a re-delivery is acknowledged, not applied twice), *rejected* with a
    reason (stays on the laptop, marked), or *deferred* with a reason (it needs a
    record the store has not received yet; it stays queued and is sent again).
``GET /sync/pull?after=SEQ&limit=N``
    the operations after a sequence number, oldest first, in the user's scope;
    ``next`` is the cursor to save with the page, ``more`` says whether to ask again.
``GET /sync/snapshot?after_id=ID&limit=N``
    for a laptop that has never pulled: each record's current state, written as a
    few operations (``state_ops``), by record id; ``upto`` is the sequence the
    snapshot covers (from its first page), after which ordinary pulls continue.

Every reply carries ``server_id`` so a reset in the middle of a sync is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from fieldkit.ids import new_id

PROTOCOL = 1

#: Operations in one push, and a soft limit on its size before compression.
PUSH_OPS = 500
PUSH_BYTES = 2 * 1024 * 1024
#: The largest push the server takes (after decompression); above it, 413.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Operations (or records, for a snapshot) in one pulled page, and the most a client may ask for.
PULL_PAGE = 1000
MAX_PAGE = 5000

#: The ``device`` of operations the central store writes itself (copies of a record that changed scope).
CENTRAL_DEVICE = "central"


class ProtocolError(ValueError):
    """A reply that does not have the agreed shape."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One operation the server did not acknowledge, and why."""

    op_id: str
    reason: str


@dataclass(slots=True)
class ServerInfo:
    server_id: str
    user: str
    role: str
    last_seq: int
    server_time: str
    municipalities: list[str] = field(default_factory=list)
    provinces: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PushReply:
    server_id: str
    acknowledged: list[str]
    rejected: list[Verdict]
    deferred: list[Verdict]
    first_seq: int | None  # the lowest sequence number given to an operation stored by this push
    last_seq: int


@dataclass(slots=True)
class PullReply:
    server_id: str
    ops: list[dict[str, Any]]
    next: int
    more: bool
    mark: str | None = None  # the mark of the operation at ``after`` ("" when there is none); None: not said
    next_mark: str | None = None  # the mark of the operation at ``next``


@dataclass(slots=True)
class SnapshotReply:
    server_id: str
    ops: list[dict[str, Any]]
    upto: int
    next_id: str
    more: bool
    upto_mark: str | None = None  # the mark of the operation at ``upto``


def push_request(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ops": ops}


def _need(data: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise ProtocolError(f"the reply has no {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"the reply's {key!r} has the wrong type")
    return value


def _verdicts(items: Any, key: str) -> list[Verdict]:
    if not isinstance(items, list):
        raise ProtocolError(f"the reply's {key!r} is not a list")
    found = []
    for item in items:
        op_id, reason = _need(item, "op_id", str), _need(item, "reason", str)
        found.append(Verdict(op_id, reason))
    return found


def parse_info(data: Any) -> ServerInfo:
    return ServerInfo(
        server_id=_need(data, "server_id", str),
        user=_need(data, "user", str),
        role=_need(data, "role", str),
        last_seq=_need(data, "last_seq", int),
        server_time=_need(data, "server_time", str),
        municipalities=list(data.get("municipalities") or []),
        provinces=list(data.get("provinces") or []),
    )


def parse_push_reply(data: Any) -> PushReply:
    acknowledged = _need(data, "acknowledged", list)
    if not all(isinstance(op_id, str) for op_id in acknowledged):
        raise ProtocolError("the reply's 'acknowledged' must list operation ids")
    first_seq = data.get("first_seq")
    if first_seq is not None and (not isinstance(first_seq, int) or isinstance(first_seq, bool)):
        raise ProtocolError("the reply's 'first_seq' has the wrong type")
    return PushReply(
        server_id=_need(data, "server_id", str),
        acknowledged=acknowledged,
        rejected=_verdicts(data.get("rejected", []), "rejected"),
        deferred=_verdicts(data.get("deferred", []), "deferred"),
        first_seq=first_seq,
        last_seq=_need(data, "last_seq", int),
    )


def _ops(data: Any) -> list[dict[str, Any]]:
    ops = _need(data, "ops", list)
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("id"), str) or not isinstance(op.get("fields"), dict):
            raise ProtocolError("the reply holds something that is not an operation")
    return ops


def parse_pull_reply(data: Any) -> PullReply:
    return PullReply(
        server_id=_need(data, "server_id", str),
        ops=_ops(data),
        next=_need(data, "next", int),
        more=_need(data, "more", bool),
        mark=_optional(data, "mark"),
        next_mark=_optional(data, "next_mark"),
    )


def parse_snapshot_reply(data: Any) -> SnapshotReply:
    return SnapshotReply(
        server_id=_need(data, "server_id", str),
        ops=_ops(data),
        upto=_need(data, "upto", int),
        next_id=_need(data, "next_id", str),
        more=_need(data, "more", bool),
        upto_mark=_optional(data, "upto_mark"),
    )


def _optional(data: dict[str, Any], key: str) -> str | None:
    """A mark, when the store says one (an older store does not)."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"the reply's {key!r} has the wrong type")
    return value


def op_mark(op_id: str) -> str:
    """What a laptop remembers of the operation at its cursor: it changes if the store's history does.

    A hash, so it says nothing about the operation (which may be outside the laptop's area).
    """
    import hashlib

    return hashlib.sha256(op_id.encode()).hexdigest()[:16]


def state_ops(
    record_type: str,
    record_id: str,
    state: dict[str, Any],
    device: str,
    make_id: Callable[[], str] = new_id,
) -> list[dict[str, Any]]:
    """A record's merge state written as operations, oldest stamp first.

    One operation per stamp: the winning values and every rival, each with the
    highest ``seen`` stamp of its fields. Applying them to any state gives the
    same result as applying the operations that made this state, because a
    state is fully described by its winners, rivals and seen stamps. This is how
    a snapshot reaches a new laptop and how a laptop re-sends what it holds to a
    store that lost it.
    """
    by_stamp: dict[str, dict[str, Any]] = {}
    values, stamps, by = state.get("values", {}), state.get("stamps", {}), state.get("by", {})
    max_seen, rivals = state.get("seen", {}), state.get("rivals", {})

    def add(name: str, value: Any, stamp: str, author: str) -> None:
        op = by_stamp.get(stamp)
        if op is None:
            op = by_stamp[stamp] = {
                "op_id": "", "type": record_type, "id": record_id, "device": device,
                "author": author, "hlc": stamp, "fields": {}, "seen": {},
            }
        op["fields"][name] = value
        if name in max_seen and max_seen[name] < stamp:
            op["seen"][name] = max_seen[name]

    for name, stamp in stamps.items():
        add(name, values.get(name), stamp, by.get(name, ""))
    for name, candidates in rivals.items():
        for candidate in candidates:
            add(name, candidate["value"], candidate["hlc"], candidate.get("author", ""))
    ops = [by_stamp[stamp] for stamp in sorted(by_stamp)]
    for op in ops:
        op["op_id"] = make_id()
    return ops
