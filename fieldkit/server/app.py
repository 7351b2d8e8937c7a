"""The central store's HTTP API: FastAPI on uvicorn.

FastAPI because its pydantic request models turn a wrong shape into a 422 with
a message before any of our code runs, and its ``/openapi.json`` is the
contract the tests fuzz with schemathesis. The sync replies that carry many
operations (pull, snapshot) are written with orjson straight from the stored
JSON, not through pydantic: a 10,000-issue pull must not spend its time
re-validating what the store validated on the way in.

Request bodies may be gzip-compressed (``Content-Encoding: gzip``); replies are
compressed when the client accepts it. A body over ``MAX_BODY_BYTES``, before
or after decompression, is answered 413 without being read further.
"""

from __future__ import annotations

import importlib
import logging
import zlib
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from fieldkit import __version__
from fieldkit.ids import ID_PATTERN
from fieldkit.protocol import MAX_BODY_BYTES, MAX_PAGE, PROTOCOL, PULL_PAGE, PUSH_OPS
from fieldkit.server.accounts import User
from fieldkit.server.db import Database, DatabaseError, Unavailable

if TYPE_CHECKING:
    from pathlib import Path

    from fieldkit.server.guard import Limits

log = logging.getLogger("fieldkit.server")

MAX_PUSH_OPS = 2 * PUSH_OPS
MAX_SEQ = 2**62
RECORD_ID = ID_PATTERN.pattern
DEVICE = r"^[A-Za-z0-9_-]{1,64}$"


# -- messages ------------------------------------------------------------------------


class Health(BaseModel):
    status: str
    database: str
    schema_version: int
    last_seq: int


class Info(BaseModel):
    server_id: str
    user: str
    role: str
    municipalities: list[str]
    provinces: list[str]
    last_seq: int
    server_time: str
    protocol: int = PROTOCOL


class PushRequest(BaseModel):
    """Operations from one laptop; each is checked on its own."""

    model_config = ConfigDict(extra="forbid")
    ops: list[dict[str, Any]] = Field(
        max_length=MAX_PUSH_OPS,
        description='operations: {"op_id", "type", "id", "device", "author", "hlc", "fields", "seen"}',
    )


class Verdict(BaseModel):
    op_id: str
    reason: str


class PushReply(BaseModel):
    server_id: str
    acknowledged: list[str]
    rejected: list[Verdict]
    deferred: list[Verdict]
    first_seq: int | None
    last_seq: int


class PullReply(BaseModel):
    server_id: str
    next: int
    more: bool
    ops: list[dict[str, Any]]
    mark: str = Field("", description="a mark of the operation at `after`; a laptop that remembers another one knows the store lost history")
    next_mark: str = Field("", description="a mark of the operation at `next`, for the laptop to remember")


class SnapshotReply(BaseModel):
    server_id: str
    upto: int
    upto_mark: str = Field("", description="a mark of the operation at `upto`")
    next_id: str
    more: bool
    ops: list[dict[str, Any]]


class HistoryEntry(BaseModel):
    seq: int
    user: str
    device: str
    author: str
    hlc: str
    received_at: str
    kind: str
    fields: list[str]


class DeviceKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(max_length=300, description="the laptop's key line, as `fieldkit bundle key` prints it")


class StoreKey(BaseModel):
    store_key: str


class Problem(BaseModel):
    detail: str


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body cannot be read (not UTF-8 text, not valid gzip)"},
    401: {"model": Problem, "description": "no token, an unknown token, or a revoked account"},
    413: {"model": Problem, "description": "the request body is too large"},
    415: {"model": Problem, "description": "the body is compressed with something other than gzip"},
    422: {"model": Problem, "description": "the request does not have the agreed shape"},
    503: {"model": Problem, "description": "the database is busy or unreachable; try again"},
}


# -- dependencies: the hooks other routers use ----------------------------------------

bearer = HTTPBearer(auto_error=False, description="the token printed by `fieldkit user add`")


def get_db(request: Request) -> Database:
    """The data-access layer of the app handling this request."""
    return request.app.state.db


