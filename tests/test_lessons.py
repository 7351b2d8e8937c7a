"""Lessons learned: captured from the command line and the app, searched, and shared as a digest."""

from __future__ import annotations

import asyncio
import json

import pytest

from fieldkit import lessons


def _lesson(**values):
    base = {"id": values.pop("id", "x"), "title": "", "created_at": values.pop("created_at", "2026-03-01T10:00:00+00:00")}
    return {**base, **values}


def test_search_finds_every_word_anywhere():
    found = [
        _lesson(id="1", title="Meet the Water Board first", what_worked="A joint site visit", sector="water", municipality="EC121", tags=["imbizo"]),
        _lesson(id="2", title="Keep a spares register", what_did_not="Ordering pumps one at a time", sector="sanitation"),
    ]
    assert [l["id"] for l in lessons.search(found, "water board")] == ["1"]
    assert [l["id"] for l in lessons.search(found, "mbhashe imbizo")] == ["1"]  # the municipality's name and a tag
    assert [l["id"] for l in lessons.search(found, "pumps")] == ["2"]
    assert [l["id"] for l in lessons.search(found, "")] == ["1", "2"]
    assert lessons.search(found, "eskom") == []


def test_tags_are_trimmed_lower_case_and_not_repeated():
    assert lessons.parse_tags(" Imbizo, Water Board ,imbizo") == ["imbizo", "water board"]
    assert lessons.parse_tags("water  board") == ["water board"]


def test_digest_groups_by_sector_then_province_newest_first():
    found = [
        _lesson(id="1", title="Old water lesson", sector="water", municipality="EC121", created_at="2026-01-01T00:00:00+00:00"),
        _lesson(id="2", title="New water lesson", sector="water", municipality="EC122", created_at="2026-03-01T00:00:00+00:00"),
        _lesson(id="3", title="KZN water lesson", sector="water", municipality="ETH"),
        _lesson(id="4", title="Roads lesson", sector="roads"),
        _lesson(id="5", title="General lesson"),
    ]
    groups = lessons.digest_groups(found)
    assert [(g.sector, g.province, [l["id"] for l in g.lessons]) for g in groups] == [
        ("Water", "Eastern Cape", ["2", "1"]),
        ("Water", "KwaZulu-Natal", ["3"]),
        ("Roads and stormwater", "No province given", ["4"]),
        ("Across sectors", "No province given", ["5"]),
    ]
    assert [g.province for g in lessons.digest_groups(found, province="KZN")] == ["KwaZulu-Natal"]
    assert [g.sector for g in lessons.digest_groups(found, sector="roads")] == ["Roads and stormwater"]


def test_lesson_commands_end_to_end(fieldkit, tmp_path):
    added = fieldkit("add", "--municipality", "EC121", "--sector", "water", "--title", "Burst bulk main")
    issue_ref = added.stdout.split()[1]
    result = fieldkit(
        "lesson", "add", "--title", "Meet the Water Board before the imbizo",
        "--what-happened", "The community asked about the bulk supply and nobody could answer.",
        "--what-worked", "A joint site visit with the Water Board's engineer the week before.",
        "--what-did-not", "Letters to the Water Board went unanswered.",
        "--sector", "water", "--municipality", "ec121", "--tag", "imbizo", "--tag", "Water Board", "--issue", issue_ref,
        "--author", "Thandi Mokoena",
    )
    assert result.returncode == 0, result.stderr
    assert fieldkit("lesson", "add", "--title", "Keep a spares register", "--sector", "sanitation", "--municipality", "ETH").returncode == 0

    listed = fieldkit("lesson", "list")
    assert listed.returncode == 0 and "Meet the Water Board" in listed.stdout and "Keep a spares register" in listed.stdout
    searched = fieldkit("lesson", "list", "bulk", "supply")
    assert "Meet the Water Board" in searched.stdout and "spares" not in searched.stdout
    [saved] = json.loads(fieldkit("lesson", "list", "--json", "imbizo").stdout)
    assert saved["municipality"] == "EC121" and saved["tags"] == ["imbizo", "water board"] and len(saved["issue_ids"]) == 1
    assert saved["created_by"] == "Thandi Mokoena"

    digest = fieldkit("lesson", "digest")
    assert digest.returncode == 0
    text = digest.stdout
    assert text.index("## Water") < text.index("### Eastern Cape") < text.index("## Sanitation") < text.index("### KwaZulu-Natal")
    assert issue_ref in text and "**What worked:** A joint site visit" in text
    only_kzn = fieldkit("lesson", "digest", "--province", "KwaZulu-Natal").stdout
    assert "spares" in only_kzn and "Water Board" not in only_kzn
    out = tmp_path / "lessons.html"
    assert fieldkit("lesson", "digest", "--sector", "water", "-o", str(out)).returncode == 0
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Meet the Water Board" in page and "spares" not in page


@pytest.mark.parametrize("args, message", [
    (["add", "--title", "x", "--municipality", "EC999"], "Unknown municipality code 'EC999'"),
    (["add", "--title", "x", "--issue", "EC121-26-ZZZZ-9999"], "No issue matches"),
    (["add", "--title", "   "], "Title is required"),
    (["add"], "the following arguments are required: --title"),
    (["digest", "--province", "Atlantis"], "Unknown province"),
])
def test_lesson_errors_are_one_line(fieldkit, args, message):
    result = fieldkit("lesson", *args)
    assert result.returncode in (1, 2) and message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_lessons_screen_searches_and_captures(register):
    from fieldkit.app import FieldkitApp
    from fieldkit.screens.lessons import LessonFormScreen, LessonsScreen

    register.save_settings(first_run_done=True, name="Thandi Mokoena")
    issue = register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst bulk main"})
    register.save_lesson({"title": "Keep a spares register", "sector": "sanitation"})

    async def run() -> None:
        app = FieldkitApp(register)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            app.push_screen(LessonsScreen())
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert len(screen.shown) == 1
            await pilot.press("a")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, LessonFormScreen)
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert "Title is required" in str(form.query_one("#lesson-problems").render())
            form.query_one("#title").value = "Meet the Water Board before the imbizo"
            form.query_one("#what_worked").text = "A joint site visit."
            form.query_one("#tags").value = "imbizo, water board"
            form.query_one("#issues").value = issue["ref"]
            await pilot.press("ctrl+s")
            await app.workers.wait_for_complete()
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.screen is screen and len(screen.all_lessons) == 2
            await pilot.press("slash", *"imbizo")
            await pilot.pause()
            assert [l["title"] for l in screen.shown] == ["Meet the Water Board before the imbizo"]

    asyncio.run(run())
    [saved] = [l for l in register.lessons() if l["title"].startswith("Meet")]
    assert saved["issue_ids"] == [issue["id"]] and saved["tags"] == ["imbizo", "water board"]
    assert saved["what_worked"] == "A joint site visit."
