"""An ``OrderExecutionManager`` written on ccxt's ``binanceusdm``: how a team that trades with ccxt
plugs its own exchange code into the liquidation engine.

``factory(exchange_url, api_key, api_secret)`` is the conformance kit's entry point::

    pytest --order-manager examples.ccxt_bot.om:factory scenarios/test_order_manager_conformance.py

It uses ccxt's raw Binance endpoints (``fapiPrivateV2GetPositionRisk``, ``fapiPrivatePostOrder``, ...)
rather than the unified methods, because the engine needs Binance's exact strings (quantities as
``Decimal``, never float) and flags (``reduceOnly``, ``positionSide``). ccxt signs the requests and
builds the URLs (``harness.connect.ccxt_options``).

Contract (``harness.core.ports``): positions as signed ``Decimal``s, an answer it cannot read raises;
the cancel counts regular and algo orders, then deletes both; closes are MARKET, reduce-only in one-way
mode and ``positionSide`` in hedge mode, rounded down to LOT_SIZE's step and split at MARKET_LOT_SIZE's
``maxQty``; errors are ``harness.core.errors`` classes by Binance's code
(``harness.exchanges.codes``); an order whose fate is unknown is looked up by its client order id
before anything else is sent; every request is bounded by the run's deadline
(``harness.core.context.remaining_time``).
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async

from harness.connect import ccxt_options
from harness.core.context import remaining_time
from harness.core.errors import (
    AmbiguousExchangeError,
    ExchangeError,
    InvalidArgumentError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.exchanges.codes import CodeClass, codes_in

REQUEST_TIMEOUT_SECONDS = 5.0
_CODE = re.compile(r'"code"\s*:\s*(-?\d+)\s*,\s*"msg"\s*:\s*"([^"]*)"')
_SYMBOL = re.compile(r"^[A-Z0-9_]{1,40}$")
_TERMINAL = codes_in(CodeClass.TERMINAL)
_AMBIGUOUS = codes_in(CodeClass.AMBIGUOUS)
_NOT_FOUND = codes_in(CodeClass.NOT_FOUND)
_RETRYABLE = codes_in(CodeClass.RETRYABLE)
_CERTAIN_FAILURES = ("Service Unavailable.", "Internal error")


def _decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise ExchangeError(f"unreadable exchange answer: {what}={value!r} is not a number") from None
    if not number.is_finite():
        raise ExchangeError(f"unreadable exchange answer: {what}={value!r} is not a finite number")
    return number


def _retry_after(headers: Any) -> float | None:
    """The Retry-After header (whole seconds, as Binance sends it on 418/429), else None."""
    for name, value in dict(headers or {}).items():
        if str(name).lower() == "retry-after":
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 else None
    return None


def _keep_retry_after(cls: type) -> type:
    """``cls`` (a ccxt exchange class) whose HTTP errors carry the answer's Retry-After as ``retry_after``:
    ccxt reads the headers but drops them from the exception it raises."""

    class WithRetryAfter(cls):  # type: ignore[misc, valid-type]
        def handle_errors(self, code: int, reason: str, url: str, method: str, headers: Any, *rest: Any) -> Any:
            try:
                return super().handle_errors(code, reason, url, method, headers, *rest)
            except ccxt.BaseError as exc:
                exc.retry_after = _retry_after(headers)  # type: ignore[attr-defined]
                raise

    WithRetryAfter.__name__ = cls.__name__
    return WithRetryAfter


_AsyncBinance = _keep_retry_after(ccxt_async.binanceusdm)
_SyncBinance = _keep_retry_after(ccxt.binanceusdm)


def _classify(exc: Exception, *, placing: bool, symbol: str | None) -> ExchangeError:
    """A ccxt exception as a ``harness.core.errors`` class (message without URL or signature).

    Binance's code decides when the table knows it; otherwise ccxt's class stands for the HTTP status:
    a 4xx (``ccxt.ExchangeError``) is terminal, a 5xx / 429 / transport failure retryable, except that
    on an order placement anything but a certain failure may hide an executed order (ambiguous).
    """
    found = _CODE.search(str(exc))
    code, msg = (int(found.group(1)), found.group(2)) if found else (None, type(exc).__name__)
    message = f"{symbol + ': ' if symbol else ''}{'code=%d ' % code if code is not None else ''}{msg}"
    if code in _TERMINAL or code in _NOT_FOUND:
        return TerminalExchangeError(message, code=code, symbol=symbol)
    if code in _AMBIGUOUS:
        cls = AmbiguousExchangeError if placing else RetryableExchangeError
        return cls(message, code=code, symbol=symbol)
    if code in _RETRYABLE:
        return RetryableExchangeError(message, code=code, symbol=symbol, retry_after=getattr(exc, "retry_after", None))
    if isinstance(exc, ccxt.ExchangeError):  # any other 4xx rejection
        return TerminalExchangeError(message, code=code, symbol=symbol)
    if placing and not msg.startswith(_CERTAIN_FAILURES):
        return AmbiguousExchangeError(f"{message}: the order may have executed", code=code, symbol=symbol)
    return RetryableExchangeError(message, code=code, symbol=symbol)


def _symbol_arg(symbol: Any) -> str:
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise InvalidArgumentError(f"symbol={symbol!r}: expected an upper-case Binance symbol such as 'BTCUSDT'")
    return symbol


class CcxtOrderManager:
    """``harness.core.ports.OrderExecutionManager`` over ccxt (module docstring)."""

    def __init__(self, exchange_url: str | None, api_key: str, api_secret: str) -> None:
        options = ccxt_options(exchange_url=exchange_url, api_key=api_key, api_secret=api_secret) \
            if exchange_url else ccxt_options(api_key=api_key, api_secret=api_secret)
        options["timeout"] = int(REQUEST_TIMEOUT_SECONDS * 1000)
        self.exchange = _AsyncBinance(dict(options))  # positions and closes (the engine's loop)
        self.sync_exchange = _SyncBinance(dict(options))   # the synchronous cancel (engine's threads)
        self._sync_lock = threading.Lock()
        self._rules: dict[str, tuple[Decimal, Decimal]] | None = None  # symbol -> (step, market max qty)
        self._hedge: bool | None = None
        self._run = uuid.uuid4().hex[:12]
        self._sequence = 0

    def __repr__(self) -> str:  # never the keys
        return f"CcxtOrderManager({self.exchange.urls['api']['fapiPrivate']})"

    # ------------------------------------------------------------------ plumbing
    async def _call(self, method: str, params: dict[str, Any], *, placing: bool = False,
                    symbol: str | None = None) -> Any:
        budget = remaining_time(REQUEST_TIMEOUT_SECONDS)
        assert budget is not None
        if budget <= 0:
            raise RetryableExchangeError(f"{symbol or ''} run deadline passed before {method}".strip(), symbol=symbol)
        try:
            return await asyncio.wait_for(getattr(self.exchange, method)(params), min(budget, REQUEST_TIMEOUT_SECONDS))
        except (ccxt.BaseError, asyncio.TimeoutError) as exc:
            raise _classify(exc, placing=placing, symbol=symbol) from None

    def _call_sync(self, method: str, params: dict[str, Any], symbol: str) -> Any:
        budget = remaining_time(REQUEST_TIMEOUT_SECONDS)
        assert budget is not None
        if budget <= 0:
            raise RetryableExchangeError(f"{symbol} run deadline passed before {method}", symbol=symbol)
        with self._sync_lock:  # ccxt's timeout is per instance
            self.sync_exchange.timeout = max(1, int(min(budget, REQUEST_TIMEOUT_SECONDS) * 1000))
            try:
                return getattr(self.sync_exchange, method)(params)
            except ccxt.BaseError as exc:
                raise _classify(exc, placing=False, symbol=symbol) from None

    async def _load_rules(self) -> dict[str, tuple[Decimal, Decimal]]:
        if self._rules is None:
            info = await self._call("fapiPublicGetExchangeInfo", {})
            if not isinstance(info, dict) or not isinstance(info.get("symbols"), list):
                raise RetryableExchangeError("unreadable exchangeInfo answer")
            rules = {}
            for entry in info["symbols"]:
                filters = {f.get("filterType"): f for f in entry.get("filters", []) if isinstance(f, dict)}
                lot = filters.get("LOT_SIZE") or {}
                market = filters.get("MARKET_LOT_SIZE") or lot
                rules[entry.get("symbol")] = (_decimal(lot.get("stepSize"), "stepSize"),
                                              _decimal(market.get("maxQty"), "maxQty"))
            self._rules = rules
        return self._rules

    async def _symbol_rules(self, symbol: str) -> tuple[Decimal, Decimal]:
        rules = await self._load_rules()
        if symbol not in rules:
            raise TerminalExchangeError(f"{symbol}: not listed in exchangeInfo", code=-1121, symbol=symbol)
        return rules[symbol]

    async def _hedge_mode(self) -> bool:
        if self._hedge is None:
            answer = await self._call("fapiPrivateGetPositionSideDual", {})
            if not isinstance(answer, dict) or not isinstance(answer.get("dualSidePosition"), bool):
                raise RetryableExchangeError("unreadable positionSide/dual answer")
            self._hedge = answer["dualSidePosition"]
        return self._hedge

    @staticmethod
    def _close_flags(side: str, hedge: bool) -> dict[str, str]:
        """What makes an order a close: ``positionSide`` of the leg (hedge mode) or ``reduceOnly``."""
        if hedge:
            return {"positionSide": "LONG" if side == "SELL" else "SHORT"}
        return {"reduceOnly": "true"}

    def _client_id(self) -> str:
        self._sequence += 1
        return f"ccxtlq-{self._run}-{self._sequence}"

    async def warm_up(self, *, connections: int = 0) -> None:
        """Read exchangeInfo and the position mode ahead of a liquidation."""
        await self._load_rules()
        await self._hedge_mode()

    async def close(self) -> None:
        await self.exchange.close()

    # ------------------------------------------------------------------ the dead-man's switch
    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> dict:
        """Arm (or with 0 disarm) Binance's countdownCancelAll for ``symbol`` (``SupportsCountdown``)."""
        symbol = _symbol_arg(symbol)
        if isinstance(countdown_ms, bool) or not isinstance(countdown_ms, int) or countdown_ms < 0:
            raise InvalidArgumentError(f"countdown_ms={countdown_ms!r}: expected an int of milliseconds >= 0 (0 disarms)")
        answer = await self._call("fapiPrivatePostCountdownCancelAll",
                                  {"symbol": symbol, "countdownTime": countdown_ms}, symbol=symbol)
        return answer if isinstance(answer, dict) else {"symbol": symbol, "countdownTime": str(countdown_ms)}

    # ------------------------------------------------------------------ the three seed methods
    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        wanted = {_symbol_arg(s) for s in symbols or []}
        params = {"symbol": next(iter(wanted))} if len(wanted) == 1 else {}
        rows = await self._call("fapiPrivateV2GetPositionRisk", params)
        if not isinstance(rows, list):
            raise RetryableExchangeError(f"unreadable positionRisk answer: {type(rows).__name__}, not a list")
        positions = []
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
                raise RetryableExchangeError(f"unreadable positionRisk entry: {row!r:.80}")
            amount = _decimal(row.get("positionAmt"), f"{row['symbol']}.positionAmt")
            side = row.get("positionSide")
            if side not in ("BOTH", "LONG", "SHORT"):
                raise RetryableExchangeError(f"unreadable positionRisk entry: {row['symbol']}.positionSide={side!r}")
            if amount == 0 or (wanted and row["symbol"] not in wanted):
                continue
            position = {"symbol": row["symbol"], "position_amt": amount, "position_side": side}
            if row.get("markPrice") not in (None, ""):
                position["mark_price"] = _decimal(row["markPrice"], f"{row['symbol']}.markPrice")
            positions.append(position)
        return positions

    def cancel_all_orders(self, symbol: str) -> int:
        symbol = _symbol_arg(symbol)
        regular = self._call_sync("fapiPrivateGetOpenOrders", {"symbol": symbol}, symbol)
        algo = self._call_sync("fapiPrivateGetOpenAlgoOrders", {"symbol": symbol}, symbol)
        if not isinstance(regular, list) or not isinstance(algo, list):
            raise RetryableExchangeError(f"{symbol}: unreadable open-orders answer", symbol=symbol)
        self._call_sync("fapiPrivateDeleteAllOpenOrders", {"symbol": symbol}, symbol)
        self._call_sync("fapiPrivateDeleteAlgoOpenOrders", {"symbol": symbol}, symbol)
        return len(regular) + len(algo)

    async def open_order_symbols(self) -> set[str]:
        """Every symbol with an open regular or algo order, account-wide (``SupportsOrderSnapshot``): the
        engine cancels orders on symbols without a position too."""
        regular = await self._call("fapiPrivateGetOpenOrders", {})
        algo = await self._call("fapiPrivateGetOpenAlgoOrders", {})
        if isinstance(algo, dict):  # {"orders": [...]} on some versions of the endpoint
            algo = algo.get("orders")
        if not isinstance(regular, list) or not isinstance(algo, list):
            raise RetryableExchangeError("unreadable open-orders snapshot")
        symbols = set()
        for order in regular + algo:
            if not isinstance(order, dict) or not isinstance(order.get("symbol"), str):
                raise RetryableExchangeError(f"unreadable open-orders entry: {order!r:.80}")
            symbols.add(order["symbol"])
        return symbols

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict:
        symbol = _symbol_arg(symbol)
        if side not in ("BUY", "SELL"):
            raise InvalidArgumentError(f"side={side!r}: expected 'BUY' or 'SELL'")
        try:
            requested = Decimal(str(quantity))
        except (InvalidOperation, ValueError):
            raise InvalidArgumentError(f"quantity={quantity!r}: expected a positive number") from None
        if not requested.is_finite() or requested <= 0:
            raise InvalidArgumentError(f"quantity={quantity!r}: expected a positive number")
        step, max_qty = await self._symbol_rules(symbol)
        hedge = await self._hedge_mode()
        total = (requested / step).to_integral_value(ROUND_DOWN) * step
        if total <= 0:
            raise InvalidArgumentError(f"quantity={quantity!r}: below {symbol}'s step {step}")
        chunk_max = (max_qty / step).to_integral_value(ROUND_DOWN) * step
        executed, order_ids, client_ids, notional = Decimal("0"), [], [], Decimal("0")
        status = "FILLED"
        left = total
        while left > 0:
            qty = min(left, chunk_max)
            params: dict[str, Any] = {"symbol": symbol, "side": side, "type": "MARKET",
                                      "quantity": format(qty.normalize(), "f"), "newOrderRespType": "RESULT"}
            params.update(self._close_flags(side, hedge))
            client_id = self._client_id()
            params["newClientOrderId"] = client_id
            client_ids.append(client_id)
            order = await self._place(params, symbol)
            filled = _decimal(order.get("executedQty", "0"), "executedQty")
            executed += filled
            notional += filled * _decimal(order.get("avgPrice") or "0", "avgPrice")
            order_ids.append(order.get("orderId"))
            if order.get("status") != "FILLED" or filled < qty:
                status = "PARTIALLY_FILLED" if executed > 0 else str(order.get("status") or "EXPIRED")
                break
            left -= qty
        return {"symbol": symbol, "side": side, "requested_qty": requested, "executed_qty": executed,
                "status": status, "order_ids": order_ids, "client_order_ids": client_ids,
                "avg_price": notional / executed if executed else None}

    async def _place(self, params: dict[str, Any], symbol: str) -> dict:
        try:
            order = await self._call("fapiPrivatePostOrder", params, placing=True, symbol=symbol)
        except AmbiguousExchangeError:
            order = await self._reconcile(params["newClientOrderId"], symbol)
        if not isinstance(order, dict):
            order = await self._reconcile(params["newClientOrderId"], symbol)
        return order

    async def _reconcile(self, client_id: str, symbol: str) -> dict:
        """The fate of an order whose answer was lost: look it up by client order id, never resend."""
        try:
            order = await self._call("fapiPrivateGetOrder", {"symbol": symbol, "origClientOrderId": client_id},
                                     symbol=symbol)
        except TerminalExchangeError as exc:
            if exc.code in _NOT_FOUND:
                raise AmbiguousExchangeError(f"{symbol}: order {client_id} not found after an unknown answer; "
                                             "re-read the position before sending again", symbol=symbol) from None
            raise
        except ExchangeError as exc:
            raise AmbiguousExchangeError(f"{symbol}: order {client_id} outcome unknown ({exc})", symbol=symbol) from None
        if not isinstance(order, dict):
            raise AmbiguousExchangeError(f"{symbol}: order {client_id} outcome unknown (unreadable answer)", symbol=symbol)
        return order


def factory(exchange_url: str, api_key: str, api_secret: str) -> CcxtOrderManager:
    """The conformance kit's (and the bot's) way to build the order manager."""
    return CcxtOrderManager(exchange_url, api_key, api_secret)
