"""Commands for sync and the central store: sync, serve, user, conflicts, resolve.

``fieldkit sync`` stays light: the server side (FastAPI, uvicorn) is imported
only by ``serve`` and ``user``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fieldkit.cli import CommandError
from fieldkit.safe_text import json_for_terminal, safe_for_terminal

RECORD_TYPES_WITH_CONFLICTS = ("issue", "note", "action", "status_change", "lesson", "attachment")


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("sync", help="send this laptop's changes to the central store and fetch everyone else's")
    p.add_argument("--server", help="the central store's address, e.g. https://10.1.2.3:8765 (remembered after the first sync)")
    p.add_argument("--token", help="your token from `fieldkit user add` (remembered, never shown)")
    p.add_argument("--status", action="store_true", help="when this laptop last synced and what is waiting; sends nothing")
    p.add_argument("--rejected", action="store_true", help="list the changes the central store refused, with its reasons")
    p.add_argument("--retry-rejected", action="store_true", help="queue refused changes again (once the reason is dealt with), then sync")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain HTTP to a central store on another machine (the token can be read on the way); remembered")
    p.add_argument("--originals", action="store_true",
                   help="also send the originals of photos attached here (by default their reduced copies go)")
    p.add_argument("--forget-certificate", action="store_true",
                   help="trust the central store's new certificate (after its operator replaced it and you checked the fingerprint)")
    p.set_defaults(handler=cmd_sync)

    p = commands.add_parser("serve", help="run the central store that laptops sync with (HTTP API)")
    _db_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for the network)")
    p.add_argument("--port", type=int, default=8765, help="default 8765")
    p.add_argument("--new-server-id", action="store_true",
                   help="after restoring the database from a backup: every laptop then sends everything it holds again")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="close a connection whose request headers are not complete in this time (default 10)")
    p.add_argument("--idle-timeout", type=float, default=15.0, metavar="SECONDS",
                   help="close a connection idle between requests for this long (default 15)")
    p.add_argument("--max-connections", type=int, default=10_000, metavar="N",
                   help="connections open at once; more are closed at once (default 10,000)")
    p.add_argument("--tls-cert", metavar="FILE", help="serve https with this certificate (PEM), with --tls-key")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("--self-signed", action="store_true",
                   help="serve https with a certificate made on first start (the default on any address but this machine's)")
    p.add_argument("--insecure", action="store_true", help="serve plain HTTP on the network (tokens can be read on the way)")
    p.add_argument("--files", metavar="DIR", help="where attached files are kept (default: $FIELDKIT_SERVER_FILES, "
                   "else beside the SQLite database, else server-files in the data folder); back it up with the database")
    p.add_argument("--upstream", metavar="URL", help="relay to a national central store: send this store's changes up, bring its area's down")
    p.add_argument("--token", help="with --upstream: the token of this relay's account on the national store")
    p.add_argument("--relay-every", type=float, default=30.0, metavar="SECONDS",
                   help="with --upstream: how often to exchange with the national store (default 30)")
    p.set_defaults(handler=cmd_serve)

    p = commands.add_parser("user", help="accounts on the central store: add, list, revoke, new-token")
    actions = p.add_subparsers(dest="user_action", metavar="ACTION", required=True)
    a = actions.add_parser("add", help="make an account; prints its token once")
    a.add_argument("name")
    a.add_argument("--role", default="facilitator", choices=["facilitator", "coordinator", "admin"])
    a.add_argument("--municipality", action="append", default=[], metavar="CODE", help="an MDB code such as EC121; repeat for more")
    a.add_argument("--province", action="append", default=[], metavar="P", help="a province such as EC or 'Eastern Cape'; repeat for more")
    _db_option(a)
    a.set_defaults(handler=cmd_user_add)
    a = actions.add_parser("list", help="list the accounts")
    a.add_argument("--json", action="store_true")
    _db_option(a)
    a.set_defaults(handler=cmd_user_list)
    a = actions.add_parser("revoke", help="stop an account's token working")
    a.add_argument("name")
    _db_option(a)
    a.set_defaults(handler=cmd_user_revoke)
    a = actions.add_parser("new-token", help="give an account a new token (the old one stops working); prints it once")
    a.add_argument("name")
    _db_option(a)
    a.set_defaults(handler=cmd_user_new_token)
    a = actions.add_parser("add-device", help="accept bundles from a laptop that never synced online (its key from `fieldkit bundle key`)")
    a.add_argument("name", help="the account the laptop's bundles speak for")
    a.add_argument("key", help="the line `fieldkit bundle key` printed on the laptop")
    _db_option(a)
    a.set_defaults(handler=cmd_user_add_device)
    a = actions.add_parser("revoke-device", help="refuse every bundle from a laptop from now on (a lost or stolen laptop)")
    a.add_argument("device", help="the laptop's id, as a refused bundle or `fieldkit bundle key` shows it")
    _db_option(a)
    a.set_defaults(handler=cmd_user_revoke_device)

    p = commands.add_parser("conflicts", help="records where two people changed the same field without seeing each other")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_conflicts)

    p = commands.add_parser("resolve", help="settle a conflict on an issue: keep the value shown, or take the other one")
    p.add_argument("issue", help="id, unique id prefix, or reference")
    p.add_argument("field", help="the field in conflict, e.g. severity")
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--keep", action="store_true", help="keep the value shown now")
    choice.add_argument("--take-other", action="store_true", help="take the other value (the newest, if there are several)")
    p.add_argument("--author", help="who is settling it")
    p.set_defaults(handler=cmd_resolve)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the central store's database: postgresql://user@host/db, or a SQLite file "
                                     "(default: $FIELDKIT_SERVER_DB, else server.sqlite3 in the data folder)")


def _open(args: argparse.Namespace):
    from fieldkit.encryption import open_register

    return open_register(author=getattr(args, "author", None))


# -- sync -------------------------------------------------------------------------------


def _progress_printer():
    if not sys.stderr.isatty():
        return None

    def show(progress) -> None:
        end = "\n" if progress.phase == "done" else ""
        sys.stderr.write(f"\r\033[K{progress.message}{end}")
        sys.stderr.flush()

    return show


def cmd_sync(args: argparse.Namespace) -> int:
    from fieldkit.sync import describe_op, remembered_token, sync, sync_status

    with _open(args) as register:
        if args.status:
            status = sync_status(register)
            print(f"central store   {status['server'] or 'not set (fieldkit sync --server URL --token TOKEN)'}")
            print(f"token           {'set' if remembered_token(register) else 'not set'}")
            print(f"last sync       {status['last_sync_at'] or 'never'}")
            print(f"waiting         {status['waiting']} change{'s' if status['waiting'] != 1 else ''}")
            print(f"refused         {status['rejected']} (`fieldkit sync --rejected` lists them)")
            if status["last_error"]:
                print(f"last problem    {status['last_error']} ({status['last_attempt_at']})")
            return 0
        if args.rejected:
            entries = register.rejected_ops()
            for entry in entries:
                print(safe_for_terminal(f"{describe_op(register, entry['op'])}: {entry['reason']}"))
            if not entries:
                print("The central store has refused none of this laptop's changes.", file=sys.stderr)
            return 0
        if args.retry_rejected:
            count = register.retry_rejected()
            print(f"queued {count} refused change{'s' if count != 1 else ''} to be sent again", file=sys.stderr)
        if args.forget_certificate:
            state = register.sync_state()
            if state.pop("tls_pin", None):
                register.save_sync_state(state)
                print("forgot the central store's certificate; this sync trusts the one it shows now", file=sys.stderr)
        result = sync(register, server=args.server, token=args.token, progress=_progress_printer(), insecure=args.insecure,
                      originals=args.originals)
        if result.finished and result.received and register.backup_if_due():
            print(f"backed up the register ({register.store.backups.newest()})", file=sys.stderr)
    _print_result(result)
    if not result.finished:
        raise CommandError(result.error or "the sync did not finish")
    return 0


def _print_result(result) -> None:
    for notice in result.notices:
        print(safe_for_terminal(notice))
    if result.finished:
        print(f"synced with {result.server}: sent {result.sent} change{'s' if result.sent != 1 else ''}, received {result.received}")
        if result.files_sent or result.files_received:
            print(f"files: sent {result.files_sent}, received {result.files_received}")
    elif result.sent or result.received:
        print(f"before stopping: sent {result.sent} change{'s' if result.sent != 1 else ''}, received {result.received}")
    from fieldkit.sync import refused_summary

    for line in refused_summary(result.rejected):
        print(safe_for_terminal(line))
    if result.deferred:
        print("waiting for records still on their way (sent again next time):")
        for what, reason in result.deferred:
            print(safe_for_terminal(f"  {what}: {reason}"))
    if result.conflicts:
        print("conflicts — two people changed the same field; the value kept is shown (`fieldkit resolve` settles them):")
        for line in result.conflicts:
            print(safe_for_terminal(f"  {line}"))


# -- the central store ------------------------------------------------------------------


def _database(args: argparse.Namespace):
    from fieldkit.server.db import Database, DatabaseError

    try:
        database = Database(args.db)
        database.migrate()
    except DatabaseError as err:
        raise CommandError(str(err)) from None
    return database


def cmd_serve(args: argparse.Namespace) -> int:
    from fieldkit.server.app import CannotStart, serve
    from fieldkit.server.db import DatabaseError

    if not 0 < args.port < 65536:
        raise CommandError(f"--port {args.port} is not a port number (1-65535)")
    from fieldkit.server.guard import Limits

    for flag, value in (("--header-timeout", args.header_timeout), ("--idle-timeout", args.idle_timeout)):
        if not 0 < value <= 3600:
            raise CommandError(f"{flag} {value:g} is not a number of seconds between 0 and 3600")
    if not 1 <= args.max_connections <= 1_000_000:
        raise CommandError(f"--max-connections {args.max_connections} must be between 1 and 1,000,000")
    limits = Limits(header_timeout=args.header_timeout, idle_timeout=args.idle_timeout, max_connections=args.max_connections)
    upstream = None
    if args.upstream or args.token:
        if not (args.upstream and args.token):
            raise CommandError("give both --upstream URL and --token T (the relay's account on the national store)")
        if not 0.5 <= args.relay_every <= 86400:
            raise CommandError(f"--relay-every {args.relay_every:g} must be between 0.5 and 86,400 seconds")
        from fieldkit.server.relay import upstream_address

        address, problem = upstream_address(args.upstream, args.insecure)
        if problem:
            raise CommandError(problem)
        upstream = (address, args.token, args.relay_every)
    try:
        from pathlib import Path

        serve(args.db, args.host, args.port, new_server_id=args.new_server_id, limits=limits, tls=_tls_files(args),
              upstream=upstream, files=Path(args.files).expanduser() if args.files else None)
    except (CannotStart, DatabaseError) as err:
        raise CommandError(str(err)) from None
    return 0


def _tls_files(args: argparse.Namespace):
    """The certificate and key ``serve`` uses, or None for plain HTTP."""
    from pathlib import Path

    from fieldkit.tls import is_loopback

    if args.tls_cert or args.tls_key:
        if not (args.tls_cert and args.tls_key):
            raise CommandError("give both --tls-cert and --tls-key")
        for path in (args.tls_cert, args.tls_key):
            if not Path(path).is_file():
                raise CommandError(f"no such file: {path}")
        return Path(args.tls_cert), Path(args.tls_key)
    if args.self_signed or not (is_loopback(args.host) or args.insecure):
        from fieldkit.server.certificate import self_signed
        from fieldkit.store import default_home

        return self_signed(default_home())
    return None


def _account_errors():
    from fieldkit.server.accounts import AccountError
    from fieldkit.server.db import DatabaseError

    return (AccountError, DatabaseError)


def _scope(user) -> str:
    return f"{user.role}: {user.scope_text()}"


def _show_token(account, verb: str, database) -> None:
    print(f"{verb} account {account.user.name} ({_scope(account.user)}) on {database.describe()}.", file=sys.stderr)
    print(f"Its token, shown only this once — give it to {account.user.name} for `fieldkit sync --token`:", file=sys.stderr)
    print(account.token)


def cmd_user_add(args: argparse.Namespace) -> int:
    from fieldkit.server.accounts import check_account

    try:
        user = check_account(args.name, args.role, args.municipality, args.province)
        database = _database(args)
        account = database.add_user(user)
    except _account_errors() as err:
        raise CommandError(str(err)) from None
    _show_token(account, "added", database)
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    try:
        users = _database(args).users()
    except _account_errors() as err:
        raise CommandError(str(err)) from None
    if args.json:
        print(json.dumps([
            {"name": u.name, "role": u.role, "municipalities": list(u.municipalities), "provinces": list(u.provinces),
             "revoked": u.revoked, "created_at": u.created_at}
            for u in users
        ], indent=1))
        return 0
    if not users:
        print("No accounts yet: `fieldkit user add NAME --municipality CODE` makes one.", file=sys.stderr)
        return 0
    width = max(len(u.name) for u in users)
    for u in users:
        print(f"{u.name:<{width}}  {'REVOKED' if u.revoked else 'active '}  {_scope(u)}  (since {u.created_at[:10]})")
    return 0


def cmd_user_revoke(args: argparse.Namespace) -> int:
    try:
        _database(args).revoke_user(args.name)
    except _account_errors() as err:
        raise CommandError(str(err)) from None
    print(f"revoked {args.name}: their token no longer works; their changes already synced are kept")
    return 0


def cmd_user_new_token(args: argparse.Namespace) -> int:
    try:
        database = _database(args)
        account = database.new_token(args.name)
    except _account_errors() as err:
        raise CommandError(str(err)) from None
    _show_token(account, "new token for", database)
    return 0


def cmd_user_add_device(args: argparse.Namespace) -> int:
    from fieldkit.bundles import BundleError, PublicKey

    try:
        key = PublicKey.parse(args.key)  # a laptop's, or a regional store's that relays here by bundle
        database = _database(args)
        user = database.user_named(args.name.strip())
        if user is None:
            raise CommandError(f"There is no account named {args.name} (`fieldkit user list` shows them)")
        database.register_device(user, key, by_operator=True)
        store = database.store_key()
    except (BundleError, *_account_errors()) as err:
        raise CommandError(str(err)) from None
    what = "laptop" if key.kind == "fieldkit-laptop" else "regional store"
    print(f"{what} {key.name} (fingerprint {key.fingerprint}) now speaks for {user.name} ({_scope(user)}); "
          "read the fingerprint back to its facilitator", file=sys.stderr)
    if key.kind == "fieldkit-laptop":
        print("On the laptop, so it can seal bundles for this store, run:", file=sys.stderr)
        print(f"fieldkit bundle trust {store.line()}")
    else:
        print("At the regional store, so it can seal bundles for this one, run:", file=sys.stderr)
        print(f"fieldkit server trust {store.line()} --db REGIONAL-DB")
    return 0


def cmd_user_revoke_device(args: argparse.Namespace) -> int:
    try:
        _database(args).revoke_device(args.device.strip())
    except _account_errors() as err:
        raise CommandError(str(err)) from None
    print(f"revoked laptop {args.device}: its bundles are refused from now on; its changes already taken in are kept")
    return 0


# -- conflicts ------------------------------------------------------------------------


def cmd_conflicts(args: argparse.Namespace) -> int:
    from fieldkit.sync import describe_conflict, record_label

    found: list[dict[str, Any]] = []
    with _open(args) as register:
        for record_type in RECORD_TYPES_WITH_CONFLICTS:
            for record_id, values in register.store.documents(record_type).items():
                if not values.get("conflicts"):
                    continue
                for conflict in register.conflicts(record_id):
                    found.append({
                        "record": record_label(register, record_type, record_id), "id": record_id, "type": record_type,
                        "field": conflict.field, "author": conflict.author, "stamp": conflict.stamp,
                        "text": describe_conflict(register, record_type, record_id, conflict),
                    })
    if args.json:
        print(json_for_terminal(json.dumps([{k: v for k, v in item.items() if k != "text"} for item in found], ensure_ascii=False, indent=1)))
        return 0
    if not found:
        print("No conflicts.", file=sys.stderr)
        return 0
    for item in found:
        print(safe_for_terminal(item["text"]))
    print("settle one with `fieldkit resolve ISSUE FIELD --keep` or `--take-other`", file=sys.stderr)
    return 0


def cmd_resolve(args: argparse.Namespace) -> int:
    with _open(args) as register:
        issue_id = register.resolve(args.issue)
        conflicts = [c for c in register.conflicts(issue_id) if c.field == args.field]
        if not conflicts:
            raise CommandError(f"{args.issue} has no conflict on {args.field} (`fieldkit conflicts` lists them)")
        value = register.issue_values(issue_id).get(args.field)
        if args.take_other:
            value = max(conflicts, key=lambda c: c.stamp).value
        values = register.resolve_conflict(issue_id, args.field, value)
    print(f"{values.get('ref', issue_id)}: {args.field} settled")
    return 0
