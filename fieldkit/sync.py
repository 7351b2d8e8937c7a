"""The sync client: send this laptop's changes, fetch everyone else's, never lose one.

One sync is: ask the central store who it is (``/sync/info``); if this laptop
has never pulled, take a snapshot of current states (instead of the whole
history); push the outbox in batches, each reply acknowledged in one write;
pull pages of operations after the cursor, each page merged and the cursor
moved in one write (``Register.apply_remote``). The next request is always on
its way while the previous reply is written down, so the laptop's disk and the
store's work overlap.

Because every step is idempotent and each write covers exactly what the store
confirmed, a cut anywhere — a dropped connection, a lost reply, a restarted
server, a killed laptop — costs at most one batch sent or fetched again.

A central store with a ``server_id`` this laptop does not remember (or one
whose history is shorter than this laptop's cursor) was reset or restored:
the laptop queues everything it holds to be sent again and pulls from 0.

The app calls ``sync`` from a thread worker: it raises nothing for network or
server problems, and reports progress through a callback (called on the
calling thread). Give it a Register no other thread uses meanwhile.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from fieldkit import erasure, model, protocol
from fieldkit.hlc import MAX_DRIFT_MS, wall_ms
from fieldkit.store import StoreError
from fieldkit.transport import SyncError, TooLarge, Transport, normalise_server

TYPE_NAMES = {"issue": "issue", "note": "note", "action": "follow-up action", "status_change": "status change", "lesson": "lesson",
              "attachment": "attachment"}


@dataclass
class SyncProgress:
    phase: str  # "push", "pull", "files" or "done"
    done: int
    total: int | None
    message: str


@dataclass
class SyncResult:
    sent: int
    received: int
    rejected: list[tuple[str, str]]  # (what the change was, why the central store refused it)
    conflicts: list[str]
    server: str
    finished: bool
    error: str | None
    deferred: list[tuple[str, str]] = field(default_factory=list)  # kept queued: they need a record still on its way
    notices: list[str] = field(default_factory=list)
    files_sent: int = 0  # attached files, after the records (``file_sync.py``)
    files_received: int = 0
    bytes_sent: int = 0


#: The reason given to a change that waits for a record the central store refused (said once, however deep).
BELONGS = "it belongs to a change the central store refused: "


class ServerChanged(SyncError):
    """The central store's identity changed in the middle of a sync."""


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def record_label(register, record_type: str, record_id: str) -> str:
    """How a person recognises a record: an issue by its reference, a note by its issue's."""
    values = register.store.get(record_type, record_id) or {}
    if record_type == "issue":
        return f"issue {values.get('ref') or record_id[:13]}"
    if record_type == "lesson":
        return f"lesson {_short(values.get('title', record_id[:13]))}"
    issue = register.store.get("issue", values.get("issue_id", "")) or {}
    return f"{TYPE_NAMES.get(record_type, record_type)} on issue {issue.get('ref') or values.get('issue_id', '?')[:13]}"


def describe_op(register, op: dict[str, Any]) -> str:
    """A change in words, naming its fields but never their values (they may be personal)."""
    label = record_label(register, op["type"], op["id"])
    if "created_at" in op["fields"] or op["type"] in ("note", "status_change") or "sha256" in op["fields"]:
        return f"new {label}"
    return f"{label} ({', '.join(sorted(op['fields']))})"


def describe_conflict(register, record_type: str, record_id: str, conflict: model.Conflict) -> str:
    values = register.store.get(record_type, record_id) or {}
    personal = conflict.field in model.PERSONAL_FIELDS
    kept = "(personal information)" if personal else _short(values.get(conflict.field))
    other = "(personal information)" if personal else _short(conflict.value)
    return f"{record_label(register, record_type, record_id)}: {conflict.field} — kept {kept}, also {other} by {conflict.author or 'someone'}"


