"""Commands for sync by hand: ``fieldkit bundle`` on a laptop, ``fieldkit server`` for the central store's operator.

A bundle goes out on a stick (``bundle out``), is taken in at the central store
(``server bundle-in``, which writes a receipt beside it) or on another laptop
(``bundle in``), and the receipt comes back (``bundle in RECEIPT``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fieldkit.cli import CommandError
from fieldkit.safe_text import safe_for_terminal


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("bundle", help="sync without a network: carry changes in a file (a USB stick)")
    actions = p.add_subparsers(dest="bundle_action", metavar="ACTION", required=True)
    a = actions.add_parser("out", help="write this laptop's changes not yet acknowledged into one sealed file")
    a.add_argument("-o", "--output", metavar="FILE", help="the file, or a folder (a USB stick) to write it in (default: here)")
    a.add_argument("--all", action="store_true", help="everything this laptop holds, not only what waits")
    a.add_argument("--for", dest="peers", action="append", default=[], metavar="LAPTOP",
                   help="also let this laptop read it (a name or id given to `fieldkit bundle trust`); repeat for more")
    a.set_defaults(handler=cmd_bundle_out)
    a = actions.add_parser("in", help="take in another laptop's bundle, or the central store's receipt")
    a.add_argument("file")
    a.set_defaults(handler=cmd_bundle_in)
    a = actions.add_parser("key", help="print this laptop's key (for `fieldkit user add-device` or another laptop)")
    a.set_defaults(handler=cmd_bundle_key)
    a = actions.add_parser("trust", help="remember the central store's key, or another laptop's, for bundles")
    a.add_argument("key", help="the line `fieldkit server key` or `fieldkit bundle key` printed")
    a.add_argument("--name", help="what to call that laptop (e.g. its facilitator's name)")
    a.set_defaults(handler=cmd_bundle_trust)
    a = actions.add_parser("show", help="what a bundle holds, without taking it in")
    a.add_argument("file")
    a.set_defaults(handler=cmd_bundle_show)

    p = commands.add_parser("server", help="the central store's operator: bundles carried in, the store's key")
    actions = p.add_subparsers(dest="server_action", metavar="ACTION", required=True)
    a = actions.add_parser("bundle-in", help="apply a laptop's (or a regional store's) bundle and write its receipt; "
                                            "or take in the national store's receipt")
    a.add_argument("file")
    a.add_argument("-o", "--receipt", metavar="FILE", help="where to write the receipt (default: beside the bundle)")
    _db_option(a)
    a.set_defaults(handler=cmd_server_bundle_in)
    a = actions.add_parser("bundle-out", help="a regional store without a link: its changes for the national store, in one file")
    a.add_argument("-o", "--output", metavar="FILE", help="the file, or a folder (a USB stick) to write it in (default: here)")
    _db_option(a)
    a.set_defaults(handler=cmd_server_bundle_out)
    a = actions.add_parser("trust", help="a regional store: remember the national store's key, for bundles")
    a.add_argument("key", help="the `fieldkit server trust …` line the national store printed")
    _db_option(a)
    a.set_defaults(handler=cmd_server_trust)
    a = actions.add_parser("key", help="print the store's key, for laptops that never synced online")
    _db_option(a)
    a.set_defaults(handler=cmd_server_key)
    a = actions.add_parser("relay", help="exchange once with a national store (what `fieldkit serve --upstream` does on its own)")
    a.add_argument("--upstream", required=True, metavar="URL", help="the national central store")
    a.add_argument("--token", required=True, help="this relay's account's token on the national store")
    a.add_argument("--insecure", action="store_true", help="allow plain HTTP to a national store on another machine")
    a.add_argument("--forget-certificate", action="store_true",
                   help="trust the national store's new certificate (after its operator replaced it and you checked it)")
    _db_option(a)
    a.set_defaults(handler=cmd_server_relay)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the central store's database: postgresql://user@host/db, or a SQLite file "
                                     "(default: $FIELDKIT_SERVER_DB, else server.sqlite3 in the data folder)")


def _open():
    from fieldkit.register import Register

    return Register.open()


def _bundle_errors():
    from fieldkit.bundles import BundleError

    return BundleError


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


# -- on a laptop ---------------------------------------------------------------------------------


def _output_path(wanted: str | None, device_id: str) -> Path:
    from fieldkit.bundle_sync import file_name

    name = file_name(device_id)
    if wanted is None:
        return Path(name)
    path = Path(wanted).expanduser()
    if path.is_dir():
        return path / name
    if not path.parent.is_dir():
        raise CommandError(f"there is no folder {path.parent}: is the stick plugged in?")
    return path


def cmd_bundle_out(args: argparse.Namespace) -> int:
    from fieldkit.bundle_sync import make_bundle
    from fieldkit.bundles import write_file

    with _open() as register:
        try:
            made = make_bundle(register, everything=args.all, peers=args.peers)
            path = _output_path(args.output, register.device_id)
            write_file(path, made.data)
        except _bundle_errors() as err:
            raise CommandError(str(err)) from None
    what = _plural(made.changes, "change") + (f" to {_plural(made.records, 'record')}" if made.changes else "")
    print(safe_for_terminal(f"wrote {path}: {what} by {made.author}, for {' and '.join(made.made_for)}"))
    if not made.changes:
        print("nothing was waiting; the receipt still brings back what others changed", file=sys.stderr)
    return 0


def cmd_bundle_in(args: argparse.Namespace) -> int:
    from fieldkit.bundle_sync import said, take_in
    from fieldkit.bundles import read_bytes

    with _open() as register:
        try:
            taken = take_in(register, read_bytes(Path(args.file)), args.file)
        except _bundle_errors() as err:
            raise CommandError(str(err)) from None
    for line in said(taken):
        print(safe_for_terminal(line))
    if taken.rejected:
        print("  `fieldkit sync --rejected` lists them all:")
        for what, reason in taken.rejected:
            print(safe_for_terminal(f"  {what}: {reason}"))
    return 0


def cmd_bundle_key(args: argparse.Namespace) -> int:
    from fieldkit.bundle_sync import public_key

    with _open() as register:
        key = public_key(register)
    print(f"this laptop's key (fingerprint {key.fingerprint}); give the line below to the central store's operator "
          "(`fieldkit user add-device ACCOUNT KEY`) or to another laptop (`fieldkit bundle trust KEY`):", file=sys.stderr)
    print(key.line())
    return 0


def cmd_bundle_trust(args: argparse.Namespace) -> int:
    from fieldkit.bundle_sync import trust
    from fieldkit.bundles import STORE_KEY

    with _open() as register:
        try:
            key = trust(register, args.key, args.name)
        except _bundle_errors() as err:
            raise CommandError(str(err)) from None
    if key.kind == STORE_KEY:
        print(f"this laptop now seals its bundles for the central store {key.name} (fingerprint {key.fingerprint})")
    else:
        print(safe_for_terminal(f"this laptop now takes bundles from laptop {args.name or key.name} "
                                f"(fingerprint {key.fingerprint}); check it with its facilitator"))
    return 0


def cmd_bundle_show(args: argparse.Namespace) -> int:
    from fieldkit.bundle_sync import describe
    from fieldkit.bundles import read_bytes

    with _open() as register:
        try:
            contents = describe(register, read_bytes(Path(args.file)), args.file)
        except _bundle_errors() as err:
            raise CommandError(str(err)) from None
    first, *rest = contents.lines()
    print(safe_for_terminal(f"{args.file}: {first}, signature good"))
    for line in rest:
        print(safe_for_terminal(f"  {line}"))
    return 0


# -- at the central store ---------------------------------------------------------------------------


def _database(args: argparse.Namespace):
    """The central store's database, as `fieldkit serve` opens it."""
    from fieldkit.commands.sync import _database as central_database

    return central_database(args)


