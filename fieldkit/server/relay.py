"""A regional central store that relays to a national one (``fieldkit serve --upstream URL --token T``).

The regional store serves its laptops as any store does. Whenever its link is up
it sends up the changes its laptops brought (online or by bundle) and takes down
the changes in its account's area, speaking the same sync protocol a laptop does.
Operations travel unchanged, so each keeps its original author, laptop and time;
at the national store they are recorded under the relay's account, so the audit
trail shows which relay carried each one. Scope is enforced at every tier: the
regional store judges its laptops' accounts, the national one the relay's account.

Progress is kept in the regional database (``meta``): the last regional sequence
sent up, and the national store's identity and the cursor pulled after. Every step
is idempotent, so a link cut at any moment costs at most one batch again. A national store
restored or reset (a new server id) is pulled from the start again and sent again every change
this office's laptops ever brought; already-stored ones are acknowledged, not stored twice.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson

from fieldkit import bundles
from fieldkit.bundles import STORE_KEY, BundleError, PublicKey
from fieldkit.protocol import PULL_PAGE, PUSH_OPS
from fieldkit.server.accounts import User
from fieldkit.server.db import Database

log = logging.getLogger("fieldkit.server.relay")

#: The account name changes from the national store are recorded under here (no real account can have it).
NATIONAL = "@national"
UP_KEY = "relay_up_seq"
DOWN_KEY = "relay_down"
WAITING_KEY = "relay_waiting"
DOWN_WAITING_KEY = "relay_down_waiting"
PIN_KEY = "relay_tls_pin"
NATIONAL_KEY = "relay_national_key"


def upstream_address(url: str, insecure: bool) -> tuple[str, str | None]:
    """The national store's address, and why not to use it: plain HTTP off this machine would show the token."""
    from fieldkit.tls import host_and_port, is_loopback
    from fieldkit.transport import normalise_server

    address = normalise_server(url)
    if address.startswith("http://") and not (is_loopback(host_and_port(address)[0]) or insecure):
        return address, (f"refusing to send the relay's token to {address} over plain HTTP: use https://, "
                         "or --insecure on a network you trust")
    return address, None


@dataclass
class RelayReport:
    sent: int = 0
    received: int = 0
    refused: list[str] = field(default_factory=list)
    waiting: int = 0
    error: str | None = None