def current_user(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> User:
    """The account the request's bearer token belongs to; 401 when there is none or it is revoked."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or not credentials.credentials:
        raise HTTPException(401, "give your token in the Authorization header (Bearer)", headers=challenge)
    user = get_db(request).user_for_token(credentials.credentials)
    if user is None:
        raise HTTPException(401, "the central store does not know this token; check it, or ask your administrator for a new one", headers=challenge)
    if user.revoked:
        raise HTTPException(401, f"the account {user.name} has been revoked; ask your administrator for a new token", headers=challenge)
    return user


# -- request bodies: size limit and gzip -------------------------------------------------


class BodyLimit:
    """Read at most ``limit`` bytes of body (decompressing gzip), else answer 413; a bad encoding is 400/415."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope["headers"]]
        found = {k.lower(): v for k, v in headers}
        encoding = found.get(b"content-encoding", b"identity").strip().lower()
        if encoding not in (b"identity", b"gzip", b""):
            await self._answer(send, 415, "only gzip request bodies are understood")
            return
        length = found.get(b"content-length")
        if length is not None and not length.isdigit():
            await self._answer(send, 400, "the Content-Length header is not a number")
            return
        if length is not None and int(length) > self.limit:
            await self._answer(send, 413, f"the request body is over {self.limit:,} bytes; send fewer changes at a time")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._answer(send, 413, f"the request body is over {self.limit:,} bytes; send fewer changes at a time")
                return
        if encoding == b"gzip":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                plain = inflater.decompress(bytes(body), self.limit + 1)
            except zlib.error:
                await self._answer(send, 400, "the request body is not valid gzip")
                return
            if len(plain) > self.limit or inflater.unconsumed_tail:
                await self._answer(send, 413, f"the request body is over {self.limit:,} bytes once unpacked; send fewer changes at a time")
                return
            if not inflater.eof:
                await self._answer(send, 400, "the request body is not valid gzip (it ends too early)")
                return
            if inflater.unused_data:  # a second gzip member, or bytes after the first: never read silently
                await self._answer(send, 400, "the request body has data after its gzip stream; send one gzip member")
                return
            body = bytearray(plain)
            headers = [(k, v) for k, v in headers if k.lower() not in (b"content-encoding", b"content-length")]
            headers.append((b"content-length", str(len(body)).encode()))
            scope = {**scope, "headers": headers}
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _answer(send: Any, status: int, detail: str) -> None:
        payload = JSONResponse({"detail": detail}).body
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


# -- the app -----------------------------------------------------------------------------


PATTERN_NAMES = {"after_id": "a record id (UUIDv7)", "record_id": "a record id (UUIDv7)", "skip_device": "a device id"}


def _validation_message(err: RequestValidationError) -> str:
    """One line for what is wrong with a request, naming the parameter, not pydantic's internals."""
    parts = []
    for error in err.errors()[:3]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")) or "body"
        if error.get("type") == "json_invalid":
            parts.append("the request body is not valid JSON")
        elif error.get("type") == "string_pattern_mismatch":
            parts.append(f"{where} is not {PATTERN_NAMES.get(where, 'in the expected form')}")
        else:
            parts.append(f"{where}: {error.get('msg', 'is wrong')}")
    return "; ".join(parts) or "the request does not have the agreed shape"


def create_app(db: Database | str | None = None, max_body: int = MAX_BODY_BYTES, files: "Path | None" = None) -> FastAPI:
    """The API on a database (a ``Database``, a URL, or the default SQLite file); migrates it first.

    Attached files are kept in ``files`` (default: ``files_api.default_root``)."""
    database = db if isinstance(db, Database) else Database(db)
    database.migrate()
    app = FastAPI(
        title="fieldkit central store",
        version=__version__,
        description="Sync for fieldkit laptops: push operations, pull what others changed, in your scope.",
    )
    app.state.db = database
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    app.add_middleware(BodyLimit, limit=max_body)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_message(err)}, status_code=422)

    @app.exception_handler(DatabaseError)
    async def unavailable(request: Request, err: DatabaseError) -> JSONResponse:
        log.warning("database problem on %s: %s", request.url.path, err)
        headers = {"Retry-After": "1"} if isinstance(err, Unavailable) else None
        return JSONResponse({"detail": str(err)}, status_code=503, headers=headers)

    @app.get("/health", response_model=Health, tags=["monitoring"], responses={503: PROBLEMS[503]})
    def health(db: Database = Depends(get_db)) -> dict[str, Any]:
        """Whether the store can reach its database; for monitoring."""
        return db.health()

    @app.get("/sync/info", response_model=Info, tags=["sync"], responses={k: PROBLEMS[k] for k in (400, 401, 503)})
    def info(user: User = Depends(current_user), db: Database = Depends(get_db)) -> dict[str, Any]:
        """Who you are to the store, its identity and its last sequence number."""
        return {**db.info(user), "protocol": PROTOCOL}

    @app.post("/sync/push", response_model=PushReply, tags=["sync"], responses=PROBLEMS)
    def push(body: PushRequest, user: User = Depends(current_user), db: Database = Depends(get_db)) -> dict[str, Any]:
        """Store operations: each is acknowledged (also when already stored), rejected with a reason, or deferred."""
        return db.push(user, body.ops)

    @app.get("/sync/pull", response_model=PullReply, tags=["sync"], responses={k: PROBLEMS[k] for k in (400, 401, 422, 503)})
    def pull(
        after: int = Query(0, ge=0, le=MAX_SEQ, description="the cursor: the last sequence number applied"),
        limit: int = Query(PULL_PAGE, ge=1, le=MAX_PAGE),
        skip_device: str | None = Query(None, pattern=DEVICE, description="leave out this device's operations..."),
        skip_from: int | None = Query(None, ge=1, le=MAX_SEQ, description="...stored from this sequence number on"),
        user: User = Depends(current_user),
        db: Database = Depends(get_db),
    ) -> Response:
        """Operations after the cursor, in your scope, oldest first."""
        return Response(db.pull(user, after, limit, skip_device, skip_from), media_type="application/json")

    @app.get("/sync/snapshot", response_model=SnapshotReply, tags=["sync"], responses={k: PROBLEMS[k] for k in (400, 401, 422, 503)})
    def snapshot(
        after_id: str = Query("", pattern=f"^$|{RECORD_ID}", description="the last record id of the previous page"),
        limit: int = Query(PULL_PAGE, ge=1, le=MAX_PAGE),
        user: User = Depends(current_user),
        db: Database = Depends(get_db),
    ) -> Response:
        """Current states of the records in your scope, by id, for a laptop that has never pulled."""
        return Response(db.snapshot(user, after_id, limit), media_type="application/json")

    @app.post("/sync/device", response_model=StoreKey, tags=["bundles"],
              responses={**{k: PROBLEMS[k] for k in (400, 401, 422, 503)},
                         409: {"model": Problem, "description": "the laptop is revoked, or registered with another key"}})
    def device(body: DeviceKey, user: User = Depends(current_user), db: Database = Depends(get_db)) -> dict[str, Any]:
        """Register the calling laptop's (or relay's) bundle key with your account; answers the store's own key."""
        from fieldkit.bundles import BundleError, PublicKey
        from fieldkit.server.accounts import AccountError

        try:
            key = PublicKey.parse(body.key)  # a laptop's, or a relay's (a regional store's) own key
            db.register_device(user, key)
        except (BundleError, AccountError) as err:
            raise HTTPException(409, str(err)) from None
        return {"store_key": db.store_key().line()}

    @app.post("/bundles", tags=["bundles"], response_class=Response,
              responses={200: {"content": {"application/octet-stream": {}}, "description": "the receipt to carry back"},
                         **{k: PROBLEMS[k] for k in (400, 401, 413, 503)}, 422: PROBLEMS[422]})
    async def bundle(request: Request, user: User = Depends(current_user)) -> Response:
        """Take in a bundle carried from a laptop (any account may upload it; it is judged by its own laptop's account)."""
        from starlette.concurrency import run_in_threadpool

        from fieldkit.bundles import BundleError
        from fieldkit.server.bundles import apply_bundle

        data = await request.body()
        try:
            outcome = await run_in_threadpool(apply_bundle, get_db(request), data)
        except BundleError as err:
            raise HTTPException(422, str(err)) from None
        log.info("bundle from laptop %s (%s) uploaded by %s: %d changes, %d new", outcome.device, outcome.account,
                 user.name, outcome.received, outcome.stored)
        headers = {"X-Fieldkit-Refused": "1"} if outcome.refused else {}
        return Response(outcome.receipt, media_type="application/octet-stream", headers=headers)

    @app.get("/sync/history/{record_id}", response_model=list[HistoryEntry], tags=["audit"],
             responses={k: PROBLEMS[k] for k in (400, 401, 422, 503)})
    def history(
        record_id: str = Path(pattern=RECORD_ID),
        user: User = Depends(current_user),
        db: Database = Depends(get_db),
    ) -> list[dict[str, Any]]:
        """Who changed a record, from which laptop, and when: the audit trail (empty when out of your scope)."""
        return db.history(user, record_id)

    @app.post("/admin/issues/{record_id}/forget-contact", response_model=PushReply, tags=["admin"],
              responses={**{k: PROBLEMS[k] for k in (400, 401, 422, 503)},
                         403: {"model": Problem, "description": "the account is not an administrator"},
                         404: {"model": Problem, "description": "there is no such issue"}})
    def forget_contact(
        record_id: str = Path(pattern=RECORD_ID),
        user: User = Depends(current_user),
        db: Database = Depends(get_db),
    ) -> dict[str, Any]:
        """Erase an issue's community contact (POPIA) here and, at their next sync, on every laptop; administrators only."""
        if not user.is_admin:
            raise HTTPException(403, "only an administrator can erase a contact on the central store; ask one, or use `fieldkit forget-contact` on a laptop")
        done = db.forget_contact(user, record_id)
        if done is None:
            raise HTTPException(404, "there is no such issue")
        return done

    from fieldkit.server import files_api

    files_api.install(app, database, files)
    try:
        open311 = importlib.import_module("fieldkit.server.open311")
    except ModuleNotFoundError as err:
        if err.name != "fieldkit.server.open311":
            raise
    else:
        app.include_router(open311.router)
    return app


