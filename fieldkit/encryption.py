"""Encryption at rest, as a person uses it: unlock, lock, turn on, turn off, change the passphrase, recover.

The sealing itself lives in ``fieldkit.store.sealing``; this module decides
where the key comes from, cheapest first: this login's unlocked session
(``fieldkit unlock``, see ``fieldkit.session``: no key derivation), else the
passphrase in ``FIELDKIT_PASSPHRASE`` (for scripts), else the register's key
kept in the OS keyring (``--remember``, where there is one), else the
passphrase asked on a terminal, which starts a session as ``sudo`` does. The
command line and the app open the register through ``open_register`` so an
encrypted one is never opened without its key.
"""

from __future__ import annotations

import base64
import getpass
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

from fieldkit import keychain
from fieldkit.store import Store, StoreError, default_home
from fieldkit.store.sealing import (
    KEY_FILE,
    KeyFile,
    Locked,
    SealedCodec,
    WrongPassphrase,
    is_sealed,
    new_recovery_key,
    reseal,
    unlock,
    unlock_with_key,
    unlock_with_recovery,
)

__all__ = ["open_register", "encrypt", "decrypt", "change_passphrase", "recover", "is_sealed", "codec_for", "unlocked_codec",
           "start_session", "end_session", "WrongPassphrase", "Locked", "PassphraseRefused", "MIN_LENGTH"]

ENV = "FIELDKIT_PASSPHRASE"
NEW_ENV = "FIELDKIT_NEW_PASSPHRASE"
MIN_LENGTH = 8

Ask = Callable[[str], str]


class PassphraseRefused(StoreError):
    """A new passphrase that will not do (too short, or typed differently twice)."""


def keyring_name(home: Path) -> str:
    return f"register key:{Path(home).resolve()}"


def terminal_ask(prompt: str) -> str:
    """Ask on the terminal without echo; on no terminal, say how else to give it."""
    if not sys.stdin.isatty():
        raise Locked("The register is encrypted and there is no terminal to ask for its passphrase: "
                     f"set {ENV}, run `fieldkit unlock` in a terminal first, or keep the key in the OS keyring "
                     "with `fieldkit encrypt --remember`")
    return getpass.getpass(prompt)


def passphrase(home: Path, ask: Ask | None = terminal_ask) -> str:
    """The passphrase from the environment, else asked."""
    given = os.environ.get(ENV)
    if given:
        return given
    if ask is None:
        raise Locked(f"The register in {home} is encrypted: give its passphrase")
    return ask("Passphrase for the fieldkit register: ")


def kept_codec(home: Path) -> SealedCodec | None:
    """The register's key from the OS keyring, when it is kept there and is still this register's."""
    kept = keychain.get(keyring_name(home))
    if not kept:
        return None
    try:
        return unlock_with_key(home, base64.b64decode(kept))
    except ValueError:
        return None


def remember_key(home: Path, codec: SealedCodec) -> bool:
    """Keep the register's key in the OS keyring; False when there is none."""
    return keychain.put(keyring_name(home), base64.b64encode(codec.data_key).decode("ascii"))


def new_passphrase(ask: Ask | None = terminal_ask, env: str = ENV) -> str:
    """A new passphrase, from the environment or typed twice; refused when too short."""
    given = os.environ.get(env)
    if given is None:
        if ask is None:
            raise PassphraseRefused(f"Give the new passphrase in {env}")
        given = ask("New passphrase (at least 8 characters): ")
        if ask("The same passphrase again: ") != given:
            raise PassphraseRefused("The two passphrases differ; nothing was changed. Try again")
    if len(given) < MIN_LENGTH:
        raise PassphraseRefused(f"A passphrase needs at least {MIN_LENGTH} characters (a few words are easiest to remember); nothing was changed")
    return given


def session_codec(home: Path) -> SealedCodec | None:
    """The register's key from this login's unlocked session, when there is one and it is this register's."""
    from fieldkit import session  # here, not at the top: a plain register's commands never load ctypes

    kept = session.kept(home)
    if kept is None:
        return None
    codec = unlock_with_key(home, kept)
    if codec is None:
        session.end(home)  # another register's key, left by one since replaced at this path
    return codec


SESSION_SECONDS = 8 * 3600  # how long `fieldkit unlock` (or a passphrase typed at a prompt) keeps a login unlocked


def start_session(home: Path, codec: SealedCodec, seconds: float = SESSION_SECONDS) -> bool:
    """Keep the unlocked key for this login (``fieldkit lock`` or the expiry ends it); False where there are no sessions."""
    from fieldkit import session

    return session.keep(home, codec.data_key, int(seconds))


def end_session(home: Path) -> bool:
    from fieldkit import session

    return session.end(home)