class Relay:
    """Sends this store's laptops' changes up to a national store and brings the changes in its area down."""

    def __init__(self, database: Database, upstream: str, token: str, transport: Any = None):
        self.database = database
        self.upstream = upstream
        self.token = token
        self.transport = transport
        self.national = User(NATIONAL, "admin")

    def once(self) -> RelayReport:
        """One exchange with the national store; network trouble is reported, never raised."""
        from fieldkit.transport import SyncError, Transport

        report = RelayReport()
        verify = self._verify(report)
        if report.error:
            return report
        try:
            with Transport(self.upstream, self.token, transport=self.transport, retries=2, verify=verify) as client:
                info = client.info(retries=1)
                known = orjson.loads(self.database.setting(DOWN_KEY) or "{}").get("server_id")
                if known and known != info.server_id:  # the national store was reset or restored: send all again
                    self.database.save_setting(UP_KEY, "0")
                    self.database.save_setting(WAITING_KEY, "[]")
                # down first: a first exchange takes a snapshot before this store's changes are up there,
                # so they do not come back down as copies; later, what went up comes back as already stored
                self._down(client, info.server_id, report)
                self._up(client, report)
                self._introduce(client, info.server_id)
        except SyncError as err:
            report.error = str(err)
        return report

    def _verify(self, report: RelayReport) -> Any:
        """How to trust the national store over https: an authority, or its certificate pinned on first contact."""
        from fieldkit import tls

        if not self.upstream.startswith("https://"):
            return True
        pin = self.database.setting(PIN_KEY) or None
        try:
            trust = tls.trust_for(self.upstream, pin)
        except tls.CertificateChanged as err:
            report.error = (f"the national store at {self.upstream} shows another certificate ({err}) than the one this relay "
                            f"trusted ({pin}); nothing was sent. If its operator replaced it, check the new fingerprint, then "
                            f"clear the old one (`fieldkit server relay --forget-certificate`)")
            return True
        except OSError as err:
            report.error = f"cannot reach {self.upstream} over TLS: {str(getattr(err, 'reason', None) or err.strerror or err).lower()}"
            return True
        if trust.new_pin and trust.pin:
            self.database.save_setting(PIN_KEY, trust.pin)
            log.warning("trusted the national store's certificate on first contact: %s; check it with its operator", trust.pin)
        return trust.verify

    def _up(self, client: Any, report: RelayReport) -> None:
        """New changes in order, then the ones the national store deferred before (their record may be there now)."""
        sent_upto = int(self.database.setting(UP_KEY) or 0)
        waiting: list[dict[str, Any]] = orjson.loads(self.database.setting(WAITING_KEY) or "[]")
        while True:
            rows = self.database.changes_after(sent_upto, PUSH_OPS, NATIONAL)
            if not rows:
                break
            waiting += self._send(client, [op for _, op in rows], report)
            sent_upto = rows[-1][0]
            self.database.save_setting(WAITING_KEY, orjson.dumps(waiting).decode())
            self.database.save_setting(UP_KEY, str(sent_upto))
        if waiting:
            retry, waiting = waiting, []
            for start in range(0, len(retry), PUSH_OPS):
                waiting += self._send(client, retry[start:start + PUSH_OPS], report)
            self.database.save_setting(WAITING_KEY, orjson.dumps(waiting).decode())
        report.waiting = len(waiting)

    def _send(self, client: Any, ops: list[dict[str, Any]], report: RelayReport) -> list[dict[str, Any]]:
        """Push a batch; the operations the national store deferred come back."""
        reply = client.push(ops)
        for verdict in reply.rejected:
            report.refused.append(f"{verdict.op_id}: {verdict.reason}")
            log.warning("the national store refused change %s: %s", verdict.op_id, verdict.reason)
        report.sent += len(reply.acknowledged)
        deferred = {verdict.op_id for verdict in reply.deferred}
        return [op for op in ops if op["op_id"] in deferred]

    def _down(self, client: Any, server_id: str, report: RelayReport) -> None:
        state = orjson.loads(self.database.setting(DOWN_KEY) or "{}")
        if state.get("server_id") != server_id:
            state = {"server_id": server_id, "cursor": 0}
        if not state["cursor"]:
            after_id, upto = "", None
            while True:
                page = client.snapshot(after_id, PULL_PAGE)
                upto = page.upto if upto is None else upto
                self._take(page.ops, report)
                after_id = page.next_id
                if not page.more:
                    break
            state["cursor"] = upto
            self.database.save_setting(DOWN_KEY, orjson.dumps(state).decode())
        while True:
            page = client.pull(state["cursor"], PULL_PAGE)
            self._take(page.ops, report)
            state["cursor"] = page.next
            self.database.save_setting(DOWN_KEY, orjson.dumps(state).decode())
            if not page.more:
                return

    def _take(self, ops: list[dict[str, Any]], report: RelayReport) -> None:
        take_down(self.database, ops, report)

    def _introduce(self, client: Any, server_id: str) -> None:
        """Register this store's own key with the relay's account up there, and learn the national store's,
        so the office can still move changes by bundle when the link is down for long."""
        from fieldkit.transport import ServerError

        known = orjson.loads(self.database.setting(NATIONAL_KEY) or "{}")
        if known.get("registered") == server_id:
            return
        try:
            line = client.register_device(self.database.store_key().line())
        except ServerError as err:
            log.warning("the national store does not take this store's bundle key: %s", err)
            return
        self.database.save_setting(NATIONAL_KEY, orjson.dumps({"key": line, "registered": server_id}).decode())


def take_down(database: Database, ops: list[dict[str, Any]], report: RelayReport) -> None:
    """Apply what came down; a change deferred for a record later in the same page (a snapshot writes an
    issue's states oldest first, so a moved issue's first state names no municipality) is tried again."""
    waiting: list[dict[str, Any]] = orjson.loads(database.setting(DOWN_WAITING_KEY) or "[]")
    pending = waiting + ops
    if not pending:
        return
    deferred, stored = retry_deferred(database, User(NATIONAL, "admin"), pending)
    report.received += stored
    if deferred or waiting:
        database.save_setting(DOWN_WAITING_KEY, orjson.dumps(deferred).decode())


