"""Accounts on the central store: who may sync, and which part of the register is theirs.

A token is ``fk_`` and 32 random bytes, shown once when the account is made; the store
keeps only its SHA-256, so a copy of the database does not hand out access.

Scope: a facilitator works in their municipalities (and any whole provinces
given), a coordinator in their provinces, an administrator everywhere. A note,
follow-up action or status change belongs where its issue is. Lessons are
shared with everyone: gathering them and sharing them widely is their point.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from fieldkit import refdata

ROLES = ("facilitator", "coordinator", "admin")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@'-]{0,59}$")


class AccountError(ValueError):
    """A wrong account request; the message says what to do."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    municipalities: tuple[str, ...] = ()
    provinces: tuple[str, ...] = ()
    revoked: bool = False
    created_at: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def covers(self, municipality: str | None) -> bool:
        """Whether this user may read and change records in a municipality."""
        if self.is_admin:
            return True
        if not municipality:
            return False
        if municipality in self.municipalities:
            return True
        muni = refdata.get(municipality)
        return muni is not None and muni.province in self.provinces

    def scope_text(self) -> str:
        if self.is_admin:
            return "every municipality"
        parts = list(self.municipalities) + [f"all of {refdata.PROVINCES[p]}" for p in self.provinces]
        return ", ".join(parts) or "no municipality"


@dataclass(slots=True)
class NewAccount:
    user: User
    token: str = field(repr=False)


def new_token() -> str:
    """32 random bytes, with a prefix: recognisable if pasted somewhere, and never starting with '-'
    (which a command line would take for an option)."""
    return "fk_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_account(name: str, role: str, municipalities: list[str], provinces: list[str]) -> User:
    """A valid account from what an administrator typed, with codes cleaned up."""
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise AccountError(f"'{name}' is not a usable account name: use letters, digits, spaces, . _ @ ' - (at most 60)")
    if role not in ROLES:
        raise AccountError(f"Unknown role '{role}' — choose one of: {', '.join(ROLES)}")
    codes = []
    for code in municipalities:
        muni = refdata.get(code)
        if muni is None:
            guess = refdata.suggest(code)
            hint = f" — did you mean {guess.code} ({guess.current_name})?" if guess else ""
            raise AccountError(f"Unknown municipality code '{code}'{hint}")
        codes.append(muni.code)
    provs = []
    for text in provinces:
        code = refdata.province_code(text)
        if code is None:
            raise AccountError(f"Unknown province '{text}' — use one of: {', '.join(refdata.PROVINCES)}")
        provs.append(code)
    if role == "facilitator" and not (codes or provs):
        raise AccountError("A facilitator needs at least one --municipality (or a whole --province)")
    if role == "coordinator" and not provs:
        raise AccountError("A coordinator needs at least one --province")
    return User(name=name, role=role, municipalities=tuple(dict.fromkeys(codes)), provinces=tuple(dict.fromkeys(provs)))
