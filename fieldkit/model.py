"""The issue register's vocabulary and rules: fields, choices, lifecycle, validation.

No I/O and no Textual: the command line, the app, the importer and the server
all validate through these functions, so a facilitator sees the same message
wherever a value is wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import orjson

from fieldkit import refdata
from fieldkit.ids import is_record_id
from fieldkit.safe_text import shown

SECTORS: dict[str, str] = {
    "water": "Water",
    "sanitation": "Sanitation",
    "electricity": "Electricity",
    "roads": "Roads and stormwater",
    "waste": "Refuse removal",
    "housing": "Housing",
    "facilities": "Community facilities",
    "other": "Other",
}

CATEGORIES: dict[str, dict[str, str]] = {
    "water": {
        "no_supply": "No water supply",
        "burst_main": "Burst or leaking pipe",
        "bulk_supply": "Bulk supply",
        "water_quality": "Water quality",
        "reservoir": "Reservoir or storage",
        "borehole_pump": "Borehole or pump",
        "treatment_works": "Water treatment works",
        "metering_billing": "Metering and billing",
        "other": "Other",
    },
    "sanitation": {
        "sewer_blockage": "Sewer blockage or spill",
        "wastewater_works": "Wastewater treatment works",
        "pump_station": "Sewer pump station",
        "pit_toilets": "VIP or pit toilets",
        "bucket_system": "Bucket eradication",
        "other": "Other",
    },
    "electricity": {
        "outage": "Outage",
        "illegal_connections": "Illegal connections",
        "streetlights": "Streetlights or high-mast lights",
        "substation": "Substation or transformer",
        "vending_metering": "Vending and metering",
        "other": "Other",
    },
    "roads": {
        "potholes": "Potholes",
        "gravel_road": "Gravel road maintenance",
        "stormwater": "Stormwater drainage",
        "bridge": "Bridge or culvert",
        "signs_markings": "Signs and markings",
        "other": "Other",
    },
    "waste": {
        "missed_collection": "Missed collection",
        "illegal_dumping": "Illegal dumping",
        "landfill": "Landfill site",
        "bins_skips": "Bins and skips",
        "other": "Other",
    },
    "housing": {
        "house_defects": "Defects in subsidised houses",
        "informal_settlement": "Services in an informal settlement",
        "title_deeds": "Title deeds",
        "other": "Other",
    },
    "facilities": {
        "clinic": "Clinic",
        "community_hall": "Community hall",
        "sports_field": "Sports field",
        "cemetery": "Cemetery",
        "library": "Library",
        "other": "Other",
    },
    "other": {"other": "Other"},
}

SEVERITIES: dict[str, str] = {
    "critical": "Critical",
    "high": "High",
    "medium": "Medium",
    "low": "Low",
}

STATUSES: dict[str, str] = {
    "new": "New",
    "acknowledged": "Acknowledged",
    "in_progress": "In progress",
    "escalated": "Escalated",
    "resolved": "Resolved",
    "closed": "Closed",
}

OPEN_STATUSES = frozenset({"new", "acknowledged", "in_progress", "escalated"})

#: Where each status may go next. Resolved and closed issues may be reopened.
TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "in_progress", "escalated", "resolved", "closed"}),
    "acknowledged": frozenset({"in_progress", "escalated", "resolved", "closed"}),
    "in_progress": frozenset({"acknowledged", "escalated", "resolved", "closed"}),
    "escalated": frozenset({"acknowledged", "in_progress", "resolved", "closed"}),
    "resolved": frozenset({"closed", "acknowledged", "in_progress"}),
    "closed": frozenset({"acknowledged", "in_progress"}),
}

#: Changes that must say why: escalating, closing and reopening.
NOTE_REQUIRED = frozenset({"escalated", "closed"})

SOURCES: dict[str, str] = {
    "site_visit": "Site visit",
    "imbizo": "Imbizo",
    "community_report": "Community report",
    "meeting": "Council or task-team meeting",
    "other": "Other",
}

NEED_KINDS: dict[str, str] = {
    "skills": "Skills",
    "funding": "Funding",
    "equipment": "Equipment",
    "other": "Other",
}

#: Institutions that carry responsibility, offered as suggestions; any text is accepted.
RESPONSIBLE_SUGGESTIONS: tuple[str, ...] = (
    "Municipality",
    "Water Services Authority",
    "District municipality",
    "Department of Water and Sanitation",
    "Eskom",
    "Provincial Department of Human Settlements",
    "Provincial Department of Public Works and Roads",
    "Provincial Department of Health",
    "CoGTA",
    "SANRAL",
) + tuple(wb.name for wb in refdata.water_boards() if wb.current)

#: Where capacity-building support could come from.
SUPPORT_SOURCES: tuple[str, ...] = (
    "Water Board",
    "Department of Water and Sanitation",
    "CoGTA",
    "MISA",
    "Provincial department",
    "DBSA",
    "Civil society",
    "Private sector",
)

# South Africa's mainland bounds, with a little margin; the Prince Edward Islands are left out.
LAT_RANGE = (-35.0, -22.0)
LON_RANGE = (16.0, 33.0)

TITLE_MAX = 120
TEXT_MAX = 5000
WARD_MAX = 200

#: Limits on lists and whole records, stated once; the laptop and the central store both enforce them
#: (each text field's own limit is in ``FIELDS`` below). A facilitator's real register stays far inside
#: them; they stop one value from growing every laptop's register by megabytes.
LIST_LIMITS: dict[str, int] = {
    "tags": 20,  # tags on a lesson
    "tag": 40,  # characters in one tag
    "issue_ids": 50,  # issues linked to a lesson
    "needs": 10,  # capacity-building needs on an issue
    "need_detail": 1000,  # characters in a need's detail
    "need_support_from": 120,  # characters in a need's support source
}
#: The largest file that can be attached to an issue: a phone photo or a long PDF fits, a video does not.
ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
#: What can be attached, by media type: photos, PDF and office documents.
ATTACHMENT_TYPES: dict[str, str] = {
    "image/jpeg": "JPEG photo",
    "image/png": "PNG image",
    "image/heic": "HEIC photo",
    "image/heif": "HEIF photo",
    "application/pdf": "PDF document",
    "application/msword": "Word document",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word document",
    "application/vnd.ms-excel": "Excel workbook",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excel workbook",
    "application/vnd.ms-powerpoint": "PowerPoint presentation",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "PowerPoint presentation",
    "application/vnd.oasis.opendocument.text": "OpenDocument text",
    "application/vnd.oasis.opendocument.spreadsheet": "OpenDocument spreadsheet",
    "application/vnd.oasis.opendocument.presentation": "OpenDocument presentation",
    "text/plain": "text file",
    "text/csv": "CSV file",
}
SHA256_FORM = re.compile(r"[0-9a-f]{64}")

#: A record's values as JSON, in bytes. Every field at its limit in plain letters fits; long texts in
#: multi-byte characters may not, and then the message asks to shorten them.
RECORD_MAX_BYTES = 64 * 1024
#: A record as the central store keeps it, with every value that lost to a concurrent edit and is not
#: settled yet: room for several conflicts on the longest fields, not for one account flooding it.
RECORD_STATE_MAX_BYTES = 4 * RECORD_MAX_BYTES

#: The years a date or time may name: the register's era, with room either side.
YEARS = (1990, 2100)

#: The only forms a date and a time are stored in: what ``date.isoformat()`` and an aware
#: ``datetime.isoformat()`` write (``now_iso`` writes UTC, ``+00:00``, without fractions).
DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TIMESTAMP_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?[+-][0-9]{2}:[0-9]{2}")

#: Control characters refused in text: C0 (newline allowed only where ``multiline``), DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

RECORD_TYPES = ("issue", "note", "action", "status_change", "lesson", "attachment")


class ValidationError(ValueError):
    """One or more fields are wrong; ``problems`` maps each field to its message."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(problems.values()))


