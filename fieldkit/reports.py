"""The status report for a Project Consolidate task team meeting.

Built in two steps so the figures can be checked on a fixed register: ``gather``
reads what the report needs from the register (the only I/O), ``compute`` turns
it into a ``ReportData`` with pure rules, and ``render_markdown`` /
``render_html`` lay it out. Personal information (community contacts) is never
read into a report.

Days are South African days (UTC+2): an issue resolved at 23:30 UTC on the 3rd
was resolved on the 4th for the people in the meeting.
"""

from __future__ import annotations

import html
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable

from fieldkit import model, refdata
from fieldkit.filters import IssueFilter, due_this_week

SAST = model.SAST

#: Without --since, a report looks back this far: PC task teams meet about monthly.
DEFAULT_SINCE_DAYS = 30
#: Longest list shown per section; the report says how many more there are.
DEFAULT_LIMIT = 25

NO_OWNER = "No owner named"
NOT_ASSIGNED = "Not assigned"
NOT_SAID = "Not said"
RESOLVED_STATUSES = frozenset({"resolved", "closed"})


class ScopeError(ValueError):
    """A municipality, district or province code that does not exist."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Which part of the register a report covers."""

    kind: str = "all"  # all, municipality, district, province
    code: str = ""

    @property
    def label(self) -> str:
        if self.kind == "municipality":
            muni = refdata.get(self.code)
            return f"{muni.current_name} ({muni.code}, {muni.kind} municipality)" if muni else self.code
        if self.kind == "district":
            muni = refdata.get(self.code)
            return f"{muni.current_name} district ({muni.code}) and its local municipalities" if muni else self.code
        if self.kind == "province":
            return refdata.PROVINCES.get(self.code, self.code)
        return "All municipalities in the register"

    def question(self) -> IssueFilter:
        if self.kind == "municipality":
            return IssueFilter(municipalities=frozenset({self.code}), sort="created")
        if self.kind == "district":
            return IssueFilter(districts=frozenset({self.code}), sort="created")
        if self.kind == "province":
            return IssueFilter(provinces=frozenset({self.code}), sort="created")
        return IssueFilter(sort="created")


def make_scope(municipality: str | None = None, district: str | None = None, province: str | None = None) -> Scope:
    """A checked scope from what a person typed; raises ScopeError with a one-line reason."""
    if municipality:
        code = municipality.strip().upper()
        problem = model.check_municipality(code)
        if problem:
            raise ScopeError(problem)
        return Scope("municipality", code)
    if district:
        muni = refdata.get(district)
        if muni is None or muni.category != "C":
            raise ScopeError(f"'{district}' is not a district code — districts are like DC12 (Amathole)")
        return Scope("district", muni.code)
    if province:
        code = refdata.province_code(province)
        if code is None:
            raise ScopeError(f"Unknown province '{province}' — use one of: {', '.join(refdata.PROVINCES)}")
        return Scope("province", code)
    return Scope()


def scope_from_text(text: str) -> Scope:
    """What a person typed in the app's one scope box: blank for all, a province, a district, a municipality.

    Codes are taken first (EC is a province, DC12 a district, EC121 a local);
    otherwise the best-matching municipality name, so 'Mbhashe' works too.
    """
    typed = text.strip()
    if not typed:
        return Scope()
    province = refdata.province_code(typed)
    if province:
        return Scope("province", province)
    muni = refdata.get(typed)
    if muni is None:
        found = refdata.search(typed, limit=1)
        muni = found[0] if found else None
    if muni is None:
        raise ScopeError(f"No municipality, district or province matches '{typed}' — try a code such as EC121, DC12 or EC")
    return Scope("district" if muni.category == "C" else "municipality", muni.code)


def default_since(today: date) -> date:
    return today - timedelta(days=DEFAULT_SINCE_DAYS)


def local_day(iso: str | None) -> date | None:
    """The South African calendar day of a stored time stamp (or plain date)."""
    moment = model.local_time(iso)
    return moment.date() if moment else None


# -- what the report needs from the register ------------------------------------------------


@dataclass(slots=True)
class ReportInputs:
    """The issues in scope (no deleted ones, no personal fields) with their actions and status changes."""

    issues: list[dict[str, Any]]
    actions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    status_changes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    thumbnails: dict[str, bytes] = field(default_factory=dict)  # by the thumbnail's hash, those on this laptop


def gather(register, scope: Scope) -> ReportInputs:
    """Read the register for one scope: the only part of a report that does I/O."""
    from fieldkit.exports import children_by_issue

    documents = register.store.documents("issue")
    all_actions = children_by_issue(register, "action")
    all_changes = children_by_issue(register, "status_change")
    all_attachments = children_by_issue(register, "attachment")
    issues = []
    actions = {}
    changes = {}
    attachments = {}
    for row in register.find(scope.question()):
        values = {k: v for k, v in documents[row.id].items() if k not in model.PERSONAL_FIELDS}
        issues.append(values)
        actions[row.id] = all_actions.get(row.id, [])
        changes[row.id] = all_changes.get(row.id, [])
        attachments[row.id] = [a for a in all_attachments.get(row.id, []) if not a.get("deleted")]
    return ReportInputs(issues, actions, changes, attachments, _thumbnails(register, attachments))


