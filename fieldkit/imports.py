"""Bringing a register kept in a spreadsheet into fieldkit, row by row.

Headers named like the fields map directly (case, spaces and a few common
synonyms forgiven); other columns can be mapped with ``--map 'Column=field'``.
Every row is checked with the model's own rules; rejected rows are reported
with their number and reason, and the rest are imported.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from fieldkit import model, refdata
from fieldkit.cli import CommandError

IMPORTABLE = (
    "municipality", "ward", "sector", "category", "title", "description", "severity", "status",
    "responsible", "source", "source_detail", "commitment", "address", "lat", "lon",
    "contact_name", "contact_phone", "created_at", "created_by",
)

SYNONYMS = {
    "muni": "municipality", "municipality code": "municipality", "mdb code": "municipality",
    "latitude": "lat", "longitude": "lon", "long": "lon", "lng": "lon",
    "responsible institution": "responsible", "issue": "title", "problem": "title",
    "details": "description", "priority": "severity", "contact": "contact_name",
    "phone": "contact_phone", "contact phone": "contact_phone", "contact name": "contact_name",
    "location": "address", "landmark": "address", "captured": "created_at", "date": "created_at",
    "captured by": "created_by", "ward number": "ward", "ward no": "ward",
}

#: Columns that exports write and imports read back without changing anything.
IGNORED = frozenset({
    "id", "ref", "reference", "province", "district", "municipality name", "sector name",
    "category name", "updated at", "updated by", "updated", "conflicts", "wsa", "needs", "needs support from",
})


@dataclass(slots=True)
class Rejection:
    row: int
    message: str


@dataclass(slots=True)
class ImportReport:
    imported: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _key(header: str) -> str:
    return " ".join(header.strip().lower().replace("_", " ").split())


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        if not sep or not column.strip() or not name.strip():
            raise CommandError(f"--map takes COLUMN=FIELD, e.g. 'Problem=title', not '{pair}'")
        if name.strip() not in IMPORTABLE:
            raise CommandError(f"--map: '{name.strip()}' is not a field; fields are: {', '.join(IMPORTABLE)}")
        mapping[_key(column)] = name.strip()
    return mapping


def read_rows(path: str) -> list[dict[str, str]]:
    """The rows of a CSV or XLSX file as text by header."""
    file = Path(path)
    if not file.exists():
        raise CommandError(f"No such file: {path}")
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        from fieldkit.spreadsheets import read_xlsx_rows

        return read_xlsx_rows(file)
    raw = file.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames:
        raise CommandError(f"{path} has no header row; the first row must name the columns")
    return [dict(row) for row in reader]


def column_fields(headers: Iterable[str], mapping: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Which field each column feeds, and the columns that feed none."""
    fields: dict[str, str] = {}
    unused = []
    for header in headers:
        if header is None:
            continue
        key = _key(header)
        name = mapping.get(key) or SYNONYMS.get(key) or (key.replace(" ", "_") if key.replace(" ", "_") in IMPORTABLE else None)
        if name:
            fields[header] = name
        elif key not in IGNORED:
            unused.append(header)
    return fields, unused


def _choice(value: str, choices: dict[str, str]) -> str:
    text = value.strip()
    lowered = text.lower().replace(" ", "_")
    if lowered in choices:
        return lowered
    for code, label in choices.items():
        if label.lower() == text.lower():
            return code
    return text


def _category(sector: str, value: str) -> str:
    return _choice(value, model.CATEGORIES.get(sector, {}))


_LINE_BREAK = re.compile(r"\r\n?")
_ONE_LINE = re.compile(r"[ \t]*[\r\n\t]+[ \t]*")


def _spreadsheet_text(name: str, text: str) -> str:
    """A cell's text with a spreadsheet's line breaks and tabs made plain: kept as line breaks where the
    field holds paragraphs, a space where it holds one line. Other control characters are left for
    validation to refuse."""
    if model.check_field("issue", name, "a\nb") is None:
        return _LINE_BREAK.sub("\n", text)
    return _ONE_LINE.sub(" ", text)


def row_values(row: dict[str, str], fields: dict[str, str]) -> dict[str, Any]:
    """Typed field values from one spreadsheet row (wrong values are left for validation to name)."""
    values: dict[str, Any] = {}
    for column, name in fields.items():
        raw = row.get(column)
        if raw is None:
            continue
        text = str(raw).strip()
        if not text:
            continue
        if name == "ward":
            values[name] = model.parse_ward(text)
        elif name in ("lat", "lon"):
            values[name] = model.parse_float(text)
        elif name == "sector":
            values[name] = _choice(text, model.SECTORS)
        elif name == "severity":
            values[name] = _choice(text, model.SEVERITIES)
        elif name == "status":
            values[name] = _choice(text, model.STATUSES)
        elif name == "source":
            values[name] = _choice(text, model.SOURCES)
        elif name == "municipality":
            values[name] = text.upper() if refdata.get(text) else text
        elif name == "created_at":
            values[name] = model.canonical_timestamp(text) or text
        else:
            values[name] = _spreadsheet_text(name, text)
    if "category" in values:
        values["category"] = _category(values.get("sector", ""), values["category"])
    return values


def import_rows(register, rows: list[dict[str, Any]], mapping: dict[str, str], dry_run: bool = False) -> ImportReport:
    report = ImportReport()
    if not rows:
        report.notes.append("the file has no rows")
        return report
    fields, unused = column_fields(rows[0].keys(), mapping)
    if "title" not in fields.values():
        raise CommandError("No column gives the title; name one 'title' or map it, e.g. --map 'Problem=title'")
    if unused:
        report.notes.append(f"columns not imported: {', '.join(unused)} (map them with --map 'Column=field')")
    accepted = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        if not any(str(v).strip() for v in row.values() if v is not None):
            continue
        values = row_values(row, fields)
        created_at = values.pop("created_at", None)
        created_by = values.pop("created_by", None)
        values.setdefault("severity", "medium")
        values.setdefault("status", "new")
        if isinstance(values.get("contact_phone"), str):
            values["contact_phone"] = model.normalise_phone(values["contact_phone"])
        problems = model.problems("issue", values)
        if created_at and model.check_field("issue", "created_at", created_at):
            problems["created_at"] = model.check_field("issue", "created_at", created_at) or ""
        if problems:
            report.rejections.append(Rejection(number, "; ".join(problems.values())))
            continue
        accepted.append((values, created_at, created_by))
    if not dry_run:
        with register.store.transaction():
            for values, created_at, created_by in accepted:
                register.create_issue(values, at=created_at, created_by=created_by)
    report.imported = len(accepted)
    return report
