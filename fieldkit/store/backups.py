"""Backups of the register: independent, complete, verified copies, numbered in order.

A backup is made with SQLite's online backup API (a real copy, never a link to
the live file), checked (SQLite's own structure check and every row's
checksum) and compressed before it gets its name; until then it is an
``.incomplete-`` file that nothing ever restores and the next open removes.
Backups are numbered (``backup-000042.sqlite.gz``), not named by the clock, so
a clock set back cannot make a new backup look old. gzip's own CRC makes a
damaged backup fail its check on restore.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

from fieldkit.store.database import FILE_NAME, StoreError, checksum
from fieldkit.store.files import fsync_dir

KEEP = 3
NAME = re.compile(r"^backup-(\d{6,})\.sqlite\.gz$")
CHUNK = 1024 * 1024


class Backups:
    def __init__(self, home: Path):
        self.home = home
        self.folder = home / "backups"

    def list(self) -> list[Path]:
        """Complete backups, newest first."""
        if not self.folder.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := NAME.match(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def newest(self) -> Path | None:
        found = self.list()
        return found[0] if found else None

    def _next_number(self) -> int:
        newest = self.newest()
        return int(NAME.match(newest.name).group(1)) + 1 if newest else 1  # type: ignore[union-attr]

    def clean_leftovers(self) -> None:
        """Remove what a backup or a save killed half-way left behind."""
        for folder in (self.folder, self.home):
            if not folder.is_dir():
                continue
            for leftover in folder.iterdir():
                if leftover.name.startswith(".incomplete-") or (leftover.name.startswith(".") and leftover.name.endswith(".tmp")):
                    leftover.unlink(missing_ok=True)

    def make(self, database: Path) -> Path:
        """Copy, check and compress the register into the next numbered backup; keep the newest few."""
        self.folder.mkdir(exist_ok=True, mode=0o700)
        number = self._next_number()
        copy = self.folder / f".incomplete-{os.getpid()}-{number}.sqlite"
        packed = self.folder / f".incomplete-{os.getpid()}-{number}.sqlite.gz"
        final = self.folder / f"backup-{number:06d}.sqlite.gz"
        try:
            # A connection of its own: the copy is one read of the file, and never waits on (or holds up)
            # the statements of the register's own connection in another thread.
            source = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
            target = sqlite3.connect(copy)
            try:
                source.execute("PRAGMA busy_timeout = 15000")
                source.backup(target)
            finally:
                target.close()
                source.close()
            problem = verify_database(copy)
            if problem:
                raise StoreError(f"The backup could not be checked ({problem}); the register was not changed. Run `fieldkit check`.")
            with open(copy, "rb") as source, open(packed, "wb") as raw:
                with gzip.GzipFile(filename=FILE_NAME, mode="wb", fileobj=raw, compresslevel=6, mtime=0) as out:
                    shutil.copyfileobj(source, out, CHUNK)
                raw.flush()
                os.fsync(raw.fileno())
            os.chmod(packed, 0o600)
            os.replace(packed, final)
            fsync_dir(self.folder)
        except (OSError, sqlite3.Error) as err:
            why = err.strerror if isinstance(err, OSError) else str(err)  # SQLite says "disk I/O error" for a full disk
            raise StoreError(
                f"Could not write a backup in {self.folder}: {why}. "
                "Free some space there and try again; the register itself was not changed."
            ) from None
        finally:
            copy.unlink(missing_ok=True)
            packed.unlink(missing_ok=True)
        for old in self.list()[KEEP:]:
            old.unlink(missing_ok=True)
        return final

    def make_elsewhere(self, database: Path) -> Path:
        """``make`` in a process of its own: the app's daily backup of a province's register reads and checks
        every row, which in the app's process would hold the interpreter away from the interface for seconds
        and leave its memory behind. The copy is of the stored bytes, so no key is needed for a sealed register."""
        done = subprocess.run([sys.executable, "-m", "fieldkit.store.backups", str(database)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            said = done.stderr.strip().splitlines()
            raise StoreError(said[-1] if said else f"The backup process stopped (exit {done.returncode}); run `fieldkit backup`")
        return Path(done.stdout.strip())

    def unpack(self, backup: Path, target: Path) -> str | None:
        """Write a backup out as a database file and check it: None when it is sound, else what is wrong."""
        try:
            with gzip.open(backup, "rb") as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, EOFError, zlib.error) as err:
            return f"it does not unpack: {err}"
        return verify_database(target)


def verify_database(path: Path) -> str | None:
    """Whether a register file is whole: SQLite's structure check and every row's checksum."""
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:
        return str(err)
    try:
        if conn.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
            return "its structure check failed"
        for kind, record_id, doc, merge, crc in conn.execute("SELECT kind, id, doc, merge, crc FROM record"):
            if checksum(doc, merge) != crc:
                return f"{kind} {record_id} does not match its checksum"
        for record_id, line, words, crc in conn.execute("SELECT id, line, words, crc FROM issue_line"):
            if checksum(line, words) != crc:
                return f"the lookup line of {record_id} does not match its checksum"
        for op_id, op, crc in conn.execute("SELECT op_id, op, crc FROM outbox"):
            if checksum(op) != crc:
                return f"the unsent change {op_id} does not match its checksum"
    except sqlite3.Error as err:
        return str(err)
    finally:
        conn.close()
    return None


def main(argv: list[str]) -> int:
    """``python -m fieldkit.store.backups REGISTER_FILE``: one backup, its path on stdout (see ``make_elsewhere``)."""
    database = Path(argv[0])
    try:
        print(Backups(database.parent).make(database))
    except StoreError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
