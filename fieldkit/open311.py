"""The register in Open311 GeoReport v2 terms, as pure functions.

Civic systems that already read Open311 can read fieldkit's register: each
sector's categories are the service list (``service_code`` ``water.burst_main``),
each issue a service request. Used by ``fieldkit export --format open311`` and
by the central store's read-only ``/open311/v2`` routes, so both say the same.

Mapping decisions:
- ``service_request_id`` is the issue's id (unique everywhere, without a
  network); the short reference people quote is in ``extended_attributes.ref``;
- new, acknowledged, in progress and escalated are ``open``; resolved and
  closed are ``closed``; the fieldkit status is in ``extended_attributes``;
- ``agency_responsible`` is the responsible institution; for water and
  sanitation ``service_notice`` names the Water Services Authority;
- ``status_notes`` is the note on the latest status change;
- ``media_url`` is the central store's copy of the issue's first photo (null
  without one); ``expected_datetime``, ``address_id`` and ``zipcode`` are null:
  the register does not record them. Personal information is never included.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from fieldkit import model, refdata

#: GeoReport v2's order of fields in a service request.
REQUEST_FIELDS = (
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
)
SERVICE_FIELDS = ("service_code", "service_name", "description", "metadata", "type", "keywords", "group")

#: The spec's defaults when a client gives no dates: the last 90 days, at most 1000 requests a page.
DEFAULT_DAYS = 90
MAX_REQUESTS = 1000
#: Longest query text accepted (a long list of ids); longer is answered 400 in the spec's error form.
MAX_PARAMETER = 4000


class QueryError(ValueError):
    """A request parameter an Open311 client got wrong; answered with HTTP 400."""


def service_code(sector: str | None, category: str | None) -> str:
    """``sector.category``; an issue without a category falls under its sector's 'other'."""
    return f"{sector or 'other'}.{category or 'other'}"


def services() -> list[dict[str, Any]]:
    """Every sector's categories as GeoReport v2 service definitions."""
    found = []
    for sector, categories in model.CATEGORIES.items():
        for category, label in categories.items():
            sector_name = model.SECTORS[sector]
            found.append({
                "service_code": service_code(sector, category),
                "service_name": label if category != "other" else f"{sector_name}: other",
                "description": f"{sector_name}: {label}",
                "metadata": False,
                "type": "realtime",
                "keywords": ", ".join(dict.fromkeys([sector, category.replace("_", " ")])),
                "group": sector_name,
            })
    return found


def service_name(code: str) -> str | None:
    sector, _, category = code.partition(".")
    label = model.CATEGORIES.get(sector, {}).get(category)
    if label is None:
        return None
    return label if category != "other" else f"{model.SECTORS[sector]}: other"


def open311_status(status: str | None) -> str:
    return "open" if status in model.OPEN_STATUSES else "closed"


def _notes(status_changes: Iterable[dict[str, Any]]) -> str | None:
    latest = None
    for change in status_changes:
        if latest is None or (change.get("at") or "") >= (latest.get("at") or ""):
            latest = change
    if latest and latest.get("note"):
        return latest["note"]
    return None


def _service_notice(values: dict[str, Any]) -> str | None:
    if values.get("sector") not in ("water", "sanitation") or not values.get("municipality"):
        return None
    wsa, explanation = refdata.water_services_authority(values["municipality"])
    if wsa is None:
        return f"Water Services Authority: {explanation}"
    return f"Water Services Authority: {wsa.current_name} ({wsa.code})"


def service_request(values: dict[str, Any], status_changes: Iterable[dict[str, Any]] = (),
                    media_url: str | None = None) -> dict[str, Any]:
    """One issue as a GeoReport v2 service request (plus ``extended_attributes``)."""
    code = service_code(values.get("sector"), values.get("category"))
    muni = refdata.get(values.get("municipality") or "")
    title = values.get("title") or ""
    description = values.get("description") or ""
    lat, lon = values.get("lat"), values.get("lon")
    located = isinstance(lat, (int, float)) and isinstance(lon, (int, float))
    return {
        "service_request_id": values["id"],
        "status": open311_status(values.get("status")),
        "status_notes": _notes(status_changes),
        "service_name": service_name(code) or model.category_label(values.get("sector"), values.get("category")),
        "service_code": code,
        "description": f"{title}\n\n{description}" if description else title,
        "agency_responsible": values.get("responsible") or None,
        "service_notice": _service_notice(values),
        "requested_datetime": values.get("created_at") or None,
        "updated_datetime": values.get("updated_at") or None,
        "expected_datetime": None,
        "address": values.get("address") or None,
        "address_id": None,
        "zipcode": None,
        "lat": float(lat) if located else None,
        "long": float(lon) if located else None,
        "media_url": media_url,
        "extended_attributes": {
            "ref": values.get("ref") or None,
            "municipality": values.get("municipality") or None,
            "municipality_name": muni.current_name if muni else None,
            "province": muni.province if muni else None,
            "ward": values.get("ward"),
            "severity": values.get("severity") or None,
            "fieldkit_status": values.get("status") or None,
            "source": values.get("source") or None,
        },
    }


