"""Encryption at rest: a codec that seals every record, line and operation, and the key file.

Every value the register keeps (records, merge states, lookup lines, queued
operations, this laptop's own documents with the draft, settings and sync
token) passes through ``SealedCodec``: AES-256-GCM with a random 96-bit nonce
a value and a random data key. Only ids, references, record kinds and
sequence numbers stay in the clear, so SQLite can still find a record by id.

The data key itself is kept in ``fieldkit-key.json`` beside the register,
wrapped twice: by a key derived from the person's passphrase with scrypt
(memory-hard: 64 MiB, about 0.2 s, so guessing is slow) and by a one-time
recovery key that is printed once. Changing the passphrase rewraps the data
key; the register is not rewritten.

Which codec the rows are in is written in the register's own ``meta`` table,
in the transaction that rewrites them, so a crash half-way through
``fieldkit encrypt`` leaves a register that opens as it was.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from fieldkit.store import sealed_lines
from fieldkit.store.blobs import FOLDER as FILES, Blobs
from fieldkit.store.database import FILE_NAME, StoreError, checksum
from fieldkit.store.files import atomic_write

KEY_FILE = "fieldkit-key.json"
SEALED = "sealed"
PREFIX = b"\x01"  # the format of a sealed value: 1 = AES-256-GCM, 12-byte nonce, 16-byte tag
NONCE = 12
SCRYPT = {"n": 2 ** 16, "r": 8, "p": 1}
RECOVERY_BYTES = 20  # 160 bits: 32 base-32 letters in 8 groups


class WrongPassphrase(StoreError):
    """The passphrase (or recovery key) does not open this register's key."""


class Locked(StoreError):
    """The register is encrypted and no passphrase was given."""


