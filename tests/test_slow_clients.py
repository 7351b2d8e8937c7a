"""Slow and idle clients against a real ``fieldkit serve`` on loopback: thousands of connections that send
half a request line and wait, bytes dripped one at a time, idle keep-alive connections, more connections
than the limit. The store keeps answering ``/health`` within a second and closes them itself."""

from __future__ import annotations

import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sync_fixtures import free_port, wait_healthy

HALF_REQUEST = b"GET /health HTTP/1.1\r\nHost: central\r\nX-Slow: "


@pytest.fixture
def start_server(tmp_path: Path):
    started: list[subprocess.Popen] = []

    def start(*flags: str) -> str:
        port = free_port()
        log = tmp_path / f"serve-{port}.log"
        env = {**os.environ, "FIELDKIT_HOME": str(tmp_path / "home")}
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "fieldkit", "serve", "--db", f"sqlite:///{tmp_path / 'central.sqlite3'}",
                 "--port", str(port), *flags], stdout=out, stderr=subprocess.STDOUT, env=env)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process=process, log=log)
        return url

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def room_for(count: int) -> None:
    """Raise this test process's open-file limit to hold ``count`` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 512
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"the open-file limit ({hard}) cannot hold {count} sockets")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def open_slow(url: str, count: int, first_bytes: bytes = HALF_REQUEST) -> list[socket.socket]:
    port = int(url.rsplit(":", 1)[1])
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            sock.sendall(first_bytes)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def wait_closed(sockets: list[socket.socket], within: float) -> tuple[int, float]:
    """Wait until the server has closed every socket (EOF or reset); returns (still open, seconds taken)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    start = time.monotonic()
    remaining = len(sockets)
    while remaining and time.monotonic() - start < within:
        for key, _ in selector.select(timeout=0.5):
            try:
                data = key.fileobj.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                remaining -= 1
    selector.close()
    for sock in sockets:
        sock.close()
    return remaining, time.monotonic() - start


def health_times(url: str, rounds: int = 5) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.monotonic()
        with httpx.Client(timeout=5) as client:  # a new connection each time, as a monitor makes
            assert client.get(f"{url}/health").status_code == 200
        times.append(time.monotonic() - start)
        time.sleep(0.1)
    return times


def _held_open_while_health_answers(start_server, count: int) -> None:
    room_for(count)
    url = start_server("--header-timeout", "6")
    sockets = open_slow(url, count)
    try:
        times = health_times(url)
        assert max(times) < 1.0, times
    finally:
        still_open, took = wait_closed(sockets, within=30)
    assert still_open == 0, f"{still_open} of {count} slow connections still open after {took:.1f} s"
    assert took < 20
    assert max(health_times(url, 2)) < 1.0


def test_half_open_requests_are_closed_and_health_keeps_answering(start_server) -> None:
    _held_open_while_health_answers(start_server, 1000)


@pytest.mark.slow
def test_five_thousand_slow_connections(start_server) -> None:
    _held_open_while_health_answers(start_server, 5000)


def test_dripping_a_byte_at_a_time_does_not_extend_the_deadline(start_server) -> None:
    url = start_server("--header-timeout", "2")
    [sock] = open_slow(url, 1, b"G")
    start = time.monotonic()
    closed = False
    try:
        for byte in b"ET /health HTTP/1.1\r\nHost: central\r\nX-Slow: " + b"a" * 200:
            time.sleep(0.25)
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if time.monotonic() - start > 8:
                break
    finally:
        still_open, _ = wait_closed([sock], within=5)
    assert closed or still_open == 0
    assert time.monotonic() - start < 10


def test_an_idle_connection_is_closed_after_the_idle_timeout(start_server) -> None:
    url = start_server("--idle-timeout", "2")
    [sock] = open_slow(url, 1, b"GET /health HTTP/1.1\r\nHost: central\r\n\r\n")
    still_open, took = wait_closed([sock], within=10)  # reads the answer, then waits for the close
    assert still_open == 0 and 1.5 < took < 6


def test_connections_over_the_limit_are_closed_at_once_and_the_store_recovers(start_server) -> None:
    url = start_server("--max-connections", "200", "--header-timeout", "3")
    sockets = open_slow(url, 300)
    still_open, _ = wait_closed(sockets[200:], within=3)
    assert still_open == 0  # the hundred over the limit were closed straight away
    remaining, took = wait_closed(sockets[:200], within=15)
    assert remaining == 0
    assert max(health_times(url, 2)) < 1.0
