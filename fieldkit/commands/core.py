"""Commands on the register itself: add, find, show, edit, status, note, action, done,
import, export, demo, municipalities, recover, and opening the app."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fieldkit import model
from fieldkit.cli import CommandError
from fieldkit.safe_text import json_for_terminal, safe_for_terminal


#: Commands that only read: on a read-only store they answer, with a note that changes are off.
LOOKUPS = frozenset({"cmd_find", "cmd_show", "cmd_export", "cmd_municipalities", "cmd_check", "cmd_conflicts", "cmd_report"})


def _open(args: argparse.Namespace):
    from fieldkit.encryption import open_register

    register = open_register(author=getattr(args, "author", None))
    handler = getattr(getattr(args, "handler", None), "__name__", "")
    if register.store.read_only and handler in LOOKUPS:
        print(f"note: {register.store.home} is read-only — lookups work, changes are off", file=sys.stderr)
    return register


def _author_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--author", help="who is making the change (default: the name set in the app, else your login)")


def _ward(text: str) -> int | str:
    return model.parse_ward(text)


def _number(text: str) -> float | str:
    return model.parse_float(text)


def _issue_field_options(parser: argparse.ArgumentParser, editing: bool) -> None:
    parser.add_argument("--category", help="category within the sector, e.g. burst_main")
    parser.add_argument("--severity", choices=list(model.SEVERITIES), help="default: medium")
    parser.add_argument("--ward", type=_ward, help="ward number")
    parser.add_argument("--description")
    parser.add_argument("--responsible", help="the institution responsible, e.g. 'Amatola Water'")
    parser.add_argument("--source", choices=list(model.SOURCES), help="where the issue came from")
    parser.add_argument("--source-detail", help="e.g. 'Imbizo at Dutywa town hall, 12 Oct'")
    parser.add_argument("--commitment", help="what was promised (e.g. at the imbizo)")
    parser.add_argument("--address", help="address or landmark")
    parser.add_argument("--lat", type=_number, help="latitude in decimal degrees (South Africa: -35 to -22)")
    parser.add_argument("--lon", type=_number, help="longitude in decimal degrees (16 to 33)")
    parser.add_argument("--contact-name", help="community contact (personal information)")
    parser.add_argument("--contact-phone", help="community contact's phone (personal information)")
    parser.add_argument("--need", action="append", type=_need, metavar="KIND:DETAIL[:SUPPORT FROM]",
                        help="a capacity-building need, e.g. 'skills:Operator training:Amatola Water'; repeat for several"
                        + ("; replaces the issue's list" if editing else ""))
    if editing:
        parser.add_argument("--title")
        parser.add_argument("--municipality")
        parser.add_argument("--sector", choices=list(model.SECTORS))


ISSUE_OPTION_FIELDS = (
    "municipality", "sector", "title", "category", "severity", "ward", "description", "responsible",
    "source", "source_detail", "commitment", "address", "lat", "lon", "contact_name", "contact_phone",
)


def _need(text: str) -> dict[str, str]:
    kind, _, rest = text.partition(":")
    detail, _, support = rest.partition(":")
    if kind.strip().lower() not in model.NEED_KINDS or not detail.strip():
        raise argparse.ArgumentTypeError(
            f"a need is KIND:DETAIL[:SUPPORT FROM] with KIND one of {', '.join(model.NEED_KINDS)}, not '{text}'")
    return {"kind": kind.strip().lower(), "detail": detail.strip(), "support_from": support.strip()}


def _given_fields(args: argparse.Namespace) -> dict[str, Any]:
    from fieldkit.matching import municipality_code

    fields = {name: getattr(args, name) for name in ISSUE_OPTION_FIELDS if getattr(args, name, None) is not None}
    if isinstance(fields.get("municipality"), str):  # a name ('Buffalo City') is as good as its code
        fields["municipality"] = municipality_code(fields["municipality"]) or fields["municipality"]
    if getattr(args, "need", None):
        fields["needs"] = args.need
    return fields


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("add", help="capture a new issue; prints its id and reference")
    p.add_argument("--municipality", required=True, help="MDB code or name, e.g. BUF or 'Buffalo City'")
    p.add_argument("--sector", required=True, choices=list(model.SECTORS))
    p.add_argument("--title", required=True)
    _issue_field_options(p, editing=False)
    _author_option(p)
    p.set_defaults(handler=cmd_add)

    p = commands.add_parser("find", help="look up issues: text and filters, a table or --json")
    p.add_argument("text", nargs="*", help="words to look for (title, description, municipality, ward, id, reference)")
    _find_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(handler=cmd_find)

    p = commands.add_parser("show", help="everything about one issue: fields, timeline, actions, conflicts")
    p.add_argument("issue", help="id, unique id prefix, or reference such as BUF-26-K7QM-0042")
    p.add_argument("--json", action="store_true")
    p.add_argument("--personal", action="store_true", help="include the community contact's name and phone")
    p.set_defaults(handler=cmd_show)

    p = commands.add_parser("edit", help="change fields of an issue")
    p.add_argument("issue")
    _issue_field_options(p, editing=True)
    _author_option(p)
    p.set_defaults(handler=cmd_edit)

    p = commands.add_parser("status", help="change an issue's status (a note is required to escalate, close or reopen)")
    p.add_argument("issue")
    p.add_argument("new_status", choices=list(model.STATUSES), metavar="NEW_STATUS", help=", ".join(model.STATUSES))
    p.add_argument("--note", help="why")
    _author_option(p)
    p.set_defaults(handler=cmd_status)

    p = commands.add_parser("note", help="add a note to an issue's timeline")
    p.add_argument("issue")
    p.add_argument("text")
    _author_option(p)
    p.set_defaults(handler=cmd_note)

    p = commands.add_parser("action", help="add a follow-up action to an issue")
    p.add_argument("issue")
    p.add_argument("text")
    p.add_argument("--owner", default="", help="who will do it")
    p.add_argument("--due", help="due date, YYYY-MM-DD")
    _author_option(p)
    p.set_defaults(handler=cmd_action)

    p = commands.add_parser("done", help="tick off a follow-up action (by its id or a unique prefix)")
    p.add_argument("action")
    p.add_argument("--undo", action="store_true", help="mark it not done again")
    _author_option(p)
    p.set_defaults(handler=cmd_done)

    p = commands.add_parser("import", help="import a register kept in a spreadsheet (CSV or XLSX)")
    p.add_argument("file")
    p.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD",
                   help="read a column as a field, e.g. 'Problem=title', or leave it out with 'Notes=skip'; repeat for several")
    p.add_argument("--dry-run", action="store_true",
                   help="show the columns chosen and how many rows would be added, updated, left unchanged or refused; write nothing")
    _author_option(p)
    p.set_defaults(handler=cmd_import)

    from fieldkit.exports import FORMATS

    p = commands.add_parser("export", help=f"write the register to a file ({', '.join(FORMATS)})")
    p.add_argument("--format", default="csv", choices=list(FORMATS))
    p.add_argument("-o", "--output", help="file to write (default: standard output)")
    p.add_argument("--personal", action="store_true", help="include community contacts' names and phones")
    p.add_argument("--no-bom", action="store_true", help="CSV: leave out the UTF-8 byte-order mark Excel needs")
    p.add_argument("--points-only", action="store_true", help="GeoJSON: leave out issues without coordinates")
    _find_options(p)
    p.set_defaults(handler=cmd_export)

    p = commands.add_parser("demo", help="load a realistic demo register into an empty store")
    p.add_argument("--issues", type=int, default=240, help="how many issues (default 240)")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--force", action="store_true", help="add the demo even if the store has issues")
    p.set_defaults(handler=cmd_demo)

    p = commands.add_parser("municipalities", help="list or search the 257 municipalities")
    p.add_argument("text", nargs="*")
    p.add_argument("--province")
    p.set_defaults(handler=cmd_municipalities)

    p = commands.add_parser("recover", help="restore the register from its newest good backup")
    p.add_argument("--list", action="store_true", help="list the backups only")
    p.add_argument("--from", dest="source", help="a backup file to restore from")
    p.add_argument("--files", action="store_true", help="only bring back attached files that are missing or damaged")
    p.set_defaults(handler=cmd_recover)

    p = commands.add_parser("backup", help="make a checked backup of the register now")
    p.set_defaults(handler=cmd_backup)

    p = commands.add_parser("check", help="read the whole register back and check every record")
    p.set_defaults(handler=cmd_check)


def _find_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", action="append", choices=list(model.STATUSES), help="repeat for several")
    p.add_argument("--open", action="store_true", help="only open issues (new, acknowledged, in progress, escalated)")
    p.add_argument("--sector", action="append", choices=list(model.SECTORS))
    p.add_argument("--severity", action="append", choices=list(model.SEVERITIES))
    p.add_argument("--municipality", action="append", help="MDB code or name; repeat for several")
    p.add_argument("--district", action="append", help="district code: the district and its locals")
    p.add_argument("--province", action="append", help="province code or name, e.g. EC, GP or 'Eastern Cape'")
    p.add_argument("--overdue", action="store_true", help="only issues with follow-up actions past their due date")
    p.add_argument("--sort", default="updated", help="updated, created, severity, status, municipality, sector, title, ref")
    p.add_argument("--limit", type=int)


def question_from_args(args: argparse.Namespace, register) -> "Any":
    """An IssueFilter from the find options (shared by find, export and reports)."""
    from fieldkit import refdata
    from fieldkit.filters import SORT_KEYS, IssueFilter

    from fieldkit.matching import municipality_code

    municipalities = set()
    for text in args.municipality or []:
        code = municipality_code(text)
        if code is None:
            raise CommandError(model.check_municipality(text.strip().upper()) or f"Unknown municipality '{text}'")
        municipalities.add(code)
    provinces = set()
    for text in args.province or []:
        code = refdata.province_code(text)
        if code is None:
            raise CommandError(f"Unknown province '{text}' — use one of: {', '.join(refdata.PROVINCES)}")
        provinces.add(code)
    districts = set()
    for text in args.district or []:
        muni = refdata.get(text)
        if muni is None or muni.category != "C":
            raise CommandError(f"'{text}' is not a district code — districts are like DC12 (Amathole)")
        districts.add(muni.code)
    sort = getattr(args, "sort", "updated")
    if sort not in SORT_KEYS:
        raise CommandError(f"Unknown sort '{sort}' — choose one of: {', '.join(SORT_KEYS)}")
    return IssueFilter(
        text=" ".join(getattr(args, "text", None) or []),
        statuses=frozenset(args.status or []),
        sectors=frozenset(args.sector or []),
        severities=frozenset(args.severity or []),
        municipalities=frozenset(municipalities),
        provinces=frozenset(provinces),
        districts=frozenset(districts),
        open_only=bool(getattr(args, "open", False)),
        only_ids=register.issues_with_overdue_actions() if getattr(args, "overdue", False) else None,
        sort=sort,
        descending=sort in ("updated", "created", "severity"),
        limit=getattr(args, "limit", None),
    )


def cmd_add(args: argparse.Namespace) -> int:
    with _open(args) as register:
        values = register.create_issue(_given_fields(args))
    print(f"{values['id']}  {values['ref']}")
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    with _open(args) as register:
        question = question_from_args(args, register)
        rows = register.find(question)
    if args.json:
        sys.stdout.write(json_for_terminal(json.dumps([row.as_summary() for row in rows], ensure_ascii=False, indent=1)) + "\n")
        return 0
    if not rows:
        print("No issues match.", file=sys.stderr)
        return 0
    print(format_table(rows))
    print(f"{len(rows)} issue{'s' if len(rows) != 1 else ''}", file=sys.stderr)
    return 0


def format_table(rows) -> str:
    header = ("REF", "STATUS", "SEVERITY", "MUNI", "WARD", "SECTOR", "UPDATED", "TITLE")
    lines = [header]
    for row in rows:
        title = safe_for_terminal(row.title)
        lines.append(tuple(safe_for_terminal(cell) for cell in (
            row.ref,
            model.STATUSES.get(row.status, row.status),
            row.severity,
            row.municipality,
            str(row.ward or ""),
            row.sector,
            row.updated_at[:10],
        )) + (title if len(title) <= 60 else title[:59] + "…",))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths)) + "  " + line[-1] for line in lines
    )


def cmd_show(args: argparse.Namespace) -> int:
    from fieldkit import refdata

    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        issue = register.issue(issue_id)
        timeline = register.timeline(issue_id)
        actions = register.actions(issue_id)
    values = dict(issue.values)
    if not args.personal:
        for name in model.PERSONAL_FIELDS:
            if values.get(name):
                values[name] = "(hidden; --personal shows it)"
    if args.json:
        document = {
            **values,
            "conflicts": [{"field": c.field, "value": c.value, "author": c.author, "stamp": c.stamp} for c in issue.conflicts],
            "actions": actions,
            "timeline": [{"at": e.at, "kind": e.kind, "author": e.author, "text": e.text} for e in timeline],
        }
        print(json_for_terminal(json.dumps(document, ensure_ascii=False, indent=1)))
        return 0
    muni = refdata.get(values.get("municipality", ""))
    lines = [safe_for_terminal(f"{values['ref']}  {values['title']}"), f"id {issue_id}", ""]

    def field(label: str, value: Any) -> None:
        if value not in (None, "", []):
            lines.append(f"  {label:<14} {safe_for_terminal(value)}")

    def paragraph(text: str, indent: str) -> str:
        return indent + safe_for_terminal(text, multiline=True).replace("\n", "\n" + indent)

    field("Status", model.STATUSES.get(values["status"], values["status"]))
    field("Severity", model.SEVERITIES.get(values["severity"], values["severity"]))
    if muni:
        field("Municipality", f"{muni.code} {muni.display_name} ({muni.kind}, {muni.province_name})")
        if values.get("sector") in ("water", "sanitation"):
            field("Water authority", refdata.water_services_authority(muni.code)[1])
    field("Ward", values.get("ward"))
    field("Sector", model.sector_label(values.get("sector")))
    field("Category", model.category_label(values.get("sector"), values.get("category")))
    field("Responsible", values.get("responsible"))
    field("Source", " — ".join(v for v in (model.SOURCES.get(values.get("source", ""), ""), values.get("source_detail", "")) if v))
    field("Commitment", values.get("commitment"))
    field("Location", values.get("address"))
    if isinstance(values.get("lat"), (int, float)) and isinstance(values.get("lon"), (int, float)):
        field("Coordinates", f"{values['lat']:.5f}, {values['lon']:.5f}")
    field("Contact", " ".join(v for v in (values.get("contact_name"), values.get("contact_phone")) if v))
    for need in values.get("needs") or []:
        if isinstance(need, dict):
            support = f" (support: {need['support_from']})" if need.get("support_from") else ""
            field("Needs", f"{model.NEED_KINDS.get(need.get('kind'), need.get('kind'))}: {need.get('detail', '')}{support}")
    field("Captured", f"{values.get('created_at', '')} by {values.get('created_by', '')}")
    field("Last change", f"{issue.updated_at} by {issue.updated_by}")
    if values.get("description"):
        lines += ["", paragraph(values["description"], "  ")]
    if issue.conflicts:
        lines += ["", "CONFLICTS (two people changed the same field; the value shown above won):"]
        for c in issue.conflicts:
            lines.append(safe_for_terminal(f"  {c.field}: {c.value!r} by {c.author} — settle it with `fieldkit resolve`"))
    if actions:
        lines += ["", "FOLLOW-UP ACTIONS"]
        for action in actions:
            mark = "[x]" if action.get("done") else ("[!]" if model.is_overdue(action) else "[ ]")
            due = f" due {action['due']}" if action.get("due") else ""
            overdue = " OVERDUE" if mark == "[!]" else ""
            lines.append(safe_for_terminal(f"  {mark} {action['text']} — {action.get('owner') or 'no owner'}{due}{overdue}  ({action['id'][:13]})"))
    lines += ["", "TIMELINE"]
    for entry in timeline:
        when = safe_for_terminal(f"  {entry.at[:16].replace('T', ' ')}  {entry.author:<16} ")
        lines.append(when + paragraph(entry.text, "").replace("\n", "\n" + " " * len(when)))
    print("\n".join(lines))
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    changes = _given_fields(args)
    if not changes:
        raise CommandError("Nothing to change: give at least one field, e.g. --severity high")
    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        values = register.edit_issue(issue_id, changes)
    print(safe_for_terminal(f"{values['ref']} saved"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        values = register.change_status(issue_id, args.new_status, args.note)
    print(f"{values['ref']} is now {model.STATUSES[values['status']].lower()}")
    return 0


def cmd_note(args: argparse.Namespace) -> int:
    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        register.add_note(issue_id, args.text)
        ref = register.issue_values(issue_id)["ref"]
    print(f"note added to {ref}")
    return 0


def cmd_action(args: argparse.Namespace) -> int:
    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        action = register.add_action(issue_id, args.text, owner=args.owner, due=args.due)
    print(f"{action['id']}  action added")
    return 0


def cmd_done(args: argparse.Namespace) -> int:
    with _open(args) as register:
        wanted = args.action.strip().lower()
        matches = [a for a in register.all_actions() if a["id"].startswith(wanted)] if len(wanted) >= 4 else []
        if not matches:
            raise CommandError(f"No follow-up action matches '{args.action}' — `fieldkit show ISSUE` lists them with their ids")
        if len(matches) > 1:
            raise CommandError(f"'{args.action}' matches {len(matches)} actions; give more of the id")
        action = register.set_action_done(matches[0]["id"], done=not args.undo)
    print(safe_for_terminal(f"{'not done' if args.undo else 'done'}: {action['text']}"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from fieldkit.imports import REFUSED, apply_import, describe_plan, parse_mapping, plan_import, read_file
    from fieldkit.progress import progress

    mapping = parse_mapping(args.map)
    book = read_file(args.file)
    with _open(args) as register:
        with progress(f"Reading {len(book.issues):,} rows") as update:
            plan = plan_import(register, book, mapping, progress=update)
        if not args.dry_run:
            with progress(f"Writing {plan.writes:,} changes") as update:
                apply_import(register, plan, progress=update)
    summary, details = describe_plan(plan, dry_run=args.dry_run)
    for line in details:
        print(line, file=sys.stderr)
    for line in summary:
        print(line)
    refused_everything = plan.rows and all(p.outcome == REFUSED for p in plan.rows)
    return 1 if refused_everything else 0


def cmd_export(args: argparse.Namespace) -> int:
    from fieldkit.exports import write_export
    from fieldkit.progress import progress

    with _open(args) as register:
        question = question_from_args(args, register)
        with progress(f"Writing {args.format.upper()}") as update:
            written = write_export(register, args.format, question, args.output, personal=args.personal,
                                   bom=not args.no_bom, points_only=args.points_only, progress=update)
    if args.output:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from fieldkit.demo import load_demo
    from fieldkit.progress import progress

    with _open(args) as register:
        if register.count() and not args.force:
            raise CommandError(f"The store already holds {register.count()} issues; add --force to add the demo anyway")
        with progress(f"Loading a demo of {args.issues:,} issues") as update:
            created = load_demo(register, issues=args.issues, seed=args.seed, batch=min(500, max(50, args.issues // 20)),
                                progress=update)
    print(f"loaded a demo register of {created} issues into {register.store.home}")
    return 0


def cmd_municipalities(args: argparse.Namespace) -> int:
    from fieldkit import refdata

    found = refdata.search(" ".join(args.text), limit=300)
    if args.province:
        code = refdata.province_code(args.province)
        if code is None:
            raise CommandError(f"Unknown province '{args.province}' — use one of: {', '.join(refdata.PROVINCES)}")
        found = [m for m in found if m.province == code]
    wsa_text = {True: "WSA", False: "not WSA", None: "WSA not known"}
    for muni in found:
        parent = f" in {muni.district_code}" if muni.district_code else ""
        print(f"{muni.code:<7} {muni.display_name:<45} {muni.kind}{parent}, {muni.province}  {wsa_text[muni.wsa]}")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    from fieldkit.recovery import list_backups, restore

    from fieldkit.store import default_home

    home = default_home()
    if args.list:
        for backup in list_backups(home):
            print(backup)
        return 0
    from fieldkit.encryption import codec_for, unlocked_codec

    if args.files:
        from fieldkit.recovery import restore_files

        print(f"brought back {restore_files(home, codec_for(home))} attached files from the backups")
        return 0
    restored, moved = restore(home, args.source, lambda: unlocked_codec(home))
    kept = f"; the damaged file was moved to {moved}" if moved else ""
    print(f"restored {home} from {restored.name}{kept}")
    print("changes made after that backup are not in it; if they were synced, `fieldkit sync` brings them back")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    with _open(args) as register:
        backup = register.store.backup()
    print(f"backed up to {backup} ({backup.stat().st_size / 1e6:.1f} MB, checked)")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    with _open(args) as register:
        register.store.check()
        count = register.count()
    print(f"the register is whole: {count} issues, every record read back and checked")
    return 0


def open_app(args: argparse.Namespace) -> int:
    from fieldkit.app import run_app

    return run_app()