class CannotStart(Exception):
    """The store cannot start as asked; the message says what to change."""


def serve(url: str | None, host: str, port: int, new_server_id: bool = False, limits: "Limits | None" = None,
          tls: "tuple[Path, Path] | None" = None, upstream: "tuple[str, str, float] | None" = None,
          files: "Path | None" = None) -> None:
    """Run the store until interrupted (``fieldkit serve``), closing slow and idle clients itself; https with ``tls``.

    ``upstream`` (URL, token, seconds): relay to a national store every so many seconds (``fieldkit.server.relay``).
    """
    import socket
    import ssl

    import uvicorn

    from fieldkit.server.guard import Limits, guarded_protocol, raise_file_limit

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as err:
        raise CannotStart(f"cannot listen on {host}:{port}: {err.strerror or err}; choose another --port or --host") from None
    fingerprint = None
    if tls is not None:
        from fieldkit.server.certificate import certificate_fingerprint

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*tls)
            fingerprint = certificate_fingerprint(tls[0])
        except (OSError, ValueError, ssl.SSLError) as err:
            raise CannotStart(f"the certificate {tls[0]} or its key {tls[1]} cannot be used: {err}") from None
    wanted = limits or Limits()
    limits = raise_file_limit(wanted)
    database = Database(url)
    app = create_app(database, files=files)
    if new_server_id:
        database.renew_server_id()
    print(f"fieldkit central store on {'https' if tls else 'http'}://{host}:{port} — {database.describe()}", flush=True)
    print(f"attached files in {app.state.files.root}", flush=True)
    if fingerprint:
        print(f"certificate {tls[0]}\n  fingerprint {fingerprint}\n  laptops trust it on their first sync: "
              "read them this fingerprint to check", flush=True)
    if limits.max_connections < wanted.max_connections:
        print(f"at most {limits.max_connections:,} connections at once (the system's open-file limit); "
              f"raise it with `ulimit -n` for more", flush=True)
    if upstream is not None:
        import threading

        from fieldkit.server.relay import Relay, run_forever

        stop = threading.Event()
        relay = Relay(database, upstream[0], upstream[1])
        threading.Thread(target=run_forever, args=(relay, upstream[2], stop), daemon=True, name="fieldkit-relay").start()
        print(f"relaying to the national store at {upstream[0]} every {upstream[2]:g} s", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False, http=guarded_protocol(limits),
                timeout_keep_alive=max(1, round(limits.idle_timeout)), backlog=4096,
                ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None)
