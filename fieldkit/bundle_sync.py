"""Sync by hand on a laptop: write a bundle of this laptop's changes, take in a peer's bundle or a receipt.

Keys live in the laptop's sync state beside its token (so they are protected,
backed up and restored like it): a signing and a decryption key made for this
laptop's device id, the central store's public key (learnt on the first online
sync, or typed in from its operator with ``fieldkit bundle trust``), and the
laptops it was introduced to for laptop-to-laptop bundles.

A receipt from the central store leaves the laptop as an online sync would:
the acknowledged changes leave the outbox, refused ones are marked with the
store's reason, the changes due are merged and the cursor moves (never back,
so an old receipt taken in late, or twice, changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fieldkit import bundles, merge
from fieldkit.bundles import LAPTOP_KEY, STORE_KEY, BundleError, Keys, PublicKey
from fieldkit.protocol import state_ops

NO_STORE_KEY = ("this laptop does not know the central store's key yet: sync online once (`fieldkit sync`), "
                "or ask the store's operator for the line `fieldkit server key` prints and run `fieldkit bundle trust LINE`")


@dataclass
class Made:
    """A bundle written: what it holds and for whom."""

    data: bytes
    changes: int
    records: int
    author: str
    made_for: list[str]


@dataclass
class TakenIn:
    """What taking in a bundle did on this laptop."""

    kind: str
    sender: str
    made_at: str
    author: str = ""
    merged: int = 0
    acknowledged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (change, reason)
    deferred: int = 0
    cursor_moved: bool = False
    resend: int = 0  # changes queued again for a central store that was reset or restored


# -- keys ----------------------------------------------------------------------------------------


def _section(register, state: dict[str, Any]) -> dict[str, Any]:
    """The bundle part of the sync state, with keys for this laptop's device id (made when missing)."""
    section = dict(state.get("bundle") or {})
    if section.get("device") != register.device_id or "keys" not in section:
        section = {"device": register.device_id, "keys": Keys.new().to_text(),
                   "store": section.get("store"), "peers": section.get("peers") or {}}
    state["bundle"] = section
    return section


def keys_of(register) -> tuple[Keys, dict[str, Any], dict[str, Any]]:
    """This laptop's keys, its sync state and the bundle section of it (saved if the keys were just made)."""
    state = register.sync_state()
    before = state.get("bundle")
    section = _section(register, state)
    if section is not before:
        register.save_sync_state(state)
    return Keys.from_text(section["keys"]), state, section


def public_key(register) -> PublicKey:
    keys, _, _ = keys_of(register)
    return keys.public(LAPTOP_KEY, register.device_id)


def trust(register, line: str, name: str | None = None) -> PublicKey:
    """Remember the central store's key, or another laptop's for laptop-to-laptop bundles."""
    key = PublicKey.parse(line)
    _, state, section = keys_of(register)
    if key.kind == STORE_KEY:
        section["store"] = {"server_id": key.name, "key": key.line()}
    else:
        if key.name == register.device_id:
            raise BundleError("that is this laptop's own key; give the key of the other laptop")
        peers = dict(section.get("peers") or {})
        peers[key.name] = {"key": key.line(), "name": (name or "").strip() or key.name}
        section["peers"] = peers
    register.save_sync_state(state)
    return key


def introduce(register, client, state: dict[str, Any]) -> str | None:
    """On an online sync: register this laptop's bundle key with its account, learn the store's.

    Changes ``state`` (the sync's own copy, saved with it). Returns a notice when
    the store refuses the key; bundles are extra, so the sync goes on.
    """
    from fieldkit.transport import ServerError, SyncError

    section = _section(register, state)
    store = section.get("store") or {}
    if store.get("server_id") == state.get("server_id") and section.get("registered") == state.get("server_id"):
        return None
    mine = Keys.from_text(section["keys"]).public(LAPTOP_KEY, register.device_id)
    try:
        answer = client.register_device(mine.line())
    except ServerError as err:
        if "answered 404" in str(err):
            section["registered"] = state.get("server_id")  # an older store without bundles: not asked again
            return None
        return f"bundles from this laptop will not be accepted by the central store: {err}"
    except SyncError:
        return None  # the link dropped after the sync itself went through: asked again next time
    try:
        key = PublicKey.parse(answer)
    except BundleError:
        return None
    section["store"] = {"server_id": key.name, "key": key.line()}
    section["registered"] = state.get("server_id")
    return None