def cmd_server_bundle_in(args: argparse.Namespace) -> int:
    from fieldkit import bundles
    from fieldkit.bundles import SUFFIX, read_bytes, write_file
    from fieldkit.server.bundles import apply_bundle
    from fieldkit.server.db import DatabaseError

    path = Path(args.file)
    database = _database(args)
    try:
        data = read_bytes(path)
        sealed = bundles.read(data, str(path))
        if sealed.kind == bundles.RECEIPT:
            return _national_receipt(database, sealed)
        outcome = apply_bundle(database, data, str(path))
        stem = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
        receipt = Path(args.receipt) if args.receipt else path.with_name(f"{stem}.receipt{SUFFIX}")
        write_file(receipt, outcome.receipt)
    except (_bundle_errors(), DatabaseError) as err:
        raise CommandError(str(err)) from None
    finally:
        database.close()
    if outcome.refused:
        raise CommandError(f"{outcome.refused}. A receipt marking them refused is in {receipt}: take it back to the laptop")
    already = outcome.received - outcome.stored
    print(safe_for_terminal(
        f"took in {path} from laptop {outcome.device} (account {outcome.account}, by {outcome.author}, made {outcome.made_at}): "
        f"{_plural(outcome.received, 'change')}, {outcome.stored:,} new, {max(already, 0):,} already here"))
    if outcome.rejected:
        print(f"  {_plural(len(outcome.rejected), 'change')} refused (the receipt tells the laptop why)")
    if outcome.deferred:
        print(f"  {_plural(len(outcome.deferred), 'change')} wait for records not here yet (they stay on the laptop)")
    print(f"receipt: {receipt} ({_plural(outcome.due, 'change')} due to the laptop); "
          "carry it back and run `fieldkit bundle in` with it there")
    return 0