def parse_datetime(text: str, name: str) -> datetime:
    """A w3c date-time (``2010-01-01T00:00:00Z``) or a date; naive times are taken as UTC."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name} '{text}' is not a date-time such as 2010-01-01T00:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _listed(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def select_requests(
    issues: Iterable[dict[str, Any]],
    *,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The issues a GeoReport v2 ``requests.json`` query asks for, newest first.

    As the spec says: ``service_request_id`` (comma-delimited) overrides every
    other parameter; without dates the last 90 days are searched. Deleted issues
    are never returned. Every match is returned: ``page_of`` cuts the page.
    """
    live = [v for v in issues if not v.get("deleted")]
    wanted_ids = _listed(service_request_id)
    if wanted_ids:
        by_key = {}
        for values in live:
            by_key[values.get("id")] = values
            if values.get("ref"):
                by_key.setdefault(values["ref"].upper(), values)
        found = [by_key.get(i) or by_key.get(i.upper()) for i in wanted_ids]
        return [v for v in found if v is not None]
    statuses = {s.lower() for s in _listed(status)}
    unknown = statuses - {"open", "closed"}
    if unknown:
        raise QueryError(f"status must be open or closed, not '{', '.join(sorted(unknown))}'")
    codes = set(_listed(service_code))
    moment = now or datetime.now(timezone.utc)
    end = parse_datetime(end_date, "end_date") if end_date else None
    start = parse_datetime(start_date, "start_date") if start_date else None
    if start is None and end is None:
        start = moment - timedelta(days=DEFAULT_DAYS)
    if start and end and start > end:
        raise QueryError("start_date is after end_date")
    found = []
    for values in live:
        if codes and service_code_of(values) not in codes:
            continue
        if statuses and open311_status(values.get("status")) not in statuses:
            continue
        created = values.get("created_at")
        if start or end:
            try:
                when = parse_datetime(created or "", "requested_datetime")
            except QueryError:
                continue
            if (start and when < start) or (end and when > end):
                continue
        found.append(values)
    found.sort(key=lambda v: (v.get("created_at") or "", v.get("id") or ""), reverse=True)
    return found


def service_code_of(values: dict[str, Any]) -> str:
    return service_code(values.get("sector"), values.get("category"))


def error(code: int, description: str) -> list[dict[str, Any]]:
    """GeoReport v2's error body: a list of {code, description}."""
    return [{"code": code, "description": description}]


def page_number(text: str | None, name: str, default: int, highest: int | None = None) -> int:
    """``page`` and ``page_size`` as typed in a URL: whole numbers from 1 (``page_size`` at most ``highest``)."""
    if text is None or text.strip() == "":
        return default
    value = text.strip()
    if not value.isdigit() or int(value) < 1:
        raise QueryError(f"{name} must be a whole number from 1, not '{text}'")
    if highest is not None and int(value) > highest:
        raise QueryError(f"{name} may be at most {highest}; ask for the next page with page=2, 3, ...")
    return int(value)


def page_of(found: list[dict[str, Any]], page: int, page_size: int) -> list[dict[str, Any]]:
    """One page of requests (``page`` from 1), so a client can read every request, not only the first 1000."""
    start = (page - 1) * page_size
    return found[start : start + page_size]


def xml_document(root: str, item: str, records: Iterable[dict[str, Any]]) -> bytes:
    """GeoReport v2's XML form: ``<services><service>...``, ``<service_requests><request>...``,
    ``<errors><error>...``; a null is an empty element, a nested object (extended_attributes) nested elements."""
    from xml.etree.ElementTree import Element, SubElement, tostring

    top = Element(root)
    for record in records:
        _xml_fields(SubElement(top, item), record)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + tostring(top, encoding="utf-8", xml_declaration=False)


def _xml_fields(parent: Any, record: dict[str, Any]) -> None:
    from xml.etree.ElementTree import SubElement

    for name, value in record.items():
        child = SubElement(parent, name)
        if isinstance(value, dict):
            _xml_fields(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = _XML_ILLEGAL.sub("", str(value))


_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
