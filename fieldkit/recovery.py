"""Restoring a damaged store from its newest good backup.

A damaged file is never written over: restoring moves the damaged files into
``damaged-<time>/`` beside the store and copies the backup into place, then
checks that the restored store opens.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from fieldkit.store import Store, StoreError


def list_backups(home: Path) -> list[Path]:
    folder = home / "backups"
    if not folder.exists():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True)


def _opens(folder: Path) -> bool:
    """Whether a backup loads completely (every table and its journal read back)."""
    scratch = folder.parent.parent / f".check-{folder.name}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        (scratch / "tables").mkdir(parents=True)
        for file in folder.iterdir():
            target = scratch / ("journal.log" if file.name == "journal.log" else f"tables/{file.name}")
            shutil.copy2(file, target)
        store = Store(scratch)
        try:
            for name in store.storage.table_names():
                store.storage.table(name)
        finally:
            store.close()
        return True
    except StoreError:
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def restore(home: Path, source: str | None = None) -> tuple[Path, Path]:
    """Put the newest good backup (or ``source``) in place; returns it and where the damaged files went."""
    candidates = [Path(source)] if source else list_backups(home)
    if not candidates:
        raise StoreError(f"There are no backups in {home / 'backups'}; a backup is made each time the store is compacted")
    chosen = next((c for c in candidates if c.is_dir() and _opens(c)), None)
    if chosen is None:
        raise StoreError(f"None of the backups in {home / 'backups'} opens; keep the folder and ask for help")
    moved = home / f"damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    moved.mkdir()
    for name in ("tables", "journal.log"):
        if (home / name).exists():
            shutil.move(str(home / name), moved / name)
    (home / "tables").mkdir()
    for file in chosen.iterdir():
        target = home / ("journal.log" if file.name == "journal.log" else f"tables/{file.name}")
        shutil.copy2(file, target)
    store = Store(home)
    store.close()
    return chosen, moved
