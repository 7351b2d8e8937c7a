"""Exports read back with real readers: openpyxl for XLSX, csv for CSV, the GeoJSON rules of RFC 7946; and the round trip."""

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
from fieldkit import exports, model
from fieldkit.filters import IssueFilter
from fieldkit.ids import new_id
from fieldkit.register import Register
from fieldkit.spreadsheets import read_xlsx_rows


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
    assert book.sheetnames == ["Issues", "Follow-up actions"]
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
    assert row["Created at"].value == datetime(2026, 3, 2, 0, 30) and row["Created at"].is_date
    assert row["Sector"].value == "Water" and row["Category"].value == "Burst or leaking pipe"
    assert row["Status"].value == "In progress" and row["Severity"].value == "Critical"
    assert row["WSA"].value == "DC12 Amathole" and row["District"].value == "DC12 Amathole"
    assert row["Needs"].value == "Skills: Process controller training" and row["Needs support from"].value == "Water Board"
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
    assert second["Done"] is True and second["Overdue"] is False and isinstance(second["Done at"], datetime)
    assert actions.max_row == 3 and actions.freeze_panes == "B2"


def test_xlsx_personal_columns_only_when_asked(small):
    headers = [c.value for c in _book(small, personal=True)["Issues"][1]]
    assert headers[-2:] == ["Contact name", "Contact phone"]


def test_read_xlsx_rows_reads_what_people_type(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Title", "Municipality", "Ward", "Date", "Captured at", "Sector"])
    sheet.append(["Pump stolen", "ec121", 7.0, date(2026, 3, 1), datetime(2026, 3, 2, 0, 30), "Water"])
    sheet["E2"].number_format = "yyyy-mm-dd hh:mm"
    sheet.append([None] * 6)
    sheet.append(["Streetlight out", "BUF", None, None, None, "Electricity"])
    sheet.append([None] * 6)
    path = tmp_path / "sheet.xlsx"
    book.save(path)
    rows = read_xlsx_rows(path)
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
    with out.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[: len(exports.ISSUE_COLUMNS)] == [h for _, h in exports.ISSUE_COLUMNS]
    assert rows[0]["Title"] == "No water" and "Nomsa" not in out.read_text(encoding="utf-8")
    with (tmp_path / "register-actions.csv").open(encoding="utf-8", newline="") as handle:
        [action] = list(csv.DictReader(handle))
    assert (action["Action"], action["Owner"], action["Due"], action["Done"]) == ("Follow up", "PMU manager", "2026-01-31", "no")


ROUND_TRIP_FIELDS = (
    "municipality", "ward", "sector", "category", "title", "description", "severity", "status", "responsible",
    "source", "source_detail", "commitment", "address", "lat", "lon", "contact_name", "contact_phone", "created_at", "created_by",
)


def _issues(home) -> list[tuple]:
    with Register.open(home) as register:
        documents = register.store.documents("issue")
        return sorted(tuple(documents[row.id].get(name) for name in ROUND_TRIP_FIELDS) for row in register.find())


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_export_then_import_into_an_empty_store_gives_the_same_register(fieldkit, home, tmp_path, suffix):
    assert fieldkit("demo", "--issues", "40").returncode == 0
    out = tmp_path / f"register.{suffix}"
    assert fieldkit("export", "--format", suffix, "--personal", "-o", str(out)).returncode == 0
    other = tmp_path / "other-home"
    result = run_fieldkit(other, "import", str(out))
    assert result.returncode == 0 and "imported 40 issues; rejected 0" in result.stdout, result.stderr
    imported = _issues(other)
    assert len(imported) == 40 and imported == _issues(home)


def test_geojson_follows_rfc_7946(small, capsys, tmp_path):
    out = tmp_path / "issues.geojson"
    exports.export_geojson(small, IssueFilter(), str(out), personal=False)
    assert "2 issues without coordinates left out" in capsys.readouterr().err
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["type"] == "FeatureCollection" and "crs" not in document
    features = document["features"]
    assert len(features) == 1
    for feature in features:
        assert feature["type"] == "Feature" and isinstance(feature["id"], str)
        geometry = feature["geometry"]
        assert geometry["type"] == "Point" and len(geometry["coordinates"]) == 2
        lon, lat = geometry["coordinates"]
        assert model.LON_RANGE[0] <= lon <= model.LON_RANGE[1] and model.LAT_RANGE[0] <= lat <= model.LAT_RANGE[1]
        assert (lon, lat) == (28.9, -32.03)
        properties = feature["properties"]
        assert not [k for k, v in properties.items() if isinstance(v, (dict, list))]
        assert set(properties) == set(exports.GEOJSON_PROPERTIES)
        assert properties["ward"] == 12 and properties["is_open"] is True
        assert (properties["open_actions"], properties["overdue_actions"]) == (1, 1)
        assert "contact_name" not in properties
    assert document["bbox"] == [28.9, -32.03, 28.9, -32.03]


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
    assert result.returncode == 1 and "cannot be read as an Excel workbook" in result.stderr
    assert "Traceback" not in result.stderr


def test_exports_and_report_commands_load_no_spreadsheet_library():
    """`fieldkit find` imports the command modules: openpyxl must wait until an XLSX is asked for."""
    code = "import sys, fieldkit.exports, fieldkit.commands.reports, fieldkit.cli; fieldkit.cli.build_parser(); print('openpyxl' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
