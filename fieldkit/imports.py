"""Bringing a register kept in a spreadsheet into fieldkit: planned first, then written.

An import is two steps. ``plan_import`` reads the rows against the register as it
is and decides, row by row, whether each adds an issue, updates one (found by its
id, its reference, or else by municipality and title), leaves one unchanged, or is
refused and why — nothing is written, so ``--dry-run`` and the app's preview show
exactly what will happen. ``apply_import`` then writes the plan through Register's
own methods, so every addition and update is an operation that syncs like any
edit, with its author. Importing the same file twice changes nothing.

Headers are matched by name, label or a common synonym; values by code, label or
the words people write (``fieldkit.matching``). Blank cells leave a field as it is.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from fieldkit import matching, model, refdata
from fieldkit.ids import is_record_id, new_id
from fieldkit.spreadsheets import SpreadsheetError

#: The fields a spreadsheet column can feed, in the order the preview lists them.
IMPORTABLE = (
    "id", "ref", "municipality", "ward", "sector", "category", "title", "description", "severity", "status",
    "responsible", "source", "source_detail", "commitment", "address", "lat", "lon", "needs",
    "contact_name", "contact_phone", "created_at", "created_by", "note",
)
#: ``--map 'Column=skip'`` leaves a column out.
SKIP = "skip"

#: Header words (as ``matching.words`` gives them) for each field, beyond the field's own name.
HEADER_WORDS: dict[str, tuple[str, ...]] = {
    "id": ("issue id", "fieldkit id", "uuid"),
    "ref": ("reference", "ref", "ref no", "reference no", "reference number", "ref number", "ticket", "ticket no",
            "ticket number", "case no", "case number", "job no", "job number", "call no", "complaint no"),
    "municipality": ("muni", "municipality code", "mdb code", "local municipality", "lm", "municipal area", "council"),
    "ward": ("ward no", "ward number", "ward nr", "wyk", "ward no."),
    "sector": ("service", "service area", "department", "sector name", "type of service", "service type"),
    "category": ("sub category", "subcategory", "fault type", "problem type", "issue type", "type", "fault", "category name"),
    "title": ("issue", "problem", "complaint", "subject", "summary", "short description", "fault description", "issue title"),
    "description": ("details", "detail", "comments", "comment", "remarks", "more detail", "full description"),
    "severity": ("priority", "urgency", "impact"),
    "status": ("progress", "state", "current status", "status update"),
    "responsible": ("responsible institution", "responsibility", "responsible department", "responsible party",
                    "responsible person", "who is responsible", "institution"),
    "source": ("reported via", "how reported", "channel", "raised at", "origin"),
    "source_detail": ("source detail", "meeting", "where raised"),
    "commitment": ("promised", "undertaking", "commitments", "what was promised"),
    "address": ("location", "landmark", "site", "place", "village", "area", "street", "address or landmark"),
    "lat": ("latitude", "y", "gps lat", "gps latitude"),
    "lon": ("longitude", "long", "lng", "x", "gps long", "gps longitude"),
    "needs": ("capacity building needs", "capacity needs", "support needed", "needs"),
    "contact_name": ("contact", "contact name", "contact person", "community contact"),
    "contact_phone": ("phone", "contact phone", "cell", "cellphone", "cell no", "cell number", "tel", "telephone",
                      "contact number", "contact no", "mobile"),
    "created_at": ("created at", "created", "date", "date reported", "reported on", "date logged", "logged on",
                   "captured", "captured at", "captured on", "date captured", "date raised", "reported", "date opened"),
    "created_by": ("created by", "captured by", "logged by", "recorded by"),
    "note": ("note", "notes", "update", "latest update", "progress note", "status note", "update note"),
}
#: Columns only read when nothing better gives the field (exports write both the code and the name).
SECONDARY: dict[str, str] = {"municipality name": "municipality", "sector name": "sector", "category name": "category"}
#: Columns fieldkit derives or keeps itself; read by nobody, mentioned to nobody.
DERIVED = frozenset({
    "province", "district", "wsa", "needs support from", "updated at", "updated by", "updated", "conflicts",
    "municipality name", "sector name", "category name", "attachments",
})
ACTION_HEADERS: dict[str, tuple[str, ...]] = {
    "id": ("action id",),
    "issue_id": ("issue id",),
    "issue_ref": ("issue reference", "reference", "ref", "issue ref"),
    "text": ("action", "follow up action", "follow up", "what", "task"),
    "owner": ("owner", "who", "responsible", "by whom"),
    "due": ("due", "due date", "by when", "deadline"),
    "done": ("done", "completed", "complete"),
    "done_at": ("done at",),
    "done_by": ("done by",),
    "created_at": ("created at",),
    "created_by": ("created by",),
}
YES = frozenset({"yes", "y", "true", "1", "x", "done", "completed", "ja"})
NO = frozenset({"no", "n", "false", "0", "", "not done", "nee"})
#: Characters an export guards with a leading apostrophe so spreadsheets never run them as formulas.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY = 500


def header_key(header: str) -> str:
    """A header as compared: '(SAST, UTC+2)' and other brackets dropped, then ``matching.words``."""
    return matching.words(re.sub(r"\([^)]*\)", " ", header or ""))


def unguard(text: str) -> str:
    """Text as typed before an export guarded it: "'=SUM(1)" back to "=SUM(1)"."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START:
        return text[1:]
    return text


