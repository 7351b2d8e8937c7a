"""TLS between the laptops and a real ``fieldkit serve``: a self-signed certificate made on first start and
pinned by each laptop on its first sync, an operator's own certificate, and plain HTTP refused to anything
but this machine unless the facilitator says --insecure."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import run_fieldkit
from fieldkit.server.certificate import CERT_NAME, KEY_NAME, certificate_fingerprint, self_signed
from fieldkit.sync import sync
from sync_fixtures import add_user, capture, free_port, open_laptop, server_states

FINGERPRINT = re.compile(r"fingerprint (SHA256:[0-9A-F:]{95})")


class Serve:
    """``fieldkit serve`` with the given flags; its printed lines are kept."""

    def __init__(self, tmp_path: Path, *flags: str, host: str = "127.0.0.1"):
        self.home = tmp_path / "server-home"
        self.db_url = f"sqlite:///{tmp_path / 'central.sqlite3'}"
        self.port = free_port()
        self.host = host
        self.flags = flags
        self.log = tmp_path / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Serve":
        env = {**os.environ, "FIELDKIT_HOME": str(self.home)}
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fieldkit", "serve", "--db", self.db_url, "--host", self.host, "--port", str(self.port),
                 *self.flags], stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while "Uvicorn running" not in self.printed() and time.monotonic() < deadline:
            assert self.process.poll() is None, self.printed()
            time.sleep(0.1)
        return self

    def printed(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def fingerprints(self) -> list[str]:
        return FINGERPRINT.findall(self.printed())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def servers():
    started: list[Serve] = []
    yield started
    for server in started:
        server.stop()


def this_machines_address() -> str:
    """An address of this machine that is not loopback (the network a regional office serves on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no address but loopback")
    return address


def test_a_self_signed_store_is_pinned_on_first_sync_and_a_new_certificate_stops_the_sync(servers, tmp_path: Path) -> None:
    server = Serve(tmp_path, "--self-signed").start()
    servers.append(server)
    [printed] = server.fingerprints()
    assert (server.home / KEY_NAME).stat().st_mode & 0o077 == 0
    token = add_user(server.db_url, "thandi", "facilitator", ("EC121",))
    url = f"https://127.0.0.1:{server.port}"
    laptop = open_laptop(tmp_path / "laptop")
    capture(laptop, 2, "EC121")
    first = sync(laptop, url, token)
    assert first.finished, first.error
    assert any(printed in notice for notice in first.notices)
    assert laptop.sync_state()["tls_pin"] == printed
    again = sync(laptop)
    assert again.finished and again.notices == []

    server.stop()  # someone else's certificate on the same address
    for name in (CERT_NAME, KEY_NAME):
        (server.home / name).unlink()
    impostor = Serve(tmp_path, "--self-signed")
    impostor.port = server.port
    servers.append(impostor.start())
    [made] = capture(laptop, 1, "EC121")
    laptop.close()
    home = tmp_path / "laptop"
    stopped = run_fieldkit(home, "sync")
    assert stopped.returncode == 1
    assert "shows another certificate" in stopped.stderr and "--forget-certificate" in stopped.stderr
    assert stopped.stderr.count("\n") == 1 and token not in stopped.stderr
    assert made not in server_states(server.db_url)
    trusted = run_fieldkit(home, "sync", "--forget-certificate")
    assert trusted.returncode == 0, trusted.stderr
    assert impostor.fingerprints()[0] in trusted.stdout
    assert made in server_states(server.db_url)


def test_the_operators_own_certificate_is_used(servers, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path / "operator")
    server = Serve(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)).start()
    servers.append(server)
    assert server.fingerprints() == [certificate_fingerprint(cert)]
    token = add_user(server.db_url, "thandi", "facilitator", ("EC121",))
    laptop = open_laptop(tmp_path / "laptop")
    capture(laptop, 1, "EC121")
    result = sync(laptop, f"https://127.0.0.1:{server.port}", token)
    assert result.finished and result.sent == 1
    assert laptop.sync_state()["tls_pin"] == certificate_fingerprint(cert)


def test_a_wrong_certificate_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "cert.pem"
    bad.write_text("not a certificate")
    result = run_fieldkit(tmp_path / "home", "serve", "--port", str(free_port()), "--tls-cert", str(bad), "--tls-key", str(bad))
    assert result.returncode == 1 and result.stderr.startswith("fieldkit: the certificate") and "Traceback" not in result.stderr
    half = run_fieldkit(tmp_path / "home", "serve", "--tls-cert", str(bad))
    assert half.returncode == 1 and "give both --tls-cert and --tls-key" in half.stderr


def test_plain_http_goes_only_to_this_machine_unless_the_facilitator_says_insecure(servers, tmp_path: Path) -> None:
    address = this_machines_address()
    server = Serve(tmp_path, "--insecure", host="0.0.0.0").start()
    servers.append(server)
    assert server.fingerprints() == [] and "on http://0.0.0.0" in server.printed()
    token = add_user(server.db_url, "thandi", "facilitator", ("EC121",))
    laptop = open_laptop(tmp_path / "laptop")
    [issue] = capture(laptop, 1, "EC121")
    url = f"http://{address}:{server.port}"
    refused = sync(laptop, url, token)
    assert not refused.finished and "over plain HTTP" in refused.error and "--insecure" in refused.error
    assert issue not in server_states(server.db_url) and "token" not in laptop.sync_state()
    allowed = sync(laptop, url, token, insecure=True)
    assert allowed.finished and allowed.sent == 1
    assert sync(laptop).finished  # remembered for this store, as the app syncs without flags
    local = open_laptop(tmp_path / "on-the-server")
    assert sync(local, f"http://127.0.0.1:{server.port}", token).finished  # this machine: no flag needed


def test_serving_on_the_network_is_https_unless_told_otherwise(servers, tmp_path: Path) -> None:
    this_machines_address()
    server = Serve(tmp_path, host="0.0.0.0").start()
    servers.append(server)
    assert "on https://0.0.0.0" in server.printed() and len(server.fingerprints()) == 1
