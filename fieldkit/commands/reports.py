"""Commands that carry the register into meetings and other systems: report and lesson.

(``export`` and ``import`` live with the core commands; their formats are in
``fieldkit.exports``.) Everything heavy is imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from fieldkit import model
from fieldkit.cli import CommandError
from fieldkit.safe_text import json_for_terminal, safe_for_terminal


def _open(args: argparse.Namespace):
    from fieldkit.encryption import open_register

    return open_register(author=getattr(args, "author", None))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date; write it as YYYY-MM-DD, e.g. 2026-10-01") from None


def _count(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number (0 shows everything)")
    return int(text)


def _format(args: argparse.Namespace) -> str:
    """The format asked for, else the output file's extension, else Markdown."""
    if args.format:
        return args.format
    if args.output and args.output.lower().endswith((".html", ".htm")):
        return "html"
    return "md"


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "report",
        help="a status report for a PC task team meeting (Markdown or printable HTML)",
        description="Open issues by sector and responsible institution, what was resolved since the last meeting, "
        "escalations, overdue and due follow-up actions by owner, imbizo commitments, and the capacity-building "
        "support asked for. Community contacts are never included.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--municipality", metavar="CODE", help="one municipality, e.g. EC121 or BUF")
    scope.add_argument("--district", metavar="CODE", help="a district with its local municipalities, e.g. DC12")
    scope.add_argument("--province", metavar="P", help="a province, by code or name, e.g. EC or 'Eastern Cape'")
    p.add_argument("--since", type=_day, metavar="DATE", help="count what was resolved and opened since this date (default: 30 days ago)")
    p.add_argument("--format", choices=("md", "html"), help="md for email or a wiki, html to print (default: md, or html for an -o FILE.html)")
    p.add_argument("-o", "--output", metavar="FILE", help="file to write (default: standard output)")
    p.add_argument("--limit", type=_count, default=25, metavar="N", help="longest list in a section (default 25; 0 shows everything)")
    p.set_defaults(handler=cmd_report)

    p = commands.add_parser("lesson", help="lessons learned: add, list and search, a digest to share")
    lessons = p.add_subparsers(dest="lesson_command", metavar="ACTION", parser_class=type(p), required=True)

    q = lessons.add_parser("add", help="record a lesson learned")
    q.add_argument("--title", required=True, help="the lesson in one line")
    q.add_argument("--what-happened", help="the situation")
    q.add_argument("--what-worked", help="what worked, so others can repeat it")
    q.add_argument("--what-did-not", help="what did not work, so others can avoid it")
    q.add_argument("--sector", choices=list(model.SECTORS))
    q.add_argument("--municipality", metavar="CODE", help="MDB code, e.g. EC121")
    q.add_argument("--tag", action="append", default=[], metavar="T", help="a tag; repeat for several")
    q.add_argument("--issue", action="append", default=[], metavar="REF", help="a linked issue (reference or id); repeat for several")
    q.add_argument("--author", help="who learned it (default: the name set in the app, else your login)")
    q.set_defaults(handler=cmd_lesson_add)

    q = lessons.add_parser("list", help="list lessons, newest first; words search them")
    q.add_argument("text", nargs="*", help="words to look for (title, accounts, sector, municipality, tags)")
    q.add_argument("--json", action="store_true", help="print a JSON array")
    q.set_defaults(handler=cmd_lesson_list)

    q = lessons.add_parser("digest", help="a digest of lessons grouped by sector and province, to share")
    q.add_argument("--sector", choices=list(model.SECTORS))
    q.add_argument("--province", metavar="P", help="by code or name")
    q.add_argument("--format", choices=("md", "html"), help="default: md, or html for an -o FILE.html")
    q.add_argument("-o", "--output", metavar="FILE", help="file to write (default: standard output)")
    q.set_defaults(handler=cmd_lesson_digest)


def cmd_report(args: argparse.Namespace) -> int:
    from fieldkit import reports
    from fieldkit.exports import write_text

    try:
        scope = reports.make_scope(args.municipality, args.district, args.province)
    except reports.ScopeError as err:
        raise CommandError(str(err)) from None
    today = reports.local_day(model.now_iso()) or date.today()
    if args.since and args.since > today:
        raise CommandError(f"--since {args.since.isoformat()} is in the future; give a date on or before {today.isoformat()}")
    with _open(args) as register:
        data = reports.build_report(register, scope, since=args.since, today=today, limit=args.limit)
    written = write_text(args.output, reports.render(data, _format(args)))
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0


def cmd_lesson_add(args: argparse.Namespace) -> int:
    from fieldkit.lessons import parse_tags

    tags: list[str] = []
    for text in args.tag:
        tags += [t for t in parse_tags(text) if t not in tags]
    fields = {
        "title": args.title.strip(),
        "what_happened": args.what_happened,
        "what_worked": args.what_worked,
        "what_did_not": args.what_did_not,
        "sector": args.sector,
        "municipality": args.municipality.strip().upper() if args.municipality else None,
        "tags": tags,
    }
    with _open(args) as register:
        fields["issue_ids"] = list(dict.fromkeys(register.resolve(ref) for ref in args.issue))
        lesson = register.save_lesson(fields)
    print(safe_for_terminal(f"{lesson['id']}  lesson saved: {lesson['title']}"))
    return 0


def cmd_lesson_list(args: argparse.Namespace) -> int:
    from fieldkit.lessons import search

    with _open(args) as register:
        found = search(register.lessons(), " ".join(args.text))
    if args.json:
        sys.stdout.write(json_for_terminal(json.dumps(found, ensure_ascii=False, indent=1)) + "\n")
        return 0
    if not found:
        print("No lessons match." if args.text else "No lessons yet: `fieldkit lesson add --title ...` records one.", file=sys.stderr)
        return 0
    for lesson in found:
        where = " ".join(v for v in (model.sector_label(lesson.get("sector")), lesson.get("municipality", "")) if v)
        tags = f"  [{', '.join(lesson['tags'])}]" if lesson.get("tags") else ""
        print(safe_for_terminal(f"{lesson.get('created_at', '')[:10]}  {lesson['id'][:13]}  {lesson['title']}{f'  ({where})' if where else ''}{tags}"))
    print(f"{len(found)} lesson{'s' if len(found) != 1 else ''}", file=sys.stderr)
    return 0


def cmd_lesson_digest(args: argparse.Namespace) -> int:
    from fieldkit import lessons, refdata
    from fieldkit.exports import write_text

    province = None
    if args.province:
        province = refdata.province_code(args.province)
        if province is None:
            raise CommandError(f"Unknown province '{args.province}' — use one of: {', '.join(refdata.PROVINCES)}")
    with _open(args) as register:
        found = register.lessons()
        issues = register.store.documents("issue")
        refs = {i: issues[i].get("ref", i[:8]) for lesson in found for i in lesson.get("issue_ids") or [] if i in issues}
    groups = lessons.digest_groups(found, sector=args.sector, province=province)
    title = lessons.title_of(args.sector, province)
    today = date.today().isoformat()
    if _format(args) == "html":
        text = lessons.render_digest_html(groups, refs, title, today)
    else:
        text = lessons.render_digest_markdown(groups, refs, title, today)
    written = write_text(args.output, text)
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0