# -- reading files ------------------------------------------------------------------


@dataclass(slots=True)
class Workbook:
    """The tables of a file: the register, and where the file has them, actions and timeline."""

    issues: list[dict[str, str]]
    actions: list[dict[str, str]] | None = None
    timeline_rows: int = 0
    name: str = ""


def read_file(path: str) -> Workbook:
    """The tables of a CSV file (with its -actions.csv beside it) or an XLSX workbook, as text by header."""
    file = Path(path)
    if not file.is_file():
        raise SpreadsheetError(f"No such file: {path}" if not file.exists() else f"{path} is a folder; give a spreadsheet file")
    if file.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"):
        from fieldkit.spreadsheets import read_workbook

        sheets = read_workbook(file)
        names = {name.lower(): name for name in sheets}
        issues = sheets[names["issues"]] if "issues" in names else next(iter(sheets.values()), [])
        actions = sheets.get(names.get("follow-up actions", ""))
        timeline = sheets.get(names.get("timeline", ""), [])
        return Workbook(issues, actions, len(timeline), file.name)
    beside = file.with_name(f"{file.stem}-actions{file.suffix}")
    actions = read_csv(beside) if beside.is_file() and not file.stem.endswith("-actions") else None
    return Workbook(read_csv(file), actions, 0, file.name)


def read_csv(file: Path) -> list[dict[str, str]]:
    raw = file.read_bytes()
    text = ""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames or not any(h.strip() for h in reader.fieldnames if h):
        raise SpreadsheetError(f"{file} has no header row; the first row must name the columns")
    return [{k: unguard(v) if isinstance(v, str) else "" for k, v in row.items() if k is not None} for row in reader]


