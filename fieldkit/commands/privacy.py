"""Commands for personal information: encrypt, decrypt, unlock, lock, forget-contact."""

from __future__ import annotations

import argparse
import sys

from fieldkit.cli import CommandError


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("encrypt", help="encrypt the register on this laptop (asks a passphrase, prints a recovery key once)")
    p.add_argument("--change-passphrase", action="store_true",
                   help="give an encrypted register a new passphrase (the new one from FIELDKIT_NEW_PASSPHRASE or asked twice)")
    p.add_argument("--remember", action="store_true",
                   help="keep the register's key in the OS keyring, where there is one, so commands need no passphrase "
                        "(also on a register already encrypted)")
    p.set_defaults(handler=cmd_encrypt)

    p = commands.add_parser("decrypt", help="store the register on this laptop unencrypted again")
    p.set_defaults(handler=cmd_decrypt)

    p = commands.add_parser("unlock", help="unlock the encrypted register for this login (8 hours unless --for); "
                                           "with --recovery-key: set a new passphrase")
    p.add_argument("--for", dest="duration", type=_duration, default=None, metavar="TIME",
                   help="how long it stays unlocked, e.g. 30m, 2h (at most 24h; default 8h)")
    p.add_argument("--recovery-key", nargs="?", const="", default=None, metavar="KEY",
                   help="forgotten passphrase: the key printed by `fieldkit encrypt` (asked for when not given here) sets a new one")
    p.set_defaults(handler=cmd_unlock)

    p = commands.add_parser("lock", help="lock the encrypted register again: the next command asks for the passphrase")
    p.add_argument("--forget", action="store_true",
                   help="also take the register's key out of the OS keyring, where `encrypt --remember` put it")
    p.set_defaults(handler=cmd_lock)

    register_forget(commands)


def cmd_encrypt(args: argparse.Namespace) -> int:
    from fieldkit import encryption, keychain
    from fieldkit.store import default_home

    home = default_home()
    if args.change_passphrase:
        if not encryption.is_sealed(home):
            raise CommandError(f"the register in {home} is not encrypted; turn encryption on with `fieldkit encrypt`")
        with encryption.open_register(home, keep_unlocked=False) as register:
            new = encryption.new_passphrase(env=encryption.NEW_ENV)
            encryption.change_passphrase(register.store, new)
        print("passphrase changed; the register was not rewritten and the recovery key still works")
        return 0
    if encryption.is_sealed(home) and args.remember:
        with encryption.open_register(home, keep_unlocked=False) as register:
            kept = encryption.remember_key(home, register.store.codec)
        if not kept:
            raise CommandError("there is no OS keyring on this machine: give the passphrase in FIELDKIT_PASSPHRASE, or type it when asked")
        print("the register's key is kept in the OS keyring: commands here need no passphrase")
        return 0
    if encryption.is_sealed(home):
        raise CommandError(f"the register in {home} is already encrypted; change its passphrase with `fieldkit encrypt --change-passphrase`")
    with encryption.open_register(home) as register:
        new = encryption.new_passphrase()
        recovery_key = encryption.encrypt(register.store, new, remember=args.remember)
    print(f"the register in {home} is encrypted: every record, lookup line, queued change, draft, setting and backup")
    if args.remember:
        print("the register's key is kept in the OS keyring" if keychain.available()
              else "there is no OS keyring on this machine: the passphrase is asked for (or read from FIELDKIT_PASSPHRASE)")
    print("Your recovery key, shown only this once. Write it down and keep it away from the laptop;", file=sys.stderr)
    print("with it `fieldkit unlock --recovery-key` sets a new passphrase when this one is forgotten:", file=sys.stderr)
    print(recovery_key)
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    from fieldkit import encryption
    from fieldkit.store import default_home

    home = default_home()
    if not encryption.is_sealed(home):
        raise CommandError(f"the register in {home} is not encrypted")
    with encryption.open_register(home, keep_unlocked=False) as register:
        encryption.decrypt(register.store)
    print(f"the register in {home} is stored unencrypted again; old encrypted backups were replaced by a new one")
    return 0


MAX_UNLOCKED = 24 * 3600


def _duration(text: str) -> int:
    """``90s``, ``30m``, ``8h`` (a bare number is hours), in seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    cleaned = text.strip().lower()
    unit = units.get(cleaned[-1:], None)
    try:
        amount = float(cleaned[:-1] if unit else cleaned)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a time such as 30m or 8h, not '{text}'") from None
    seconds = round(amount * (unit or 3600))
    if not 1 <= seconds <= MAX_UNLOCKED:
        raise argparse.ArgumentTypeError(f"between 1s and 24h, not '{text}'")
    return seconds


def cmd_unlock(args: argparse.Namespace) -> int:
    from fieldkit import encryption
    from fieldkit.store import default_home

    home = default_home()
    if args.recovery_key is not None:
        key = args.recovery_key or encryption.terminal_ask("Recovery key: ")
        new = encryption.new_passphrase(env=encryption.NEW_ENV)
        encryption.recover(home, key, new)
        print("a new passphrase is set; the recovery key keeps working, keep it safe")
        return 0
    seconds = args.duration or encryption.SESSION_SECONDS
    encryption.unlock_session(home, seconds)
    print(encryption.session_note(seconds))
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from fieldkit import encryption, keychain
    from fieldkit.store import default_home

    home = default_home()
    if not encryption.is_sealed(home):
        raise CommandError(f"the register in {home} is not encrypted; there is nothing to lock")
    ended = encryption.end_session(home)
    if args.forget:
        keychain.remove(encryption.keyring_name(home))
    print("locked: the next command asks for the passphrase" if ended else "it was not unlocked for this login")
    if not args.forget and keychain.get(encryption.keyring_name(home)):
        print("note: its key is still kept in the OS keyring (`fieldkit encrypt --remember`) and opens it without a "
              "passphrase; `fieldkit lock --forget` takes it out", file=sys.stderr)
    return 0


def register_forget(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("forget-contact", help="erase an issue's community contact (name and phone) here and, after sync, everywhere")
    p.add_argument("issue", help="the issue's reference or id")
    p.add_argument("--author", help="who is erasing it (default: the name set in the app, else your login)")
    p.set_defaults(handler=cmd_forget_contact)


def cmd_forget_contact(args: argparse.Namespace) -> int:
    from fieldkit.encryption import open_register

    with open_register(author=args.author) as register:
        issue_id = register.resolve(args.issue)
        values = register.issue_values(issue_id)
        register.forget_contact(issue_id)
    print(f"erased the community contact of {values.get('ref', issue_id)} here, with its earlier values and backups; "
          "`fieldkit sync` erases it on the central store and on every laptop that syncs")
    return 0
