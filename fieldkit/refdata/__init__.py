"""The bundled reference data: all 257 municipalities and the water boards.

Read once from the CSV files shipped inside the package (see PROVENANCE.md);
nothing here touches the network or the user's files.
"""

from __future__ import annotations

import csv
import difflib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable

PROVINCES: dict[str, str] = {
    "EC": "Eastern Cape",
    "FS": "Free State",
    "GT": "Gauteng",
    "KZN": "KwaZulu-Natal",
    "LIM": "Limpopo",
    "MP": "Mpumalanga",
    "NC": "Northern Cape",
    "NW": "North West",
    "WC": "Western Cape",
}

CATEGORY_NAMES = {"A": "metro", "B": "local", "C": "district"}


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    name: str
    category: str  # A metro, B local, C district
    district_code: str  # the district a local municipality sits in; blank otherwise
    province: str  # MDB province code, e.g. EC
    wsa: bool | None  # Water Services Authority: True, False, or None where not known
    wsa_basis: str
    name_later: str  # a later official name, where one is known

    @property
    def display_name(self) -> str:
        """The name people use now, with the 2016 name kept where it changed."""
        if self.name_later:
            return f"{self.name_later} (was {self.name})"
        return self.name

    @property
    def current_name(self) -> str:
        return self.name_later or self.name

    @property
    def province_name(self) -> str:
        return PROVINCES[self.province]

    @property
    def kind(self) -> str:
        return CATEGORY_NAMES[self.category]


@dataclass(frozen=True, slots=True)
class WaterBoard:
    name: str
    main_area: str
    provinces: tuple[str, ...]
    status: str
    note: str

    @property
    def current(self) -> bool:
        return self.status == "current"


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@lru_cache(maxsize=1)
def municipalities() -> dict[str, Municipality]:
    """All municipalities by MDB code, in the order of the bundled list."""
    wsa_values = {"yes": True, "no": False, "": None}
    return {
        row["code"]: Municipality(
            code=row["code"],
            name=row["name"],
            category=row["category"],
            district_code=row["district_code"],
            province=row["province_code"],
            wsa=wsa_values[row["wsa"].strip().lower()],
            wsa_basis=row["wsa_basis"],
            name_later=row["name_later"],
        )
        for row in _rows("municipalities.csv")
    }


@lru_cache(maxsize=1)
def water_boards() -> tuple[WaterBoard, ...]:
    return tuple(
        WaterBoard(
            name=row["name"],
            main_area=row["main_area"],
            provinces=tuple(p for p in row["provinces"].split(";") if p),
            status=row["status"],
            note=row["note"],
        )
        for row in _rows("water_boards.csv")
    )


def get(code: str) -> Municipality | None:
    return municipalities().get(code.strip().upper())


def district_of(code: str) -> Municipality | None:
    muni = get(code)
    if muni is None or not muni.district_code:
        return None
    return get(muni.district_code)


def water_services_authority(code: str) -> tuple[Municipality | None, str]:
    """Who holds the water services duty for a municipality, and how sure we are.

    Returns the WSA (or None) and a short explanation. "Not known" is said as
    such, never guessed as "no": the bundled WSA list is provisional.
    """
    muni = get(code)
    if muni is None:
        return None, "unknown municipality"
    if muni.wsa is True:
        return muni, f"{muni.current_name} is the Water Services Authority"
    district = district_of(code)
    if muni.wsa is False and district is not None:
        if district.wsa is True:
            return district, f"{district.current_name} (district) is the Water Services Authority"
        if district.wsa is None:
            return None, f"WSA not known: {muni.current_name} is not one; {district.current_name}'s status is not known"
    if muni.wsa is False:
        return None, f"{muni.current_name} is not a WSA; the WSA is not recorded"
    return None, f"WSA status of {muni.current_name} is not known"


def search(text: str, limit: int = 20) -> list[Municipality]:
    """Municipalities whose code or either name contains the text, best first."""
    needle = text.strip().lower()
    if not needle:
        return list(municipalities().values())[:limit]
    scored: list[tuple[int, str, Municipality]] = []
    for muni in municipalities().values():
        code = muni.code.lower()
        names = (muni.name.lower(), muni.name_later.lower())
        if code == needle:
            rank = 0
        elif code.startswith(needle):
            rank = 1
        elif any(n.startswith(needle) for n in names if n):
            rank = 2
        elif any(needle in n for n in names if n):
            rank = 3
        else:
            continue
        scored.append((rank, muni.code, muni))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [m for _, _, m in scored[:limit]]


def suggest(code: str) -> Municipality | None:
    """The municipality a mistyped code or name most likely meant."""
    text = code.strip()
    if not text:
        return None
    found = search(text, limit=1)
    if found:
        return found[0]
    close = difflib.get_close_matches(text.upper(), list(municipalities()), n=1, cutoff=0.6)
    if close:
        return municipalities()[close[0]]
    by_name = {m.current_name.lower(): m for m in municipalities().values()}
    by_name.update({m.name.lower(): m for m in municipalities().values()})
    close = difflib.get_close_matches(text.lower(), list(by_name), n=1, cutoff=0.6)
    return by_name[close[0]] if close else None


def in_province(province: str) -> list[Municipality]:
    return [m for m in municipalities().values() if m.province == province.upper()]


def in_district(district_code: str) -> list[Municipality]:
    code = district_code.upper()
    return [m for m in municipalities().values() if m.district_code == code or m.code == code]


def with_local_municipalities(codes: Iterable[str]) -> frozenset[str]:
    """The codes, each district with the local municipalities inside it: a district means all of them, everywhere."""
    chosen: set[str] = set()
    for code in codes:
        muni = get(code)
        if muni is not None and muni.category == "C":
            chosen.update(m.code for m in in_district(muni.code))
        chosen.add(code)
    return frozenset(chosen)


def province_code(text: str) -> str | None:
    """Accept a province by any common code or name (GP or GT, NL or KZN, NP or LIM, 'KwaZulu-Natal');
    the answer is always the one code the register keeps. The aliases live in ``fieldkit.matching``."""
    from fieldkit.matching import province_code as matched

    return matched(text)