# -- columns ------------------------------------------------------------------------


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``--map 'Column=field'`` pairs by header key; ``Column=skip`` leaves a column out."""
    mapping = {}
    for pair in pairs:
        column, sep, name = pair.partition("=")
        name = name.strip().lower().replace(" ", "_").replace("-", "_")
        if not sep or not column.strip() or not name:
            raise SpreadsheetError(f"--map takes COLUMN=FIELD, e.g. 'Problem=title', not '{pair}'")
        if name not in IMPORTABLE and name != SKIP:
            raise SpreadsheetError(f"--map: '{name}' is not a field; fields are: {', '.join(IMPORTABLE)} (or skip)")
        mapping[header_key(column)] = name
    return mapping


def _header_table(words: dict[str, tuple[str, ...]]) -> dict[str, str]:
    table = {}
    for name, synonyms in words.items():
        table[matching.words(name.replace("_", " "))] = name
        for synonym in synonyms:
            table.setdefault(matching.words(synonym), name)
    return table


_ISSUE_HEADERS = _header_table(HEADER_WORDS)
_ACTION_HEADERS = _header_table(ACTION_HEADERS)


@dataclass(slots=True)
class Columns:
    """Which field each column feeds, how it was chosen, and the columns left out."""

    fields: dict[str, str] = field(default_factory=dict)  # header -> field
    how: dict[str, str] = field(default_factory=dict)  # header -> "name", "--map", "the name column"
    unused: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # in the sheet's order

    def column_for(self, name: str) -> str | None:
        return next((h for h, f in self.fields.items() if f == name), None)


def choose_columns(headers: Iterable[str], mapping: dict[str, str], table: dict[str, str] | None = None) -> Columns:
    """Each header to at most one field and each field from at most one column: --map first, then
    names and synonyms left to right, then the name columns exports write beside the codes."""
    table = _ISSUE_HEADERS if table is None else table
    headers = [h for h in headers if h is not None]
    chosen = Columns(headers=headers)
    taken: set[str] = set()
    for header in headers:
        name = mapping.get(header_key(header))
        if name and name != SKIP:
            chosen.fields[header], chosen.how[header] = name, "--map"
            taken.add(name)
    for header in headers:
        key = header_key(header)
        if header in chosen.fields or mapping.get(key) == SKIP:
            continue
        name = table.get(key)
        if name and name not in taken:
            chosen.fields[header], chosen.how[header] = name, "name"
            taken.add(name)
    for header in headers:
        key = header_key(header)
        if header in chosen.fields or mapping.get(key) == SKIP:
            continue
        name = SECONDARY.get(key) if table is _ISSUE_HEADERS else None
        if name and name not in taken:
            chosen.fields[header], chosen.how[header] = name, "name column"
            taken.add(name)
        elif key not in DERIVED and key and table.get(key) is None:
            chosen.unused.append(header)
    return chosen


# -- values -------------------------------------------------------------------------


def parse_needs(text: str) -> list[dict[str, str]] | str:
    """Needs as exports write them, one a line: 'Skills: Operator training (support from Amatola Water)'."""
    needs = []
    for line in re.split(r"[\n;]+", text):
        line = line.strip()
        if not line:
            continue
        support = ""
        found = re.search(r"\s*\(support from ([^)]*)\)\s*$", line)
        if found:
            support, line = found.group(1).strip(), line[: found.start()].strip()
        kind_text, sep, detail = line.partition(":")
        kind = matching.need_kind(kind_text) if sep else None
        if kind is None:
            kind, detail = "other", line
        needs.append({"kind": kind, "detail": detail.strip(), "support_from": support})
    return needs


_LINE_BREAK = re.compile(r"\r\n?")
_ONE_LINE = re.compile(r"[ \t]*[\r\n\t]+[ \t]*")


def _spreadsheet_text(name: str, text: str) -> str:
    """A cell's text with a spreadsheet's line breaks and tabs made plain: kept as line breaks where the
    field holds paragraphs, a space where it holds one line. Other control characters are left for
    validation to refuse."""
    if model.check_field("issue", name, "a\nb") is None:
        return _LINE_BREAK.sub("\n", text)
    return _ONE_LINE.sub(" ", text)


def row_values(row: dict[str, str], columns: Columns) -> tuple[dict[str, Any], dict[str, str]]:
    """Typed field values from one row, and the problems found reading it (by field).

    Words that match nothing are kept as typed, so the model's check names them."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    raw: dict[str, str] = {}
    for column, name in columns.fields.items():
        text = (row.get(column) or "").strip()
        if text:
            raw[name] = text
    for name, text in raw.items():
        if name == "municipality":
            values[name] = matching.municipality_code(text) or text
            if values[name] == text and not refdata.get(text):
                guess = refdata.suggest(text)
                hint = f"did you mean {guess.code} ({guess.current_name})?" if guess else "give its name or MDB code, e.g. Buffalo City or BUF"
                problems[name] = f"Unknown municipality '{text}' — {hint}"
        elif name == "ward":
            values[name] = matching.ward_number(text) or text
        elif name in ("lat", "lon"):
            values[name] = model.parse_float(text)
        elif name == "severity":
            values[name] = matching.severity_code(text) or text
        elif name == "status":
            code = matching.status_code(text)
            if code is None:
                values[name] = text
                problems[name] = (f"Unknown status '{text}' — write one of: {', '.join(model.STATUSES.values())} "
                                  "(or Open, Reported, Done, Fixed, Escalated ...)")
                continue
            values[name] = code
            if matching.words(text) not in (*matching.STATUS_WORDS, matching.words(code), matching.words(model.STATUSES[code])):
                values["status_words"] = text  # 'Escalated to DWS': kept as the note of the change
        elif name == "source":
            values[name] = matching.source_code(text) or text
        elif name == "needs":
            values[name] = parse_needs(text)
        elif name == "contact_phone":
            values[name] = model.normalise_phone(text)
        elif name == "created_at":
            moment = None if any(ord(c) < 32 for c in text) else matching.parse_moment(text)
            if moment is None:
                problems[name] = f"{columns.column_for(name)} '{text}' is not a date; write it as dd/mm/yyyy or yyyy-mm-dd"
            else:
                values[name] = moment
        elif name in ("sector", "category"):
            continue
        else:
            values[name] = _spreadsheet_text(name, text)
    _sector_and_category(raw.get("sector", ""), raw.get("category", ""), values)
    return values, problems


