"""``OrderExecutionManager`` for Binance USD-M futures over python-binance (production, testnet, any URL).

::

    async with BinanceFuturesOrderManager(key, secret, target=resolve_target("testnet")) as om:
        positions = await om.get_all_positions([])          # AsyncClient
        cancelled = om.cancel_all_orders("BTCUSDT")          # sync Client (the engine runs it in a thread)
        result = await om.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))

Targets: ``target`` is a ``harness.exchanges.target.Target`` (resolved once by the caller, e.g.
``resolve_target``) and is used as is: python-binance's ``FUTURES_URL`` is ``target.futures_url``.
``base_url="http://127.0.0.1:PORT"`` is shorthand for ``target=target_for_url(base_url)`` (an
exchange root; a trailing ``/fapi`` is stripped, the kind follows the host); neither means
production. ``self.target.kind`` says which for the harness's safety checks.

Transport: ``transport="wire"`` (default) sends the liquidation's requests with the adapter's own
lean HTTP client (``harness.exchanges.binance.wire``), ``transport="python-binance"`` with
python-binance's ``AsyncClient``; the sync path is always python-binance's ``Client``. Not given,
it is ``$BINANCE_TRANSPORT`` (``session.transport_from_env``), so an operator can switch the bot
and ``liquidate`` back to python-binance without a code change.

Requests: clock offset from ``GET /fapi/v1/time`` (resynced on -1021), ``recvWindow`` from
``recv_window_ms``, each request bounded by ``min(request_timeout, remaining_time())``, exchangeInfo
read once. How closes avoid double execution: see ``harness.exchanges.binance.close``; error mapping: see
``harness.exchanges.binance.errors``.

``cancel_all_orders`` counts the symbol's open regular and algo orders (``GET openOrders`` and
``GET openAlgoOrders``), then always sends both ``DELETE allOpenOrders`` and
``DELETE algoOpenOrders`` (cheap, and safe against orders placed in between), and returns the count.
Outside an engine run (no snapshot) ``cancel_all_orders_async`` does the same: it cancels everything.

Speed (a liquidation should cost about three round trips at any account size):

* ``cancel_all_orders_async`` is the same cancel without a thread; the engine awaits it when an
  order manager has one, so hundreds of symbols cancel at once without hundreds of threads. It
  sends the two counting GETs together, then the two DELETEs together (2 round trips, not 4).
  Inside an engine run the counts come from ONE account-wide snapshot per run
  (``GET openOrders`` and ``GET openAlgoOrders`` without a symbol, 40 weight each) shared by every
  symbol, so a 200-symbol cancel costs 2 GETs instead of 400; if that snapshot fails, each symbol
  counts its own orders and sends both DELETEs. The count is what was open when the run began.
  From the snapshot, each book is cancelled only where it had an order: ``DELETE allOpenOrders``
  for a symbol with regular orders, ``DELETE algoOpenOrders`` for one with algo orders, nothing for
  a symbol with neither (a symbol that only has a position costs no cancel request). What that
  trades away: an order placed on an empty book AFTER the run's snapshot is not cancelled by this
  run (the same holds for a symbol the snapshot did not list at all, which no run could know of);
  the engine's run starts when the bot has stopped trading, so nothing of its own lands there.
* every request passes the session's rate limiter (``harness.exchanges.binance.limiter``), configured from
  exchangeInfo's ``rateLimits`` as soon as exchangeInfo is read; ``max_in_flight`` bounds
  concurrency and sizes both clients' connection pools; ``request_stats()`` reports the numbers.
* ``open_order_symbols()`` (``SupportsOrderSnapshot``) answers from that same per-run snapshot, so
  an engine run that looks for orders on the whole account costs no extra request.
* ``warm_up()`` reads the clock offset, exchangeInfo and the position mode ahead of time (a bot
  calls it at start-up), so a liquidation spends no round trip on anything that can be cached.
* a cold start (no ``warm_up``: the panic button) loses as little as it can: with
  ``clock_sync="alongside"`` (the default) the first signed requests go at once, signed with the
  local clock, while the offset is measured (a -1021 burst from a skewed clock costs one resync,
  see ``BinanceSession``); ``clock_sync="first"`` waits for the offset instead. exchangeInfo is
  read while the positions and open orders are read, not when the first close needs it.
* ``batch_orders=True`` (opt-in) sends closes of different symbols placed at the same moment
  together as ``POST /fapi/v1/batchOrders``, five to a request, fewer singly (see
  ``close.OrderBatcher``): every item keeps its own client order id and every ambiguous item is
  looked up by it before anything is resent, so it never double-fills; at 200 symbols it turns
  250 order requests into about 50. It is NOT the default because a batch shares one HTTP fate:
  one slow or hung item holds its four batch-mates until the request times out, and then all five
  need a lookup, which a 5 s deadline may not leave room for (the checklist's timeout scenario,
  one hung symbol, then leaves batch-mates open that a single order would have closed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from harness.core.context import current_correlation_id
from harness.core.errors import (
    ConfigError,
    ExchangeError,
    InvalidArgumentError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.exchanges.binance.close import MarketCloser, OrderBatcher
from harness.exchanges.binance.errors import NOT_FOUND_CODES
from harness.exchanges.binance.ids import make_client_order_id
from harness.exchanges.binance.limiter import AccountLimiter, RequestLimiter
from harness.exchanges.binance.rules import (
    ExchangeRules,
    SymbolRules,
    parse_exchange_info,
    parse_position_rows,
    to_decimal,
)
from harness.exchanges.binance.session import (
    CLOCK_SYNC_MODES,
    DEFAULT_MAX_IN_FLIGHT,
    TRANSPORTS,
    BinanceSession,
    run_quietly,
    transport_from_env,
)
from harness.exchanges.target import PRODUCTION_ROOT_URL, Target, TargetKind, target_for_url


log = logging.getLogger(__name__)

_SYMBOL = re.compile(r"^[A-Z0-9_]{1,40}$")
_ZERO = Decimal("0")
#: runs whose client-order-id sequences are kept (a run's retries need its own; older runs are done)
MAX_TRACKED_RUNS = 8
_AUTH_CODES = frozenset({-2014, -2015, -1022})
_CANCEL_METHODS = ("futures_cancel_all_open_orders", "futures_cancel_all_algo_open_orders")


def _adapter_target(target: Any, base_url: Any) -> Target:
    """``target`` as given, or the target at ``base_url``, or Binance production."""
    if target is not None and base_url is not None:
        raise ConfigError("base_url", base_url, "either target or base_url, not both")
    if target is not None:
        if not isinstance(target, Target):
            raise ConfigError("target", type(target).__name__, "a harness.exchanges.target.Target (see resolve_target)")
        return target
    if base_url is not None:
        return target_for_url(base_url, field="base_url")
    return Target(TargetKind.PRODUCTION, PRODUCTION_ROOT_URL)


def _symbol_arg(symbol: Any) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise InvalidArgumentError(f"symbol={symbol!r}: expected an upper-case Binance symbol such as 'BTCUSDT'")
    return symbol


class BinanceFuturesOrderManager:
    """``harness.core.ports.OrderExecutionManager`` over python-binance (module docstring)."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        target: Target | None = None,
        base_url: str | None = None,
        recv_window_ms: int = 5000,
        request_timeout: float = 5.0,
        symbols_info: Mapping[str, Any] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        sync_sleep: Callable[[float], Any] = time.sleep,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        batch_orders: bool = False,
        weight_limiter: RequestLimiter | None = None,
        transport: str | None = None,
        clock_sync: str = "alongside",
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("api_key", "<missing>" if not api_key else "<not a string>", "a non-empty string")
        if not isinstance(api_secret, str) or not api_secret.strip():
            raise ConfigError("api_secret", "<redacted>", "a non-empty string")
        if isinstance(recv_window_ms, bool) or not isinstance(recv_window_ms, int) or not 1 <= recv_window_ms <= 60000:
            raise ConfigError("recv_window_ms", recv_window_ms, "an int from 1 to 60000 (Binance's maximum)")
        if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) or not 0 < request_timeout <= 60:
            raise ConfigError("request_timeout", request_timeout, "seconds, a number > 0 and <= 60")
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or not 1 <= max_in_flight <= 4096:
            raise ConfigError("max_in_flight", max_in_flight, "an int from 1 to 4096 (requests in flight at once)")
        if transport is None:
            transport = transport_from_env()
        if transport not in TRANSPORTS:
            raise ConfigError("transport", transport, " or ".join(repr(t) for t in TRANSPORTS))
        if clock_sync not in CLOCK_SYNC_MODES:
            raise ConfigError("clock_sync", clock_sync, " or ".join(repr(m) for m in CLOCK_SYNC_MODES))
        self.target = _adapter_target(target, base_url)
        self.recv_window_ms = recv_window_ms
        self.request_timeout = float(request_timeout)
        self._session = BinanceSession(
            api_key,
            api_secret,
            self.target.futures_url,
            recv_window_ms=recv_window_ms,
            request_timeout=self.request_timeout,
            sleep=sleep,
            sync_sleep=sync_sleep,
            max_in_flight=max_in_flight,
            # accounts on one exchange host share the per-IP weight budget; orders stay per account
            limiter=None if weight_limiter is None else AccountLimiter(weight_limiter),
            transport=transport,
            clock_sync=clock_sync,
        )
        self._rules: ExchangeRules | None = self._given_rules(symbols_info)
        if self._rules is not None:
            self._session.limiter.configure(self._rules.rate_limits)
        self._hedge: bool | None = None
        self._sequences: OrderedDict[str, dict[str, int]] = OrderedDict()
        self._sequence_lock = threading.Lock()
        self._order_snapshot: tuple[str, asyncio.Future[dict[str, tuple[int, int]]]] | None = None
        if not isinstance(batch_orders, bool):
            raise ConfigError("batch_orders", batch_orders, "True or False")
        self._batcher = OrderBatcher(self._session) if batch_orders else None
        self._own_run_id = uuid.uuid4().hex  # client order ids outside an engine run
        self._rules_prefetch: asyncio.Task[Any] | None = None

    @staticmethod
    def _given_rules(symbols_info: Mapping[str, Any] | None) -> ExchangeRules | None:
        if symbols_info is None:
            return None
        if isinstance(symbols_info, Mapping) and "symbols" in symbols_info:
            try:
                return parse_exchange_info(symbols_info)
            except ValueError as exc:
                raise ConfigError("symbols_info", "<exchangeInfo>", str(exc)) from None
        if isinstance(symbols_info, Mapping) and all(isinstance(v, SymbolRules) for v in symbols_info.values()):
            return ExchangeRules(symbols=dict(symbols_info))
        raise ConfigError("symbols_info", type(symbols_info).__name__, "an exchangeInfo dict or {symbol: SymbolRules}")

    def __repr__(self) -> str:
        key = self._session.api_key
        return (
            f"{type(self).__name__}(target={self.target}, api_key={key[:4]}..., "
            f"recv_window_ms={self.recv_window_ms}, request_timeout={self.request_timeout})"
        )

    async def __aenter__(self) -> BinanceFuturesOrderManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close both HTTP sessions (the AsyncClient's and the sync Client's)."""
        snapshot, self._order_snapshot = self._order_snapshot, None
        if snapshot is not None and not snapshot[1].done():
            snapshot[1].cancel()
        prefetch, self._rules_prefetch = self._rules_prefetch, None
        if prefetch is not None and not prefetch.done():
            prefetch.cancel()
        await self._session.aclose()

    async def warm_up(self, *, connections: int = 0) -> ExchangeRules:
        """Read ahead what every liquidation needs: clock offset, exchangeInfo (rules and rate limits)
        and the position mode; a bot calls this at start-up so a liquidation re-reads none of them.

        ``connections`` > 0 also opens that many pooled keep-alive connections (capped at
        ``max_in_flight``) with concurrent ``GET /fapi/v1/ping`` (weight 1 each), so a liquidation's
        first burst pays no TCP (or TLS) handshakes; they stay open while used within
        ``KEEPALIVE_SECONDS``.
        """
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 0:
            raise InvalidArgumentError(f"connections={connections!r}: expected an int >= 0")
        await self._session.ensure_clock()
        pings = min(connections, self._session.max_in_flight)
        rules, *others = await asyncio.gather(
            self.exchange_rules(),
            self.is_hedge_mode(),  # signed: a key the exchange refuses shows here (-2014/-2015/-1022)
            *(self._session.call("futures_ping", idempotent=True) for _ in range(pings)),
            return_exceptions=True,
        )
        failures = [o for o in (rules, *others) if isinstance(o, BaseException)]
        if failures:  # a refused key first: it is the one failure that will not go away by itself
            raise next((f for f in failures if getattr(f, "code", None) in _AUTH_CODES), failures[0])
        return rules

    def prewarm_connections(self, connections: int) -> int:
        """Start opening up to ``connections`` pooled connections now, without a request (TCP and TLS
        handshakes cost round trips of their own on a real exchange): a cold start calls this before
        its first reads so the burst of cancels and closes that follows finds them open. Returns how
        many it started (0 with ``transport="python-binance"``, whose pool opens only with requests)."""
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 0:
            raise InvalidArgumentError(f"connections={connections!r}: expected an int >= 0")
        return self._session.prewarm(connections)

    def request_stats(self) -> dict[str, float]:
        """The rate limiter's counters: requests, weight, orders, queueing, peak in flight, the highest
        usage Binance reported (``max_weight_seen``, ``max_orders_10s_seen``...) and 429/418 seen."""
        return self._session.limiter.stats()

    # -- exchange facts (cached) -----------------------------------------------------------
    async def exchange_rules(self) -> ExchangeRules:
        """exchangeInfo, read once per manager (or the ``symbols_info`` it was given)."""
        if self._rules is None:
            async with self._session.lock("exchange_info"):
                if self._rules is None:
                    raw = await self._session.call("futures_exchange_info", idempotent=True)
                    try:
                        rules = parse_exchange_info(raw)
                    except ValueError as exc:
                        raise RetryableExchangeError(f"futures_exchange_info: unusable reply: {exc}") from None
                    self._session.limiter.configure(rules.rate_limits)
                    self._rules = rules
        return self._rules

    def _prefetch_rules(self) -> None:
        """Without ``warm_up`` (a cold start: the panic button), read exchangeInfo while the positions
        and open orders are read, so the first close does not wait a round trip for it. A failed
        prefetch is only logged: the close reads it again and reports what fails then."""
        if self._rules is None and (self._rules_prefetch is None or self._rules_prefetch.done()):
            self._rules_prefetch = asyncio.ensure_future(
                run_quietly(self.exchange_rules(), "exchangeInfo prefetch failed (the first close reads it again)"))

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        rules = (await self.exchange_rules()).symbols.get(_symbol_arg(symbol))
        if rules is None:
            raise TerminalExchangeError(f"{symbol}: not in exchangeInfo (invalid symbol)", code=-1121, symbol=symbol)
        return rules

    async def is_hedge_mode(self, *, refresh: bool = False) -> bool:
        """The account's position mode (``GET /fapi/v1/positionSide/dual``), cached until refreshed."""
        if self._hedge is None or refresh:
            reply = await self._session.call("futures_get_position_mode", idempotent=True)
            value = reply.get("dualSidePosition") if isinstance(reply, Mapping) else None
            if str(value).lower() not in ("true", "false"):
                raise RetryableExchangeError(f"futures_get_position_mode: unexpected reply {reply!r:.200}")
            self._hedge = str(value).lower() == "true"
        return self._hedge

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> Any:
        """Arm (``countdown_ms`` > 0) or disarm (0) the exchange's dead-man's switch for ``symbol``:
        ``POST /fapi/v1/countdownCancelAll`` (see ``harness.bot.deadman``)."""
        if isinstance(countdown_ms, bool) or not isinstance(countdown_ms, int) or countdown_ms < 0:
            raise InvalidArgumentError(f"countdown_ms={countdown_ms!r}: expected an int >= 0 (0 disarms)")
        return await self._session.call(
            "futures_countdown_cancel_all", symbol=_symbol_arg(symbol), idempotent=True, countdownTime=countdown_ms
        )

    def _next_client_order_id(self, symbol: str) -> str:
        run = current_correlation_id.get() or self._own_run_id
        with self._sequence_lock:
            sequences = self._sequences.get(run)
            if sequences is None:
                sequences = self._sequences[run] = {}
                while len(self._sequences) > MAX_TRACKED_RUNS:  # bounded: a long-lived bot never grows
                    self._sequences.popitem(last=False)
            sequence = sequences.get(symbol, 0) + 1
            sequences[symbol] = sequence
        return make_client_order_id(run, symbol, sequence)

    # -- OrderExecutionManager -------------------------------------------------------------
    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        """Nonzero positions on ``symbols`` (``[]``: all), from ``GET /fapi/v3/positionRisk``."""
        if isinstance(symbols, str) or not isinstance(symbols, (list, tuple, set, frozenset)):
            raise InvalidArgumentError(f"symbols={symbols!r}: expected a list of symbols ([] for all)")
        wanted = {_symbol_arg(s) for s in symbols}
        self._prefetch_rules()
        mode, raw = await asyncio.gather(
            self.is_hedge_mode(),
            self._session.call("futures_position_information", idempotent=True),
            return_exceptions=True,
        )
        for outcome in (raw, mode):
            if isinstance(outcome, BaseException):
                raise outcome
        try:  # a reply it cannot read is an error, never "no position" (see parse_position_rows)
            rows = parse_position_rows(raw)
        except ValueError as exc:
            raise RetryableExchangeError(f"futures_position_information: unusable reply: {exc}") from None
        positions = []
        for row in rows:
            if (wanted and row.symbol not in wanted) or row.amount == _ZERO:
                continue
            position = {"symbol": row.symbol, "position_amt": row.amount, "position_side": row.position_side}
            if row.mark_price is not None:
                position["mark_price"] = row.mark_price
            positions.append(position)
        return positions

    def cancel_all_orders(self, symbol: str) -> int:
        """Cancel the symbol's regular and algo orders; returns how many were open (0 is fine)."""
        symbol = _symbol_arg(symbol)
        call = self._session.call_sync
        regular = call("futures_get_open_orders", symbol=symbol, idempotent=True)
        algo = call("futures_get_open_algo_orders", symbol=symbol, idempotent=True)
        for method in ("futures_cancel_all_open_orders", "futures_cancel_all_algo_open_orders"):
            try:
                call(method, symbol=symbol, idempotent=True)
            except ExchangeError as exc:
                if exc.code not in NOT_FOUND_CODES:
                    raise
        count = _count_orders(regular) + _count_orders(algo)
        log.info("cancel_all_orders %s: %d open order(s) cancelled", symbol, count)
        return count

    async def cancel_all_orders_async(self, symbol: str) -> int:
        """``cancel_all_orders`` on the event loop: no thread, 2 round trips (module docstring)."""
        symbol = _symbol_arg(symbol)
        counts = await self._run_open_order_counts()
        if counts is None:  # outside a run, or no snapshot: count here and cancel both books
            regular, algo = await _all_or_raise(
                self._session.call("futures_get_open_orders", symbol=symbol, idempotent=True),
                self._session.call("futures_get_open_algo_orders", symbol=symbol, idempotent=True),
            )
            count = _count_orders(regular) + _count_orders(algo)
            methods: tuple[str, ...] = _CANCEL_METHODS
        else:  # the run's snapshot: cancel only the books that had an order (module docstring)
            books = counts.get(symbol, (0, 0))
            count = sum(books)
            methods = tuple(method for method, open_ in zip(_CANCEL_METHODS, books) if open_)
        await _all_or_raise(*(self._cancel_all(method, symbol) for method in methods))
        log.info("cancel_all_orders %s: %d open order(s) cancelled", symbol, count)
        return count

    async def _cancel_all(self, method: str, symbol: str) -> None:
        try:
            await self._session.call(method, symbol=symbol, idempotent=True)
        except ExchangeError as exc:
            if exc.code not in NOT_FOUND_CODES:
                raise

    async def open_order_symbols(self) -> set[str]:
        """Every symbol of the account with an open regular or algo order (``SupportsOrderSnapshot``):
        ``GET openOrders`` and ``GET openAlgoOrders`` without a symbol. Inside an engine run it is the
        run's one snapshot (the same the cancels count from); raises when either book is unreadable."""
        self._prefetch_rules()
        return set(await asyncio.shield(self._snapshot_future()))

    def _snapshot_future(self) -> asyncio.Future[dict[str, tuple[int, int]]]:
        """The account-wide open-order counts (symbol -> (regular, algo)): one shared read per engine
        run, a fresh one outside a run."""
        run = current_correlation_id.get()
        if run is None:
            return asyncio.ensure_future(self._read_open_order_counts())
        snapshot = self._order_snapshot
        failed = snapshot is not None and snapshot[1].done() and (snapshot[1].cancelled() or snapshot[1].exception() is not None)
        if snapshot is None or failed or snapshot[0] != run or snapshot[1].get_loop() is not asyncio.get_running_loop():
            snapshot = (run, asyncio.ensure_future(self._read_open_order_counts()))  # a failed read is read again
            self._order_snapshot = snapshot
        return snapshot[1]

    async def _run_open_order_counts(self) -> dict[str, tuple[int, int]] | None:
        """Open (regular, algo) orders per symbol when the current engine run began (one snapshot per
        run, shared by every symbol's cancel); None outside a run or when the snapshot could not be read."""
        if current_correlation_id.get() is None:
            return None
        future = self._snapshot_future()
        try:
            return await asyncio.shield(future)
        except ExchangeError as exc:
            log.warning("open-order snapshot failed (%s): counting per symbol", exc)
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and (task is None or not task.cancelling()):
                return None  # the snapshot was abandoned (adapter closing), not this cancel
            raise

    async def _read_open_order_counts(self) -> dict[str, tuple[int, int]]:
        regular, algo = await _all_or_raise(
            self._session.call("futures_get_open_orders", idempotent=True),
            self._session.call("futures_get_open_algo_orders", idempotent=True),
        )
        counts: dict[str, tuple[int, int]] = {}
        for book, reply in enumerate((regular, algo)):
            orders = _order_list(reply)
            if orders is None:
                raise RetryableExchangeError(f"open orders: unexpected reply {reply!r:.200}")
            for order in orders:
                symbol = order.get("symbol") if isinstance(order, Mapping) else None
                if not isinstance(symbol, str):
                    raise RetryableExchangeError(f"open orders: an order without a symbol: {order!r:.200}")
                regular_count, algo_count = counts.get(symbol, (0, 0))
                counts[symbol] = (regular_count + 1, algo_count) if book == 0 else (regular_count, algo_count + 1)
        return counts

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict:
        """Close ``quantity`` with MARKET order(s) (see ``harness.exchanges.binance.close`` for the guarantees)."""
        symbol = _symbol_arg(symbol)
        if not isinstance(side, str) or side.upper() not in ("BUY", "SELL"):
            raise InvalidArgumentError(f"side={side!r}: expected 'BUY' or 'SELL'")
        qty = to_decimal(quantity, name="quantity")
        if qty <= 0:
            raise InvalidArgumentError(f"quantity={quantity!r}: must be > 0")
        rules = await self.symbol_rules(symbol)
        closer = MarketCloser(
            self._session,
            rules,
            side.upper(),
            hedge=await self.is_hedge_mode(),
            next_client_order_id=lambda: self._next_client_order_id(symbol),
            refresh_hedge_mode=lambda: self.is_hedge_mode(refresh=True),
            send_order=None if self._batcher is None else functools.partial(self._batcher.place, symbol),
        )
        result = await closer.run(qty)
        log.info(
            "execute_market_close %s %s %s: executed %s status %s orders %s",
            symbol, side, qty, result["executed_qty"], result["status"], result["client_order_ids"],
        )
        return result


def _order_list(reply: Any) -> list[Any] | None:
    if isinstance(reply, list):
        return reply
    if isinstance(reply, Mapping):
        for key in ("orders", "rows", "data"):
            if isinstance(reply.get(key), list):
                return reply[key]
    return None


def _count_orders(reply: Any) -> int:
    orders = _order_list(reply)
    return 0 if orders is None else len(orders)


async def _all_or_raise(*calls: Awaitable[Any]) -> list[Any]:
    """Await ``calls`` together; every one finishes, then the first failure (if any) is raised."""
    if len(calls) == 1:  # no task for a lone call (most symbols have one book to cancel)
        return [await calls[0]]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return list(outcomes)
