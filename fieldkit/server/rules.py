"""What the central store checks before it applies an operation. Pure functions.

An operation is *rejected* when it can never be applied as it is (malformed,
a wrong value, outside the sender's area, stamped in the future) and
*deferred* when it needs a record the store has not received yet (a note whose
issue is still on its way); a deferred operation stays queued on the laptop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from fieldkit import merge, model, refdata
from fieldkit.hlc import MAX_DRIFT_MS, wall_ms
from fieldkit.ids import is_record_id
from fieldkit.safe_text import shown
from fieldkit.server.accounts import User

CHILD_TYPES = ("note", "action", "status_change", "attachment")
REJECT = "reject"
DEFER = "defer"
#: Rejected because the record is outside the sender's area (a bundle holding one is refused whole).
OUTSIDE = "outside"

LABELS = {"issue": "an issue", "note": "a note", "action": "a follow-up action", "status_change": "a status change", "lesson": "a lesson",
          "attachment": "an attachment"}


@dataclass(slots=True)
class Record:
    """A record as the central store keeps it: its merge state and where it belongs."""

    record_id: str
    type: str
    issue_id: str | None
    municipality: str | None
    province: str | None
    state: dict[str, Any]


STAMP = re.compile(r"^[0-9]{16}:[0-9a-f]{4}:[A-Za-z0-9_-]{1,64}$")
DEVICE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def op_problem(op: Any, now_ms: int) -> str | None:
    """Why an operation can never be applied, looking at the operation alone; None when it is fine.

    Beyond the merge rule's structural check, ids and stamps must be plain
    ASCII of the agreed form (they go into indexed columns, and PostgreSQL
    refuses a NUL in text), and the whole operation must be storable as JSON.
    """
    problem = merge.op_problem(op)
    if problem:
        return problem
    if not DEVICE.match(op["device"]):
        return "device must be letters, digits, - and _ only"
    if CONTROL.search(op["author"]):
        return "author must not contain control characters"
    if not STAMP.match(op["hlc"]) or not all(isinstance(s, str) and STAMP.match(s) for s in op["seen"].values()):
        return "clock stamps must be of the form 0000000000000000:0000:device"
    if not set(op["seen"]) <= set(op["fields"]):
        return "seen may only name fields the operation sets"
    issue_id = op["fields"].get("issue_id")
    if issue_id is not None and op["type"] in CHILD_TYPES and not (isinstance(issue_id, str) and is_record_id(issue_id)):
        return f"issue_id '{shown(issue_id)}' is not an issue's id"
    try:
        orjson.dumps(op)
    except orjson.JSONEncodeError as err:
        return f"the operation cannot be stored: {err}"
    if wall_ms(op["hlc"]) > now_ms + MAX_DRIFT_MS:
        stamped = datetime.fromtimestamp(wall_ms(op["hlc"]) / 1000, tz=timezone.utc)
        now = datetime.fromtimestamp(now_ms / 1000, tz=timezone.utc)
        return (
            f"this change is stamped {stamped:%Y-%m-%d %H:%M} UTC, more than a day ahead of the central store's clock "
            f"({now:%Y-%m-%d %H:%M} UTC): correct the laptop's date and time; the change stays on the laptop"
        )
    for name, value in op["fields"].items():
        message = model.check_field(op["type"], name, value)
        if message:
            return message
    return model.record_size_problem(op["fields"])


def state_size_problem(state: dict[str, Any]) -> str | None:
    """Whether a record with its unsettled conflicts has grown past what the store keeps."""
    size = len(orjson.dumps(state))
    if size > model.RECORD_STATE_MAX_BYTES:
        return (f"the record would hold {size:,} bytes with its unsettled conflicts, over {model.RECORD_STATE_MAX_BYTES:,}: "
                "settle its conflicts (`fieldkit conflicts`), then send the change again")
    return None


def out_of_scope(user: User, municipality: str) -> str:
    muni = refdata.get(municipality)
    where = f"{municipality} ({muni.current_name})" if muni else municipality
    return f"the account {user.name} does not cover {where}; it covers {user.scope_text()}"


#: Why an operation waits. The same words whether the record is still on its way or outside the
#: sender's area, so an answer never tells someone whether a record they may not see exists.
NOT_HERE = "the central store has not received it yet, or it is outside your account's area"
NOT_YOURS = "this record is outside your account's area"


def visible(user: User, record: Record) -> bool:
    """Whether a user may know this record exists: a lesson, or a record placed in their area."""
    return record.type == "lesson" or record.municipality is None or user.covers(record.municipality)


def judge(user: User, op: dict[str, Any], record: Record | None, find: Callable[[str], Record | None]) -> tuple[str, str] | None:
    """Whether this user may apply this operation to this record: None, or (REJECT|OUTSIDE|DEFER, reason).

    ``find`` looks up another record (a child's issue) by id. A record outside the user's area is
    answered as if it were not there; where a missing record would be made, the operation is refused
    without naming anything about the record.
    """
    def seen(record_id: str) -> Record | None:
        found = find(record_id)
        return found if found is not None and visible(user, found) else None

    if record is not None and not visible(user, record):
        return _judge(user, op, None, seen) or (OUTSIDE, NOT_YOURS)
    return _judge(user, op, record, seen)


def _judge(user: User, op: dict[str, Any], record: Record | None, find: Callable[[str], Record | None]) -> tuple[str, str] | None:
    kind, fields = op["type"], op["fields"]
    if record is not None and record.type != kind:
        return REJECT, f"record {op['id']} is {LABELS[record.type]}, not {LABELS[kind]}"
    if kind == "lesson":
        return None
    if kind == "issue":
        moving_to = fields.get("municipality")
        if record is None and not moving_to:
            return DEFER, f"waiting for the first version of this issue: {NOT_HERE}"
        if moving_to and not user.covers(moving_to):
            return OUTSIDE, out_of_scope(user, moving_to)
        return None
    issue_id = fields.get("issue_id")
    if record is None and not issue_id:
        return DEFER, f"waiting for the first version of this {kind.replace('_', ' ')}: {NOT_HERE}"
    if issue_id and (record is None or issue_id != record.issue_id):
        issue = find(issue_id)
        if issue is None:
            return DEFER, f"waiting for its issue: {NOT_HERE}"
        if issue.type != "issue":
            return REJECT, f"{issue_id} is {LABELS[issue.type]}, not an issue"
    return None


FILE_FIELDS = ("sha256", "reduced_sha256", "thumb_sha256")


def attachment_files(values: dict[str, Any]) -> list[str]:
    """The files an attachment names: the original, its reduced copy and thumbnail."""
    return [values[name] for name in FILE_FIELDS if isinstance(values.get(name), str)]


def place(record: Record, find: Callable[[str], Record | None]) -> None:
    """Set where a record belongs from its current values: an issue by its municipality, a child by its issue's."""
    values = record.state["values"]
    if record.type == "issue":
        record.municipality = values.get("municipality") or record.municipality
        muni = refdata.get(record.municipality or "")
        record.province = muni.province if muni else None
    elif record.type == "lesson":
        record.issue_id, record.municipality, record.province = None, None, None
    else:
        record.issue_id = values.get("issue_id") or record.issue_id
        issue = find(record.issue_id) if record.issue_id else None
        if issue is not None:
            record.municipality, record.province = issue.municipality, issue.province
