"""Spreadsheets in and out (issue 10): xlsxwriter and python-calamine beside openpyxl, and the import itself.

For each size (10,000 and 100,000 issues by default) the same register is written and read:

- export CSV: ``exports.csv_text`` of the issues and their follow-up actions, UTF-8 with a BOM;
- export XLSX: the same Issues, Follow-up actions and Timeline sheets (typed cells, frozen header,
  filters, notes, print setup) written by xlsxwriter (fieldkit now) and by the openpyxl writer
  fieldkit used before (kept here, verbatim, as the baseline);
- read XLSX: every sheet as text by header with python-calamine (fieldkit now) and with openpyxl's
  read-only mode (before);
- read CSV;
- import, plan: every row matched and checked against the register (``imports.plan_import``) —
  the work of ``--dry-run``;
- import, write: the plan written through Register into an empty store (``--apply-sizes``, default
  10,000 only: at 100,000 the store's own per-operation cost dominates; see the README).

The register is built in memory from ``fieldkit.demo``'s generator (no store needed to export), so a
run of both sizes takes a few minutes. Run from the repository root:

    python bench/bench_spreadsheets.py                 # 10,000 and 100,000
    python bench/bench_spreadsheets.py --sizes 2000    # a smoke run
"""

from __future__ import annotations

import argparse
import gc
import io
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_bytes, fmt_seconds, machine_info, markdown_table, print_machine, timed_cpu  # noqa: E402

from fieldkit import demo, exports, ids, model, refdata  # noqa: E402
from fieldkit.spreadsheets import NUMBER_FORMATS, Sheet, _ILLEGAL, _width, read_workbook, xlsx_bytes  # noqa: E402


# -- the register, in memory ------------------------------------------------------------


def register_records(size: int, seed: int = 2026) -> tuple[list[dict], list[dict], list[dict]]:
    """Issues (with the derived columns exports add), follow-up actions and timeline rows, as an export sees them."""
    rng = random.Random(seed)
    pool = [m for m in refdata.municipalities().values() if m.category != "C"]
    now = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    issues, actions, timeline = [], [], []
    device = ids.new_device_id()
    for n in range(size):
        values = demo.demo_issue(rng, pool)
        created = (now - timedelta(days=rng.uniform(1, 180))).replace(microsecond=0).isoformat()
        issue_id = ids.new_id()
        values.update(id=issue_id, ref=ids.issue_ref(values["municipality"], 2026, device, n + 1), created_at=created,
                      created_by="Thandi Mokoena", updated_at=created, updated_by="Thandi Mokoena",
                      status=rng.choice(list(model.STATUSES)))
        record = exports.issue_record(values)
        issues.append(record)
        timeline.append({"issue_ref": values["ref"], "issue_id": issue_id, "id": issue_id, "at": created,
                         "kind": "Captured", "author": "Thandi Mokoena", "text": values["title"]})
        for _ in range(rng.choice((0, 1, 2))):
            timeline.append({"issue_ref": values["ref"], "issue_id": issue_id, "id": ids.new_id(), "at": created,
                             "kind": "Status", "author": "Sipho Dlamini", "text": "New -> Acknowledged"})
        if rng.random() < 0.6:
            actions.append({"issue_ref": values["ref"], "municipality": values["municipality"], "issue_title": values["title"],
                            "text": "Get a written repair plan with dates", "owner": "Technical Services manager",
                            "due": "2026-12-15", "done": False, "overdue": False, "created_at": created,
                            "created_by": "Thandi Mokoena", "issue_id": issue_id, "id": ids.new_id(shard=issue_id[-1])})
    return issues, actions, timeline


def sheets_of(issues: list[dict], actions: list[dict], timeline: list[dict]) -> list[Sheet]:
    return [
        exports._sheet("Issues", exports.issue_columns(False), issues, labelled=True),
        exports._sheet("Follow-up actions", exports.ACTION_COLUMNS, actions, labelled=False),
        exports._sheet("Timeline", exports.TIMELINE_COLUMNS, timeline, labelled=False),
    ]


# -- the baseline: fieldkit's openpyxl writer and reader before issue 10 -----------------------


def openpyxl_xlsx_bytes(sheets: Sequence[Sheet], title: str = "") -> bytes:
    """The writer fieldkit used before (openpyxl write-only mode), with the same print setup added."""
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
        sheet.page_setup.paperSize = "9"
        sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
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
                        cell.data_type = "s"
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


