"""Imports as a coordinator uses them: a clerk's own spreadsheet, the preview, updates by reference, twice changes nothing."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import run_fieldkit
from fieldkit import matching
from fieldkit.register import Register

CLERK = Path(__file__).parent / "fixtures" / "clerk-register.csv"


def _find(fieldkit) -> list[dict]:
    return json.loads(fieldkit("find", "--json", "--sort", "created").stdout)


def test_a_clerks_register_imports_with_only_the_truly_bad_rows_refused(fieldkit):
    """56 rows as a clerk keeps them in Excel (cp1252, names, labels, dates and statuses as typed); 4 are truly bad."""
    with CLERK.open(encoding="cp1252", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) >= 50
    result = fieldkit("import", str(CLERK))
    assert result.returncode == 0, result.stderr
    assert "added 52, updated 0, unchanged 0, refused 4 issues" in result.stdout
    refused = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    assert refused == [
        "row 11: Unknown municipality 'Springfield' — give its name or MDB code, e.g. Buffalo City or BUF",
        "row 22: Title is required",
        "row 33: Date reported '31/02/2026' is not a date; write it as dd/mm/yyyy or yyyy-mm-dd",
        "row 44: Ward must be a whole number, not 'Ward forty'",
    ]
    found = {issue["title"]: issue for issue in _find(fieldkit)}
    assert len(found) == 52
    burst = found["Burst pipe on Oxford Street"]  # Thabazimbi, Ward 7, Category "Water", "Reported"
    assert (burst["municipality"], burst["ward"], burst["sector"], burst["status"]) == ("LIM361", 7, "water", "new")
    water = found["No water in the township since Monday (44)"]  # "Buffalo City", "No water", "In progress"
    assert (water["municipality"], water["sector"], water["category"], water["status"]) == ("BUF", "water", "no_supply", "in_progress")
    refuse = found["Refuse not collected for 3 weeks"]  # OR Tambo District, Refuse, W3, "4 Nov 2026", Done
    assert (refuse["municipality"], refuse["sector"], refuse["ward"], refuse["status"]) == ("DC15", "waste", 3, "resolved")
    potholes = found["Potholes on the R61"]  # "buf", "Escalated to DWS"
    assert (potholes["municipality"], potholes["sector"], potholes["category"], potholes["status"]) == ("BUF", "roads", "potholes", "escalated")
    pipe = found["Burst pipe near the taxi rank"]
    assert (pipe["municipality"], pipe["sector"], pipe["category"]) == ("NMA", "water", "burst_main")
    assert found["Bins not collected"]["category"] == "missed_collection"
    with Register.open() as register:
        # a category that matches nothing is kept as other, with the clerk's words
        tap = register.issue_values(found["Leaking tap at the clinic"]["id"])
        assert (tap["sector"], tap["category"]) == ("other", "other")
        assert tap["description"].startswith("Category as written: Leaking tap at clinic")
        # "4 Nov 2026" is that day in South Africa; "Escalated to DWS" keeps its words in the timeline
        assert register.issue_values(refuse["id"])["created_at"] == "2026-11-03T22:00:00+00:00"
        assert any("Escalated to DWS" in entry.text for entry in register.timeline(potholes["id"]))
        assert register.issue_values(burst["id"])["created_by"] == register.author


def test_the_same_clerks_register_as_an_excel_workbook(fieldkit, tmp_path):
    """As Excel keeps it: dates typed day first become date cells, ward numbers become numbers, the rest stays text."""
    from datetime import date

    from openpyxl import Workbook

    with CLERK.open(encoding="cp1252", newline="") as handle:
        reader = csv.reader(handle)
        header, rows = next(reader), list(reader)
    book = Workbook()
    sheet = book.active
    sheet.title = "Register 2026"
    sheet.append(header)
    for row in rows:
        cells: list = list(row)
        day, month, year = (cells[4].split("/") + ["", "", ""])[:3]
        if len(year) == 4 and day.isdigit() and month.isdigit():
            try:
                cells[4] = date(int(year), int(month), int(day))
            except ValueError:
                pass  # 31/02/2026 stays the text the clerk typed
        if cells[1].isdigit():
            cells[1] = int(cells[1])
        sheet.append(cells)
        if isinstance(cells[4], date):
            sheet.cell(sheet.max_row, 5).number_format = "dd/mm/yyyy"
    path = tmp_path / "clerk.xlsx"
    book.save(path)
    result = fieldkit("import", str(path))
    assert "added 52, updated 0, unchanged 0, refused 4 issues" in result.stdout, result.stderr
    assert [line.split(":")[0] for line in result.stderr.splitlines() if line.startswith("row ")] == ["row 11", "row 22", "row 33", "row 44"]
    with Register.open() as register:
        issue = next(register.issue_values(r.id) for r in register.find() if r.title == "Sewer spilling into the stream")
        assert issue["created_at"] == "2026-11-09T22:00:00+00:00" and issue["ward"] == 21  # 10/11/2026 in South Africa
    assert "unchanged 52" in fieldkit("import", str(path)).stdout


def test_importing_the_same_spreadsheet_twice_changes_nothing(fieldkit):
    assert fieldkit("import", str(CLERK)).returncode == 0
    with Register.open() as register:
        waiting = register.waiting_count()
    again = fieldkit("import", str(CLERK))
    assert "added 0, updated 0, unchanged 52, refused 4 issues" in again.stdout, again.stderr
    assert len(_find(fieldkit)) == 52
    with Register.open() as register:
        assert register.waiting_count() == waiting  # not one operation more


def test_dry_run_shows_the_mapping_and_counts_and_writes_nothing(fieldkit, tmp_path):
    sheet = tmp_path / "register.csv"
    sheet.write_text(
        "Muni,Problem,Sector,Fault,Notes\n"
        "BUF,No water in NU 3,Water,Burst pipe,first\n"
        "Mbhashe,Potholes on R61,Roads,,second\n"
        "Nowhere,Leak,Water,,third\n",
        encoding="utf-8",
    )
    result = fieldkit("import", str(sheet), "--dry-run", "--map", "Fault=category", "--map", "Notes=skip")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "would add 2, would update 0, would leave unchanged 0, would refuse 1 issues"
    assert ("Columns:\n  Muni -> municipality\n  Problem -> title\n  Sector -> sector\n  Fault -> category (--map)\n"
            "  Notes -> skipped (--map)\n") in result.stderr
    assert "row 4: Unknown municipality 'Nowhere'" in result.stderr
    assert _find(fieldkit) == []
    assert "added 2" in fieldkit("import", str(sheet), "--map", "Fault=category").stdout
    assert {(i["title"], i["category"]) for i in _find(fieldkit)} == {("No water in NU 3", "burst_main"), ("Potholes on R61", "")}


def test_a_bad_map_is_one_line(fieldkit, tmp_path):
    sheet = tmp_path / "register.csv"
    sheet.write_text("Problem\nLeak\n", encoding="utf-8")
    result = fieldkit("import", str(sheet), "--map", "Problem=headline")
    assert result.returncode == 1 and result.stderr.startswith("fieldkit: --map: 'headline' is not a field")
    assert len(result.stderr.strip().splitlines()) == 1


def test_export_edit_import_updates_by_reference_as_operations_that_sync(fieldkit, tmp_path):
    """The coordinator's loop: export, change statuses and a field in the spreadsheet, import."""
    assert fieldkit("demo", "--issues", "30").returncode == 0
    out = tmp_path / "register.csv"
    assert fieldkit("export", "-o", str(out)).returncode == 0
    with out.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        headers, rows = reader.fieldnames, list(reader)
    open_rows = [r for r in rows if r["Status"] in ("new", "acknowledged", "in_progress")]
    resolved_row, closed_row = open_rows[0], open_rows[1]
    resolved_row["Status"] = "Done"
    closed_row["Status"] = "Closed"
    closed_row["Severity"] = "Low" if closed_row["Severity"] != "low" else "High"
    headers = [*headers, "Note"]
    closed_row["Note"] = "Contractor finished on site"
    with out.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=headers)
        writer.writeheader()
        writer.writerows(rows)
    with Register.open() as register:
        waiting = register.waiting_count()
    preview = fieldkit("import", str(out), "--dry-run")
    assert "would add 0, would update 2, would leave unchanged 28, would refuse 0 issues" in preview.stdout, preview.stderr
    result = run_fieldkit(Path(str(tmp_path / "fieldkit-home")), "import", str(out), "--author", "Sipho Dlamini")
    assert "added 0, updated 2, unchanged 28, refused 0 issues" in result.stdout, result.stderr
    with Register.open() as register:
        resolved = register.issue_values(register.resolve(resolved_row["Reference"]))
        closed = register.issue_values(register.resolve(closed_row["Reference"]))
        assert resolved["status"] == "resolved" and closed["status"] == "closed"
        assert closed["severity"] == closed_row["Severity"].lower()
        [change] = [c for c in register.status_changes(closed["id"]) if c["to_status"] == "closed"]
        assert (change["note"], change["author"]) == ("Contractor finished on site", "Sipho Dlamini")
        [default] = [c for c in register.status_changes(resolved["id"]) if c["to_status"] == "resolved"]
        assert default["note"] == "updated from register.csv"
        ops = register.pending_ops()
        assert register.waiting_count() > waiting
        mine = [op for op in ops if op["author"] == "Sipho Dlamini" and op["type"] == "issue"]
        assert {op["id"] for op in mine} == {resolved["id"], closed["id"]}
        edit = [op for op in mine if "severity" in op["fields"]]
        assert len(edit) == 1 and set(edit[0]["fields"]) == {"severity"}  # only the field that changed
    assert "unchanged 30" in fieldkit("import", str(out)).stdout


