"""Excel workbooks in and out: the register as typed sheets people filter and pivot.

Spreadsheets have no time zones, so date-times are written and read as South
African Standard Time (UTC+2, no daylight saving): what a facilitator expects
to see. A cell holding a date alone is read back as a date (midnight in South Africa to the importer); a cell with a
time is read back as an ISO date-time in UTC, the form the register keeps.

Written with xlsxwriter and read with python-calamine (bench/bench_spreadsheets.py measured both
against openpyxl); both are imported inside the functions: ``fieldkit find`` must not pay for them.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from fieldkit import model

SAST = model.SAST

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
#: Cells that need a format to read right. Booleans too: LibreOffice otherwise shows them as 1 and 0.
#: Numbers stay General (Excel shows whole wards and decimal degrees as they are).
NUMBER_FORMATS = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT, "bool": '"TRUE";"TRUE";"FALSE"'}

#: Characters XML 1.0 cannot hold; a pasted control character would make the workbook unreadable.
_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")
_WIDTH_SAMPLE = 500


class SpreadsheetError(ValueError):
    """A file or a column mapping a person can put right; the message says what is wrong and what to do."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its header, the type of its cells, and a width cap in characters."""

    header: str
    kind: str = "text"  # text, int, float, date, datetime, bool
    max_width: int = 40
    note: str = ""


@dataclass(slots=True)
class Sheet:
    title: str
    columns: Sequence[Column]
    rows: list[Sequence[Any]] = field(default_factory=list)


def local_datetime(iso: str | None) -> datetime | None:
    """A stored ISO date-time as a naive SAST date-time for a spreadsheet cell."""
    moment = model.local_time(iso)
    return moment.replace(tzinfo=None) if moment else None


def cell_date(iso: str | None) -> date | None:
    if not iso:
        return None
    try:
        return date.fromisoformat(iso[:10])
    except ValueError:
        return None


def _width(column: Column, rows: list[Sequence[Any]], index: int) -> float:
    longest = len(column.header)
    for row in rows[:_WIDTH_SAMPLE]:
        value = row[index]
        if value is None:
            continue
        if column.kind == "datetime":
            length = 18
        elif column.kind == "date":
            length = 10
        elif column.kind == "float":
            length = 10
        else:
            length = len(str(value))
        longest = max(longest, length)
    return min(longest, column.max_width) + 2


def xlsx_bytes(sheets: Sequence[Sheet], title: str = "", progress: Callable[[int, int], None] | None = None) -> bytes:
    """A workbook of typed sheets, written with xlsxwriter: bold frozen header with notes, autofilter,
    widths fitted to the content, and a print setup that fits the columns to the width of an A4 page
    (landscape, header row repeated on every page). Text is always written as text, never as a formula."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {
        "in_memory": True, "strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
    })
    book.set_properties({"title": title, "author": "fieldkit"} if title else {"author": "fieldkit"})
    header_format = book.add_format({"bold": True, "bg_color": "#DDE5EE", "bottom": 1, "bottom_color": "#7F8C99", "valign": "top"})
    formats = {kind: book.add_format({"num_format": number_format}) for kind, number_format in NUMBER_FORMATS.items()}
    total, written = sum(len(spec.rows) for spec in sheets), 0
    for spec in sheets:
        sheet = book.add_worksheet(spec.title[:31])
        for index, column in enumerate(spec.columns):
            sheet.set_column(index, index, _width(column, spec.rows, index))
            sheet.write_string(0, index, column.header, header_format)
            if column.note:
                sheet.write_comment(0, index, column.note, {"author": "fieldkit"})
        last = max(0, len(spec.columns) - 1)
        sheet.freeze_panes(1, 1)
        sheet.autofilter(0, 0, len(spec.rows), last)
        sheet.repeat_rows(0)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)  # every column on the page's width; as many pages down as it takes
        writers = [_cell_writer(sheet, column.kind, formats) for column in spec.columns]
        for number, row in enumerate(spec.rows, start=1):
            for index, (value, write) in enumerate(zip(row, writers)):
                if value is not None and value != "":
                    write(number, index, value)
            written += 1
            if progress and written % 1000 == 0:
                progress(written, total)
    book.close()
    return buffer.getvalue()


def _cell_writer(sheet: Any, kind: str, formats: dict[str, Any]):
    """The xlsxwriter call for one column's cells: strings as strings, dates as dates, numbers as numbers."""
    if kind in ("date", "datetime"):
        number_format = formats[kind]
        return lambda row, col, value: sheet.write_datetime(row, col, value, number_format)
    if kind == "bool":
        bool_format = formats["bool"]
        return lambda row, col, value: sheet.write_boolean(row, col, value, bool_format)
    if kind in ("int", "float"):
        return lambda row, col, value: sheet.write_number(row, col, value) if isinstance(value, (int, float)) else \
            sheet.write_string(row, col, _ILLEGAL.sub("", str(value)))

    def text(row: int, col: int, value: Any) -> None:
        sheet.write_string(row, col, _ILLEGAL.sub("", value if isinstance(value, str) else str(value)))

    return text


def _text(value: Any) -> str:
    """A cell's value as the text the importer reads: a date-time (South African time in the sheet) as ISO in UTC."""
    if type(value) is str:  # most cells: checked first, as this runs once a cell
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=SAST)
        moment = (moment + timedelta(microseconds=500_000)).replace(microsecond=0)  # serial numbers round to a second
        return moment.astimezone(timezone.utc).isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value).strip()


def read_workbook(path: str | Path) -> dict[str, list[dict[str, str]]]:
    """Every sheet of a workbook (xlsx, xls, ods) as rows of text by header, read with python-calamine.

    Blank rows in the middle are kept, so row numbers match what the person sees; trailing ones are dropped.
    """
    from python_calamine import CalamineError, CalamineWorkbook, PasswordError, XmlError, ZipError

    try:
        book = CalamineWorkbook.from_path(str(path))
        sheets = {name: book.get_sheet_by_name(name).to_python(skip_empty_area=False) for name in book.sheet_names}
    except (CalamineError, PasswordError, XmlError, ZipError, OSError, ValueError) as err:
        raise SpreadsheetError(f"{path} cannot be read as a spreadsheet (.xlsx, .xls or .ods): {err}") from None
    found: dict[str, list[dict[str, str]]] = {}
    for name, cells in sheets.items():
        if not cells or not any(_text(v) for v in cells[0]):
            if not found and name == next(iter(sheets)):
                raise SpreadsheetError(f"{path} has no header row on sheet '{name}'; the first row must name the columns")
            continue
        headers = [_text(h) or f"Column {n}" for n, h in enumerate(cells[0], start=1)]
        rows = []
        width = len(headers)
        for values in cells[1:]:
            texts = [v.strip() if type(v) is str else _text(v) for v in values]
            if len(texts) < width:
                texts += [""] * (width - len(texts))
            rows.append(dict(zip(headers, texts)))
        while rows and not any(rows[-1].values()):
            rows.pop()
        found[name] = rows
    return found
