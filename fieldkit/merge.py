"""The merge rule: per-field last writer wins, with disagreements kept visible.

Pure functions shared by the laptop and the central store. A change is an
*operation*::

    {"op_id", "type", "id", "device", "author", "hlc",
     "fields": {name: value}, "seen": {name: stamp}}

``seen`` holds, for each field, the stamp of the value the author was looking
at when they changed it. A record's merge state is::

    {"values": {...}, "stamps": {name: stamp}, "by": {name: author},
     "seen": {name: highest seen stamp}, "rivals": {name: [candidate, ...]}}

For each field the value with the highest stamp wins, so every replica agrees.
A *rival* is a value that lost but that nobody has yet seen and overruled: its
stamp is above every ``seen`` stamp for that field. Rivals are shown to people
as conflicts until someone edits the field having seen them.

Because the winner is a maximum, ``seen`` is a maximum and rivals are a set
filtered by that maximum, applying operations is commutative, associative and
idempotent: any order, grouping or repetition of the same operations gives the
same state. ``tests/test_merge.py`` checks this with Hypothesis.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable

from fieldkit.hlc import ZERO, wall_ms

OP_KEYS = ("op_id", "type", "id", "device", "author", "hlc", "fields", "seen")


def empty_state() -> dict[str, Any]:
    return {"values": {}, "stamps": {}, "by": {}, "seen": {}, "rivals": {}}


def apply_op(state: dict[str, Any] | None, op: dict[str, Any]) -> dict[str, Any]:
    """The record state after one operation; the input state is not changed."""
    new = copy.deepcopy(state) if state else empty_state()
    apply_op_in_place(new, op)
    return new


def apply_op_in_place(state: dict[str, Any], op: dict[str, Any], copy_values: bool = True) -> None:
    """Apply an operation to a state the caller owns (the fast path for big pulls).

    ``copy_values=False`` when the operation was made for this call alone (a
    pulled page, just parsed): its lists and objects are kept, not copied.
    """
    owned = _owned if copy_values else _as_is
    hlc, author = op["hlc"], op.get("author", "")
    seen = op.get("seen") or {}
    values, stamps, by = state["values"], state["stamps"], state["by"]
    max_seen, rivals = state["seen"], state["rivals"]
    for name, value in op["fields"].items():
        op_seen = seen.get(name, ZERO)
        if op_seen > max_seen.get(name, ZERO):
            max_seen[name] = op_seen
        threshold = max_seen.get(name, ZERO)
        current = stamps.get(name)
        if name not in rivals:
            if current is None or (hlc > current and current <= threshold):
                values[name], stamps[name], by[name] = owned(value), hlc, author  # the common case: no rival
                continue
            if current == hlc:
                continue  # this operation again
        candidates = {c["hlc"]: c for c in rivals.get(name, ())}
        if current is not None:
            candidates[current] = {"value": values[name], "hlc": current, "author": by.get(name, "")}
        candidates[hlc] = candidates.get(hlc) or {"value": owned(value), "hlc": hlc, "author": author}
        winner = candidates[max(candidates)]
        values[name], stamps[name], by[name] = winner["value"], winner["hlc"], winner["author"]
        losing = [c for stamp, c in sorted(candidates.items()) if stamp != winner["hlc"] and stamp > threshold]
        if losing:
            rivals[name] = losing
        else:
            rivals.pop(name, None)


def owned(value: Any) -> Any:
    """A value the state may keep: JSON lists and objects are copied, the rest are immutable."""
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


_owned = owned


def _as_is(value: Any) -> Any:
    return value


def apply_ops(state: dict[str, Any] | None, ops: Iterable[dict[str, Any]]) -> dict[str, Any]:
    new = copy.deepcopy(state) if state else empty_state()
    for op in ops:
        apply_op_in_place(new, op)
    return new


def conflicts(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The disagreements to show: rivals whose value differs from the winning one."""
    found = []
    for name, candidates in sorted(state.get("rivals", {}).items()):
        current = state["values"].get(name)
        for candidate in candidates:
            if candidate["value"] != current:
                found.append({"field": name, **candidate})
    return found


def last_change(state: dict[str, Any]) -> tuple[str, str]:
    """The newest stamp in a record and who made it: its 'updated at' and 'updated by'."""
    stamps = state.get("stamps") or {}
    if not stamps:
        return ZERO, ""
    name = max(stamps, key=stamps.__getitem__)
    return stamps[name], state["by"].get(name, "")


