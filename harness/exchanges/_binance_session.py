"""The python-binance clients behind the adapter, and the one call path every request takes.

``BinanceSession.call`` (async, ``binance.AsyncClient``) and ``BinanceSession.call_sync`` (sync,
``binance.Client``) do the same things around each request:

* bound it by ``min(request_timeout, harness.core.context.remaining_time())``;
* on -1021 (timestamp outside recvWindow) re-read ``GET /fapi/v1/time`` and retry once;
* on 429/418 wait ``Retry-After`` once when that fits the time left (30 s outside a run), else raise
  ``RetryableExchangeError(retry_after=...)``;
* map every failure to ``harness.core.errors`` (see ``_binance_errors``), never leaking a secret.

The AsyncClient is built directly (not ``AsyncClient.create``: no spot ping, no spot time) inside
the running loop on first use, and rebuilt if a later call runs on another loop. The sync Client is
built with ``ping=False`` in a short-lived helper thread, because python-binance's constructor makes
and leaves an event loop in the calling thread when it has none.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from binance import AsyncClient, Client
from binance.exceptions import BinanceAPIException

from harness.core.context import remaining_time
from harness.core.errors import RetryableExchangeError
from harness.exchanges._binance_errors import (
    CLOCK_SKEW,
    RATE_LIMIT_STATUSES,
    is_transport_error,
    retry_after_seconds,
    to_exchange_error,
)

log = logging.getLogger("harness.exchanges.binance")

#: below this many seconds left, a request is not worth sending
MIN_REQUEST_SECONDS = 0.01
#: the longest Retry-After waited out when no run deadline bounds the call (else: raised)
MAX_RETRY_AFTER_WAIT_SECONDS = 30.0
#: python-binance methods that take no parameters (so no per-call requests_params either)
_NO_PARAM_METHODS = frozenset({"futures_time", "futures_exchange_info"})


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


def _build_sync_client(api_key: str, secret: str) -> Client:
    box: dict[str, Any] = {}

    def build() -> None:
        try:
            client = Client(api_key, secret, ping=False)
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
    ) -> None:
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
        self._locks: dict[str, asyncio.Lock] = {}
        self._sync: Client | None = None
        self._sync_lock = threading.Lock()
        self._sync_clock_lock = threading.Lock()

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
            client = AsyncClient(self.api_key, self._secret.reveal())
            self._configure(client)
            self._async, self._async_loop, self._locks = client, loop, {}
        return self._async

    def lock(self, name: str) -> asyncio.Lock:
        """A lock named ``name`` for the current event loop (new loop, new locks)."""
        self.async_client()
        return self._locks.setdefault(name, asyncio.Lock())

    def sync_client(self) -> Client:
        with self._sync_lock:
            if self._sync is None:
                client = _build_sync_client(self.api_key, self._secret.reveal())
                self._configure(client)
                self._sync = client
            return self._sync

    async def aclose(self) -> None:
        client, self._async = self._async, None
        if client is not None and self._async_loop is asyncio.get_running_loop():
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
            where = f"{operation} {symbol}" if symbol else operation
            raise RetryableExchangeError(f"{where}: not sent, the run's deadline has passed", symbol=symbol)
        return timeout

    def _set_offset(self, reply: Any, sent: float, received: float) -> None:
        try:
            server_time_ms = int(reply["serverTime"])
        except (KeyError, TypeError, ValueError):
            raise RetryableExchangeError(f"futures_time: unexpected reply {reply!r:.100}") from None
        local_ms = (sent + received) / 2 * 1000
        self.offset_ms = int(server_time_ms - local_ms)
        for client in (self._async, self._sync):
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
        if self.offset_ms is None:
            async with self.lock("clock"):
                if self.offset_ms is None:
                    await self.sync_clock()

    async def call(
        self, method: str, *, symbol: str | None = None, idempotent: bool, _clock_call: bool = False, **params: Any
    ) -> Any:
        """``await AsyncClient.<method>(**params)`` under the request policy (module docstring)."""
        if not _clock_call:
            await self.ensure_clock()
        if symbol is not None:
            params["symbol"] = symbol
        resynced = waited = False
        while True:
            timeout = self._timeout(method, symbol)
            client = self.async_client()
            try:
                return await asyncio.wait_for(getattr(client, method)(**dict(params)), timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                failure = exc
            if isinstance(failure, BinanceAPIException):
                if failure.code == CLOCK_SKEW and not resynced and not _clock_call:
                    resynced = True
                    await self.sync_clock()
                    continue
                wait = self._retry_wait(failure) if failure.status_code in RATE_LIMIT_STATUSES else None
                if wait is not None and not waited:
                    waited = True
                    log.warning("%s %s: HTTP %s, waiting Retry-After %.3fs", method, symbol or "", failure.status_code, wait)
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
            timeout = self._timeout(method, symbol)
            call_params = dict(params)
            if method not in _NO_PARAM_METHODS:
                call_params["requests_params"] = {"timeout": timeout}
            try:
                return getattr(client, method)(**call_params)
            except Exception as exc:
                if not is_transport_error(exc):
                    raise
                failure = exc
            if isinstance(failure, BinanceAPIException):
                if failure.code == CLOCK_SKEW and not resynced and not _clock_call:
                    resynced = True
                    self.sync_clock_sync()
                    continue
                wait = self._retry_wait(failure) if failure.status_code in RATE_LIMIT_STATUSES else None
                if wait is not None and not waited:
                    waited = True
                    log.warning("%s %s: HTTP %s, waiting Retry-After %.3fs", method, symbol or "", failure.status_code, wait)
                    self._sync_sleep(wait)
                    continue
            error = self._map(failure, method, symbol, idempotent)
            del failure
            raise error