def test_a_status_change_against_the_lifecycle_is_refused_with_its_reason(fieldkit, tmp_path):
    with Register.open(author="T") as register:
        issue = register.create_issue({"municipality": "BUF", "sector": "water", "title": "Leak"})
        register.change_status(issue["id"], "closed", "duplicate")
    sheet = tmp_path / "register.csv"
    sheet.write_text(f"Reference,Title,Status\n{issue['ref']},Leak,Done\n", encoding="utf-8")
    result = fieldkit("import", str(sheet))
    assert result.returncode == 1 and "refused 1" in result.stdout
    assert "row 2: status: An issue that is closed can go to: acknowledged, in_progress" in result.stderr


@pytest.mark.parametrize("typed, code", [
    ("GP", "GT"), ("gt", "GT"), ("Gauteng", "GT"), ("ZA-GP", "GT"), ("NL", "KZN"), ("KZN", "KZN"), ("KwaZulu Natal", "KZN"),
    ("NP", "LIM"), ("LP", "LIM"), ("Northern Province", "LIM"), ("NW", "NW"), ("North-West", "NW"), ("OFS", "FS"),
    ("Western Cape", "WC"), ("EC", "EC"), ("MP", "MP"), ("NC", "NC"), ("Atlantis", None),
])
def test_province_by_any_common_code(typed, code):
    assert matching.province_code(typed) == code