class _Run:
    """One sync, accumulating its result as it goes so a failure still reports what got through."""

    def __init__(self, register, client: Transport, token: str | None, progress: Callable[[SyncProgress], None] | None,
                 trust: Any = None, insecure: bool = False, originals: bool = False):
        self.register = register
        self.originals = originals
        self.trust = trust
        self.insecure = insecure
        self.client = client
        self.token = token
        self.progress = progress or (lambda _: None)
        self.result = SyncResult(0, 0, [], [], client.server, False, None)
        self.state: dict[str, Any] = {}
        self.first_seq: int | None = None
        self.touched: dict[str, str] = {}
        self.erased = False
        self.ahead: ThreadPoolExecutor

    def tell(self, phase: str, done: int, total: int | None, message: str) -> None:
        self.progress(SyncProgress(phase, done, total, message))

    def check(self, server_id: str) -> None:
        if server_id != self.state.get("server_id"):
            raise ServerChanged("the central store was reset or restored during the sync")

    def go(self) -> None:
        self.first_seq = None
        self.register.refresh()
        self.tell("push", 0, None, f"contacting {self.client.server}")
        info = self.client.info(retries=2)
        self.meet(info)
        self.correct_clock(info)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fieldkit-sync") as self.ahead:
            if not self.state.get("cursor") or "snapshot" in self.state:
                self.snapshot()  # before pushing, so a new laptop's own changes do not come back in it
            self.push()
            self.pull()
        self.introduce()
        self.files()
        self.state["last_sync_at"] = _now()
        self.state.pop("last_error", None)
        self.register.save_sync_state(self.state)
        if self.erased:
            self.register.wipe_leftovers()
        self.report_conflicts()
        self.result.finished = True
        self.tell("done", self.result.sent + self.result.received, None, "sync finished")

    def files(self) -> None:
        """Attached files, once the records naming them are through: this laptop's first, then everyone else's."""
        from fieldkit import file_sync

        def tell(message: str) -> None:
            self.tell("files", self.result.files_sent + self.result.files_received, None, message)

        done = file_sync.FileResult()
        try:
            file_sync.send_files(self.register, self.client, self.originals, tell, done)
            file_sync.fetch_files(self.register, self.client, tell, done)
        finally:
            self.result.files_sent += done.sent
            self.result.files_received += done.received
            self.result.bytes_sent += done.bytes_sent
            self.result.notices += done.problems

    def meet(self, info: protocol.ServerInfo) -> None:
        """Remember the store and the token once it has accepted them; notice a reset store."""
        old = self.register.sync_state()
        state = dict(old)
        state["server"] = self.client.server
        if self.token and self.token != remembered_token(self.register, old):
            keep_token(self.register, state, self.token)
        if old.get("server") != self.client.server:
            state.pop("tls_pin", None)
            state.pop("insecure", None)
        if self.trust is not None and self.trust.pin:
            state["tls_pin"] = self.trust.pin
            if self.trust.new_pin:
                self.result.notices.append(
                    f"trusted the central store's certificate on this first sync: {self.trust.pin}; check with its operator "
                    "that `fieldkit serve` printed the same fingerprint (a different certificate later stops the sync)"
                )
        if self.insecure:
            state["insecure"] = True
        known = old.get("server_id")
        self.state = state
        if (known and known != info.server_id) or old.get("cursor", 0) > info.last_seq:
            self.start_over(info.server_id, "was reset or restored")
        else:
            state["server_id"] = info.server_id
            if state != old:
                self.register.save_sync_state(state)

    def introduce(self) -> None:
        """Register this laptop's bundle key with its account, so bundles carried by hand are accepted later."""
        from fieldkit.bundle_sync import introduce

        before = orjson.dumps(self.state.get("bundle"))
        notice = introduce(self.register, self.client, self.state)
        if notice:
            self.result.notices.append(notice)
        if orjson.dumps(self.state.get("bundle")) != before:
            self.register.save_sync_state(self.state)

    def start_over(self, server_id: str, why: str) -> None:
        """The store lost history: queue everything this laptop holds to be sent again, and pull from the start."""
        state = {**self.state, "server_id": server_id, "cursor": 0}
        for stale in ("snapshot", "cursor_mark"):
            state.pop(stale, None)
        queued = self.register.queue_full_resend(state)
        self.state = state
        self.result.notices.append(
            f"the central store at {self.client.server} {why}: sending everything this laptop holds again ({queued} changes)"
        )

    def correct_clock(self, info: protocol.ServerInfo) -> None:
        """Changes stamped by a clock that ran days ahead are re-stamped and sent again once it is right.

        Only when this laptop's clock agrees with the central store's again:
        while it is still wrong, the store keeps refusing and says why.
        """
        clock = self.register.clock
        now = clock.now_ms()
        try:
            server_now = int(datetime.fromisoformat(info.server_time).timestamp() * 1000)
        except (TypeError, ValueError):
            return
        limit = max(now, server_now) + MAX_DRIFT_MS
        if abs(now - server_now) > MAX_DRIFT_MS or wall_ms(clock.last) <= limit:
            return
        ahead_ms = wall_ms(clock.last) - max(now, server_now)
        count = self.register.restamp_ahead(limit)
        if count:
            days = ahead_ms / MAX_DRIFT_MS
            when = f"{days:.0f} days" if days >= 1.5 else f"{ahead_ms / 3_600_000:.0f} hours"
            self.result.notices.append(
                f"this laptop's clock was set about {when} ahead when {count} change{'s were' if count != 1 else ' was'} made; "
                f"the clock is right again, so {'they were' if count != 1 else 'it was'} given the correct time and sent again"
            )

    def push(self) -> None:
        """Send the outbox, issues first; a change deferred for a record sent later in this sync is tried again.

        One request is always on its way while the previous reply is written
        down locally, so the laptop's writes and the store's overlap.
        """
        register = self.register
        refused = {entry["op"]["id"]: entry["reason"] for entry in register.rejected_ops()}
        attempted: set[str] = set()
        deferred: dict[str, tuple[dict[str, Any], str]] = {}
        done, total, progressed = 0, 0, False
        while True:
            pending = [op for op in register.pending_ops() if op["op_id"] not in attempted]
            if not pending and deferred and progressed:
                pending, progressed = [op for op, _ in deferred.values()], False
            if not pending:
                break
            pending.sort(key=lambda op: (op["type"] != "issue", op["op_id"]))
            total += len(pending)
            self.tell("push", done, total, f"sending {total - done} changes")
            queue = deque(self._batches(pending, protocol.PUSH_OPS))
            batch = queue.popleft()
            request = self.ahead.submit(self.client.push, batch)
            while request is not None:
                try:
                    reply = request.result()
                except TooLarge:
                    reply = None
                    queue.extendleft(reversed(self._split(batch)))
                following = queue.popleft() if queue else None
                request = self.ahead.submit(self.client.push, following) if following else None
                if reply is not None:
                    self.check(reply.server_id)
                    by_id = {op["op_id"]: op for op in batch}
                    acknowledged = [op_id for op_id in reply.acknowledged if op_id in by_id]
                    rejected = {v.op_id: v.reason for v in reply.rejected if v.op_id in by_id}
                    refused.update((by_id[op_id]["id"], reason) for op_id, reason in rejected.items())
                    for verdict in reply.deferred:
                        if verdict.op_id not in by_id:
                            continue
                        op = by_id[verdict.op_id]
                        blocked = next((refused[i] for i in (op["id"], self._issue_of(op)) if i in refused), None)
                        if blocked:  # it waits for a record the store refused: it cannot go through either
                            rejected[verdict.op_id] = blocked if blocked.startswith(BELONGS) else BELONGS + blocked
                        else:
                            deferred[verdict.op_id] = (op, verdict.reason)
                    for op_id in [*acknowledged, *rejected]:
                        deferred.pop(op_id, None)
                    register.acknowledge(acknowledged, rejected=rejected)
                    attempted.update(by_id)
                    progressed = progressed or bool(acknowledged)
                    self.result.sent += len(acknowledged)
                    self.result.rejected += [(describe_op(register, by_id[i]), reason) for i, reason in rejected.items()]
                    if reply.first_seq is not None:
                        self.first_seq = min(self.first_seq or reply.first_seq, reply.first_seq)
                    done += len(batch)
                    self.tell("push", done, total, f"sent {done} of {total} changes")
                batch = following
        self.result.deferred = [(describe_op(register, op), reason) for op, reason in deferred.values()]

    def _issue_of(self, op: dict[str, Any]) -> str | None:
        """The issue a note, follow-up action or status change hangs on."""
        if op["type"] not in ("note", "action", "status_change", "attachment"):
            return None
        return op["fields"].get("issue_id") or (self.register.store.get(op["type"], op["id"]) or {}).get("issue_id")

    @staticmethod
    def _batches(pending: list[dict[str, Any]], most: int) -> list[list[dict[str, Any]]]:
        """Batches of at most ``most`` operations and about ``PUSH_BYTES``."""
        batches: list[list[dict[str, Any]]] = [[]]
        size = 0
        for op in pending:
            cost = len(orjson.dumps(op))
            if batches[-1] and (len(batches[-1]) >= most or size + cost > protocol.PUSH_BYTES):
                batches.append([])
                size = 0
            batches[-1].append(op)
            size += cost
        return batches

    def _split(self, batch: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """A batch the store found too large, in halves; a lone change that is too large is refused here."""
        if len(batch) > 1:
            return [batch[: len(batch) // 2], batch[len(batch) // 2:]]
        reason = "this change is larger than the central store accepts"
        self.register.acknowledge([], rejected={batch[0]["op_id"]: reason})
        self.result.rejected.append((describe_op(self.register, batch[0]), reason))
        return []

    def pull(self) -> None:
        """Operations after the cursor, a page at a time; the next page is fetched while this one is written."""
        skip = (self.register.device_id, self.first_seq) if self.first_seq else (None, None)
        cursor = self.state.get("cursor", 0)
        seen = self.state.get("cursor_mark")
        request = self.ahead.submit(self.client.pull, cursor, protocol.PULL_PAGE, *skip)
        while request is not None:
            reply = request.result()
            self.check(reply.server_id)
            if seen and reply.mark is not None and reply.mark != seen:
                self.start_over(reply.server_id, "was restored from an older copy (the change at this laptop's cursor is gone)")
                raise ServerChanged("the central store lost history; starting over")
            seen = None  # checked once, at the cursor this sync started from
            request = self.ahead.submit(self.client.pull, reply.next, protocol.PULL_PAGE, *skip) if reply.more else None
            state = {**self.state, "cursor": reply.next}
            if reply.next_mark is not None:
                state["cursor_mark"] = reply.next_mark
            self.take(reply.ops, state, changed=state != self.state)
            cursor = reply.next

    def snapshot(self) -> None:
        """A laptop that has never pulled takes current states, then the operations after them."""
        progress = self.state.get("snapshot") or {}
        upto, mark = progress.get("upto"), progress.get("mark")
        request = self.ahead.submit(self.client.snapshot, progress.get("after_id", ""), protocol.PULL_PAGE)
        while request is not None:
            reply = request.result()
            self.check(reply.server_id)
            upto = reply.upto if upto is None else upto  # the first page's: later pages may be newer, never older
            request = self.ahead.submit(self.client.snapshot, reply.next_id, protocol.PULL_PAGE) if reply.more else None
            mark = reply.upto_mark if mark is None else mark
            state = {**self.state, "snapshot": {"upto": upto, "after_id": reply.next_id, "mark": mark}}
            if not reply.more:
                state.pop("snapshot")
                state["cursor"] = upto
                if mark is not None:
                    state["cursor_mark"] = mark
            self.take(reply.ops, state, changed=True)

    def take(self, ops: list[dict[str, Any]], state: dict[str, Any], changed: bool) -> None:
        """Merge a page and move the cursor in one write."""
        if ops or changed:
            self.register.apply_remote(ops, state)
        erased = {op["id"] for op in ops if erasure.is_erasure(op)}
        if erased:
            self.register.scrub_erased(erased)
            self.erased = True
        self.state = state
        mine = f":{self.register.device_id}"
        for op in ops:
            self.touched[op["id"]] = op["type"]
            if not op["hlc"].endswith(mine):
                self.result.received += 1
        if ops:
            self.tell("pull", self.result.received, None, f"received {self.result.received} changes")

    def report_conflicts(self) -> None:
        for record_id, record_type in self.touched.items():
            values = self.register.store.get(record_type, record_id)
            if values and values.get("conflicts"):
                for conflict in self.register.conflicts(record_id):
                    self.result.conflicts.append(describe_conflict(self.register, record_type, record_id, conflict))

    def fail(self, message: str) -> None:
        waiting = self._waiting()
        if waiting:
            message += f"; your {waiting} change{'s are' if waiting != 1 else ' is'} kept and will be sent next time"
        self.result.finished = False
        self.result.error = message
        try:
            state = self.register.sync_state()
            state.update(last_error=message, last_attempt_at=_now())
            self.register.save_sync_state(state)
        except StoreError:
            pass

    def _waiting(self) -> int:
        try:
            return self.register.waiting_count()
        except StoreError:
            return 0


def _stopped(register, server: str, message: str) -> SyncResult:
    """A sync that could not start: said in one line, and remembered for the status line."""
    try:
        state = register.sync_state()
        state.update(last_error=message, last_attempt_at=_now())
        register.save_sync_state(state)
    except StoreError:
        pass
    return SyncResult(0, 0, [], [], server, False, message)


def _trust(register, url: str, insecure: bool) -> Any:
    """How to reach this store safely: None for plain HTTP, else a ``tls.Trust``; a string says why not to."""
    from fieldkit import tls

    remembered = register.sync_state()
    same = remembered.get("server") == url
    host, _ = tls.host_and_port(url)
    if url.startswith("http://"):
        if tls.is_loopback(host) or insecure or (same and remembered.get("insecure")):
            return None
        return (f"refusing to send your token to {url} over plain HTTP, where anyone on the network can read it: "
                "use https:// (`fieldkit serve` on the network makes a certificate), or --insecure on a network you trust")
    pin = remembered.get("tls_pin") if same else None
    try:
        return tls.trust_for(url, pin)
    except tls.CertificateChanged as err:
        return (f"the central store at {url} shows another certificate ({err}) than the one this laptop trusted ({pin}); "
                "nothing was sent. If its operator replaced it, check the new fingerprint with them, then run "
                "`fieldkit sync --forget-certificate`")
    except OSError as err:
        reason = getattr(err, "reason", None) or err.strerror or str(err) or "no answer"
        return f"cannot reach {url} over TLS: {str(reason).lower()}; check the address (http:// or https://)"


def _token_name(register) -> str:
    return f"token:{register.store.home.resolve()}"


def keep_token(register, state: dict[str, Any], token: str) -> None:
    """Keep the token in the OS keyring where there is one, else in the register's sync state (sealed when encryption is on)."""
    from fieldkit import keychain

    if keychain.put(_token_name(register), token):
        state.pop("token", None)
        state["token_in_keyring"] = True
    else:
        state.pop("token_in_keyring", None)
        state["token"] = token


def remembered_token(register, state: dict[str, Any] | None = None) -> str | None:
    """The token this laptop last synced with: from the OS keyring, or from the register."""
    state = register.sync_state() if state is None else state
    if state.get("token_in_keyring"):
        from fieldkit import keychain

        return keychain.get(_token_name(register))
    return state.get("token")


def transport_for(register) -> "Transport | str":
    """A transport to the central store this laptop last synced with, or why there is none (one line)."""
    remembered = register.sync_state()
    url, token = remembered.get("server"), remembered_token(register, remembered)
    if not url or not token:
        return "this laptop has not synced yet: run `fieldkit sync --server URL --token TOKEN` once"
    trust = _trust(register, normalise_server(url), bool(remembered.get("insecure")))
    if isinstance(trust, str):
        return trust
    return Transport(url, token, verify=trust.verify if trust is not None else True)


def sync(register, server: str | None = None, token: str | None = None,
         progress: Callable[[SyncProgress], None] | None = None, *, client: Transport | None = None,
         insecure: bool = False, originals: bool = False) -> SyncResult:
    """Sync this laptop with the central store; never raises for network or server trouble.

    ``server`` and ``token`` default to the ones remembered from the last
    successful contact. ``client`` replaces the HTTP transport (tests use it to
    inject faults). Plain HTTP goes only to this machine unless ``insecure``;
    over https a store without an authority's certificate is pinned on first use.
    """
    from fieldkit import practice

    if practice.is_practice(register):
        return SyncResult(0, 0, [], [], "", False, practice.REFUSED)
    remembered = register.sync_state()
    url = server or (client.server if client else None) or remembered.get("server")
    token = token or remembered_token(register, remembered)
    if not url:
        return SyncResult(0, 0, [], [], "", False, "no central store set yet: run `fieldkit sync --server URL --token TOKEN` once")
    if not token and client is None:
        return SyncResult(0, 0, [], [], normalise_server(url), False,
                          f"no token for {normalise_server(url)}: give --token (your administrator makes one with `fieldkit user add`)")
    own = client is None
    trust = None
    if own:
        trust = _trust(register, normalise_server(url), insecure)
        if isinstance(trust, str):
            return _stopped(register, normalise_server(url), trust)
    transport = client or Transport(url, token or "", verify=trust.verify if trust is not None else True)
    run = _Run(register, transport, token, progress, trust=trust, insecure=insecure, originals=originals)
    try:
        for attempt in range(2):
            try:
                run.go()
                break
            except ServerChanged:
                if attempt:
                    raise
    except SyncError as err:
        run.fail(str(err))
    except StoreError as err:
        run.fail(f"the register on this laptop could not be saved: {err}")
    finally:
        if own:
            transport.close()
    return run.result


def sync_status(register) -> dict[str, Any]:
    """What the app's status line shows: where and when this laptop last synced, and what waits."""
    state = register.sync_state()
    return {
        "server": state.get("server"),
        "last_sync_at": state.get("last_sync_at"),
        "waiting": register.waiting_count(),
        "rejected": len(register.rejected_ops()),
        "last_error": state.get("last_error"),
        "last_attempt_at": state.get("last_attempt_at"),
    }


#: What a person can do about a refused change, said wherever refused changes are shown.
REFUSED_ADVICE = ("ask your coordinator to widen your account's scope, change the issue's municipality, "
                  "or stop sending the change")


def refused_summary(refused: list[tuple[str, str]], examples: int = 3) -> list[str]:
    """Refused changes in a few lines: how many for each reason, the first few, how to see them all.

    A laptop whose account lost a municipality can have thousands refused; one line each buries the rest.
    """
    if not refused:
        return []
    by_reason: dict[str, list[str]] = {}
    for what, reason in refused:
        by_reason.setdefault(reason, []).append(what)
    lines = [f"refused by the central store: {len(refused):,} change{'s' if len(refused) != 1 else ''} "
             "(kept on this laptop, marked refused):"]
    for reason, changes in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        shown = ", ".join(changes[:examples])
        more = f" and {len(changes) - examples:,} more" if len(changes) > examples else ""
        lines.append(f"  {len(changes):,} × {reason} — e.g. {shown}{more}")
    lines.append(f"  `fieldkit sync --rejected` lists them all; {REFUSED_ADVICE} "
                 "(`fieldkit sync --retry-rejected` sends them again once dealt with)")
    return lines
