"""Exports read back with real readers: python-calamine (values) and openpyxl (formatting) for XLSX, csv for CSV,
the GeoJSON rules of RFC 7946; and the round trip."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook

from conftest import run_fieldkit
from fieldkit import exports
from fieldkit.filters import IssueFilter
from fieldkit.ids import new_id
from fieldkit.register import Register
from fieldkit.spreadsheets import read_workbook


@pytest.fixture
def small(register):
    """Three issues with every kind of value an export must type, and follow-up actions."""
    a = register.create_issue({
        "municipality": "EC121", "ward": 12, "sector": "water", "category": "burst_main", "title": "Burst bulk main on the R61",
        "description": "Water running for 3 days.", "severity": "critical",
        "responsible": "Amatola Water", "lat": -32.03, "lon": 28.9, "address": "R61 near Dutywa",
        "contact_name": "Nomsa Khumalo", "contact_phone": "082 123 4567",
        "needs": [{"kind": "skills", "detail": "Process controller training", "support_from": "Water Board"}],
    }, at="2026-03-01T22:30:00+00:00")
    # A control character the laptop now refuses, pulled from a store that took it before it did.
    register.apply_remote([{
        "op_id": new_id(), "type": "issue", "id": a["id"], "device": "olderlaptop", "author": "someone",
        "hlc": f"{int(time.time() * 1000) + 1:016d}:0000:olderlaptop",
        "fields": {"description": "Water running for 3 days.\x0b A valve chamber is flooded."}, "seen": {},
    }])
    register.change_status(a["id"], "in_progress")
    register.add_action(a["id"], "Get a written repair plan", owner="Technical Services manager", due="2000-01-31")
    done = register.add_action(a["id"], "Confirm budget", owner="CFO", due="2099-12-31")
    register.set_action_done(done["id"])
    register.create_issue({"municipality": "BUF", "sector": "roads", "title": "=HYPERLINK(\"http://x\",\"potholes\")", "severity": "low"})
    register.create_issue({"municipality": "DC12", "sector": "housing", "title": "Cracks in subsidised houses", "ward": 3,
                           "source": "imbizo", "commitment": "The MEC committed to send a technical team."})
    return register


def _book(register, personal=False):
    return load_workbook(io.BytesIO(exports.xlsx_export(register, IssueFilter(sort="created", descending=False), personal)))


def test_xlsx_has_typed_cells_a_frozen_filtered_header_and_an_actions_sheet(small):
    book = _book(small)
    assert book.sheetnames == ["Issues", "Follow-up actions", "Timeline"]
    issues = book["Issues"]
    headers = [c.value for c in issues[1]]
    assert headers[:5] == ["Reference", "Municipality", "Municipality name", "Province", "Ward"]
    assert "Contact name" not in headers and "Contact phone" not in headers
    assert issues.freeze_panes == "B2" and issues.auto_filter.ref == f"A1:{issues.cell(1, len(headers)).column_letter}4"
    assert all(c.font.b for c in issues[1])
    row = {h: c for h, c in zip(headers, issues[2])}
    assert row["Ward"].value == 12 and row["Ward"].data_type == "n" and isinstance(row["Ward"].value, int)
    assert row["Latitude"].value == pytest.approx(-32.03) and row["Longitude"].value == pytest.approx(28.9)
    # 22:30 UTC is half past midnight the next day in South Africa; the cell is a date-time, not text.
    assert row["Created at (SAST, UTC+2)"].value == datetime(2026, 3, 2, 0, 30) and row["Created at (SAST, UTC+2)"].is_date
    assert row["Sector"].value == "Water" and row["Category"].value == "Burst or leaking pipe"
    assert row["Status"].value == "In progress" and row["Severity"].value == "Critical"
    assert row["WSA"].value == "DC12 Amathole" and row["District"].value == "DC12 Amathole"
    assert row["Needs"].value == "Skills: Process controller training (support from Water Board)"
    assert row["Needs support from"].value == "Water Board"
    assert "\x0b" not in row["Description"].value
    formula_like = {h: c for h, c in zip(headers, issues[3])}["Title"]
    assert formula_like.data_type == "s" and formula_like.value.startswith("=HYPERLINK")
    widths = {issues.cell(1, i + 1).column_letter: issues.column_dimensions[issues.cell(1, i + 1).column_letter].width for i in range(len(headers))}
    assert all(4 < w <= 62 for w in widths.values())

    actions = book["Follow-up actions"]
    action_headers = [c.value for c in actions[1]]
    assert action_headers[:8] == ["Issue reference", "Municipality", "Issue", "Action", "Owner", "Due", "Done", "Overdue"]
    first = {h: c.value for h, c in zip(action_headers, actions[2])}
    assert first["Due"] == datetime(2000, 1, 31) and actions.cell(2, 6).number_format == "yyyy-mm-dd"
    assert first["Done"] is False and first["Overdue"] is True and first["Owner"] == "Technical Services manager"
    second = {h: c.value for h, c in zip(action_headers, actions[3])}
    assert second["Done"] is True and second["Overdue"] is False and isinstance(second["Done at (SAST, UTC+2)"], datetime)
    assert actions.max_row == 3 and actions.freeze_panes == "B2"


def test_xlsx_prints_every_column_on_the_width_of_an_a4_page(small):
    """Read from the workbook's own XML (what Excel and LibreOffice obey): fit to one page wide, any number of
    pages tall, landscape A4, the header row repeated on every page; and formula-like text stays text."""
    import zipfile
    import xml.etree.ElementTree as ET

    from python_calamine import CalamineWorkbook

    payload = exports.xlsx_export(small, IssueFilter(sort="created", descending=False), personal=False)
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        for name in ("xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml", "xl/worksheets/sheet3.xml"):
            sheet = ET.fromstring(archive.read(name))
            assert sheet.find("m:sheetPr/m:pageSetUpPr", ns).get("fitToPage") == "1", name
            setup = sheet.find("m:pageSetup", ns)
            assert setup.get("fitToWidth", "1") == "1" and setup.get("fitToHeight") == "0", name
            assert setup.get("orientation") == "landscape" and setup.get("paperSize") == "9", name
            assert sheet.find("m:autoFilter", ns) is not None and sheet.find("m:sheetViews/m:sheetView/m:pane", ns).get("state") == "frozen"
            assert "<f>" not in archive.read(name).decode()  # not one formula anywhere
        names = ET.fromstring(archive.read("xl/workbook.xml")).findall("m:definedNames/m:definedName", ns)
        assert sorted(n.text for n in names if n.get("name") == "_xlnm.Print_Titles") == ["'Follow-up actions'!$1:$1", "Issues!$1:$1", "Timeline!$1:$1"]
    path = small.store.home / "book.xlsx"
    path.write_bytes(payload)
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Issues").to_python()
    titles = [row[rows[0].index("Title")] for row in rows]
    assert '=HYPERLINK("http://x","potholes")' in titles


def test_xlsx_personal_columns_only_when_asked(small):
    headers = [c.value for c in _book(small, personal=True)["Issues"][1]]
    assert headers[-2:] == ["Contact name", "Contact phone"]


def test_read_workbook_reads_what_people_type(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "Register"
    sheet.append(["Title", "Municipality", "Ward", "Date", "Captured at", "Sector"])
    sheet.append(["Pump stolen", "ec121", 7.0, date(2026, 3, 1), datetime(2026, 3, 2, 0, 30), "Water"])
    sheet["E2"].number_format = "yyyy-mm-dd hh:mm"
    sheet.append([None] * 6)
    sheet.append(["Streetlight out", "BUF", None, None, None, "Electricity"])
    sheet.append([None] * 6)
    path = tmp_path / "sheet.xlsx"
    book.save(path)
    rows = read_workbook(path)["Register"]
    assert len(rows) == 3  # the blank row in the middle is kept (row numbers match), the trailing one dropped
    assert rows[0] == {"Title": "Pump stolen", "Municipality": "ec121", "Ward": "7", "Date": "2026-03-01",
                       "Captured at": "2026-03-01T22:30:00+00:00", "Sector": "Water"}
    assert rows[2]["Ward"] == ""


def test_csv_keeps_its_columns_and_writes_actions_beside(fieldkit, tmp_path):
    home = tmp_path / "fieldkit-home"
    with Register.open(home, author="T") as register:
        issue = register.create_issue({"municipality": "EC121", "sector": "water", "title": "No water", "contact_name": "Nomsa Khumalo"})
        register.add_action(issue["id"], "Follow up", owner="PMU manager", due="2026-01-31")
    out = tmp_path / "register.csv"
    result = fieldkit("export", "-o", str(out))
    assert result.returncode == 0 and "register-actions.csv" in result.stderr
    with out.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[: len(exports.ISSUE_COLUMNS)] == [exports.header_of(n, h) for n, h in exports.ISSUE_COLUMNS]
    assert rows[0]["Title"] == "No water" and "Nomsa" not in out.read_text(encoding="utf-8")
    with (tmp_path / "register-actions.csv").open(encoding="utf-8-sig", newline="") as handle:
        [action] = list(csv.DictReader(handle))
    assert (action["Action"], action["Owner"], action["Due"], action["Done"]) == ("Follow up", "PMU manager", "2026-01-31", "no")


LOCAL_FIELDS = ("updated_at", "updated_by", "conflicts")  # the register derives them from the operations on this laptop


def _everything(home) -> tuple[dict, dict]:
    """Every issue and every follow-up action with every field the register keeps, by id."""
    with Register.open(home) as register:
        issues = {i: {k: v for k, v in d.items() if k not in LOCAL_FIELDS} for i, d in register.store.documents("issue").items()}
        actions = {i: {k: v for k, v in d.items() if k not in LOCAL_FIELDS} for i, d in register.store.documents("action").items()}
    return issues, actions


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_a_register_goes_out_and_comes_back_whole(fieldkit, home, tmp_path, suffix):
    """Export a demo register; import it into an empty store (everything equal, ids and references kept)
    and into the same store (nothing changes, not one operation queued)."""
    assert fieldkit("demo", "--issues", "60").returncode == 0
    out = tmp_path / f"register.{suffix}"
    assert fieldkit("export", "--format", suffix, "--personal", "-o", str(out)).returncode == 0
    issues, actions = _everything(home)
    assert sum(1 for i in issues.values() if i.get("needs")) > 5 and len(actions) > 10

    other = tmp_path / "other-home"
    result = run_fieldkit(other, "import", str(out))
    assert result.returncode == 0 and "added 60, updated 0, unchanged 0, refused 0 issues" in result.stdout, result.stderr
    assert f"follow-up actions: added {len(actions)}, updated 0, unchanged 0, refused 0" in result.stdout
    if suffix == "xlsx":
        assert "the Timeline sheet" in result.stderr and "read-only" in result.stderr
    assert _everything(other) == (issues, actions)

    with Register.open(home) as register:
        waiting = register.waiting_count()
    again = fieldkit("import", str(out))
    assert "added 0, updated 0, unchanged 60, refused 0 issues" in again.stdout, again.stderr
    assert f"follow-up actions: added 0, updated 0, unchanged {len(actions)}, refused 0" in again.stdout
    with Register.open(home) as register:
        assert register.waiting_count() == waiting
    assert _everything(home) == (issues, actions)


def test_xlsx_timeline_sheet_holds_notes_and_status_history(small):
    from python_calamine import CalamineWorkbook

    burst = next(r for r in small.find() if r.title.startswith("Burst bulk main"))
    small.add_note(burst.id, "Met the *contractor* on site")
    payload = exports.xlsx_export(small, IssueFilter(sort="created", descending=False), personal=False)
    path = small.store.home / "book.xlsx"
    path.write_bytes(payload)
    timeline = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Timeline").to_python()
    assert timeline[0][:5] == ["Issue reference", "At (SAST, UTC+2)", "What", "Who", "Text"]
    rows = [r for r in timeline[1:] if r[0] == burst.ref]
    assert [r[2] for r in rows] == ["Captured", "Status", "Note"]
    assert rows[2][4] == "Met the *contractor* on site"
    assert rows[1][4] == "New -> In progress" and rows[1][3] == "Thandi Mokoena"
    assert rows[0][1] == datetime(2026, 3, 2, 0, 30)  # South African time, a typed date-time


def test_csv_is_safe_in_a_spreadsheet_readable_in_excel_and_in_the_same_time_zone_as_xlsx(register, fieldkit, tmp_path):
    hostile = ['=HYPERLINK("http://evil.example","click")', "+27 call me", "-2+3", "@SUM(A1:A9)", "\tTabbed", "Thabazimbi – ward 3"]
    for title in hostile:
        issue = register.create_issue({"municipality": "LIM361", "sector": "water", "title": title.strip()}, at="2026-03-01T22:30:00+00:00")
        if title != title.strip():  # a tab the laptop now refuses, pulled from a store that took it before it did
            register.apply_remote([{
                "op_id": new_id(), "type": "issue", "id": issue["id"], "device": "olderlaptop", "author": "someone",
                "hlc": f"{int(time.time() * 1000) + 1:016d}:0000:olderlaptop", "fields": {"title": title}, "seen": {},
            }])
    register.add_action(issue["id"], "=1+1 budget", owner="@finance")
    register.close()
    out = tmp_path / "register.csv"
    assert fieldkit("export", "-o", str(out)).returncode == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark: Excel on Windows reads the dash as written
    assert "Thabazimbi – ward 3".encode("utf-8") in raw
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (tmp_path / "register-actions.csv").open(encoding="utf-8-sig", newline="") as handle:
        action_rows = list(csv.DictReader(handle))
    cells = [v for row in rows + action_rows for v in row.values() if v]
    dangerous = [v for v in cells if v[0] in "=+-@\t\r"]
    assert dangerous == [], dangerous  # OWASP: no cell a spreadsheet could take for a formula
    assert sorted(r["Title"] for r in rows) == sorted("'" + t if t[0] in "=+-@\t" else t for t in hostile)
    assert (action_rows[0]["Action"], action_rows[0]["Owner"]) == ("'=1+1 budget", "'@finance")
    # one time zone in both formats, and the header says which
    assert {r["Created at (SAST, UTC+2)"] for r in rows} == {"2026-03-02 00:30:00"}
    book = tmp_path / "register.xlsx"
    assert fieldkit("export", "--format", "xlsx", "-o", str(book)).returncode == 0
    sheets = read_workbook(book)
    assert {r["Created at (SAST, UTC+2)"] for r in sheets["Issues"]} == {"2026-03-01T22:30:00+00:00"}
    assert fieldkit("export", "--no-bom", "-o", str(out)).returncode == 0 and not out.read_bytes().startswith(b"\xef")
    # and the guard comes off again on the way back in
    other = tmp_path / "other-home"
    assert "added 6" in run_fieldkit(other, "import", str(out)).stdout
    with Register.open(other) as copy:
        assert sorted(copy.issue_values(r.id)["title"] for r in copy.find()) == sorted(t.strip() for t in hostile)  # cells are trimmed


def test_geojson_follows_rfc_7946_and_keeps_issues_without_coordinates(small, capsys, tmp_path):
    out = tmp_path / "issues.geojson"
    exports.export_geojson(small, IssueFilter(), str(out), personal=False)
    assert capsys.readouterr().err == ""
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection" and "crs" not in document
    features = document["features"]
    assert len(features) == 3  # every issue counts; two have "geometry": null (RFC 7946 section 3.2)
    located = [f for f in features if f["geometry"] is not None]
    assert len(located) == 1 and sum(1 for f in features if "geometry" in f and f["geometry"] is None) == 2
    for feature in features:
        assert feature["type"] == "Feature" and isinstance(feature["id"], str)
        assert set(feature["properties"]) == set(exports.GEOJSON_PROPERTIES)
        assert "contact_name" not in feature["properties"]
    [feature] = located
    geometry = feature["geometry"]
    assert geometry["type"] == "Point" and len(geometry["coordinates"]) == 2
    assert tuple(geometry["coordinates"]) == (28.9, -32.03)
    properties = feature["properties"]
    assert not [k for k, v in properties.items() if isinstance(v, (dict, list))]
    assert properties["ward"] == 12 and properties["is_open"] is True
    assert (properties["open_actions"], properties["overdue_actions"]) == (1, 1)
    assert document["bbox"] == [28.9, -32.03, 28.9, -32.03]
    by_municipality = sorted(f["properties"]["municipality"] for f in features)
    assert by_municipality == ["BUF", "DC12", "EC121"]

    points = tmp_path / "points.geojson"
    exports.export_geojson(small, IssueFilter(), str(points), personal=False, points_only=True)
    assert "2 issues without coordinates left out" in capsys.readouterr().err
    assert len(json.loads(points.read_text(encoding="utf-8"))["features"]) == 1


def test_geojson_properties_are_typed_the_same_in_every_feature(fieldkit, tmp_path):
    assert fieldkit("demo", "--issues", "40").returncode == 0
    out = tmp_path / "issues.geojson"
    assert fieldkit("export", "--format", "geojson", "--personal", "-o", str(out)).returncode == 0
    features = json.loads(out.read_text(encoding="utf-8"))["features"]
    assert features
    types: dict[str, set[str]] = {}
    for feature in features:
        assert set(feature["properties"]) == set(features[0]["properties"])
        for name, value in feature["properties"].items():
            if value is not None:
                types.setdefault(name, set()).add(type(value).__name__)
    assert all(len(kinds) == 1 for kinds in types.values()), types
    assert types["ward"] == {"int"} and types["open_actions"] == {"int"} and types["is_open"] == {"bool"}
    assert "contact_name" in features[0]["properties"]


@pytest.mark.parametrize("args, message", [
    (["--format", "xlsx"], "give one with -o"),
    (["--format", "xlsx", "-o", "/no/such/folder/x.xlsx"], "no such file"),
    (["--format", "open311", "--personal"], "never carry personal information"),
    (["--format", "pdf"], "invalid choice"),
])
def test_export_errors_are_one_line(fieldkit, args, message):
    result = fieldkit("export", *args)
    assert result.returncode in (1, 2) and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_import_refuses_a_file_that_is_not_a_workbook(fieldkit, tmp_path):
    fake = tmp_path / "register.xlsx"
    fake.write_text("Title,Municipality\nNo water,EC121\n", encoding="utf-8")
    result = fieldkit("import", str(fake))
    assert result.returncode == 1 and "cannot be read as a spreadsheet" in result.stderr
    assert "Traceback" not in result.stderr


def test_exports_and_report_commands_load_no_spreadsheet_library():
    """`fieldkit find` imports the command modules: spreadsheet libraries wait until an XLSX is asked for."""
    code = ("import sys, fieldkit.exports, fieldkit.imports, fieldkit.commands.reports, fieldkit.cli; fieldkit.cli.build_parser(); "
            "print(any(m in sys.modules for m in ('openpyxl', 'xlsxwriter', 'python_calamine', 'rich')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
