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

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
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
    new: int = 0  # of the changes merged, those that changed something here (the others were here already)
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


def _not_practice(register) -> None:
    from fieldkit import practice

    if practice.is_practice(register):
        raise BundleError(practice.BUNDLES_REFUSED)


def known_peers(register) -> list[str]:
    """The device ids of the laptops this one was introduced to (``fieldkit bundle trust``)."""
    return list((register.sync_state().get("bundle") or {}).get("peers") or {})


def make_bundle(register, everything: bool = False, peers: list[str] | None = None) -> Made:
    """This laptop's changes not yet acknowledged (or all it holds), sealed for the store and any peers named."""
    _not_practice(register)
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


def file_name(device_id: str, at: datetime | None = None) -> str:
    """A bundle's file name: the laptop's short code and when, so bundles on a stick sort and never clash."""
    from fieldkit.ids import device_code

    return f"fieldkit-{device_code(device_id)}-{(at or datetime.now(timezone.utc)):%Y%m%d-%H%M%S}{bundles.SUFFIX}"


def write_to(register, folder: Path, everything: bool = False) -> tuple[Path, Made]:
    """Write a bundle into a folder (a USB stick), sealed for the central store and every laptop this one knows."""
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise BundleError(f"there is no folder {folder}: is the stick plugged in?")
    _not_practice(register)
    peers = known_peers(register)
    if not peers and not (register.sync_state().get("bundle") or {}).get("store"):
        raise BundleError(NO_STORE_KEY)
    made = make_bundle(register, everything=everything, peers=peers)
    path = folder / file_name(register.device_id)
    bundles.write_file(path, made.data)
    return path, made


# -- taking one in -------------------------------------------------------------------------------


def take_in(register, data: bytes, where: str = "the bundle") -> TakenIn:
    """Apply a peer's bundle or the central store's receipt; BundleError, with nothing applied, when refused."""
    sealed = bundles.read(data, where)
    _not_practice(register)
    register.refresh()
    keys, _, section = keys_of(register)
    payload, sender = _opened(register, sealed, keys, section, where)
    if sealed.kind == bundles.RECEIPT:
        return _receipt(register, sealed, payload)
    ops = payload["ops"]
    new = _new_here(register, ops)
    register.apply_remote(ops)
    return TakenIn(bundles.CHANGES, sender, sealed.made_at, str(payload.get("author", "")), len(ops), new)


def _opened(register, sealed: bundles.Sealed, keys: Keys, section: dict[str, Any], where: str) -> tuple[dict[str, Any], str]:
    """The payload of a bundle this laptop may take in, and who sent it; BundleError saying why it may not."""
    if sealed.kind == bundles.RECEIPT:
        store = section.get("store")
        if not store:
            raise BundleError(NO_STORE_KEY)
        if PublicKey.parse(store["key"]).sign != sealed.signer:
            raise BundleError("refused: this receipt was not signed by the central store this laptop knows; nothing was applied")
        payload = sealed.open(keys.box, "this laptop")
        if payload.get("device") != register.device_id:
            raise BundleError(f"this receipt is for laptop {payload.get('device')}, not this one ({register.device_id}); "
                              "take it to that laptop")
        return payload, "the central store"
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
    for op in payload["ops"]:
        problem = merge.op_problem(op)
        if problem:
            raise BundleError(f"refused: the bundle holds a change fieldkit cannot read ({problem}); nothing was applied")
    return payload, peer.get("name") or sealed.sender


def _new_here(register, ops: list[dict[str, Any]]) -> int:
    """How many of these changes would change something here (the others are here already)."""
    states = register.merge_states({(op["type"], op["id"]) for op in ops})
    new = 0
    for op in ops:
        key = (op["type"], op["id"])
        before = states.get(key) or merge.empty_state()
        after = merge.apply_op(before, op)
        if after != before:
            new += 1
            states[key] = after
    return new


def _receipt(register, sealed: bundles.Sealed, payload: dict[str, Any]) -> TakenIn:
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
    # signed with the store's own key, so another server id means the same store, reset or restored
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


# -- saying what a bundle holds, and what taking it in did ---------------------------------------------


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


#: Records as a facilitator names them, in the order they are listed.
RECORD_WORDS = {"issue": "issue", "note": "note", "action": "action", "status_change": "status change",
                "attachment": "attachment", "lesson": "lesson"}


