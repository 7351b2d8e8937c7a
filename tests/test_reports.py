"""The task-team status report: figures from a register made by hand, the Markdown and HTML, the command, the screen."""

from __future__ import annotations

import asyncio
import html
import re
import xml.etree.ElementTree as ET
from datetime import date
from html.parser import HTMLParser

import pytest

from fieldkit import reports
from fieldkit.reports import Scope

TODAY = date(2026, 3, 31)
SINCE = date(2026, 3, 1)


@pytest.fixture
def fixed(register):
    """Amathole district (DC12) with two locals, one issue outside it, and known counts of everything."""
    ids = {}
    a = register.create_issue({
        "municipality": "EC121", "sector": "water", "category": "burst_main", "title": "Burst bulk main on the R61",
        "severity": "critical", "responsible": "Amatola Water", "contact_name": "Nomsa Khumalo", "contact_phone": "082 123 4567",
        "needs": [{"kind": "skills", "detail": "Process controller training", "support_from": "Water Board"}],
    }, at="2026-02-10T08:00:00+00:00")
    ids["a"] = a["id"]
    register.change_status(a["id"], "escalated", "No response from the municipality after two follow-ups", at="2026-03-05T09:00:00+00:00")
    register.add_action(a["id"], "Get a written repair plan", owner="Technical Services manager", due="2026-03-20")
    register.add_action(a["id"], "Confirm budget with the CFO", owner="CFO", due="2026-04-03")
    done = register.add_action(a["id"], "Meet the Water Board", owner="CFO", due="2026-03-10")
    register.set_action_done(done["id"])

    b = register.create_issue({
        "municipality": "EC122", "sector": "sanitation", "category": "sewer_blockage", "title": "Sewage spilling at the school",
        "severity": "high", "responsible": "Municipality", "source": "imbizo", "source_detail": "Imbizo at Butterworth town hall",
        "commitment": "The mayor promised repairs within 30 days",
    }, at="2026-03-12T10:00:00+00:00")
    ids["b"] = b["id"]
    register.change_status(b["id"], "in_progress", at="2026-03-14T10:00:00+00:00")
    register.add_action(b["id"], "Report back to the community", owner="", due="2026-03-25")

    c = register.create_issue({"municipality": "EC122", "sector": "roads", "title": "Potholes on Station Street", "severity": "medium"},
                              at="2026-01-05T10:00:00+00:00")
    ids["c"] = c["id"]
    register.change_status(c["id"], "in_progress", at="2026-02-01T10:00:00+00:00")
    # 23:30 UTC on 28 February is 01:30 on 1 March in South Africa: resolved inside the period.
    register.change_status(c["id"], "resolved", at="2026-02-28T23:30:00+00:00")

    d = register.create_issue({"municipality": "EC121", "sector": "electricity", "title": "Ward 3 without power", "severity": "low"},
                              at="2026-01-20T10:00:00+00:00")
    register.change_status(d["id"], "resolved", at="2026-02-20T10:00:00+00:00")
    register.change_status(d["id"], "closed", "Confirmed on site", at="2026-03-10T10:00:00+00:00")

    register.create_issue({"municipality": "BUF", "sector": "water", "title": "No water in Mdantsane", "severity": "critical"},
                          at="2026-03-15T10:00:00+00:00")
    f = register.create_issue({"municipality": "EC121", "sector": "water", "title": "Captured twice", "severity": "medium"},
                              at="2026-03-20T10:00:00+00:00")
    register.delete_issue(f["id"])

    g = register.create_issue({
        "municipality": "DC12", "sector": "waste", "category": "missed_collection", "title": "Refuse not collected at the district offices",
        "severity": "high", "responsible": "District municipality",
        "needs": [{"kind": "funding", "detail": "MIG top-up", "support_from": "Department of Water and Sanitation"},
                  {"kind": "equipment", "detail": "A compactor truck", "support_from": ""}],
    }, at="2026-03-02T10:00:00+00:00")
    register.change_status(g["id"], "acknowledged", at="2026-03-03T10:00:00+00:00")
    return register


