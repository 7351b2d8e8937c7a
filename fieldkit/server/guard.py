"""Slow and idle clients: the central store closes them itself, with no proxy in front.

uvicorn closes a connection that sits idle *between* requests (``timeout_keep_alive``) but never
one that sends half a request line and waits: 21,000 of those exhausted the server's file
descriptors and ``/health`` stopped answering. ``guarded_protocol`` is uvicorn's h11 protocol with

- a header deadline: a request's headers must be complete within ``header_timeout`` seconds of its
  first byte (or of the connection opening); dripping bytes does not extend it;
- a body deadline: the whole body within ``body_timeout`` seconds of the headers (generous: a
  2 MB push over a weak link);
- a connection limit: above ``max_connections`` open connections a new one is closed at once, so
  the process never runs out of file descriptors (``raise_file_limit`` makes room for the limit).
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float = 10.0
    body_timeout: float = 120.0
    idle_timeout: float = 15.0
    max_connections: int = 10_000


#: File descriptors kept for the database, logs and the process itself, beyond the connections.
SPARE_FILES = 256


class GuardedProtocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a connection limit."""

    limits = Limits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_body = False
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.abort()  # connection_lost follows and forgets it
            return
        self._arm(self.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._disarm()  # idle until the next request: uvicorn's keep-alive timeout closes it
        self._reading_body = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the deadline for the part of the request now being read; none once it is all in."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._deadline is None:
                self._arm(self.limits.header_timeout)
        elif state is h11.SEND_BODY:
            if not self._reading_body:
                self._reading_body = True
                self._arm(self.limits.body_timeout)
        else:
            self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True  # the app sees the client gone and stops reading
            self.transport.abort()


def guarded_protocol(limits: Limits) -> type[GuardedProtocol]:
    """The protocol class uvicorn is given (``http=``), with these limits."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})


def raise_file_limit(limits: Limits) -> Limits:
    """Raise this process's open-file limit to fit ``max_connections``; lower the limit if the system will not.

    Returns the limits actually in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + SPARE_FILES
    ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < ceiling:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        return Limits(limits.header_timeout, limits.body_timeout, limits.idle_timeout, max(1, soft - SPARE_FILES))
    return limits