def retry_deferred(database: Database, user: User, ops: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Push ``ops``, then the deferred ones again while that gets more of them in; returns those still deferred
    and how many were stored."""
    stored = 0
    while ops:
        reply = database.push(user, ops)
        stored += reply["last_seq"] - reply["first_seq"] + 1 if reply["first_seq"] is not None else 0
        for verdict in reply["rejected"]:
            log.warning("a change from the national store could not be applied here: %s", verdict["reason"])
        waiting = {verdict["op_id"] for verdict in reply["deferred"]}
        if len(waiting) == len(ops):
            break
        ops = [op for op in ops if op["op_id"] in waiting]
    return ops, stored


def run_forever(relay: Relay, every: float, stop: threading.Event) -> None:
    """Exchange with the national store every ``every`` seconds until ``stop`` is set; say what happened."""
    last_error = None
    while not stop.is_set():
        report = relay.once()
        if report.error:
            if report.error != last_error:
                log.warning("the national store is out of reach (%s); trying again every %g s", report.error, every)
            last_error = report.error
        else:
            if last_error or report.sent or report.received:
                log.warning("relayed with %s: sent %d change(s) up, brought %d down", relay.upstream, report.sent, report.received)
            last_error = None
        stop.wait(every)


# -- an office without a link: bundles between the regional and the national store ------------------


def trust_national(database: Database, line: str) -> PublicKey:
    """Remember the national store's key (printed by `fieldkit user add-device` there) for bundles."""
    key = PublicKey.parse(line)
    if key.kind != STORE_KEY:
        raise BundleError("that is a laptop's key; give the line the national store printed (`fieldkit server trust …`)")
    known = orjson.loads(database.setting(NATIONAL_KEY) or "{}")
    database.save_setting(NATIONAL_KEY, orjson.dumps({**known, "key": key.line()}).decode())
    return key


def _national_key(database: Database) -> PublicKey:
    known = orjson.loads(database.setting(NATIONAL_KEY) or "{}")
    if not known.get("key"):
        raise BundleError("this store does not know the national store's key: relay online once (`fieldkit serve --upstream`), "
                          "or register it there (`fieldkit server key` here, `fieldkit user add-device ACCOUNT KEY` there) "
                          "and run the `fieldkit server trust` line it prints")
    return PublicKey.parse(known["key"])


def bundle_for_national(database: Database) -> tuple[bytes, int]:
    """The changes this store's laptops brought and the national store has not acknowledged, sealed for it."""
    national = _national_key(database)
    keys = database.bundle_keys()
    own = database.store_key()
    sent_upto = int(database.setting(UP_KEY) or 0)
    ops: list[dict[str, Any]] = orjson.loads(database.setting(WAITING_KEY) or "[]")
    upto = sent_upto
    while True:
        rows = database.changes_after(upto, 5000, NATIONAL)
        if not rows:
            break
        ops += [op for _, op in rows]
        upto = rows[-1][0]
    down = orjson.loads(database.setting(DOWN_KEY) or "{}")
    payload = {"device": own.name, "author": f"the regional store {own.name}", "made_at": bundles.now_iso(),
               "server_id": down.get("server_id"), "cursor": down.get("cursor", 0), "upto": upto, "ops": ops}
    return bundles.seal(bundles.CHANGES, own.name, keys, [national.box, own.box], payload, payload["made_at"]), len(ops)


def take_national_receipt(database: Database, sealed: bundles.Sealed) -> RelayReport:
    """The national store's receipt for this store's bundle: acknowledgements, and the changes due here."""
    national = _national_key(database)
    if national.sign != sealed.signer:
        raise BundleError("refused: this receipt was not signed by the national store this one knows; nothing was applied")
    own = database.store_key()
    payload = sealed.open(database.bundle_keys().box, "this central store")
    if payload.get("device") != own.name:
        raise BundleError(f"this receipt is for {payload.get('device')}, not for this store; nothing was applied")
    report = RelayReport(sent=len(payload.get("acknowledged") or []))
    report.refused = [f"{op_id}: {reason}" for op_id, reason in (payload.get("rejected") or {}).items()]
    down = orjson.loads(database.setting(DOWN_KEY) or "{}")
    if payload.get("start_over") and down.get("server_id") != payload.get("server_id"):
        database.save_setting(UP_KEY, "0")  # the national store was reset: everything goes again next time
        database.save_setting(WAITING_KEY, "[]")
        down = {"server_id": payload.get("server_id"), "cursor": 0}
    acknowledged = set(payload.get("acknowledged") or [])
    deferred = list((payload.get("deferred") or {}).keys())
    waiting = [op for op in orjson.loads(database.setting(WAITING_KEY) or "[]") if op["op_id"] not in acknowledged]
    held = {op["op_id"] for op in waiting}
    waiting += [op for op in database.ops_by_id(deferred) if op["op_id"] not in held]
    database.save_setting(WAITING_KEY, orjson.dumps(waiting).decode())
    report.waiting = len(waiting)
    if isinstance(payload.get("bundle_upto"), int) and payload["bundle_upto"] > int(database.setting(UP_KEY) or 0):
        if not payload.get("start_over"):
            database.save_setting(UP_KEY, str(payload["bundle_upto"]))
    take_down(database, payload.get("ops") or [], report)
    after, following = payload.get("after"), payload.get("next")
    if down.get("server_id") in (None, payload.get("server_id")) and following is not None and after is not None:
        if after <= down.get("cursor", 0) < following:
            database.save_setting(DOWN_KEY, orjson.dumps({"server_id": payload.get("server_id"), "cursor": following}).decode())
    return report
