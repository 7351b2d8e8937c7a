"""Open311 GeoReport v2: the pure mapping, the export, and the central store's routes on a real `fieldkit serve`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import xmltodict

from conftest import run_fieldkit
from fieldkit import model, open311

#: GeoReport v2's fields of a service request and of a service definition.
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description", "agency_responsible",
    "service_notice", "requested_datetime", "updated_datetime", "expected_datetime", "address", "address_id", "zipcode",
    "lat", "long", "media_url",
}
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}


def check_service_request(request: dict, codes: set[str]) -> None:
    """One request against the GeoReport v2 field list and types."""
    assert set(request) - {"extended_attributes"} == REQUEST_FIELDS
    assert isinstance(request["service_request_id"], str) and request["service_request_id"]
    assert request["status"] in ("open", "closed")
    assert request["service_code"] in codes
    for name in ("requested_datetime", "updated_datetime"):
        assert datetime.fromisoformat(request[name]).tzinfo is not None  # ISO 8601 with a zone
    if request["lat"] is not None:
        assert model.LAT_RANGE[0] <= request["lat"] <= model.LAT_RANGE[1]
        assert model.LON_RANGE[0] <= request["long"] <= model.LON_RANGE[1]
    else:
        assert request["long"] is None
    assert not {"contact_name", "contact_phone"} & set(request["extended_attributes"])


def test_the_service_list_is_every_sector_and_category():
    services = open311.services()
    codes = [s["service_code"] for s in services]
    assert len(codes) == len(set(codes)) == sum(len(c) for c in model.CATEGORIES.values())
    assert "water.burst_main" in codes and "other.other" in codes
    for service in services:
        assert set(service) == SERVICE_FIELDS
        assert service["metadata"] is False and service["type"] in ("realtime", "batch", "blackbox")
    burst = services[codes.index("water.burst_main")]
    assert (burst["service_name"], burst["group"]) == ("Burst or leaking pipe", "Water")


def test_an_issue_as_a_service_request():
    issue = {
        "id": "01a00000-0000-7000-8000-000000000001", "ref": "EC121-26-K7QM-0042", "municipality": "EC121", "ward": 12,
        "sector": "water", "category": "burst_main", "title": "Burst bulk main", "description": "Running for 3 days",
        "severity": "critical", "status": "escalated", "responsible": "Amatola Water", "lat": -32.03, "lon": 28.9,
        "contact_name": "Nomsa Khumalo", "created_at": "2026-03-01T08:00:00+00:00", "updated_at": "2026-03-05T09:00:00+00:00",
    }
    changes = [{"to_status": "acknowledged", "note": "", "at": "2026-03-02T08:00:00+00:00"},
               {"to_status": "escalated", "note": "No response after two follow-ups", "at": "2026-03-05T09:00:00+00:00"}]
    request = open311.service_request(issue, changes)
    check_service_request(request, {s["service_code"] for s in open311.services()})
    assert request["status"] == "open" and request["status_notes"] == "No response after two follow-ups"
    assert (request["lat"], request["long"]) == (-32.03, 28.9)
    assert request["service_notice"] == "Water Services Authority: Amathole (DC12)"
    assert request["extended_attributes"]["ref"] == "EC121-26-K7QM-0042" and "Nomsa" not in json.dumps(request)
    assert open311.service_request({**issue, "status": "resolved", "category": ""})["status"] == "closed"
    assert open311.service_request({**issue, "category": ""})["service_code"] == "water.other"


def test_query_rules_follow_the_spec():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)

    def issue(n: int, days_ago: int, **values) -> dict:
        created = (now - timedelta(days=days_ago)).isoformat()
        return {"id": f"id-{n}", "ref": f"REF-{n}", "sector": "water", "category": "burst_main", "status": "new", "created_at": created, **values}

    issues = [issue(1, 10), issue(2, 100), issue(3, 20, status="closed"), issue(4, 5, sector="roads", category="potholes"),
              issue(5, 1, deleted=True)]
    ids = lambda found: [v["id"] for v in found]  # noqa: E731
    assert ids(open311.select_requests(issues, now=now)) == ["id-4", "id-1", "id-3"]  # the last 90 days, newest first
    assert ids(open311.select_requests(issues, status="open", now=now)) == ["id-4", "id-1"]
    assert ids(open311.select_requests(issues, service_code="water.burst_main", start_date="2026-01-01T00:00:00Z", now=now)) == ["id-1", "id-3", "id-2"]
    assert ids(open311.select_requests(issues, end_date="2026-05-20", now=now)) == ["id-3", "id-2"]
    assert ids(open311.select_requests(issues, service_request_id="id-2,ref-3,id-5", status="open", now=now)) == ["id-2", "id-3"]
    for bad in ({"status": "pending"}, {"start_date": "yesterday"}, {"start_date": "2026-05-02", "end_date": "2026-05-01"}):
        with pytest.raises(open311.QueryError):
            open311.select_requests(issues, now=now, **bad)


def test_open311_export_writes_requests_and_the_service_list(fieldkit, tmp_path):
    assert fieldkit("demo", "--issues", "30").returncode == 0
    out = tmp_path / "requests.json"
    result = fieldkit("export", "--format", "open311", "-o", str(out))
    assert result.returncode == 0 and "requests-services.json" in result.stderr
    requests = json.loads(out.read_text(encoding="utf-8"))
    services = json.loads((tmp_path / "requests-services.json").read_text(encoding="utf-8"))
    codes = {s["service_code"] for s in services}
    assert len(requests) == 30
    for request in requests:
        check_service_request(request, codes)


# -- the central store's routes, on a real `fieldkit serve` -----------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """A central store on loopback holding a synced demo register; tokens for an admin and an Eastern Cape facilitator."""
    root = tmp_path_factory.mktemp("open311")
    db = f"sqlite:///{root / 'central.sqlite3'}"
    server_home, laptop = root / "server-home", root / "laptop"

    def token(*args: str) -> str:
        made = run_fieldkit(server_home, "user", "add", *args, "--db", db)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]

    tokens = {"admin": token("admin", "--role", "admin"), "ec": token("ec", "--role", "facilitator", "--province", "EC")}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "serve.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "fieldkit", "serve", "--db", db, "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "FIELDKIT_HOME": str(server_home)})
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (root / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "fieldkit serve did not come up"
            time.sleep(0.05)
        assert run_fieldkit(laptop, "demo", "--issues", "80").returncode == 0
        synced = run_fieldkit(laptop, "sync", "--server", url, "--token", tokens["admin"])
        assert synced.returncode == 0, synced.stderr
        listed = json.loads(run_fieldkit(laptop, "find", "--json").stdout)
        yield url, tokens, listed
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def _get(url: str, token: str | None, path: str, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{url}/open311/v2/{path}", params=params, headers=headers, timeout=30)


def test_central_store_lists_services_and_requests(central):
    url, tokens, listed = central
    services = _get(url, tokens["admin"], "services.json")
    assert services.status_code == 200 and services.json() == open311.services()
    codes = {s["service_code"] for s in services.json()}
    everything = _get(url, tokens["admin"], "requests.json", start_date="2000-01-01T00:00:00Z")
    assert everything.status_code == 200
    requests = everything.json()
    assert len(requests) == len(listed) == 80
    for request in requests:
        check_service_request(request, codes)
    created = [r["requested_datetime"] for r in requests]
    assert created == sorted(created, reverse=True)
    recent = _get(url, tokens["admin"], "requests.json").json()  # the spec's default: the last 90 days
    cutoff = datetime.now(timezone.utc) - timedelta(days=90)
    assert 0 < len(recent) < 80 and all(datetime.fromisoformat(r["requested_datetime"]) >= cutoff for r in recent)


def test_central_store_filters_like_the_spec(central):
    url, tokens, listed = central
    admin = tokens["admin"]
    closed = _get(url, admin, "requests.json", status="closed", start_date="2000-01-01").json()
    expected_closed = {i["id"] for i in listed if i["status"] in ("resolved", "closed")}
    assert {r["service_request_id"] for r in closed} == expected_closed
    water = _get(url, admin, "requests.json", service_code="water.burst_main,water.no_supply", start_date="2000-01-01").json()
    assert {r["service_request_id"] for r in water} == {
        i["id"] for i in listed if i["sector"] == "water" and i["category"] in ("burst_main", "no_supply")}
    two = [listed[0]["id"], listed[1]["ref"]]
    by_id = _get(url, admin, "requests.json", service_request_id=",".join(two)).json()
    assert [r["service_request_id"] for r in by_id] == [listed[0]["id"], listed[1]["id"]]
    [one] = _get(url, admin, f"requests/{listed[2]['id']}.json").json()
    assert one["service_request_id"] == listed[2]["id"] and one["extended_attributes"]["ref"] == listed[2]["ref"]
    [same] = _get(url, admin, f"requests/{listed[2]['ref']}.json").json()
    assert same == one


def test_central_store_scopes_by_token_and_answers_errors_in_open311_form(central):
    url, tokens, listed = central
    mine = _get(url, tokens["ec"], "requests.json", start_date="2000-01-01").json()
    eastern_cape = {i["id"] for i in listed if i["province"] == "EC"}
    assert {r["service_request_id"] for r in mine} == eastern_cape
    outside = next(i for i in listed if i["province"] != "EC")
    missing = _get(url, tokens["ec"], f"requests/{outside['id']}.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
    bad = _get(url, tokens["admin"], "requests.json", start_date="last tuesday")
    assert bad.status_code == 400 and "start_date" in bad.json()[0]["description"]
    assert _get(url, tokens["admin"], "requests.json", status="pending").status_code == 400
    assert _get(url, None, "requests.json").status_code == 401
    assert _get(url, "not-a-token", "services.json").status_code == 401


# -- what off-the-shelf GeoReport v2 clients need ------------------------------------------
# Read with plain httpx against the spec's documented shapes, and XML with xmltodict, the parser the
# `georeport` client on PyPI uses. That client itself (0.3.1) sends api_key only when it posts, so
# it cannot read a store that asks every reader for a key.


def _plain(url: str, path: str, **params) -> httpx.Response:
    return httpx.get(f"{url}/open311/v2/{path}", params=params, timeout=30)


def test_api_key_parameter_as_the_spec_sends_it(central):
    url, tokens, listed = central
    by_key = _plain(url, "requests.json", api_key=tokens["admin"], start_date="2000-01-01")
    by_bearer = _get(url, tokens["admin"], "requests.json", start_date="2000-01-01")
    assert by_key.status_code == 200 and by_key.json() == by_bearer.json() and len(by_key.json()) == 80
    assert _plain(url, "services.json", api_key=tokens["ec"]).json() == open311.services()
    ec = _plain(url, "requests.json", api_key=tokens["ec"], start_date="2000-01-01").json()
    assert {r["service_request_id"] for r in ec} == {i["id"] for i in listed if i["province"] == "EC"}


@pytest.mark.parametrize("path, params, status", [
    ("requests.json", {}, 401),
    ("services.json", {"api_key": "not-a-token"}, 401),
    ("requests.json", {"api_key": "ADMIN", "page_size": "lots"}, 400),
    ("requests.json", {"api_key": "ADMIN", "page_size": "5000"}, 400),
    ("requests.json", {"api_key": "ADMIN", "service_request_id": "x" * 5000}, 400),
    ("requests/01234567-89ab-7cde-8f01-23456789abcd.json", {"api_key": "ADMIN"}, 404),
])
def test_every_4xx_is_the_specs_error_list(central, path, params, status):
    url, tokens, _ = central
    params = {k: (tokens["admin"] if v == "ADMIN" else v) for k, v in params.items()}
    answer = _plain(url, path, **params)
    assert answer.status_code == status
    [error] = answer.json()
    assert set(error) == {"code", "description"} and error["code"] == status and error["description"]
    xml = _plain(url, path.replace(".json", ".xml"), **params)
    assert xml.status_code == status and xml.headers["content-type"].startswith("application/xml")
    parsed = xmltodict.parse(xml.content)["errors"]["error"]
    assert (int(parsed["code"]), parsed["description"]) == (status, error["description"])


def test_xml_beside_json(central):
    url, tokens, listed = central
    key = tokens["admin"]
    services = xmltodict.parse(_plain(url, "services.xml", api_key=key).content)["services"]["service"]
    assert [s["service_code"] for s in services] == [s["service_code"] for s in open311.services()]
    as_json = _plain(url, "requests.json", api_key=key, start_date="2000-01-01").json()
    as_xml = xmltodict.parse(_plain(url, "requests.xml", api_key=key, start_date="2000-01-01").content)["service_requests"]["request"]
    assert [r["service_request_id"] for r in as_xml] == [r["service_request_id"] for r in as_json]
    first_json, first_xml = as_json[0], as_xml[0]
    assert first_xml["status"] == first_json["status"] and first_xml["extended_attributes"]["ref"] == first_json["extended_attributes"]["ref"]
    assert (float(first_xml["lat"]) if first_xml["lat"] else None) == first_json["lat"]
    one = xmltodict.parse(_plain(url, f"requests/{listed[3]['ref']}.xml", api_key=key).content)["service_requests"]["request"]
    assert one["service_request_id"] == listed[3]["id"]


def test_paging_reads_every_request(central):
    url, tokens, listed = central
    seen, page, pages = [], 1, 0
    while True:
        answer = _plain(url, "requests.json", api_key=tokens["admin"], start_date="2000-01-01", page_size="30", page=str(page))
        assert answer.status_code == 200 and answer.headers["X-Total-Count"] == "80"
        seen += [r["service_request_id"] for r in answer.json()]
        pages += 1
        if "Link" not in answer.headers:
            break
        assert 'rel="next"' in answer.headers["Link"] and f"page={page + 1}" in answer.headers["Link"]
        page += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 80 and set(seen) == {i["id"] for i in listed}
