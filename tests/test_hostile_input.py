"""Hostile values, as a tester would type or push them: control characters, odd separators, huge values,
far-future and past dates. The model refuses them where they enter (laptop and central store alike), the
command line never shows a stored one raw, and nothing ends in a traceback or a 5xx."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_fieldkit
from fieldkit import model
from fieldkit.hlc import Clock
from fieldkit.ids import new_device_id, new_id
from fieldkit.imports import ImportPlan, Workbook, apply_import, plan_import
from fieldkit.safe_text import CONTROL, json_for_terminal, safe_for_terminal
from sync_fixtures import Central, central, issue_op  # noqa: F401 - fixtures

ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "a\rb", "back\x08space", "nul\x00", "del\x7f", "csi\x9b2J", "tab\there"]
ISSUE = {"municipality": "EC121", "sector": "water", "title": "Burst main", "severity": "high", "status": "new"}


def text_fields() -> list[tuple[str, str, bool]]:
    """(record type, field, may hold several lines) for every free-text field of the model."""
    found = []
    for record_type, checks in model.FIELDS.items():
        for name, check in checks.items():
            if hasattr(check, "maximum"):
                found.append((record_type, name, model.check_field(record_type, name, "a\nb") is None))
    return found


# -- the model -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "2026-01-05\t10:00:00", "2026-01-05 10:00:00", "2026-01-05T10:00:00", "2026-01-05T10:00:00Z",
    "20260105T100000+00:00", "2026-01-05T10:00+00:00", "2026-W01-1T10:00:00+00:00", "2026-01-05T10:00:00+00:00\n",
    "２０２６-01-05T10:00:00+00:00", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+00:00", 20260105,
])
def test_a_time_that_is_not_in_the_stored_form_is_refused(value) -> None:
    for record_type, name in (("issue", "created_at"), ("note", "at"), ("action", "done_at"), ("lesson", "created_at")):
        message = model.check_field(record_type, name, value)
        assert message and "2026-12-15T08:30:00+00:00" in message or "year" in message
        assert not CONTROL.search(message)


@pytest.mark.parametrize("value", ["2026-01-05T10:00:00+00:00", "2026-01-05T12:00:00+02:00", "2026-01-05T10:00:00.123456+00:00"])
def test_the_forms_the_model_writes_are_accepted(value) -> None:
    assert model.check_field("issue", "created_at", value) is None
    assert model.check_field("issue", "created_at", model.now_iso()) is None


@pytest.mark.parametrize("value", ["20261215", "2026-W50-2", "2026-12-15 ", "2026-1-5", "1899-12-31", "2999-01-01", "2026-02-30"])
def test_a_due_date_must_be_yyyy_mm_dd_in_the_registers_era(value) -> None:
    assert model.check_field("action", "due", value)
    assert model.check_field("action", "due", "2026-12-15") is None


@pytest.mark.parametrize(("record_type", "name", "multiline"), text_fields())
def test_every_text_field_refuses_control_characters(record_type: str, name: str, multiline: bool) -> None:
    for hostile in ESCAPES:
        message = model.check_field(record_type, name, hostile)
        assert message and ("control character" in message or "one line" in message), (name, hostile)
    assert (model.check_field(record_type, name, "first line\nsecond line") is None) == multiline
    assert model.check_field(record_type, name, "x" * 10_000_000)  # every text has a limit


def test_newlines_are_kept_only_where_a_person_writes_paragraphs() -> None:
    multiline = {f"{t}.{n}" for t, n, many in text_fields() if many}
    assert multiline == {
        "issue.description", "issue.commitment", "note.text", "status_change.note",
        "lesson.what_happened", "lesson.what_worked", "lesson.what_did_not",
    }


def test_lists_and_records_have_limits_the_model_states_once() -> None:
    tag = "x" * model.LIST_LIMITS["tag"]
    assert model.check_field("lesson", "tags", [tag] * model.LIST_LIMITS["tags"]) is None
    assert "keep it to 20" in model.check_field("lesson", "tags", ["t"] * (model.LIST_LIMITS["tags"] + 1))
    assert model.check_field("lesson", "tags", [tag + "x"])
    assert model.check_field("lesson", "tags", ["\x1b[2J"])
    ids = [new_id() for _ in range(model.LIST_LIMITS["issue_ids"])]
    assert model.check_field("lesson", "issue_ids", ids) is None
    assert "keep it to 50" in model.check_field("lesson", "issue_ids", ids + [new_id()])
    assert "not an issue's id" in model.check_field("lesson", "issue_ids", ["x" * 7_400_000])
    need = {"kind": "skills", "detail": "Process controller training", "support_from": "Water Board"}
    assert model.check_field("issue", "needs", [need] * model.LIST_LIMITS["needs"]) is None
    assert "keep it to 10" in model.check_field("issue", "needs", [need] * (model.LIST_LIMITS["needs"] + 1))
    assert model.check_field("issue", "needs", [{**need, "detail": "x" * 1001}])
    assert model.check_field("issue", "needs", [{**need, "support_from": "Water\x1b[2J"}])
    assert model.check_field("issue", "needs", [{**need, "padding": "x"}])
    huge = {**ISSUE, "description": "🚰" * 5000, "commitment": "🚰" * 5000, "needs": [{**need, "detail": "🚰" * 1000}] * 10}
    assert "keep it under 65,536" in model.problems("issue", huge)["record"]


def test_a_message_never_echoes_a_huge_or_hostile_value_whole() -> None:
    message = model.check_field("issue", "municipality", "\x1b]0;pwned\x07" + "x" * 1_000_000)
    assert len(message) < 300 and "\x1b" not in message and "\\x1b" in message


@st.composite
def hostile_values(draw):
    return draw(st.one_of(
        st.text(max_size=50),
        st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=20),
        st.sampled_from(ESCAPES),
        st.builds(lambda a, sep, b: f"{a}{sep}{b}", st.sampled_from(["2026-01-05", "2026-01-05T10:00:00+00:00"]),
                  st.sampled_from(["\t", " ", "T", "\n", "", "\x00", "Z", "\u2028"]), st.sampled_from(["10:00:00", "", "+00:00"])),
        st.datetimes().map(lambda d: d.isoformat()),
        st.dates().map(lambda d: d.isoformat()),
        st.integers(), st.floats(), st.booleans(), st.none(),
        st.lists(st.text(max_size=5), max_size=30),
        st.lists(st.dictionaries(st.sampled_from(["kind", "detail", "support_from", "x"]), st.text(max_size=5)), max_size=12),
        st.just("x" * 200_000),
    ))


@settings(max_examples=400, deadline=None)
@given(record_type=st.sampled_from(list(model.FIELDS)), data=st.data())
def test_any_value_in_any_field_is_answered_with_a_message_or_accepted_clean(record_type: str, data) -> None:
    name = data.draw(st.sampled_from(list(model.FIELDS[record_type])))
    value = data.draw(hostile_values())
    message = model.check_field(record_type, name, value)
    if message is None:
        for text in _texts(value):
            assert not CONTROL.search(text.replace("\n", "")), (name, value)
        assert model.record_size_problem({name: value}) is None
    else:
        assert isinstance(message, str) and len(message) < 400 and not CONTROL.search(message)


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)


# -- what reaches the terminal ----------------------------------------------------------------------


@given(st.text())
def test_safe_for_terminal_leaves_no_control_character(text: str) -> None:
    assert not CONTROL.search(safe_for_terminal(text))
    assert not CONTROL.search(safe_for_terminal(text, multiline=True).replace("\n", ""))
    assert json.loads(json_for_terminal(json.dumps(text, ensure_ascii=False))) == text


def test_plain_text_is_shown_unchanged() -> None:
    assert safe_for_terminal("Burst bulk main — ward 12, Ngcobo") == "Burst bulk main — ward 12, Ngcobo"
    assert safe_for_terminal("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"


def _pulled(register, record_type: str, record_id: str, fields: dict) -> None:
    """Values the laptop now refuses, as they would arrive from a store that took them before it did."""
    device = "olderlaptop"
    register.apply_remote([{
        "op_id": new_id(), "type": record_type, "id": record_id, "device": device, "author": "Someone\x1b[31m",
        "hlc": f"{int(time.time() * 1000) + 1:016d}:0000:{device}", "fields": fields, "seen": {},
    }])


def test_stored_escapes_never_reach_the_terminal_from_the_command_line(register, home) -> None:
    issue = register.create_issue({**ISSUE, "title": "Burst main"})
    _pulled(register, "issue", issue["id"], {
        "title": "\x1b]0;pwned\x07\x1b[2JBurst", "description": "line one\n\x1b[2Jline two", "responsible": "Eskom\r\x08",
    })
    note_id = new_id(shard=issue["id"][-1])
    _pulled(register, "note", note_id, {"issue_id": issue["id"], "text": "seen\x1b]52;c;ZXZpbA==\x07", "author": "x\x9b"})
    register.close()
    outputs = [
        run_fieldkit(home, "find"),
        run_fieldkit(home, "find", "--json"),
        run_fieldkit(home, "show", issue["ref"]),
        run_fieldkit(home, "show", issue["ref"], "--json"),
        run_fieldkit(home, "conflicts"),
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        assert not CONTROL.search(result.stdout.replace("\n", "")), repr(result.stdout)
        assert not CONTROL.search(result.stderr.replace("\n", ""))
    assert "\\x1b]0;pwned" in outputs[0].stdout and "\\x1b]0;pwned" in outputs[2].stdout
    assert json.loads(outputs[1].stdout)[0]["title"].startswith("\x1b]0;pwned")  # JSON readers get the value itself


@pytest.mark.parametrize("args", [
    ("add", "--municipality", "EC121", "--sector", "water", "--title", "\x1b]0;pwned\x07"),
    ("add", "--municipality", "EC121\x1b[2J", "--sector", "water", "--title", "Burst"),
    ("add", "--municipality", "EC121", "--sector", "water", "--title", "x" * 100_000),
    ("add", "--municipality", "EC121", "--sector", "water", "--title", "Burst", "--description", "rubbish\x7f\x08"),
])
def test_hostile_values_on_the_command_line_are_one_clear_line(home, args) -> None:
    result = run_fieldkit(home, *args)
    assert result.returncode == 1
    assert result.stderr.startswith("fieldkit: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and not CONTROL.search(result.stderr.rstrip("\n"))
    assert len(result.stderr) < 400


def test_import_puts_times_in_the_stored_form_and_refuses_what_is_not_a_time(register) -> None:
    rows = [
        {"Title": "Tab in the time", "Municipality": "EC121", "Sector": "water", "Captured": "2026-01-05\t10:00:00",
         "Description": ""},
        {"Title": "Time typed by a person", "Municipality": "EC121", "Sector": "water", "Captured": "2026-01-05 10:00"},
        {"Title": "A date", "Municipality": "EC121", "Sector": "water", "Captured": "2026-01-05"},
        {"Title": "Escape\x1b[2J", "Municipality": "EC121", "Sector": "water", "Captured": "2026-01-05"},
        {"Title": "Typed in\r\nExcel\twith Alt+Enter", "Municipality": "EC121", "Sector": "water",
         "Description": "First line\r\nSecond line"},
    ]
    plan: ImportPlan = plan_import(register, Workbook(rows, name="clerk.csv"), {})
    apply_import(register, plan)
    assert plan.count("add") == 3
    assert [r.row for r in plan.refused] == [2, 5]
    stored = sorted(row.created_at for row in register.find())[:2]
    assert stored == ["2026-01-04T22:00:00+00:00", "2026-01-05T08:00:00+00:00"]  # midnight and 10:00 in South Africa
    [typed] = [row for row in register.find() if row.title.startswith("Typed")]
    assert typed.title == "Typed in Excel with Alt+Enter"
    assert register.issue_values(typed.id)["description"] == "First line\nSecond line"


# -- the central store -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(central: Central):
    with httpx.Client(base_url=central.url, headers={"Authorization": f"Bearer {central.token}"}, timeout=30) as http:
        yield http
    assert httpx.get(f"{central.url}/health").status_code == 200


def _push(client: httpx.Client, ops: list[dict]) -> dict:
    response = client.post("/sync/push", content=json.dumps({"ops": ops}), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


def test_the_central_store_refuses_what_the_laptop_refuses(client: httpx.Client) -> None:
    cases = {
        "tab in a time": {"created_at": "2026-01-05\t10:00:00"},
        "escape in a title": {"title": "\x1b]0;pwned\x07"},
        "C1 control": {"responsible": "Eskom\x9b2J"},
        "newline in a title": {"title": "Burst\nStatus: resolved"},
        "21 tags": None,
        "huge list of issues": None,
        "record too large": {"description": "🚰" * 5000, "commitment": "🚰" * 5000,
                             "needs": [{"kind": "skills", "detail": "🚰" * 1000}] * 10},
        "seen names a field not set": None,
    }
    ops = []
    for label, fields in cases.items():
        op = issue_op()
        if fields is not None:
            op["fields"].update(fields)
        elif label == "21 tags":
            op = {**op, "type": "lesson", "fields": {"title": "Lesson", "tags": [f"t{i}" for i in range(21)]}}
        elif label == "huge list of issues":
            op = {**op, "type": "lesson", "fields": {"title": "Lesson", "issue_ids": [new_id() for _ in range(51)]}}
        else:
            op["seen"] = {f"padding{i}": "0000000000000001:0000:x" for i in range(5)}
        ops.append(op)
    reply = _push(client, ops)
    assert reply["acknowledged"] == []
    reasons = {entry["op_id"]: entry["reason"] for entry in reply["rejected"]}
    assert len(reasons) == len(cases)
    by_label = dict(zip(cases, (reasons[op["op_id"]] for op in ops)))
    assert "2026-12-15T08:30:00+00:00" in by_label["tab in a time"]
    assert "control character" in by_label["escape in a title"] and "control character" in by_label["C1 control"]
    assert "one line" in by_label["newline in a title"]
    assert "keep it to 20" in by_label["21 tags"] and "keep it to 50" in by_label["huge list of issues"]
    assert "65,536" in by_label["record too large"]
    assert "seen" in by_label["seen names a field not set"]


@st.composite
def hostile_ops(draw) -> dict:
    device = new_device_id()
    record_type = draw(st.sampled_from(list(model.FIELDS)))
    fields = dict(ISSUE) if record_type == "issue" else {"title": "Lesson"} if record_type == "lesson" else {"issue_id": new_id(), "text": "x"}
    if record_type == "status_change":
        fields = {"issue_id": new_id(), "to_status": "acknowledged"}
    for _ in range(draw(st.integers(1, 3))):
        fields[draw(st.sampled_from(list(model.FIELDS[record_type])))] = draw(hostile_values())
    return {"op_id": new_id(), "type": record_type, "id": new_id(), "device": device, "author": "Tester",
            "hlc": Clock(device).tick(), "seen": {}, "fields": fields}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(hostile_ops(), min_size=1, max_size=5))
def test_hostile_values_never_break_the_central_store(client: httpx.Client, ops: list[dict]) -> None:
    reply = _push(client, ops)
    assert len(reply["acknowledged"]) + len(reply["rejected"]) + len(reply["deferred"]) == len(ops)
    for entry in reply["rejected"]:
        assert len(entry["reason"]) < 400 and not CONTROL.search(entry["reason"])


def test_a_wrong_value_that_got_in_anyway_does_not_stop_the_register_opening(register, home) -> None:
    issue = register.create_issue({**ISSUE, "title": "Burst main on the R61"})
    _pulled(register, "issue", issue["id"], {
        "created_at": "2026-01-05\t10:00:00", "municipality": "EC121\t", "sector": "water\n", "ward": "7\t",
        "lat": "far\tnorth", "lon": None, "needs": ["not a need"],
    })
    action = register.add_action(issue["id"], "Fix the valve", owner="Plant superintendent", due="2026-01-05")
    _pulled(register, "action", action["id"], {"due": "5/1/2026"})
    status = new_id(shard=issue["id"][-1])
    _pulled(register, "status_change", status, {"issue_id": issue["id"], "to_status": "resolved", "at": "99999-13-45"})
    register.close()
    assert run_fieldkit(home, "check").returncode == 0  # every record and its lookup line read back
    found = run_fieldkit(home, "find", "R61")
    assert found.returncode == 0, found.stderr
    assert issue["ref"] in found.stdout and found.stderr == "1 issue\n"
    shown = run_fieldkit(home, "show", issue["ref"])
    assert shown.returncode == 0, shown.stderr
    assert "2026-01-05\\t10:00:00" in shown.stdout
    listed = run_fieldkit(home, "find", "--json")
    assert [row["ref"] for row in json.loads(listed.stdout)] == [issue["ref"]]
    for command in (("report", "--municipality", "EC121"), ("find", "--overdue"), ("export", "-o", str(home.parent / "x.xlsx"))):
        result = run_fieldkit(home, *command)
        assert result.returncode in (0, 1) and "Traceback" not in result.stderr, (command, result.stderr)


def test_conflicting_edits_cannot_grow_a_record_without_bound(client: httpx.Client, central: Central) -> None:
    from sync_fixtures import server_states

    issue = issue_op()
    assert _push(client, [issue])["acknowledged"] == [issue["op_id"]]
    flood = []
    for number in range(40):  # each from a laptop that never saw the others: every one is kept as a conflict
        device = new_device_id()
        flood.append({"op_id": new_id(), "type": "issue", "id": issue["id"], "device": device, "author": "Flooder",
                      "hlc": Clock(device).tick(), "seen": {}, "fields": {"description": f"{number} " + "🚰" * 4990}})
    reply = _push(client, flood)
    assert 5 < len(reply["acknowledged"]) < 40
    assert all("unsettled conflicts" in entry["reason"] for entry in reply["rejected"])
    stored = server_states(central.db_url)[issue["id"]]
    assert len(json.dumps(stored, ensure_ascii=False).encode()) <= model.RECORD_STATE_MAX_BYTES
