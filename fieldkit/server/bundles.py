"""The central store takes in a bundle carried by hand and gives back a receipt.

A bundle is applied exactly like a push from its laptop, judged against the
account that laptop is registered with (``devices``), in one transaction; a
bundle holding any change outside that account's area is applied not at all.
The receipt says what the store acknowledged, refused and deferred — so the
laptop's outbox ends as after an online sync — and carries the changes the
laptop is due after the cursor it wrote into the bundle (a snapshot of its
area when it has never synced), sealed to that laptop alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from fieldkit import bundles
from fieldkit.protocol import MAX_PAGE
from fieldkit.server.accounts import User
from fieldkit.server.db import Database, Device, OutsideScope


@dataclass
class Outcome:
    """What applying a bundle did, and the receipt to carry back."""

    device: str
    account: str
    author: str
    made_at: str
    received: int  # changes the bundle held
    stored: int  # of them new to this store
    rejected: list[dict[str, str]]
    deferred: list[dict[str, str]]
    due: int  # changes the receipt carries to the laptop
    receipt: bytes
    refused: str | None = None  # set when nothing was applied (the receipt then only marks the refused changes)
    notes: list[str] = field(default_factory=list)


def _known_device(database: Database, sealed: bundles.Sealed) -> tuple[Device, User]:
    if sealed.kind != bundles.CHANGES:
        raise bundles.BundleError("this is a receipt from another central store; it was not made for this one")
    device = database.device(sealed.sender)
    if device is None:
        raise bundles.BundleError(
            f"refused: this central store does not know laptop {sealed.sender}; nothing was applied. Sync it online once, "
            "or register it: on the laptop `fieldkit bundle key`, here `fieldkit user add-device ACCOUNT KEY`")
    if device.revoked:
        raise bundles.BundleError(f"refused: bundles from {sealed.sender} were revoked on this central store; nothing was applied")
    if device.sign_key != sealed.signer:
        raise bundles.BundleError(
            f"refused: this bundle was not signed with the key registered for laptop {sealed.sender}; nothing was applied")
    user = database.user_named(device.user_name)
    if user is None or user.revoked:
        raise bundles.BundleError(f"refused: the account {device.user_name} that laptop {sealed.sender} speaks for "
                                  "is revoked or gone; nothing was applied")
    return device, user


def apply_bundle(database: Database, data: bytes, where: str = "the bundle") -> Outcome:
    """Check, apply and answer one bundle; BundleError (nothing applied) when it cannot be taken in."""
    sealed = bundles.read(data, where)
    device, user = _known_device(database, sealed)
    keys = database.bundle_keys()
    payload = sealed.open(keys.box, "this central store")
    ops = payload.get("ops") or []
    if payload.get("device") != sealed.sender:
        raise bundles.BundleError(f"{where} was altered after it was made (its contents name another laptop); nothing was applied")
    info = database.info(user)
    server_id = info["server_id"]
    outcome = Outcome(sealed.sender, user.name, str(payload.get("author", "")), sealed.made_at, len(ops), 0, [], [], 0, b"")
    cursor = payload.get("cursor") if payload.get("server_id") == server_id else None
    if not isinstance(cursor, int) or cursor <= 0:
        cursor = None
    # this store was reset or restored since the laptop last heard from it: it must send everything again
    start_over = bool(payload.get("server_id")) and (payload["server_id"] != server_id or _lost(database, user, cursor, payload))
    if start_over:
        cursor = None
    # a laptop that never synced gets a snapshot taken before its own changes go in, as online,
    # so they do not come back to it in the receipt
    snapshot, upto = _snapshot(database, user) if cursor is None else ([], cursor)
    try:
        reply = database.push(user, ops, whole=True)
    except OutsideScope as err:
        outcome.refused = (f"refused: {len(err.refused)} of this bundle's changes are outside the area of the account "
                           f"{user.name} ({err.refused[0]['reason']}); nothing was applied")
        receipt = {"acknowledged": [], "rejected": {r["op_id"]: r["reason"] for r in err.refused}, "deferred": {},
                   "ops": [], "after": None, "next": None, "next_mark": None}
        outcome.rejected = err.refused
        outcome.receipt = _seal_receipt(database, keys, device, server_id, sealed, payload, receipt)
        return outcome
    first = reply["first_seq"]
    outcome.stored = reply["last_seq"] - first + 1 if first is not None else 0
    reply = _again(database, user, ops, reply, outcome)
    outcome.rejected, outcome.deferred = reply["rejected"], reply["deferred"]
    later, following, mark = _after(database, user, upto, sealed.sender, first)
    due = snapshot + later
    after = 0 if cursor is None else cursor
    outcome.due = sum(1 for op in due if not str(op.get("hlc", "")).endswith(f":{sealed.sender}"))
    receipt = {
        "acknowledged": reply["acknowledged"],
        "rejected": {r["op_id"]: r["reason"] for r in reply["rejected"] if r["op_id"]},
        "deferred": {d["op_id"]: d["reason"] for d in reply["deferred"]},
        "ops": due, "after": after, "next": following, "next_mark": mark, "start_over": start_over,
        "laptop_server_id": payload.get("server_id"), "laptop_mark": payload.get("cursor_mark"),
    }
    outcome.receipt = _seal_receipt(database, keys, device, server_id, sealed, payload, receipt)
    return outcome


def _again(database: Database, user: User, ops: list[dict[str, Any]], reply: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """Changes deferred for a record the same bundle brought later are applied, as a sync sends them again.

    (``--all`` writes a moved issue's states oldest first: the first names no municipality yet.)
    """
    while reply["deferred"] and reply["acknowledged"]:
        waiting = {verdict["op_id"] for verdict in reply["deferred"]}
        again = database.push(user, [op for op in ops if op["op_id"] in waiting])
        if again["first_seq"] is not None:
            outcome.stored += again["last_seq"] - again["first_seq"] + 1
        reply = {**reply, "acknowledged": reply["acknowledged"] + again["acknowledged"],
                 "rejected": reply["rejected"] + again["rejected"], "deferred": again["deferred"]}
        if not again["acknowledged"]:
            break
    return reply


def _lost(database: Database, user: User, cursor: int | None, payload: dict[str, Any]) -> bool:
    """Whether the change at the laptop's cursor is no longer the one it saw (a store restored from an older copy)."""
    seen = payload.get("cursor_mark")
    if cursor is None or not isinstance(seen, str) or not seen:
        return False
    return orjson.loads(database.pull(user, cursor, 1))["mark"] != seen


def _snapshot(database: Database, user: User) -> tuple[list[dict[str, Any]], int]:
    """The current state of every record in the user's area, as operations, and the sequence it covers."""
    ops: list[dict[str, Any]] = []
    after_id, upto = "", None
    while True:
        page = orjson.loads(database.snapshot(user, after_id, MAX_PAGE))
        upto = page["upto"] if upto is None else upto
        ops.extend(page["ops"])
        after_id = page["next_id"]
        if not page["more"]:
            return ops, upto


def _after(database: Database, user: User, cursor: int, device: str, first_seq: int | None) -> tuple[list[dict[str, Any]], int, str]:
    """The changes after ``cursor`` in the user's area, leaving out the ones this bundle just brought."""
    ops: list[dict[str, Any]] = []
    mark = ""
    while True:
        page = orjson.loads(database.pull(user, cursor, MAX_PAGE, device if first_seq else None, first_seq))
        ops.extend(page["ops"])
        cursor, mark = page["next"], page["next_mark"]
        if not page["more"]:
            return ops, cursor, mark


def _seal_receipt(database: Database, keys: bundles.Keys, device: Device, server_id: str, sealed: bundles.Sealed,
                  payload: dict[str, Any], receipt: dict[str, Any]) -> bytes:
    body = {"device": device.device, "server_id": server_id, "bundle_made_at": sealed.made_at,
            "bundle_author": payload.get("author", ""), "bundle_upto": payload.get("upto"), **receipt}
    return bundles.seal(bundles.RECEIPT, "central", keys, [device.box_key], body)
