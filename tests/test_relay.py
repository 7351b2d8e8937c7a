"""A regional store relaying to a national one: real ``fieldkit serve`` processes on loopback.

Laptops sync with the regional office (online or by bundle), another laptop with the national
store; changes go up and come down, keep their author, laptop and time, the national audit trail
shows the relay that carried them, each tier enforces its own scope, and a relay cut from the
national store catches up once it is back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fieldkit import bundle_sync
from fieldkit.server.app import create_app
from fieldkit.server.bundles import apply_bundle
from fieldkit.server.db import Database
from fieldkit.server.relay import Relay
from fieldkit.sync import sync
from sync_fixtures import ServerProcess, ThreadServer, add_user, db_url, device_ops, laptop_states, open_laptop, server_states, wait_healthy  # noqa: F401


class RelayProcess(ServerProcess):
    """``fieldkit serve --upstream`` in a subprocess."""

    def __init__(self, db_url: str, home: Path, upstream: str, token: str):
        super().__init__(db_url, home)
        self.upstream, self.token = upstream, token

    def start(self) -> "RelayProcess":
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FIELDKIT_HOME": str(self.home)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fieldkit", "serve", "--db", self.db_url, "--port", str(self.port),
                 "--upstream", self.upstream, "--token", self.token, "--relay-every", "0.5"],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        wait_healthy(self.url, process=self.process, log=self.log)
        return self


def eventually(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def synced(register, url: str | None = None, token: str | None = None) -> None:
    result = sync(register, server=url, token=token)
    assert result.finished, result.error


def test_a_regional_store_relays_both_ways_keeps_origins_and_catches_up_after_a_cut(db_url: str, tmp_path: Path) -> None:
    national = ServerProcess(db_url, tmp_path / "national").start()
    regional_db = f"sqlite:///{tmp_path / 'regional.sqlite3'}"
    Database(regional_db).migrate()
    relay_token = add_user(db_url, "Eastern Cape office", "coordinator", provinces=("EC",))
    national_token = add_user(db_url, "sipho", "facilitator", ("EC121",))
    thandi_token = add_user(regional_db, "thandi", "facilitator", ("EC121",))
    wide_token = add_user(regional_db, "wide", "facilitator", ("EC121", "CPT"))
    regional = RelayProcess(regional_db, tmp_path / "regional", national.url, relay_token).start()
    thandi = open_laptop(tmp_path / "thandi", "Thandi")
    sipho = open_laptop(tmp_path / "sipho", "Sipho")
    wide = open_laptop(tmp_path / "wide", "Wanda")
    try:
        issue = thandi.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main"})["id"]
        synced(thandi, regional.url, thandi_token)
        eventually(lambda: issue in server_states(db_url), "the issue reached the national store")

        history = httpx.get(f"{national.url}/sync/history/{issue}", headers={"Authorization": f"Bearer {national_token}"}).json()
        assert [(h["user"], h["device"], h["author"]) for h in history] == [("Eastern Cape office", thandi.device_id, "Thandi")]
        assert history[0]["hlc"] == laptop_states(thandi)[issue]["stamps"]["title"]

        # scope at the national tier: the regional store accepts Cape Town from its account, the relay's account may not
        cape = wide.create_issue({"municipality": "CPT", "sector": "roads", "title": "Sinkhole"})["id"]
        synced(wide, regional.url, wide_token)
        assert cape in server_states(regional_db)

        synced(sipho, national.url, national_token)
        assert issue in laptop_states(sipho) and cape not in laptop_states(sipho)
        sipho.edit_issue(issue, {"severity": "critical"})
        synced(sipho)
        eventually(lambda: server_states(regional_db)[issue]["values"].get("severity") == "critical", "the edit came down")
        assert cape not in server_states(db_url)

        # the link to the national store is cut for a while; the office goes on, then catches up
        national.kill()
        thandi.add_note(issue, "Reservoir empty")
        synced(thandi)
        # a laptop without any link: its bundle goes in at the regional office, and up from there
        offline = open_laptop(tmp_path / "offline", "Ayanda")
        regional_database = Database(regional_db)
        regional_database.register_device(regional_database.user_named("thandi"), bundle_sync.public_key(offline), by_operator=True)
        bundle_sync.trust(offline, regional_database.store_key().line())
        by_hand = offline.create_issue({"municipality": "EC121", "sector": "waste", "title": "Dump on fire"})["id"]
        outcome = apply_bundle(regional_database, bundle_sync.make_bundle(offline).data)
        regional_database.close()
        assert outcome.stored == 1
        bundle_sync.take_in(offline, outcome.receipt)
        time.sleep(1.5)
        national.start()
        eventually(lambda: by_hand in server_states(db_url) and len(server_states(db_url)) >= 3, "the office caught up")

        synced(sipho)
        synced(thandi)
        eventually(lambda: all(r in server_states(regional_db) for r in laptop_states(sipho)), "everything came down")
        synced(thandi)
        shared = laptop_states(sipho)
        assert {k: v for k, v in laptop_states(thandi).items() if k in shared} == shared
        assert laptop_states(thandi)[issue]["values"]["severity"] == "critical"
        for device in (thandi.device_id, offline.device_id):
            held = device_ops(db_url, device)
            assert held and len(held) == len(set(held))
        log = regional.log.read_text()
        assert "out of reach" in log and "does not cover CPT" in log
        offline.close()
    finally:
        regional.stop()
        national.stop()
        for laptop in (thandi, sipho, wide):
            laptop.close()


def test_a_relay_sends_everything_again_to_a_national_store_that_was_reset(tmp_path: Path) -> None:
    national_db = Database(f"sqlite:///{tmp_path / 'national.sqlite3'}")
    national = ThreadServer(create_app(national_db))
    regional_db = f"sqlite:///{tmp_path / 'regional.sqlite3'}"
    regional = Database(regional_db)
    regional.migrate()
    relay_token = add_user(national_db.url, "office", "coordinator", provinces=("EC",))
    laptop_token = add_user(regional_db, "thandi", "facilitator", ("EC121",))
    regional_server = ThreadServer(create_app(regional))
    laptop = open_laptop(tmp_path / "thandi", "Thandi")
    try:
        issue = laptop.create_issue({"municipality": "EC121", "sector": "water", "title": "Burst main"})["id"]
        synced(laptop, regional_server.url, laptop_token)
        relay = Relay(regional, national.url, relay_token)
        assert relay.once().error is None and issue in server_states(national_db.url)
        # online, the relay registered its own key, so the office can move changes by bundle when the link is down
        registered = national_db.device(regional.store_key().name)
        assert registered is not None and registered.user_name == "office"
        with national_db.write() as tx:  # the national store loses everything and gets a new identity
            tx.run("DELETE FROM ops")
            tx.run("DELETE FROM records")
        national_db.renew_server_id()
        report = relay.once()
        assert report.error is None and report.sent >= 1
        assert issue in server_states(national_db.url) and len(device_ops(national_db.url, laptop.device_id)) == 1
    finally:
        laptop.close()
        national.stop()
        regional_server.stop()


def test_a_relay_pins_the_national_stores_certificate_and_stops_at_another(tmp_path: Path) -> None:
    from fieldkit.server.certificate import CERT_NAME, KEY_NAME
    from sync_fixtures import issue_op
    from test_tls import Serve

    (tmp_path / "national").mkdir()
    national = Serve(tmp_path / "national", "--self-signed").start()
    url = f"https://127.0.0.1:{national.port}"
    relay_token = add_user(national.db_url, "office", "coordinator", provinces=("EC",))
    regional = Database(f"sqlite:///{tmp_path / 'regional.sqlite3'}")
    regional.migrate()
    add_user(regional.url, "thandi", "facilitator", ("EC121",))
    first, second = issue_op(), issue_op()
    try:
        regional.push(regional.user_named("thandi"), [first])
        report = Relay(regional, url, relay_token).once()
        assert report.error is None and first["id"] in server_states(national.db_url)
        assert regional.setting("relay_tls_pin") == national.fingerprints()[0]

        national.stop()
        for name in (CERT_NAME, KEY_NAME):
            (national.home / name).unlink()
        national.log = tmp_path / "national" / "second-start.log"
        national.start()  # a new certificate: someone else answering at the national store's address
        regional.push(regional.user_named("thandi"), [second])
        report = Relay(regional, url, relay_token).once()
        assert report.error and "shows another certificate" in report.error
        assert second["id"] not in server_states(national.db_url)
    finally:
        national.stop()
        regional.close()


def test_a_relay_will_not_send_its_token_over_plain_http_to_another_machine(tmp_path: Path) -> None:
    env = {**os.environ, "FIELDKIT_HOME": str(tmp_path)}
    for command in (["serve", "--port", "1"], ["server", "relay"]):
        done = subprocess.run([sys.executable, "-m", "fieldkit", *command, "--db", f"sqlite:///{tmp_path / 'r.sqlite3'}",
                               "--upstream", "http://10.1.2.3:8765", "--token", "fk_x"], capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 1 and done.stderr.startswith("fieldkit: refusing to send the relay's token") and "fk_x" not in done.stderr


def test_an_office_without_a_link_moves_its_changes_to_the_national_store_by_bundle(tmp_path: Path) -> None:
    from sync_fixtures import issue_op

    stick, operator = tmp_path / "stick", tmp_path / "operator"
    stick.mkdir()
    national, regional = f"sqlite:///{tmp_path / 'national.sqlite3'}", f"sqlite:///{tmp_path / 'regional.sqlite3'}"

    def fieldkit(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "FIELDKIT_HOME": str(operator)}
        done = subprocess.run([sys.executable, "-m", "fieldkit", *args], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0 or not ok, done.stderr
        return done

    for url in (national, regional):
        Database(url).migrate()
    add_user(national, "Eastern Cape office", "coordinator", provinces=("EC",))
    add_user(national, "sipho", "facilitator", ("EC121",))
    add_user(regional, "thandi", "facilitator", ("EC121",))
    up, down = issue_op(), issue_op()
    Database(regional).push(Database(regional).user_named("thandi"), [up])
    Database(national).push(Database(national).user_named("sipho"), [down])

    early = fieldkit("server", "bundle-out", "--db", regional, "-o", str(stick), ok=False)
    assert early.returncode == 1 and "does not know the national store's key" in early.stderr
    key = fieldkit("server", "key", "--db", regional).stdout.strip()
    trust = fieldkit("user", "add-device", "Eastern Cape office", key, "--db", national).stdout.strip()
    assert trust.startswith("fieldkit server trust fieldkit-store:")
    fieldkit(*trust.split()[1:3], trust.split()[3], "--db", regional)

    out = fieldkit("server", "bundle-out", "--db", regional, "-o", str(stick))
    assert "1 change for the national store" in out.stdout
    (bundle,) = stick.iterdir()
    fieldkit("server", "bundle-in", str(bundle), "--db", national)
    fieldkit("server", "bundle-in", str(bundle), "--db", national)  # twice: stored once
    receipt = next(p for p in stick.iterdir() if ".receipt." in p.name)
    took = fieldkit("server", "bundle-in", str(receipt), "--db", regional)
    assert "1 change acknowledged" in took.stdout

    assert up["id"] in server_states(national) and down["id"] in server_states(regional)
    history = Database(national).history(Database(national).user_named("sipho"), up["id"])
    assert [(h["user"], h["device"], h["author"]) for h in history] == [("Eastern Cape office", up["device"], up["author"])]
    assert len(device_ops(national, up["device"])) == 1
    again = fieldkit("server", "bundle-out", "--db", regional, "-o", str(stick / "second.fkbundle"))
    assert "0 changes for the national store" in again.stdout  # what was acknowledged is not sent again
