"""Bad input to a real ``fieldkit serve`` process: every one is a 4xx with a message (or, for one bad
operation in a batch, a rejection with its reason) — never a 500 — and the store keeps serving."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldkit.hlc import Clock
from fieldkit.ids import new_device_id, new_id
from sync_fixtures import Central, central, issue_op  # noqa: F401 - fixtures

MB = 1024 * 1024


@pytest.fixture(scope="module")
def client(central: Central):
    with httpx.Client(base_url=central.url, headers={"Authorization": f"Bearer {central.token}"}, timeout=30) as http:
        yield http
    assert httpx.get(f"{central.url}/health").status_code == 200  # still serving after all of it


def detail(response: httpx.Response) -> str:
    text = response.json()["detail"]
    assert isinstance(text, str) and text and "\n" not in text
    return text


@pytest.mark.parametrize(("body", "message"), [
    (b'{"ops": [', "the request body is not valid JSON"),
    (b'{"ops": "all of them"}', "ops: Input should be a valid list"),
    (b'{"ops": [1, 2]}', "ops.0: Input should be a valid dictionary"),
    (b'["ops"]', "Input should be a valid dictionary"),
    (b'{"ops": [], "also": 1}', "also: Extra inputs are not permitted"),
    (b'{}', "ops: Field required"),
])
def test_a_malformed_push_is_a_422_with_a_message(client: httpx.Client, body: bytes, message: str) -> None:
    response = client.post("/sync/push", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert message in detail(response)


def test_a_body_that_is_not_text_is_a_400_with_a_message(client: httpx.Client) -> None:
    response = client.post("/sync/push", content=b"\xff\xfe\x00", headers={"Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    detail(response)


@pytest.mark.parametrize(("path", "params"), [
    ("/sync/pull", {"after": "yesterday"}),
    ("/sync/pull", {"after": -1}),
    ("/sync/pull", {"after": 2**70}),
    ("/sync/pull", {"limit": 0}),
    ("/sync/pull", {"limit": 10**9}),
    ("/sync/pull", {"skip_device": "x" * 200, "skip_from": 1}),
    ("/sync/snapshot", {"after_id": "not-an-id"}),
    ("/sync/snapshot", {"after_id": "01234567-89ab-4def-8123-456789abcdef"}),
    ("/sync/history/not-an-id", {}),
])
def test_wrong_parameters_are_a_422_with_a_message(client: httpx.Client, path: str, params: dict) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    detail(response)


def test_huge_bodies_are_refused_with_413_before_they_are_read(client: httpx.Client) -> None:
    big = b'{"ops": [' + b" " * (9 * MB) + b"]}"
    assert client.post("/sync/push", content=big, headers={"Content-Type": "application/json"}).status_code == 413

    def chunks():
        for _ in range(10):
            yield b" " * MB

    response = client.post("/sync/push", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    bomb = gzip.compress(b'{"ops": [' + b" " * (40 * MB) + b"]}")
    response = client.post("/sync/push", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "once unpacked" in detail(response)


def test_bad_encodings_are_refused(client: httpx.Client) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert client.post("/sync/push", content=b"not gzip at all", headers=headers).status_code == 400
    truncated = gzip.compress(b'{"ops": []}')[:-6]
    assert client.post("/sync/push", content=truncated, headers=headers).status_code == 400
    brotli = {"Content-Type": "application/json", "Content-Encoding": "br"}
    assert client.post("/sync/push", content=b"{}", headers=brotli).status_code == 415
    good = client.post("/sync/push", content=gzip.compress(b'{"ops": []}'), headers=headers)
    assert good.status_code == 200 and good.json()["acknowledged"] == []


def test_requests_without_a_usable_token_are_401(central: Central) -> None:
    assert httpx.get(f"{central.url}/sync/info").status_code == 401
    assert httpx.get(f"{central.url}/sync/info", headers={"Authorization": f"Basic {central.token}"}).status_code == 401
    response = httpx.get(f"{central.url}/sync/pull", headers={"Authorization": b"Bearer \xe9\xe9"})
    assert response.status_code == 401


def test_one_bad_operation_is_rejected_while_the_rest_of_the_batch_applies(client: httpx.Client) -> None:
    good = issue_op()
    unknown_key = {**issue_op(), "colour": "red"}
    unknown_field = issue_op()
    unknown_field["fields"]["colour"] = "red"
    bad_id = {**issue_op(), "op_id": "not-an-id"}
    nul = {**issue_op(), "author": "Thandi\x00"}
    child = {**issue_op(), "type": "note", "fields": {"issue_id": "x\x00", "text": "hello"}}
    too_big = issue_op()
    too_big["fields"]["needs"] = [{"kind": "skills", "detail": "x", "extra": 10**30}]
    wrong_type = issue_op()
    wrong_type["fields"]["ward"] = "twelve"
    ops = [good, unknown_key, unknown_field, bad_id, nul, child, too_big, wrong_type, "not an object"]
    response = client.post("/sync/push", content=_json({"ops": ops}), headers={"Content-Type": "application/json"})
    assert response.status_code == 422  # a non-object in the list is a shape error for the whole request
    response = client.post("/sync/push", content=_json({"ops": ops[:-1]}), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["acknowledged"] == [good["op_id"]]
    reasons = [entry["reason"] for entry in reply["rejected"]]
    assert len(reasons) == 7
    assert "operation has unknown keys: colour" in reasons
    assert "Unknown field 'colour' for issue" in reasons
    assert "op_id 'not-an-id' is not a UUIDv7" in reasons
    assert "author must not contain control characters" in reasons
    assert any("is not an issue's id" in reason for reason in reasons)
    assert any("cannot be stored" in reason for reason in reasons)
    assert "Ward must be a whole number, not 'twelve'" in reasons


def _json(value) -> bytes:
    return json.dumps(value).encode()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
KEYS = ("op_id", "type", "id", "device", "author", "hlc", "fields", "seen")


@st.composite
def damaged_operations(draw) -> dict:
    """A valid operation with one to three parts replaced by arbitrary JSON."""
    device = new_device_id()
    op = {
        "op_id": new_id(), "type": draw(st.sampled_from(["issue", "note", "action", "status_change", "lesson"])),
        "id": new_id(), "device": device, "author": "Thandi", "hlc": Clock(device).tick(), "seen": {},
        "fields": {"municipality": "EC121", "sector": "water", "title": "Burst", "severity": "high", "status": "new"},
    }
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(KEYS + ("fields.x", "seen.title", "fields.issue_id", "fields.ward")))
        value = draw(JSON)
        if "." in where:
            outer, inner = where.split(".")
            if isinstance(op.get(outer), dict):
                op[outer][{"x": draw(st.sampled_from(["title", "lat", "needs", "due", "text", "tags"]))}.get(inner, inner)] = value
        else:
            op[where] = value
    return op


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(damaged_operations(), min_size=1, max_size=4))
def test_damaged_operations_never_break_the_store(client: httpx.Client, ops: list[dict]) -> None:
    response = client.post("/sync/push", content=_json({"ops": ops}), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    reply = response.json()
    answered = len(reply["acknowledged"]) + len(reply["rejected"]) + len(reply["deferred"])
    assert answered == len(ops)
