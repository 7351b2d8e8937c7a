"""Excel workbooks in and out: the register as typed sheets people filter and pivot.

Spreadsheets have no time zones, so date-times are written and read as South
African Standard Time (UTC+2, no daylight saving): what a facilitator expects
to see. A cell formatted as a date alone is read back as a date; a cell with a
time is read back as an ISO date-time in UTC, the form the register keeps.

openpyxl is imported inside the functions: ``fieldkit find`` must not pay for it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from fieldkit import model

SAST = model.SAST

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
#: Cells that need a format to read right. Booleans too: LibreOffice otherwise shows them as 1 and 0.
#: Numbers stay General: a styled cell costs openpyxl about three times a plain one.
NUMBER_FORMATS = {"date": DATE_FORMAT, "datetime": DATETIME_FORMAT, "bool": '"TRUE";"TRUE";"FALSE"'}

#: Characters XML 1.0 cannot hold; a pasted control character would make the workbook unreadable.
_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")
_WIDTH_SAMPLE = 500


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


def xlsx_bytes(sheets: Sequence[Sheet], title: str = "") -> bytes:
    """A workbook of typed sheets: bold frozen header, autofilter, widths fitted to the content."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    book.properties.creator = "fieldkit"
    book.properties.title = title or None
    header_font = Font(name="Calibri", size=11, bold=True)
    header_fill = PatternFill("solid", fgColor="DDE5EE")
    header_border = Border(bottom=Side(style="thin", color="7F8C99"))
    header_alignment = Alignment(vertical="top")
    for spec in sheets:
        sheet = book.create_sheet(spec.title[:31])
        for index, column in enumerate(spec.columns, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = _width(column, spec.rows, index - 1)
        last = get_column_letter(max(1, len(spec.columns)))
        sheet.freeze_panes = "B2"
        sheet.auto_filter.ref = f"A1:{last}{len(spec.rows) + 1}"
        sheet.print_title_rows = "1:1"
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = "9"  # A4
        header = []
        for column in spec.columns:
            cell = WriteOnlyCell(sheet, value=column.header)
            cell.font, cell.fill, cell.border, cell.alignment = header_font, header_fill, header_border, header_alignment
            if column.note:
                cell.comment = Comment(column.note, "fieldkit")
            header.append(cell)
        sheet.append(header)
        formats = [NUMBER_FORMATS.get(column.kind) for column in spec.columns]
        for row in spec.rows:
            cells: list[Any] = []
            for value, number_format in zip(row, formats):
                if isinstance(value, str):
                    value = _ILLEGAL.sub("", value)
                    if value.startswith("="):
                        cell = WriteOnlyCell(sheet, value=value)
                        cell.data_type = "s"  # text that starts with '=' stays text, never a formula
                        value = cell
                elif number_format and value is not None:
                    cell = WriteOnlyCell(sheet, value=value)
                    cell.number_format = number_format
                    value = cell
                cells.append(value)
            sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _text(value: Any) -> str:
    """A cell's value as the text the importer reads: a date-time (South African time in the sheet) as ISO in UTC."""
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

    from fieldkit.cli import CommandError

    try:
        book = CalamineWorkbook.from_path(str(path))
        sheets = {name: book.get_sheet_by_name(name).to_python(skip_empty_area=False) for name in book.sheet_names}
    except (CalamineError, PasswordError, XmlError, ZipError, OSError, ValueError) as err:
        raise CommandError(f"{path} cannot be read as a spreadsheet (.xlsx, .xls or .ods): {err}") from None
    found: dict[str, list[dict[str, str]]] = {}
    for name, cells in sheets.items():
        if not cells or not any(_text(v) for v in cells[0]):
            if not found and name == next(iter(sheets)):
                raise CommandError(f"{path} has no header row on sheet '{name}'; the first row must name the columns")
            continue
        headers = [_text(h) or f"Column {n}" for n, h in enumerate(cells[0], start=1)]
        rows = []
        for values in cells[1:]:
            texts = [_text(v) for v in values]
            texts += [""] * (len(headers) - len(texts))
            rows.append(dict(zip(headers, texts)))
        while rows and not any(rows[-1].values()):
            rows.pop()
        found[name] = rows
    return found