def test_district_figures_on_a_fixed_register(fixed):
    data = reports.build_report(fixed, Scope("district", "DC12"), since=SINCE, today=TODAY)
    t = data.totals
    assert (t.open, t.critical_open, t.escalated, t.opened_since, t.resolved_since) == (3, 1, 1, 2, 1)
    assert (t.overdue_actions, t.due_soon_actions, t.imbizo_open) == (2, 1, 1)

    assert [(b.label, b.total, b.counts) for b in data.by_sector] == [
        ("Water", 1, {"critical": 1, "high": 0, "medium": 0, "low": 0}),
        ("Sanitation", 1, {"critical": 0, "high": 1, "medium": 0, "low": 0}),
        ("Refuse removal", 1, {"critical": 0, "high": 1, "medium": 0, "low": 0}),
    ]
    assert [(b.label, b.total, b.counts.get("escalated", 0), b.counts.get("critical", 0), b.counts.get("overdue_actions", 0))
            for b in data.by_responsible] == [
        ("Amatola Water", 1, 1, 1, 1), ("District municipality", 1, 0, 0, 0), ("Municipality", 1, 0, 0, 1)]
    assert {b.label: (b.total, b.counts.get("resolved_since", 0)) for b in data.by_municipality} == {
        "Mbhashe (EC121)": (1, 0), "Mnquma (EC122)": (1, 1), "Amathole (DC12)": (1, 0)}
    assert [(b.label, b.counts, b.total) for b in data.by_wsa] == [("Amathole (DC12)", {"water": 1, "sanitation": 1}, 2)]

    [resolved] = data.resolved
    assert (resolved.title, resolved.when, resolved.days) == ("Potholes on Station Street", date(2026, 3, 1), 30)
    [escalation] = data.escalations
    assert (escalation.when, escalation.days, escalation.wsa, escalation.responsible) == (date(2026, 3, 5), 26, "Amathole (DC12)", "Amatola Water")
    assert escalation.note.startswith("No response")

    assert [(g.owner, g.total, [(a.text, a.days_overdue) for a in g.actions]) for g in data.overdue_by_owner] == [
        ("Technical Services manager", 1, [("Get a written repair plan", 11)]),
        ("No owner named", 1, [("Report back to the community", 6)]),
    ]
    assert [(g.owner, [a.due for a in g.actions]) for g in data.due_by_owner] == [("CFO", [date(2026, 4, 3)])]

    [imbizo] = data.imbizo
    assert imbizo.title == "Sewage spilling at the school" and "The mayor promised" in imbizo.note and "1 open action, 1 overdue" in imbizo.note
    assert [(b.label, b.total) for b in data.needs_by_source] == [
        ("Department of Water and Sanitation", 1), ("Water Board", 1), ("Not said", 1)]
    assert data.needs_total == 3


def test_scopes_municipality_and_province(fixed):
    mbhashe = reports.build_report(fixed, Scope("municipality", "EC121"), since=SINCE, today=TODAY)
    assert mbhashe.totals.open == 1 and mbhashe.by_municipality == ()
    assert "Amathole (district) is the Water Services Authority" in mbhashe.water_authority
    province = reports.build_report(fixed, Scope("province", "EC"), since=SINCE, today=TODAY)
    assert province.totals.open == 4 and province.totals.critical_open == 2
    everything = reports.build_report(fixed, Scope(), since=SINCE, today=TODAY)
    assert everything.totals.open == 4
    water_in_metro = [b for b in province.by_wsa if b.label == "Buffalo City (BUF)"]
    assert water_in_metro and water_in_metro[0].total == 1


def test_scope_from_what_a_person_types():
    assert reports.scope_from_text("") == Scope()
    assert reports.scope_from_text("ec") == Scope("province", "EC")
    assert reports.scope_from_text("Eastern Cape") == Scope("province", "EC")
    assert reports.scope_from_text("dc12") == Scope("district", "DC12")
    assert reports.scope_from_text("Mbhashe") == Scope("municipality", "EC121")
    with pytest.raises(reports.ScopeError):
        reports.scope_from_text("Atlantis")
    with pytest.raises(reports.ScopeError):
        reports.make_scope(district="EC121")


def test_limit_shortens_lists_but_not_figures(fixed):
    data = reports.build_report(fixed, Scope("province", "EC"), since=SINCE, today=TODAY, limit=1)
    assert len(data.needs) == 1 and data.needs_total == 3
    assert "2 more not shown" in reports.render_markdown(data)


def _tables(markdown: str) -> list[list[str]]:
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def test_markdown_report_reads_and_keeps_contacts_out(fixed):
    text = reports.render_markdown(reports.build_report(fixed, Scope("district", "DC12"), since=SINCE, today=TODAY))
    assert text.startswith("# Status report: Amathole district (DC12) and its local municipalities")
    assert "Nomsa" not in text and "4567" not in text
    assert "- **Open issues:** 3" in text and "Burst bulk main on the R61" in text
    assert "Water (WSA: Amathole (DC12))" in text
    for table in _tables(text):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table}
        assert len(widths) == 1, table  # every row has the header's number of cells


