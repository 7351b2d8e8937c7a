"""Erasing a community contact's personal information (POPIA): pure rules shared by laptop and central store.

An erasure is an operation on the issue that sets the contact's name and
phone to nothing, marked ``"erase": [fields]``, whose ``seen`` stamps sit just
below its own stamp: by the ordinary merge rule every earlier value of those
fields, winning or rival, is overruled everywhere it is applied, in any order,
and a change made before the erasure that arrives later is overruled too.

Overruled values can never be shown again, so each replica also blanks them
where it keeps copies of operations: a laptop's queue of unsent (and refused)
changes, the central store's operation log. ``scrub`` does that for one
operation against the record's merge state. A note on the issue's timeline
says who erased the contact and when.
"""

from __future__ import annotations

from typing import Any

from fieldkit.model import PERSONAL_FIELDS

ERASABLE = tuple(sorted(PERSONAL_FIELDS))


def just_before(stamp: str) -> str:
    """The lowest stamp with the same time and counter: below ``stamp``, above every earlier one."""
    ms, counter, _ = stamp.split(":")
    return f"{ms}:{counter}:-"


def erase_fields(op: dict[str, Any], fields: tuple[str, ...] = ERASABLE) -> dict[str, Any]:
    """Make an operation (op_id, ids, device, author, hlc already set) the erasure of ``fields``."""
    return {**op, "fields": {name: None for name in fields}, "seen": {name: just_before(op["hlc"]) for name in fields},
            "erase": list(fields)}


def erase_problem(op: dict[str, Any]) -> str | None:
    """What is wrong with an operation's ``erase`` mark, or None (also when it has none)."""
    if "erase" not in op:
        return None
    erased = op["erase"]
    if op.get("type") != "issue":
        return "only an issue's contact can be erased"
    if not isinstance(erased, list) or not erased or not set(erased) <= PERSONAL_FIELDS or len(set(erased)) != len(erased):
        return f"erase must list some of {', '.join(ERASABLE)}"
    fields = op.get("fields") if isinstance(op.get("fields"), dict) else {}
    if any(fields.get(name, "") is not None for name in erased):
        return "an erasure sets the fields it erases to nothing"
    return None


def is_erasure(op: dict[str, Any]) -> bool:
    return bool(op.get("erase"))


def scrub(op: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """The operation with the personal values ``state`` has overruled blanked (the same object when none)."""
    seen = state.get("seen", {})
    fields = op.get("fields", {})
    stale = [name for name in PERSONAL_FIELDS if fields.get(name) is not None and op["hlc"] <= seen.get(name, "")]
    if not stale:
        return op
    return {**op, "fields": {**fields, **{name: None for name in stale}}}


def erased_note(author: str, at: str) -> str:
    return f"Community contact's name and phone erased (POPIA) by {author} on {at[:10]}"