def _sector_and_category(sector_text: str, category_text: str, values: dict[str, Any]) -> None:
    """Sector and category from what the row says; a category column holding 'Water' or 'Refuse'
    gives the sector, and a category that matches nothing is kept as 'other' with its words."""
    sector = matching.sector_code(sector_text) if sector_text else None
    if sector_text and sector is None:
        values["sector"] = sector_text  # refused by the model's check, by name
        return
    if not category_text:
        if sector:
            values["sector"] = sector
        return
    found = matching.category_code(sector, category_text)
    if found:
        values["sector"], values["category"] = found
        return
    as_sector = matching.sector_code(category_text)
    if as_sector and (sector is None or as_sector == sector):
        values["sector"] = as_sector
        return
    values["sector"] = sector or "other"
    values["category"] = "other"
    values["category_text"] = category_text


def _with_category_text(values: dict[str, Any]) -> dict[str, Any]:
    """A free-text category kept at the head of the description, so nothing the clerk wrote is lost."""
    text = values.pop("category_text", None)
    if text and text.strip().lower() != "other":
        line = f"Category as written: {text}"
        description = values.get("description") or ""
        if not description.startswith(line):
            values["description"] = f"{line}\n{description}".strip()
    return values


def action_values(row: dict[str, str], columns: Columns) -> tuple[dict[str, Any], str | None]:
    values: dict[str, Any] = {}
    for column, name in columns.fields.items():
        text = (row.get(column) or "").strip()
        if name == "done":
            if text.lower() in YES:
                values["done"] = True
            elif text.lower() in NO:
                values["done"] = False
            else:
                return values, f"Done '{text}' is not yes or no"
        elif not text:
            continue
        elif name == "due":
            day = matching.parse_date(text)
            if day is None:
                return values, f"Due date '{text}' is not a date; write it as dd/mm/yyyy or yyyy-mm-dd"
            values["due"] = day.isoformat()
        elif name in ("done_at", "created_at"):
            values[name] = matching.parse_moment(text) or text
        else:
            values[name] = text
    return values, None


# -- the plan -----------------------------------------------------------------------

ADD, UPDATE, UNCHANGED, REFUSED = "add", "update", "unchanged", "refused"


@dataclass(slots=True)
class RowPlan:
    """What one spreadsheet row will do."""

    row: int
    outcome: str
    reason: str = ""
    issue_id: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # add: every value; update: the fields that change
    status: str = ""  # update: the new status
    note: str = ""


@dataclass(slots=True)
class ActionPlan:
    row: int
    outcome: str
    reason: str = ""
    action_id: str = ""
    issue_key: str = ""  # the issue's id, or "row:N" for an issue this import adds
    values: dict[str, Any] = field(default_factory=dict)
    done: bool | None = None


@dataclass(slots=True)
class ImportPlan:
    source: str
    columns: Columns
    rows: list[RowPlan] = field(default_factory=list)
    action_columns: Columns | None = None
    actions: list[ActionPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: str, actions: bool = False) -> int:
        return sum(1 for p in (self.actions if actions else self.rows) if p.outcome == outcome)

    @property
    def refused(self) -> list[RowPlan | ActionPlan]:
        return [p for p in self.rows if p.outcome == REFUSED] + [p for p in self.actions if p.outcome == REFUSED]

    @property
    def writes(self) -> int:
        return sum(1 for p in [*self.rows, *self.actions] if p.outcome in (ADD, UPDATE))


def _title_key(municipality: Any, title: Any) -> tuple[str, str]:
    return str(municipality or ""), matching.words(str(title or ""))


