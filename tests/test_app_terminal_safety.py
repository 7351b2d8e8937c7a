"""The app in a real pseudo-terminal, with escape sequences stored in the register: the raw bytes it writes
show them as text and never pass them to the terminal (no new window title, no cleared screen)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

from fieldkit.ids import new_id
from fieldkit.register import Register

HOSTILE_TITLE = "\x1b]0;pwned-by-data\x07\x1b[31mRED-MARK burst main"


def _read_for(fd: int, seconds: float) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _plain(written: bytes) -> str:
    """The text the terminal shows, without Textual's own control sequences."""
    text = re.sub(rb"\x1b\[[0-9;?<>=$]*[A-Za-z~]", b" ", written)
    text = re.sub(rb"\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b.", b"", text)
    return " ".join(text.decode("utf-8", "replace").split())


def test_stored_escapes_are_drawn_as_text_by_the_app(tmp_path: Path) -> None:
    home = tmp_path / "home"
    register = Register.open(home, author="Thandi Mokoena")
    register.save_settings(name="Thandi Mokoena", first_run_done=True, municipalities=["EC121"])
    issue = register.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main", "severity": "critical"})
    register.apply_remote([{  # as it would arrive from a store that took it before it refused such values
        "op_id": new_id(), "type": "issue", "id": issue["id"], "device": "olderlaptop", "author": "Someone",
        "hlc": f"{int(time.time() * 1000) + 1:016d}:0000:olderlaptop", "seen": {},
        "fields": {"title": HOSTILE_TITLE, "needs": ["not a need"], "created_at": "2026-01-05\t10:00:00"},
    }])
    action = register.add_action(issue["id"], "Replace the VALVE-MARK", owner="Plant superintendent", due="2026-01-05")
    register.apply_remote([{
        "op_id": new_id(), "type": "action", "id": action["id"], "device": "olderlaptop", "author": "Someone",
        "hlc": f"{int(time.time() * 1000) + 2:016d}:0000:olderlaptop", "fields": {"due": "5/1/2026"}, "seen": {},
    }])
    register.close()

    pid, fd = pty.fork()
    if pid == 0:  # the child: the app, as a person starts it
        os.environ.update(FIELDKIT_HOME=str(home), TERM="xterm-256color", COLUMNS="120", LINES="36")
        os.execv(sys.executable, [sys.executable, "-m", "fieldkit"])
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
        written = _read_for(fd, 8)  # the dashboard lists the critical issue
        os.write(fd, b"r")  # the register list
        written += _read_for(fd, 4)
        os.write(fd, b"\r")  # the highlighted issue
        written += _read_for(fd, 4)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
    assert b"RED-MARK" in written, written[-2000:]  # the title was drawn...
    shown = _plain(written)
    assert "Traceback" not in shown and "Error" not in shown and "went wrong" not in shown, shown[-3000:]
    assert "VALVE-MARK" in shown  # ...and the issue opened, wrong values that got in and all
    assert b"\x1b]0;pwned-by-data" not in written  # ...but never retitled the window
    assert b"\x1b[31mRED-MARK" not in written
    assert b"pwned-by-data\x07" not in written
