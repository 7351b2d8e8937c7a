"""Small holes in the central store's answers, against a real ``fieldkit serve``: a record outside the
account's area is answered as if it were not there, a refusal reason is said once, and a push with more
than one gzip member is refused rather than half-read."""

from __future__ import annotations

import gzip
import json
import secrets
from pathlib import Path

import httpx

from fieldkit.hlc import Clock
from fieldkit.ids import new_device_id, new_id
from fieldkit.sync import sync
from sync_fixtures import Central, add_user, capture, central, issue_op, open_laptop, server_states  # noqa: F401


def _push(url: str, token: str, ops: list[dict]) -> dict:
    response = httpx.post(f"{url}/sync/push", json={"ops": ops}, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _verdicts(reply: dict) -> list[tuple[str, str]]:
    """(kind, reason) per operation, in the order of the reply's lists."""
    return [("rejected", v["reason"]) for v in reply["rejected"]] + [("deferred", v["reason"]) for v in reply["deferred"]] + [
        ("acknowledged", "") for _ in reply["acknowledged"]]


def _edit(record_id: str, record_type: str = "issue", **fields) -> dict:
    device = new_device_id()
    return {"op_id": new_id(), "type": record_type, "id": record_id, "device": device, "author": "Prober",
            "hlc": Clock(device).tick(), "seen": {}, "fields": fields}


def test_a_record_outside_the_area_is_answered_as_if_it_did_not_exist(central: Central) -> None:
    buffalo = issue_op("BUF", "Sewer spill at the Buffalo City depot")
    assert _push(central.url, central.token, [buffalo])["acknowledged"] == [buffalo["op_id"]]
    prober = add_user(central.db_url, f"prober-{secrets.token_hex(3)}", "facilitator", ("EC121",))
    probes = {
        "edit": lambda rid: _edit(rid, title="Mine now"),
        "note": lambda rid: _edit(new_id(), "note", issue_id=rid, text="Hello"),
        "wrong type": lambda rid: _edit(rid, "note", text="Hello"),
    }
    for label, make in probes.items():
        real = _verdicts(_push(central.url, prober, [make(buffalo["id"])]))
        absent = _verdicts(_push(central.url, prober, [make(new_id())]))
        assert real == absent, label
        assert "BUF" not in str(real) and "Buffalo" not in str(real)
    stolen = _verdicts(_push(central.url, prober, [_edit(buffalo["id"], municipality="EC121", title="Mine now")]))
    assert stolen == [("rejected", "this record is outside your account's area")]
    state = server_states(central.db_url)[buffalo["id"]]
    assert state["values"]["municipality"] == "BUF" and state["values"]["title"] == "Sewer spill at the Buffalo City depot"


def test_a_refusal_reason_is_said_once_however_many_changes_wait_on_it(central: Central, tmp_path: Path) -> None:
    token = add_user(central.db_url, f"thandi-{secrets.token_hex(3)}", "facilitator", ("EC121",))
    laptop = open_laptop(tmp_path / "laptop")
    [theirs] = capture(laptop, 1, "BUF")
    action = laptop.add_action(theirs, "Ask the depot for the spill report", owner="Depot manager")
    first = sync(laptop, central.url, token)
    assert first.finished and first.sent == 0
    laptop.set_action_done(action["id"])
    second = sync(laptop)
    assert second.finished
    reasons = [entry["reason"] for entry in laptop.rejected_ops()]
    assert len(reasons) == 3
    assert all(reason.count("refused") <= 1 for reason in reasons), reasons
    assert sum(reason.startswith("it belongs to a change the central store refused: ") for reason in reasons) == 2


def test_extra_gzip_members_in_a_push_are_refused(central: Central) -> None:
    first, hidden = issue_op(), issue_op()
    headers = {"Authorization": f"Bearer {central.token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    body = gzip.compress(json.dumps({"ops": [first]}).encode()) + gzip.compress(json.dumps({"ops": [hidden]}).encode())
    response = httpx.post(f"{central.url}/sync/push", content=body, headers=headers, timeout=30)
    assert response.status_code == 400
    assert "one gzip member" in response.json()["detail"]
    trailing = gzip.compress(json.dumps({"ops": [first]}).encode()) + b"garbage"
    assert httpx.post(f"{central.url}/sync/push", content=trailing, headers=headers, timeout=30).status_code == 400
    assert first["id"] not in server_states(central.db_url) and hidden["id"] not in server_states(central.db_url)
