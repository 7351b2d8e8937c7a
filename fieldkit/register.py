"""The issue register on this laptop: every change an operation, merged and saved durably.

The command line, the app, the importer and the sync client all change the
register through ``Register`` and nothing else. Each change is one transaction
that writes the record's new values, its merge state, the operation for the
outbox and this replica's clock together, so a crash keeps all or none.
"""

from __future__ import annotations

import gc
import getpass
import os
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Iterable

from fieldkit import merge, model
from fieldkit.filters import IssueFilter, IssueRow, due_this_week
from fieldkit.hlc import ZERO, Clock
from fieldkit.ids import is_record_id, issue_ref, new_device_id, new_id
from fieldkit.store import SHARDS, Store
from fieldkit.store.index import IssueIndex, render_rows

CHILD_TYPES = ("note", "action", "status_change")


def _copied(values: dict[str, Any]) -> dict[str, Any]:
    return {name: merge.owned(value) for name, value in values.items()}


class NotFound(LookupError):
    pass


class Ambiguous(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an issue's history, in time order."""

    at: str
    kind: str  # created, status, note, action, action_done
    author: str
    text: str
    record_id: str


class Register:
    def __init__(self, store: Store, author: str | None = None):
        self.store = store
        replica = store.local("replica")
        if not replica.get("device_id"):
            replica = {"device_id": new_device_id(), "clock": ZERO, "next_seq": 1}
            with store.transaction():
                store.set_local("replica", replica)
        self.device_id: str = replica["device_id"]
        self.clock = Clock(self.device_id, replica.get("clock"))
        self._next_seq: int = replica.get("next_seq", 1)
        self._author = author
        self._index: IssueIndex | None = None
        store.storage.on_change(self._changed)
        store.storage.on_reset(self._reset)
        for digit in SHARDS:
            store.storage.add_derived(f"issue.{digit}.rows", f"issue.{digit}", render_rows)

    @classmethod
    def open(cls, home: str | os.PathLike | None = None, author: str | None = None) -> "Register":
        return cls(Store(home), author)

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
        name = self.settings().get("name")
        if name:
            return name
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"

    def settings(self) -> dict[str, Any]:
        return self.store.local("settings")

    def save_settings(self, **changes: Any) -> dict[str, Any]:
        current = self.settings()
        current.update(changes)
        with self.store.transaction():
            self.store.set_local("settings", current)
        return current

    # -- indexes -------------------------------------------------------------------

    @property
    def index(self) -> IssueIndex:
        """The in-memory register index, built on first use.

        A cold lookup reads the compact register file (about a third of the
        issue snapshot, and cheap to parse) plus the issues the journal changed
        since; only when that file is missing or stale are all issues loaded.
        """
        if self._index is None:
            storage = self.store.storage
            documents: dict[str, Any] = {}
            rows: list[bytes] = []
            for digit in SHARDS:
                table = f"issue.{digit}"
                derived = None if storage.is_loaded(table) else storage.read_derived(f"{table}.rows")
                if derived is not None and derived[0] == storage.snapshot_watermark(table):
                    watermark, lines = derived
                    documents.update(storage.pending_writes(table, watermark))
                    rows.append(lines)
                else:
                    documents.update(storage.table(table))
            self._index = IssueIndex(documents, b"\n".join(rows) if rows else None)
            gc.freeze()  # long-lived rows: keep full collections from walking them mid-lookup
        return self._index

    def _changed(self, table: str, record_id: str, values: dict[str, Any] | None) -> None:
        if table.startswith("issue.") and self._index is not None:
            self._index.update(record_id, values)

    def _reset(self) -> None:
        self._index = None

    def refresh(self) -> None:
        """Take in what another fieldkit process saved meanwhile."""
        self.store.refresh()

    # -- writing -------------------------------------------------------------------

    def _state(self, record_id: str) -> dict[str, Any] | None:
        return self.store.get("merge", record_id)

    @staticmethod
    def _child_id(issue_id: str) -> str:
        """A new id for a note, action or status change, kept in the same shard as its issue."""
        return new_id(shard=issue_id[-1])

    def _write(self, record_type: str, record_id: str, fields: dict[str, Any],
               seen: dict[str, str] | None = None) -> dict[str, Any]:
        """Make, apply and save one local operation; returns the record's new values.

        ``seen`` defaults to the stamps of the values on this laptop now: the
        author saw what the register shows.
        """
        state = self._state(record_id)
        stamps = state["stamps"] if state else {}
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
        with self.store.transaction():
            values = self._save_state(record_type, record_id, merge.apply_op(state, op))
            self.store.put("outbox", op["op_id"], {"op": op, "state": "pending", "reason": ""})
            self._save_replica()
        return values

    def _save_state(self, record_type: str, record_id: str, state: dict[str, Any], shared: bool = False) -> dict[str, Any]:
        """Save a record's values (derived from its merge state) and the state itself.

        The values are copied unless ``shared``: a pulled page's values are
        handed to nobody, so they may share lists with the stored merge state.
        """
        stamp, by = merge.last_change(state)
        values = dict(state["values"])
        values["id"] = record_id
        values["updated_at"] = merge.stamp_time_iso(stamp)
        values["updated_by"] = by
        values["conflicts"] = len(merge.conflicts(state))
        self.store.put(record_type, record_id, values if shared else _copied(values), owned=True)
        self.store.put("merge", record_id, {"type": record_type, **state}, owned=True)
        return values if shared else _copied(values)

    def _save_replica(self) -> None:
        self.store.set_local(
            "replica", {"device_id": self.device_id, "clock": self.clock.last, "next_seq": self._next_seq}
        )

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
        values["ref"] = issue_ref(values["municipality"], now.year, self.device_id, self._next_seq)
        values["created_by"] = created_by or self.author
        values["created_at"] = at or now.replace(microsecond=0).isoformat()
        self._next_seq += 1
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
        return self._write("issue", issue_id, real)

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
        state = self._state(record_id)
        if state is None:
            raise NotFound(f"No record with id {record_id}")
        record_type = state["type"]
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
        by_ref = self.index.by_ref(wanted)
        if by_ref:
            return by_ref
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
        state = self._state(issue_id) or merge.empty_state()
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
        state = self._state(record_id) or merge.empty_state()
        return [
            model.Conflict(field=c["field"], value=c["value"], author=c["author"], stamp=c["hlc"])
            for c in merge.conflicts(state)
        ]

    def find(self, question: IssueFilter | None = None) -> list[IssueRow]:
        return self.index.find(question or IssueFilter())

    def count(self) -> int:
        return len(self.index)

    def _children_of(self, kind: str, issue_id: str) -> list[dict[str, Any]]:
        """Notes, actions or status changes of one issue: they live in its shard."""
        shard = self.store.shard(kind, issue_id)
        return [dict(r) for r in shard.values() if r.get("issue_id") == issue_id and not r.get("deleted")]

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
            entries.append(TimelineEntry(note.get("at", ""), "note", note.get("author", ""), note["text"], note["id"]))
        for action in self.actions(issue_id):
            due = f" (due {action['due']})" if action.get("due") else ""
            owner = f" — {action['owner']}" if action.get("owner") else ""
            entries.append(TimelineEntry(action.get("created_at", ""), "action", action.get("created_by", ""), f"{action['text']}{owner}{due}", action["id"]))
            if action.get("done"):
                entries.append(TimelineEntry(action.get("done_at", ""), "action_done", action.get("done_by", ""), f"Done: {action['text']}", action["id"]))
        entries.sort(key=lambda e: (e.at, e.kind != "created"))
        return entries

    def all_actions(self) -> list[dict[str, Any]]:
        return [dict(a) for a in self.store.documents("action").values() if not a.get("deleted")]

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
        outbox = self.store.documents("outbox")
        ids = sorted(i for i, entry in outbox.items() if entry["state"] == "pending")
        if limit is not None:
            ids = ids[:limit]
        return [outbox[i]["op"] for i in ids]

    def rejected_ops(self) -> list[dict[str, Any]]:
        """Operations the central store refused, with its reason: kept, never dropped."""
        outbox = self.store.documents("outbox")
        return [dict(outbox[i]) for i in sorted(outbox) if outbox[i]["state"] == "rejected"]

    def waiting_count(self) -> int:
        return sum(1 for entry in self.store.documents("outbox").values() if entry["state"] == "pending")

    def unsynced_record_ids(self) -> set[str]:
        return {entry["op"]["id"] for entry in self.store.documents("outbox").values()}

    def acknowledge(self, op_ids: Iterable[str], rejected: dict[str, str] | None = None) -> None:
        """Drop acknowledged operations from the outbox and mark rejected ones, in one write."""
        outbox = self.store.documents("outbox")
        with self.store.transaction():
            for op_id in op_ids:
                if op_id in outbox:
                    self.store.delete("outbox", op_id)
            for op_id, reason in (rejected or {}).items():
                if op_id in outbox:
                    entry = dict(outbox[op_id])
                    entry.update(state="rejected", reason=reason)
                    self.store.put("outbox", op_id, entry)

    def retry_rejected(self) -> int:
        """Put rejected operations back in the queue (after the reason has been dealt with)."""
        rejected = self.rejected_ops()
        with self.store.transaction():
            for entry in rejected:
                entry.update(state="pending", reason="")
                self.store.put("outbox", entry["op"]["op_id"], entry)
        return len(rejected)

    def apply_remote(self, ops: Iterable[dict[str, Any]], sync_state: dict[str, Any] | None = None) -> int:
        """Merge a page of operations from the central store and move the cursor, in one write."""
        count = 0
        with self.store.transaction():
            states: dict[str, dict[str, Any]] = {}
            for op in ops:
                record_id = op["id"]
                if record_id not in states:
                    states[record_id] = self._state(record_id) or merge.empty_state()
                merge.apply_op_in_place(states[record_id], op)
                states[record_id]["type"] = op["type"]
                self.clock.receive(op["hlc"])
                count += 1
            for record_id, state in states.items():
                record_type = state.pop("type")
                self._save_state(record_type, record_id, state, shared=True)
            if sync_state is not None:
                self.store.set_local("sync", sync_state)
            self._save_replica()
        return count

    def sync_state(self) -> dict[str, Any]:
        return self.store.local("sync")

    def save_sync_state(self, state: dict[str, Any]) -> None:
        with self.store.transaction():
            self.store.set_local("sync", state)

    def all_ops_for_snapshot(self) -> Iterable[dict[str, Any]]:
        """Each record's merge state, for tests that compare replicas."""
        yield from self.store.documents("merge").items()

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

    def all_status_changes(self) -> list[dict[str, Any]]:
        """Every status change, for counts across the register (the app's opened-and-resolved chart)."""
        return [dict(c) for c in self.store.documents("status_change").values()]

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
                for op in state_ops(state["type"], record_id, state, self.device_id):
                    self.store.put("outbox", op["op_id"], {"op": op, "state": "pending", "reason": ""})
                    count += 1
            self.store.set_local("sync", sync_state)
        return count

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
        states = {record_id: dict(state) for record_id, state in self.all_ops_for_snapshot()}
        outbox = self.store.documents("outbox")

        def stamps_in(state: dict[str, Any]) -> Iterable[str]:
            yield from state["stamps"].values()
            yield from state["seen"].values()
            for candidates in state["rivals"].values():
                yield from (c["hlc"] for c in candidates)

        def ahead(stamp: str) -> bool:
            return stamp.endswith(mine) and wall_ms(stamp) > limit_ms

        everywhere = [s for state in states.values() for s in stamps_in(state)]
        everywhere += [s for entry in outbox.values() for s in (entry["op"]["hlc"], *entry["op"]["seen"].values())]
        old = sorted({s for s in everywhere if ahead(s)})
        if not old:
            return 0
        self.clock.rewind(max((s for s in everywhere if not ahead(s)), default=ZERO))
        new = {stamp: self.clock.tick() for stamp in old}

        def moved(stamps: dict[str, str]) -> dict[str, str]:
            return {name: new.get(stamp, stamp) for name, stamp in stamps.items()}

        count = 0
        with self.store.transaction():
            for record_id, state in states.items():
                if not any(ahead(s) for s in stamps_in(state)):
                    continue
                record_type = state.pop("type")
                state.update(stamps=moved(state["stamps"]), seen=moved(state["seen"]), rivals={
                    name: [{**c, "hlc": new.get(c["hlc"], c["hlc"])} for c in candidates]
                    for name, candidates in state["rivals"].items()
                })
                self._save_state(record_type, record_id, state)
            for op_id, entry in outbox.items():
                op = entry["op"]
                if not ahead(op["hlc"]) and not any(ahead(s) for s in op["seen"].values()):
                    continue
                op = {**op, "hlc": new.get(op["hlc"], op["hlc"]), "seen": moved(op["seen"])}
                self.store.put("outbox", op_id, {"op": op, "state": "pending", "reason": ""})
                count += 1
            self._save_replica()
        return count