def codec_for(home: Path, ask: Ask | None = terminal_ask, keep_unlocked: bool = True) -> SealedCodec | None:
    """The unlocked key of an encrypted register, or None for a plain one.

    A passphrase typed at the terminal starts a session for this login, so the
    next commands neither ask again nor spend the key derivation's 0.2 s.
    """
    if not is_sealed(home):
        return None
    return unlocked_codec(home, ask, keep_unlocked)


def unlocked_codec(home: Path, ask: Ask | None = terminal_ask, keep_unlocked: bool = True) -> SealedCodec:
    """The register's key from this login's session, the OS keyring, or the passphrase (see ``codec_for``)."""
    unlocked = session_codec(home)
    if unlocked is not None:
        return unlocked
    if not os.environ.get(ENV):
        kept = kept_codec(home)
        if kept is not None:
            return kept
    codec = unlock(home, passphrase(home, ask))
    if keep_unlocked and ask is terminal_ask and not os.environ.get(ENV) and start_session(home, codec):
        print(session_note(), file=sys.stderr)
    return codec


def unlock_session(home: Path, seconds: float = SESSION_SECONDS, ask: Ask | None = terminal_ask) -> None:
    """``fieldkit unlock``: the passphrase (or the key kept in the OS keyring) once, then no more for ``seconds``."""
    from fieldkit import session

    if not is_sealed(home):
        raise StoreError(f"The register in {home} is not encrypted; there is nothing to unlock")
    if not session.available():
        raise StoreError("This system keeps no unlocked sessions (no kernel keyring): keep the register's key in the OS "
                         f"keyring with `fieldkit encrypt --remember`, or give the passphrase in {ENV}")
    codec = None if os.environ.get(ENV) else kept_codec(home)
    if codec is None:
        codec = unlock(home, passphrase(home, ask))
    if not start_session(home, codec, seconds):
        raise StoreError("The kernel refused to keep the register's key for this login; give the passphrase to each command instead")


def session_note(seconds: float = SESSION_SECONDS) -> str:
    import time

    until = time.strftime("%H:%M", time.localtime(time.time() + seconds))
    return f"unlocked for this login until {until}; `fieldkit lock` locks it now"


def open_register(home: str | os.PathLike | None = None, author: str | None = None, ask: Ask | None = terminal_ask,
                  keep_unlocked: bool = True):
    """The register, unlocked when it is encrypted (``keep_unlocked``: a passphrase typed starts a session)."""
    from fieldkit.register import Register

    folder = Path(home) if home is not None else default_home()
    return Register.open(folder, author, codec=codec_for(folder, ask, keep_unlocked))


def encrypt(store: Store, new: str, remember: bool = False) -> str:
    """Seal the whole register under a new random key wrapped by ``new``; returns the recovery key to print once."""
    if not store.codec.searchable:
        raise StoreError(f"The register in {store.home} is already encrypted; "
                         "change the passphrase with `fieldkit encrypt --change-passphrase`")
    data_key = os.urandom(32)
    recovery_key = new_recovery_key()
    KeyFile.make(data_key, new, recovery_key).write(store.home)  # before the rows: a crash leaves a plain register that opens
    codec = SealedCodec(data_key)
    reseal(store, codec)
    for damaged in store.home.glob("damaged-*"):  # unencrypted copies `fieldkit recover` set aside
        shutil.rmtree(damaged, ignore_errors=True)
    if remember:
        remember_key(store.home, codec)
    return recovery_key


def decrypt(store: Store) -> None:
    """Write the whole register back in the clear and drop the key file."""
    from fieldkit.store import PlainCodec

    if store.codec.searchable:
        raise StoreError(f"The register in {store.home} is not encrypted")
    reseal(store, PlainCodec())
    (store.home / KEY_FILE).unlink(missing_ok=True)
    keychain.remove(keyring_name(store.home))
    end_session(store.home)


def change_passphrase(store: Store, new: str) -> None:
    """Rewrap the data key under ``new``; the register is not rewritten, the recovery key still works."""
    codec = store.codec
    if codec.searchable:
        raise StoreError(f"The register in {store.home} is not encrypted; turn encryption on with `fieldkit encrypt`")
    KeyFile.read(store.home).rewrapped(codec.data_key, new).write(store.home)
    end_session(store.home)  # whoever unlocked with the old passphrase types the new one


def recover(home: Path, recovery_key: str, new: str) -> None:
    """A forgotten passphrase: the recovery key opens the data key, which is wrapped by ``new``."""
    if not is_sealed(home):
        raise StoreError(f"The register in {home} is not encrypted; it needs no recovery key")
    codec = unlock_with_recovery(home, recovery_key)
    KeyFile.read(home).rewrapped(codec.data_key, new).write(home)
    end_session(home)