def _peer(section: dict[str, Any], wanted: str) -> PublicKey:
    peers = section.get("peers") or {}
    text = wanted.strip().lower()
    found = [device for device, peer in peers.items()
             if device.lower().startswith(text) or peer.get("name", "").lower() == text]
    if len(found) != 1:
        known = ", ".join(f"{p.get('name')} ({d[:8]})" for d, p in peers.items()) or "none yet (`fieldkit bundle trust KEY`)"
        raise BundleError(f"'{wanted}' is {'not one' if not found else 'more than one'} of the laptops this one knows: {known}")
    return PublicKey.parse(peers[found[0]]["key"])


# -- writing a bundle ----------------------------------------------------------------------------


def everything_as_ops(register) -> list[dict[str, Any]]:
    """Every record this laptop holds, as operations with stable ids (so sending them twice stores them once)."""
    ops: list[dict[str, Any]] = []
    states = sorted(register.all_ops_for_snapshot(), key=lambda item: (item[1]["type"] != "issue", item[0]))
    for record_id, state in states:
        for op in state_ops(state["type"], record_id, state, register.device_id):
            op["op_id"] = bundles.stable_op_id(record_id, op["hlc"], register.device_id)
            ops.append(op)
    return ops


def make_bundle(register, everything: bool = False, peers: list[str] | None = None) -> Made:
    """This laptop's changes not yet acknowledged (or all it holds), sealed for the store and any peers named."""
    register.refresh()
    keys, state, section = keys_of(register)
    recipients: list[bytes] = []
    made_for: list[str] = []
    if section.get("store"):
        recipients.append(PublicKey.parse(section["store"]["key"]).box)
        made_for.append("the central store")
    for wanted in peers or []:
        peer = _peer(section, wanted)
        recipients.append(peer.box)
        made_for.append(f"laptop {(section['peers'][peer.name].get('name') or peer.name)}")
    if not recipients:
        raise BundleError(NO_STORE_KEY + "; or name a laptop this one knows with --for")
    recipients.append(keys.public(LAPTOP_KEY, register.device_id).box)  # the maker can always read its own bundle
    ops = register.pending_ops()
    if everything:
        pending = {op["op_id"] for op in ops}
        ops += [op for op in everything_as_ops(register) if op["op_id"] not in pending]
    payload = {
        "device": register.device_id, "author": register.author, "made_at": bundles.now_iso(),
        "server_id": state.get("server_id"), "cursor": state.get("cursor", 0) if "snapshot" not in state else 0,
        "cursor_mark": state.get("cursor_mark"),
        "all": everything, "ops": ops,
    }
    data = bundles.seal(bundles.CHANGES, register.device_id, keys, recipients, payload, payload["made_at"])
    return Made(data, len(ops), len({op["id"] for op in ops}), payload["author"], made_for)


# -- taking one in -------------------------------------------------------------------------------