def _national_receipt(database, sealed) -> int:
    from fieldkit.server.relay import take_national_receipt

    report = take_national_receipt(database, sealed)
    for refused in report.refused:
        print(safe_for_terminal(f"refused by the national store: {refused}"))
    print(f"took in the national store's receipt: {_plural(report.sent, 'change')} acknowledged, "
          f"{report.received:,} new here" + (f", {report.waiting:,} waiting for records still on their way" if report.waiting else ""))
    return 0


def cmd_server_bundle_out(args: argparse.Namespace) -> int:
    from fieldkit.bundles import write_file
    from fieldkit.server.db import DatabaseError
    from fieldkit.server.relay import bundle_for_national

    database = _database(args)
    try:
        data, count = bundle_for_national(database)
        path = _output_path(args.output, database.store_key().name.replace("-", "")[-16:])
        write_file(path, data)
    except (_bundle_errors(), DatabaseError) as err:
        raise CommandError(str(err)) from None
    finally:
        database.close()
    print(f"wrote {path}: {_plural(count, 'change')} for the national store")
    return 0


def cmd_server_trust(args: argparse.Namespace) -> int:
    from fieldkit.server.db import DatabaseError
    from fieldkit.server.relay import trust_national

    database = _database(args)
    try:
        key = trust_national(database, args.key)
    except (_bundle_errors(), DatabaseError) as err:
        raise CommandError(str(err)) from None
    finally:
        database.close()
    print(f"this store now seals its bundles for the national store {key.name} (fingerprint {key.fingerprint})")
    return 0


def cmd_server_key(args: argparse.Namespace) -> int:
    from fieldkit.server.db import DatabaseError

    try:
        key = _database(args).store_key()
    except DatabaseError as err:
        raise CommandError(str(err)) from None
    print(f"the central store's key (fingerprint {key.fingerprint}); on a laptop that never synced online run "
          "`fieldkit bundle trust` with the line below:", file=sys.stderr)
    print(key.line())
    return 0


def cmd_server_relay(args: argparse.Namespace) -> int:
    from fieldkit.server.relay import PIN_KEY, Relay, upstream_address

    address, problem = upstream_address(args.upstream, args.insecure)
    if problem:
        raise CommandError(problem)
    database = _database(args)
    try:
        if args.forget_certificate:
            database.save_setting(PIN_KEY, "")
        report = Relay(database, address, args.token).once()
    finally:
        database.close()
    for refused in report.refused:
        print(safe_for_terminal(f"refused by the national store: {refused}"))
    if report.error:
        raise CommandError(f"{report.error}; what was sent before stays sent, the rest goes next time")
    print(f"relayed with {args.upstream}: sent {_plural(report.sent, 'change')} up, brought {report.received:,} down"
          + (f", {report.waiting:,} waiting for records still on their way" if report.waiting else ""))
    return 0
