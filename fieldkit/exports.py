"""Writing the register out for the systems people already use.

Each format is a function ``(register, question, output, personal) -> [files written]``
in ``FORMATS``; the command line picks one by name. Personal information
(community contacts) is left out unless ``personal`` is asked for.

Formats that come as a pair (issues and their follow-up actions, requests and
the service list) write the second file beside the first, named after it. Both
are built in memory before either is written, and each is written atomically,
so a failure leaves no half-written file.

Heavy libraries (xlsxwriter) are imported inside the writers, never at the top:
``fieldkit find`` imports this module's neighbours and must stay quick.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any, Callable

from fieldkit import model, refdata
from fieldkit.filters import IssueFilter
from fieldkit.store.files import atomic_write

class ExportError(ValueError):
    """An export asked for in a way that cannot work; the message says what to do instead."""


#: (field, header) in the order a coordinator reads them; headers import back as the same fields.
ISSUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ref", "Reference"),
    ("municipality", "Municipality"),
    ("municipality_name", "Municipality name"),
    ("province", "Province"),
    ("ward", "Ward"),
    ("sector", "Sector"),
    ("category", "Category"),
    ("title", "Title"),
    ("description", "Description"),
    ("severity", "Severity"),
    ("status", "Status"),
    ("responsible", "Responsible institution"),
    ("source", "Source"),
    ("source_detail", "Source detail"),
    ("commitment", "Commitment"),
    ("address", "Address"),
    ("lat", "Latitude"),
    ("lon", "Longitude"),
    ("created_at", "Created at"),
    ("created_by", "Created by"),
    ("updated_at", "Updated at"),
    ("updated_by", "Updated by"),
    ("id", "ID"),
)
#: Derived columns after the original ones; the importer knows them and skips them.
CONTEXT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("district", "District"),
    ("wsa", "WSA"),
    ("needs", "Needs"),
    ("needs_support", "Needs support from"),
    ("attachments", "Attachments"),
)
PERSONAL_COLUMNS: tuple[tuple[str, str], ...] = (("contact_name", "Contact name"), ("contact_phone", "Contact phone"))

ACTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("issue_ref", "Issue reference"),
    ("municipality", "Municipality"),
    ("issue_title", "Issue"),
    ("text", "Action"),
    ("owner", "Owner"),
    ("due", "Due"),
    ("done", "Done"),
    ("overdue", "Overdue"),
    ("done_at", "Done at"),
    ("done_by", "Done by"),
    ("created_at", "Created at"),
    ("created_by", "Created by"),
    ("issue_id", "Issue ID"),
    ("id", "Action ID"),
)

#: How each column is typed in a workbook, and how wide it may grow.
COLUMN_KINDS = {
    "ward": "int", "lat": "float", "lon": "float", "created_at": "datetime", "updated_at": "datetime",
    "due": "date", "done": "bool", "overdue": "bool", "done_at": "datetime", "at": "datetime",
}
WIDE_COLUMNS = {"title": 60, "description": 60, "commitment": 50, "issue_title": 50, "text": 60, "needs": 50, "id": 38, "issue_id": 38}
SAST_NOTE = "South African time (UTC+2)"
#: Every time in a CSV file or a workbook is South African time, and its header says so.
TIME_HEADER = " (SAST, UTC+2)"
#: OWASP's rule for CSV injection: a cell starting with one of these is prefixed with an apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def header_of(name: str, label: str) -> str:
    """A column's header: times say their zone."""
    return label + TIME_HEADER if COLUMN_KINDS.get(name) == "datetime" else label

#: Columns whose codes a workbook shows as the words people use; the importer maps the words back.
LABELLED = {
    "sector": lambda r: model.sector_label(r.get("sector")),
    "category": lambda r: model.category_label(r.get("sector"), r.get("category")),
    "severity": lambda r: model.SEVERITIES.get(r.get("severity") or "", r.get("severity")),
    "status": lambda r: model.STATUSES.get(r.get("status") or "", r.get("status")),
    "source": lambda r: model.SOURCES.get(r.get("source") or "", r.get("source")),
}


