"""Bundles: changes carried by hand (a USB stick, a shared folder), sealed so nobody can read or alter them.

A bundle is one file::

    b"fieldkit bundle 1\\n"
    4 bytes   length of the header (big-endian)
    header    JSON, readable by anyone: kind, sending laptop, when, the sender's signing key,
              and for each recipient the content key wrapped to it
    8 bytes   length of the body
    body      AES-256-GCM of the zlib-compressed payload (JSON), the header as associated data
    64 bytes  Ed25519 signature over everything before it

The payload (who made it, the changes) is encrypted to the recipients' X25519 keys: a fresh
content key, wrapped for each recipient with a key derived (HKDF-SHA256) from an ephemeral
X25519 exchange. So whoever finds the stick reads only which laptop made it and when;
any altered byte breaks the signature; a copy cut short is noticed by its lengths.

This module knows bytes and keys only, no register and no database: the laptop side is
``fieldkit.bundle_sync``, the central store's ``fieldkit.server.bundles``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

MAGIC = b"fieldkit bundle 1\n"
SIGNATURE_BYTES = 64
#: The most a payload may unpack to: a bundle of a million changes, with room; never a zip bomb.
MAX_PAYLOAD_BYTES = 1 << 30
WRAP_INFO = b"fieldkit bundle key 1"
LAPTOP_KEY = "fieldkit-laptop"
STORE_KEY = "fieldkit-store"
CHANGES = "changes"
RECEIPT = "receipt"
SUFFIX = ".fkbundle"


class BundleError(Exception):
    """A bundle that cannot be made or taken in; the message is one line for a person, and nothing was applied."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# -- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keys:
    """A signing key (Ed25519) and a decryption key (X25519), private halves, raw 32 bytes each."""

    sign: bytes
    box: bytes

    @classmethod
    def new(cls) -> "Keys":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return cls(Ed25519PrivateKey.generate().private_bytes_raw(), X25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_text(cls, data: dict[str, str]) -> "Keys":
        return cls(unb64(data["sign"]), unb64(data["box"]))

    def to_text(self) -> dict[str, str]:
        return {"sign": b64(self.sign), "box": b64(self.box)}

    def public(self, kind: str, name: str) -> "PublicKey":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return PublicKey(kind, name,
                         Ed25519PrivateKey.from_private_bytes(self.sign).public_key().public_bytes_raw(),
                         X25519PrivateKey.from_private_bytes(self.box).public_key().public_bytes_raw())


@dataclass(frozen=True, slots=True)
class PublicKey:
    """What a laptop or a central store gives out: who it is, and its two public keys, as one line."""

    kind: str  # LAPTOP_KEY or STORE_KEY
    name: str  # the laptop's device id, or the store's server id
    sign: bytes
    box: bytes

    def line(self) -> str:
        return f"{self.kind}:{self.name}:{b64(self.sign)}:{b64(self.box)}"

    @property
    def fingerprint(self) -> str:
        """Twelve characters to read aloud over a phone, to check a key arrived unchanged."""
        digest = hashlib.sha256(self.sign + self.box).hexdigest()[:12].upper()
        return "-".join(digest[i:i + 4] for i in range(0, 12, 4))

    @classmethod
    def parse(cls, text: str) -> "PublicKey":
        parts = text.strip().split(":")
        if len(parts) != 4 or parts[0] not in (LAPTOP_KEY, STORE_KEY) or not parts[1]:
            raise BundleError(f"'{text.strip()[:40]}' is not a fieldkit key: copy the whole line "
                              "`fieldkit bundle key` (on a laptop) or `fieldkit server key` printed")
        try:
            sign, box = unb64(parts[2]), unb64(parts[3])
        except ValueError:
            sign = box = b""
        if len(sign) != 32 or len(box) != 32:
            raise BundleError("that key is damaged (a character is missing or wrong): copy the whole line again")
        return cls(parts[0], parts[1], sign, box)


# -- sealing and opening ------------------------------------------------------------------------


def seal(kind: str, sender: str, keys: Keys, recipients: list[bytes], payload: dict[str, Any], made_at: str | None = None) -> bytes:
    """A signed bundle whose payload only the holders of ``recipients`` (X25519 public keys) can read."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    content_key = AESGCM.generate_key(bit_length=256)
    wrapped = [_wrap(content_key, recipient) for recipient in dict.fromkeys(recipients)]
    nonce = os.urandom(12)
    signer = Ed25519PrivateKey.from_private_bytes(keys.sign)
    header = orjson.dumps({
        "kind": kind, "from": sender, "made_at": made_at or now_iso(),
        "signer": b64(signer.public_key().public_bytes_raw()), "nonce": b64(nonce), "recipients": wrapped,
    })
    plain = zlib.compress(orjson.dumps(payload), 1)
    body = AESGCM(content_key).encrypt(nonce, plain, header)
    signed = b"".join((MAGIC, struct.pack(">I", len(header)), header, struct.pack(">Q", len(body)), body))
    return signed + signer.sign(signed)


def _kek(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=WRAP_INFO).derive(shared)


def _wrap(content_key: bytes, recipient: bytes) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    nonce = os.urandom(12)
    key = AESGCM(_kek(shared, ephemeral_public, recipient)).encrypt(nonce, content_key, None)
    return {"to": b64(recipient), "ephemeral": b64(ephemeral_public), "nonce": b64(nonce), "key": b64(key)}


@dataclass(slots=True)
class Sealed:
    """A bundle whose signature has been checked against the key it names; its payload still locked."""

    kind: str
    sender: str  # device id, or "central"
    made_at: str
    signer: bytes
    header: dict[str, Any]
    header_bytes: bytes
    body: bytes
    size: int

    def recipients(self) -> list[bytes]:
        return [unb64(entry["to"]) for entry in self.header["recipients"]]

    def open(self, box: bytes, name: str) -> dict[str, Any]:
        """The payload, for the holder of the X25519 private key ``box``; ``name`` says who that is in errors."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        private = X25519PrivateKey.from_private_bytes(box)
        mine = private.public_key().public_bytes_raw()
        entry = next((e for e in self.header["recipients"] if e.get("to") == b64(mine)), None)
        if entry is None:
            raise BundleError(f"this bundle was not made for {name}: it cannot be read here")
        try:
            ephemeral = unb64(entry["ephemeral"])
            shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
            content_key = AESGCM(_kek(shared, ephemeral, mine)).decrypt(unb64(entry["nonce"]), unb64(entry["key"]), None)
            plain = AESGCM(content_key).decrypt(unb64(self.header["nonce"]), self.body, self.header_bytes)
            inflater = zlib.decompressobj()
            data = inflater.decompress(plain, MAX_PAYLOAD_BYTES)
            if inflater.unconsumed_tail:
                raise BundleError("this bundle unpacks to more than fieldkit takes in one go; make smaller bundles")
            payload = orjson.loads(data)
        except (InvalidTag, ValueError, KeyError, zlib.error, orjson.JSONDecodeError):
            raise BundleError("this bundle cannot be unlocked: it was damaged or made with another key; ask for a new one") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("ops", []), list):
            raise BundleError("this bundle holds something other than fieldkit changes")
        return payload