class _Existing:
    """The register's issues by id, reference, and municipality and title: read once for the whole file."""

    def __init__(self, register):
        self.documents = register.store.documents("issue")
        self.by_ref: dict[str, str] = {}
        self.by_title: dict[tuple[str, str], list[str]] = {}
        for issue_id, values in self.documents.items():
            if values.get("deleted"):
                continue
            if values.get("ref"):
                self.by_ref[values["ref"].upper()] = issue_id
            self.by_title.setdefault(_title_key(values.get("municipality"), values.get("title")), []).append(issue_id)

    def find(self, values: dict[str, Any]) -> tuple[str | None, str]:
        """The issue a row speaks of (by id, else reference, else municipality and title), or None for a new
        one; and why the row cannot be placed, when it cannot."""
        issue_id = str(values.get("id", "")).strip().lower()
        if issue_id in self.documents:
            if self.documents[issue_id].get("deleted"):
                return None, f"issue {issue_id} was deleted in this register; clear its ID to add it again"
            return issue_id, ""
        ref = str(values.get("ref", "")).strip().upper()
        if ref:
            return self.by_ref.get(ref), ""
        same = self.by_title.get(_title_key(values.get("municipality"), values.get("title")), [])
        if len(same) > 1:
            return None, f"matches {len(same)} issues in {values.get('municipality')} with this title; add a Reference column"
        return (same[0] if same else None), ""


COMPARED = tuple(n for n in IMPORTABLE if n not in ("id", "ref", "status", "note", "created_at", "created_by"))


def plan_import(register, book: Workbook, mapping: dict[str, str], progress: Callable[[int, int], None] | None = None) -> ImportPlan:
    """What importing ``book`` would do to the register, row by row; writes nothing."""
    rows = book.issues
    columns = choose_columns(rows[0].keys() if rows else [], mapping)
    plan = ImportPlan(book.name, columns)
    if not rows:
        plan.notes.append("the file has no rows")
        return plan
    if "title" not in columns.fields.values():
        raise SpreadsheetError("No column gives the title; name one 'Title' or 'Issue', or map it, e.g. --map 'Problem=title'")
    existing = _Existing(register)
    default_note = f"updated from {book.name}"
    seen_in_file: dict[str, int] = {}
    added_ids: dict[str, str] = {}  # id or ref in the file -> "row:N"
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        if progress and number % PROGRESS_EVERY == 0:
            progress(number, len(rows))
        if not any(v.strip() for v in row.values() if isinstance(v, str)):
            continue
        values, problems = row_values(row, columns)
        issue_id, ambiguous = existing.find(values)
        key = issue_id or str(values.get("id") or values.get("ref") or "").strip().upper()
        if key and key in seen_in_file:
            plan.rows.append(RowPlan(number, REFUSED, f"the same issue as row {seen_in_file[key]}"))
            continue
        if ambiguous:
            plan.rows.append(RowPlan(number, REFUSED, ambiguous))
            continue
        if issue_id is None:
            entry = _plan_add(number, values, problems)
            if entry.outcome == ADD:
                for name in ("id", "ref"):
                    if values.get(name):
                        added_ids[str(values[name]).strip().upper()] = f"row:{number}"
        else:
            entry = _plan_update(number, issue_id, existing.documents[issue_id], values, problems, default_note)
        if key:
            seen_in_file[key] = number
        plan.rows.append(entry)
    if columns.unused:
        plan.notes.append(f"columns not imported: {', '.join(columns.unused)} (map one with --map 'Column=field')")
    if book.actions is not None:
        _plan_actions(register, plan, book.actions, existing, added_ids)
    if book.timeline_rows:
        plan.notes.append(f"the Timeline sheet ({book.timeline_rows} rows) is history: read-only, not imported")
    return plan


def _refusal(problems: dict[str, str]) -> str:
    return "; ".join(dict.fromkeys(problems.values()))


