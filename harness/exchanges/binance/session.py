"""The python-binance clients behind the adapter, and the one call path every request takes.

``BinanceSession.call`` (async) and ``BinanceSession.call_sync`` (sync, ``binance.Client``) do the
same things around each request:

* bound it by ``min(request_timeout, harness.core.context.remaining_time())``;
* on -1021 (timestamp outside recvWindow) re-read ``GET /fapi/v1/time`` and retry once;
* on 429/418 wait ``Retry-After`` once when that fits the time left (30 s outside a run), else raise
  ``RetryableExchangeError(retry_after=...)``;
* map every failure to ``harness.core.errors`` (see ``harness.exchanges.binance.errors``), never leaking a secret;
* before sending: take one of ``max_in_flight`` slots, then the rate limiter's grant (see
  ``harness.exchanges.binance.limiter``: the request queues until it fits Binance's weight and order limits; when that
  wait would outlast the run's deadline it is not sent and ``RetryableExchangeError`` is raised);
* after: every response's ``X-MBX-*`` usage headers go to the limiter (both clients are thin
  subclasses of python-binance's that show each response to the limiter before parsing it).

Async requests go by ``transport``: ``"wire"`` (the default) sends the methods
``harness.exchanges.binance.wire`` serves with its lean client (about half the CPU per request of
python-binance over aiohttp, measured by ``liquidation-harness bench``) and anything else through
``binance.AsyncClient``; ``"python-binance"`` sends everything through ``AsyncClient``. Both raise
the same exceptions, so the policy above is one code path.

All clients pool up to ``max_in_flight`` keep-alive connections (aiohttp's default is 100 and
requests' is 10, which would serialise a 200-symbol liquidation behind a few sockets).

The AsyncClient is built directly (not ``AsyncClient.create``: no spot ping, no spot time) inside
the running loop on first use, and rebuilt if a later call runs on another loop. The sync Client is
built with ``ping=False`` in a short-lived helper thread, because python-binance's constructor makes
and leaves an event loop in the calling thread when it has none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from binance import AsyncClient, Client
from binance.exceptions import BinanceAPIException
from requests.adapters import HTTPAdapter

from harness.core.context import remaining_time
from harness.core.errors import ConfigError, RetryableExchangeError
from harness.exchanges.binance.errors import (
    RATE_LIMIT_STATUSES,
    is_transport_error,
    retry_after_seconds,
    to_exchange_error,
)
from harness.exchanges.binance.limiter import RequestLimiter, request_cost
from harness.exchanges.binance.wire import ROUTES, WireClient
from harness.exchanges.codes import CLOCK_SKEW

log = logging.getLogger(__name__)

#: below this many seconds left, a request is not worth sending
MIN_REQUEST_SECONDS = 0.01
#: the longest Retry-After waited out when no run deadline bounds the call (else: raised)
MAX_RETRY_AFTER_WAIT_SECONDS = 30.0
#: the longest a request queues for the rate limiter when no run deadline bounds it
MAX_QUEUE_WAIT_SECONDS = 60.0
#: requests in flight at once (and pooled keep-alive connections per client): a 200-symbol account
#: cancels with 400 requests at once; fewer slots add a round trip per extra wave
DEFAULT_MAX_IN_FLIGHT = 512
#: how long an idle pooled connection is kept open (aiohttp's default is 15 s)
KEEPALIVE_SECONDS = 60.0
#: python-binance methods that take no parameters (so no per-call requests_params either)
_NO_PARAM_METHODS = frozenset({"futures_time", "futures_exchange_info", "futures_ping"})
#: methods that carry no timestamp (wire.py's route table says which): they never wait for the clock offset
_UNSIGNED_METHODS = frozenset(method for method, (_, _, signed) in ROUTES.items() if not signed)
#: when the clock offset is measured before the first signed request: "first" (wait for it) or
#: "alongside" (sign with the local clock at once, measure the offset at the same time; a -1021
#: then resyncs once and resends). ``warm_up`` always measures it first.
CLOCK_SYNC_MODES = ("first", "alongside")
#: how async requests are sent: "wire" (``harness.exchanges.binance.wire``, python-binance's
#: AsyncClient for methods it does not serve) or "python-binance" (every request through AsyncClient)
TRANSPORTS = ("wire", "python-binance")
DEFAULT_TRANSPORT = "wire"
#: the environment variable that picks the transport where no code does (the bot, liquidate, verify's
#: reference bot): an operator's switch back to python-binance without a release
TRANSPORT_VAR = "BINANCE_TRANSPORT"


def transport_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``$BINANCE_TRANSPORT`` (``wire`` when unset or empty); ConfigError naming it when unknown."""
    value = (os.environ if environ is None else environ).get(TRANSPORT_VAR, "").strip() or DEFAULT_TRANSPORT
    if value not in TRANSPORTS:
        raise ConfigError(TRANSPORT_VAR, value, "wire (the default: the adapter's own HTTP client) or python-binance")
    return value