def when_made(stamp: str) -> str:
    """A bundle's time on this laptop's clock, to the minute, as the app shows every other time."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone().strftime("%Y-%m-%d %H:%M")


@dataclass
class Contents:
    """What a bundle holds, as far as this laptop can tell, without taking it in."""

    kind: str
    sender: str  # "this laptop", "laptop Sipho", "laptop 0a1b…", "the central store"
    made_at: str
    size: int
    made_for: list[str] = field(default_factory=list)
    readable: bool = False
    author: str = ""
    changes: int = 0
    records: dict[str, int] = field(default_factory=dict)  # distinct records changed, by kind
    everything: bool = False
    new: int = 0  # changes that would change something here
    waiting: int = 0  # this laptop's changes still in its outbox: a receipt takes them out, an own bundle waits for one
    acknowledged: int = 0
    refusals: int = 0
    problem: str = ""  # why this laptop cannot take it in ("" when it can)

    @property
    def own(self) -> bool:
        return self.kind == bundles.CHANGES and self.sender == "this laptop"

    def held(self) -> str:
        """The changes, by the records they touch: "5 changes (2 issues, 1 note, 2 status changes)"."""
        parts = [plural(self.records[kind], word) for kind, word in RECORD_WORDS.items() if self.records.get(kind)]
        return plural(self.changes, "change") + (f" ({', '.join(parts)})" if parts else "")

    def lines(self) -> list[str]:
        """What it holds in a few lines: who made it and when, what it holds, for whom, what taking it in would do."""
        made = f"made {when_made(self.made_at)}, {self.size:,} bytes"
        if self.kind == bundles.RECEIPT:
            lines = [f"receipt from the central store, {made}"]
        else:
            lines = [f"changes from {self.sender}" + (f" by {self.author}" if self.author else "") + f", {made}"]
        if self.made_for:
            lines.append(f"for {' and '.join(self.made_for)}")
        if not self.readable:
            lines.append(self.problem or "sealed for others: this laptop cannot read what it holds")
            return lines
        if self.kind == bundles.RECEIPT:
            lines.append(f"{plural(self.acknowledged, 'acknowledgement')}, {plural(self.refusals, 'refusal')}, "
                         f"{self.held()} due")
        else:
            lines.append(("everything that laptop holds: " if self.everything else "") + self.held())
        lines.append(self.outlook())
        return lines

    def outlook(self) -> str:
        """What taking it in would do now, or why it cannot be taken in here."""
        if self.own:
            if not self.waiting:
                return "the central store has acknowledged all of it"
            verb = "waits" if self.waiting == 1 else "wait"
            if "the central store" in self.made_for:
                return f"{plural(self.waiting, 'change')} in it still {verb} for the central store's receipt"
            return f"{plural(self.waiting, 'change')} in it still {verb} to reach the central store"
        if self.problem:
            return self.problem
        if self.kind == bundles.RECEIPT:
            if not self.waiting and not self.new:
                return "already taken in: it changes nothing here"
            does = [f"takes {plural(self.waiting, 'change')} out of the outbox"] if self.waiting else []
            does += [f"brings {plural(self.new, 'change')} from others"] if self.new else []
            return f"waiting to be taken in: {' and '.join(does)}"
        return f"{self.new:,} new here, {self.changes - self.new:,} already here"

    def short(self) -> str:
        """One line for a list of bundles."""
        who = "receipt from the central store" if self.kind == bundles.RECEIPT else f"from {self.sender}"
        if not self.readable:
            return f"{who}, {when_made(self.made_at)}: {self.problem or 'sealed for others'}"
        what = (f"{plural(self.acknowledged, 'acknowledgement')}, {plural(self.changes, 'change')} due"
                if self.kind == bundles.RECEIPT else self.held())
        return f"{who}, {when_made(self.made_at)}: {what} · {self.outlook()}"


def describe(register, data: bytes, where: str = "the bundle") -> Contents:
    """What a bundle holds and what taking it in would do here; BundleError when it is damaged or altered."""
    sealed = bundles.read(data, where)
    keys, _, section = keys_of(register)
    own = sealed.kind == bundles.CHANGES and sealed.sender == register.device_id
    contents = Contents(sealed.kind, _sender(register, sealed, section), sealed.made_at, sealed.size,
                        _recipients(register, sealed, keys, section))
    try:
        _not_practice(register)
        payload = sealed.open(keys.box, "this laptop") if own else _opened(register, sealed, keys, section, where)[0]
    except BundleError as err:
        contents.problem = str(err)
        return contents
    ops = payload.get("ops") or []
    if sealed.kind == bundles.RECEIPT:  # the changes due, less this laptop's own coming back
        ops = [op for op in ops if not op["hlc"].endswith(f":{register.device_id}")]
    contents.readable = True
    contents.changes = len(ops)
    contents.records = dict(Counter(kind for kind, _ in {(op["type"], op["id"]) for op in ops}))
    pending = {op["op_id"] for op in register.pending_ops()}
    if sealed.kind == bundles.RECEIPT:
        acknowledged = payload.get("acknowledged") or []
        contents.acknowledged, contents.refusals = len(acknowledged), len(payload.get("rejected") or {})
        contents.waiting = len(pending.intersection(acknowledged))
        contents.new = _new_here(register, ops)
        return contents
    contents.author, contents.everything = str(payload.get("author", "")), bool(payload.get("all"))
    if own:
        contents.waiting = len(pending.intersection(op["op_id"] for op in ops))
    else:
        contents.new = _new_here(register, ops)
    return contents


def _sender(register, sealed: bundles.Sealed, section: dict[str, Any]) -> str:
    if sealed.kind == bundles.RECEIPT:
        return "the central store"
    if sealed.sender == register.device_id:
        return "this laptop"
    peer = (section.get("peers") or {}).get(sealed.sender)
    return f"laptop {peer.get('name') or sealed.sender}" if peer else f"laptop {sealed.sender}"


def _recipients(register, sealed: bundles.Sealed, keys: Keys, section: dict[str, Any]) -> list[str]:
    """Whom a bundle was sealed for, named as far as this laptop knows them (the maker itself left out)."""
    names: dict[bytes, str] = {keys.public(LAPTOP_KEY, register.device_id).box: "this laptop"}
    if section.get("store"):
        names[PublicKey.parse(section["store"]["key"]).box] = "the central store"
    for device, peer in (section.get("peers") or {}).items():
        names[PublicKey.parse(peer["key"]).box] = f"laptop {peer.get('name') or device}"
    maker = (section.get("peers") or {}).get(sealed.sender)
    maker_box = PublicKey.parse(maker["key"]).box if maker else None
    if sealed.sender == register.device_id:
        maker_box = keys.public(LAPTOP_KEY, register.device_id).box
    named = [names.get(box, "a laptop or store this one does not know") for box in sealed.recipients() if box != maker_box]
    return list(dict.fromkeys(named))


def said(taken: TakenIn) -> list[str]:
    """What taking in a bundle did, in the lines the command line prints and the app shows."""
    if taken.kind == bundles.RECEIPT:
        lines = [f"took in the central store's receipt (made {when_made(taken.made_at)}): "
                 f"{plural(taken.acknowledged, 'change')} acknowledged, {plural(taken.merged, 'change')} from others merged"
                 + ("" if taken.cursor_moved else " (this laptop had them already)")]
        if taken.resend:
            lines.append(f"the central store was reset or restored: {plural(taken.resend, 'change')} this laptop holds are "
                         "queued to go again with the next bundle or sync")
        if taken.deferred:
            lines.append(f"{plural(taken.deferred, 'change')} wait for records still on their way (in the next bundle again)")
        if taken.rejected:
            lines.append(f"{plural(len(taken.rejected), 'change')} refused by the central store "
                         "(kept on this laptop, marked refused, with the reason)")
        return lines
    return [f"took in the bundle from {taken.sender} (by {taken.author}, made {when_made(taken.made_at)}): "
            f"{plural(taken.merged, 'change')}, {taken.new:,} new, {taken.merged - taken.new:,} already here"]


def bundle_files(folder: Path, most: int = 20) -> list[Path]:
    """The bundles and receipts in a folder, newest first (files half-written are hidden, never listed)."""
    found: list[tuple[int, str, Path]] = []
    try:
        for path in folder.iterdir():
            if path.name.endswith(bundles.SUFFIX) and not path.name.startswith(".") and path.is_file():
                found.append((-path.stat().st_mtime_ns, path.name, path))
    except OSError:
        return []  # the stick was pulled out while it was being read
    return [path for _, _, path in sorted(found)[:most]]


def places(settings: dict[str, Any]) -> list[tuple[str, Path]]:
    """Where bundles are written and looked for: the USB sticks plugged in, then the last folder used."""
    from fieldkit import drives

    found = [(drive.label, drive.path) for drive in drives.plugged_in()]
    last = settings.get("bundle_folder")
    if isinstance(last, str) and last and Path(last).is_dir() and all(Path(last) != path for _, path in found):
        found.append((f"the last folder used ({last})", Path(last)))
    return found


@dataclass(frozen=True)
class Listed:
    """A bundle found in a folder or on a stick, and what it holds (or why it cannot be read) in one line."""

    path: Path
    where: str
    line: str


def look_in(register, places: list[tuple[str, Path]], known: dict[tuple[str, int, int], str] | None = None) -> list[Listed]:
    """The bundles in these places (a stick's label or a folder's, and where it is), newest first in each.

    ``known`` keeps the lines of files already read (by path, time and size), so looking
    again every few seconds for a stick just plugged in reads only new files.
    """
    known = {} if known is None else known
    found: list[Listed] = []
    for where, folder in places:
        for path in bundle_files(folder):
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (str(path), stat.st_mtime_ns, stat.st_size)
            if key not in known:
                try:
                    known[key] = describe(register, bundles.read_bytes(path), "this file").short()
                except BundleError as err:
                    known[key] = str(err)
            found.append(Listed(path, where, known[key]))
    return found
