"""Hybrid Logical Clock stamps (Kulkarni et al., 2014).

A stamp is a string that sorts in time order: wall-clock milliseconds, a
counter and the device id, e.g. ``0001764480000000:0000:a1b2c3d4e5f60718``.
Comparing two stamps as strings compares them as clocks, so stamps can be kept
in JSON, SQLite and PostgreSQL alike and still be totally ordered.

The clock never runs backwards on a device even when its wall clock does, and
it moves past every stamp it receives, so an edit made after seeing another
edit always sorts after it — even on a laptop whose clock is a year behind.
The central store refuses operations stamped more than ``MAX_DRIFT_MS`` ahead
of its own clock (a laptop set to 2035), so every stamp a laptop receives has
been vetted and one wrong clock cannot drag everyone's stamps into the future.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

MAX_DRIFT_MS = 24 * 60 * 60 * 1000
ZERO = "0000000000000000:0000:0000000000000000"


@dataclass(frozen=True, slots=True, order=True)
class Stamp:
    ms: int
    counter: int
    device: str

    def __str__(self) -> str:
        return f"{self.ms:016d}:{self.counter:04x}:{self.device}"

    @classmethod
    def parse(cls, text: str) -> "Stamp":
        ms, counter, device = text.split(":")
        if len(ms) != 16 or len(counter) != 4 or not device:
            raise ValueError(f"not a clock stamp: {text!r}")
        return cls(int(ms), int(counter, 16), device)


def wall_ms(stamp: str) -> int:
    """The wall-clock milliseconds inside a stamp."""
    return int(stamp[:16])


def is_stamp(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        Stamp.parse(text)
    except ValueError:
        return False
    return True


class Clock:
    """The clock of one replica. Not thread-safe: the store serialises writes."""

    def __init__(self, device: str, last: str | None = None, now=None):
        self.device = device
        self._now = now or (lambda: int(time.time() * 1000))
        parsed = Stamp.parse(last) if last and last != ZERO else None
        self._ms = parsed.ms if parsed else 0
        self._counter = parsed.counter if parsed else 0

    @property
    def last(self) -> str:
        return str(Stamp(self._ms, self._counter, self.device))

    def tick(self) -> str:
        """A new stamp for a local change."""
        now = self._now()
        if now > self._ms:
            self._ms, self._counter = now, 0
        else:
            self._counter += 1
        if self._counter > 0xFFFF:
            self._ms, self._counter = self._ms + 1, 0
        return self.last

    def receive(self, remote: str) -> None:
        """Move past a stamp seen from another replica, so later local edits sort after it."""
        theirs = Stamp.parse(remote)
        if theirs.ms > self._ms:
            self._ms, self._counter = theirs.ms, theirs.counter
        elif theirs.ms == self._ms and theirs.counter > self._counter:
            self._counter = theirs.counter

    def now_ms(self) -> int:
        """This replica's wall clock, in milliseconds (the one ``tick`` reads)."""
        return self._now()

    def rewind(self, floor: str) -> None:
        """Bring the clock back to the wall clock after it ran ahead, never below ``floor``.

        Only for a clock whose stamps beyond ``floor`` are all being replaced
        (``Register.restamp_ahead``): the next tick is after ``floor`` and after now.
        """
        self._ms, self._counter = 0, 0
        if floor != ZERO:
            self.receive(floor)