def take_in(register, data: bytes, where: str = "the bundle") -> TakenIn:
    """Apply a peer's bundle or the central store's receipt; BundleError, with nothing applied, when refused."""
    sealed = bundles.read(data, where)
    register.refresh()
    keys, _, section = keys_of(register)
    if sealed.kind == bundles.RECEIPT:
        return _receipt(register, sealed, keys, section)
    if sealed.sender == register.device_id:
        raise BundleError("this bundle was made on this laptop: take it to the central store (`fieldkit server bundle-in`) "
                          "or to another laptop")
    peer = (section.get("peers") or {}).get(sealed.sender)
    if peer is None:
        raise BundleError(f"refused: this laptop has not been introduced to laptop {sealed.sender}, which made this bundle; "
                          "nothing was applied. On that laptop run `fieldkit bundle key`, here `fieldkit bundle trust KEY`")
    if PublicKey.parse(peer["key"]).sign != sealed.signer:
        raise BundleError(f"refused: this bundle was not signed with the key this laptop trusts for {peer.get('name')}; "
                          "nothing was applied")
    payload = sealed.open(keys.box, "this laptop")
    if payload.get("device") != sealed.sender:
        raise BundleError(f"{where} was altered after it was made (its contents name another laptop); nothing was applied")
    ops = payload["ops"]
    for op in ops:
        problem = merge.op_problem(op)
        if problem:
            raise BundleError(f"refused: the bundle holds a change fieldkit cannot read ({problem}); nothing was applied")
    register.apply_remote(ops)
    return TakenIn(bundles.CHANGES, peer.get("name") or sealed.sender, sealed.made_at, str(payload.get("author", "")), len(ops))


def _receipt(register, sealed: bundles.Sealed, keys: Keys, section: dict[str, Any]) -> TakenIn:
    store = section.get("store")
    if not store:
        raise BundleError(NO_STORE_KEY)
    if PublicKey.parse(store["key"]).sign != sealed.signer:
        raise BundleError("refused: this receipt was not signed by the central store this laptop knows; nothing was applied")
    payload = sealed.open(keys.box, "this laptop")
    if payload.get("device") != register.device_id:
        raise BundleError(f"this receipt is for laptop {payload.get('device')}, not this one ({register.device_id}); "
                          "take it to that laptop")
    # signed with the store's own key, so another server id means the same store, reset or restored
    state = register.sync_state()
    rejected = {op_id: reason for op_id, reason in (payload.get("rejected") or {}).items()}
    by_id = {op["op_id"]: op for op in register.pending_ops()}
    taken = TakenIn(bundles.RECEIPT, "the central store", sealed.made_at, acknowledged=len(payload.get("acknowledged") or []),
                    deferred=len(payload.get("deferred") or {}))
    from fieldkit.sync import describe_op

    taken.rejected = [(describe_op(register, by_id[op_id]), reason) for op_id, reason in rejected.items() if op_id in by_id]
    register.acknowledge(payload.get("acknowledged") or [], rejected=rejected)
    state = register.sync_state()
    still_there = (state.get("server_id") == payload.get("laptop_server_id")
                   and state.get("cursor_mark") == payload.get("laptop_mark"))
    if payload.get("start_over") and still_there:
        # the store was reset or restored since this laptop made the bundle: send everything again, as online
        state = {**state, "server_id": payload.get("server_id"), "cursor": 0}
        for stale in ("snapshot", "cursor_mark"):
            state.pop(stale, None)
        taken.resend = register.queue_full_resend(state)
        state = register.sync_state()
    if state.get("server_id") and payload.get("server_id") != state["server_id"]:
        # a receipt from before this laptop learnt the store was reset: its changes merge, the cursor stays
        payload = {**payload, "next": None}
    state["server_id"] = state.get("server_id") or payload.get("server_id")
    after, following = payload.get("after"), payload.get("next")
    cursor = state.get("cursor", 0) if "snapshot" not in state else 0
    if following is not None and after is not None and after <= cursor < following:
        state["cursor"] = following
        state.pop("snapshot", None)
        if payload.get("next_mark") is not None:
            state["cursor_mark"] = payload["next_mark"]
        taken.cursor_moved = True
    state["last_sync_at"] = bundles.now_iso()
    state.pop("last_error", None)
    ops = payload.get("ops") or []
    register.apply_remote(ops, state)
    mine = f":{register.device_id}"
    taken.merged = sum(1 for op in ops if not op["hlc"].endswith(mine))
    return taken
