"""What the dashboard and the register list count and show: districts with their locals, figures and
references never cut."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fieldkit.register import Register
from fieldkit.widgets.register_list import RegisterList
from test_app_helpers import app_on, screen_text, settle

pytestmark = pytest.mark.anyio


async def test_a_district_counts_with_its_local_municipalities_on_the_dashboard(fixed: Register) -> None:
    """BUF and DC12 (Amathole, which holds EC121): every issue of the fixed register is in scope."""
    fixed.save_settings(municipalities=["BUF", "DC12"])
    open_issues = sum(1 for row in fixed.find() if row.is_open)
    app = app_on(fixed)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert f"{open_issues} open of 8" in screen_text(app)
        await pilot.press("r", "f")
        await settle(pilot)
        app.screen.query_one("#filter-municipalities").values.append("DC12")
        await pilot.press("ctrl+s")
        await pilot.pause(0.15)
        await settle(pilot)
        assert {row.municipality for row in app.screen.query_one(RegisterList).rows} == {"EC121"}, \
            "the register's municipality filter takes a district with its locals too"


async def test_the_dashboard_drops_columns_rather_than_cut_a_figure_at_60_columns(fixed: Register) -> None:
    for number in range(27):
        fixed.create_issue({"municipality": "BUF", "sector": "roads", "title": f"Pothole number {number}", "severity": "low"})
    app = app_on(fixed)
    async with app.run_test(size=(60, 20)) as pilot:
        await settle(pilot)
        await pilot.pause(0.1)
        roads = next(line for line in screen_text(app).splitlines() if "Roads" in line)
        cells = roads.split("Roads")[1].split("│")[0].split()
        assert cells[-1] == "27", roads


async def test_a_long_reference_far_down_the_list_is_shown_whole(fixed: Register) -> None:
    template = fixed.find()[0]
    rows = [replace(template, id=f"{n:036d}", ref=f"BUF-26-AAAA-{n:04d}", title=f"Issue {n}") for n in range(500)]
    rows[450] = replace(rows[450], ref="NW383-26-BWPP-98612", title="The long one")
    app = app_on(fixed)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        issues = app.screen.query_one(RegisterList)
        issues.show_rows(rows)
        issues.cursor = 450
        await pilot.pause()
        assert issues.highlighted.ref == "NW383-26-BWPP-98612"
        assert "NW383-26-BWPP-98612" in screen_text(app)