def issue_columns(personal: bool) -> tuple[tuple[str, str], ...]:
    return ISSUE_COLUMNS + CONTEXT_COLUMNS + (PERSONAL_COLUMNS if personal else ())


def municipality_label(muni: refdata.Municipality | None) -> str:
    return f"{muni.code} {muni.current_name}" if muni else ""


def wsa_label(values: dict[str, Any]) -> str:
    """The Water Services Authority for water and sanitation issues; blank for other sectors."""
    if values.get("sector") not in ("water", "sanitation") or not values.get("municipality"):
        return ""
    wsa, _ = refdata.water_services_authority(values["municipality"])
    return municipality_label(wsa) if wsa else "not known"


def needs_text(values: dict[str, Any]) -> tuple[str, str]:
    """Capacity-building needs as two readable cells: every need, one a line ('Skills: Operator training
    (support from Amatola Water)', which the importer reads back whole), and the sources asked, in short."""
    needs = [n for n in values.get("needs") or [] if isinstance(n, dict)]  # a wrong value that got in is left out
    lines = []
    sources: list[str] = []
    for need in needs:
        line = f"{model.NEED_KINDS.get(need.get('kind', ''), need.get('kind', ''))}: {need.get('detail', '')}".rstrip(": ")
        source = (need.get("support_from") or "").strip()
        if source:
            line += f" (support from {source})"
            if source not in sources:
                sources.append(source)
        lines.append(line)
    return "\n".join(lines), "; ".join(sources)


def issue_record(values: dict[str, Any]) -> dict[str, Any]:
    """An issue's values with the derived columns exports show (names, province, district, WSA, needs)."""
    muni = refdata.get(values.get("municipality", ""))
    needs, support = needs_text(values)
    return {
        **values,
        "municipality_name": muni.current_name if muni else "",
        "province": muni.province if muni else "",
        "district": municipality_label(refdata.district_of(muni.code)) if muni else "",
        "wsa": wsa_label(values),
        "needs": needs,
        "needs_support": support,
    }


def selected_issues(register, question: IssueFilter) -> list[dict[str, Any]]:
    documents = register.store.documents("issue")
    attachments = children_by_issue(register, "attachment")
    server = register.sync_state().get("server")
    records = []
    for row in register.find(question):
        record = issue_record(documents[row.id])
        attached = attachments.get(row.id, [])
        record["attachments"] = "; ".join(a.get("name", "") for a in attached)
        record["media_url"] = media_url(server, attached)
        records.append(record)
    return records


def media_url(server: str | None, attachments: list[dict[str, Any]]) -> str | None:
    """Where the central store serves the issue's first photo (its reduced copy), once this laptop syncs
    with one; None without a photo or a central store. The store answers it to accounts in the issue's area."""
    from fieldkit.photos import IMAGE_TYPES

    photo = next((a for a in attachments if a.get("media_type") in IMAGE_TYPES), None)
    if photo is None or not server:
        return None
    return f"{server.rstrip('/')}/files/{photo.get('reduced_sha256') or photo['sha256']}"


#: How the register orders each kind of child record (the same as ``Register.actions`` and ``status_changes``).
CHILD_ORDER: dict[str, Callable[[dict[str, Any]], Any]] = {
    "action": lambda a: (a.get("due") or "9999", a["id"]),
    "status_change": lambda s: (s.get("at", ""), s["id"]),
    "note": lambda n: (n.get("at", ""), n["id"]),
    "attachment": lambda a: (a.get("at", ""), a["id"]),
}


def children_by_issue(register, kind: str) -> dict[str, list[dict[str, Any]]]:
    """Every issue's follow-up actions or status changes, read in one pass over the table.

    One indexed query an issue adds up at 10,000 issues; exports and reports
    read each kind of record once.
    """
    records = [dict(r) for r in register.store.documents(kind).values() if not r.get("deleted")]
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=CHILD_ORDER[kind]):
        grouped[record.get("issue_id", "")].append(record)
    return grouped