def test_province_codes_and_municipality_names_on_the_command_line(fieldkit):
    assert fieldkit("add", "--municipality", "TSH", "--sector", "water", "--title", "Leak").returncode == 0
    assert fieldkit("add", "--municipality", "eThekwini", "--sector", "water", "--title", "Spill").returncode == 0
    for typed, title in (("GP", "Leak"), ("GT", "Leak"), ("NL", "Spill"), ("KwaZulu-Natal", "Spill")):
        result = fieldkit("find", "--province", typed, "--json")
        assert [i["title"] for i in json.loads(result.stdout)] == [title], (typed, result.stderr)
    assert fieldkit("municipalities", "--province", "NP").stdout.count("LIM") > 20
    by_name = json.loads(fieldkit("find", "--municipality", "City of Tshwane", "--json").stdout)
    assert [(i["title"], i["municipality"]) for i in by_name] == [("Leak", "TSH")]
    assert json.loads(fieldkit("find", "--municipality", "ETH", "--json").stdout)[0]["title"] == "Spill"


@pytest.mark.parametrize("typed, code", [
    ("Buffalo City", "BUF"), ("buf", "BUF"), ("Buffalo City Metropolitan Municipality", "BUF"), ("EC121 Mbhashe", "EC121"),
    ("Mbhashe LM", "EC121"), ("OR Tambo District", "DC15"), ("Garden Route", "DC4"), ("Eden", "DC4"), ("JB Marks", "NW405"),
    ("City of Tshwane", "TSH"), ("Springfield", None),
])
def test_municipality_by_code_name_or_later_name(typed, code):
    assert matching.municipality_code(typed) == code


