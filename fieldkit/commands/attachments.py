"""Commands for photos and documents on an issue: attach, attachments, detach, fetch."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fieldkit.cli import CommandError
from fieldkit.commands.core import _author_option, _open
from fieldkit.safe_text import safe_for_terminal


def register(commands) -> None:
    p = commands.add_parser("attach", help="attach photos or documents to an issue")
    p.add_argument("issue", help="issue id or reference")
    p.add_argument("files", nargs="+", metavar="FILE", help="photos (JPEG, PNG, HEIC), PDF or office documents, up to 25 MB each")
    p.add_argument("--caption", default="", help="what the file shows, e.g. 'Burst main at the school gate'")
    p.add_argument("--use-location", action="store_true",
                   help="when the issue has no location yet, take the photo's GPS position for it")
    _author_option(p)
    p.set_defaults(handler=cmd_attach)

    p = commands.add_parser("attachments", help="list the photos and documents on an issue")
    p.add_argument("issue", help="issue id or reference")
    p.add_argument("--removed", action="store_true", help="also list removed ones")
    p.set_defaults(handler=cmd_attachments)

    p = commands.add_parser("detach", help="remove an attachment from its issue (the timeline keeps a record of it)")
    p.add_argument("attachment", help="the attachment's id, or its first characters (`fieldkit attachments ISSUE`)")
    _author_option(p)
    p.set_defaults(handler=cmd_detach)

    p = commands.add_parser("fetch", help="get an attachment's file from the central store, or save it somewhere")
    p.add_argument("attachment", help="the attachment's id, or its first characters")
    p.add_argument("--original", action="store_true", help="the photo as taken, not the reduced copy")
    p.add_argument("--to", metavar="PATH", help="also save the file here (a folder or a file name)")
    p.set_defaults(handler=cmd_fetch)


def cmd_attach(args: argparse.Namespace) -> int:
    from fieldkit.attachments import attach, describe

    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        ref = register.issue_values(issue_id)["ref"]
        missing = [f for f in args.files if not Path(f).expanduser().is_file()]
        if missing:
            raise CommandError(f"no such file: {missing[0]}; nothing was attached")
        for name in args.files:
            done = attach(register, issue_id, name, caption=args.caption, use_location=args.use_location)
            record = done.record
            print(safe_for_terminal(f"{record['id']}  attached to {ref}: {describe(record)}"))
            if done.stored_before:
                print("  the same file was already on this laptop: it is stored once, and listed again here")
            if done.position_used:
                print(f"  the issue's location is now the photo's position {done.position[0]:.5f}, {done.position[1]:.5f}")
            elif done.position and register.issue_values(issue_id).get("lat") is None:
                print(f"  the photo was taken at {done.position[0]:.5f}, {done.position[1]:.5f}; "
                      "`--use-location` makes that the issue's location")
    return 0


def cmd_attachments(args: argparse.Namespace) -> int:
    from fieldkit.attachments import describe, shown_copy

    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        found = register.attachments(issue_id, removed=args.removed)
        blobs = register.store.blobs
        if not found:
            print("no attachments")
        for record in found:
            when = record.get("at", "")[:16].replace("T", " ")
            state = "removed" if record.get("deleted") else ("" if blobs.has(shown_copy(record)) else "not on this laptop yet")
            extra = f"  [{state}]" if state else ""
            print(safe_for_terminal(f"{record['id']}  {describe(record)}  by {record.get('author', '?')} {when}{extra}"))
    return 0


def cmd_detach(args: argparse.Namespace) -> int:
    with _open(args) as register:
        record = register.remove_attachment(args.attachment)
    print(safe_for_terminal(f"removed {record.get('name', '')} from its issue; the timeline keeps a record of it"))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from fieldkit.attachments import shown_copy
    from fieldkit.file_sync import fetch_file

    with _open(args) as register:
        record = register.attachment(args.attachment)
        sha = record["sha256"] if args.original else shown_copy(record)
        if not register.store.blobs.has(sha):
            problem = fetch_file(register, sha)
            if problem:
                raise CommandError(problem)
        data = register.store.blobs.get(sha)
        if args.to:
            target = Path(args.to).expanduser()
            if target.is_dir():
                target = target / (record["name"] if sha == record["sha256"] else f"{Path(record['name']).stem}-reduced.jpg")
            if target.exists():
                raise CommandError(f"{target} already exists; give another file name with --to")
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            shutil.move(str(tmp), target)
            print(safe_for_terminal(f"saved {target}"))
        else:
            print(safe_for_terminal(f"{record['name']}: {'the original' if args.original else 'the copy shown'} is on this laptop"))
    return 0