def action_records(register, issues: list[dict[str, Any]], today: date | None = None) -> list[dict[str, Any]]:
    """The follow-up actions of the exported issues, soonest due first."""
    day = today or date.today()
    actions = children_by_issue(register, "action")
    found = []
    for issue in issues:
        for action in actions.get(issue["id"], []):
            found.append({
                **action,
                "issue_ref": issue.get("ref", ""),
                "municipality": issue.get("municipality", ""),
                "issue_title": issue.get("title", ""),
                "done": bool(action.get("done")),
                "overdue": model.is_overdue(action, day),
            })
    found.sort(key=lambda a: (a.get("due") or "9999-12-31", a["issue_ref"], a["id"]))
    return found


def write_text(output: str | None, text: str) -> list[str]:
    """Write to a file atomically (never a half-written export), or to standard output."""
    if output is None or output == "-":
        from fieldkit.safe_text import safe_for_terminal

        sys.stdout.write(safe_for_terminal(text, multiline=True) if sys.stdout.isatty() else text)  # a pipe gets the bytes
        return []
    return write_files({output: text.encode("utf-8")})


def write_files(payloads: dict[str, bytes]) -> list[str]:
    """Write several finished files, each atomically, after checking every folder exists."""
    paths = [Path(name) for name in payloads]
    for path in paths:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not path.parent.exists():
            raise FileNotFoundError(errno.ENOENT, "folder does not exist", str(path.parent))
    for path, payload in zip(paths, payloads.values()):
        atomic_write(path, payload, mode=0o666)
    return [str(path) for path in paths]


def companion(output: str, suffix: str, extension: str | None = None) -> str:
    """The file written beside an export: issues.csv -> issues-actions.csv."""
    path = Path(output)
    return str(path.with_name(f"{path.stem}-{suffix}{extension or path.suffix}"))


def _cell(value: Any) -> Any:
    return "" if value is None else value


