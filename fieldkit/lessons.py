"""Lessons learned: searching them and laying them out as a digest to share widely.

Pure functions over the lesson records ``Register.lessons()`` returns; the
command line and the app do the reading and writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from fieldkit import model, refdata

ANY_SECTOR = "Across sectors"
NO_PROVINCE = "No province given"


def province_of(lesson: dict[str, Any]) -> str:
    muni = refdata.get(lesson.get("municipality") or "") if lesson.get("municipality") else None
    return muni.province if muni else ""


def haystack(lesson: dict[str, Any]) -> str:
    """Everything a search should find a lesson by, in lower case."""
    muni = refdata.get(lesson.get("municipality") or "") if lesson.get("municipality") else None
    parts = [
        lesson.get("title", ""),
        lesson.get("what_happened", ""),
        lesson.get("what_worked", ""),
        lesson.get("what_did_not", ""),
        lesson.get("sector", ""),
        model.sector_label(lesson.get("sector")),
        lesson.get("municipality", ""),
        muni.current_name if muni else "",
        refdata.PROVINCES.get(muni.province, "") if muni else "",
        " ".join(lesson.get("tags") or []),
        lesson.get("created_by", ""),
        lesson.get("id", ""),
    ]
    return " ".join(p for p in parts if p).lower()


def search(lessons: Iterable[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Lessons containing every word of the text (title, the three accounts, sector, place, tags)."""
    words = text.lower().split()
    return [lesson for lesson in lessons if all(w in haystack(lesson) for w in words)]


def parse_tags(text: str) -> list[str]:
    """Tags typed as 'imbizo, water board' (a comma between them): trimmed, lower case, no repeats."""
    tags = [" ".join(t.split()).lower() for t in text.split(",") if t.strip()]
    return list(dict.fromkeys(tags))


@dataclass(frozen=True, slots=True)
class DigestGroup:
    sector: str
    province: str
    lessons: tuple[dict[str, Any], ...]


def digest_groups(lessons: Iterable[dict[str, Any]], sector: str | None = None, province: str | None = None) -> list[DigestGroup]:
    """Lessons grouped by sector, then province; newest first within a group."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for lesson in lessons:
        if sector and lesson.get("sector") != sector:
            continue
        where = province_of(lesson)
        if province and where != province:
            continue
        groups.setdefault((lesson.get("sector") or "", where), []).append(lesson)
    sector_rank = {code: n for n, code in enumerate(model.SECTORS)}
    ordered = sorted(groups, key=lambda k: (k[0] == "", sector_rank.get(k[0], 99), k[1] == "", refdata.PROVINCES.get(k[1], k[1])))
    return [
        DigestGroup(
            model.sector_label(s) or ANY_SECTOR,
            refdata.PROVINCES.get(p, p) or NO_PROVINCE,
            tuple(sorted(groups[(s, p)], key=lambda lesson: lesson.get("created_at", ""), reverse=True)),
        )
        for s, p in ordered
    ]


def _place(lesson: dict[str, Any]) -> str:
    muni = refdata.get(lesson.get("municipality") or "") if lesson.get("municipality") else None
    return f"{muni.current_name} ({muni.code})" if muni else ""


def _meta(lesson: dict[str, Any], refs: dict[str, str]) -> list[str]:
    bits = []
    if _place(lesson):
        bits.append(_place(lesson))
    if lesson.get("created_at"):
        bits.append(lesson["created_at"][:10])
    if lesson.get("created_by"):
        bits.append(f"by {lesson['created_by']}")
    if lesson.get("tags"):
        bits.append("tags: " + ", ".join(lesson["tags"]))
    linked = [refs.get(i, i[:8]) for i in lesson.get("issue_ids") or []]
    if linked:
        bits.append("issues: " + ", ".join(linked))
    return bits


ACCOUNTS = (("what_happened", "What happened"), ("what_worked", "What worked"), ("what_did_not", "What did not work"))


def title_of(sector: str | None, province: str | None) -> str:
    parts = [model.sector_label(sector) if sector else "", refdata.PROVINCES.get(province or "", "")]
    scope = ", ".join(p for p in parts if p)
    return f"Lessons learned{': ' + scope if scope else ''}"


def render_digest_markdown(groups: list[DigestGroup], refs: dict[str, str], title: str, today: str) -> str:
    from fieldkit.reports import md_cell

    count = sum(len(g.lessons) for g in groups)
    lines = [f"# {title}", "", f"{count} lesson{'s' if count != 1 else ''} from Project Consolidate, {today}. Grouped by sector, then province."]
    if not groups:
        lines += ["", "No lessons recorded yet: `fieldkit lesson add --title ...` captures one."]
    current_sector = None
    for group in groups:
        if group.sector != current_sector:
            lines += ["", f"## {group.sector}"]
            current_sector = group.sector
        lines += ["", f"### {group.province}"]
        for lesson in group.lessons:
            lines += ["", f"#### {md_cell(lesson.get('title', ''))}"]
            meta = _meta(lesson, refs)
            if meta:
                lines += ["", "*" + md_cell(" · ".join(meta)) + "*"]
            for name, label in ACCOUNTS:
                if lesson.get(name):
                    lines += ["", f"**{label}:** {' '.join(lesson[name].split())}"]
    lines += ["", "---", "Made with fieldkit. Share it: lessons belong to everyone in Project Consolidate."]
    return "\n".join(lines) + "\n"


def render_digest_html(groups: list[DigestGroup], refs: dict[str, str], title: str, today: str) -> str:
    from fieldkit.reports import esc, page

    count = sum(len(g.lessons) for g in groups)
    body = [f"<h1>{esc(title)}</h1>", f'<p class="meta">{count} lesson{"s" if count != 1 else ""} from Project Consolidate, {esc(today)}. Grouped by sector, then province.</p>']
    if not groups:
        body.append('<p class="empty">No lessons recorded yet.</p>')
    current_sector = None
    for group in groups:
        if group.sector != current_sector:
            body.append(f"<h2>{esc(group.sector)}</h2>")
            current_sector = group.sector
        body.append(f"<h3>{esc(group.province)}</h3>")
        for lesson in group.lessons:
            parts = [f'<article class="lesson"><h4>{esc(lesson.get("title", ""))}</h4>']
            meta = _meta(lesson, refs)
            if meta:
                parts.append(f'<p class="meta">{esc(" · ".join(meta))}</p>')
            for name, label in ACCOUNTS:
                if lesson.get(name):
                    parts.append(f"<p><b>{esc(label)}:</b> {esc(lesson[name])}</p>")
            parts.append("</article>")
            body.append("".join(parts))
    body.append("<footer>Made with fieldkit. Share it: lessons belong to everyone in Project Consolidate.</footer>")
    return page(title, "".join(body), LESSON_CSS)


LESSON_CSS = """
article.lesson { break-inside: avoid; page-break-inside: avoid; margin: 0 0 4mm; padding-left: 3mm; border-left: 2px solid #d5dce3; }
article.lesson p { margin: 1mm 0; }
h4 { margin: 3mm 0 1mm; font-size: 10.5pt; }
"""