def openpyxl_read(path: Path) -> dict[str, list[dict[str, str]]]:
    """Every sheet as text by header with openpyxl's read-only mode, as fieldkit read them before."""
    from fieldkit.spreadsheets import _text
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    found = {}
    try:
        for sheet in book.worksheets:
            rows = sheet.iter_rows(values_only=True)
            headers = [_text(v) for v in next(rows)]
            found[sheet.title] = [dict(zip(headers, (_text(v) for v in values))) for values in rows]
    finally:
        book.close()
    return found


# -- the run ------------------------------------------------------------------------------


def measure(size: int, apply: bool, folder: Path) -> list[list[str]]:
    from fieldkit import imports
    from fieldkit.register import Register

    issues, actions, timeline = register_records(size)
    rows: list[list[str]] = []

    def row(step: str, new: tuple[float, float], old: tuple[float, float] | None = None, note: str = "") -> None:
        cell = lambda t: f"{fmt_seconds(t[0])} ({fmt_seconds(t[1])} CPU)"  # noqa: E731
        rows.append([f"{size:,}", step, cell(new), cell(old) if old else "–",
                     f"{old[0] / new[0]:.1f}×" if old else "", note])
        print(f"  {size:,} {step}: {cell(new)}" + (f" vs {cell(old)}" if old else ""), flush=True)

    gc.collect()
    wall, cpu, csv_text = timed_cpu(lambda: exports.csv_bytes(exports.csv_text(issues, exports.issue_columns(False)))
                                    + exports.csv_bytes(exports.csv_text(actions, exports.ACTION_COLUMNS)))
    csv_path = folder / f"register-{size}.csv"
    csv_path.write_bytes(exports.csv_bytes(exports.csv_text(issues, exports.issue_columns(False))))
    (folder / f"register-{size}-actions.csv").write_bytes(exports.csv_bytes(exports.csv_text(actions, exports.ACTION_COLUMNS)))
    row("export CSV (issues + actions)", (wall, cpu), note=fmt_bytes(len(csv_text)))

    sheets = sheets_of(issues, actions, timeline)
    gc.collect()
    new = timed_cpu(lambda: xlsx_bytes(sheets, "fieldkit issue register"))
    gc.collect()
    old = timed_cpu(lambda: openpyxl_xlsx_bytes(sheets, "fieldkit issue register"))
    xlsx_path = folder / f"register-{size}.xlsx"
    xlsx_path.write_bytes(new[2])
    row("export XLSX: xlsxwriter vs openpyxl", new[:2], old[:2], f"{fmt_bytes(len(new[2]))} vs {fmt_bytes(len(old[2]))}")
    del old

    gc.collect()
    new = timed_cpu(lambda: read_workbook(xlsx_path))
    gc.collect()
    old = timed_cpu(lambda: openpyxl_read(xlsx_path))
    assert len(new[2]["Issues"]) == len(old[2]["Issues"]) == size
    row("read XLSX: python-calamine vs openpyxl read-only", new[:2], old[:2])
    gc.collect()
    read_csv = timed_cpu(lambda: imports.read_file(str(csv_path)))
    row("read CSV (issues + actions)", read_csv[:2])

    for label, path in (("CSV", csv_path), ("XLSX", xlsx_path)):
        book = imports.read_file(str(path))
        with tempfile.TemporaryDirectory(dir=folder) as home, Register.open(home, author="bench") as register:
            gc.collect()
            wall, cpu, plan = timed_cpu(lambda: imports.plan_import(register, book, {}))
            assert plan.count(imports.ADD) == size, plan.refused[:3]
            row(f"import {label}, plan (--dry-run)", (wall, cpu), note=f"{plan.writes:,} writes planned")
            if apply:
                gc.collect()
                wall, cpu, _ = timed_cpu(lambda: imports.apply_import(register, plan))
                row(f"import {label}, write into an empty store", (wall, cpu), note=f"{wall / plan.writes * 1e6:.0f} µs a record")
                replan = timed_cpu(lambda: imports.plan_import(register, book, {}))
                assert replan[2].count(imports.UNCHANGED) == size
                row(f"import {label} again: every row unchanged", replan[:2])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--apply-sizes", default="10000", help="sizes at which the import is also written (comma list)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    apply_sizes = {int(s) for s in args.apply_sizes.split(",") if s}
    print_machine(machine_info(["xlsxwriter", "python-calamine", "openpyxl"]))
    table: list[list[str]] = []
    with tempfile.TemporaryDirectory(prefix="fieldkit-sheets-") as folder:
        for size in sizes:
            table += measure(size, size in apply_sizes, Path(folder))
    print()
    print(markdown_table(["issues", "step", "fieldkit now", "before (openpyxl)", "speed-up", "note"], table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
