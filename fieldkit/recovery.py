"""Restoring a damaged register from its newest good backup.

A damaged file is never written over: the backup is unpacked and checked
beside it first, then the damaged file is moved into ``damaged-<n>/`` and the
checked copy renamed into place. The restored register is a new file, so the
laptop takes a new device code (see ``Register``): nothing it hands out after
the restore can repeat what the damaged copy handed out.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from fieldkit.store import StoreError
from fieldkit.store.backups import Backups
from fieldkit.store.database import FILE_NAME
from fieldkit.store.files import fsync_dir
from fieldkit.store.sealing import is_sealed


def list_backups(home: Path) -> list[Path]:
    return Backups(home).list()


def restore(home: Path, source: str | None = None, unlock: Callable[[], Any] | None = None) -> tuple[Path, Path | None]:
    """Put the newest good backup (or ``source``) in place; returns it and where the damaged file went.

    When the backup is of an encrypted register, ``unlock`` gives its key before anything is moved (a wrong
    passphrase moves nothing); the attached files are checked through it when they are brought back."""
    backups = Backups(home)
    candidates = [Path(source)] if source else backups.list()
    if not candidates:
        raise StoreError(f"There are no backups in {backups.folder}; `fieldkit backup` makes one (the app makes one a day)")
    scratch = home / f".incomplete-restore-{os.getpid()}.sqlite"
    chosen = None
    problems = []
    for candidate in candidates:
        problem = backups.unpack(candidate, scratch) if candidate.is_file() else "it is not a backup file"
        if problem is None:
            chosen = candidate
            break
        problems.append(f"{candidate.name}: {problem}")
    if chosen is None:
        scratch.unlink(missing_ok=True)
        raise StoreError(f"None of the backups in {backups.folder} is whole ({'; '.join(problems)}); keep the folder as it is and ask for help")
    codec = None
    if is_sealed(home, scratch):
        if unlock is None:
            scratch.unlink(missing_ok=True)
            raise StoreError(f"{chosen.name} is of an encrypted register: give its passphrase")
        try:
            codec = unlock()
        finally:
            if codec is None:
                scratch.unlink(missing_ok=True)
    moved = None
    if (home / FILE_NAME).exists():
        number = 1
        while (home / f"damaged-{number}").exists():
            number += 1
        moved = home / f"damaged-{number}"
        moved.mkdir()
        for name in (FILE_NAME, f"{FILE_NAME}-journal"):
            if (home / name).exists():
                shutil.move(str(home / name), moved / name)
    os.replace(scratch, home / FILE_NAME)
    fsync_dir(home)
    restore_files(home, codec)
    return chosen, moved


def restore_files(home: Path, codec: Any = None) -> int:
    """Bring attached files that are missing or damaged back from the backups' copy; returns how many."""
    from fieldkit.store import Store

    with Store(home, codec=codec) as store:
        return store.blobs.restore_from(store.backups.folder / "files")