class SealedCodec:
    """Values sealed with AES-256-GCM under the register's data key."""

    searchable = False

    def __init__(self, data_key: bytes):
        self.data_key = data_key
        self._aead = AESGCM(data_key)

    def seal(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return PREFIX + nonce + self._aead.encrypt(nonce, data, None)

    def unseal(self, data: bytes) -> bytes:
        if not data.startswith(PREFIX):
            raise ValueError("not a sealed value")
        try:
            return self._aead.decrypt(data[1:1 + NONCE], data[1 + NONCE:], None)
        except InvalidTag:
            raise ValueError("a sealed value does not open with this register's key") from None


# -- the key file ---------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _passphrase_key(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(passphrase.encode("utf-8"))


def normalise_recovery_key(text: str) -> str:
    """The recovery key as typed, without spaces, dashes or case: what it wraps with."""
    return "".join(ch for ch in text.upper() if ch.isalnum())


def _recovery_wrapping_key(recovery_key: str, salt: bytes) -> bytes:
    """The recovery key is 160 random bits: no slow derivation is needed, only a fixed-length key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"fieldkit recovery key").derive(
        normalise_recovery_key(recovery_key).encode("ascii"))


def _wrap(key: bytes, data_key: bytes, purpose: bytes) -> str:
    nonce = os.urandom(NONCE)
    return _b64(nonce + AESGCM(key).encrypt(nonce, data_key, purpose))


def _unwrap(key: bytes, wrapped: str, purpose: bytes) -> bytes | None:
    raw = _unb64(wrapped)
    try:
        return AESGCM(key).decrypt(raw[:NONCE], raw[NONCE:], purpose)
    except InvalidTag:
        return None


def new_recovery_key() -> str:
    text = base64.b32encode(secrets.token_bytes(RECOVERY_BYTES)).decode("ascii")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


@dataclass
class KeyFile:
    """The data key wrapped by the passphrase and by the recovery key (no secret in the clear)."""

    salt: bytes
    params: dict[str, int]
    by_passphrase: str
    recovery_salt: bytes
    by_recovery: str
    check: str  # a constant sealed under the data key: tells a data key kept in the OS keyring is this register's

    @classmethod
    def make(cls, data_key: bytes, passphrase: str, recovery_key: str) -> "KeyFile":
        salt, recovery_salt = os.urandom(16), os.urandom(16)
        return cls(salt, dict(SCRYPT), _wrap(_passphrase_key(passphrase, salt, SCRYPT), data_key, b"passphrase"),
                   recovery_salt, _wrap(_recovery_wrapping_key(recovery_key, recovery_salt), data_key, b"recovery"),
                   _wrap(data_key, b"fieldkit register key", b"check"))

    def rewrapped(self, data_key: bytes, passphrase: str) -> "KeyFile":
        """The same data key under a new passphrase; the recovery key keeps working."""
        salt = os.urandom(16)
        return KeyFile(salt, dict(SCRYPT), _wrap(_passphrase_key(passphrase, salt, SCRYPT), data_key, b"passphrase"),
                       self.recovery_salt, self.by_recovery, self.check)

    def fits(self, data_key: bytes) -> bool:
        """Whether ``data_key`` is this register's (one decryption, no key derivation)."""
        return bool(self.check) and len(data_key) == 32 and _unwrap(data_key, self.check, b"check") is not None

    def open(self, passphrase: str) -> bytes | None:
        return _unwrap(_passphrase_key(passphrase, self.salt, self.params), self.by_passphrase, b"passphrase")

    def open_with_recovery(self, recovery_key: str) -> bytes | None:
        return _unwrap(_recovery_wrapping_key(recovery_key, self.recovery_salt), self.by_recovery, b"recovery")

    def to_json(self) -> bytes:
        return orjson.dumps({
            "format": 1, "cipher": "AES-256-GCM", "kdf": "scrypt", "salt": _b64(self.salt), "params": self.params,
            "by_passphrase": self.by_passphrase, "recovery_salt": _b64(self.recovery_salt),
            "by_recovery": self.by_recovery, "check": self.check,
        }, option=orjson.OPT_INDENT_2)

    @classmethod
    def read(cls, home: Path) -> "KeyFile":
        path = home / KEY_FILE
        try:
            found = orjson.loads(path.read_bytes())
            return cls(_unb64(found["salt"]), {k: int(found["params"][k]) for k in ("n", "r", "p")},
                       found["by_passphrase"], _unb64(found["recovery_salt"]), found["by_recovery"], found.get("check", ""))
        except FileNotFoundError:
            raise StoreError(f"The register in {home} is encrypted but its key file {KEY_FILE} is missing; "
                             "restore that file from where you copied the folder (without it the register cannot be read)") from None
        except (ValueError, KeyError, TypeError):
            raise StoreError(f"The key file {path} is damaged; restore it from a copy of the folder") from None

    def write(self, home: Path) -> None:
        atomic_write(home / KEY_FILE, self.to_json())


def is_sealed(home: Path, file: Path | None = None) -> bool:
    """Whether the register in ``home`` (or the register ``file``, a backup unpacked) is stored encrypted
    (read from the register file itself)."""
    path = file or home / FILE_NAME
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        found = conn.execute("SELECT value FROM meta WHERE key = 'codec'").fetchone()
    except sqlite3.Error:
        return False  # not a register yet, or damaged: the store says so when it opens
    finally:
        conn.close()
    return bool(found) and found[0] == SEALED


def unlock(home: Path, passphrase: str) -> SealedCodec:
    data_key = KeyFile.read(home).open(passphrase)
    if data_key is None:
        raise WrongPassphrase("That passphrase does not open this register; try again (forgotten it? `fieldkit unlock --recovery-key`)")
    return SealedCodec(data_key)


def unlock_with_key(home: Path, data_key: bytes) -> SealedCodec | None:
    """The codec for a data key kept elsewhere (the OS keyring), or None when it is not this register's."""
    return SealedCodec(data_key) if KeyFile.read(home).fits(data_key) else None


def unlock_with_recovery(home: Path, recovery_key: str) -> SealedCodec:
    data_key = KeyFile.read(home).open_with_recovery(recovery_key)
    if data_key is None:
        raise WrongPassphrase("That recovery key does not open this register; check it against the one printed by `fieldkit encrypt`")
    return SealedCodec(data_key)


# -- rewriting the register under another codec ------------------------------------------------

def reseal(store: Any, new_codec: Any) -> None:
    """Rewrite every row of the register under ``new_codec`` in one transaction, then leave no old bytes behind.

    After the commit the file is vacuumed (so no page freed by the old rows
    keeps their bytes) and the backups, which hold the old rows, are replaced
    by one new backup in the new form.
    """
    old = store.codec
    db = store.db
    sealing = not getattr(new_codec, "searchable", True)
    if not sealing:  # attached files first, so a cut leaves a sealed register whose files read in the clear
        Blobs(store.home, new_codec).reseal(old)
    with store.transaction():
        records = [(kind, record_id, doc, merge, crc) for kind, record_id, doc, merge, crc
                   in db.rows("SELECT kind, id, doc, merge, crc FROM record")]
        rows = []
        for kind, record_id, doc, merge, crc in records:
            if checksum(doc, merge) != crc:
                raise db.corrupt(db.path, f"{kind} {record_id} does not match its checksum")
            try:
                new_doc = new_codec.seal(old.unseal(doc))
                new_merge = new_codec.seal(old.unseal(merge)) if merge else merge
            except ValueError:
                raise db.corrupt(db.path, f"{kind} {record_id} does not read back") from None
            rows.append((new_doc, new_merge, checksum(new_doc, new_merge), kind, record_id))
        db.write_many("UPDATE record SET doc = ?, merge = ?, crc = ? WHERE kind = ? AND id = ?", rows)
        lines, plain_lines = [], []
        for record_id, line, words, crc in db.rows("SELECT id, line, words, crc FROM issue_line"):
            if checksum(line, words) != crc:
                raise db.corrupt(db.path, f"the lookup line of issue {record_id} does not match its checksum")
            plain = f"{line}\t{words}" if isinstance(line, str) else old.unseal(line).decode("utf-8")
            if sealing:  # the whole line sealed, and no words left for the trigram index to hold
                new_line, new_words = new_codec.seal(plain.encode("utf-8")), ""
            else:
                new_line, _, new_words = plain.rpartition("\t")
            lines.append((new_line, new_words, checksum(new_line, new_words), record_id))
            plain_lines.append((record_id, plain))
        db.write_many("UPDATE issue_line SET line = ?, words = ?, crc = ? WHERE id = ?", lines)
        if sealing:
            sealed_lines.rebuild(db, new_codec, plain_lines)
        else:
            sealed_lines.drop(db)
        ops = []
        for op_id, payload, crc, reason in db.rows("SELECT op_id, op, crc, reason FROM outbox"):
            if checksum(payload) != crc:
                raise db.corrupt(db.path, f"the unsent change {op_id} does not match its checksum")
            new_payload = new_codec.seal(old.unseal(payload))
            plain_reason = reason if isinstance(reason, str) else old.unseal(reason).decode("utf-8")
            new_reason = new_codec.seal(plain_reason.encode("utf-8")) if sealing and plain_reason else plain_reason
            ops.append((new_payload, checksum(new_payload), new_reason, op_id))
        db.write_many("UPDATE outbox SET op = ?, crc = ?, reason = ? WHERE op_id = ?", ops)
        db.write("INSERT OR REPLACE INTO meta VALUES ('codec', ?)", (SEALED if sealing else "plain",))
        if sealing:
            db.write("INSERT OR REPLACE INTO meta VALUES ('sealing', 'unfinished')")
        store.codec = new_codec
    if sealing:
        finish_sealing(store, old)
    else:
        vacuum(store)
        replace_backups(store)


def finish_sealing(store: Any, old: Any) -> None:
    """What follows the sealed rows: attached files, the file's free pages and the backups, which still
    hold the old bytes in the clear. Run again when the register is next opened if a cut stopped it
    (a file left in the clear meanwhile still reads, known good by its hash)."""
    store.blobs.reseal(old)
    vacuum(store)
    replace_backups(store)
    store.db.write("DELETE FROM meta WHERE key = 'sealing'")


def sealing_unfinished(store: Any) -> bool:
    return bool(store.db.rows("SELECT 1 FROM meta WHERE key = 'sealing' AND value = 'unfinished'"))


def vacuum(store: Any) -> None:
    """Rebuild the file so no free page still holds the bytes of rows rewritten."""
    store.outbox_cut()  # VACUUM may number the outbox's rows anew
    try:
        with store.db._lock:
            store.db.conn.execute("VACUUM")
    except sqlite3.Error as err:
        raise store.db.translate(err) from None


def replace_backups(store: Any) -> None:
    """One new backup in the register's form now; the old ones (and a format-1 original) are removed.

    The backed-up attached files were copied in the old form: they go first (every one of them is
    in the register's own folder), and the new backup copies them again in the new form.
    """
    import shutil

    files = store.backups.folder / FILES
    shutil.rmtree(files, ignore_errors=True)
    old = list(store.backups.list())
    store.backup()
    for path in old:
        path.unlink(missing_ok=True)
    if store.backups.folder.is_dir():
        for leftover in store.backups.folder.iterdir():
            if leftover.is_dir() and leftover != files:
                shutil.rmtree(leftover, ignore_errors=True)
