"""Removable drives plugged into this laptop (USB sticks): where a bundle is written, and where receipts wait.

Only folder listings: the root looked under, the user, the system and the test
for a mount point are parameters, so a test stands a folder in for the
machine's drives. ``FIELDKIT_DRIVES_ROOT`` does the same for the app (a trial
by hand, the app's tests): fieldkit then looks under that folder instead of
``/`` and counts every folder in the usual places as a plugged-in drive.
"""

from __future__ import annotations

import getpass
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT_VARIABLE = "FIELDKIT_DRIVES_ROOT"

#: Folders under /mnt that are the system's own, not a stick (Windows Subsystem for Linux).
NOT_DRIVES = frozenset({"wsl", "wslg"})


@dataclass(frozen=True)
class Drive:
    """A plugged-in drive: its name (the stick's label) and where it is mounted."""

    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"USB stick {self.name} ({self.path})"


def find(root: Path | None = None, user: str | None = None, system: str = sys.platform,
         is_mount: Callable[[Path], bool] | None = None) -> list[Drive]:
    """The removable drives mounted now, by name.

    Linux: the folders in /media/USER, /run/media/USER, /media and /mnt that are mount points
    (desktops mount sticks there); macOS: /Volumes; Windows: the drive letters of removable drives.
    """
    if system == "win32" and root is None:
        return _windows_drives()
    root = root or Path("/")
    mounted = is_mount or (lambda path: os.path.ismount(path))
    user = user or _user()
    if system == "darwin":
        places = [root / "Volumes"]
    else:
        places = [root / "media" / user, root / "run" / "media" / user, root / "media", root / "mnt"]
    found: dict[Path, Drive] = {}
    for place in places:
        try:
            entries = sorted(place.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.name in NOT_DRIVES or entry.is_symlink():
                continue
            if place == root / "media" and entry.name == user:
                continue  # the folder the desktop mounts this user's sticks in, not a stick
            if entry.is_dir() and mounted(entry):
                found.setdefault(entry, Drive(entry.name, entry))
    return sorted(found.values(), key=lambda drive: (drive.name.lower(), str(drive.path)))


def plugged_in() -> list[Drive]:
    """The drives the app offers: under ``$FIELDKIT_DRIVES_ROOT`` when set (every folder counts), else the machine's."""
    root = os.environ.get(ROOT_VARIABLE)
    if root:
        return find(Path(root), is_mount=lambda path: True)
    return find()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


def _windows_drives() -> list[Drive]:
    """Drive letters Windows calls removable (USB sticks, card readers)."""
    import ctypes
    import string

    removable = 2  # DRIVE_REMOVABLE
    kernel = ctypes.windll.kernel32  # type: ignore[attr-defined]
    letters = kernel.GetLogicalDrives()
    found = []
    for index, letter in enumerate(string.ascii_uppercase):
        if letters & (1 << index) and kernel.GetDriveTypeW(f"{letter}:\\") == removable:
            found.append(Drive(f"{letter}:", Path(f"{letter}:\\")))
    return found
