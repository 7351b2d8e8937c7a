"""What a facilitator asks of the register: filters, text search and sort, as pure rules.

``IssueFilter`` is built by the command line and by the app's search box alike;
``IssueRow`` is the slim, read-only view of an issue the index keeps for it.
"""

from __future__ import annotations

import math
from sys import intern
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

from fieldkit import refdata
from fieldkit.model import OPEN_STATUSES, SECTORS, SEVERITIES, STATUSES, category_label, stored_day

SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
STATUS_RANK = {name: rank for rank, name in enumerate(STATUSES)}

SORT_KEYS = ("updated", "created", "severity", "status", "municipality", "sector", "title", "ref", "ward")


@dataclass(slots=True)
class IssueRow:
    """One line of the register: what lists, filters and sorts need, nothing more."""

    id: str
    ref: str
    municipality: str
    province: str
    district: str
    ward: int | None
    sector: str
    category: str
    title: str
    severity: str
    status: str
    responsible: str
    created_at: str
    updated_at: str
    lat: float | None
    lon: float | None
    deleted: bool
    haystack: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES and not self.deleted

    def as_summary(self) -> dict[str, Any]:
        """The fields `fieldkit find --json` prints for each issue."""
        return {
            "id": self.id,
            "ref": self.ref,
            "municipality": self.municipality,
            "province": self.province,
            "ward": self.ward,
            "sector": self.sector,
            "category": self.category,
            "title": self.title,
            "status": self.status,
            "severity": self.severity,
            "responsible": self.responsible,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def row_from_values(issue_id: str, values: dict[str, Any]) -> IssueRow:
    code = _str(values.get("municipality"))
    muni = refdata.get(code) if code else None
    ward = _int(values.get("ward"))
    words = [
        values.get("ref", ""),
        values.get("title", ""),
        values.get("description", ""),
        code,
        muni.name if muni else "",
        muni.name_later if muni else "",
        f"ward {ward}" if ward else "",
        SECTORS.get(values.get("sector", ""), ""),
        category_label(values.get("sector"), values.get("category")),
        values.get("responsible", ""),
        values.get("address", ""),
    ]
    return IssueRow(
        id=issue_id,
        ref=values.get("ref", ""),
        municipality=code,
        province=muni.province if muni else "",
        district=(muni.district_code or muni.code) if muni else "",
        ward=ward,
        sector=_str(values.get("sector")),
        category=_str(values.get("category")),
        title=_str(values.get("title")),
        severity=_str(values.get("severity")),
        status=_str(values.get("status")),
        responsible=_str(values.get("responsible")),
        created_at=_str(values.get("created_at")),
        updated_at=_str(values.get("updated_at")),
        lat=_float(values.get("lat")),
        lon=_float(values.get("lon")),
        deleted=bool(values.get("deleted")),
        haystack=f' {" ".join(w for w in words if w).lower()} ',
    )


def _str(value: Any) -> str:
    """A stored value as row text. Validation keeps values typed; a wrong one that got in anyway
    (from an older laptop or store) must not stop the register from opening."""
    return value if isinstance(value, str) else "" if value is None else str(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


_BREAKS = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


def _flat(text: str) -> str:
    return text.translate(_BREAKS)


def row_to_line(row: IssueRow) -> str:
    """One row as a tab-separated line, for the compact lines a cold lookup reads.

    Every column is flattened, so no value (a tab in a date, a newline in a
    title) can add a column and make the line unreadable.
    """
    return "\t".join(_flat(str(column)) for column in (
        row.id, row.ref, row.municipality, row.province, row.district,
        "" if row.ward is None else row.ward, row.sector, row.category, row.title,
        row.severity, row.status, row.responsible, row.created_at, row.updated_at,
        "" if row.lat is None else repr(row.lat), "" if row.lon is None else repr(row.lon),
        "1" if row.deleted else "", row.haystack,
    ))


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text) if text else None
    except ValueError:
        return None  # an odd value that got in some other way shows as missing; it never stops a lookup


def row_from_line(line: str) -> IssueRow:
    columns = line.split("\t")
    columns += [""] * (18 - len(columns))
    (issue_id, ref, municipality, province, district, ward, sector, category, title, severity, status,
     responsible, created_at, updated_at, lat, lon, deleted, haystack) = columns[:18]
    shared = intern  # the few values many issues have (municipality, status, ...) are held once, not once a row
    return IssueRow(
        issue_id, ref, shared(municipality), shared(province), shared(district), _number(ward, int), shared(sector),
        shared(category), title, shared(severity), shared(status), shared(responsible), created_at, updated_at,
        _number(lat, float), _number(lon, float), deleted == "1", haystack,
    )


@dataclass(slots=True)
class IssueFilter:
    """A question put to the register. Empty sets mean 'any'."""

    text: str = ""
    statuses: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()
    severities: frozenset[str] = frozenset()
    municipalities: frozenset[str] = frozenset()
    provinces: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()
    open_only: bool = False
    only_ids: frozenset[str] | None = None  # e.g. issues with overdue actions
    include_deleted: bool = False
    sort: str = "updated"
    descending: bool = True
    limit: int | None = None

    @property
    def words(self) -> list[str]:
        """The words to look for; "ward 12" stays one phrase, so it does not match ward 123."""
        tokens = self.text.lower().split()
        words: list[str] = []
        for token in tokens:
            if token.isdigit() and words and words[-1] == "ward":
                words[-1] = f" ward {token} "
            else:
                words.append(token)
        return words

    def is_empty(self) -> bool:
        return not (
            self.words or self.statuses or self.sectors or self.severities or self.municipalities
            or self.provinces or self.districts or self.open_only or self.only_ids is not None
        )


def matches(row: IssueRow, question: IssueFilter) -> bool:
    """Whether one row answers the question (the reference rule the index must agree with)."""
    if row.deleted and not question.include_deleted:
        return False
    if question.open_only and not row.is_open:
        return False
    if question.statuses and row.status not in question.statuses:
        return False
    if question.sectors and row.sector not in question.sectors:
        return False
    if question.severities and row.severity not in question.severities:
        return False
    if question.municipalities and row.municipality not in question.municipalities:
        return False
    if question.provinces and row.province not in question.provinces:
        return False
    if question.districts and row.district not in question.districts and row.municipality not in question.districts:
        return False
    if question.only_ids is not None and row.id not in question.only_ids:
        return False
    return all(word in row.haystack or row.id.startswith(word) for word in question.words)


def sort_key(name: str):
    """The key that orders rows by a column; ties fall back to the reference."""
    keys = {
        "updated": lambda r: (r.updated_at, r.id),
        "created": lambda r: (r.created_at, r.id),
        "severity": lambda r: (-SEVERITY_RANK.get(r.severity, 9), r.updated_at, r.id),
        "status": lambda r: (STATUS_RANK.get(r.status, 9), r.updated_at, r.id),
        "municipality": lambda r: (r.municipality, r.ward or 0, r.id),
        "sector": lambda r: (r.sector, r.id),
        "title": lambda r: (r.title.lower(), r.id),
        "ref": lambda r: (r.ref, r.id),
        "ward": lambda r: (r.municipality, r.ward or 0, r.id),
    }
    if name not in keys:
        raise ValueError(f"Unknown sort '{name}' — choose one of: {', '.join(SORT_KEYS)}")
    return keys[name]


def filter_rows(rows: Iterable[IssueRow], question: IssueFilter) -> list[IssueRow]:
    """Rows answering the question, in the order given (callers pass rows already sorted)."""
    words = question.words
    found = []
    append = found.append
    for row in rows:
        if row.deleted and not question.include_deleted:
            continue
        if question.open_only and row.status not in OPEN_STATUSES:
            continue
        if question.statuses and row.status not in question.statuses:
            continue
        if question.sectors and row.sector not in question.sectors:
            continue
        if question.severities and row.severity not in question.severities:
            continue
        if question.municipalities and row.municipality not in question.municipalities:
            continue
        if question.provinces and row.province not in question.provinces:
            continue
        if question.districts and row.district not in question.districts and row.municipality not in question.districts:
            continue
        if question.only_ids is not None and row.id not in question.only_ids:
            continue
        if words:
            haystack = row.haystack
            if not all(word in haystack or row.id.startswith(word) for word in words):
                continue
        append(row)
        if question.limit is not None and len(found) >= question.limit:
            break
    return found


def due_this_week(due: str | None, today: date) -> bool:
    day = stored_day(due)
    if day is None:
        return False
    return today <= day <= date.fromordinal(today.toordinal() + 7)
