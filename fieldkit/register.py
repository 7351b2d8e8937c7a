"""The issue register on this laptop: every change an operation, merged and saved durably.

The command line, the app, the importer and the sync client all change the
register through ``Register`` and nothing else. Each change is one transaction
that writes the record's new values, its merge state, the operation for the
outbox and this replica's clock together, so a crash keeps all or none.
"""

from __future__ import annotations

import getpass
import os
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable, Iterator

from fieldkit import merge, model
from fieldkit.filters import IssueFilter, IssueRow, due_this_week, row_from_values, row_to_line
from fieldkit.hlc import ZERO, Clock
from fieldkit.ids import is_record_id, issue_ref, new_device_id, new_id
from fieldkit.store import RECORD_KINDS, Store
from fieldkit.store.index import IssueIndex

CHILD_TYPES = ("note", "action", "status_change", "attachment")


class NotFound(LookupError):
    pass


class Ambiguous(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an issue's history, in time order."""

    at: str
    kind: str  # created, status, note, action, action_done, attached, detached
    author: str
    text: str
    record_id: str


class _Packing:
    """A record's packed merge state and lookup line, worked out once, when its transaction is written."""

    __slots__ = ("kind", "record_id", "values", "state")

    def __init__(self, kind: str, record_id: str, values: dict[str, Any], state: dict[str, Any]):
        self.kind, self.record_id, self.values, self.state = kind, record_id, values, state

    def __call__(self) -> tuple[dict[str, Any], tuple[str, str, str, str] | None]:
        line = None
        if self.kind == "issue":
            row = row_from_values(self.record_id, self.values)
            line = (row.ref, row.municipality, row.status, row_to_line(row))
        return merge.pack_state(self.state), line


class Register:
    def __init__(self, store: Store, author: str | None = None):
        self.store = store
        self._author = author
        self._settings_author: str | None = None
        self._index: IssueIndex | None = None
        self._unsynced: tuple[set[str], tuple[int, int]] | None = None
        self.restored = False
        self._replica: dict[str, Any] = {}
        self._replica_read = -1
        replica = store.local("replica")
        self.device_id: str = replica.get("device_id", "")
        self.clock = Clock(self.device_id or "0000", replica.get("clock"))
        if not store.read_only and (not self.device_id or replica.get("file") != store.file_identity() or store.went_back()):
            with store.transaction():
                self._load_replica(check_restore=True)
        store.on_change(self._changed)

    def _load_replica(self, check_restore: bool = False) -> dict[str, Any]:
        """This laptop's identity, clock and reference counter as saved now (call inside a transaction).

        Read afresh in every write, so two processes never hand out the same
        reference or stamp. A register file that is not the one this replica
        last wrote (restored from a backup or an old copy, or copied to another
        laptop) becomes a new replica: a new device code, so no reference or
        clock stamp it hands out can repeat one the old copy already gave.
        """
        if self._replica_read == self.store.db.number and self.store.db.in_transaction and not check_restore:
            return self._replica  # read in this transaction already, and nothing else can write until it ends
        replica = self.store.local("replica")
        identity = self.store.file_identity()
        if not replica.get("device_id") or replica.get("file", identity) != identity or (check_restore and self.store.went_back()):
            self.restored = bool(replica.get("device_id"))
            self.store.accept_restore()
            earlier = [*replica.get("earlier_devices", []), replica["device_id"]] if self.restored else []
            replica = {"device_id": new_device_id(), "clock": replica.get("clock", ZERO), "next_seq": 1,
                       "earlier_devices": earlier}
        if replica.get("file") != identity:
            replica["file"] = identity
            self.store.set_local("replica", replica)
        self.device_id = replica["device_id"]
        self._replica = replica
        self._replica_read = self.store.db.number
        stored_clock = replica.get("clock") or ZERO
        if self.clock.device != self.device_id:
            self.clock = Clock(self.device_id, stored_clock)
        elif stored_clock != ZERO:
            self.clock.receive(stored_clock)
        return replica

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, author: str | None = None, codec: Any = None) -> "Register":
        """Open the register in ``home``; ``codec`` is the unlocked key of an encrypted one (see fieldkit.encryption)."""
        return cls(Store(home, codec=codec), author)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Register":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who is working ------------------------------------------------------------

    @property
    def author(self) -> str:
        if self._author:
            return self._author
        if self._settings_author is None:
            name = self.settings().get("name")
            if not name:
                try:
                    name = getpass.getuser()
                except (KeyError, OSError):
                    name = "unknown"
            self._settings_author = name
        return self._settings_author

    def settings(self) -> dict[str, Any]:
        return self.store.local("settings")

    def save_settings(self, **changes: Any) -> dict[str, Any]:
        with self.store.transaction():
            current = self.settings()
            current.update(changes)
            self.store.set_local("settings", current)
        self._settings_author = None
        return current

    # -- indexes -------------------------------------------------------------------

    @property
    def index(self) -> IssueIndex:
        """The register index: cold lookups read only the lines that can match; the app's rows are built once."""
        if self._index is None:
            self._index = IssueIndex(store=self.store)
        return self._index

    def _changed(self, kind: str, record_id: str, values: dict[str, Any] | None) -> None:
        if kind == "issue" and self._index is not None:
            self._index.update(record_id, values)
        elif kind == "local" and record_id == "settings":
            self._settings_author = None

    def refresh(self) -> bool:
        """Take in what another fieldkit process saved meanwhile; True when there was something."""
        return self.store.refresh()

    # -- writing -------------------------------------------------------------------

    def _state(self, record_type: str, record_id: str) -> dict[str, Any] | None:
        """A record's merge state as saved now (this transaction's own, if it changed it already)."""
        pending = self.store.staged_finish(record_type, record_id)
        if isinstance(pending, _Packing):
            return pending.state
        found = self.store.get_with_state(record_type, record_id)
        return merge.unpack_state(found[1], found[0]) if found else None

    @staticmethod
    def _child_id(issue_id: str) -> str:
        """A new id for a note, action or status change (ids step within a millisecond, so they never collide)."""
        return new_id(shard=issue_id[-1])

    def _write(self, record_type: str, record_id: str, fields: dict[str, Any],
               seen: dict[str, str] | None = None) -> dict[str, Any]:
        """Make, apply and save one local operation; returns the record's new values.

        Everything it is based on (the record's state, the clock) is read inside
        the transaction that saves it, so an edit from another process in the
        meantime is merged, never overwritten. ``seen`` defaults to the stamps
        of the values saved now: the author saw what the register shows.
        """
        if not self.store.db.in_transaction:
            with self.store.transaction():
                return self._write(record_type, record_id, fields, seen)
        self._load_replica()
        state = self._state(record_type, record_id) or merge.empty_state()
        stamps = state["stamps"]
        op = {
            "op_id": new_id(),
            "type": record_type,
            "id": record_id,
            "device": self.device_id,
            "author": self.author,
            "hlc": self.clock.tick(),
            "fields": fields,
            "seen": seen if seen is not None else {name: stamps[name] for name in fields if name in stamps},
        }
        merge.apply_op_in_place(state, op)
        values = self._save_state(record_type, record_id, state)
        self.store.queue([op])
        self._save_replica()
        return values

    @staticmethod
    def _values(record_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """A record's values as the store keeps them: its fields, with who changed it last and when."""
        stamp, by = merge.last_change(state)
        values = dict(state["values"])
        values["id"] = record_id
        values["updated_at"] = merge.stamp_time_iso(stamp)
        values["updated_by"] = by
        values["conflicts"] = len(merge.conflicts(state))
        return values

    def _save_state(self, record_type: str, record_id: str, state: dict[str, Any]) -> dict[str, Any]:
        values = self._values(record_id, state)
        self.store.put(record_type, record_id, values, finish=_Packing(record_type, record_id, values, state))
        return values

    def _save_replica(self) -> None:
        self._replica.update(device_id=self.device_id, clock=self.clock.last)
        self.store.set_local("replica", self._replica)

    def create_issue(self, fields: dict[str, Any], at: str | None = None, created_by: str | None = None) -> dict[str, Any]:
        """Validate and save a new issue; returns its values (with ``id`` and ``ref``).

        ``at`` and ``created_by`` keep the original capture of an imported register.
        """
        values = {k: v for k, v in fields.items() if v not in (None, "")}
        values.setdefault("severity", "medium")
        values.setdefault("status", "new")
        values.setdefault("source", "site_visit")
        if isinstance(values.get("municipality"), str):
            values["municipality"] = values["municipality"].strip()
        if isinstance(values.get("contact_phone"), str):
            values["contact_phone"] = model.normalise_phone(values["contact_phone"])
        model.validate("issue", values)
        now = datetime.now(timezone.utc)
        values["created_by"] = created_by or self.author
        values["created_at"] = at or now.replace(microsecond=0).isoformat()
        with self.store.transaction():
            replica = self._load_replica()
            number = replica.get("next_seq", 1)
            while True:
                values["ref"] = issue_ref(values["municipality"], now.year, self.device_id, number)
                number += 1
                if not self.store.ref_taken(values["ref"]):
                    break
            replica["next_seq"] = number
            self.store.set_local("replica", replica)
            return self._write("issue", new_id(), values)

    def edit_issue(self, issue_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some fields of an issue; only the fields that really change are sent."""
        current = self.issue_values(issue_id)
        if "status" in changes:
            raise model.ValidationError({"status": "Change the status with `fieldkit status` so the change keeps who, when and why"})
        for protected in ("ref", "created_by", "created_at"):
            if protected in changes:
                raise model.ValidationError({protected: f"{protected.replace('_', ' ').capitalize()} cannot be changed"})
        if isinstance(changes.get("contact_phone"), str) and changes["contact_phone"]:
            changes = {**changes, "contact_phone": model.normalise_phone(changes["contact_phone"])}
        merged = {**current, **changes}
        merged = {k: v for k, v in merged.items() if k in model.FIELDS["issue"] and v not in (None, "")}
        model.validate("issue", merged)
        real = {k: (None if v == "" else v) for k, v in changes.items() if current.get(k) != (None if v == "" else v)}
        if not real:
            return current
        with self.store.transaction():
            values = self._write("issue", issue_id, real)
            self._write("note", self._child_id(issue_id), {  # the timeline keeps every change, who and when
                "issue_id": issue_id, "text": model.describe_edit(current, real), "author": self.author,
                "at": model.now_iso(), "edit": True,
            })
        return values

    def change_status(self, issue_id: str, new_status: str, note: str | None = None, at: str | None = None) -> dict[str, Any]:
        current = self.issue_values(issue_id)
        problem = model.check_transition(current.get("status", "new"), new_status, note)
        if problem:
            raise model.ValidationError({"status": problem})
        with self.store.transaction():
            values = self._write("issue", issue_id, {"status": new_status})
            self._write(
                "status_change",
                self._child_id(issue_id),
                {
                    "issue_id": issue_id,
                    "from_status": current.get("status", "new"),
                    "to_status": new_status,
                    "note": (note or "").strip(),
                    "author": self.author,
                    "at": at or model.now_iso(),
                },
            )
        return values

    def add_note(self, issue_id: str, text: str, at: str | None = None) -> dict[str, Any]:
        self.issue_values(issue_id)
        fields = {"issue_id": issue_id, "text": text.strip(), "author": self.author, "at": at or model.now_iso()}
        model.validate("note", fields)
        return self._write("note", self._child_id(issue_id), fields)

    def add_action(self, issue_id: str, text: str, owner: str = "", due: str | None = None) -> dict[str, Any]:
        self.issue_values(issue_id)
        fields = {
            "issue_id": issue_id,
            "text": text.strip(),
            "owner": owner.strip(),
            "due": due or None,
            "done": False,
            "created_by": self.author,
            "created_at": model.now_iso(),
        }
        model.validate("action", {k: v for k, v in fields.items() if v is not None})
        return self._write("action", self._child_id(issue_id), {k: v for k, v in fields.items() if v is not None})

    def set_action_done(self, action_id: str, done: bool = True) -> dict[str, Any]:
        action = self.store.get("action", action_id)
        if action is None:
            raise NotFound(f"No follow-up action with id {action_id}")
        if bool(action.get("done")) == done:
            return action
        fields: dict[str, Any] = {"done": done}
        if done:
            fields.update(done_by=self.author, done_at=model.now_iso())
        return self._write("action", action_id, fields)

    def resolve_conflict(self, record_id: str, field: str, value: Any) -> dict[str, Any]:
        """Settle a disagreement: the chosen value, written having seen every rival."""
        record_type = self.store.kind_of(record_id)
        state = self._state(record_type, record_id) if record_type else None
        if record_type is None or state is None:
            raise NotFound(f"No record with id {record_id}")
        problem = model.check_field(record_type, field, value)
        if problem:
            raise model.ValidationError({field: problem})
        rivals = state["rivals"].get(field, [])
        newest_seen = max([state["stamps"].get(field, ZERO), *(r["hlc"] for r in rivals)])
        return self._write(record_type, record_id, {field: value}, seen={field: newest_seen})

    def delete_issue(self, issue_id: str) -> dict[str, Any]:
        """A tombstone: the issue is hidden everywhere once synced, and its history is kept."""
        return self._write("issue", issue_id, {"deleted": True})

    def save_lesson(self, fields: dict[str, Any], lesson_id: str | None = None) -> dict[str, Any]:
        if lesson_id is None:
            values = {k: v for k, v in fields.items() if v not in (None, "", [])}
            values.update(created_by=self.author, created_at=model.now_iso())
            model.validate("lesson", values)
            return self._write("lesson", new_id(), values)
        current = self.store.get("lesson", lesson_id)
        if current is None:
            raise NotFound(f"No lesson with id {lesson_id}")
        model.validate("lesson", {**{k: v for k, v in current.items() if k in model.FIELDS["lesson"]}, **fields})
        real = {k: v for k, v in fields.items() if current.get(k) != v}
        return self._write("lesson", lesson_id, real) if real else current

    # -- reading -------------------------------------------------------------------

    def resolve(self, text: str) -> str:
        """The issue id for an id, a unique id prefix, or a short reference (or its unique prefix)."""
        wanted = text.strip()
        if not wanted:
            raise NotFound("Give an issue id or reference")
        lowered = wanted.lower()
        if is_record_id(lowered) and lowered in self.index:
            return lowered
        by_ref = self.index.ids_by_ref(wanted)
        if len(by_ref) > 1:
            rows = self.index.get_many(by_ref)
            listed = "; ".join(f"{i} ({rows[i].title[:40]})" for i in by_ref if i in rows)
            raise Ambiguous(f"{len(by_ref)} issues have the reference {wanted.upper()}: {listed}; give the id instead")
        if by_ref:
            return by_ref[0]
        found = self.index.ids_with_prefix(lowered) if len(lowered) >= 4 else []
        if not found:
            found = self.index.refs_with_prefix(wanted)
        if not found:
            raise NotFound(f"No issue matches '{wanted}' — try `fieldkit find {wanted}`")
        if len(found) > 1:
            refs = ", ".join(self.index.get(i).ref for i in found[:5])
            raise Ambiguous(f"'{wanted}' matches {len(found)} issues ({refs}); give more of the id or the full reference")
        return found[0]

    def issue_values(self, issue_id: str) -> dict[str, Any]:
        values = self.store.get("issue", issue_id)
        if values is None:
            raise NotFound(f"No issue with id {issue_id}")
        return values

    def issue(self, issue_id: str) -> model.Issue:
        values = self.issue_values(issue_id)
        state = self._state("issue", issue_id) or merge.empty_state()
        conflicts = [
            model.Conflict(field=c["field"], value=c["value"], author=c["author"], stamp=c["hlc"])
            for c in merge.conflicts(state)
        ]
        return model.Issue(
            id=issue_id,
            values=values,
            updated_at=values.get("updated_at", ""),
            updated_by=values.get("updated_by", ""),
            conflicts=conflicts,
        )

    def conflicts(self, record_id: str) -> list[model.Conflict]:
        kind = self.store.kind_of(record_id)
        state = (self._state(kind, record_id) if kind else None) or merge.empty_state()
        return [
            model.Conflict(field=c["field"], value=c["value"], author=c["author"], stamp=c["hlc"])
            for c in merge.conflicts(state)
        ]

    def find(self, question: IssueFilter | None = None) -> list[IssueRow]:
        return self.index.find(question or IssueFilter())

    def count(self) -> int:
        return len(self.index)

    def _children_of(self, kind: str, issue_id: str) -> list[dict[str, Any]]:
        """Notes, actions or status changes of one issue (found by the store's index on their issue)."""
        return [r for r in self.store.children(kind, issue_id) if not r.get("deleted")]

    def notes(self, issue_id: str) -> list[dict[str, Any]]:
        return sorted(self._children_of("note", issue_id), key=lambda n: (n.get("at", ""), n["id"]))

    def actions(self, issue_id: str) -> list[dict[str, Any]]:
        return sorted(self._children_of("action", issue_id), key=lambda a: (a.get("due") or "9999", a["id"]))

    def status_changes(self, issue_id: str) -> list[dict[str, Any]]:
        return sorted(self._children_of("status_change", issue_id), key=lambda s: (s.get("at", ""), s["id"]))

    def timeline(self, issue_id: str) -> list[TimelineEntry]:
        values = self.issue_values(issue_id)
        entries = [TimelineEntry(values.get("created_at", ""), "created", values.get("created_by", ""), "Issue captured", issue_id)]
        for change in self.status_changes(issue_id):
            label = f"{model.STATUSES.get(change.get('from_status', ''), '?')} → {model.STATUSES.get(change['to_status'], change['to_status'])}"
            text = f"{label}: {change['note']}" if change.get("note") else label
            entries.append(TimelineEntry(change.get("at", ""), "status", change.get("author", ""), text, change["id"]))
        for note in self.notes(issue_id):
            kind = "edit" if note.get("edit") else "note"
            entries.append(TimelineEntry(note.get("at", ""), kind, note.get("author", ""), note["text"], note["id"]))
        for action in self.actions(issue_id):
            due = f" (due {action['due']})" if action.get("due") else ""
            owner = f" — {action['owner']}" if action.get("owner") else ""
            entries.append(TimelineEntry(action.get("created_at", ""), "action", action.get("created_by", ""), f"{action['text']}{owner}{due}", action["id"]))
            if action.get("done_at"):  # ticked off, and still shown once opened again
                entries.append(TimelineEntry(action["done_at"], "action_done", action.get("done_by", ""), f"Done: {action['text']}", action["id"]))
            if action.get("done_at") and not action.get("done"):
                entries.append(TimelineEntry(action.get("updated_at", ""), "action_reopened", action.get("updated_by", ""),
                                             f"Open again: {action['text']}", action["id"]))
        for attachment in self.attachments(issue_id, removed=True):
            name = attachment.get("name", "")
            entries.append(TimelineEntry(attachment.get("at", ""), "attached", attachment.get("author", ""), f"Attached {name}", attachment["id"]))
            if attachment.get("deleted"):
                entries.append(TimelineEntry(attachment.get("removed_at", ""), "detached", attachment.get("removed_by", ""), f"Removed {name}", attachment["id"]))
        entries.sort(key=lambda e: (e.at, e.kind != "created", e.record_id))  # ids are time-ordered: ties keep the order made
        return entries

    def all_actions(self) -> Iterator[dict[str, Any]]:
        """Every follow-up action, read from the file as it is used (a province holds 60,000)."""
        return (values for _, values, _ in self.store.iter_kind("action") if not values.get("deleted"))

    def overdue_actions(self, today: date | None = None) -> list[dict[str, Any]]:
        day = today or date.today()
        overdue = [a for a in self.all_actions() if model.is_overdue(a, day)]
        rows = self.index.get_many(a["issue_id"] for a in overdue)
        live = {i for i, row in rows.items() if not row.deleted}
        found = [a for a in overdue if a.get("issue_id") in live]
        return sorted(found, key=lambda a: (a["due"], a["id"]))

    def actions_due_this_week(self, today: date | None = None) -> list[dict[str, Any]]:
        day = today or date.today()
        return sorted(
            (a for a in self.all_actions() if not a.get("done") and due_this_week(a.get("due"), day)),
            key=lambda a: (a["due"], a["id"]),
        )

    def issues_with_overdue_actions(self, today: date | None = None) -> frozenset[str]:
        return frozenset(a["issue_id"] for a in self.overdue_actions(today))

    def lessons(self) -> list[dict[str, Any]]:
        return sorted(
            (dict(v) for v in self.store.documents("lesson").values() if not v.get("deleted")),
            key=lambda lesson: lesson.get("created_at", ""),
            reverse=True,
        )

    # -- sync support ---------------------------------------------------------------

    def pending_ops(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Operations waiting to be sent, oldest first (ids are time-ordered)."""
        return [op for op, _ in self.store.outbox("pending", limit)]

    def rejected_ops(self) -> list[dict[str, Any]]:
        """Operations the central store refused, with its reason: kept, never dropped."""
        return [{"op": op, "state": "rejected", "reason": reason} for op, reason in self.store.outbox("rejected")]

    def waiting_count(self) -> int:
        return self.store.outbox_count("pending")

    def unsynced_record_ids(self) -> set[str]:
        """Every record with a change not yet acknowledged by the central store.

        Read whole once, then only what was queued since (an outbox of a whole province
        takes most of a second to read, and the app asks after every save). The set
        handed out is never changed afterwards: a new one is made when records join it.
        """
        since = self.store.outbox_record_ids_since(self._unsynced[1]) if self._unsynced is not None else None
        if since is None:
            mark = self.store.outbox_mark()
            self._unsynced = self.store.outbox_record_ids(), mark
        elif since[0] - self._unsynced[0]:
            self._unsynced = self._unsynced[0] | since[0], since[1]
        else:
            self._unsynced = self._unsynced[0], since[1]
        return self._unsynced[0]

    def acknowledge(self, op_ids: Iterable[str], rejected: dict[str, str] | None = None) -> None:
        """Drop acknowledged operations from the outbox and mark rejected ones, in one write."""
        with self.store.transaction():
            self.store.unqueue(op_ids)
            known = self.store.outbox_states((rejected or {}).keys())
            self.store.mark({op_id: ("rejected", reason) for op_id, reason in (rejected or {}).items() if op_id in known})
        self.store.give_back_space()

    def retry_rejected(self) -> int:
        """Put rejected operations back in the queue (after the reason has been dealt with)."""
        with self.store.transaction():
            rejected = self.store.outbox("rejected")
            self.store.mark({op["op_id"]: ("pending", "") for op, _ in rejected})
        return len(rejected)

    def apply_remote(self, ops: Iterable[dict[str, Any]], sync_state: dict[str, Any] | None = None) -> int:
        """Merge a page of operations from the central store and move the cursor, in one write."""
        ops = list(ops)
        with self.store.transaction():
            self._load_replica()
            stored = self.store.get_many_with_state({(op["type"], op["id"]) for op in ops})
            states: dict[tuple[str, str], dict[str, Any]] = {}
            for op in ops:
                key = (op["type"], op["id"])
                state = states.get(key)
                if state is None:
                    found = stored.get(key)
                    state = states[key] = merge.unpack_state(found[1], found[0]) if found else merge.empty_state()
                merge.apply_op_in_place(state, op, copy_values=False)
                self.clock.receive(op["hlc"])
            for (kind, record_id), state in states.items():
                self._save_state(kind, record_id, state)
            if sync_state is not None:
                self.store.set_local("sync", sync_state)
            self._save_replica()
        return len(ops)

    def merge_states(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The merge states of the records asked for (by kind and id) that are here: to tell what changes would add."""
        found = self.store.get_many_with_state(set(keys))
        return {key: merge.unpack_state(packed, values) for key, (values, packed) in found.items()}

    def sync_state(self) -> dict[str, Any]:
        return self.store.local("sync")

    def save_sync_state(self, state: dict[str, Any]) -> None:
        with self.store.transaction():
            self.store.set_local("sync", state)

    def all_ops_for_snapshot(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """Each record's id and merge state (with its ``type``): for a full resend, and tests that compare replicas."""
        for kind in RECORD_KINDS:
            for record_id, values, packed in self.store.iter_kind(kind):
                yield record_id, {"type": kind, **merge.unpack_state(packed or {}, values)}

    # -- backups ----------------------------------------------------------------------------

    def backup_if_due(self, hours: float = 24, elsewhere: bool = False) -> bool:
        """Make a backup when the newest is older than ``hours`` (or from a clock that has since gone back)."""
        newest = self.store.backups.newest()
        if newest is not None:
            age = time.time() - newest.stat().st_mtime
            if 0 <= age < hours * 3600:
                return False
        self.store.backup(elsewhere)
        return True

    # -- the app's unsaved form ----------------------------------------------------------

    def save_draft(self, doc: dict[str, Any]) -> None:
        """Keep the form being filled in, durably, so a laptop that dies mid-capture loses nothing.

        Local only: a draft is never an operation and never leaves the laptop.
        """
        with self.store.transaction():
            self.store.set_local("draft", doc)

    def draft(self) -> dict[str, Any] | None:
        return self.store.local("draft") or None

    def clear_draft(self) -> None:
        with self.store.transaction():
            self.store.delete("local", "draft")

    def all_status_changes(self) -> Iterator[dict[str, Any]]:
        """Every status change, for counts across the register (the app's opened-and-resolved chart), read as used."""
        return (values for _, values, _ in self.store.iter_kind("status_change"))

    # -- sync: after the central store was reset -----------------------------------------

    def queue_full_resend(self, sync_state: dict[str, Any]) -> int:
        """Queue everything this laptop holds to be sent again, and save the new sync state, in one write.

        For a central store that was reset or restored from a backup: each
        record's merge state goes out as operations (``protocol.state_ops``),
        issues first; the store merges them like any others, so what it lost
        comes back and what it kept is unchanged. Returns how many were queued.
        """
        from fieldkit.protocol import state_ops

        states = sorted(self.all_ops_for_snapshot(), key=lambda item: (item[1]["type"] != "issue", item[0]))
        count = 0
        with self.store.transaction():
            for record_id, state in states:
                ops = state_ops(state["type"], record_id, state, self.device_id)
                self.store.queue(ops)
                count += len(ops)
            self.store.set_local("sync", sync_state)
        return count

    # -- imports (fieldkit.imports): a spreadsheet that already names its records -------
    # Added for issue 10 (spreadsheets round trip). Each is one local operation like any edit.

    def keep_author(self) -> str:
        """Look the author up once for a long batch (an import of 100,000 rows), not once a change."""
        self._author = self.author
        return self._author

    def restore_record(self, record_type: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Save a new issue or follow-up action under the id (and reference) it was exported with,
        so a register that goes out to a spreadsheet comes back as the same records."""
        if record_type not in ("issue", "action"):
            raise ValueError(f"restore_record takes an issue or an action, not {record_type}")
        if not is_record_id(record_id) or self.store.get(record_type, record_id) is not None:
            raise model.ValidationError({"id": f"'{record_id}' is not a new {record_type} id"})
        values = {k: v for k, v in fields.items() if v not in (None, "")}
        required = ("ref", "created_at", "created_by") if record_type == "issue" else ("issue_id",)
        missing = [name for name in required if not values.get(name)]
        if missing:
            raise model.ValidationError({name: f"{name.replace('_', ' ').capitalize()} is required" for name in missing})
        model.validate(record_type, values)
        return self._write(record_type, record_id, values)

    def edit_action(self, action_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a follow-up action's text, owner or due date; only the fields that really change are sent."""
        current = self.store.get("action", action_id)
        if current is None:
            raise NotFound(f"No follow-up action with id {action_id}")
        allowed = {k: v for k, v in changes.items() if k in ("text", "owner", "due")}
        merged = {k: v for k, v in {**current, **allowed}.items() if k in model.FIELDS["action"] and v not in (None, "")}
        model.validate("action", merged)
        real = {k: (None if v == "" else v) for k, v in allowed.items() if current.get(k) != (None if v == "" else v)}
        return self._write("action", action_id, real) if real else current

    # -- sync: changes stamped by a clock that ran days ahead (added for issue 11) ------------------

    def restamp_ahead(self, limit_ms: int) -> int:
        """Re-stamp this laptop's changes stamped after ``limit_ms`` with the clock as it is now; returns how many.

        A laptop whose date was days ahead stamped its changes days ahead, and
        the central store refuses them. Once the date is right again, each such
        stamp is replaced by a new one from the rewound clock, in the same order,
        everywhere it occurs (merge states, queued and refused operations), so
        every record keeps the same winners and conflicts; refused changes are
        queued again, in one write.
        """
        from fieldkit.hlc import wall_ms

        mine = f":{self.device_id}"
        with self.store.transaction():
            self._load_replica()
            states = {record_id: dict(state) for record_id, state in self.all_ops_for_snapshot()}
            queued = [op for op, _ in self.store.outbox("pending")] + [op for op, _ in self.store.outbox("rejected")]

            def stamps_in(state: dict[str, Any]) -> Iterable[str]:
                yield from state["stamps"].values()
                yield from state["seen"].values()
                for candidates in state["rivals"].values():
                    yield from (c["hlc"] for c in candidates)

            def ahead(stamp: str) -> bool:
                return stamp.endswith(mine) and wall_ms(stamp) > limit_ms

            everywhere = [s for state in states.values() for s in stamps_in(state)]
            everywhere += [s for op in queued for s in (op["hlc"], *op["seen"].values())]
            old = sorted({s for s in everywhere if ahead(s)})
            if not old:
                return 0
            self.clock.rewind(max((s for s in everywhere if not ahead(s)), default=ZERO))
            new = {stamp: self.clock.tick() for stamp in old}

            def moved(stamps: dict[str, str]) -> dict[str, str]:
                return {name: new.get(stamp, stamp) for name, stamp in stamps.items()}

            for record_id, state in states.items():
                if not any(ahead(s) for s in stamps_in(state)):
                    continue
                record_type = state.pop("type")
                state.update(stamps=moved(state["stamps"]), seen=moved(state["seen"]), rivals={
                    name: [{**c, "hlc": new.get(c["hlc"], c["hlc"])} for c in candidates]
                    for name, candidates in state["rivals"].items()
                })
                self._save_state(record_type, record_id, state)
            again = [{**op, "hlc": new.get(op["hlc"], op["hlc"]), "seen": moved(op["seen"])}
                     for op in queued if ahead(op["hlc"]) or any(ahead(s) for s in op["seen"].values())]
            self.store.queue(again)  # replaces each, queued again as pending
            self._save_replica()
        return len(again)

    # -- attachments: photos and documents on an issue (added for issue 12) -------------------
    # The bytes live in the store's file folder (fieldkit.attachments stores them first); these
    # keep the records, and which files still have to go to the central store ("files" local doc).

    def add_attachment(self, fields: dict[str, Any], send: Iterable[str] = (), hold: Iterable[str] = (),
                       location: dict[str, float] | None = None) -> dict[str, Any]:
        """Record an attachment whose bytes are stored; ``send`` files go with the next sync, ``hold``
        (originals of photos) when asked for; ``location`` also becomes the issue's position, in one write."""
        issue_id = fields["issue_id"]
        self.issue_values(issue_id)
        values = {**fields, "author": self.author, "at": model.now_iso()}
        model.validate("attachment", values)
        with self.store.transaction():
            if location is not None:
                self.edit_issue(issue_id, location)
            record = self._write("attachment", self._child_id(issue_id), values)
            self._mark_files(send=send, hold=hold)
        return record

    def _mark_files(self, send: Iterable[str] = (), hold: Iterable[str] = (), sent: Iterable[str] = ()) -> None:
        files = self.store.local("files")
        done = set(sent)
        waiting = [s for s in dict.fromkeys([*files.get("send", []), *send]) if s not in done]
        held = [h for h in dict.fromkeys([*files.get("hold", []), *hold]) if h not in done and h not in waiting]
        self.store.set_local("files", {"send": waiting, "hold": held})

    def files_to_send(self, originals: bool = False) -> list[str]:
        """Files this laptop attached that the central store may not have yet: small ones first, by default
        without the originals of photos (their reduced copies go instead)."""
        files = self.store.local("files")
        return list(files.get("send", [])) + (list(files.get("hold", [])) if originals else [])

    def files_held(self) -> list[str]:
        return list(self.store.local("files").get("hold", []))

    def files_sent(self, shas: Iterable[str]) -> None:
        with self.store.transaction():
            self._mark_files(sent=shas)

    def send_original(self, sha: str) -> None:
        """Queue a held original to go with the next sync."""
        with self.store.transaction():
            files = self.store.local("files")
            self.store.set_local("files", {"send": [s for s in files.get("send", []) if s != sha] + [sha],
                                           "hold": [h for h in files.get("hold", []) if h != sha]})

    def attachments(self, issue_id: str, removed: bool = False) -> list[dict[str, Any]]:
        """An issue's attachments in the order they were attached (with removed ones when asked)."""
        found = self.store.children("attachment", issue_id) if removed else self._children_of("attachment", issue_id)
        return sorted(found, key=lambda a: (a.get("at", ""), a["id"]))

    def all_attachments(self) -> list[dict[str, Any]]:
        return [dict(a) for a in self.store.documents("attachment").values() if not a.get("deleted")]

    def attachment(self, attachment_id: str) -> dict[str, Any]:
        """One attachment by its id or a unique prefix of it (four characters at least)."""
        wanted = attachment_id.strip().lower()
        found = self.store.get("attachment", wanted)
        if found is not None:
            return found
        matches = [a for a in self.store.documents("attachment") if a.startswith(wanted)] if len(wanted) >= 4 else []
        if len(matches) == 1:
            return self.store.get("attachment", matches[0]) or {}
        if matches:
            raise Ambiguous(f"'{attachment_id}' matches {len(matches)} attachments; give more of the id")
        raise NotFound(f"No attachment matches '{attachment_id}' — `fieldkit attachments ISSUE` lists them with their ids")

    def remove_attachment(self, attachment_id: str) -> dict[str, Any]:
        """Take an attachment off its issue; the timeline keeps who removed it and when."""
        record = self.attachment(attachment_id)
        if record.get("deleted"):
            return record
        return self._write("attachment", record["id"], {"deleted": True, "removed_by": self.author, "removed_at": model.now_iso()})

    # -- erasing a community contact (POPIA; added for issue 11) ----------------------------

    def forget_contact(self, issue_id: str) -> dict[str, Any]:
        """Erase the issue's contact name and phone here and, once synced, everywhere; a note says who and when.

        One operation marked as an erasure (see ``fieldkit.erasure``) that
        overrules every earlier value of those fields, in every replica;
        the queued copies of earlier changes are blanked in the same write.
        """
        from fieldkit.erasure import erase_fields, erased_note

        self.issue_values(issue_id)
        with self.store.transaction():
            self._load_replica()
            state = self._state("issue", issue_id) or merge.empty_state()
            op = erase_fields({"op_id": new_id(), "type": "issue", "id": issue_id, "device": self.device_id,
                               "author": self.author, "hlc": self.clock.tick()})
            merge.apply_op_in_place(state, op)
            values = self._save_state("issue", issue_id, state)
            self.store.queue([op])
            self._save_replica()
            self.scrub_erased({issue_id})
            self.add_note(issue_id, erased_note(self.author, model.now_iso()))
        self.wipe_leftovers()
        return values

    def scrub_erased(self, issue_ids: Iterable[str]) -> int:
        """Blank the erased contact in this laptop's queued and refused changes of these issues; returns how many."""
        from fieldkit.erasure import scrub

        wanted = set(issue_ids)
        with self.store.transaction():
            states = {i: self._state("issue", i) for i in wanted}
            changed, refused = [], {}
            for state_name in ("pending", "rejected"):
                for op, reason in self.store.outbox(state_name):
                    state = states.get(op["id"])
                    if state is None:
                        continue
                    scrubbed = scrub(op, state)
                    if scrubbed is not op:
                        changed.append(scrubbed)
                        if state_name == "rejected":
                            refused[op["op_id"]] = ("rejected", reason)
            self.store.queue(changed)
            if refused:
                self.store.mark(refused)
        return len(changed)

    def wipe_leftovers(self) -> None:
        """After an erasure: no free page of the file and no backup keeps the erased values."""
        from fieldkit.store.sealing import replace_backups, vacuum

        vacuum(self.store)
        replace_backups(self.store)
