"""Where the central store keeps attached files: one small interface, the local disk behind it.

Files are named by their SHA-256, so each is kept once however many
attachments name it. An upload arrives in chunks into ``incoming/<sha256>``
and is checked against its name when the last byte is in; only then is it
moved to ``ab/cd/<sha256>``. A cut connection leaves the partial file, and the
laptop asks how much is here and goes on from there.

For an operator: the folder holds complete files (never changed once there)
and ``incoming/`` (partial uploads, safe to leave out of a backup); copy it
with the database's backup. Object storage can follow behind the same methods.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol

from fieldkit.store.files import fsync_dir

CHUNK_MAX = 8 * 1024 * 1024  # the request body limit: a whole photo may go in one request


class HashMismatch(Exception):
    """The bytes uploaded do not match the hash they were sent under."""


class OutOfOrder(Exception):
    """A chunk that starts after the bytes the store holds; ``received`` says where to go on."""

    def __init__(self, received: int):
        self.received = received
        super().__init__(f"the store holds {received} bytes of this file; send from there")


class FileStorage(Protocol):
    def size(self, sha: str) -> int | None:
        """The size of a complete file, or None when it is not here."""

    def received(self, sha: str) -> int:
        """How many bytes of an upload in progress are here."""

    def append(self, sha: str, offset: int, data: bytes, total: int) -> int:
        """Take a chunk at ``offset``; returns the bytes held. Raises OutOfOrder or HashMismatch."""

    def read(self, sha: str, offset: int, length: int) -> bytes:
        """Bytes of a complete file."""


class LocalFiles:
    """Files on the central store's own disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.incoming = self.root / "incoming"

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha[2:4] / sha

    def size(self, sha: str) -> int | None:
        try:
            return self.path(sha).stat().st_size
        except FileNotFoundError:
            return None

    def received(self, sha: str) -> int:
        done = self.size(sha)
        if done is not None:
            return done
        try:
            return (self.incoming / sha).stat().st_size
        except FileNotFoundError:
            return 0

    @contextmanager
    def _locked(self, sha: str) -> Iterator[None]:
        self.incoming.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.incoming / f".{sha}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def append(self, sha: str, offset: int, data: bytes, total: int) -> int:
        with self._locked(sha):
            done = self.size(sha)
            if done is not None:
                return done
            partial = self.incoming / sha
            held = partial.stat().st_size if partial.exists() else 0
            if offset > held:
                raise OutOfOrder(held)
            fresh = data[held - offset:]
            if fresh:
                with open(partial, "ab") as out:
                    out.write(fresh[: max(0, total - held)])
                    out.flush()
                    os.fsync(out.fileno())
                held = partial.stat().st_size
            if held < total:
                return held
            digest = hashlib.sha256()
            with open(partial, "rb") as source:
                for block in iter(lambda: source.read(1024 * 1024), b""):
                    digest.update(block)
            if digest.hexdigest() != sha:
                partial.unlink()
                raise HashMismatch(sha)
            target = self.path(sha)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, target)
            fsync_dir(target.parent)
            return held

    def read(self, sha: str, offset: int, length: int) -> bytes:
        with open(self.path(sha), "rb") as source:
            source.seek(offset)
            return source.read(length)
