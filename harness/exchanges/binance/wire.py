"""A lean HTTP/1.1 client for the REST calls a liquidation sends, with python-binance's method names.

Why it exists: python-binance's ``AsyncClient`` over aiohttp costs about 0.7 ms of CPU per request
(measured by ``liquidation-harness bench``'s profile: aiohttp's client machinery, python-binance's
parameter handling, asyncio's stream layers). A 200-symbol liquidation sends about 650 requests, so
the bot spent more time computing than waiting for the exchange. ``WireClient`` sends the same
requests (same paths, same verbs, parameters in the query string for GET and in a form body for
POST/DELETE, as python-binance sends them) over pooled keep-alive connections driven by a small
``asyncio.Protocol``, and signs them as Binance documents: ``signature`` = hex HMAC-SHA256 of the
exact query string or body as sent, appended last.

It answers the way python-binance does, so the session's policy and the error mapping
(``harness.exchanges.binance.errors``) are the same for both: a non-2xx reply raises
``BinanceAPIException`` (with a ``response`` that has ``status``, ``reason``, ``headers`` and
``text``), a 2xx reply that is not JSON raises ``BinanceRequestException``, and transport failures
raise ``WireConnectError`` (the connection could not be opened: nothing was sent) or ``WireError``
(the connection broke after the request was written: it may have been processed).

Only the methods in ``ROUTES`` are served here; ``BinanceSession`` sends any other method through
python-binance's ``AsyncClient`` (``supports``). http and https (TLS with the system's trust store)
are supported; no proxies (python-binance's AsyncClient does not use them either).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import quote, urlsplit

from binance.exceptions import BinanceAPIException, BinanceRequestException

try:  # the 'speed' extra; the standard library's json otherwise
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the installed extras
    _loads = json.loads

#: python-binance method -> (HTTP verb, path under the futures root, signed)
ROUTES: dict[str, tuple[str, str, bool]] = {
    "futures_time": ("GET", "/fapi/v1/time", False),
    "futures_ping": ("GET", "/fapi/v1/ping", False),
    "futures_exchange_info": ("GET", "/fapi/v1/exchangeInfo", False),
    "futures_get_position_mode": ("GET", "/fapi/v1/positionSide/dual", True),
    "futures_position_information": ("GET", "/fapi/v3/positionRisk", True),
    "futures_get_open_orders": ("GET", "/fapi/v1/openOrders", True),
    "futures_get_open_algo_orders": ("GET", "/fapi/v1/openAlgoOrders", True),
    "futures_get_order": ("GET", "/fapi/v1/order", True),
    "futures_cancel_all_open_orders": ("DELETE", "/fapi/v1/allOpenOrders", True),
    "futures_cancel_all_algo_open_orders": ("DELETE", "/fapi/v1/algoOpenOrders", True),
    "futures_create_order": ("POST", "/fapi/v1/order", True),
    "futures_place_batch_order": ("POST", "/fapi/v1/batchOrders", True),
    "futures_countdown_cancel_all": ("POST", "/fapi/v1/countdownCancelAll", True),
}
#: order types python-binance routes to the algo service instead of POST /fapi/v1/order
_CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
#: characters left unescaped in parameter values (the rest are %-encoded, as a form encoder does)
_SAFE = "-_.~"
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*\Z").match
#: one reply header line: a name without spaces or colons, a colon, the value
_HEADER_FIELD = re.compile(r"([^:\r\n \t]+)[ \t]*:([^\r\n]*)")
#: the most bytes of headers a reply may have
MAX_HEADER_BYTES = 64 * 1024
#: the most bytes of body a reply may have (exchangeInfo is about 1-2 MB on Binance)
MAX_BODY_BYTES = 64 * 1024 * 1024
USER_AGENT = "liquidation-harness"


class WireError(ConnectionError):
    """The connection failed after the request was (or may have been) written: it may have been processed."""


class WireConnectError(WireError):
    """The connection could not be opened: the request was never sent."""


class WireResponse:
    """What python-binance's error handling reads from a response: status, reason, headers, text."""

    __slots__ = ("status", "reason", "headers", "body")

    def __init__(self, status: int, reason: str, headers: _Headers, body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Headers(dict):
    """Reply headers, names looked up case-insensitively (stored lower-case), as the limiter needs."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


def encode(params: Mapping[str, Any]) -> str:
    """``params`` as ``k=v&...`` (values %-encoded; None dropped; booleans as true/false)."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, separators=(",", ":"))
        text = value if isinstance(value, str) else str(value)
        parts.append(f"{key}={text}" if _PLAIN(text) else f"{key}={quote(text, safe=_SAFE)}")
    return "&".join(parts)


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[WireResponse] | None = None
        self._head: tuple[int, str, _Headers] | None = None
        self._length: int | None = None  # body bytes expected (None: chunked, or not known yet)
        self._chunked = False
        self._keep_alive = True
        self._read_to_close = False  # neither a length nor chunks: the body runs until the peer closes

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # duck-typed: uvloop's TCP and SSL transports are not subclasses of asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if self._read_to_close and exc is None and self._head is not None:  # the body ends where the peer closed
            head, self._head = self._head, None
            waiter.set_result(WireResponse(head[0], head[1], head[2], bytes(self._buffer)))
            return
        waiter.set_exception(WireError(f"connection lost before the reply was complete ({exc or 'closed by the peer'})"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # bytes nobody asked for: the connection is not in a state to reuse
            self._abort()
            return
        self._buffer += data
        try:
            self._parse()
        except WireError as exc:
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self._abort()

    # -- requests --------------------------------------------------------------------------
    def send(self, request: bytes) -> asyncio.Future[WireResponse]:
        assert self.transport is not None and self._waiter is None
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._buffer.clear()
        self._head, self._length, self._chunked, self._keep_alive = None, None, False, True
        self._read_to_close = False
        self.transport.write(request)
        return self._waiter

    @property
    def ready(self) -> bool:
        """Idle and open: may carry the next request."""
        return not self.closed and self._waiter is None and self._keep_alive and self.transport is not None \
            and not self.transport.is_closing()

    def _abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- parsing ---------------------------------------------------------------------------
    def _parse(self) -> None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise WireError(f"reply headers longer than {MAX_HEADER_BYTES} bytes")
                return
            self._head = self._read_head(bytes(buffer[:end]))
            del buffer[: end + 4]
        status = self._head[0]
        if self._chunked:
            body = self._dechunk()
            if body is None:
                return
        else:
            if self._length is None:  # no length and not chunked: 1xx/204/304 have none, else read to close
                if status in (204, 304) or 100 <= status < 200:
                    self._length = 0
                else:
                    self._read_to_close, self._keep_alive = True, False
                    if len(buffer) > MAX_BODY_BYTES:
                        raise WireError(f"reply longer than {MAX_BODY_BYTES} bytes")
                    return  # connection_lost completes it
            if len(buffer) < self._length:
                return
            body = bytes(buffer[: self._length])
            del buffer[: self._length]
        head, self._head = self._head, None
        waiter, self._waiter = self._waiter, None
        if buffer:  # more bytes than one reply: never reuse a connection that is out of step
            self._keep_alive = False
        if not self._keep_alive:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(WireResponse(head[0], head[1], head[2], body))

    def _read_head(self, raw: bytes) -> tuple[int, str, _Headers]:
        text = raw.decode("latin-1")
        first, _, rest = text.partition("\r\n")
        parts = first.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise WireError(f"not an HTTP/1.x reply: {first[:80]!r}")
        status, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        fields = _HEADER_FIELD.findall(rest) if rest else []
        if rest and len(fields) != rest.count("\r\n") + 1:  # a line without a colon (or an empty one)
            bad = next((line for line in rest.split("\r\n") if not _HEADER_FIELD.fullmatch(line)), rest)
            raise WireError(f"malformed reply header: {bad[:80]!r}")
        headers = _Headers({name.lower(): value.strip() for name, value in fields})
        if parts[0] == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            self._keep_alive = False
        if headers.get("connection", "").lower() == "close":
            self._keep_alive = False
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = True
        elif "content-length" in headers:
            try:
                self._length = int(headers["content-length"])
            except ValueError:
                raise WireError(f"bad Content-Length {headers['content-length']!r}") from None
            if not 0 <= self._length <= MAX_BODY_BYTES:
                raise WireError(f"Content-Length {self._length} outside 0..{MAX_BODY_BYTES}")
        return status, reason, headers

    def _dechunk(self) -> bytes | None:
        """The whole chunked body once it has arrived (None: not yet); consumes it from the buffer."""
        buffer, at, body = self._buffer, 0, bytearray()
        while True:
            end = buffer.find(b"\r\n", at)
            if end < 0:
                return None
            size_text = bytes(buffer[at:end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise WireError(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", end)
                if buffer[end:end + 4] == b"\r\n\r\n":
                    trailer_end = end
                if trailer_end < 0:
                    return None
                del buffer[: trailer_end + 4]
                return bytes(body)
            start = end + 2
            if len(buffer) < start + size + 2:
                return None
            body += buffer[start:start + size]
            if len(body) > MAX_BODY_BYTES:
                raise WireError(f"chunked reply longer than {MAX_BODY_BYTES} bytes")
            at = start + size + 2


class WireClient:
    """Signed Binance futures REST calls over pooled keep-alive connections (module docstring).

    ``futures_url`` is the futures API root as python-binance takes it (``.../fapi``);
    ``timestamp_offset`` (ms) is added to the local clock for ``timestamp``, as python-binance's is.
    """

    def __init__(
        self,
        api_key: str,
        secret: bytes,
        futures_url: str,
        *,
        recv_window_ms: int,
        max_connections: int,
        keepalive_seconds: float,
        observe: Callable[[Mapping[str, str], int], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        root = futures_url[: -len("/fapi")] if futures_url.endswith("/fapi") else futures_url
        parts = urlsplit(root)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"futures_url={futures_url!r}: expected http(s)://host[:port]/fapi")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        default_port = (parts.scheme == "https" and self.port == 443) or (parts.scheme == "http" and self.port == 80)
        host_header = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):  # an IPv6 literal
            host_header = f"[{self.host}]" if default_port else f"[{self.host}]:{self.port}"
        self._fixed_headers = (f"Host: {host_header}\r\nUser-Agent: {USER_AGENT}\r\nAccept: application/json\r\n"
                               f"X-MBX-APIKEY: {api_key}\r\n")
        self._secret = secret
        self.recv_window_ms = recv_window_ms
        self.timestamp_offset = 0
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self.observe = observe
        self._idle: deque[_Connection] = deque()
        self._open = 0
        self._all: set[_Connection] = set()
        # https: the system's trust store and hostname checking unless a context is given (tests)
        self._ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self._ssl = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._warming: set[asyncio.Task[None]] = set()

    @staticmethod
    def supports(method: str, params: Mapping[str, Any]) -> bool:
        """True when this client sends ``method`` with ``params`` (conditional orders: python-binance)."""
        if method == "futures_create_order":
            return str(params.get("type", "")).upper() not in _CONDITIONAL_TYPES
        return method in ROUTES

    # -- the request ---------------------------------------------------------------------------
    def build(self, method: str, params: dict[str, Any]) -> bytes:
        """The request bytes for python-binance method ``method`` with ``params`` (signed if it must be)."""
        verb, path, signed = ROUTES[method]
        if method == "futures_create_order" and str(params.get("type", "")).upper() in _CONDITIONAL_TYPES:
            raise ValueError(f"futures_create_order type={params.get('type')!r}: conditional orders go to the algo "
                             "service (python-binance's AsyncClient); WireClient sends regular orders only")
        query = encode(params)
        if signed:
            stamp = f"timestamp={int(time.time() * 1000 + self.timestamp_offset)}&recvWindow={self.recv_window_ms}"
            query = f"{query}&{stamp}" if query else stamp
            signature = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
            query = f"{query}&signature={signature}"
        target = self.prefix + path
        if verb == "GET":
            line = f"GET {target}?{query} HTTP/1.1\r\n" if query else f"GET {target} HTTP/1.1\r\n"
            return (line + self._fixed_headers + "\r\n").encode()
        body = query.encode()
        return (f"{verb} {target} HTTP/1.1\r\n{self._fixed_headers}Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def call(self, method: str, params: dict[str, Any], *, idempotent: bool) -> Any:
        """Send ``method`` and return its decoded JSON reply (python-binance's exceptions on failure).

        A reused keep-alive connection that the peer had already closed fails before any reply
        byte arrives; an idempotent request is then sent once more on a fresh connection.
        """
        request = self.build(method, params)
        for attempt in (1, 2):
            connection = await self._acquire()
            done = False
            try:
                try:
                    response = await connection.send(request)
                except WireError:
                    if connection.reused and idempotent and attempt == 1 and not connection._buffer:
                        continue  # a stale pooled connection: nothing came back, try a fresh one
                    raise
                done = True
            finally:
                self._release(connection, reusable=done)
            return self._handle(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _handle(self, response: WireResponse) -> Any:
        if self.observe is not None:
            self.observe(response.headers, response.status)
        if not 200 <= response.status < 300:
            raise BinanceAPIException(response, response.status, response.text)
        try:
            return _loads(response.body)
        except ValueError:
            raise BinanceRequestException(f"Invalid Response: {response.text[:200]}") from None

    # -- the pool ------------------------------------------------------------------------------
    def prewarm(self, connections: int) -> int:
        """Open up to ``connections`` pooled connections in the background (TCP and TLS handshakes
        only, no request), so a burst that follows finds them open; returns how many it started.
        A connection that fails to open is simply not pooled: the request that needs one opens it."""
        wanted = min(connections, self.max_connections) - self._open
        for _ in range(max(0, wanted)):
            self._open += 1  # reserved now, so a second prewarm or a request counts it
            task = asyncio.ensure_future(self._open_idle())
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)
        return max(0, wanted)

    async def _open_idle(self) -> None:
        try:
            connection = await self._connect(reserved=True)
        except (WireConnectError, asyncio.CancelledError):
            return
        connection.idle_since = time.monotonic()
        self._idle.appendleft(connection)  # behind the recently used ones, which are known to work
        self._wake()

    async def _connect(self, *, reserved: bool = False) -> _Connection:
        """A new connection counted against ``max_connections`` (the caller made sure one is free, or
        ``reserved`` it already)."""
        if not reserved:
            self._open += 1
        try:
            loop = asyncio.get_running_loop()
            try:
                _, connection = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None)
            except (OSError, ssl.SSLError) as exc:
                raise WireConnectError(f"could not connect to {self.scheme}://{self.host}:{self.port}: {exc}") from None
        except BaseException:
            self._open -= 1
            self._wake()
            raise
        self._all.add(connection)
        return connection

    async def _acquire(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the warmest
            if connection.ready and now - connection.idle_since < self.keepalive_seconds:
                connection.reused = True
                return connection
            self._discard(connection)
        while self._open >= self.max_connections:
            waiter = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if not waiter.cancelled() and waiter.done():
                    self._wake()  # pass the slot on
                raise
            while self._idle:
                connection = self._idle.pop()
                if connection.ready:
                    connection.reused = True
                    return connection
                self._discard(connection)
        return await self._connect()

    def _release(self, connection: _Connection, *, reusable: bool) -> None:
        if reusable and connection.ready:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            self._discard(connection)
        self._wake()

    def _discard(self, connection: _Connection) -> None:
        if connection in self._all:
            self._all.discard(connection)
            self._open -= 1
        if not connection.closed:
            connection._abort()

    def _wake(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @property
    def open_connections(self) -> int:
        return self._open

    async def close(self) -> None:
        """Close every connection (idle or busy)."""
        for task in list(self._warming):
            task.cancel()
        for connection in list(self._all):
            self._discard(connection)
        self._idle.clear()
        self._open = 0  # prewarm slots whose tasks were cancelled before they ran
        await asyncio.sleep(0)  # let the transports run their close callbacks


__all__ = ["ROUTES", "WireClient", "WireConnectError", "WireError", "WireResponse", "encode"]