def test_markdown_renders_in_real_renderers_with_user_text_as_text(fixed):
    """python-markdown and markdown-it-py (GitHub-style tables): the 'more not shown' line is a paragraph, not a
    table row; emphasis, links, pipes and HTML typed by a person come out as the characters they typed."""
    import markdown
    from markdown_it import MarkdownIt

    hostile = fixed.create_issue({"municipality": "EC121", "sector": "roads", "title": "Road *broken* | [here](http://x) `code` _u_",
                                  "severity": "high", "responsible": "<b>Roads</b> & Works"}, at="2026-03-20T10:00:00+00:00")
    fixed.add_action(hostile["id"], "<script>alert(1)</script> fix it", owner="*Ward* ~~clerk~~", due="2026-03-21")
    data = reports.build_report(fixed, Scope("province", "EC"), since=SINCE, today=TODAY, limit=1)
    text = reports.render_markdown(data)
    assert "more not shown" in text
    pages = {
        "python-markdown": markdown.markdown(text, extensions=["tables"]),
        "markdown-it-py": MarkdownIt("commonmark").enable("table").enable("strikethrough").render(text),
    }
    for name, page in pages.items():
        assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page, name
        assert "<b>Roads</b>" not in page, name
        assert "<em>" not in page.split("Road", 1)[1].split("</td>", 1)[0], name
        assert "Road *broken* | [here](http://x) `code` _u_" in html.unescape(page), name
        assert "<a href" not in page and "<code>" not in page and "<del>" not in page and "<s>" not in page, name
        assert "*Ward* ~~clerk~~" in html.unescape(page), name
        rows = re.findall(r"<tr>.*?</tr>", page, flags=re.S)
        assert not [r for r in rows if "more not shown" in r], name  # never read as a table row
        assert re.search(r"<p>… and \d+ more not shown", page), name


class _Checker(HTMLParser):
    VOID = {"meta", "br", "rect", "img", "hr", "input", "link"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += attrs

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def test_html_report_is_self_contained_printable_and_balanced(fixed):
    page = reports.render_html(reports.build_report(fixed, Scope("district", "DC12"), since=SINCE, today=TODAY))
    checker = _Checker()
    checker.feed(page)
    assert checker.stack == []
    assert not {"script", "link", "img", "iframe"} & checker.tags
    assert not [value for name, value in checker.attrs if name in ("src", "href")]
    assert "@page { size: A4" in page and "@media print" in page
    assert "Nomsa" not in page and "4567" not in page
    charts = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(charts) >= 3
    for chart in charts:
        ET.fromstring(chart)  # each chart is well-formed SVG


def test_report_command_end_to_end(fieldkit, tmp_path):
    assert fieldkit("demo", "--issues", "60").returncode == 0
    md = fieldkit("report", "--province", "Eastern Cape")
    assert md.returncode == 0 and md.stdout.startswith("# Status report: Eastern Cape")
    out = tmp_path / "report.html"
    written = fieldkit("report", "--district", "DC12", "--since", "2026-01-01", "-o", str(out))
    assert written.returncode == 0 and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    everything = fieldkit("report", "--limit", "0").stdout
    from fieldkit.demo import PEOPLE

    assert not [name for name in PEOPLE if name in everything]


@pytest.mark.parametrize("args, message", [
    (["--municipality", "XX1"], "Unknown municipality code 'XX1'"),
    (["--district", "EC121"], "is not a district code"),
    (["--province", "Gondwana"], "Unknown province"),
    (["--since", "2999-01-01"], "is in the future"),
    (["--since", "31/12/2025"], "is not a date"),
    (["-o", "/no/such/folder/report.md"], "no such file"),
])
def test_report_command_errors_are_one_line(fieldkit, args, message):
    result = fieldkit("report", *args)
    assert result.returncode in (1, 2)
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_reports_screen_previews_and_writes(fixed, tmp_path):
    from fieldkit.app import FieldkitApp
    from fieldkit.screens.reports import ReportsScreen

    fixed.save_settings(first_run_done=True, name="Thandi Mokoena", municipalities=["EC121"])
    target = tmp_path / "dc12.html"

    async def run() -> None:
        app = FieldkitApp(fixed, today=TODAY)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            app.push_screen(ReportsScreen())
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, ReportsScreen)
            assert screen.query_one("#scope").value == "EC121"
            assert screen.markdown_text.startswith("# Status report: Mbhashe")
            screen.query_one("#scope").value = "DC12"
            screen.query_one("#since").value = SINCE.isoformat()
            await pilot.press("f5")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert "- **Open issues:** 3" in screen.markdown_text
            screen.query_one("#report-path").value = str(target)
            await pilot.press("ctrl+s")
            await app.workers.wait_for_complete()
            await pilot.pause()

    asyncio.run(run())
    assert "Amathole district (DC12)" in target.read_text(encoding="utf-8")
