"""Unlocking an encrypted register for a login, as a facilitator meets it: `fieldkit unlock`, `fieldkit lock`.

Every command runs in a fresh process, as typed in a terminal. The run's sessions live in a
session keyring of its own (see conftest.py), so they never mix with the person's.
"""

from __future__ import annotations

import base64
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fieldkit import session

PASSPHRASE = "blue reservoir at dawn"
TITLE = "Burst main outside Zwelitsha clinic"

pytestmark = pytest.mark.skipif(not session.available(), reason="this system keeps no unlocked sessions (no kernel keyring)")


def run(home: Path, *args: str, passphrase: str | None = None, extra: dict[str, str] | None = None,
        new_login: bool = False) -> subprocess.CompletedProcess:
    """``fieldkit ARGS`` in a fresh process; ``new_login``: as from another login on this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_PASSPHRASE")}
    env.update(FIELDKIT_HOME=str(home), FIELDKIT_STATE=str(home.parent / "state"))
    if passphrase is not None:
        env["FIELDKIT_PASSPHRASE"] = passphrase
    env.update(extra or {})
    command = [sys.executable, "-m", "fieldkit", *args]
    if new_login:
        command = [sys.executable, "-c", "import sys; from fieldkit import session, cli; session.new_login(); "
                   "sys.exit(cli.main(sys.argv[1:]))", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, done.stderr
    return done


def locked(done: subprocess.CompletedProcess) -> bool:
    return done.returncode == 1 and done.stdout == "" and "FIELDKIT_PASSPHRASE" in done.stderr


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    home = tmp_path / "laptop"
    ok(run(home, "add", "--municipality", "EC121", "--sector", "water", "--title", TITLE))
    ok(run(home, "encrypt", passphrase=PASSPHRASE))
    yield home
    run(home, "lock")


def test_unlocking_once_lets_the_next_commands_run_without_the_passphrase_until_locked(laptop: Path) -> None:
    assert locked(run(laptop, "find", "zwelitsha"))
    unlocked = ok(run(laptop, "unlock", passphrase=PASSPHRASE))
    assert unlocked.stdout.startswith("unlocked for this login until ") and "fieldkit lock" in unlocked.stdout
    assert TITLE in ok(run(laptop, "find", "zwelitsha")).stdout  # a new process, no passphrase
    ok(run(laptop, "add", "--municipality", "EC121", "--sector", "roads", "--title", "Pothole at Zwelitsha taxi rank"))
    assert "Pothole at Zwelitsha" in ok(run(laptop, "find", "zwelitsha")).stdout
    assert ok(run(laptop, "lock")).stdout == "locked: the next command asks for the passphrase\n"
    assert locked(run(laptop, "find", "zwelitsha"))
    assert ok(run(laptop, "lock")).stdout == "it was not unlocked for this login\n"


def test_a_wrong_passphrase_unlocks_nothing(laptop: Path) -> None:
    wrong = run(laptop, "unlock", passphrase="not the passphrase")
    assert wrong.returncode == 1 and "does not open this register" in wrong.stderr
    assert locked(run(laptop, "find", "zwelitsha"))


def test_a_session_ends_by_itself_when_its_time_is_up(laptop: Path) -> None:
    ok(run(laptop, "unlock", "--for", "2s", passphrase=PASSPHRASE))
    assert TITLE in ok(run(laptop, "find", "zwelitsha")).stdout
    time.sleep(3)
    assert locked(run(laptop, "find", "zwelitsha"))
    too_long = run(laptop, "unlock", "--for", "30h", passphrase=PASSPHRASE)
    assert too_long.returncode == 2 and "between 1s and 24h" in too_long.stderr


def test_the_key_is_never_in_the_data_folder_and_a_copied_folder_stays_locked(laptop: Path, tmp_path: Path) -> None:
    ok(run(laptop, "unlock", passphrase=PASSPHRASE))
    ok(run(laptop, "add", "--municipality", "EC121", "--sector", "roads", "--title", "Pothole on the R63"))
    key = session.kept(laptop)  # this test runs in the same login as the commands above
    assert key is not None and len(key) == 32
    forms = [key, key.hex().encode(), base64.b64encode(key), base64.b32encode(key), base64.urlsafe_b64encode(key)]
    for folder in (laptop, tmp_path / "state"):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(form in data for form in forms), f"the register's key is in {path}"
    thief = tmp_path / "stolen" / "laptop"
    shutil.copytree(laptop, thief)
    assert locked(run(thief, "find", "zwelitsha"))  # the session is this folder's, here
    assert locked(run(laptop, "find", "zwelitsha", new_login=True))  # and this login's only
    assert TITLE in ok(run(thief, "find", "zwelitsha", passphrase=PASSPHRASE)).stdout


def test_changing_the_passphrase_or_turning_encryption_off_ends_the_session(laptop: Path) -> None:
    ok(run(laptop, "unlock", passphrase=PASSPHRASE))
    ok(run(laptop, "encrypt", "--change-passphrase", extra={"FIELDKIT_NEW_PASSPHRASE": "green hills of Keiskamma"}))
    assert locked(run(laptop, "find", "zwelitsha"))
    ok(run(laptop, "unlock", passphrase="green hills of Keiskamma"))
    ok(run(laptop, "decrypt"))
    assert session.kept(laptop) is None
    ok(run(laptop, "encrypt", passphrase=PASSPHRASE))  # a new key: no session carries over
    assert locked(run(laptop, "find", "zwelitsha"))
    plain = run(laptop.parent / "plain", "unlock", passphrase=PASSPHRASE)
    assert plain.returncode == 1 and "not encrypted" in plain.stderr and len(plain.stderr.splitlines()) == 1


def test_a_passphrase_typed_at_the_terminal_unlocks_this_login(laptop: Path) -> None:
    """As `sudo` does: typed once at a command's prompt, not asked again by the next command."""
    main, child = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDKIT_PASSPHRASE")}
    env.update(FIELDKIT_HOME=str(laptop), FIELDKIT_STATE=str(laptop.parent / "state"))
    started = subprocess.Popen([sys.executable, "-m", "fieldkit", "find", "zwelitsha"], stdin=child,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    os.close(child)
    asked = b""
    deadline = time.monotonic() + 60
    while b"Passphrase" not in asked and time.monotonic() < deadline:
        ready, _, _ = select.select([started.stderr], [], [], 1)
        if ready:
            asked += os.read(started.stderr.fileno(), 1024)
    assert b"Passphrase for the fieldkit register" in asked
    os.write(main, (PASSPHRASE + "\n").encode())
    out, err = started.communicate(timeout=60)
    os.close(main)
    assert started.returncode == 0 and TITLE in out.decode()
    assert "unlocked for this login until" in (asked + err).decode()
    assert TITLE in ok(run(laptop, "find", "zwelitsha")).stdout
