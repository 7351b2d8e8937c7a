"""Words people type, matched to the register's codes: pure functions, no I/O.

Spreadsheets, the command line and the app all meet the same words — a
municipality by its name or later name, a province by any of its common codes,
a status such as "Done", a category label such as "Burst pipe", a date written
the South African way. Each function answers the code, or None when the text
matches nothing (the caller says what to do about it).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

from fieldkit import model, refdata


_NOT_WORD = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=65536)
def words(text: str) -> str:
    """Text reduced for comparing: lower case, letters and digits only, single spaces.

    Cached: a spreadsheet repeats the same few words ('Water', 'Open') on every row."""
    return " ".join(_NOT_WORD.sub(" ", text.lower().replace("&", " and ")).split())


# -- provinces ----------------------------------------------------------------------

#: Every code in common use for each province (MDB, ISO 3166-2:ZA, older and Stats SA forms), by MDB code.
PROVINCE_ALIASES: dict[str, tuple[str, ...]] = {
    "EC": ("EC", "ECP", "E Cape"),
    "FS": ("FS", "OFS", "FSP", "Orange Free State"),
    "GT": ("GT", "GP", "GAU", "GTG", "Gauteng Province", "PWV"),
    "KZN": ("KZN", "NL", "ZN", "KN", "Natal", "Kwazulu Natal", "KwaZulu"),
    "LIM": ("LIM", "LP", "NP", "Northern Province", "Northern Transvaal"),
    "MP": ("MP", "MPU", "Eastern Transvaal"),
    "NC": ("NC", "NCP", "N Cape"),
    "NW": ("NW", "NWP", "North-West"),
    "WC": ("WC", "WCP", "W Cape"),
}


@lru_cache(maxsize=1)
def _provinces() -> dict[str, str]:
    table: dict[str, str] = {}
    for code, name in refdata.PROVINCES.items():
        for alias in (code, name, *PROVINCE_ALIASES.get(code, ())):
            table[words(alias).replace(" ", "")] = code
    return table


def province_code(text: str) -> str | None:
    """The MDB province code (GT, KZN, LIM, ...) for any common code or name: GP, NL, NP, 'Kwazulu Natal'."""
    key = words(text or "").replace(" ", "")
    if key.startswith("za") and key[2:] in _provinces():  # ISO 3166-2 form, ZA-GP
        key = key[2:]
    return _provinces().get(key)


# -- municipalities -----------------------------------------------------------------

_MUNI_NOISE = re.compile(r"\b(local|metropolitan|metro|district|municipality|municipal|city of|the|lm|dm|mm)\b")


def _muni_key(text: str) -> str:
    return " ".join(_MUNI_NOISE.sub(" ", words(text)).split())


def _muni_keys(text: str) -> tuple[str, ...]:
    """The forms a name is looked up by: as written, without 'Local Municipality' and the like,
    and without spaces ('OR Tambo' and 'O.R.Tambo')."""
    short = _muni_key(text)
    return (words(text), short, short.replace(" ", ""))


@lru_cache(maxsize=1)
def _municipalities() -> dict[str, str | None]:
    """Each name and later name (with and without 'Local Municipality' and the like) to its code;
    a name two municipalities share (a district and its namesake local) maps to None."""
    table: dict[str, str | None] = {}
    for muni in refdata.municipalities().values():
        for name in {muni.name, muni.name_later} - {""}:
            for key in set(_muni_keys(name)):
                if key and table.get(key, muni.code) != muni.code:
                    table[key] = None
                elif key:
                    table[key] = muni.code
    return table


@lru_cache(maxsize=4096)
def municipality_code(text: str) -> str | None:
    """The MDB code for a code (bUf), a name or later name ('Buffalo City', 'Nelson Mandela Bay Metro'),
    or 'CODE Name' as exports write it ('EC121 Mbhashe'). None when unknown or shared by two."""
    value = (text or "").strip()
    if not value:
        return None
    if refdata.get(value):
        return value.upper()
    first, _, rest = value.partition(" ")
    if rest and refdata.get(first):
        return first.upper()
    for key in _muni_keys(value):
        code = _municipalities().get(key)
        if code:
            return code
    return None


# -- choices ------------------------------------------------------------------------

#: Status words people write, beyond the labels and codes themselves.
STATUS_WORDS: dict[str, str] = {
    "open": "new", "reported": "new", "logged": "new", "pending": "new", "not started": "new", "outstanding": "new",
    "received": "acknowledged", "noted": "acknowledged", "assessed": "acknowledged", "assigned": "acknowledged",
    "in progress": "in_progress", "wip": "in_progress", "busy": "in_progress", "ongoing": "in_progress",
    "work in progress": "in_progress", "underway": "in_progress", "started": "in_progress", "being attended": "in_progress",
    "escalated": "escalated", "referred": "escalated",
    "done": "resolved", "fixed": "resolved", "completed": "resolved", "complete": "resolved", "repaired": "resolved",
    "resolved": "resolved", "sorted": "resolved", "finished": "resolved",
    "closed": "closed", "cancelled": "closed", "canceled": "closed", "withdrawn": "closed", "duplicate": "closed",
}

SECTOR_WORDS: dict[str, str] = {
    "water supply": "water", "water and sanitation": "water", "bulk water": "water",
    "sewer": "sanitation", "sewage": "sanitation", "sewerage": "sanitation", "toilets": "sanitation",
    "electricity": "electricity", "power": "electricity", "energy": "electricity", "eskom": "electricity",
    "roads": "roads", "road": "roads", "stormwater": "roads", "roads and transport": "roads",
    "refuse": "waste", "waste": "waste", "solid waste": "waste", "waste management": "waste", "rubbish": "waste",
    "garbage": "waste", "refuse collection": "waste",
    "human settlements": "housing", "houses": "housing", "rdp": "housing",
    "community services": "facilities", "facilities": "facilities", "public facilities": "facilities",
}

#: Category words people write (sector, category), beyond the labels themselves.
CATEGORY_WORDS: dict[str, tuple[str, str]] = {
    "burst pipe": ("water", "burst_main"), "burst main": ("water", "burst_main"), "leak": ("water", "burst_main"),
    "leaking pipe": ("water", "burst_main"), "water leak": ("water", "burst_main"), "pipe burst": ("water", "burst_main"),
    "no water": ("water", "no_supply"), "water outage": ("water", "no_supply"), "water interruption": ("water", "no_supply"),
    "dirty water": ("water", "water_quality"), "borehole": ("water", "borehole_pump"), "pump": ("water", "borehole_pump"),
    "reservoir": ("water", "reservoir"), "water meter": ("water", "metering_billing"), "billing": ("water", "metering_billing"),
    "sewer blockage": ("sanitation", "sewer_blockage"), "blocked sewer": ("sanitation", "sewer_blockage"),
    "sewage spill": ("sanitation", "sewer_blockage"), "sewer spill": ("sanitation", "sewer_blockage"),
    "pit toilets": ("sanitation", "pit_toilets"), "vip toilets": ("sanitation", "pit_toilets"),
    "bucket toilets": ("sanitation", "bucket_system"), "wwtw": ("sanitation", "wastewater_works"),
    "power outage": ("electricity", "outage"), "no electricity": ("electricity", "outage"), "power failure": ("electricity", "outage"),
    "streetlight": ("electricity", "streetlights"), "streetlights": ("electricity", "streetlights"),
    "street lights": ("electricity", "streetlights"), "high mast": ("electricity", "streetlights"),
    "transformer": ("electricity", "substation"), "illegal connection": ("electricity", "illegal_connections"),
    "pothole": ("roads", "potholes"), "potholes": ("roads", "potholes"), "gravel road": ("roads", "gravel_road"),
    "blocked drain": ("roads", "stormwater"), "stormwater drain": ("roads", "stormwater"), "bridge": ("roads", "bridge"),
    "refuse not collected": ("waste", "missed_collection"), "missed collection": ("waste", "missed_collection"),
    "rubbish not collected": ("waste", "missed_collection"), "illegal dumping": ("waste", "illegal_dumping"),
    "dumping": ("waste", "illegal_dumping"), "landfill": ("waste", "landfill"), "skip": ("waste", "bins_skips"),
    "rdp house cracks": ("housing", "house_defects"), "cracked houses": ("housing", "house_defects"),
    "title deeds": ("housing", "title_deeds"), "informal settlement": ("housing", "informal_settlement"),
    "clinic": ("facilities", "clinic"), "community hall": ("facilities", "community_hall"),
}

SEVERITY_WORDS: dict[str, str] = {
    "urgent": "critical", "very high": "critical", "emergency": "critical", "1": "critical",
    "2": "high", "normal": "medium", "moderate": "medium", "3": "medium", "minor": "low", "4": "low",
}

SOURCE_WORDS: dict[str, str] = {
    "visit": "site_visit", "site inspection": "site_visit", "inspection": "site_visit",
    "community": "community_report", "complaint": "community_report", "community complaint": "community_report",
    "council": "meeting", "council meeting": "meeting", "task team": "meeting", "meeting": "meeting",
    "public meeting": "imbizo", "izimbizo": "imbizo",
}


@lru_cache(maxsize=64)
def _choice_table(choices: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]) -> dict[str, str]:
    table = dict(extra)
    for code, label in choices:
        table[words(label)] = code
        table[words(code)] = code
    return table


def _choice(text: str, choices: dict[str, str], extra: dict[str, str]) -> str | None:
    key = words(text or "")
    if not key:
        return None
    return _choice_table(tuple(choices.items()), tuple(extra.items())).get(key)


def status_code(text: str) -> str | None:
    """A status from its code, label or a common word; 'Escalated to DWS' is escalated."""
    found = _choice(text, model.STATUSES, STATUS_WORDS)
    if found:
        return found
    key = words(text or "")
    for word, code in _STATUS_LONGEST_FIRST:
        if key.startswith(word + " "):
            return code
    return None


_STATUS_LONGEST_FIRST = sorted(STATUS_WORDS.items(), key=lambda item: -len(item[0]))


def severity_code(text: str) -> str | None:
    return _choice(text, model.SEVERITIES, SEVERITY_WORDS)


def source_code(text: str) -> str | None:
    return _choice(text, model.SOURCES, SOURCE_WORDS)


def sector_code(text: str) -> str | None:
    return _choice(text, model.SECTORS, SECTOR_WORDS)


def need_kind(text: str) -> str | None:
    return _choice(text, model.NEED_KINDS, {"training": "skills", "money": "funding", "budget": "funding"})


def _singular(key: str) -> str:
    return key[:-1] if key.endswith("s") else key


@lru_cache(maxsize=1)
def _categories() -> dict[str, list[tuple[str, str]]]:
    """Every way a category is written, to the (sector, category) pairs it can mean."""
    table: dict[str, list[tuple[str, str]]] = {}
    for sector, categories in model.CATEGORIES.items():
        for code, label in categories.items():
            if code == "other":
                continue
            for key in {words(code), words(label), _singular(words(label))}:
                table.setdefault(key, []).append((sector, code))
    return table


@lru_cache(maxsize=4096)
def category_code(sector: str | None, text: str) -> tuple[str, str] | None:
    """(sector, category) for a category code, label or common word; within ``sector`` when it is known.

    Without a sector the category must belong to exactly one sector ('Burst pipe' is water)."""
    key = words(text or "")
    if not key:
        return None
    candidates = [pair for pair in _categories().get(key, []) if sector is None or pair[0] == sector]
    word = CATEGORY_WORDS.get(key) or CATEGORY_WORDS.get(_singular(key))
    if word and (sector is None or word[0] == sector) and word not in candidates:
        candidates.append(word)
    return candidates[0] if len(candidates) == 1 else None


# -- dates --------------------------------------------------------------------------

_MONTHS = {name: number for number, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may",), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
     ("dec", "december")], start=1) for name in names}
_NUMERIC = re.compile(r"^(\d{1,4})[/\-. ](\d{1,2})[/\-. ](\d{1,4})$")
_WORDED = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)? ([a-z]+),? (\d{4})$")
_EXCEL_EPOCH = date(1899, 12, 30)


def parse_date(text: str) -> date | None:
    """A date as South Africans write it: 2026-11-03, 2026/11/03, 03/11/2026 (day first), 3 Nov 2026,
    or an Excel day number. None when it is not a date."""
    value = (text or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d{5}(\.0+)?", value):
        number = int(float(value))
        return _EXCEL_EPOCH + timedelta(days=number) if 20000 < number < 80000 else None
    match = _NUMERIC.match(value)
    try:
        if match:
            a, b, c = match.groups()
            if len(a) == 4:
                return date(int(a), int(b), int(c))
            if len(c) == 4:
                return date(int(c), int(b), int(a))
            if len(c) == 2:
                return date(2000 + int(c), int(b), int(a))
            return None
        match = _WORDED.match(words(value))
        if match and match.group(2) in _MONTHS:
            return date(int(match.group(3)), _MONTHS[match.group(2)], int(match.group(1)))
    except ValueError:
        return None
    return None


def parse_moment(text: str) -> str | None:
    """A date and time as the register keeps it (ISO, UTC, whole seconds).

    A time without a zone is South African time, as in every spreadsheet we write;
    a date alone is midnight in South Africa. None when it is neither."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("/", "-") if re.match(r"^\d{4}/", value) else value)
    except ValueError:
        head, _, clock = value.partition(" ")
        day = parse_date(value) or (parse_date(head) if clock else None)
        if day is None:
            return None
        moment = datetime.combine(day, datetime.min.time())
        if clock and day != parse_date(value):
            try:
                parts = [int(p) for p in clock.split(":")]
                moment = moment.replace(hour=parts[0], minute=parts[1] if len(parts) > 1 else 0,
                                        second=parts[2] if len(parts) > 2 else 0)
            except (ValueError, IndexError):
                return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=model.SAST)
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def ward_number(text: str) -> int | None:
    """A ward as people write it: 12, 'Ward 12', 'W12', 'ward no. 12', 12.0."""
    key = words(text or "")
    key = re.sub(r"^(ward|wyk|w)( ?no)?\s*", "", key).strip()
    if re.fullmatch(r"\d+( 0+)?", key):
        return int(key.split()[0])
    return None
