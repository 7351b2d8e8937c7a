"""The practice register: made-up issues to learn the app on, in a folder of its own, never synced.

It lives in ``<data folder>/practice`` and is marked ``practice`` in its own settings; sync
refuses to run from it, so its issues never leave the laptop, and it never mixes with the
real register (which stays exactly as it was). Throwing it away deletes the folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fieldkit import refdata
from fieldkit.register import Register

FOLDER = "practice"
ISSUES = 240
REFUSED = ("this is the practice register: its made-up issues never leave this laptop; "
           "switch back to your own register to sync")
BUNDLES_REFUSED = ("this is the practice register: its made-up issues never leave this laptop, and no bundle comes into it; "
                   "switch back to your own register to write or take in bundles")


def home_of(real_home: Path) -> Path:
    return Path(real_home) / FOLDER


def is_practice(register) -> bool:
    return register.settings().get("practice") is True


def exists(real_home: Path) -> bool:
    return home_of(real_home).is_dir()


def practice_municipalities(codes: list[str]) -> list[str]:
    """Where practice issues go: a district stands for the local municipalities inside it."""
    chosen: list[str] = []
    for code in codes:
        muni = refdata.get(code)
        if muni is None:
            continue
        if muni.category == "C":
            chosen += [m.code for m in refdata.in_district(code) if m.category == "B"]
        else:
            chosen.append(code)
    return chosen


def open_practice(real_home: Path, name: str, municipalities: list[str], issues: int = ISSUES) -> Register:
    """Open the practice register, making it (with its made-up issues) the first time (a few seconds)."""
    register = Register.open(home_of(real_home), author=name or None)
    if is_practice(register):
        return register
    from fieldkit.demo import load_demo

    register.save_settings(name=name, municipalities=municipalities, first_run_done=True, practice=True)
    load_demo(register, issues=issues, municipalities=practice_municipalities(municipalities) or None)
    register.acknowledge([op["op_id"] for op in register.pending_ops()])  # nothing here ever waits to be sent
    return register


def throw_away(real_home: Path) -> None:
    """Delete the practice register's folder (close the register first)."""
    shutil.rmtree(home_of(real_home), ignore_errors=True)
