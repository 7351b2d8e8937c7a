"""The central store's read-only Open311 GeoReport v2 routes, so civic systems can read the register.

``GET /open311/v2/services.{json,xml}``, ``/requests.{json,xml}`` and
``/requests/{id}.{json,xml}``, scoped like sync: an account sees the issues of
its municipalities and provinces. The token is given as the spec's ``api_key``
parameter or as an ``Authorization: Bearer`` header. Every 4xx answer is the
spec's error list (``[{"code", "description"}]``, or ``<errors>`` in XML).
``requests`` pages with ``page`` and ``page_size`` (at most 1000), and says the
total in ``X-Total-Count`` and the next page in a ``Link`` header, so a national
analyst can read everything. The mapping itself is ``fieldkit.open311``, shared
with ``fieldkit export --format open311``, so both say the same.
"""

from __future__ import annotations

from typing import Any, Iterator

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict

from fieldkit import merge, open311
from fieldkit.ids import is_record_id
from fieldkit.server.accounts import User
from fieldkit.server.app import PROBLEMS, bearer, get_db
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
    401: {"model": list[Open311Error], "description": "no api_key (or bearer token), or one the store does not know"},
    404: {"model": list[Open311Error], "description": "no such service request in your scope"},
    503: PROBLEMS[503],
}
XML = "application/xml; charset=utf-8"
XML_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "GeoReport v2 XML"},
    **{code: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": ERRORS[code]["description"]}
       for code in (400, 401, 404)},
    503: PROBLEMS[503],
}

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def caller(
    request: Request,
    api_key: str | None = Query(None, description="your token, as GeoReport v2 clients send it (or use Authorization: Bearer)"),
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
) -> User | str:
    """The account asking, or why there is none (answered 401 in the spec's error form by the route)."""
    token = (api_key or "").strip() or (credentials.credentials if credentials else "")
    if not token:
        return "give your token as the api_key parameter (or in an Authorization: Bearer header)"
    user = get_db(request).user_for_token(token)
    if user is None:
        return "the central store does not know this api_key; check it, or ask your administrator for a new one"
    if user.revoked:
        return f"the account {user.name} has been revoked; ask your administrator for a new api_key"
    return user


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


def _request(db: Database, user: User, values: dict[str, Any], base: str = "") -> dict[str, Any]:
    from fieldkit.exports import media_url

    children = db.children(user, values["id"])
    changes = [c.state.get("values", {}) for c in children if c.type == "status_change"]
    attached = [c.state.get("values", {}) for c in children if c.type == "attachment" and not c.state.get("values", {}).get("deleted")]
    return open311.service_request(values, changes, media_url(base or "/", attached) if attached else None)