def _thumbnails(register, attachments: dict[str, list[dict[str, Any]]]) -> dict[str, bytes]:
    """The thumbnails on this laptop of the photos in scope; a missing or damaged one is left out."""
    from fieldkit.store import StoreError

    blobs = register.store.blobs
    found = {}
    for records in attachments.values():
        for record in records:
            sha = record.get("thumb_sha256")
            if sha and sha not in found and blobs.has(sha):
                try:
                    found[sha] = blobs.get(sha)
                except StoreError:
                    continue
    return found


# -- the figures -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssueLine:
    """One issue as a report line; ``when`` and ``note`` depend on the section."""

    ref: str
    municipality: str
    municipality_name: str
    title: str
    sector: str
    severity: str
    status: str
    responsible: str
    wsa: str = ""
    when: date | None = None
    days: int | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ActionLine:
    ref: str
    municipality: str
    issue_title: str
    text: str
    owner: str
    due: date
    days_overdue: int


@dataclass(frozen=True, slots=True)
class OwnerActions:
    owner: str
    actions: tuple[ActionLine, ...]
    total: int


@dataclass(frozen=True, slots=True)
class Breakdown:
    """One line of a table of counts: a label, counts by a second key, and the total."""

    label: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class NeedLine:
    ref: str
    municipality: str
    kind: str
    detail: str
    support_from: str


@dataclass(frozen=True, slots=True)
class PhotoLine:
    """A photo on an open issue, for the report's evidence section."""

    ref: str
    title: str
    caption: str
    name: str
    taken: str
    thumbnail: bytes | None


@dataclass(frozen=True, slots=True)
class Totals:
    open: int = 0
    opened_since: int = 0
    resolved_since: int = 0
    escalated: int = 0
    critical_open: int = 0
    overdue_actions: int = 0
    due_soon_actions: int = 0
    imbizo_open: int = 0


@dataclass(frozen=True, slots=True)
class ReportData:
    scope: Scope
    scope_label: str
    since: date
    today: date
    water_authority: str
    totals: Totals
    by_sector: tuple[Breakdown, ...]  # counts by severity
    by_responsible: tuple[Breakdown, ...]  # counts: open, escalated, critical, overdue_actions
    by_municipality: tuple[Breakdown, ...]  # counts: open, escalated, critical, resolved_since
    by_wsa: tuple[Breakdown, ...]  # open water and sanitation issues, counts by sector
    resolved: tuple[IssueLine, ...]
    escalations: tuple[IssueLine, ...]
    overdue_by_owner: tuple[OwnerActions, ...]
    due_by_owner: tuple[OwnerActions, ...]
    needs_by_source: tuple[Breakdown, ...]  # counts by need kind
    needs: tuple[NeedLine, ...]
    needs_total: int
    imbizo: tuple[IssueLine, ...]
    limit: int
    photos: tuple[PhotoLine, ...] = ()
    photos_total: int = 0

    @property
    def period_days(self) -> int:
        return (self.today - self.since).days


def wsa_for(values: dict[str, Any]) -> str:
    """For a water or sanitation issue in a local municipality, who holds the water services duty."""
    if values.get("sector") not in ("water", "sanitation"):
        return ""
    muni = refdata.get(values.get("municipality") or "")
    if muni is None or muni.category != "B":
        return ""
    wsa, _ = refdata.water_services_authority(muni.code)
    if wsa is None:
        return "not known"
    return "the municipality itself" if wsa.code == muni.code else f"{wsa.current_name} ({wsa.code})"


def _line(values: dict[str, Any], when: date | None = None, today: date | None = None, note: str = "") -> IssueLine:
    muni = refdata.get(values.get("municipality") or "")
    return IssueLine(
        ref=values.get("ref", ""),
        municipality=values.get("municipality", ""),
        municipality_name=muni.current_name if muni else "",
        title=values.get("title", ""),
        sector=model.sector_label(values.get("sector")),
        severity=model.SEVERITIES.get(values.get("severity") or "", values.get("severity") or ""),
        status=model.STATUSES.get(values.get("status") or "", values.get("status") or ""),
        responsible=(values.get("responsible") or "").strip() or NOT_ASSIGNED,
        wsa=wsa_for(values),
        when=when,
        days=(today - when).days if when and today else None,
        note=note,
    )


def resolved_on(values: dict[str, Any], changes: Iterable[dict[str, Any]]) -> date | None:
    """When a resolved or closed issue left the open statuses (None if it is open, or nobody recorded it)."""
    if values.get("status") not in RESOLVED_STATUSES:
        return None
    latest = None
    for change in changes:
        if change.get("to_status") in RESOLVED_STATUSES and change.get("from_status") in model.OPEN_STATUSES:
            if latest is None or (change.get("at") or "") > (latest.get("at") or ""):
                latest = change
    return local_day(latest.get("at")) if latest else None


def _latest_change_to(status: str, changes: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    found = [c for c in changes if c.get("to_status") == status]
    return max(found, key=lambda c: c.get("at") or "") if found else None


def _by_owner(actions: list[ActionLine], limit: int) -> tuple[OwnerActions, ...]:
    groups: dict[str, list[ActionLine]] = defaultdict(list)
    for action in actions:
        groups[action.owner].append(action)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0] == NO_OWNER, item[0].lower()))
    return tuple(
        OwnerActions(owner, tuple(sorted(lines, key=lambda a: (a.due, a.ref))[: limit or None]), len(lines))
        for owner, lines in ordered
    )


