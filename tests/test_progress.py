"""Long runs show progress on a terminal, and nothing at all when their output goes to a pipe or a file."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from conftest import run_fieldkit


def _on_terminal(home: Path, *args: str) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its stdout and stderr, as a person at a laptop would; the raw bytes."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "fieldkit", *args], stdin=slave, stdout=slave, stderr=slave,
                               env={**os.environ, "FIELDKIT_HOME": str(home), "COLUMNS": "100"})
    os.close(slave)
    written = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the command closed the terminal
                break
            if not chunk:
                break
            written += chunk
        elif process.poll() is not None:
            break
    os.close(master)
    return process.wait(30), written.decode("utf-8", "replace")


def test_demo_export_and_import_show_progress_on_a_terminal(tmp_path):
    home = tmp_path / "home"
    code, shown = _on_terminal(home, "demo", "--issues", "1500")
    assert code == 0 and "Loading a demo of 1,500 issues" in shown and "1500/1500" in shown
    book = tmp_path / "register.xlsx"
    code, shown = _on_terminal(home, "export", "--format", "xlsx", "-o", str(book))
    assert code == 0 and "Writing XLSX" in shown and "/" in shown.split("Writing XLSX", 1)[1]
    code, shown = _on_terminal(tmp_path / "other", "import", str(book))
    assert code == 0 and "Reading 1,500 rows" in shown and "Writing" in shown


def test_nothing_but_the_result_when_piped(tmp_path):
    home = tmp_path / "home"
    demo = run_fieldkit(home, "demo", "--issues", "1500")
    assert demo.returncode == 0 and demo.stderr == "" and "\x1b" not in demo.stdout
    book = tmp_path / "register.xlsx"
    export = run_fieldkit(home, "export", "--format", "xlsx", "-o", str(book))
    assert export.stderr == f"wrote {book}\n"
    imported = run_fieldkit(tmp_path / "other", "import", str(book))
    assert "\x1b" not in imported.stderr + imported.stdout and "Reading" not in imported.stderr
