"""Durable file primitives: atomic replace, fsynced append, the writer lock.

Everything that must survive a kill -9 or a power cut goes through here.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` itself durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, payload: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` so that a crash leaves the old file or the new one, never half of one.

    The store's own files are private (0600); exports pass 0o666 so the user's umask decides.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


class AppendLog:
    """A file opened for appending, each append fsynced before it returns."""

    def __init__(self, path: Path):
        self.path = path
        new = not path.exists()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if new:
            fsync_dir(path.parent)

    def append(self, payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class DirectoryLock:
    """An advisory lock on the store: exclusive to write, shared to read.

    Several fieldkit processes (the app and a `fieldkit add` in another
    terminal) may use one store; the lock keeps their journal appends and
    compactions from interleaving.
    """

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._depth = 0
        self._mode = 0

    @contextmanager
    def hold(self, exclusive: bool) -> Iterator[None]:
        wanted = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if self._depth and (self._mode == fcntl.LOCK_EX or wanted == fcntl.LOCK_SH):
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        previous = self._mode
        fcntl.flock(self._fd, wanted)
        self._mode = wanted
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._mode = 0
            else:
                fcntl.flock(self._fd, previous)
                self._mode = previous

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