def _breakdowns(counts: dict[str, Counter], order: Iterable[str] | None = None, total_key: str | None = None) -> tuple[Breakdown, ...]:
    lines = [
        Breakdown(label, dict(counter), counter[total_key] if total_key else sum(counter.values()))
        for label, counter in counts.items()
    ]
    if order is not None:
        rank = {name: n for n, name in enumerate(order)}
        lines.sort(key=lambda b: (-b.total, rank.get(b.label, len(rank))))
    else:
        lines.sort(key=lambda b: (-b.total, b.label.lower()))
    return tuple(lines)


def compute(inputs: ReportInputs, scope: Scope, since: date, today: date, limit: int = DEFAULT_LIMIT) -> ReportData:
    """Every figure of the report from the register's records, as pure rules."""
    cap = limit or None
    open_issues = [v for v in inputs.issues if model.is_open(v)]
    live = [v for v in inputs.issues if not v.get("deleted")]
    photos = [
        PhotoLine(values.get("ref", ""), values.get("title", ""), a.get("caption", ""), a.get("name", ""),
                  str(local_day(a.get("taken_at") or a.get("at")) or ""), inputs.thumbnails.get(a.get("thumb_sha256", "")))
        for values in sorted(open_issues, key=lambda v: (list(model.SEVERITIES).index(v["severity"]) if v.get("severity") in model.SEVERITIES else 9,
                                                         v.get("ref", "")))
        for a in inputs.attachments.get(values["id"], []) if a.get("thumb_sha256")
    ]

    by_sector: dict[str, Counter] = defaultdict(Counter)
    by_responsible: dict[str, Counter] = defaultdict(Counter)
    by_muni: dict[str, Counter] = defaultdict(Counter)
    by_wsa: dict[str, Counter] = defaultdict(Counter)
    needs_by_source: dict[str, Counter] = defaultdict(Counter)
    needs: list[NeedLine] = []
    escalations: list[IssueLine] = []
    imbizo: list[IssueLine] = []
    for values in open_issues:
        issue_id = values["id"]
        responsible = (values.get("responsible") or "").strip() or NOT_ASSIGNED
        sector = model.sector_label(values.get("sector"))
        severity = values.get("severity") or "medium"
        escalated = values.get("status") == "escalated"
        by_sector[sector][severity] += 1
        by_responsible[responsible]["open"] += 1
        by_responsible[responsible]["escalated"] += escalated
        by_responsible[responsible]["critical"] += severity == "critical"
        by_responsible[responsible]["overdue_actions"] += sum(
            1 for a in inputs.actions.get(issue_id, []) if model.is_overdue(a, today)
        )
        muni_key = _muni_label(values.get("municipality", ""))
        by_muni[muni_key]["open"] += 1
        by_muni[muni_key]["escalated"] += escalated
        by_muni[muni_key]["critical"] += severity == "critical"
        if values.get("sector") in ("water", "sanitation") and values.get("municipality"):
            wsa, _ = refdata.water_services_authority(values["municipality"])
            by_wsa[f"{wsa.current_name} ({wsa.code})" if wsa else "WSA not known"][values["sector"]] += 1
        if escalated:
            change = _latest_change_to("escalated", inputs.status_changes.get(issue_id, []))
            when = local_day(change.get("at")) if change else None
            escalations.append(_line(values, when, today, (change or {}).get("note", "")))
        if values.get("source") == "imbizo":
            open_actions = [a for a in inputs.actions.get(issue_id, []) if not a.get("done")]
            overdue = sum(1 for a in open_actions if model.is_overdue(a, today))
            follow_up = f"{len(open_actions)} open action{'s' if len(open_actions) != 1 else ''}"
            follow_up += f", {overdue} overdue" if overdue else ""
            note = " — ".join(p for p in (values.get("source_detail"), values.get("commitment")) if p)
            imbizo.append(_line(values, local_day(values.get("created_at")), today, f"{note} ({follow_up})" if note else follow_up))
        for need in values.get("needs") or []:
            source = (need.get("support_from") or "").strip() or NOT_SAID
            kind = model.NEED_KINDS.get(need.get("kind", ""), need.get("kind", ""))
            needs_by_source[source][kind] += 1
            needs.append(NeedLine(values.get("ref", ""), values.get("municipality", ""), kind, need.get("detail", ""), source))

    resolved: list[IssueLine] = []
    opened_since = 0
    for values in live:
        created = local_day(values.get("created_at"))
        if created and created >= since:
            opened_since += 1
        when = resolved_on(values, inputs.status_changes.get(values["id"], []))
        if when and since <= when <= today:
            resolved.append(_line(values, when, today))
            by_muni[_muni_label(values.get("municipality", ""))]["resolved_since"] += 1

    overdue: list[ActionLine] = []
    due_soon: list[ActionLine] = []
    for values in live:
        for action in inputs.actions.get(values["id"], []):
            due = model.stored_day(action.get("due"))
            if action.get("done") or action.get("deleted") or due is None:
                continue
            line = ActionLine(
                ref=values.get("ref", ""),
                municipality=values.get("municipality", ""),
                issue_title=values.get("title", ""),
                text=action.get("text", ""),
                owner=(action.get("owner") or "").strip() or NO_OWNER,
                due=due,
                days_overdue=(today - due).days,
            )
            if due < today:
                overdue.append(line)
            elif due_this_week(action["due"], today):
                due_soon.append(line)

    escalations.sort(key=lambda line: (line.when or today, line.ref))
    resolved.sort(key=lambda line: (line.when or today, line.ref), reverse=True)
    imbizo.sort(key=lambda line: (line.when or today, line.ref))
    needs.sort(key=lambda n: (n.support_from == NOT_SAID, n.support_from, n.kind, n.ref))
    severities = list(model.SEVERITIES)
    return ReportData(
        scope=scope,
        scope_label=scope.label,
        since=since,
        today=today,
        water_authority=refdata.water_services_authority(scope.code)[1] if scope.kind == "municipality" else "",
        totals=Totals(
            open=len(open_issues),
            opened_since=opened_since,
            resolved_since=len(resolved),
            escalated=len(escalations),
            critical_open=sum(1 for v in open_issues if v.get("severity") == "critical"),
            overdue_actions=len(overdue),
            due_soon_actions=len(due_soon),
            imbizo_open=len(imbizo),
        ),
        by_sector=tuple(
            Breakdown(b.label, {s: b.counts.get(s, 0) for s in severities}, b.total)
            for b in _breakdowns(by_sector, order=model.SECTORS.values())
        ),
        by_responsible=_breakdowns(by_responsible, total_key="open"),
        by_municipality=_breakdowns(by_muni, total_key="open") if scope.kind != "municipality" else (),
        by_wsa=_breakdowns(by_wsa),
        resolved=tuple(resolved[:cap]),
        escalations=tuple(escalations[:cap]),
        overdue_by_owner=_by_owner(overdue, limit),
        due_by_owner=_by_owner(due_soon, limit),
        needs_by_source=tuple(
            Breakdown(b.label, {k: b.counts.get(k, 0) for k in model.NEED_KINDS.values()}, b.total)
            for b in sorted(_breakdowns(needs_by_source), key=lambda b: (b.label == NOT_SAID, -b.total, b.label.lower()))
        ),
        needs=tuple(needs[:cap]),
        needs_total=len(needs),
        imbizo=tuple(imbizo[:cap]),
        limit=limit,
        photos=tuple(photos[:cap]),
        photos_total=len(photos),
    )