def text_problem(label: str, value: str, maximum: int, multiline: bool = False) -> str | None:
    """What is wrong with a piece of text: too long, or a control character (ESC, NUL, a tab...)."""
    if len(value) > maximum:
        return f"{label} is {len(value):,} characters long; keep it under {maximum:,}"
    found = (_CONTROL_BUT_NEWLINE if multiline else _CONTROL).search(value)
    if found:
        char = found.group()
        if char in "\n\r" and not multiline:
            return f"{label} must be one line; remove the line break"
        return f"{label} contains a control character (U+{ord(char):04X}); remove it, or retype the text"
    return None


def _text(label: str, maximum: int, required: bool = False, multiline: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or value == "":
            return f"{label} is required" if required else None
        if not isinstance(value, str):
            return f"{label} must be text"
        if required and not value.strip():
            return f"{label} is required"
        return text_problem(label, value, maximum, multiline)

    check.maximum = maximum  # type: ignore[attr-defined]
    return check


def _choice(label: str, choices: dict[str, str], required: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or value == "":
            return f"{label} is required" if required else None
        if not isinstance(value, str) or value not in choices:
            return f"Unknown {label.lower()} '{shown(value)}' — choose one of: {', '.join(choices)}"
        return None

    return check


def check_municipality(value: Any) -> str | None:
    if value is None or value == "":
        return "Municipality is required"
    if not isinstance(value, str):
        return "Municipality must be an MDB code such as BUF or EC121"
    if refdata.get(value) is not None and value == value.strip().upper():
        return None
    guess = refdata.suggest(value) if len(value) <= 60 else None
    if guess is not None:
        return f"Unknown municipality code '{shown(value)}' — did you mean {guess.code} ({guess.current_name})?"
    return f"Unknown municipality code '{shown(value)}' — use an MDB code such as BUF or EC121 (`fieldkit municipalities` lists them)"


def check_ward(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"Ward must be a whole number, not '{shown(value)}'"
    if not 1 <= value <= WARD_MAX:
        return (f"Ward {value} is not a ward number: fieldkit checks only that a ward is a whole number from 1 to {WARD_MAX} "
                "(it does not yet know how many wards each municipality has; check the number with the municipality)")
    return None


def _coordinate(label: str, bounds: tuple[float, float]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{label} must be a number in decimal degrees, not '{shown(value)}'"
        low, high = bounds
        if not low <= value <= high:
            return f"{label} {value} is outside South Africa ({low} to {high})"
        return None

    return check


PHONE_DIGITS = re.compile(r"^(?:\+?27|0)(\d{9})$")


def normalise_phone(text: str) -> str:
    """A South African number as +27 and nine digits; other text is returned as typed."""
    digits = re.sub(r"[\s\-()]", "", text)
    match = PHONE_DIGITS.match(digits)
    return f"+27{match.group(1)}" if match else text.strip()


def check_phone(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return "Phone must be text such as 082 123 4567"
    if len(value) > 40 or not PHONE_DIGITS.match(re.sub(r"[\s\-()]", "", value)):
        return f"Phone '{shown(value)}' is not a South African number such as 082 123 4567 or +27 82 123 4567"
    return None


def _in_years(label: str, year: int) -> str | None:
    low, high = YEARS
    if not low <= year <= high:
        return f"{label} is in the year {year}; give a date between {low} and {high}"
    return None


def check_date(label: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or value == "":
            return None
        try:
            if not isinstance(value, str) or not DATE_FORM.fullmatch(value):
                raise ValueError(value)
            day = date.fromisoformat(value)
        except ValueError:
            return f"{label} '{shown(value)}' is not a date; write it as YYYY-MM-DD, e.g. 2026-12-15"
        return _in_years(label, day.year)

    return check


NEED_KEYS = ("kind", "detail", "support_from")


def check_needs(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list):
        return "Capacity-building needs must be a list"
    if len(value) > LIST_LIMITS["needs"]:
        return f"An issue has {len(value)} capacity-building needs; keep it to {LIST_LIMITS['needs']}"
    for number, need in enumerate(value, start=1):
        if not isinstance(need, dict):
            return f"Need {number} must have a kind and a detail"
        extra = sorted(set(need) - set(NEED_KEYS))
        if extra:
            return f"Need {number}: unknown part '{shown(extra[0])}'; a need has a kind, a detail and a support source"
        if not isinstance(need.get("kind"), str) or need["kind"] not in NEED_KINDS:
            return f"Need {number}: kind must be one of {', '.join(NEED_KINDS)}"
        for key, label in (("detail", "detail"), ("support_from", "support source")):
            text = need.get(key, "")
            if not isinstance(text, str):
                return f"Need {number}: the {label} must be text"
            problem = text_problem(f"Need {number}: the {label}", text, LIST_LIMITS[f"need_{key}"])
            if problem:
                return problem
    return None


def check_bool(label: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or isinstance(value, bool):
            return None
        return f"{label} must be true or false"

    return check


def check_tags(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "Tags must be a list of text"
    if len(value) > LIST_LIMITS["tags"]:
        return f"A lesson has {len(value)} tags; keep it to {LIST_LIMITS['tags']}"
    for tag in value:
        problem = text_problem(f"Tag '{shown(tag)}'", tag, LIST_LIMITS["tag"])
        if problem:
            return problem
    return None


def check_issue_ids(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "Linked issues must be a list of issue ids"
    if len(value) > LIST_LIMITS["issue_ids"]:
        return f"A lesson links {len(value)} issues; keep it to {LIST_LIMITS['issue_ids']}"
    for issue_id in value:
        if not is_record_id(issue_id):
            return f"Linked issue '{shown(issue_id)}' is not an issue's id"
    return None


def canonical_timestamp(text: str) -> str | None:
    """A date and time as people write it in a spreadsheet, in the stored form; None when it is not one.

    Takes ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM[:SS]`` and ``YYYY-MM-DDTHH:MM[:SS]`` with an optional
    zone (``Z`` or ``+02:00``). A time without a zone is South African; a date alone is midnight UTC.
    """
    match = re.fullmatch(
        r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[ T]([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)(Z|[+-][0-9]{2}:[0-9]{2})?)?",
        text.strip(),
    )
    if match is None:
        return None
    day, clock, zone = match.groups()
    try:
        if clock is None:
            moment = datetime.fromisoformat(f"{day}T00:00:00+00:00")
        else:
            moment = datetime.fromisoformat(f"{day}T{clock}{'+00:00' if zone == 'Z' else zone or ''}")
            moment = moment if moment.tzinfo else moment.replace(tzinfo=SAST)
        if not YEARS[0] <= moment.year <= YEARS[1]:
            return None
        return moment.astimezone(timezone.utc).isoformat()
    except ValueError:
        return None


def _timestamp(label: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        try:
            if not isinstance(value, str) or not TIMESTAMP_FORM.fullmatch(value):
                raise ValueError(value)
            moment = datetime.fromisoformat(value)
        except ValueError:
            return f"{label} '{shown(value)}' is not a date and time in the form 2026-12-15T08:30:00+00:00"
        return _in_years(label, moment.year)

    return check


def check_sha256(label: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not SHA256_FORM.fullmatch(value):
            return f"{label} must be a SHA-256 in 64 lower-case hex digits"
        return None

    return check


def check_count(label: str, maximum: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            return f"{label} must be a whole number from 0 to {maximum:,}"
        return None

    return check


def check_media_type(value: Any) -> str | None:
    if value is None or value == "":
        return "Media type is required"
    if not isinstance(value, str) or value not in ATTACHMENT_TYPES:
        return f"Files of type '{shown(value)}' cannot be attached; attach photos (JPEG, PNG, HEIC), PDF or office documents"
    return None


def check_status(value: Any) -> str | None:
    return _choice("Status", STATUSES, required=True)(value)


#: Every field of every record type, with its check. Unknown fields are refused.
FIELDS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "issue": {
        "ref": _text("Reference", 40),
        "municipality": check_municipality,
        "ward": check_ward,
        "sector": _choice("Sector", SECTORS, required=True),
        "category": _text("Category", 60),
        "title": _text("Title", TITLE_MAX, required=True),
        "description": _text("Description", TEXT_MAX, multiline=True),
        "severity": _choice("Severity", SEVERITIES, required=True),
        "status": check_status,
        "responsible": _text("Responsible institution", 120),
        "source": _choice("Source", SOURCES),
        "source_detail": _text("Source detail", 200),
        "commitment": _text("Commitment", TEXT_MAX, multiline=True),
        "address": _text("Address or landmark", 300),
        "lat": _coordinate("Latitude", LAT_RANGE),
        "lon": _coordinate("Longitude", LON_RANGE),
        "contact_name": _text("Contact name", 120),
        "contact_phone": check_phone,
        "needs": check_needs,
        "created_by": _text("Created by", 120),
        "created_at": _timestamp("Created at"),
        "deleted": check_bool("Deleted"),
    },
    "note": {
        "issue_id": _text("Issue", 64, required=True),
        "text": _text("Note", TEXT_MAX, required=True, multiline=True),
        "author": _text("Author", 120),
        "at": _timestamp("Time"),
        "edit": check_bool("Field edit"),
        "deleted": check_bool("Deleted"),
    },
    "action": {
        "issue_id": _text("Issue", 64, required=True),
        "text": _text("Action", 1000, required=True),
        "owner": _text("Owner", 120),
        "due": check_date("Due date"),
        "done": check_bool("Done"),
        "done_by": _text("Done by", 120),
        "done_at": _timestamp("Done at"),
        "created_by": _text("Created by", 120),
        "created_at": _timestamp("Created at"),
        "deleted": check_bool("Deleted"),
    },
    "status_change": {
        "issue_id": _text("Issue", 64, required=True),
        "from_status": _choice("Previous status", STATUSES),
        "to_status": check_status,
        "note": _text("Note", TEXT_MAX, multiline=True),
        "author": _text("Author", 120),
        "at": _timestamp("Time"),
    },
    "lesson": {
        "title": _text("Title", TITLE_MAX, required=True),
        "what_happened": _text("What happened", TEXT_MAX, multiline=True),
        "what_worked": _text("What worked", TEXT_MAX, multiline=True),
        "what_did_not": _text("What did not work", TEXT_MAX, multiline=True),
        "sector": _choice("Sector", SECTORS),
        "municipality": lambda v: None if v in (None, "") else check_municipality(v),
        "tags": check_tags,
        "issue_ids": check_issue_ids,
        "created_by": _text("Created by", 120),
        "created_at": _timestamp("Created at"),
        "deleted": check_bool("Deleted"),
    },
    "attachment": {
        "issue_id": _text("Issue", 64, required=True),
        "name": _text("File name", 255, required=True),
        "caption": _text("Caption", 300),
        "media_type": check_media_type,
        "size": check_count("Size", ATTACHMENT_MAX_BYTES),
        "sha256": check_sha256("The file's hash"),
        "reduced_sha256": check_sha256("The reduced copy's hash"),
        "reduced_size": check_count("The reduced copy's size", ATTACHMENT_MAX_BYTES),
        "thumb_sha256": check_sha256("The thumbnail's hash"),
        "width": check_count("Width", 100_000),
        "height": check_count("Height", 100_000),
        "taken_at": _timestamp("Taken at"),
        "lat": _coordinate("Latitude", (-90.0, 90.0)),
        "lon": _coordinate("Longitude", (-180.0, 180.0)),
        "author": _text("Attached by", 120),
        "at": _timestamp("Attached at"),
        "deleted": check_bool("Removed"),
        "removed_by": _text("Removed by", 120),
        "removed_at": _timestamp("Removed at"),
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "issue": ("municipality", "sector", "title", "severity", "status"),
    "note": ("issue_id", "text"),
    "action": ("issue_id", "text"),
    "status_change": ("issue_id", "to_status"),
    "lesson": ("title",),
    "attachment": ("issue_id", "name", "media_type", "sha256"),
}

#: Personal information: kept out of logs, and out of exports unless asked for.
PERSONAL_FIELDS = frozenset({"contact_name", "contact_phone"})


def check_field(record_type: str, name: str, value: Any) -> str | None:
    """The message for one wrong field value, or None when it is fine."""
    checks = FIELDS.get(record_type) if isinstance(record_type, str) else None
    if checks is None:
        return f"Unknown record type '{shown(record_type)}'"
    check = checks.get(name) if isinstance(name, str) else None
    if check is None:
        return f"Unknown field '{shown(name)}' for {record_type.replace('_', ' ')}"
    return check(value)


def check_category(sector: str | None, category: str | None) -> str | None:
    if not category:
        return None
    choices = CATEGORIES.get(sector or "", {})
    if category not in choices:
        label = SECTORS.get(sector or "", sector or "this sector")
        return f"Unknown category '{shown(category)}' for {label} — choose one of: {', '.join(choices)}"
    return None


def record_size_problem(values: dict[str, Any]) -> str | None:
    """Whether a record's values, as JSON, are over ``RECORD_MAX_BYTES``."""
    try:
        size = len(orjson.dumps(values))
    except (TypeError, orjson.JSONEncodeError):
        return "the record holds a value that is not text, a number, true/false or a list"
    if size > RECORD_MAX_BYTES:
        return f"the record is {size:,} bytes; keep it under {RECORD_MAX_BYTES:,} (shorten the longest texts)"
    return None


def problems(record_type: str, values: dict[str, Any], partial: bool = False) -> dict[str, str]:
    """Every problem with a record's values, by field. ``partial`` skips absent required fields."""
    found: dict[str, str] = {}
    for name, value in values.items():
        message = check_field(record_type, name, value)
        if message:
            found[name] = message
    if not found:
        message = record_size_problem(values)
        if message:
            found["record"] = message
    if not partial:
        for name in REQUIRED[record_type]:
            if name not in found and values.get(name) in (None, ""):
                found[name] = check_field(record_type, name, None) or f"{name} is required"
    if record_type == "issue" and "category" in values and "category" not in found and "sector" not in found:
        message = check_category(values.get("sector"), values.get("category"))
        if message:
            found["category"] = message
    if record_type == "issue" and ("lat" in values or "lon" in values):
        has_lat = values.get("lat") not in (None, "")
        has_lon = values.get("lon") not in (None, "")
        if has_lat != has_lon and "lat" not in found and "lon" not in found:
            found["lon" if has_lat else "lat"] = "Give both latitude and longitude, or neither"
    return found


def validate(record_type: str, values: dict[str, Any], partial: bool = False) -> None:
    found = problems(record_type, values, partial)
    if found:
        raise ValidationError(found)


def check_transition(current: str, new: str, note: str | None) -> str | None:
    """Why a status change is not allowed, or None when it is."""
    if new not in STATUSES:
        return check_status(new)
    if new == current:
        return f"The issue is already {STATUSES[new].lower()}"
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current]))
        return f"An issue that is {STATUSES[current].lower()} can go to: {allowed}"
    reopening = current in ("resolved", "closed") and new not in ("resolved", "closed")
    if (new in NOTE_REQUIRED or reopening) and not (note and note.strip()):
        verb = "reopening" if reopening else {"escalated": "escalating", "closed": "closing"}[new]
        return f"Say why when {verb} an issue (add a note)"
    return None


def parse_ward(text: str) -> int | str:
    """A ward as typed: a whole number where it is one, else the text (for the message)."""
    cleaned = text.strip()
    if cleaned.lower().startswith("ward"):
        cleaned = cleaned[4:].strip()
    return int(cleaned) if cleaned.isdigit() else text


def parse_float(text: str) -> float | str:
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        return text
    return value


#: South African Standard Time: reports and spreadsheets show days and times as people live them.
SAST = timezone(timedelta(hours=2), "SAST")


def local_time(iso: str | None) -> datetime | None:
    """A stored ISO time (or date) in South African time; a time without a zone is taken as UTC."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(SAST)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def is_open(values: dict[str, Any]) -> bool:
    return values.get("status") in OPEN_STATUSES and not values.get("deleted")


def stored_day(text: Any) -> date | None:
    """A stored date (``YYYY-MM-DD``), or None when the value is not one.

    For reading: a wrong value that got in before validation refused it must
    not stop a screen, a report or a lookup.
    """
    if not isinstance(text, str) or not DATE_FORM.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def is_overdue(action: dict[str, Any], today: date | None = None) -> bool:
    due = stored_day(action.get("due"))
    if due is None or action.get("done") or action.get("deleted"):
        return False
    return due < (today or date.today())


def sector_label(code: str | None) -> str:
    return SECTORS.get(code or "", code or "")


def category_label(sector: str | None, code: str | None) -> str:
    return CATEGORIES.get(sector or "", {}).get(code or "", code or "")


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine), for spotting duplicates on site."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


@dataclass(slots=True)
class Conflict:
    """A value that lost to a concurrent edit of the same field, kept until resolved."""

    field: str
    value: Any
    author: str
    stamp: str


@dataclass(slots=True)
class Issue:
    """One issue as people read it: its values plus who last touched it."""

    id: str
    values: dict[str, Any]
    updated_at: str
    updated_by: str
    conflicts: list[Conflict] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values.get(name)

    @property
    def ref(self) -> str:
        return self.values.get("ref", "")

    @property
    def municipality(self) -> refdata.Municipality | None:
        return refdata.get(self.values.get("municipality", ""))


def describe_edit(before: dict[str, Any], changes: dict[str, Any]) -> str:
    """An edit as one timeline line: 'Severity: Low → Critical; Ward: 3 → 4'.

    A community contact's name and phone are personal information: the line
    says that they changed, never what they were or became.
    """
    def shown(name: str, value: Any) -> str:
        if value in (None, "", []):
            return "(none)"
        choices = {"severity": SEVERITIES, "sector": SECTORS, "source": SOURCES}.get(name)
        if choices is not None:
            return choices.get(value, str(value))
        if name == "category":
            return category_label(changes.get("sector", before.get("sector")), value)
        if name == "needs" and isinstance(value, list):
            return f"{len(value)} need{'s' if len(value) != 1 else ''}"
        text = str(value).replace("\n", " ")
        return text if len(text) <= 60 else text[:57] + "..."

    parts = []
    for name, value in changes.items():
        label = name.replace("_", " ").capitalize()
        if name in PERSONAL_FIELDS:
            parts.append(f"{label} changed")
        else:
            parts.append(f"{label}: {shown(name, before.get(name))} → {shown(name, value)}")
    text = "; ".join(parts)
    return text if len(text) <= 1000 else text[:997] + "..."