class _Secret:
    """Holds the API secret; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<redacted>"

    __str__ = __repr__


async def run_quietly(work: Awaitable[Any], failure: str) -> None:
    """Await ``work`` in the background: a failure is logged as ``failure: <error>``, never raised
    (for reads ahead of time whose callers read again, and report, when they need the answer)."""
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("%s: %s", failure, exc)


def _where(operation: str, symbol: str | None) -> str:
    return f"{operation} {symbol}" if symbol else operation


class _ObservedAsyncClient(AsyncClient):
    """python-binance's ``AsyncClient`` showing each response's status and headers to ``observe`` first
    (cheaper than an aiohttp trace, which fires a dozen signals per request)."""

    observe: Callable[[Any, int], None] | None = None

    async def _handle_response(self, response: Any) -> Any:
        if self.observe is not None:
            self.observe(response.headers, response.status)
        return await super()._handle_response(response)


class _ObservedClient(Client):
    """python-binance's sync ``Client``, observed the same way."""

    observe: Callable[[Any, int], None] | None = None

    def _handle_response(self, response: Any) -> Any:  # python-binance calls self._handle_response(...)
        if self.observe is not None:
            self.observe(response.headers, response.status_code)
        return Client._handle_response(response)


def _build_sync_client(api_key: str, secret: str, factory: type[Client] = Client) -> Client:
    box: dict[str, Any] = {}

    def build() -> None:
        try:
            client = factory(api_key, secret, ping=False)
            client.loop.close()  # the loop python-binance made for this thread; REST never uses it
            asyncio.set_event_loop(None)
            box["client"] = client
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=build, name="binance-client-init", daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["client"]


