"""The register's rules, with the messages a facilitator reads."""

import pytest

from fieldkit import model, refdata


def test_all_257_municipalities_are_bundled_with_their_districts():
    munis = refdata.municipalities()
    assert len(munis) == 257
    assert sum(m.category == "A" for m in munis.values()) == 8
    assert sum(m.category == "C" for m in munis.values()) == 44
    for muni in munis.values():
        if muni.category == "B":
            district = munis[muni.district_code]
            assert district.category == "C" and district.province == muni.province


def test_unknown_municipality_suggests_the_likely_one():
    message = model.check_municipality("BUFF")
    assert message == "Unknown municipality code 'BUFF' — did you mean BUF (Buffalo City)?"


def test_municipality_found_by_later_name():
    found = refdata.search("Collins Chabane")
    assert found and found[0].code == "LIM345"
    assert refdata.get("LIM345").display_name == "Collins Chabane (was Makhado-Thulamela)"


def test_water_services_authority_is_never_guessed():
    wsa, why = refdata.water_services_authority("EC139")  # a local whose district is the WSA
    assert wsa is not None and wsa.code == "DC13"
    unknown = [m for m in refdata.municipalities().values() if m.wsa is None and m.category == "B"]
    assert unknown, "the bundled list has municipalities whose WSA status is not known"
    for muni in unknown:
        wsa, why = refdata.water_services_authority(muni.code)
        assert "not known" in why or wsa is not None


def good_issue(**changes):
    values = {"municipality": "BUF", "sector": "water", "title": "Burst bulk main", "severity": "high", "status": "new"}
    values.update(changes)
    return values


def test_a_good_issue_has_no_problems():
    assert model.problems("issue", good_issue(category="burst_main", ward=12, lat=-32.9, lon=27.8)) == {}


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"sector": "plumbing"}, "sector", "Unknown sector 'plumbing'"),
        ({"category": "potholes"}, "category", "Unknown category 'potholes' for Water"),
        ({"severity": "urgent"}, "severity", "choose one of: critical, high, medium, low"),
        ({"ward": 0}, "ward", "a whole number from 1 to 200"),
        ({"ward": 999}, "ward", "does not yet know how many wards each municipality has"),
        ({"ward": "twelve"}, "ward", "Ward must be a whole number"),
        ({"lat": -12.0, "lon": 27.0}, "lat", "outside South Africa"),
        ({"lat": -30.0}, "lon", "Give both latitude and longitude"),
        ({"title": "  "}, "title", "Title is required"),
        ({"title": "x" * 200}, "title", "keep it under 120"),
        ({"contact_phone": "12345"}, "contact_phone", "not a South African number"),
    ],
)
def test_wrong_values_get_a_message_naming_the_problem(changes, field, words):
    found = model.problems("issue", good_issue(**changes))
    assert field in found and words in found[field]


def test_unknown_fields_are_refused():
    assert "Unknown field 'colour'" in model.problems("issue", good_issue(colour="red"))["colour"]


def test_phone_numbers_are_normalised():
    assert model.normalise_phone("082 123 4567") == "+27821234567"
    assert model.normalise_phone("+27 (82) 123-4567") == "+27821234567"


@pytest.mark.parametrize(
    "current, new, note, problem",
    [
        ("new", "acknowledged", None, None),
        ("new", "escalated", None, "Say why when escalating"),
        ("new", "escalated", "no response in 3 weeks", None),
        ("in_progress", "closed", "", "Say why when closing"),
        ("closed", "in_progress", None, "Say why when reopening"),
        ("closed", "in_progress", "pump failed again", None),
        ("closed", "resolved", "x", "can go to"),
        ("new", "new", None, "already new"),
        ("new", "fixed", None, "Unknown status"),
    ],
)
def test_status_lifecycle(current, new, note, problem):
    found = model.check_transition(current, new, note)
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_overdue_actions():
    from datetime import date

    today = date(2026, 11, 30)
    assert model.is_overdue({"due": "2026-11-29", "done": False}, today)
    assert not model.is_overdue({"due": "2026-11-30", "done": False}, today)
    assert not model.is_overdue({"due": "2026-11-01", "done": True}, today)
    assert not model.is_overdue({"due": None}, today)


def test_distance_between_two_points_on_one_street():
    assert 40 < model.distance_m(-32.9700, 27.8700, -32.9704, 27.8702) < 60


def test_search_words_ward_numbers_and_id_prefixes():
    from fieldkit.filters import IssueFilter, matches, row_from_values

    issue_id = "01a22b63-c042-7ebf-8723-165934f1d9fa"
    row = row_from_values(issue_id, {"municipality": "BUF", "ward": 123, "sector": "water", "title": "Burst main", "status": "new"})
    assert matches(row, IssueFilter(text="ward 123"))
    assert not matches(row, IssueFilter(text="ward 12"))
    assert matches(row, IssueFilter(text="buffalo burst"))
    assert matches(row, IssueFilter(text="01a22b63-c0"))
    assert not matches(row, IssueFilter(text="165934f1"))  # ids match from their start only