def read(data: bytes, where: str = "the bundle") -> Sealed:
    """Check a bundle's shape, length and signature; a damaged, cut or altered one raises BundleError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not data.startswith(MAGIC):
        if MAGIC.startswith(data[: len(MAGIC)]):
            raise BundleError(f"{where} is cut short ({len(data):,} bytes); nothing was applied: copy it again from where it was made")
        raise BundleError(f"{where} is not a fieldkit bundle; nothing was applied")
    at = len(MAGIC)
    if len(data) < at + 4:
        raise BundleError(f"{where} is cut short ({len(data):,} bytes); nothing was applied: copy it again from where it was made")
    (header_length,) = struct.unpack_from(">I", data, at)
    at += 4
    if len(data) < at + header_length + 8:
        raise BundleError(f"{where} is cut short ({len(data):,} bytes); nothing was applied: copy it again from where it was made")
    header_bytes = data[at:at + header_length]
    at += header_length
    (body_length,) = struct.unpack_from(">Q", data, at)
    at += 8
    expected = at + body_length + SIGNATURE_BYTES
    if len(data) < expected:
        raise BundleError(f"{where} is cut short ({len(data):,} of {expected:,} bytes); nothing was applied: copy it again from where it was made")
    if len(data) > expected:
        raise BundleError(f"{where} has {len(data) - expected:,} bytes more than it should; it was altered and nothing was applied: ask for a new one")
    try:
        header = orjson.loads(header_bytes)
        signer = unb64(header["signer"])
        Ed25519PublicKey.from_public_bytes(signer).verify(data[-SIGNATURE_BYTES:], data[:-SIGNATURE_BYTES])
        kind, sender, made_at = header["kind"], header["from"], header["made_at"]
        if kind not in (CHANGES, RECEIPT) or not isinstance(sender, str) or not isinstance(header["recipients"], list):
            raise ValueError(kind)
    except (InvalidSignature, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise BundleError(f"{where} was altered after it was made (its signature does not match); nothing was applied: "
                          "ask for a new one") from None
    return Sealed(kind, sender, str(made_at), signer, header, header_bytes, data[at:at + body_length], len(data))


def read_file(path: Path) -> Sealed:
    return read(read_bytes(path), str(path))


def read_bytes(path: Path) -> bytes:
    """A bundle file's bytes; a missing or unreadable file is said in one line."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BundleError(f"{path} is a folder; give the bundle's file") from None
    except OSError as err:
        raise BundleError(f"cannot read {path}: {err.strerror or err}") from None


def write_file(path: Path, data: bytes) -> None:
    """Write whole or not at all: a stick pulled out mid-write leaves no half bundle under the name."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError as err:
        try:
            partial.unlink()
        except OSError:
            pass
        raise BundleError(f"cannot write {path}: {err.strerror or err}; nothing was written") from None


# -- operation ids for re-sent states -------------------------------------------------------------


def stable_op_id(record_id: str, stamp: str, device: str) -> str:
    """A UUIDv7-shaped id that is the same every time the same state is written out.

    ``bundle out --all`` writes every record as operations; with stable ids a
    second such bundle is acknowledged as already stored, not logged again.
    """
    from fieldkit.hlc import wall_ms

    digest = int.from_bytes(hashlib.sha256(f"{record_id}|{stamp}|{device}".encode()).digest()[:10], "big") >> 6
    ms = wall_ms(stamp) & ((1 << 48) - 1)
    value = ms << 80 | 0x7 << 76 | ((digest >> 62) & 0xFFF) << 64 | 0b10 << 62 | (digest & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