class BinanceSession:
    """Owns the two python-binance clients, the clock offset and the request policy."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        futures_url: str,
        *,
        recv_window_ms: int,
        request_timeout: float,
        sleep: Callable[[float], Awaitable[Any]],
        sync_sleep: Callable[[float], Any],
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        limiter: RequestLimiter | None = None,
        transport: str = DEFAULT_TRANSPORT,
        clock_sync: str = "alongside",
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"transport={transport!r}: expected one of {', '.join(TRANSPORTS)}")
        if clock_sync not in CLOCK_SYNC_MODES:
            raise ValueError(f"clock_sync={clock_sync!r}: expected one of {', '.join(CLOCK_SYNC_MODES)}")
        self.transport = transport
        self.clock_sync = clock_sync
        self._clock_epoch = 0  # bumped by every offset measurement
        self._clock_task: asyncio.Task[None] | None = None
        self.api_key = api_key
        self._secret = _Secret(api_secret)
        self.futures_url = futures_url
        self.recv_window_ms = recv_window_ms
        self.request_timeout = request_timeout
        self._sleep = sleep
        self._sync_sleep = sync_sleep
        self.offset_ms: int | None = None
        self._async: AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._wire: WireClient | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._sync: Client | None = None
        self._sync_lock = threading.Lock()
        self._sync_clock_lock = threading.Lock()
        self.max_in_flight = max_in_flight
        self.limiter = limiter if limiter is not None else RequestLimiter()
        self._slots: asyncio.Semaphore | None = None
        self._sync_slots = threading.BoundedSemaphore(max_in_flight)

    def __repr__(self) -> str:
        return f"BinanceSession({self.futures_url}, api_key={self.api_key[:4]}...)"

    # -- clients ---------------------------------------------------------------------------
    def _configure(self, client: AsyncClient | Client) -> None:
        client.FUTURES_URL = self.futures_url
        client.REQUEST_RECVWINDOW = self.recv_window_ms
        client.REQUEST_TIMEOUT = self.request_timeout
        client.timestamp_offset = self.offset_ms or 0

    def async_client(self) -> AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            if self._async is not None:
                log.warning("event loop changed: building a new AsyncClient (the old one cannot be closed here)")
            connector = aiohttp.TCPConnector(
                limit=self.max_in_flight, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS
            )
            client = _ObservedAsyncClient(self.api_key, self._secret.reveal(), session_params={"connector": connector})
            client.observe = self.limiter.observe
            self._configure(client)
            self._async, self._async_loop, self._locks = client, loop, {}
            self._slots = asyncio.Semaphore(self.max_in_flight)
            self._wire = None
            if self.transport == "wire":
                self._wire = WireClient(
                    self.api_key, self._secret.reveal().encode(), self.futures_url, recv_window_ms=self.recv_window_ms,
                    max_connections=self.max_in_flight, keepalive_seconds=KEEPALIVE_SECONDS, observe=self.limiter.observe,
                )
                self._wire.timestamp_offset = self.offset_ms or 0
        return self._async

    def prewarm(self, connections: int) -> int:
        """Open up to ``connections`` keep-alive connections in the background (the wire transport;
        python-binance's pool opens them only with requests): how many it started."""
        self.async_client()
        return self._wire.prewarm(connections) if self._wire is not None else 0

    def lock(self, name: str) -> asyncio.Lock:
        """A lock named ``name`` for the current event loop (new loop, new locks)."""
        self.async_client()
        return self._locks.setdefault(name, asyncio.Lock())

    def sync_client(self) -> Client:
        with self._sync_lock:
            if self._sync is None:
                client = _build_sync_client(self.api_key, self._secret.reveal(), _ObservedClient)
                client.observe = self.limiter.observe
                self._configure(client)
                pool = HTTPAdapter(pool_connections=4, pool_maxsize=self.max_in_flight, max_retries=0)
                client.session.mount("https://", pool)
                client.session.mount("http://", pool)
                self._sync = client
            return self._sync

    async def aclose(self) -> None:
        client, self._async = self._async, None
        wire, self._wire = self._wire, None
        clock, self._clock_task = self._clock_task, None
        if clock is not None and not clock.done():
            clock.cancel()
        if self._async_loop is asyncio.get_running_loop():
            if wire is not None:
                await wire.close()
            if client is not None:
                await client.close_connection()
        self.close_sync()

    def close_sync(self) -> None:
        with self._sync_lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close_connection()

    # -- policy ----------------------------------------------------------------------------
    def _timeout(self, operation: str, symbol: str | None) -> float:
        left = remaining_time()
        timeout = self.request_timeout if left is None else min(self.request_timeout, left)
        if timeout < MIN_REQUEST_SECONDS:
            raise RetryableExchangeError(
                f"{_where(operation, symbol)}: not sent, the run's deadline has passed", symbol=symbol
            )
        return timeout

    def _grant(self, operation: str, symbol: str | None, params: dict[str, Any]) -> float:
        """Seconds to wait for the rate limiter's grant; raises when it would outlast the deadline."""
        weight, orders = request_cost(operation, params)
        left = remaining_time()
        budget = MAX_QUEUE_WAIT_SECONDS if left is None else max(0.0, left - MIN_REQUEST_SECONDS)
        delay = self.limiter.reserve(weight, orders, max_delay=budget)
        if delay is None:
            raise RetryableExchangeError(
                f"{_where(operation, symbol)}: not sent, Binance's rate limits leave no room for it within "
                f"{budget:.3f}s ({', '.join(map(str, self.limiter.limits))}; {self.limiter.headroom:.0%} of each used)",
                symbol=symbol,
            )
        if delay > 0:
            log.info("%s: queued %.3fs by the rate limiter", _where(operation, symbol), delay)
        return delay

    async def _send(self, client: AsyncClient, method: str, symbol: str | None, params: dict[str, Any],
                    idempotent: bool = True) -> Any:
        """One request: an in-flight slot, the limiter's grant, then the call bounded by the time left."""
        slots = self._slots
        assert slots is not None
        if slots.locked():
            try:
                async with asyncio.timeout(self._timeout(method, symbol)):
                    await slots.acquire()
            except TimeoutError:
                raise RetryableExchangeError(
                    f"{_where(method, symbol)}: not sent, {self.max_in_flight} requests stayed in flight until the deadline",
                    symbol=symbol,
                ) from None
        else:
            await slots.acquire()
        try:
            delay = self._grant(method, symbol, params)
            if delay > 0:
                await asyncio.sleep(delay)
            timeout = self._timeout(method, symbol)
            self.limiter.sent()
            try:
                async with asyncio.timeout(timeout):
                    wire = self._wire
                    if wire is not None and wire.supports(method, params):
                        return await wire.call(method, params, idempotent=idempotent)
                    return await getattr(client, method)(**params)
            finally:
                self.limiter.done()
        finally:
            slots.release()

    def _send_sync(self, client: Client, method: str, symbol: str | None, params: dict[str, Any]) -> Any:
        if not self._sync_slots.acquire(timeout=self._timeout(method, symbol)):
            raise RetryableExchangeError(
                f"{_where(method, symbol)}: not sent, {self.max_in_flight} requests stayed in flight until the deadline",
                symbol=symbol,
            )
        try:
            delay = self._grant(method, symbol, params)
            if delay > 0:
                time.sleep(delay)
            call_params = dict(params)
            if method not in _NO_PARAM_METHODS:
                call_params["requests_params"] = {"timeout": self._timeout(method, symbol)}
            self.limiter.sent()
            try:
                return getattr(client, method)(**call_params)
            finally:
                self.limiter.done()
        finally:
            self._sync_slots.release()

    def _set_offset(self, reply: Any, sent: float, received: float) -> None:
        try:
            server_time_ms = int(reply["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise RetryableExchangeError(f"futures_time: unexpected reply {reply!r:.100}") from None
        local_ms = (sent + received) / 2 * 1000
        self.offset_ms = int(server_time_ms - local_ms)
        self._clock_epoch += 1
        for client in (self._async, self._sync, self._wire):
            if client is not None:
                client.timestamp_offset = self.offset_ms
        log.info("clock offset to the exchange: %d ms", self.offset_ms)

    def _retry_wait(self, exc: BaseException) -> float | None:
        """Seconds to wait before the one retry a 429/418 earns, or None when it does not fit."""
        wait = retry_after_seconds(exc)
        if wait is None:
            return None
        left = remaining_time()
        budget = MAX_RETRY_AFTER_WAIT_SECONDS if left is None else left
        return wait if wait + MIN_REQUEST_SECONDS < budget else None

    def _recovery(self, failure: BaseException, method: str, symbol: str | None, *, resynced: bool, waited: bool,
                  clock_call: bool) -> tuple[str, float]:
        """The one retry policy of both request loops: ("resync", 0) once on -1021, ("wait", s) once
        for a 429/418 whose Retry-After fits the run, else ("raise", 0)."""
        if not isinstance(failure, BinanceAPIException):
            return "raise", 0.0
        if failure.code == CLOCK_SKEW and not resynced and not clock_call:
            return "resync", 0.0
        wait = self._retry_wait(failure) if failure.status_code in RATE_LIMIT_STATUSES else None
        if wait is not None and not waited:
            log.warning("%s %s: HTTP %s, waiting Retry-After %.3fs", method, symbol or "", failure.status_code, wait)
            return "wait", wait
        return "raise", 0.0

    def _map(self, exc: BaseException, operation: str, symbol: str | None, idempotent: bool) -> Exception:
        return to_exchange_error(
            exc, operation=operation, symbol=symbol, idempotent=idempotent, secrets=(self._secret.reveal(),)
        )

    # -- async -----------------------------------------------------------------------------
    async def sync_clock(self) -> None:
        sent = time.time()
        reply = await self.call("futures_time", idempotent=True, _clock_call=True)
        self._set_offset(reply, sent, time.time())

    async def ensure_clock(self) -> None:
        """Measure the clock offset now unless it is known (``warm_up`` and ``clock_sync="first"``)."""
        if self.offset_ms is None:
            async with self.lock("clock"):
                if self.offset_ms is None:
                    await self.sync_clock()

    def _clock_alongside(self) -> None:
        """``clock_sync="alongside"``: the first signed requests go at once, signed with the local
        clock (the offset on a machine kept by NTP is a few ms of a 5 s recvWindow), while the
        offset is measured; a -1021 meanwhile resyncs and resends once (``_resync``)."""
        task = self._clock_task
        if self.offset_ms is None and (task is None or task.done()):
            self._clock_task = asyncio.ensure_future(self._measure_quietly())

    async def _measure_quietly(self) -> None:
        # the requests themselves report trouble; a -1021 resyncs again
        await run_quietly(self.ensure_clock(), "clock offset not measured")

    async def _resync(self, signed_at_epoch: int) -> None:
        """After a -1021: measure the offset again, once for every request that was signed with the
        same offset (a burst of -1021s costs one GET /fapi/v1/time, not one each)."""
        async with self.lock("clock"):
            if self._clock_epoch == signed_at_epoch:
                await self.sync_clock()

    async def call(
        self, method: str, *, symbol: str | None = None, idempotent: bool, _clock_call: bool = False, **params: Any
    ) -> Any:
        """``await AsyncClient.<method>(**params)`` under the request policy (module docstring)."""
        if not _clock_call and method not in _UNSIGNED_METHODS:
            if self.clock_sync == "first":
                await self.ensure_clock()
            else:
                self.async_client()
                self._clock_alongside()
        if symbol is not None:
            params["symbol"] = symbol
        resynced = waited = False
        while True:
            client = self.async_client()
            epoch = self._clock_epoch
            try:
                return await self._send(client, method, symbol, dict(params), idempotent)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                failure = exc
            step, wait = self._recovery(failure, method, symbol, resynced=resynced, waited=waited, clock_call=_clock_call)
            if step == "resync":
                resynced = True
                await self._resync(epoch)
                continue
            if step == "wait":
                waited = True
                await self._sleep(wait)
                continue
            error = self._map(failure, method, symbol, idempotent)
            del failure
            raise error

    # -- sync ------------------------------------------------------------------------------
    def sync_clock_sync(self) -> None:
        sent = time.time()
        reply = self.call_sync("futures_time", idempotent=True, _clock_call=True)
        self._set_offset(reply, sent, time.time())

    def call_sync(
        self, method: str, *, symbol: str | None = None, idempotent: bool, _clock_call: bool = False, **params: Any
    ) -> Any:
        """``Client.<method>(**params)`` under the request policy; the timeout goes in requests_params."""
        client = self.sync_client()
        if self.offset_ms is None and not _clock_call:
            with self._sync_clock_lock:
                if self.offset_ms is None:
                    self.sync_clock_sync()
        if symbol is not None:
            params["symbol"] = symbol
        resynced = waited = False
        while True:
            try:
                return self._send_sync(client, method, symbol, params)
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                failure = exc
            step, wait = self._recovery(failure, method, symbol, resynced=resynced, waited=waited, clock_call=_clock_call)
            if step == "resync":
                resynced = True
                self.sync_clock_sync()
                continue
            if step == "wait":
                waited = True
                self._sync_sleep(wait)
                continue
            error = self._map(failure, method, symbol, idempotent)
            del failure
            raise error
