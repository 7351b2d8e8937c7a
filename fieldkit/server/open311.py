"""The central store's read-only Open311 GeoReport v2 routes, so civic systems can read the register.

``GET /open311/v2/services.json``, ``/requests.json`` and ``/requests/{id}.json``,
behind the same bearer token as sync and scoped like it: an account sees the
issues of its municipalities and provinces. The mapping itself (services,
status, fields, the spec's query defaults) is ``fieldkit.open311``, shared
with ``fieldkit export --format open311``, so both say the same.
"""

from __future__ import annotations

from typing import Any, Iterator

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from fieldkit import merge, open311
from fieldkit.ids import is_record_id
from fieldkit.server.accounts import User
from fieldkit.server.app import PROBLEMS, current_user, get_db
from fieldkit.server.db import Database
from fieldkit.server.rules import Record

PAGE = 1000


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class ExtendedAttributes(BaseModel):
    model_config = ConfigDict(extra="allow")
    ref: str | None = None
    municipality: str | None = None
    municipality_name: str | None = None
    province: str | None = None
    ward: int | None = None
    severity: str | None = None
    fieldkit_status: str | None = None
    source: str | None = None


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    extended_attributes: ExtendedAttributes


class Open311Error(BaseModel):
    code: int
    description: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": list[Open311Error], "description": "a query parameter is wrong (GeoReport v2 error list)"},
    404: {"model": list[Open311Error], "description": "no such service request in your scope"},
    **{k: PROBLEMS[k] for k in (401, 422, 503)},
}

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def issue_values(record: Record) -> dict[str, Any]:
    """An issue record's current values as the register keeps them (id, updated_at added)."""
    stamp, _ = merge.last_change(record.state)
    return {**record.state.get("values", {}), "id": record.record_id, "updated_at": merge.stamp_time_iso(stamp)}


def _issues(db: Database, user: User) -> Iterator[dict[str, Any]]:
    after = ""
    while True:
        page = db.records(user, "issue", after_id=after, limit=PAGE)
        for record in page:
            yield issue_values(record)
        if len(page) < PAGE:
            return
        after = page[-1].record_id


def _request(db: Database, user: User, values: dict[str, Any]) -> dict[str, Any]:
    changes = [c.state.get("values", {}) for c in db.children(user, values["id"]) if c.type == "status_change"]
    return open311.service_request(values, changes)


def _error(status: int, description: str) -> JSONResponse:
    return JSONResponse(open311.error(status, description), status_code=status)


@router.get("/services.json", response_model=list[Service], responses={k: ERRORS[k] for k in (401, 503)})
def services(user: User = Depends(current_user)) -> list[dict[str, Any]]:
    """The service list: every sector's categories, ``service_code`` like ``water.burst_main``."""
    return open311.services()


@router.get("/requests.json", response_model=list[ServiceRequest], responses=ERRORS)
def requests(
    service_request_id: str | None = Query(None, max_length=4000, description="comma-delimited ids or references; overrides the other parameters"),
    service_code: str | None = Query(None, max_length=1000, description="comma-delimited service codes, e.g. water.burst_main"),
    start_date: str | None = Query(None, max_length=40, description="earliest requested_datetime, e.g. 2026-01-01T00:00:00Z"),
    end_date: str | None = Query(None, max_length=40, description="latest requested_datetime"),
    status: str | None = Query(None, max_length=20, description="open or closed (comma-delimited for both)"),
    user: User = Depends(current_user),
    db: Database = Depends(get_db),
) -> Any:
    """Service requests in your scope, newest first; without dates the last 90 days, at most 1000."""
    try:
        chosen = open311.select_requests(
            _issues(db, user),
            service_request_id=service_request_id,
            service_code=service_code,
            start_date=start_date,
            end_date=end_date,
            status=status,
        )
    except open311.QueryError as err:
        return _error(400, str(err))
    return [_request(db, user, values) for values in chosen]


@router.get("/requests/{request_id}.json", response_model=list[ServiceRequest], responses=ERRORS)
def request(
    request_id: str = Path(max_length=64, description="the service_request_id (an issue id) or the issue's reference"),
    user: User = Depends(current_user),
    db: Database = Depends(get_db),
) -> Any:
    """One service request, as a list of one (as GeoReport v2 answers)."""
    found = None
    if is_record_id(request_id.lower()):
        record = db.record(user, request_id.lower())
        if record is not None and record.type == "issue":
            found = issue_values(record)
    else:
        matches = open311.select_requests(_issues(db, user), service_request_id=request_id)
        found = matches[0] if matches else None
    if found is None or found.get("deleted"):
        return _error(404, f"no service request {request_id} in your scope")
    return [_request(db, user, found)]
