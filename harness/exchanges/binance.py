"""``OrderExecutionManager`` for Binance USD-M futures over python-binance (production, testnet, any URL).

::

    async with BinanceFuturesOrderManager(key, secret, base_url="http://127.0.0.1:8080") as om:
        positions = await om.get_all_positions([])          # AsyncClient
        cancelled = om.cancel_all_orders("BTCUSDT")          # sync Client (the engine runs it in a thread)
        result = await om.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))

Targets: ``base_url`` is an exchange root (``http://127.0.0.1:PORT``) and ``/fapi`` is added;
``testnet=True`` uses ``testnet_url`` (a root as well) or python-binance's ``FUTURES_TESTNET_URL``;
neither means production. ``target.kind`` says which (by host, so a ``base_url`` that names Binance's
production host is production) for the harness's safety checks.

Requests: clock offset from ``GET /fapi/v1/time`` (resynced on -1021), ``recvWindow`` from
``recv_window_ms``, each request bounded by ``min(request_timeout, remaining_time())``, exchangeInfo
read once. How closes avoid double execution: see ``_binance_close``; error mapping: see
``_binance_errors``.

``cancel_all_orders`` counts the symbol's open regular and algo orders (``GET openOrders`` and
``GET openAlgoOrders``), then always sends both ``DELETE allOpenOrders`` and
``DELETE algoOpenOrders`` (cheap, and safe against orders placed in between), and returns the count.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from binance.client import BaseClient

from harness.core.context import current_correlation_id
from harness.exchanges.hosts import host_kind
from harness.core.errors import ConfigError, ExchangeError, RetryableExchangeError, TerminalExchangeError
from harness.exchanges._binance_close import MarketCloser
from harness.exchanges._binance_errors import NOT_FOUND_CODES
from harness.exchanges._binance_ids import CLIENT_ORDER_ID_PATTERN, make_client_order_id
from harness.exchanges._binance_rules import (
    ExchangeRules,
    InvalidArgumentError,
    OrderPlan,
    SymbolRules,
    parse_exchange_info,
    plan_market_orders,
    to_decimal,
)
from harness.exchanges._binance_session import BinanceSession

__all__ = [
    "BinanceFuturesOrderManager",
    "CLIENT_ORDER_ID_PATTERN",
    "ExchangeRules",
    "ExchangeTarget",
    "InvalidArgumentError",
    "OrderPlan",
    "PRODUCTION_FUTURES_URL",
    "SymbolRules",
    "TESTNET_FUTURES_URL",
    "TargetKind",
    "classify_url",
    "make_client_order_id",
    "parse_exchange_info",
    "plan_market_orders",
    "resolve_target",
]

log = logging.getLogger("harness.exchanges.binance")

PRODUCTION_FUTURES_URL = BaseClient.FUTURES_URL.format("com")
TESTNET_FUTURES_URL = BaseClient.FUTURES_TESTNET_URL
_SYMBOL = re.compile(r"^[A-Z0-9_]{1,40}$")
_ZERO = Decimal("0")


class TargetKind(str, Enum):
    PRODUCTION = "production"
    TESTNET = "testnet"
    CUSTOM = "custom"


@dataclass(frozen=True)
class ExchangeTarget:
    kind: TargetKind
    futures_url: str  # what python-binance's FUTURES_URL is set to (ends in /fapi)

    def __str__(self) -> str:
        return f"{self.kind.value} {self.futures_url}"


def classify_url(url: str) -> TargetKind:
    """PRODUCTION for a Binance host, TESTNET for a known testnet host, else CUSTOM (harness.exchanges.hosts)."""
    return TargetKind(host_kind(url))


def _root_url(name: str, value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
        raise ConfigError(name, value, "an http(s) URL of the exchange root, e.g. http://127.0.0.1:8080")
    root = value.rstrip("/")
    if root.endswith("/fapi"):
        raise ConfigError(name, value, "the exchange root without /fapi (the adapter adds /fapi)")
    return root


def resolve_target(*, base_url: str | None = None, testnet: bool = False, testnet_url: str | None = None) -> ExchangeTarget:
    """Where the adapter sends requests (see the module docstring)."""
    if not isinstance(testnet, bool):
        raise ConfigError("testnet", testnet, "True or False")
    if base_url is not None and (testnet or testnet_url is not None):
        raise ConfigError("base_url", base_url, "either base_url or testnet/testnet_url, not both")
    if testnet_url is not None and not testnet:
        raise ConfigError("testnet_url", testnet_url, "only with testnet=True")
    if base_url is not None:
        url = _root_url("base_url", base_url) + "/fapi"
        return ExchangeTarget(classify_url(url), url)
    if testnet:
        url = _root_url("testnet_url", testnet_url) + "/fapi" if testnet_url is not None else TESTNET_FUTURES_URL
        kind = TargetKind.PRODUCTION if classify_url(url) is TargetKind.PRODUCTION else TargetKind.TESTNET
        return ExchangeTarget(kind, url)
    return ExchangeTarget(TargetKind.PRODUCTION, PRODUCTION_FUTURES_URL)


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
        base_url: str | None = None,
        testnet: bool = False,
        testnet_url: str | None = None,
        recv_window_ms: int = 5000,
        request_timeout: float = 5.0,
        symbols_info: Mapping[str, Any] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        sync_sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError("api_key", "<missing>" if not api_key else "<not a string>", "a non-empty string")
        if not isinstance(api_secret, str) or not api_secret.strip():
            raise ConfigError("api_secret", "<redacted>", "a non-empty string")
        if isinstance(recv_window_ms, bool) or not isinstance(recv_window_ms, int) or not 1 <= recv_window_ms <= 60000:
            raise ConfigError("recv_window_ms", recv_window_ms, "an int from 1 to 60000 (Binance's maximum)")
        if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) or not 0 < request_timeout <= 60:
            raise ConfigError("request_timeout", request_timeout, "seconds, a number > 0 and <= 60")
        self.target = resolve_target(base_url=base_url, testnet=testnet, testnet_url=testnet_url)
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
        )
        self._rules: ExchangeRules | None = self._given_rules(symbols_info)
        self._hedge: bool | None = None
        self._sequences: dict[tuple[str, str], int] = {}
        self._sequence_lock = threading.Lock()
        self._own_run_id = uuid.uuid4().hex  # client order ids outside an engine run

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
        await self._session.aclose()

    # -- exchange facts (cached) -----------------------------------------------------------
    async def exchange_rules(self) -> ExchangeRules:
        """exchangeInfo, read once per manager (or the ``symbols_info`` it was given)."""
        if self._rules is None:
            async with self._session.lock("exchange_info"):
                if self._rules is None:
                    raw = await self._session.call("futures_exchange_info", idempotent=True)
                    try:
                        self._rules = parse_exchange_info(raw)
                    except ValueError as exc:
                        raise RetryableExchangeError(f"futures_exchange_info: unusable reply: {exc}") from None
        return self._rules

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

    def _next_client_order_id(self, symbol: str) -> str:
        run = current_correlation_id.get() or self._own_run_id
        with self._sequence_lock:
            sequence = self._sequences.get((run, symbol), 0) + 1
            self._sequences[(run, symbol)] = sequence
        return make_client_order_id(run, symbol, sequence)

    # -- OrderExecutionManager -------------------------------------------------------------
    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        """Nonzero positions on ``symbols`` (``[]``: all), from ``GET /fapi/v3/positionRisk``."""
        if isinstance(symbols, str) or not isinstance(symbols, (list, tuple, set, frozenset)):
            raise InvalidArgumentError(f"symbols={symbols!r}: expected a list of symbols ([] for all)")
        wanted = {_symbol_arg(s) for s in symbols}
        mode, raw = await asyncio.gather(
            self.is_hedge_mode(),
            self._session.call("futures_position_information", idempotent=True),
            return_exceptions=True,
        )
        for outcome in (raw, mode):
            if isinstance(outcome, BaseException):
                raise outcome
        positions = []
        for entry in raw or []:
            symbol = str(entry.get("symbol", ""))
            if wanted and symbol not in wanted:
                continue
            try:
                amount = to_decimal(entry.get("positionAmt", "0"), name=f"{symbol}.positionAmt")
                mark = entry.get("markPrice")
                mark_price = to_decimal(mark, name=f"{symbol}.markPrice") if mark not in (None, "") else None
            except ValueError as exc:
                raise RetryableExchangeError(f"futures_position_information: unusable reply: {exc}") from None
            if amount == _ZERO:
                continue
            position = {"symbol": symbol, "position_amt": amount, "position_side": str(entry.get("positionSide") or "BOTH")}
            if mark_price is not None:
                position["mark_price"] = mark_price
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

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict:
        """Close ``quantity`` with MARKET order(s) (see ``_binance_close`` for the guarantees)."""
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
        )
        result = await closer.run(qty)
        log.info(
            "execute_market_close %s %s %s: executed %s status %s orders %s",
            symbol, side, qty, result["executed_qty"], result["status"], result["client_order_ids"],
        )
        return result


def _count_orders(reply: Any) -> int:
    if isinstance(reply, list):
        return len(reply)
    if isinstance(reply, Mapping):
        for key in ("orders", "rows", "data"):
            if isinstance(reply.get(key), list):
                return len(reply[key])
    return 0