def _plan_add(number: int, values: dict[str, Any], problems: dict[str, str]) -> RowPlan:
    values = _with_category_text(dict(values))
    note = values.pop("note", "")
    words = values.pop("status_words", "")
    if words and not note:
        note = f"Status when imported: {words}"
    values.setdefault("severity", "medium")
    values.setdefault("status", "new")
    issue_id = str(values.pop("id", "") or "").strip().lower()
    if issue_id and not is_record_id(issue_id):
        problems = {**problems, "id": f"ID '{issue_id}' is not a fieldkit id; leave the ID column blank for new issues"}
    found = {**model.problems("issue", values), **problems}
    if "sector" in found and not values.get("sector"):
        found["sector"] = "Sector is required: give a Sector column, or a Category such as Water or Refuse"
    if found:
        return RowPlan(number, REFUSED, _refusal(found))
    return RowPlan(number, ADD, issue_id=issue_id, values=values, note=note)


def _plan_update(number: int, issue_id: str, current: dict[str, Any], values: dict[str, Any],
                 problems: dict[str, str], default_note: str) -> RowPlan:
    values = _with_category_text(dict(values))
    words = values.pop("status_words", "")
    if words and not values.get("note"):
        default_note = words
    if problems:
        return RowPlan(number, REFUSED, _refusal(problems), issue_id=issue_id)
    changes = {name: values[name] for name in COMPARED if name in values and values[name] != current.get(name)}
    merged = {k: v for k, v in {**current, **changes}.items() if k in model.FIELDS["issue"] and v not in (None, "")}
    found = model.problems("issue", merged)
    if found:
        return RowPlan(number, REFUSED, _refusal(found), issue_id=issue_id)
    status = values.get("status", current.get("status"))
    note = values.get("note") or default_note
    if status != current.get("status"):
        problem = model.check_transition(current.get("status", "new"), status, note)
        if problem:
            return RowPlan(number, REFUSED, f"status: {problem}", issue_id=issue_id)
    else:
        status = ""
    if not changes and not status:
        return RowPlan(number, UNCHANGED, issue_id=issue_id)
    return RowPlan(number, UPDATE, issue_id=issue_id, values=changes, status=status, note=note)


def _plan_actions(register, plan: ImportPlan, rows: list[dict[str, str]], existing: _Existing, added: dict[str, str]) -> None:
    if not rows:
        return
    columns = choose_columns(rows[0].keys(), {}, _ACTION_HEADERS)
    plan.action_columns = columns
    if "text" not in columns.fields.values():
        plan.notes.append("the Follow-up actions sheet has no Action column; its rows were not read")
        return
    actions = register.store.documents("action")
    for number, row in enumerate(rows, start=2):
        if not any(v.strip() for v in row.values() if isinstance(v, str)):
            continue
        values, problem = action_values(row, columns)
        action_id = str(values.pop("id", "") or "").lower()
        issue_text = str(values.pop("issue_id", "") or "").lower()
        ref = str(values.pop("issue_ref", "") or "").upper()
        issue_key = ""
        if issue_text and issue_text in existing.documents:
            issue_key = issue_text
        elif ref and ref in existing.by_ref:
            issue_key = existing.by_ref[ref]
        else:
            issue_key = added.get(issue_text.upper()) or added.get(ref) or ""
        if problem:
            plan.actions.append(ActionPlan(number, REFUSED, problem))
            continue
        if not issue_key:
            plan.actions.append(ActionPlan(number, REFUSED, f"follow-up action row {number}: its issue "
                                           f"({ref or issue_text or 'no reference'}) is not in the register, or its row was refused"))
            continue
        done = values.pop("done", None)
        current = actions.get(action_id) if action_id else None
        if current is not None and current.get("deleted"):
            plan.actions.append(ActionPlan(number, REFUSED, f"follow-up action row {number}: it was deleted in this register"))
            continue
        if current is not None:
            changes = {k: values[k] for k in ("text", "owner", "due") if k in values and values[k] != current.get(k)}
            done_changes = done is not None and done != bool(current.get("done"))
            outcome = UPDATE if changes or done_changes else UNCHANGED
            plan.actions.append(ActionPlan(number, outcome, action_id=action_id, issue_key=issue_key, values=changes,
                                           done=done if done_changes else None))
            continue
        if action_id and not is_record_id(action_id):
            action_id = ""
        check = model.problems("action", {**{k: v for k, v in values.items()}, "issue_id": "x", **({"done": done} if done is not None else {})})
        if check:
            plan.actions.append(ActionPlan(number, REFUSED, f"follow-up action row {number}: {_refusal(check)}"))
            continue
        plan.actions.append(ActionPlan(number, ADD, action_id=action_id, issue_key=issue_key, values=values, done=done))