def csv_text(records: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    """CSV that spreadsheets open safely: times in South African time (said in the header), text that
    could start a formula guarded with an apostrophe, which the importer takes off again."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([header_of(name, header) for name, header in columns])
    kinds = [COLUMN_KINDS.get(name, "text") for name, _ in columns]
    for record in records:
        writer.writerow([_csv_value(record.get(name), kind) for (name, _), kind in zip(columns, kinds)])
    return buffer.getvalue()


def _csv_value(value: Any, kind: str = "text") -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "datetime" and isinstance(value, str):
        from fieldkit.spreadsheets import local_datetime

        moment = local_datetime(value)
        return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else value
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_bytes(text: str, bom: bool = True) -> bytes:
    """UTF-8 with a byte-order mark, so Excel on Windows reads 'Thabazimbi – ward 3' as written."""
    return ("\ufeff" if bom else "").encode("utf-8") + text.encode("utf-8")


def export_csv(register, question: IssueFilter, output: str | None, personal: bool, bom: bool = True, **_: Any) -> list[str]:
    """Issues as CSV; with a file name, the follow-up actions go in <name>-actions.csv beside it.

    Files carry a UTF-8 byte-order mark unless ``bom`` is False; standard output never does (it feeds programs)."""
    issues = selected_issues(register, question)
    text = csv_text(issues, issue_columns(personal))
    if output is None or output == "-":
        return write_text(output, text)
    actions = csv_text(action_records(register, issues), ACTION_COLUMNS)
    return write_files({output: csv_bytes(text, bom), companion(output, "actions"): csv_bytes(actions, bom)})


def _typed(name: str, record: dict[str, Any], labelled: bool) -> Any:
    """One workbook cell: dates as dates, numbers as numbers, codes as words."""
    from fieldkit.spreadsheets import cell_date, local_datetime

    value = record.get(name)
    kind = COLUMN_KINDS.get(name, "text")
    if labelled and name in LABELLED and value:
        return LABELLED[name](record)
    if value in (None, ""):
        return None
    if kind == "datetime":
        return local_datetime(value)
    if kind == "date":
        return cell_date(value)
    if kind == "int":
        return value if isinstance(value, int) else None
    if kind == "float":
        return float(value) if isinstance(value, (int, float)) else None
    if kind == "bool":
        return bool(value)
    return value if isinstance(value, str) else str(value)


def _sheet(title: str, columns: tuple[tuple[str, str], ...], records: list[dict[str, Any]], labelled: bool):
    from fieldkit.spreadsheets import Column, Sheet

    specs = [
        Column(
            header_of(name, header),
            COLUMN_KINDS.get(name, "text"),
            max_width=WIDE_COLUMNS.get(name, 30),
            note=SAST_NOTE if COLUMN_KINDS.get(name) == "datetime" else "",
        )
        for name, header in columns
    ]
    rows = [[_typed(name, record, labelled) for name, _ in columns] for record in records]
    return Sheet(title, specs, rows)


TIMELINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("issue_ref", "Issue reference"),
    ("at", "At"),
    ("kind", "What"),
    ("author", "Who"),
    ("text", "Text"),
    ("issue_id", "Issue ID"),
    ("id", "Record ID"),
)


def timeline_records(register, issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each exported issue's history: its capture, status changes and notes, in time order (read-only on import)."""
    notes = children_by_issue(register, "note")
    changes = children_by_issue(register, "status_change")
    found = []
    for issue in issues:
        ref = issue.get("ref", "")
        found.append({"issue_ref": ref, "issue_id": issue["id"], "id": issue["id"], "at": issue.get("created_at"),
                      "kind": "Captured", "author": issue.get("created_by", ""), "text": issue.get("title", "")})
        for change in changes.get(issue["id"], []):
            words = f"{model.STATUSES.get(change.get('from_status') or '', change.get('from_status') or '')} -> " \
                    f"{model.STATUSES.get(change.get('to_status') or '', change.get('to_status') or '')}"
            text = f"{words}: {change['note']}" if change.get("note") else words
            found.append({"issue_ref": ref, "issue_id": issue["id"], "id": change["id"], "at": change.get("at"),
                          "kind": "Status", "author": change.get("author", ""), "text": text})
        for note in notes.get(issue["id"], []):
            found.append({"issue_ref": ref, "issue_id": issue["id"], "id": note["id"], "at": note.get("at"),
                          "kind": "Note", "author": note.get("author", ""), "text": note.get("text", "")})
    found.sort(key=lambda r: (r["issue_ref"], r.get("at") or "", r["id"]))
    return found


def xlsx_export(register, question: IssueFilter, personal: bool, progress: Callable[[int, int], None] | None = None) -> bytes:
    """Issues, their follow-up actions and their timeline, one sheet each; the first two import back whole."""
    from fieldkit.spreadsheets import xlsx_bytes

    issues = selected_issues(register, question)
    actions = action_records(register, issues)
    timeline = timeline_records(register, issues)
    return xlsx_bytes(
        [
            _sheet("Issues", issue_columns(personal), issues, labelled=True),
            _sheet("Follow-up actions", ACTION_COLUMNS, actions, labelled=False),
            _sheet("Timeline", TIMELINE_COLUMNS, timeline, labelled=False),
        ],
        title="fieldkit issue register",
        progress=progress,
    )


def export_xlsx(register, question: IssueFilter, output: str | None, personal: bool,
                progress: Callable[[int, int], None] | None = None, **_: Any) -> list[str]:
    """An Excel workbook: Issues, Follow-up actions and Timeline sheets."""
    if output is None or output == "-":
        raise ExportError("An Excel workbook is a file: give one with -o, e.g. -o register.xlsx")
    return write_files({output: xlsx_export(register, question, personal, progress)})


GEOJSON_PROPERTIES = (
    "ref", "title", "description", "municipality", "municipality_name", "district", "province", "wsa",
    "ward", "sector", "sector_name", "category", "category_name", "severity", "status", "is_open",
    "responsible", "source", "source_detail", "commitment", "address", "needs", "needs_support",
    "open_actions", "overdue_actions", "created_at", "updated_at", "id", "attachments", "media_url",
)


def geojson_feature(record: dict[str, Any], actions: list[dict[str, Any]], personal: bool, today: date) -> dict[str, Any]:
    """One issue as an RFC 7946 Feature: a Point in [longitude, latitude], or ``"geometry": null``
    without a location (RFC 7946 section 3.2), so counts by municipality stay whole."""
    lat, lon = record.get("lat"), record.get("lon")
    located = isinstance(lat, (int, float)) and isinstance(lon, (int, float))
    derived = {
        "sector_name": model.sector_label(record.get("sector")),
        "category_name": model.category_label(record.get("sector"), record.get("category")) or None,
        "is_open": model.is_open(record),
        "open_actions": sum(1 for a in actions if not a.get("done")),
        "overdue_actions": sum(1 for a in actions if model.is_overdue(a, today)),
    }
    names = GEOJSON_PROPERTIES + (tuple(n for n, _ in PERSONAL_COLUMNS) if personal else ())
    properties = {}
    for name in names:
        value = derived[name] if name in derived else record.get(name)
        properties[name] = None if value == "" else value
    return {
        "type": "Feature",
        "id": record["id"],
        "geometry": {"type": "Point", "coordinates": [round(float(lon), 6), round(float(lat), 6)]} if located else None,
        "properties": properties,
    }


def geojson_text(features: list[dict[str, Any]]) -> str:
    """A FeatureCollection with one feature a line: valid JSON that a person can still read."""
    head: dict[str, Any] = {"type": "FeatureCollection"}
    points = [f["geometry"]["coordinates"] for f in features if f["geometry"]]
    if points:
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        head["bbox"] = [min(lons), min(lats), max(lons), max(lats)]
    if not features:
        return json.dumps({**head, "features": []}) + "\n"
    opening = json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n'
    body = ",\n".join(json.dumps(f, ensure_ascii=False) for f in features)
    return opening + body + "\n]}\n"


def export_geojson(register, question: IssueFilter, output: str | None, personal: bool, points_only: bool = False,
                   **_: Any) -> list[str]:
    """Every selected issue as GeoJSON for QGIS, pandas and web maps; those without coordinates have a null
    geometry, or with ``points_only`` are left out and counted on stderr."""
    today = date.today()
    issues = selected_issues(register, question)
    actions = children_by_issue(register, "action")
    features = [geojson_feature(record, actions.get(record["id"], []), personal, today) for record in issues]
    if points_only:
        features = [f for f in features if f["geometry"]]
        left_out = len(issues) - len(features)
        if left_out:
            print(f"{left_out} issue{'s' if left_out != 1 else ''} without coordinates left out of the map "
                  "(without --points-only they come with a null geometry)", file=sys.stderr)
    return write_text(output, geojson_text(features))


def export_open311(register, question: IssueFilter, output: str | None, personal: bool, **_: Any) -> list[str]:
    """Open311 GeoReport v2 service requests; with a file name, the service list goes in <name>-services.json."""
    from fieldkit import open311

    if personal:
        raise ExportError("Open311 service requests never carry personal information; leave out --personal")
    issues = selected_issues(register, question)
    changes = children_by_issue(register, "status_change")
    requests = [open311.service_request(record, changes.get(record["id"], []), record.get("media_url")) for record in issues]
    text = json.dumps(requests, ensure_ascii=False, indent=1) + "\n"
    if output is None or output == "-":
        return write_text(output, text)
    services = json.dumps(open311.services(), ensure_ascii=False, indent=1) + "\n"
    return write_files({output: text.encode("utf-8"), companion(output, "services", ".json"): services.encode("utf-8")})


FORMATS: dict[str, Callable[..., list[str]]] = {
    "csv": export_csv,
    "xlsx": export_xlsx,
    "geojson": export_geojson,
    "open311": export_open311,
}


def write_export(register, fmt: str, question: IssueFilter, output: str | None, personal: bool = False,
                 **options: Any) -> list[str]:
    """Write one format; ``options`` are the format's own (``bom`` for CSV, ``points_only`` for GeoJSON)."""
    try:
        writer = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown export format {fmt!r}") from None
    return writer(register, question, output, personal, **options)
