"""Carrying sync messages to the central store over HTTP: retries, back-off, gzip, one-line errors.

Every request may be repeated safely (a push of operations already stored is
acknowledged again), so a dropped connection, a timeout or a busy server is
retried with growing pauses before giving up. Bodies over a kilobyte are sent
gzip-compressed; replies come back compressed. The token travels only in the
``Authorization`` header and never appears in a message.

httpx is imported when a transport is made, not with this module: importing
httpx loads its command-line helpers (Rich among them), and ``fieldkit find``
must stay light even though the command line knows about sync.
"""

from __future__ import annotations

import gzip
import random
import time
from typing import TYPE_CHECKING, Any, Callable

import orjson

from fieldkit import __version__, protocol

if TYPE_CHECKING:
    import ssl

    import httpx

COMPRESS_ABOVE = 1024
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class SyncError(Exception):
    """A sync that cannot go on; the message is one line for a person."""


class Unreachable(SyncError):
    """No answer: offline, wrong address, or the server is down."""


class Refused(SyncError):
    """The central store does not accept the token."""


class ServerError(SyncError):
    """The central store answered with an error (``status``: its HTTP status, where it answered one)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TooLarge(ServerError):
    """The request was over the central store's size limit."""


def normalise_server(url: str) -> str:
    """``host:port`` or a full URL, as a base URL without a trailing slash."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


def _network_reason(err: httpx.TransportError, timeout: float) -> str:
    import httpx

    if isinstance(err, httpx.ConnectTimeout):
        return "no answer while connecting"
    if isinstance(err, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(err, httpx.ConnectError):
        text = str(err).strip()
        if "] " in text:
            text = text.split("] ", 1)[1]
        return (text or "cannot connect").lower()
    return "the connection was cut"


def _detail(response: httpx.Response) -> str:
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    if isinstance(detail, str) and detail:
        return detail.splitlines()[0]
    return response.reason_phrase or f"status {response.status_code}"


class Transport:
    """An HTTP client for one central store and one token."""

    def __init__(
        self,
        server: str,
        token: str,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.25,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        verify: "bool | ssl.SSLContext" = True,
    ):
        import httpx

        self._transport_errors = httpx.TransportError
        self.server = normalise_server(server)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=self.server,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            headers={
                "Authorization": f"Bearer {token}",
                "Accept-Encoding": "gzip",
                "User-Agent": f"fieldkit/{__version__}",
            },
            transport=transport,
            verify=verify,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _pause(self, attempt: int) -> None:
        self._sleep(min(8.0, self.backoff * 2**attempt) * random.uniform(0.75, 1.25))

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                payload: Any = None, retries: int | None = None, content: bytes | None = None,
                raw: bool = False) -> Any:
        """Send one request, retrying what can be retried; the parsed JSON reply (the response itself
        when ``raw``), or a SyncError. ``content`` is sent as it is (a chunk of a file)."""
        headers = {}
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        if payload is not None:
            content = orjson.dumps(payload)
            headers["Content-Type"] = "application/json"
            if len(content) > COMPRESS_ABOVE:
                content = gzip.compress(content, compresslevel=3)
                headers["Content-Encoding"] = "gzip"
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(attempts):
            last = attempt + 1 == attempts
            try:
                response = self._client.request(method, path, params=params, content=content, headers=headers)
            except self._transport_errors as err:
                if last:
                    raise Unreachable(f"cannot reach {self.server}: {_network_reason(err, self.timeout)}") from None
                self._pause(attempt)
                continue
            status = response.status_code
            if status in RETRY_STATUSES and not last:
                self._pause(attempt)
                continue
            if status in (401, 403):
                raise Refused(f"the central store at {self.server} refused the token: {_detail(response)}")
            if status == 413:
                raise TooLarge(f"the central store at {self.server} refused a request as too large: {_detail(response)}")
            if status == 404 and path == "/sync/info":
                raise ServerError(f"{self.server} is not a fieldkit central store (it has no /sync/info); check the address")
            if status >= 400:
                busy = " (busy or unavailable)" if status in RETRY_STATUSES else ""
                raise ServerError(f"the central store at {self.server} answered {status}{busy}: {_detail(response)}", status)
            if raw:
                return response
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                raise ServerError(f"{self.server} did not answer like a fieldkit central store; check the address") from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises

    def _parse(self, parse: Callable[[Any], Any], data: Any) -> Any:
        try:
            return parse(data)
        except protocol.ProtocolError as err:
            raise ServerError(f"{self.server} sent a reply this fieldkit does not understand ({err}); is it a newer version?") from None

    def info(self, retries: int | None = None) -> protocol.ServerInfo:
        return self._parse(protocol.parse_info, self.request("GET", "/sync/info", retries=retries))

    def push(self, ops: list[dict[str, Any]]) -> protocol.PushReply:
        return self._parse(protocol.parse_push_reply, self.request("POST", "/sync/push", payload=protocol.push_request(ops)))

    def pull(self, after: int, limit: int = protocol.PULL_PAGE, skip_device: str | None = None,
             skip_from: int | None = None) -> protocol.PullReply:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if skip_device and skip_from:
            params.update(skip_device=skip_device, skip_from=skip_from)
        return self._parse(protocol.parse_pull_reply, self.request("GET", "/sync/pull", params=params))

    # -- attached files --------------------------------------------------------------------

    def file_state(self, sha: str) -> dict[str, Any]:
        """How much of a file the central store holds: ``{"received": n, "complete": bool}``."""
        return self.request("GET", f"/files/{sha}/upload")

    def send_chunk(self, sha: str, offset: int, data: bytes, total: int) -> dict[str, Any]:
        return self.request("PUT", f"/files/{sha}", params={"offset": offset, "total": total}, content=data)

    def file_slice(self, sha: str, offset: int, length: int) -> tuple[bytes, int]:
        """Bytes of a file from ``offset``, and the file's whole size."""
        response = self.request("GET", f"/files/{sha}", params={"offset": offset, "length": length}, raw=True)
        try:
            size = int(response.headers.get("X-File-Size", ""))
        except ValueError:
            raise ServerError(f"{self.server} sent a file without its size; is it a fieldkit central store?") from None
        return response.content, size

    def snapshot(self, after_id: str = "", limit: int = protocol.PULL_PAGE) -> protocol.SnapshotReply:
        params = {"after_id": after_id, "limit": limit}
        return self._parse(protocol.parse_snapshot_reply, self.request("GET", "/sync/snapshot", params=params))

    def register_device(self, key_line: str) -> str:
        """Register this laptop's bundle key with the token's account; the store's own key line comes back."""
        reply = self.request("POST", "/sync/device", payload={"key": key_line}, retries=2)
        if not isinstance(reply, dict) or not isinstance(reply.get("store_key"), str):
            raise ServerError(f"{self.server} sent a reply this fieldkit does not understand (no store_key)")
        return reply["store_key"]