@lru_cache(maxsize=4096)
def _second_iso(second: int) -> str:
    return datetime.fromtimestamp(second, tz=timezone.utc).isoformat()


def stamp_time_iso(stamp: str) -> str:
    return _second_iso(wall_ms(stamp) // 1000)


def op_problem(op: Any) -> str | None:
    """What is structurally wrong with an operation, or None. Field values are the model's business."""
    from fieldkit.hlc import is_stamp
    from fieldkit.ids import is_record_id
    from fieldkit.model import RECORD_TYPES
    from fieldkit.safe_text import shown

    if not isinstance(op, dict):
        return "an operation must be a JSON object"
    missing = [key for key in OP_KEYS if key not in op]
    if missing:
        return f"operation is missing {', '.join(missing)}"
    extra = sorted(set(op) - set(OP_KEYS) - {"erase"})
    if extra:
        return f"operation has unknown keys: {', '.join(extra)}"
    if op["type"] not in RECORD_TYPES:
        return f"unknown record type '{shown(op['type'])}'"
    for key in ("op_id", "id"):
        if not isinstance(op[key], str) or not is_record_id(op[key]):
            return f"{key} '{shown(op[key])}' is not a UUIDv7"
    if not isinstance(op["device"], str) or not 1 <= len(op["device"]) <= 64:
        return "device must be a short text id"
    if not isinstance(op["author"], str) or len(op["author"]) > 120:
        return "author must be text of at most 120 characters"
    if not is_stamp(op["hlc"]):
        return f"hlc '{shown(op['hlc'])}' is not a clock stamp"
    if not isinstance(op["fields"], dict) or not op["fields"]:
        return "fields must be a non-empty object"
    if not isinstance(op["seen"], dict) or not all(is_stamp(s) for s in op["seen"].values()):
        return "seen must map field names to clock stamps"
    if any(op["seen"][name] >= op["hlc"] for name in op["seen"]):
        return "a seen stamp cannot be newer than the operation itself"
    from fieldkit.erasure import erase_problem

    return erase_problem(op)


#: Keys a stored record carries beside its own fields, derived from its merge state.
DERIVED_KEYS = frozenset({"id", "updated_at", "updated_by", "conflicts"})


def pack_state(state: dict[str, Any]) -> dict[str, Any]:
    """A merge state as the store keeps it: without the values, which the record itself holds.

    Almost every record has one writer and one stamp, so the state keeps one
    stamp and author (``s``, ``a``) and only the fields that differ (``fs``,
    ``fa``); ``seen`` and ``rivals`` as they are (``n``, ``r``).
    """
    stamps, by = state["stamps"], state["by"]
    packed: dict[str, Any] = {}
    if stamps:
        distinct = set(stamps.values())
        if len(distinct) == 1:
            (main,) = distinct  # the common case: one operation wrote the record
        else:
            counts: dict[str, int] = {}
            for stamp in stamps.values():
                counts[stamp] = counts.get(stamp, 0) + 1
            main = max(counts, key=lambda s: (counts[s], s))
        author = next(by.get(name, "") for name, stamp in stamps.items() if stamp == main)
        packed["s"], packed["a"] = main, author
        other_stamps = {name: stamp for name, stamp in stamps.items() if stamp != main}
        other_authors = {name: by.get(name, "") for name in stamps if by.get(name, "") != author}
        if other_stamps:
            packed["fs"] = other_stamps
        if other_authors:
            packed["fa"] = other_authors
    if state["seen"]:
        packed["n"] = state["seen"]
    if state["rivals"]:
        packed["r"] = state["rivals"]
    return packed


def unpack_state(packed: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The full merge state of a stored record (``pack_state`` the other way)."""
    values = {name: value for name, value in record.items() if name not in DERIVED_KEYS}
    main, author = packed.get("s", ZERO), packed.get("a", "")
    other_stamps, other_authors = packed.get("fs", {}), packed.get("fa", {})
    return {
        "values": values,
        "stamps": {name: other_stamps.get(name, main) for name in values},
        "by": {name: other_authors.get(name, author) for name in values},
        "seen": packed.get("n", {}),
        "rivals": packed.get("r", {}),
    }
