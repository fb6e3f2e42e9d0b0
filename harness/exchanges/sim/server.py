"""``BinanceSimulator``: Binance USD-M futures REST over real HTTP on 127.0.0.1.

The real python-binance client talks to it (set ``client.FUTURES_URL = sim.base_url + "/fapi"``).
It serves from its own thread and event loop (aiohttp), so a test can use it from sync code or
from inside another event loop, a hung request never blocks the others, and ``stop()`` returns
promptly even with hung requests (it releases the fault plan's hangs, then cancels what is left).

    with BinanceSimulator() as sim:                     # or: async with BinanceSimulator() as sim:
        sim.book.set_position("BTCUSDT", "0.010")
        sim.faults.error(503, endpoint="new_order", times=1)
        client = Client(sim.api_key, sim.api_secret, ping=False)
        client.FUTURES_URL = sim.base_url + "/fapi"
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

from aiohttp import web

from harness.core.errors import ConfigError

from ..loop_thread import STOP_TIMEOUT_SECONDS, LoopThreadServer
from ._http import HttpFace, HttpSettings, RequestRecord
from ._models import Fill
from ._ratelimit import RateLimiter, RateLimits
from ._routes_account import ListenKeys
from ._streams import StreamHub
from .book import SimBook
from .faults import FaultPlan

SHUTDOWN_GRACE_SECONDS = 0.5
COUNTDOWN_TICK_SECONDS = 0.01
#: pending connections the listening socket queues (aiohttp's default 128 drops SYNs when a client
#: opens a few hundred connections at once, and each drop costs that client a 1 s retransmit)
LISTEN_BACKLOG = 1024


def _loopback(host: str) -> str:
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ConfigError("host", host, "a loopback address (127.0.0.1, ::1 or localhost): the simulator's "
                                    "credentials are public test values")


class BinanceSimulator(LoopThreadServer):
    """The embedded exchange's HTTP face over a ``SimBook`` and a ``FaultPlan``."""

    thread_name = "binance-simulator"

    def __init__(
        self,
        book: SimBook | None = None,
        faults: FaultPlan | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        api_secret: str | None = None,
        recv_window_max: int = 60000,
        rate_limits: RateLimits | Mapping[str, int] | None = None,
        stream_legacy_paths: bool = True,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError("port", port, "an integer in 0..65535 (0 = any free port)")
        if isinstance(recv_window_max, bool) or not isinstance(recv_window_max, int) or recv_window_max < 1:
            raise ConfigError("recv_window_max", recv_window_max, "an integer number of milliseconds >= 1")
        self.host = _loopback(host)
        self.book = book if book is not None else SimBook()
        self.faults = faults if faults is not None else FaultPlan()
        self.api_key = api_key or secrets.token_hex(32)
        self.api_secret = api_secret or secrets.token_hex(32)
        self.recv_window_max = recv_window_max
        self._limiter = RateLimiter(RateLimits.coerce(rate_limits))
        self.listen_keys = ListenKeys(self.book)
        if not isinstance(stream_legacy_paths, bool):
            raise ConfigError("stream_legacy_paths", stream_legacy_paths,
                              "True (also serve /ws and /stream) or False (only /public, /market, /private)")
        self.streams = StreamHub(self.book, self.listen_keys, legacy_paths=stream_legacy_paths)
        self._requested_port = port
        self._log_lock = threading.Lock()
        self._logged = threading.Condition(self._log_lock)
        self._requests: list[RequestRecord] = []
        self._runner: web.AppRunner | None = None
        self._init_loop_thread()
        self._countdown_cond = threading.Condition()
        self._countdown_observer: Callable[[str, Any], None] | None = None
        self._countdowns_fired: list[tuple[str, int]] = []

    def __repr__(self) -> str:  # never shows the credentials
        where = self.base_url if self._port else "not started"
        return f"<BinanceSimulator {where}>"

    # ------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._port is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; python-binance's ``FUTURES_URL`` is this plus ``/fapi``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def streams_url(self) -> str:
        """``ws://127.0.0.1:PORT``: the WebSocket streams, on the REST port (see docs/SIMULATOR.md).

        Binance's ``wss://fstream.binance.com`` maps to this: ``/ws/<listenKey>``, ``/stream?streams=``,
        ``/market/...``, ``/public/...``, ``/private/ws?listenKey=...``. python-binance:
        ``BinanceSocketManager.FSTREAM_URL = sim.streams_url + "/"``; ccxt.pro:
        ``urls["api"]["ws"]["linear"] = sim.streams_url + "/ws"``.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    async def __aenter__(self) -> BinanceSimulator:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    def call_in_loop(self, function: Callable[[], Any], timeout: float = STOP_TIMEOUT_SECONDS) -> Any:
        """Run ``function()`` on the serving thread (between requests) and return its result; for tools
        that must act on that thread, such as a profiler of the simulator's own CPU."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("BinanceSimulator is not started: call start() or use it as a context manager")

        async def call() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    async def _startup(self) -> None:
        settings = HttpSettings(self.book, self.faults, self._limiter, self.api_key, self.api_secret,
                                self.recv_window_max, self._record, self.listen_keys)
        app = HttpFace(settings).app(before=self.streams.add_routes)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
                               handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port, backlog=LISTEN_BACKLOG)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        loop = asyncio.get_running_loop()
        self._countdown_armed = asyncio.Event()
        self._countdown_observer = self._on_book_event(loop, self._countdown_armed)
        self.book.add_observer(self._countdown_observer)
        loop.create_task(self._countdown_ticker(self._countdown_armed))
        self.streams.start()

    async def _shutdown(self) -> None:
        if self._countdown_observer is not None:
            self.book.remove_observer(self._countdown_observer)
            self._countdown_observer = None
        if self._runner is not None:
            self.faults.release_hangs()
            await self._runner.cleanup()
            self._runner = None

    @staticmethod
    def _on_book_event(loop: asyncio.AbstractEventLoop, armed: asyncio.Event) -> Callable[[str, Any], None]:
        """A book observer that wakes the countdown ticker when a switch is armed (from any thread)."""
        def observe(kind: str, data: Any) -> None:
            if kind == "countdown" and not loop.is_closed():
                loop.call_soon_threadsafe(armed.set)
        return observe

    async def _countdown_ticker(self, armed: asyncio.Event) -> None:
        """Fire dead-man's switches when they run out (the book itself does no I/O or timing).

        Every ``COUNTDOWN_TICK_SECONDS`` while a switch is armed; with none armed it sleeps until one
        is (a server with no switch does not wake a hundred times a second for nothing)."""
        book = self.book
        while True:
            armed.clear()  # before reading the book: an arm from now on sets it again
            fired = book.run_due_countdowns()
            if fired:
                with self._countdown_cond:
                    self._countdowns_fired.extend(fired.items())
                    self._countdown_cond.notify_all()
            if book.next_countdown_deadline() is None:
                await armed.wait()
            else:
                await asyncio.sleep(COUNTDOWN_TICK_SECONDS)

    def wait_for_user_stream(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``count`` WebSocket connections listen to the user data stream (a bot that
        subscribes before trading); False on ``timeout``. From async code: ``asyncio.to_thread``."""
        return self.streams.wait_for_user_listeners(count, timeout)

    @property
    def countdowns_fired(self) -> list[tuple[str, int]]:
        """(symbol, orders cancelled) for every dead-man's switch that ran out, oldest first."""
        with self._countdown_cond:
            return list(self._countdowns_fired)

    def wait_for_countdown(self, symbol: str, timeout: float = 5.0) -> int | None:
        """Block until the symbol's switch fires; the orders it cancelled, or None on ``timeout``."""
        def fired() -> int | None:
            return next((n for s, n in self._countdowns_fired if s == symbol), None)

        with self._countdown_cond:
            self._countdown_cond.wait_for(lambda: fired() is not None, timeout)
            return fired()

    # ------------------------------------------------------------ control API
    def set_position(self, symbol: str, amount: str | Decimal | int, position_side: str = "BOTH", *,
                     entry_price: str | Decimal | None = None) -> None:
        self.book.set_position(symbol, amount, position_side, entry_price=entry_price)

    def set_mark_price(self, symbol: str, price: str | Decimal) -> list[Fill]:
        return self.book.set_mark_price(symbol, price)

    def set_hedge_mode(self, enabled: bool) -> None:
        self.book.set_hedge_mode(enabled)

    def place_order(self, symbol: str, side: str, order_type: str, quantity: str | Decimal | None = None,
                    price: str | Decimal | None = None, **kwargs: Any) -> dict[str, Any]:
        """Seed an order straight into the book (no HTTP, no rate limit, no margin check unless
        ``margin_check=True``); Binance's JSON back."""
        kwargs.setdefault("margin_check", False)
        return self.book.place_order(symbol, side, order_type, quantity, price, **kwargs).to_api()

    def place_algo_order(self, symbol: str, side: str, order_type: str, **kwargs: Any) -> dict[str, Any]:
        return self.book.place_algo_order(symbol, side, order_type, **kwargs).to_api()

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every request served, oldest first; parameters never include the signature."""
        with self._log_lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RequestRecord]:
        """Logged requests whose path ends with ``path`` (e.g. ``"v1/order"``), of ``method`` if given."""
        return [r for r in self.request_log if r.path.endswith(path) and method in (None, r.method)]

    def wait_for_requests(self, path: str, count: int, method: str | None = None, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests to ``path`` are logged; False on ``timeout``. A
        request is logged when it is answered, or when its client went away while it hung (which the
        server learns a moment after the client has moved on). From async code: ``asyncio.to_thread``."""
        def enough() -> bool:
            return sum(1 for r in self._requests if r.path.endswith(path) and method in (None, r.method)) >= count

        with self._logged:
            return self._logged.wait_for(enough, timeout)

    @property
    def fill_log(self) -> list[Fill]:
        return self.book.fill_log

    @property
    def rate_limited_count(self) -> int:
        """How many requests got HTTP 429."""
        return self._limiter.rejected_429

    @property
    def banned_count(self) -> int:
        """How many requests got HTTP 418 (banned)."""
        return self._limiter.rejected_418

    def _record(self, record: RequestRecord) -> None:
        with self._logged:
            self._requests.append(record)
            self._logged.notify_all()
