"""A realistic demo register: what a facilitator's laptop holds after some months in the field.

Used by the app's first run, ``fieldkit demo`` and the benchmarks. Seeded, so
the same seed gives the same register. Coordinates are scattered around rough
province centres: plausible on a map, not surveyed.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from fieldkit import model, refdata
from fieldkit.register import Register

PROVINCE_CENTRES = {
    "EC": (-32.3, 26.4),
    "FS": (-28.8, 26.5),
    "GT": (-26.2, 28.1),
    "KZN": (-29.0, 30.9),
    "LIM": (-23.9, 29.5),
    "MP": (-25.6, 30.5),
    "NC": (-29.0, 21.9),
    "NW": (-26.0, 25.8),
    "WC": (-33.5, 19.7),
}

PROBLEMS: dict[str, list[tuple[str, str, str]]] = {
    "water": [
        ("burst_main", "Burst bulk main along {road}", "Water has been running down {road} for {days} days; the valve chamber is flooded and the reservoir level is dropping."),
        ("no_supply", "No water in ward {ward} for {days} days", "Households in ward {ward} report dry taps since the pump station tripped. Tankers come twice a week."),
        ("borehole_pump", "Borehole pump stolen at {place}", "The submersible pump and cable were stolen; {people} households depend on this borehole."),
        ("water_quality", "Brown water reported at {place}", "Residents report discoloured water after the supply was restored. No sampling done yet."),
        ("treatment_works", "Treatment works chlorinator not working", "The chlorine dosing pump at the works has failed; operators are dosing by hand."),
        ("reservoir", "Reservoir overflowing at night at {place}", "The float valve is broken and the reservoir overflows every night."),
        ("metering_billing", "Bulk meter readings disputed", "The bulk meter at the offtake has not been read for three months; the Water Board's invoice is disputed."),
    ],
    "sanitation": [
        ("sewer_blockage", "Sewage spilling into the street at {place}", "A blocked main is spilling sewage next to the school; children walk through it."),
        ("wastewater_works", "Wastewater works discharging untreated effluent", "The works' aerators are down and effluent is going into the river untreated."),
        ("pump_station", "Sewer pump station flooded at {place}", "Both pumps are burnt out after load-shedding; the wet well overflows."),
        ("pit_toilets", "VIP toilets full at {place}", "The VIP toilets at the clinic are full and have not been emptied this year."),
    ],
    "electricity": [
        ("outage", "Ward {ward} without power after storm", "A transformer failed in the storm; {people} households have been without power for {days} days."),
        ("illegal_connections", "Illegal connections overloading the network at {place}", "Illegal connections trip the mini-substation every evening."),
        ("streetlights", "High-mast light out at {place}", "The high-mast light at the taxi rank has been out for months; residents report muggings."),
        ("substation", "Substation fence stolen", "The fence around the substation was stolen and the site is open to children."),
    ],
    "roads": [
        ("potholes", "Potholes on {road}", "Large potholes on {road}; taxis now avoid the route and learners walk further."),
        ("stormwater", "Stormwater drain blocked on {road}", "The culvert is blocked with silt and refuse; the road floods in every storm."),
        ("gravel_road", "Gravel access road impassable to {place}", "The access road washed away; the ambulance cannot reach the village."),
        ("bridge", "Low-water bridge damaged near {place}", "The low-water bridge lost its approach slab in the floods."),
    ],
    "waste": [
        ("missed_collection", "Refuse not collected in ward {ward} for {days} days", "The compactor truck is broken; bags are piling up at the corner."),
        ("illegal_dumping", "Illegal dumping next to {place}", "Builders' rubble and household waste dumped on the open land next to {place}."),
        ("landfill", "Landfill site burning", "The landfill is burning and smoke covers the township at night."),
    ],
    "housing": [
        ("house_defects", "Cracks in subsidised houses at {place}", "Walls of {people} houses have cracked; the contractor has left site."),
        ("informal_settlement", "No services at {place} informal settlement", "About {people} households have no standpipe within 200 m."),
    ],
    "facilities": [
        ("clinic", "Clinic without water at {place}", "The clinic's tank is empty and staff bring water from home."),
        ("community_hall", "Community hall roof blown off", "The hall's roof was blown off; the hall was the voting station."),
        ("cemetery", "Cemetery full at {place}", "The cemetery is full; families bury in the veld."),
    ],
}

ROADS = ["Main Road", "R61", "Station Street", "Church Street", "N2 offramp", "School Road", "Hospital Road", "Market Street"]
PLACES = ["Ezibeleni", "Sinakho", "Mandela Park", "the taxi rank", "the clinic", "Extension 7", "KwaNobuhle", "Phola Park", "Ncambedlana", "the old mine hostel", "the high school", "Zone 4"]
PEOPLE = ["Thandi Mokoena", "Sipho Dlamini", "Nomsa Khumalo", "Pieter van Wyk", "Lerato Nkosi", "Ayesha Parker", "Johan Botha", "Zanele Mthembu"]
OWNERS = ["Technical Services manager", "PMU manager", "Water Board area engineer", "Ward councillor", "Municipal manager", "DWS regional office", "Eskom customer network centre", "CFO"]
RESPONSIBLE = {
    "water": ["Water Services Authority", "Municipality", "Department of Water and Sanitation"],
    "sanitation": ["Water Services Authority", "Municipality"],
    "electricity": ["Eskom", "Municipality"],
    "roads": ["Municipality", "Provincial Department of Public Works and Roads", "SANRAL"],
    "waste": ["Municipality"],
    "housing": ["Provincial Department of Human Settlements"],
    "facilities": ["Municipality", "Provincial Department of Health"],
}
STATUS_WEIGHTS = [("new", 18), ("acknowledged", 20), ("in_progress", 25), ("escalated", 10), ("resolved", 17), ("closed", 10)]
SEVERITY_WEIGHTS = [("critical", 10), ("high", 30), ("medium", 40), ("low", 20)]
SECTOR_WEIGHTS = [("water", 30), ("sanitation", 15), ("electricity", 15), ("roads", 15), ("waste", 10), ("housing", 8), ("facilities", 7)]


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p for p, _ in pairs], weights=[w for _, w in pairs])[0]


def demo_issue(rng: random.Random, municipalities: list[refdata.Municipality]) -> dict[str, Any]:
    """The fields of one plausible issue."""
    muni = rng.choice(municipalities)
    sector = _weighted(rng, SECTOR_WEIGHTS)
    category, title, description = rng.choice(PROBLEMS[sector])
    words = {
        "road": rng.choice(ROADS),
        "place": rng.choice(PLACES),
        "ward": rng.randint(1, 35),
        "days": rng.randint(2, 40),
        "people": rng.randint(20, 900),
    }
    responsible = rng.choice(RESPONSIBLE[sector])
    if sector == "water" and rng.random() < 0.25:
        boards = [b.name for b in refdata.water_boards() if b.current and muni.province in b.provinces]
        responsible = rng.choice(boards) if boards else responsible
    lat0, lon0 = PROVINCE_CENTRES[muni.province]
    fields: dict[str, Any] = {
        "municipality": muni.code,
        "ward": words["ward"],
        "sector": sector,
        "category": category,
        "title": title.format(**words),
        "description": description.format(**words),
        "severity": _weighted(rng, SEVERITY_WEIGHTS),
        "responsible": responsible,
        "source": rng.choice(list(model.SOURCES)),
    }
    if fields["source"] == "imbizo":
        fields["source_detail"] = f"Imbizo at {rng.choice(PLACES)} community hall"
        fields["commitment"] = rng.choice([
            "The mayor promised the work would start within 30 days.",
            "The MEC committed to send a technical team.",
            "The Water Board undertook to restore supply by month end.",
        ])
    if rng.random() < 0.7:
        fields["lat"] = round(max(-34.9, min(-22.1, lat0 + rng.uniform(-1.2, 1.2))), 5)
        fields["lon"] = round(max(16.1, min(32.9, lon0 + rng.uniform(-1.2, 1.2))), 5)
        fields["address"] = f"{rng.choice(ROADS)}, {rng.choice(PLACES)}"
    if rng.random() < 0.4:
        fields["contact_name"] = rng.choice(PEOPLE)
        fields["contact_phone"] = f"0{rng.choice([71, 72, 73, 76, 79, 82, 83, 84])}{rng.randint(1000000, 9999999)}"
    if rng.random() < 0.3:
        kind = rng.choice(list(model.NEED_KINDS))
        fields["needs"] = [{
            "kind": kind,
            "detail": {"skills": "Process controller training for works operators", "funding": "MIG funds for pump replacement",
                       "equipment": "A jetting machine for sewer blockages", "other": "Support to draft a maintenance plan"}[kind],
            "support_from": rng.choice(list(model.SUPPORT_SOURCES)),
        }]
    return fields


def load_demo(register: Register, issues: int = 240, seed: int = 2026, batch: int = 500,
              municipalities: list[str] | None = None, progress: Callable[[int, int], None] | None = None) -> int:
    """Fill the register with a seeded demo: issues, status histories, notes and follow-up actions.

    ``progress(done, total)`` is told after each batch (the command line draws it on a terminal)."""
    rng = random.Random(seed)
    chosen = [refdata.get(code) for code in municipalities] if municipalities else None
    pool = [m for m in (chosen or refdata.municipalities().values()) if m is not None and m.category != "C"]
    today = date.today()
    now = datetime.now(timezone.utc)
    created = 0
    while created < issues:
        with register.store.transaction():
            for _ in range(min(batch, issues - created)):
                opened = now - timedelta(days=rng.uniform(1, 180))
                values = register.create_issue(demo_issue(rng, pool), at=_iso(opened))
                created += 1
                issue_id = values["id"]
                status = _weighted(rng, STATUS_WEIGHTS)
                path = {"new": [], "acknowledged": ["acknowledged"], "in_progress": ["acknowledged", "in_progress"],
                        "escalated": ["acknowledged", "escalated"], "resolved": ["acknowledged", "in_progress", "resolved"],
                        "closed": ["acknowledged", "in_progress", "resolved", "closed"]}[status]
                moment = opened
                for step in path:
                    moment += (now - moment) * rng.uniform(0.1, 0.6)
                    note = {"escalated": "No response from the municipality after two follow-ups; escalated to the sector department.",
                            "closed": "Confirmed fixed on a site visit with the ward councillor."}.get(step)
                    register.change_status(issue_id, step, note, at=_iso(moment))
                if rng.random() < 0.5:
                    register.add_note(issue_id, at=_iso(opened + (now - opened) * rng.uniform(0.1, 0.9)), text=rng.choice([
                        "Met the technical services manager on site; parts are on order.",
                        "Community raised this again at the ward committee meeting.",
                        "Photographs taken; the contractor says the budget is exhausted.",
                        "The PMU says the project is on the MIG implementation plan for next year.",
                    ]))
                if rng.random() < 0.6:
                    due = today + timedelta(days=rng.randint(-30, 30))
                    action = register.add_action(issue_id, rng.choice([
                        "Get a written repair plan with dates",
                        "Confirm budget with the CFO",
                        "Follow up with the Water Board on the bulk supply",
                        "Report back to the community at the next imbizo",
                        "Send the site report to the sector department",
                    ]), owner=rng.choice(OWNERS), due=due.isoformat())
                    if rng.random() < 0.35:
                        register.set_action_done(action["id"])
        if progress:
            progress(created, issues)
    return created


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat()
