"""Shared fixtures: a fresh data folder per test, the register on it, and the CLI as a person runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fieldkit import session
from fieldkit.register import Register

# The run's unlocked sessions (``fieldkit unlock``) live in a session keyring of its own, as a new
# login's would: they never mix with the person's, and end with the run.
session.new_login()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "fieldkit-home"
    monkeypatch.setenv("FIELDKIT_HOME", str(folder))
    # no USB stick plugged into the machine running the tests shows on the sync screen
    monkeypatch.setenv("FIELDKIT_DRIVES_ROOT", str(tmp_path / "no-drives"))
    return folder


@pytest.fixture
def register(home: Path):
    opened = Register.open(home, author="Thandi Mokoena")
    yield opened
    opened.close()


def run_fieldkit(home: Path, *args: str, input_text: str | None = None, timeout: float = 60,
                 extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real command in a fresh process, as a person would type it (``extra``: more environment)."""
    env = {**os.environ, "FIELDKIT_HOME": str(home), **(extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "fieldkit", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input_text,
        timeout=timeout,
    )


@pytest.fixture
def fieldkit(home: Path):
    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return run_fieldkit(home, *args, **kwargs)

    return run


@pytest.fixture
def anyio_backend() -> str:
    """The app's tests run on asyncio, as Textual does."""
    return "asyncio"


@pytest.fixture
def fixed(home: Path, monkeypatch: pytest.MonkeyPatch):
    """A small register with a fixed 'today', for the app's tests (Textual is imported only by them)."""
    from test_app_helpers import fixed_register

    register = fixed_register(home, monkeypatch)
    yield register
    register.close()
