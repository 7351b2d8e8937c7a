"""A facilitator's first day, typed into the real app in a real terminal (tmux), screen by screen.

First start (name, municipalities; no practice register), five issues captured, one
found by search, escalated with a note, a follow-up action added, ``/`` ``d`` ``r`` from
the opened issue (each goes to its view), an issue added with ``fieldkit add`` in another
process showing up without a key press, quit, and a second start that must go straight to
the dashboard with everything still there.

    python scripts/tmux_day.py             # prints each screen as it goes; exits 1 if a step fails
    python scripts/tmux_day.py --keep      # leave the tmux session and the data folder for a look

Needs tmux. Uses a fresh data folder (FIELDKIT_HOME), never your own register.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SESSION = "fieldkit-day"
ROOT = Path(__file__).resolve().parent.parent

ISSUES = [
    # ward, sector typed to search, category downs, title
    ("12", "wat", 2, "Burst pipe flooding the clinic yard"),
    ("12", "san", 1, "Sewage spilling at the school gate"),
    ("3", "ele", 3, "High-mast light out at the taxi rank"),
    ("7", "roa", 1, "Potholes on the road to the hospital"),
    ("9", "ref", 2, "Illegal dumping behind the community hall"),
]


class Terminal:
    def __init__(self, home: Path, width: int, height: int) -> None:
        self.home, self.width, self.height = home, width, height

    def start(self) -> None:
        command = f"cd {shlex.quote(str(ROOT))} && FIELDKIT_HOME={shlex.quote(str(self.home))} {shlex.quote(sys.executable)} -m fieldkit"
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", str(self.width), "-y", str(self.height), command], check=True)

    def keys(self, *keys: str, pause: float = 0.15) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", SESSION, *([ "-l", key[5:]] if key.startswith("text:") else [key])], check=True)
            time.sleep(pause)

    def type(self, text: str) -> None:
        self.keys(f"text:{text}", pause=0.3)

    def screen(self) -> str:
        done = subprocess.run(["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True)
        return done.stdout

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.1)
        print(self.screen())
        raise SystemExit(f"FAILED: waited {timeout:.0f} s for {text!r}")

    def running(self) -> bool:
        return subprocess.run(["tmux", "has-session", "-t", SESSION], capture_output=True).returncode == 0


def show(title: str, screen: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 70 - len(title)))
    print(screen.rstrip())


def day(terminal: Terminal) -> None:
    terminal.start()
    show("first start", terminal.wait_for("Welcome to fieldkit"))
    terminal.type("Thandi Mokoena")
    terminal.keys("Enter")
    terminal.type("mbhashe")
    show("municipality search", terminal.wait_for("EC121 Mbhashe"))
    terminal.keys("Enter", "C-s")
    show("dashboard on the first start", terminal.wait_for("Needs attention", timeout=60))

    for ward, sector, downs, title in ISSUES:
        terminal.keys("n")
        terminal.wait_for("New issue")
        terminal.type("mbhashe")
        terminal.keys("Enter")  # takes Mbhashe and moves on to the ward
        terminal.type(ward)
        terminal.keys("Tab", "Enter")
        terminal.wait_for("Community facilities")  # the sector list is open: a person looks before typing
        terminal.type(sector)
        terminal.keys("Enter", "Tab", "Enter")
        time.sleep(0.5)  # the category list opens
        terminal.keys(*(["Down"] * downs), "Enter", "Tab")
        terminal.type(title)
        terminal.keys("C-s")
        show(f"saved: {title}", terminal.wait_for("Saved EC121", timeout=20))
        terminal.keys("Escape")
        terminal.wait_for("Dashboard")

    terminal.type("/")
    terminal.type("sewage school gate")
    show("search", terminal.wait_for("1 of 5"))
    terminal.keys("Enter", "Enter")
    terminal.wait_for("Follow-up actions")
    terminal.keys("s")
    terminal.wait_for("Change it to")
    terminal.keys("Down", "Down", "C-s")
    show("escalating without a note", terminal.wait_for("Say why when escalating"))
    terminal.keys("Enter")
    terminal.type("No response from the municipality after two visits.")
    terminal.keys("C-s")
    show("escalated", terminal.wait_for("is now escalated"))
    terminal.keys("a")
    terminal.wait_for("Add a follow-up action")
    terminal.type("Meet the technical services manager on site")
    terminal.keys("Enter")
    terminal.type("Technical Services manager")
    terminal.keys("Enter")
    terminal.type("+7")
    terminal.keys("Enter")
    show("action added", terminal.wait_for("Meet the technical services manager on site"))
    terminal.keys("d")
    show("d from the opened issue", terminal.wait_for("Open issues by sector"))
    terminal.keys("r")
    show("r from the dashboard: the register, not the issue opened there", terminal.wait_for("Reference"))
    terminal.keys("Enter")
    terminal.wait_for("Follow-up actions")
    terminal.type("/")
    terminal.type("pothole")
    show("/ from an opened issue searches the register", terminal.wait_for("1 of 5"))
    terminal.keys("Escape", "d")
    terminal.wait_for("open of 5")
    added = subprocess.run([sys.executable, "-m", "fieldkit", "add", "--municipality", "EC121", "--sector", "water",
                            "--title", "Added from another terminal"], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "FIELDKIT_HOME": str(terminal.home)})
    if added.returncode:
        raise SystemExit(f"FAILED: fieldkit add: {added.stderr}")
    show("fieldkit add in another terminal, no key pressed", terminal.wait_for("open of 6", timeout=5))
    terminal.keys("q")
    for _ in range(50):
        if not terminal.running():
            break
        time.sleep(0.1)
    else:
        raise SystemExit("FAILED: q did not quit")

    terminal.start()
    show("second start: straight to the dashboard", terminal.wait_for("Needs attention"))
    if "Welcome to fieldkit" in terminal.screen():
        raise SystemExit("FAILED: the first-run questions came back")
    terminal.type("/")
    terminal.type("sewage school gate")
    terminal.wait_for("1 of 6")
    terminal.keys("Enter", "Enter")
    shown = terminal.wait_for("Escalated: No response from the municipality")
    show("the escalated issue after a restart", shown)
    terminal.keys("q")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the tmux session and the data folder")
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--height", type=int, default=30)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="fieldkit-day-"))
    terminal = Terminal(home, args.width, args.height)
    started = time.monotonic()
    try:
        day(terminal)
    finally:
        if not args.keep:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"\nData folder: {home}; session: tmux attach -t {SESSION}")
    print(f"\nThe whole day took {time.monotonic() - started:.0f} s of typing. All steps passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
