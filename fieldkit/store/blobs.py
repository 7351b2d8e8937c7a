"""Attached files on this laptop: stored by content, outside the register's records.

Each file is named by the SHA-256 of its bytes (``files/ab/ab12…``), so a photo
attached twice is stored once and the register stays small. A file is written
to a temporary name, fsynced, renamed into place and its folder fsynced before
the attachment's record is saved, so an acknowledged attachment is on disk.
Every read checks the bytes against their name: damage is reported, never
shown as a photo. Bytes pass through the store's codec (``seal``/``unseal``),
so encryption at rest covers them as it covers records.

Downloads in progress live in ``files/.partial/`` and resume where a cut
connection left them. Backups copy every file once into ``backups/files/``
(files never change, so one copy serves every numbered backup).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from fieldkit.store.database import StoreError
from fieldkit.store.files import fsync_dir

FOLDER = "files"
PARTIAL = ".partial"
REPAIR = "`fieldkit recover --files` brings a good copy back from the backups, `fieldkit fetch` from the central store"


class FileDamaged(StoreError):
    """A stored file does not match its hash."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_sha(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


class Blobs:
    def __init__(self, home: Path, codec) -> None:
        self.folder = home / FOLDER
        self.codec = codec

    def path(self, sha: str) -> Path:
        if not _is_sha(sha):
            raise ValueError(f"not a SHA-256: {sha!r}")
        return self.folder / sha[:2] / sha

    def has(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put(self, data: bytes) -> str:
        """Store bytes durably; returns their SHA-256. Bytes already stored are not written again."""
        sha = sha256_of(data)
        target = self.path(sha)
        if target.is_file():
            try:
                self.get(sha)
                return sha
            except FileDamaged:
                pass  # a damaged copy is replaced by the good bytes in hand
        try:
            self._write(target, self.codec.seal(data))
        except OSError as err:
            raise StoreError(f"Could not save the file in {self.folder}: {err.strerror}; free some space and try again") from None
        return sha

    @staticmethod
    def _write(target: Path, payload: bytes) -> None:
        made = not target.parent.is_dir()
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        fsync_dir(target.parent)
        if made:
            fsync_dir(target.parent.parent)

    def get(self, sha: str) -> bytes:
        """A file's bytes, checked against its hash; FileDamaged when they do not match."""
        path = self.path(sha)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"The file {sha[:12]} is not on this laptop yet; `fieldkit fetch` brings it from the central store") from None
        except OSError as err:
            raise StoreError(f"Cannot read {path}: {err.strerror}") from None
        try:
            data = self.codec.unseal(raw)
        except Exception:  # noqa: BLE001 - a codec that cannot open the bytes is damage too
            if sha256_of(raw) == sha:
                return raw  # still in the clear: an encryption cut short before it reached this file
            raise FileDamaged(f"{path} is damaged (it cannot be opened); {REPAIR}") from None
        if sha256_of(data) != sha:
            raise FileDamaged(f"{path} is damaged (its bytes do not match its hash); {REPAIR}")
        return data

    def reseal(self, old_codec) -> int:
        """Rewrite every stored file from ``old_codec``'s form into this folder's (encrypting or decrypting
        the register); each is checked against its hash and replaced whole. Returns how many were rewritten;
        a damaged file is left as it is, for `fieldkit check` to report."""
        rewritten = 0
        for sha in list(self.stored()):
            path = self.path(sha)
            raw = path.read_bytes()
            for codec in (old_codec, self.codec):
                try:
                    data = codec.unseal(raw)
                except Exception:  # noqa: BLE001 - not in this codec's form
                    continue
                if sha256_of(data) == sha:
                    break
            else:
                continue
            if codec is self.codec:
                continue  # already in the new form (a reseal run again)
            self._write(path, self.codec.seal(data))
            rewritten += 1
        return rewritten

    def stored(self) -> Iterator[str]:
        """The hashes of every stored file."""
        if not self.folder.is_dir():
            return
        for sub in self.folder.iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                for path in sub.iterdir():
                    if _is_sha(path.name):
                        yield path.name

    # -- downloads that resume ------------------------------------------------------

    def partial_size(self, sha: str) -> int:
        path = self.folder / PARTIAL / sha
        return path.stat().st_size if path.is_file() else 0

    def append_partial(self, sha: str, offset: int, chunk: bytes) -> int:
        """Add a downloaded chunk at ``offset`` (durably); returns how much of the file is here."""
        folder = self.folder / PARTIAL
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / sha
        have = path.stat().st_size if path.is_file() else 0
        if offset > have:
            raise StoreError(f"the partial download of {sha[:12]} is shorter than expected; fetch it again")
        with open(path, "r+b" if have else "wb") as out:
            out.seek(offset)
            out.truncate()
            out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            return out.tell()

    def finish_partial(self, sha: str) -> bool:
        """Move a complete download into the store if its bytes match; False (and dropped) if not."""
        path = self.folder / PARTIAL / sha
        data = path.read_bytes()
        path.unlink()
        if sha256_of(data) != sha:
            return False
        self.put(data)
        return True

    # -- backups -------------------------------------------------------------------------

    def back_up(self, folder: Path) -> int:
        """Copy every stored file not yet in ``folder`` (as stored, sealed); returns how many were copied."""
        copied = 0
        for sha in self.stored():
            target = folder / sha[:2] / sha
            if target.is_file():
                continue
            try:
                self.get(sha)  # a damaged file is not copied over a good backup
            except FileDamaged:
                continue
            self._write(target, self.path(sha).read_bytes())
            copied += 1
        return copied

    def restore_from(self, folder: Path, wanted: set[str] | None = None) -> int:
        """Bring back files that are missing or damaged here from a backup folder; returns how many."""
        if not folder.is_dir():
            return 0
        restored = 0
        for sub in folder.iterdir():
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for path in sub.iterdir():
                sha = path.name
                if not _is_sha(sha) or (wanted is not None and sha not in wanted):
                    continue
                try:
                    self.get(sha)
                    continue
                except StoreError:
                    pass
                self._write(self.path(sha), path.read_bytes())
                restored += 1
        return restored

    def remove_partial(self) -> None:
        shutil.rmtree(self.folder / PARTIAL, ignore_errors=True)