def _answer(fmt: str, root: str, item: str, records: list[dict[str, Any]], status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    if fmt == "xml":
        return Response(open311.xml_document(root, item, records), status_code=status, media_type=XML, headers=headers)
    return JSONResponse(records, status_code=status, headers=headers)


def _error(fmt: str, status: int, description: str) -> Response:
    headers = {"WWW-Authenticate": 'Bearer, api_key'} if status == 401 else None
    return _answer(fmt, "errors", "error", open311.error(status, description), status, headers)


def _too_long(**values: str | None) -> str | None:
    for name, value in values.items():
        if value is not None and len(value) > open311.MAX_PARAMETER:
            return f"{name} is longer than {open311.MAX_PARAMETER} characters"
    return None


def _services(fmt: str, who: User | str) -> Response:
    if isinstance(who, str):
        return _error(fmt, 401, who)
    return _answer(fmt, "services", "service", open311.services())


@router.get("/services.json", response_model=list[Service], responses={k: ERRORS[k] for k in (401, 503)})
def services(who: User | str = Depends(caller)) -> Any:
    """The service list: every sector's categories, ``service_code`` like ``water.burst_main``."""
    return _services("json", who)


@router.get("/services.xml", response_class=Response, responses={k: XML_RESPONSES[k] for k in (200, 401, 503)})
def services_xml(who: User | str = Depends(caller)) -> Any:
    """The service list in GeoReport v2's XML form."""
    return _services("xml", who)


def _requests(fmt: str, request: Request, who: User | str, db: Database, params: dict[str, str | None]) -> Response:
    if isinstance(who, str):
        return _error(fmt, 401, who)
    try:
        problem = _too_long(**params)
        if problem:
            raise open311.QueryError(problem)
        page = open311.page_number(params.pop("page"), "page", 1)
        page_size = open311.page_number(params.pop("page_size"), "page_size", open311.MAX_REQUESTS, open311.MAX_REQUESTS)
        found = open311.select_requests(_issues(db, who), **params)
    except open311.QueryError as err:
        return _error(fmt, 400, str(err))
    chosen = open311.page_of(found, page, page_size)
    headers = {"X-Total-Count": str(len(found))}
    if page * page_size < len(found):
        headers["Link"] = f'<{request.url.include_query_params(page=page + 1, page_size=page_size)}>; rel="next"'
    return _answer(fmt, "service_requests", "request", [_request(db, who, values, str(request.base_url)) for values in chosen], headers=headers)


QUERY_DOCS = {
    "service_request_id": "comma-delimited ids or references; overrides the other parameters",
    "service_code": "comma-delimited service codes, e.g. water.burst_main",
    "start_date": "earliest requested_datetime, e.g. 2026-01-01T00:00:00Z",
    "end_date": "latest requested_datetime",
    "status": "open or closed (comma-delimited for both)",
    "page": "which page, from 1 (default 1)",
    "page_size": "requests a page, at most 1000 (default 1000)",
}


@router.get("/requests.json", response_model=list[ServiceRequest], responses=ERRORS)
def requests(
    request: Request,
    service_request_id: str | None = Query(None, description=QUERY_DOCS["service_request_id"]),
    service_code: str | None = Query(None, description=QUERY_DOCS["service_code"]),
    start_date: str | None = Query(None, description=QUERY_DOCS["start_date"]),
    end_date: str | None = Query(None, description=QUERY_DOCS["end_date"]),
    status: str | None = Query(None, description=QUERY_DOCS["status"]),
    page: str | None = Query(None, description=QUERY_DOCS["page"]),
    page_size: str | None = Query(None, description=QUERY_DOCS["page_size"]),
    who: User | str = Depends(caller),
    db: Database = Depends(get_db),
) -> Any:
    """Service requests in your scope, newest first; without dates the last 90 days; pages of at most 1000."""
    params = dict(service_request_id=service_request_id, service_code=service_code, start_date=start_date,
                  end_date=end_date, status=status, page=page, page_size=page_size)
    return _requests("json", request, who, db, params)


@router.get("/requests.xml", response_class=Response, responses=XML_RESPONSES)
def requests_xml(
    request: Request,
    service_request_id: str | None = Query(None, description=QUERY_DOCS["service_request_id"]),
    service_code: str | None = Query(None, description=QUERY_DOCS["service_code"]),
    start_date: str | None = Query(None, description=QUERY_DOCS["start_date"]),
    end_date: str | None = Query(None, description=QUERY_DOCS["end_date"]),
    status: str | None = Query(None, description=QUERY_DOCS["status"]),
    page: str | None = Query(None, description=QUERY_DOCS["page"]),
    page_size: str | None = Query(None, description=QUERY_DOCS["page_size"]),
    who: User | str = Depends(caller),
    db: Database = Depends(get_db),
) -> Any:
    """Service requests in GeoReport v2's XML form."""
    params = dict(service_request_id=service_request_id, service_code=service_code, start_date=start_date,
                  end_date=end_date, status=status, page=page, page_size=page_size)
    return _requests("xml", request, who, db, params)


def _one(fmt: str, request_id: str, who: User | str, db: Database) -> Response:
    if isinstance(who, str):
        return _error(fmt, 401, who)
    if len(request_id) > 64:
        return _error(fmt, 404, "no service request with so long an id")
    found = None
    if is_record_id(request_id.lower()):
        record = db.record(who, request_id.lower())
        if record is not None and record.type == "issue":
            found = issue_values(record)
    else:
        matches = open311.select_requests(_issues(db, who), service_request_id=request_id)
        found = matches[0] if matches else None
    if found is None or found.get("deleted"):
        return _error(fmt, 404, f"no service request {request_id} in your scope")
    return _answer(fmt, "service_requests", "request", [_request(db, who, found)])


@router.get("/requests/{request_id}.json", response_model=list[ServiceRequest], responses=ERRORS)
def request(
    request_id: str = Path(description="the service_request_id (an issue id) or the issue's reference"),
    who: User | str = Depends(caller),
    db: Database = Depends(get_db),
) -> Any:
    """One service request, as a list of one (as GeoReport v2 answers)."""
    return _one("json", request_id, who, db)


@router.get("/requests/{request_id}.xml", response_class=Response, responses=XML_RESPONSES)
def request_xml(
    request_id: str = Path(description="the service_request_id (an issue id) or the issue's reference"),
    who: User | str = Depends(caller),
    db: Database = Depends(get_db),
) -> Any:
    """One service request in GeoReport v2's XML form."""
    return _one("xml", request_id, who, db)