def _muni_label(code: str) -> str:
    muni = refdata.get(code) if code else None
    return f"{muni.current_name} ({muni.code})" if muni else (code or "No municipality")


def build_report(register, scope: Scope, since: date | None = None, today: date | None = None, limit: int = DEFAULT_LIMIT) -> ReportData:
    day = today or datetime.now(SAST).date()
    return compute(gather(register, scope), scope, since or default_since(day), day, limit)


def render(data: ReportData, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(data)
    if fmt == "html":
        return render_html(data)
    raise ValueError(f"unknown report format {fmt!r}")


# -- Markdown --------------------------------------------------------------------------------


_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "~": "&#126;"}
_MD_BACKSLASHED = "\\`*_[]|#"


def md_cell(value: Any) -> str:
    """User text that stays plain text inside one Markdown table cell or list item: emphasis, links,
    code and pipes backslash-escaped (CommonMark and python-markdown both honour these), and HTML
    characters as entities, so a pasted `<script>` is shown, never run."""
    text = " ".join(("" if value is None else str(value)).split())
    out = []
    for char in text:
        if char in _MD_ENTITIES:
            out.append(_MD_ENTITIES[char])
        elif char in _MD_BACKSLASHED:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def md_table(headers: list[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = ()) -> list[str]:
    right = set(numeric)
    lines = ["| " + " | ".join(md_cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(md_cell(c) for c in row) + " |")
    return lines


def _capped(data: ReportData, lines: tuple) -> tuple:
    """A count table as long as the report's limit; the figures themselves stay complete."""
    return lines[: data.limit] if data.limit else lines


def _more(shown: int, total: int) -> str:
    return f"… and {total - shown} more not shown (raise --limit to see them)." if total > shown else ""


def _after_table(shown: int, total: int) -> list[str]:
    """The 'more not shown' line as a paragraph of its own: directly under a table it would be read as a row."""
    more = _more(shown, total)
    return ["", more] if more else []


def _where(line: IssueLine) -> str:
    return f"{line.municipality_name or line.municipality}"


def headline(data: ReportData) -> list[tuple[str, int]]:
    t = data.totals
    return [
        ("Open issues", t.open),
        ("Critical and open", t.critical_open),
        ("Escalated", t.escalated),
        (f"Opened since {data.since.isoformat()}", t.opened_since),
        (f"Resolved since {data.since.isoformat()}", t.resolved_since),
        ("Follow-up actions overdue", t.overdue_actions),
        ("Follow-up actions due in the next 7 days", t.due_soon_actions),
        ("Open issues raised at an imbizo", t.imbizo_open),
    ]


def render_markdown(data: ReportData) -> str:
    lines: list[str] = [
        f"# Status report: {data.scope_label}",
        "",
        f"For the Project Consolidate task team meeting · {data.today.isoformat()} · "
        f"changes since {data.since.isoformat()} ({data.period_days} days)",
    ]
    if data.water_authority:
        lines += ["", f"Water services: {data.water_authority}."]
    lines += ["", "## At a glance", ""]
    lines += [f"- **{label}:** {value}" for label, value in headline(data)]

    lines += ["", "## Open issues by sector", ""]
    if data.by_sector:
        severity_names = list(model.SEVERITIES.values())
        lines += md_table(
            ["Sector", *severity_names, "Open"],
            ([b.label, *b.counts.values(), b.total] for b in data.by_sector),
            numeric=range(1, len(severity_names) + 2),
        )
    else:
        lines.append("No open issues.")

    lines += ["", "## Open issues by responsible institution", ""]
    if data.by_responsible:
        lines += md_table(
            ["Responsible institution", "Open", "Escalated", "Critical", "Actions overdue"],
            ([b.label, b.total, b.counts.get("escalated", 0), b.counts.get("critical", 0), b.counts.get("overdue_actions", 0)] for b in _capped(data, data.by_responsible)),
            numeric=(1, 2, 3, 4),
        )
        lines += _after_table(len(_capped(data, data.by_responsible)), len(data.by_responsible))
    else:
        lines.append("No open issues.")

    if data.by_municipality:
        lines += ["", "## By municipality", ""]
        lines += md_table(
            ["Municipality", "Open", "Escalated", "Critical", f"Resolved since {data.since.isoformat()}"],
            ([b.label, b.total, b.counts.get("escalated", 0), b.counts.get("critical", 0), b.counts.get("resolved_since", 0)] for b in _capped(data, data.by_municipality)),
            numeric=(1, 2, 3, 4),
        )
        lines += _after_table(len(_capped(data, data.by_municipality)), len(data.by_municipality))

    if data.by_wsa:
        lines += ["", "## Open water and sanitation issues by Water Services Authority", ""]
        lines += md_table(
            ["Water Services Authority", "Water", "Sanitation", "Open"],
            ([b.label, b.counts.get("water", 0), b.counts.get("sanitation", 0), b.total] for b in _capped(data, data.by_wsa)),
            numeric=(1, 2, 3),
        )
        lines += _after_table(len(_capped(data, data.by_wsa)), len(data.by_wsa))

    lines += ["", f"## Resolved since {data.since.isoformat()}", ""]
    if data.resolved:
        lines += md_table(
            ["Resolved", "Reference", "Municipality", "Issue", "Sector", "Responsible", "Days since"],
            ([r.when.isoformat() if r.when else "", r.ref, _where(r), r.title, _with_wsa(r), r.responsible, r.days] for r in data.resolved),
            numeric=(6,),
        )
        lines += _after_table(len(data.resolved), data.totals.resolved_since)
    else:
        lines.append("Nothing was resolved in this period.")

    lines += ["", "## Escalations", ""]
    if data.escalations:
        lines += md_table(
            ["Escalated", "Days", "Reference", "Municipality", "Issue", "Sector", "Responsible", "Why"],
            ([e.when.isoformat() if e.when else "", e.days if e.days is not None else "", e.ref, _where(e), e.title, _with_wsa(e), e.responsible, e.note] for e in data.escalations),
            numeric=(1,),
        )
        lines += _after_table(len(data.escalations), data.totals.escalated)
    else:
        lines.append("No open escalations.")

    lines += ["", "## Follow-up actions overdue, by owner", ""]
    lines += _owner_sections_md(data.overdue_by_owner, overdue=True) or ["No follow-up action is overdue."]
    lines += ["", "## Follow-up actions due in the next 7 days, by owner", ""]
    lines += _owner_sections_md(data.due_by_owner, overdue=False) or ["No follow-up action falls due in the next 7 days."]

    lines += ["", "## Imbizo commitments still open", ""]
    if data.imbizo:
        lines += md_table(
            ["Raised", "Reference", "Municipality", "Issue", "Responsible", "Imbizo, commitment and follow-up"],
            ([i.when.isoformat() if i.when else "", i.ref, _where(i), i.title, i.responsible, i.note] for i in data.imbizo),
        )
        lines += _after_table(len(data.imbizo), data.totals.imbizo_open)
    else:
        lines.append("No open issue was raised at an imbizo.")

    lines += ["", "## Capacity-building needs and the support asked for", ""]
    if data.needs_by_source:
        kinds = list(model.NEED_KINDS.values())
        lines += md_table(
            ["Support asked from", *kinds, "Needs"],
            ([b.label, *b.counts.values(), b.total] for b in data.needs_by_source),
            numeric=range(1, len(kinds) + 2),
        )
        lines += [""]
        lines += md_table(
            ["Support asked from", "Need", "Reference", "Municipality", "Detail"],
            ([n.support_from, n.kind, n.ref, n.municipality, n.detail] for n in data.needs),
        )
        lines += _after_table(len(data.needs), data.needs_total)
    else:
        lines.append("No capacity-building needs recorded on open issues.")
    lines += ["", "---", f"Made with fieldkit on {data.today.isoformat()}. Community contacts are never included in reports."]
    return "\n".join(line for line in _squeeze(lines)) + "\n"


def _squeeze(lines: list[str]) -> Iterable[str]:
    """Drop the empty 'more' lines and doubled blank lines."""
    previous = None
    for line in lines:
        if line == "" and previous == "":
            continue
        previous = line
        yield line


def _with_wsa(line: IssueLine) -> str:
    return f"{line.sector} (WSA: {line.wsa})" if line.wsa else line.sector


def _owner_sections_md(groups: tuple[OwnerActions, ...], overdue: bool) -> list[str]:
    if not groups:
        return []
    lines = md_table(["Owner", "Actions", "Oldest due" if overdue else "Next due"], ([g.owner, g.total, g.actions[0].due.isoformat()] for g in groups), numeric=(1,))
    for group in groups:
        lines += ["", f"**{md_cell(group.owner)}** ({group.total})", ""]
        for a in group.actions:
            late = f", {a.days_overdue} days late" if overdue else ""
            lines.append(f"- {a.due.isoformat()}{late}: {md_cell(a.text)} — {a.ref} {md_cell(a.issue_title)}")
        more = _more(len(group.actions), group.total)
        if more:
            lines.append(f"- {more}")
    return lines


# -- HTML ------------------------------------------------------------------------------------

SEVERITY_COLOURS = {"critical": "#b2182b", "high": "#ef8a62", "medium": "#f4c542", "low": "#8fa9c4"}
BAR_COLOUR = "#3b6e99"
ALERT_COLOUR = "#b2182b"

PAGE_CSS = """
:root { --ink: #1d2733; --muted: #5b6876; --rule: #d5dce3; --head: #eef2f6; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: var(--ink); font-size: 10pt;
       line-height: 1.35; margin: 0 auto; max-width: 190mm; padding: 10mm 4mm; }
h1 { font-size: 17pt; margin: 0 0 2mm; }
h2 { font-size: 12.5pt; margin: 7mm 0 2mm; padding-bottom: 1mm; border-bottom: 1.5px solid var(--ink);
     break-after: avoid; page-break-after: avoid; }
h3 { font-size: 10.5pt; margin: 4mm 0 1mm; break-after: avoid; }
p.meta { color: var(--muted); margin: 0 0 1mm; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 2.5mm; margin: 4mm 0; }
.card { border: 1px solid var(--rule); border-radius: 2mm; padding: 2mm 3mm; break-inside: avoid; }
.card b { display: block; font-size: 16pt; }
.card span { color: var(--muted); font-size: 8.5pt; }
.card.alert b { color: #b2182b; }
table { width: 100%; border-collapse: collapse; margin: 2mm 0; font-size: 8.8pt; }
th, td { text-align: left; vertical-align: top; padding: 1mm 1.5mm; border-bottom: 1px solid var(--rule); }
th { background: var(--head); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr { break-inside: avoid; page-break-inside: avoid; }
thead { display: table-header-group; }
.chart { margin: 2mm 0 3mm; break-inside: avoid; page-break-inside: avoid; }
.chart svg { width: 100%; height: auto; display: block; }
.more, .empty { color: var(--muted); font-style: italic; margin: 1mm 0; }
.sub { color: var(--muted); font-size: 8pt; display: block; }
td.nw, th.nw { white-space: nowrap; }
section { break-inside: auto; }
footer { margin-top: 8mm; color: var(--muted); font-size: 8pt; border-top: 1px solid var(--rule); padding-top: 2mm; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
}
.photos { display: grid; grid-template-columns: repeat(auto-fill, minmax(38mm, 1fr)); gap: 3mm 2.5mm; }
.photos figure { margin: 0; break-inside: avoid; page-break-inside: avoid; }
.photos img, .photos .nothumb { display: block; box-sizing: border-box; width: 100%; aspect-ratio: 4 / 3;
  object-fit: contain; background: #f2f2f2; border: 1px solid var(--rule); }
.photos .nothumb { display: flex; align-items: center; justify-content: center; text-align: center;
  padding: 2mm; color: var(--muted); font-size: 8.5pt; font-style: italic; }
.photos figcaption { font-size: 8.5pt; margin-top: 1mm; }
.date { white-space: nowrap; }
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def unbroken_dates(text: str) -> str:
    """Dates kept on one line: a narrow card broke "2026-11-02" after its second hyphen."""
    return re.sub(r"\b(\d{4}-\d{2}-\d{2})\b", r'<span class="date">\1</span>', text)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


def bar_chart(title: str, bars: list[tuple[str, list[tuple[int, str, str]]]], legend: list[tuple[str, str]] = ()) -> str:
    """A horizontal bar chart as inline SVG: each bar a label and stacked (value, colour, name) parts."""
    if not bars:
        return ""
    width, label_w, row_h, top = 680, 250, 22, 26 if legend else 8
    plot_w = width - label_w - 50
    largest = max(sum(v for v, _, _ in parts) for _, parts in bars) or 1
    height = top + row_h * len(bars) + 6
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}" '
        f'font-family="DejaVu Sans, Segoe UI, Arial, sans-serif" font-size="12">',
        f"<title>{esc(title)}</title>",
    ]
    x = label_w
    for name, colour in legend:
        out.append(f'<rect x="{x}" y="4" width="11" height="11" fill="{colour}"/>')
        out.append(f'<text x="{x + 15}" y="14" fill="#1d2733">{esc(name)}</text>')
        x += 22 + 7.2 * len(name)
    for n, (label, parts) in enumerate(bars):
        y = top + n * row_h
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#1d2733">{esc(_clip(label, 31))}<title>{esc(label)}</title></text>')
        x = float(label_w)
        total = 0
        for value, colour, part in parts:
            if value <= 0:
                continue
            w = plot_w * value / largest
            out.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 7}" fill="{colour}"><title>{esc(part)}: {value}</title></rect>')
            x += w
            total += value
        out.append(f'<text x="{x + 5:.1f}" y="{y + 15}" fill="#1d2733">{total}</text>')
    out.append("</svg>")
    return f'<figure class="chart">{"".join(out)}</figure>'


def html_table(headers: list[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = (), raw: Iterable[int] = (), nowrap: Iterable[int] = ()) -> str:
    """A table; cells in ``raw`` columns are already HTML, the rest are escaped."""
    right, trusted, whole = set(numeric), set(raw), set(nowrap)

    def attrs(i: int) -> str:
        names = " ".join(n for n, on in (("n", i in right), ("nw", i in whole)) if on)
        return f' class="{names}"' if names else ""

    head = "".join(f"<th{attrs(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f"<td{attrs(i)}>{cell if i in trusted else esc(cell)}</td>" for i, cell in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _more_html(shown: int, total: int) -> str:
    text = _more(shown, total)
    return f'<p class="more">{esc(text)}</p>' if text else ""


def _issue_html(line: IssueLine) -> str:
    """The title, with the sector (and for water in a local municipality, the WSA) under it."""
    under = f"{line.sector} · WSA: {line.wsa}" if line.wsa else line.sector
    return f'{esc(line.title)}<span class="sub">{esc(under)}</span>'



def _owner_sections_html(groups: tuple[OwnerActions, ...], overdue: bool, empty: str) -> str:
    if not groups:
        return f'<p class="empty">{esc(empty)}</p>'
    parts = []
    if overdue and len(groups) > 1:
        parts.append(bar_chart(
            "Overdue follow-up actions by owner",
            [(g.owner, [(g.total, ALERT_COLOUR, "Overdue actions")]) for g in groups[:10]],
        ))
    for group in groups:
        rows = (
            [a.due.isoformat(), a.days_overdue if overdue else -a.days_overdue, a.text, a.ref, a.issue_title]
            for a in group.actions
        )
        parts.append(f"<h3>{esc(group.owner)} ({group.total})</h3>")
        parts.append(html_table(["Due", "Days late" if overdue else "Days left", "Action", "Reference", "Issue"], rows, numeric=(1,), nowrap=(0, 3)))
        parts.append(_more_html(len(group.actions), group.total))
    return "".join(parts)


def render_html(data: ReportData) -> str:
    """A self-contained page (inline SVG charts, no external assets) that prints on A4."""
    t = data.totals
    alert = {"Critical and open", "Escalated", "Follow-up actions overdue"}
    cards = "".join(
        f'<div class="card{" alert" if label in alert and value else ""}"><b>{value}</b><span>{unbroken_dates(esc(label))}</span></div>'
        for label, value in headline(data)
    )
    body = [
        f"<h1>Status report: {esc(data.scope_label)}</h1>",
        f'<p class="meta">For the Project Consolidate task team meeting · {data.today.isoformat()} · '
        f"changes since {data.since.isoformat()} ({data.period_days} days)</p>",
    ]
    if data.water_authority:
        body.append(f'<p class="meta">Water services: {esc(data.water_authority)}.</p>')
    body.append(f'<div class="cards">{cards}</div>')

    body.append("<section><h2>Open issues by sector</h2>")
    if data.by_sector:
        legend = [(model.SEVERITIES[s], SEVERITY_COLOURS[s]) for s in model.SEVERITIES]
        body.append(bar_chart(
            "Open issues by sector and severity",
            [(b.label, [(b.counts.get(s, 0), SEVERITY_COLOURS[s], model.SEVERITIES[s]) for s in model.SEVERITIES]) for b in data.by_sector],
            legend,
        ))
        body.append(html_table(
            ["Sector", *model.SEVERITIES.values(), "Open"],
            ([b.label, *b.counts.values(), b.total] for b in data.by_sector),
            numeric=range(1, len(model.SEVERITIES) + 2),
        ))
    else:
        body.append('<p class="empty">No open issues.</p>')
    body.append("</section>")

    body.append("<section><h2>Open issues by responsible institution</h2>")
    if data.by_responsible:
        body.append(bar_chart(
            "Open issues by responsible institution",
            [(b.label, [(b.counts.get("escalated", 0), ALERT_COLOUR, "Escalated"), (b.total - b.counts.get("escalated", 0), BAR_COLOUR, "Other open")]) for b in data.by_responsible[:12]],
            [("Escalated", ALERT_COLOUR), ("Other open", BAR_COLOUR)],
        ))
        body.append(html_table(
            ["Responsible institution", "Open", "Escalated", "Critical", "Actions overdue"],
            ([b.label, b.total, b.counts.get("escalated", 0), b.counts.get("critical", 0), b.counts.get("overdue_actions", 0)] for b in _capped(data, data.by_responsible)),
            numeric=(1, 2, 3, 4),
        ))
        body.append(_more_html(len(_capped(data, data.by_responsible)), len(data.by_responsible)))
    else:
        body.append('<p class="empty">No open issues.</p>')
    body.append("</section>")

    if data.by_municipality:
        body.append("<section><h2>By municipality</h2>")
        body.append(html_table(
            ["Municipality", "Open", "Escalated", "Critical", f"Resolved since {data.since.isoformat()}"],
            ([b.label, b.total, b.counts.get("escalated", 0), b.counts.get("critical", 0), b.counts.get("resolved_since", 0)] for b in _capped(data, data.by_municipality)),
            numeric=(1, 2, 3, 4),
        ))
        body.append(_more_html(len(_capped(data, data.by_municipality)), len(data.by_municipality)))
        body.append("</section>")

    if data.by_wsa:
        body.append("<section><h2>Open water and sanitation issues by Water Services Authority</h2>")
        body.append(html_table(
            ["Water Services Authority", "Water", "Sanitation", "Open"],
            ([b.label, b.counts.get("water", 0), b.counts.get("sanitation", 0), b.total] for b in _capped(data, data.by_wsa)),
            numeric=(1, 2, 3),
        ))
        body.append(_more_html(len(_capped(data, data.by_wsa)), len(data.by_wsa)))
        body.append("</section>")

    body.append(f"<section><h2>Resolved since {data.since.isoformat()}</h2>")
    if data.resolved:
        body.append(html_table(
            ["Resolved", "Reference", "Municipality", "Issue", "Responsible", "Days ago"],
            ([r.when.isoformat() if r.when else "", r.ref, _where(r), _issue_html(r), r.responsible, r.days] for r in data.resolved),
            numeric=(5,), raw=(3,), nowrap=(0, 1),
        ))
        body.append(_more_html(len(data.resolved), t.resolved_since))
    else:
        body.append('<p class="empty">Nothing was resolved in this period.</p>')
    body.append("</section>")

    body.append("<section><h2>Escalations</h2>")
    if data.escalations:
        body.append(html_table(
            ["Escalated", "Days", "Reference", "Municipality", "Issue", "Responsible", "Why"],
            ([e.when.isoformat() if e.when else "", e.days if e.days is not None else "", e.ref, _where(e), _issue_html(e), e.responsible, e.note] for e in data.escalations),
            numeric=(1,), raw=(4,), nowrap=(0, 2),
        ))
        body.append(_more_html(len(data.escalations), t.escalated))
    else:
        body.append('<p class="empty">No open escalations.</p>')
    body.append("</section>")

    body.append("<section><h2>Follow-up actions overdue, by owner</h2>")
    body.append(_owner_sections_html(data.overdue_by_owner, True, "No follow-up action is overdue."))
    body.append("</section><section><h2>Follow-up actions due in the next 7 days, by owner</h2>")
    body.append(_owner_sections_html(data.due_by_owner, False, "No follow-up action falls due in the next 7 days."))
    body.append("</section>")

    body.append("<section><h2>Imbizo commitments still open</h2>")
    if data.imbizo:
        body.append(html_table(
            ["Raised", "Reference", "Municipality", "Issue", "Responsible", "Imbizo, commitment and follow-up"],
            ([i.when.isoformat() if i.when else "", i.ref, _where(i), _issue_html(i), i.responsible, i.note] for i in data.imbizo),
            raw=(3,), nowrap=(0, 1),
        ))
        body.append(_more_html(len(data.imbizo), t.imbizo_open))
    else:
        body.append('<p class="empty">No open issue was raised at an imbizo.</p>')
    body.append("</section>")

    body.append(_photos_html(data))

    body.append("<section><h2>Capacity-building needs and the support asked for</h2>")
    if data.needs_by_source:
        kinds = list(model.NEED_KINDS.values())
        palette = ["#3b6e99", "#7fa7c9", "#e0a03b", "#9aa5b1"]
        body.append(bar_chart(
            "Capacity-building needs by the support asked for",
            [(b.label, [(b.counts.get(k, 0), palette[i % len(palette)], k) for i, k in enumerate(kinds)]) for b in data.needs_by_source],
            [(k, palette[i % len(palette)]) for i, k in enumerate(kinds)],
        ))
        body.append(html_table(
            ["Support asked from", *kinds, "Needs"],
            ([b.label, *b.counts.values(), b.total] for b in data.needs_by_source),
            numeric=range(1, len(kinds) + 2),
        ))
        body.append(html_table(
            ["Support asked from", "Need", "Reference", "Municipality", "Detail"],
            ([n.support_from, n.kind, n.ref, n.municipality, n.detail] for n in data.needs),
            nowrap=(2,),
        ))
        body.append(_more_html(len(data.needs), data.needs_total))
    else:
        body.append('<p class="empty">No capacity-building needs recorded on open issues.</p>')
    body.append("</section>")
    body.append(f"<footer>Made with fieldkit on {data.today.isoformat()}. Community contacts are never included in reports.</footer>")
    return page(f"Status report: {data.scope_label}", "".join(body))


def _photos_html(data: ReportData) -> str:
    """Thumbnails of the photos on open issues, embedded so the page stays one self-contained file."""
    import base64

    if not data.photos:
        return ""
    figures = []
    for photo in data.photos:
        if photo.thumbnail:
            image = f'<img alt="{esc(photo.caption or photo.name)}" src="data:image/jpeg;base64,{base64.b64encode(photo.thumbnail).decode()}">'
        else:
            image = '<div class="nothumb">The photo was not yet on this laptop when the report was made</div>'
        caption = esc(photo.caption) + "<br>" if photo.caption else ""
        figures.append(f"<figure>{image}<figcaption>{caption}<b>{esc(photo.ref)}</b> {esc(_clip(photo.title, 60))}"
                       f'<span class="sub">{esc(photo.name)} · {esc(photo.taken)}</span></figcaption></figure>')
    return (f'<section><h2>Photos of open issues</h2><div class="photos">{"".join(figures)}</div>'
            f"{_more_html(len(data.photos), data.photos_total)}</section>")


def page(title: str, body: str, css: str = "") -> str:
    """A whole HTML document with the print-ready stylesheet; shared with the lessons digest."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{PAGE_CSS}{css}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