@pytest.mark.parametrize("typed, iso", [
    ("03/11/2026", "2026-11-03"), ("3/11/26", "2026-11-03"), ("2026-11-03", "2026-11-03"), ("2026/11/03", "2026-11-03"),
    ("3 Nov 2026", "2026-11-03"), ("3 November 2026", "2026-11-03"), ("03-11-2026", "2026-11-03"), ("46329", "2026-11-03"),
    ("31/02/2026", None), ("soon", None),
])
def test_dates_as_south_africans_write_them(typed, iso):
    found = matching.parse_date(typed)
    assert (found.isoformat() if found else None) == iso


@pytest.mark.parametrize("typed, code", [
    ("Open", "new"), ("Reported", "new"), ("Done", "resolved"), ("Fixed", "resolved"), ("Escalated to DWS", "escalated"),
    ("In progress", "in_progress"), ("in_progress", "in_progress"), ("Closed", "closed"), ("Waiting", None),
])
def test_status_words(typed, code):
    assert matching.status_code(typed) == code


def test_a_title_that_starts_with_a_dash(fieldkit):
    result = fieldkit("add", "--municipality", "BUF", "--sector", "water", "--title", "-2+3", "--description", "--fix it--",
                      "--lat", "-32.9", "--lon", "27.8")
    assert result.returncode == 0, result.stderr
    [issue] = _find(fieldkit)
    assert issue["title"] == "-2+3"
    assert fieldkit("edit", issue["ref"], "--title", "-minus sign in the title").returncode == 0
    assert _find(fieldkit)[0]["title"] == "-minus sign in the title"
    wrong = fieldkit("add", "--municipality", "BUF", "--sector", "water", "--title", "--severity")
    assert wrong.returncode == 2 and "expected one argument" in wrong.stderr


def test_rows_that_name_ids_import_once_and_a_deleted_issue_is_not_brought_back(fieldkit, tmp_path):
    with Register.open(author="T") as register:
        gone = register.create_issue({"municipality": "BUF", "sector": "water", "title": "Captured twice"})
        register.delete_issue(gone["id"])
    sheet = tmp_path / "register.csv"
    sheet.write_text(
        "ID,Municipality,Sector,Title\n"
        f"{gone['id']},BUF,Water,Captured twice\n"
        "01a233ec-0000-7000-8000-00000000beef,BUF,Water,From another laptop\n",
        encoding="utf-8",
    )
    first = fieldkit("import", str(sheet))
    assert "added 1, updated 0, unchanged 0, refused 1 issues" in first.stdout, first.stderr
    assert f"row 2: issue {gone['id']} was deleted in this register; clear its ID to add it again" in first.stderr
    again = fieldkit("import", str(sheet))
    assert "added 0, updated 0, unchanged 1, refused 1 issues" in again.stdout, again.stderr
    assert [i["title"] for i in _find(fieldkit)] == ["From another laptop"]


def test_the_app_previews_an_import_then_imports_it(register):
    """The app's import screen (I): the same plan as --dry-run, nothing written until ctrl+s."""
    import asyncio

    from fieldkit.app import FieldkitApp
    from fieldkit.screens.imports import ImportScreen

    register.save_settings(first_run_done=True, name="Thandi Mokoena", municipalities=["BUF"])

    async def run() -> None:
        app = FieldkitApp(register)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await pilot.press("I")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ImportScreen)
            screen.query_one("#import-path").value = str(CLERK)
            await pilot.press("enter")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.outcome.summary.startswith("would add 52, would update 0, would leave unchanged 0, would refuse 4")
            assert "Issue -> title" in screen.outcome.details and "row 11: Unknown municipality 'Springfield'" in screen.outcome.details
            assert register.count() == 0
            await pilot.press("ctrl+s")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.outcome.summary.startswith("added 52, updated 0, unchanged 0, refused 4")
            assert register.count() == 52
            screen.query_one("#import-path").value = str(CLERK.with_name("no-such.csv"))
            await pilot.press("f5")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.outcome.problem.startswith("No such file")

    asyncio.run(run())