# -- writing ------------------------------------------------------------------------


def apply_import(register, plan: ImportPlan, progress: Callable[[int, int], None] | None = None) -> None:
    """Write the plan in one transaction, through Register's methods: all of it is kept, or none."""
    if not plan.writes:
        return
    register.keep_author()
    added: dict[str, str] = {}
    total, done = plan.writes, 0
    with register.store.transaction():
        for entry in plan.rows:
            if entry.outcome == ADD:
                added[f"row:{entry.row}"] = _add(register, entry)
            elif entry.outcome == UPDATE:
                if entry.values:
                    register.edit_issue(entry.issue_id, entry.values)
                if entry.status:
                    register.change_status(entry.issue_id, entry.status, entry.note)
            else:
                continue
            done += 1
            if progress and done % PROGRESS_EVERY == 0:
                progress(done, total)
        for action in plan.actions:
            if action.outcome == ADD:
                issue_id = added.get(action.issue_key, action.issue_key)
                _add_action(register, issue_id, action)
            elif action.outcome == UPDATE:
                if action.values:
                    register.edit_action(action.action_id, action.values)
                if action.done is not None:
                    register.set_action_done(action.action_id, action.done)


def _add(register, entry: RowPlan) -> str:
    values = dict(entry.values)
    at = values.pop("created_at", None)
    by = values.pop("created_by", None)
    if values.get("ref"):  # the reference (and id) the file gives are kept, so the next import finds them
        created = register.restore_record("issue", entry.issue_id or new_id(), {
            **values, "created_at": at or model.now_iso(), "created_by": by or register.author})
    else:
        values.pop("ref", None)
        created = register.create_issue(values, at=at, created_by=by)
    if entry.note:
        register.add_note(created["id"], entry.note)
    return created["id"]


def _add_action(register, issue_id: str, action: ActionPlan) -> None:
    values = action.values
    if action.action_id and values.get("created_at"):
        fields = {**values, "issue_id": issue_id, "done": bool(action.done),
                  "created_by": values.get("created_by") or register.author}
        if not fields["done"]:
            fields.pop("done_at", None)
            fields.pop("done_by", None)
        register.restore_record("action", action.action_id, fields)
        return
    created = register.add_action(issue_id, values["text"], owner=values.get("owner", ""), due=values.get("due"))
    if action.done:
        register.set_action_done(created["id"])


# -- the preview --------------------------------------------------------------------


def describe_plan(plan: ImportPlan, dry_run: bool) -> tuple[list[str], list[str]]:
    """The lines a person reads: the summary (stdout) and the column mapping, refusals and notes (stderr)."""
    columns = plan.columns
    details = ["Columns:"] if columns.headers else []
    for header in columns.headers:
        if header in columns.fields:
            how = " (--map)" if columns.how.get(header) == "--map" else ""
            details.append(f"  {header} -> {columns.fields[header]}{how}")
        elif header in columns.unused:
            details.append(f"  {header} -> not imported")
        else:
            details.append(f"  {header} -> skipped" + (" (--map)" if header_key(header) not in DERIVED else " (fieldkit works it out)"))
    for note in plan.notes:
        details.append(note)
    for entry in plan.refused:
        details.append(f"row {entry.row}: {entry.reason}" if not entry.reason.startswith("follow-up") else entry.reason)
    verbs = ("would add", "would update", "would leave unchanged", "would refuse") if dry_run else ("added", "updated", "unchanged", "refused")
    summary = [
        f"{verbs[0]} {plan.count(ADD)}, {verbs[1]} {plan.count(UPDATE)}, "
        f"{'unchanged' if not dry_run else verbs[2]} {plan.count(UNCHANGED)}, {verbs[3]} {plan.count(REFUSED)} "
        f"issue{'s' if len(plan.rows) != 1 else ''}"
    ]
    if plan.action_columns is not None:
        summary.append(
            f"follow-up actions: {verbs[0]} {plan.count(ADD, True)}, {verbs[1]} {plan.count(UPDATE, True)}, "
            f"{'unchanged' if not dry_run else verbs[2]} {plan.count(UNCHANGED, True)}, {verbs[3]} {plan.count(REFUSED, True)}"
        )
    return summary, details
