"""The command line end to end, in real processes on a temporary FIELDKIT_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def add(fieldkit, *extra: str, title: str = "Burst bulk main in ward 12", municipality: str = "BUF") -> tuple[str, str]:
    result = fieldkit("add", "--municipality", municipality, "--sector", "water", "--title", title, *extra)
    assert result.returncode == 0, result.stderr
    issue_id, ref = result.stdout.split()
    return issue_id, ref


def test_version_and_help(fieldkit):
    assert fieldkit("--version").stdout.startswith("fieldkit 0.")
    listed = fieldkit("--help").stdout
    for command in ("add", "find", "show", "edit", "status", "note", "action", "import", "export"):
        assert f"    {command}" in listed


def test_capture_look_up_and_follow_up(fieldkit):
    issue_id, ref = add(fieldkit, "--ward", "12", "--severity", "critical", "--category", "burst_main",
                        "--lat", "-32.97", "--lon", "27.87", "--responsible", "Buffalo City")
    assert ref.startswith("BUF-")
    add(fieldkit, "--ward", "3", title="Potholes on Main Road")

    found = json.loads(fieldkit("find", "bulk", "--json").stdout)
    assert [(f["id"], f["ref"], f["status"], f["severity"]) for f in found] == [(issue_id, ref, "new", "critical")]
    assert {"id", "municipality", "sector", "title", "status", "severity", "updated_at"} <= set(found[0])

    table = fieldkit("find", "ward 12")
    assert ref in table.stdout and "Potholes" not in table.stdout

    assert fieldkit("status", ref.lower(), "escalated").returncode == 1
    result = fieldkit("status", issue_id, "escalated", "--note", "No response from the WSA in three weeks")
    assert result.returncode == 0 and "escalated" in result.stdout
    assert fieldkit("note", ref, "Visited with the ward councillor").returncode == 0
    action = fieldkit("action", ref, "Get a written repair plan", "--owner", "Technical Services", "--due", "2020-01-31")
    action_id = action.stdout.split()[0]
    assert fieldkit("edit", ref, "--description", "Valve chamber flooded", "--ward", "13").returncode == 0

    shown = json.loads(fieldkit("show", ref, "--json").stdout)
    assert shown["status"] == "escalated" and shown["ward"] == 13
    assert [e["kind"] for e in shown["timeline"]] == ["created", "status", "note", "action", "edit"]
    assert shown["timeline"][-1]["text"] == "Ward: 12 → 13; Description: (none) → Valve chamber flooded"
    assert json.loads(fieldkit("find", "--overdue", "--json").stdout)[0]["id"] == issue_id

    assert fieldkit("done", action_id[:13]).returncode == 0
    assert json.loads(fieldkit("find", "--overdue", "--json").stdout) == []
    text = fieldkit("show", ref).stdout
    assert "[x] Get a written repair plan" in text and "Escalated" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["add", "--municipality", "BUFF", "--sector", "water", "--title", "x"], "did you mean BUF (Buffalo City)?"),
        (["add", "--municipality", "BUF", "--sector", "water", "--title", "x", "--lat", "-33", "--lon", "45"], "outside South Africa"),
        (["add", "--municipality", "BUF", "--sector", "water", "--title", "x", "--ward", "abc"], "Ward must be a whole number"),
        (["add", "--municipality", "BUF", "--sector", "water", "--title", "x", "--category", "potholes"], "Unknown category 'potholes'"),
        (["show", "nothing-like-this"], "No issue matches"),
        (["action", "BUF", "x", "--due", "next week"], "No issue matches"),
        (["find", "--province", "Gondwana"], "Unknown province 'Gondwana'"),
        (["import", "no-such-file.csv"], "No such file"),
        (["edit", "BUF-26-XXXX-0001"], "Nothing to change"),
    ],
)
def test_errors_are_one_line_with_a_non_zero_exit(fieldkit, args, message):
    result = fieldkit(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_capacity_building_needs_from_the_command_line(fieldkit):
    _, ref = add(fieldkit, "--need", "skills:Process controller training:Amatola Water", "--need", "funding:MIG top-up")
    shown = json.loads(fieldkit("show", ref, "--json").stdout)
    assert shown["needs"] == [
        {"kind": "skills", "detail": "Process controller training", "support_from": "Amatola Water"},
        {"kind": "funding", "detail": "MIG top-up", "support_from": ""},
    ]
    bad = fieldkit("edit", ref, "--need", "money")
    assert bad.returncode == 2 and "KIND:DETAIL" in bad.stderr


def test_a_bad_due_date_is_explained_and_nothing_is_saved(fieldkit):
    _, ref = add(fieldkit)
    result = fieldkit("action", ref, "Call the WSA", "--due", "31/12/2026")
    assert result.returncode == 1 and "write it as YYYY-MM-DD" in result.stderr
    assert json.loads(fieldkit("show", ref, "--json").stdout)["actions"] == []


def test_usage_errors_exit_2_in_one_line(fieldkit):
    result = fieldkit("status", "BUF", "fixed")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_import_reports_row_by_row_and_imports_the_rest(fieldkit, tmp_path):
    sheet = tmp_path / "register.csv"
    sheet.write_text(
        "Municipality,Sector,Problem,Severity,Ward,Latitude,Longitude,Responsible institution,Notes\n"
        "BUF,Water,No water in Mdantsane NU 3,critical,7,-32.95,27.74,Amatola Water,from the imbizo\n"
        "BUFF,water,Leak,high,,,,,\n"
        "EC121,Roads and stormwater,Potholes on R61,medium,ward 4,,,,\n"
        "EC121,roads,Culvert blocked,urgent,,,,,\n"
        "EC122,sanitation,Spill,low,2,-40,27,,\n",
        encoding="utf-8",
    )
    result = fieldkit("import", str(sheet), "--map", "Problem=title")
    assert result.returncode == 0
    assert "added 3, updated 0, unchanged 0, refused 2 issues" in result.stdout
    assert "row 3: Unknown municipality 'BUFF' — did you mean BUF (Buffalo City)?" in result.stderr
    assert "row 6: Latitude -40.0 is outside South Africa" in result.stderr
    assert "  Notes -> note" in result.stderr
    found = json.loads(fieldkit("find", "--json", "--sort", "title").stdout)
    assert [(f["title"], f["sector"], f["ward"], f["severity"]) for f in found] == [
        ("Culvert blocked", "roads", None, "critical"),  # "urgent" is what people call critical
        ("No water in Mdantsane NU 3", "water", 7, "critical"), ("Potholes on R61", "roads", 4, "medium")]
    note = json.loads(fieldkit("show", found[1]["ref"], "--json").stdout)["timeline"][-1]
    assert (note["kind"], note["text"]) == ("note", "from the imbizo")


def test_csv_export_leaves_out_personal_information_unless_asked(fieldkit, tmp_path):
    add(fieldkit, "--contact-name", "Nomsa Khumalo", "--contact-phone", "082 123 4567")
    out = tmp_path / "register.csv"
    assert fieldkit("export", "--format", "csv", "-o", str(out)).returncode == 0
    text = out.read_text(encoding="utf-8")
    assert "Burst bulk main" in text and "Nomsa" not in text and "4567" not in text
    assert fieldkit("export", "--personal", "-o", str(out)).returncode == 0
    assert "Nomsa Khumalo" in out.read_text(encoding="utf-8") and "+27821234567" in out.read_text(encoding="utf-8")


def test_export_then_import_gives_the_same_register(fieldkit, tmp_path):
    assert fieldkit("demo", "--issues", "40").returncode == 0
    out = tmp_path / "register.csv"
    assert fieldkit("export", "-o", str(out), "--personal").returncode == 0
    other = tmp_path / "other-home"
    from conftest import run_fieldkit

    result = run_fieldkit(other, "import", str(out))
    assert result.returncode == 0 and "added 40, updated 0, unchanged 0, refused 0 issues" in result.stdout
    keys = ("municipality", "ward", "sector", "category", "title", "severity", "status", "responsible", "created_at")

    def register_of(home_args):
        rows = json.loads(home_args("find", "--json", "--sort", "created").stdout)
        return sorted(tuple(r[k] for k in keys) for r in rows)

    assert register_of(fieldkit) == register_of(lambda *a: run_fieldkit(other, *a))


def test_the_quick_path_does_not_load_textual(home):
    """`fieldkit find`, the store, the model and sync load without Textual (or Rich)."""
    code = (
        "import sys\n"
        "import fieldkit.cli, fieldkit.model, fieldkit.store, fieldkit.register, fieldkit.filters, fieldkit.merge\n"
        "import fieldkit.bundle_sync, fieldkit.drives\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('fieldkit.sync'): import fieldkit.sync\n"
        "sys.argv = ['fieldkit', 'find', 'water']\n"
        "try:\n    fieldkit.cli.main()\nfinally:\n"
        "    loaded = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]\n"
        "    assert not loaded, loaded\n"
    )
    env = {"FIELDKIT_HOME": str(home), "PATH": "", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # this checkout's code
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


def test_fieldkit_home_is_honoured(fieldkit, home):
    add(fieldkit)
    assert (home / "register.sqlite").exists()
