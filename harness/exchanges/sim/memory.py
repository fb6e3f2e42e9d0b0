"""``InMemoryOrderManager``: the simulator's in-process face, an ``OrderExecutionManager``.

It implements ``harness.core.ports.OrderExecutionManager`` exactly over a ``SimBook``, without any
I/O, so the engine's tests run in milliseconds against real exchange rules (reduce-only, step
rounding, MARKET_LOT_SIZE splitting, hedge mode). A ``FaultPlan`` makes it slow, hung, failing,
ambiguous or locked per symbol; failures are raised as ``harness.core.errors`` classes:

* ``TerminalExchangeError``: locked symbol, invalid symbol, bad key/signature, filter violations;
* ``AmbiguousExchangeError``: 503 "Unknown error...", -1006, -1007, -4116 (the order may have executed);
* ``RetryableExchangeError``: everything else (5xx, -1021, -1008, 429/418 with ``retry_after``,
  -2022 and -4061, whose right reaction is "re-read, then resubmit").

The codes' classes come from ``harness.exchanges.codes`` (see ``RETRYABLE_HERE_TERMINAL_THERE``).

``calls`` records every call (method, symbol, arguments) as it starts, so a test can prove that no
close request was made.

Beyond the port it has three of the optional capabilities of ``harness.core.ports``, so the fast
tests take the same paths as production: ``SupportsAsyncCancel`` (``cancel_all_orders_async``: the
same cancel and the same fault rules as ``cancel_all_orders``, awaited on the loop),
``SupportsOrderSnapshot`` (``open_order_symbols``: the account's symbols with open regular or algo
orders, faults as ``GET /fapi/v1/openOrders``) and ``SupportsCountdown`` (``countdown_cancel_all`` arms the ``SimBook``'s countdown, like the HTTP
face's ``POST /fapi/v1/countdownCancelAll``; fault rules target it by that name). It has no
connections, so no ``SupportsLifecycle``. ``SyncCancelOrderManager`` is the same face without the
async cancel, for the engine's thread-pool path.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from harness.core.context import current_correlation_id
from harness.core.errors import (
    AmbiguousExchangeError,
    ExchangeError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.exchanges.codes import POSITION_SIDE_MISMATCH, REDUCE_ONLY_REJECTED, CodeClass, codes_in

from ._endpoints import BY_ROUTE, memory_names
from ._models import SimBookError
from ._num import ZERO, floor_to_step
from .book import SimBook
from .faults import UNKNOWN_ERROR, FaultDecision, FaultPlan, FaultRule

#: Where this face deliberately differs from the table (harness.exchanges.codes): -2022 (ReduceOnly
#: rejected) and -4061 (position side mismatch) are RETRYABLE here, terminal there. The adapter's
#: closer re-reads and resubmits once itself; this face has no closer, so it leaves that reaction to
#: the engine's retry, which re-reads the position before sending again.
RETRYABLE_HERE_TERMINAL_THERE = frozenset({REDUCE_ONLY_REJECTED, POSITION_SIDE_MISMATCH})
#: codes after which retrying the same request cannot help (a missing order included)
_TERMINAL_HERE = (codes_in(CodeClass.TERMINAL) | codes_in(CodeClass.NOT_FOUND)) - RETRYABLE_HERE_TERMINAL_THERE
#: codes that leave the order's execution status unknown
_AMBIGUOUS_HERE = codes_in(CodeClass.AMBIGUOUS)
#: codes worth retrying (after a resync / re-read), whatever their HTTP status
_RETRYABLE_HERE = codes_in(CodeClass.RETRYABLE) | RETRYABLE_HERE_TERMINAL_THERE
_CLIENT_ID_UNSAFE = re.compile(r"[^.A-Za-z0-9:/_-]")
_HEDGE_SIDE_FOR = {"SELL": "LONG", "BUY": "SHORT"}


def exchange_error(code: int | None, msg: str, *, status: int | None = None, symbol: str | None = None,
                   retry_after: float | None = None) -> ExchangeError:
    """The ``harness.core.errors`` class a Binance error belongs to (see the module docstring)."""
    text = f"{code}: {msg}" if code is not None else msg
    if code in _AMBIGUOUS_HERE or (status == 503 and msg == UNKNOWN_ERROR):
        return AmbiguousExchangeError(text, code=code, status=status, symbol=symbol)
    if code not in _RETRYABLE_HERE and (
            code in _TERMINAL_HERE or (status is not None and 400 <= status < 500 and status not in (408, 418, 429))):
        return TerminalExchangeError(text, code=code, status=status, symbol=symbol)
    return RetryableExchangeError(text, code=code, status=status, symbol=symbol, retry_after=retry_after)


@dataclass(frozen=True)
class CallRecord:
    """One call to the manager, recorded when it starts (``time`` is ``time.monotonic()``)."""

    method: str
    symbol: str | None
    args: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0


class InMemoryOrderManager:
    """``OrderExecutionManager`` over a ``SimBook``; ``reduce_only=False`` sends plain MARKET closes."""

    def __init__(self, book: SimBook | None = None, faults: FaultPlan | None = None, *, reduce_only: bool = True,
                 client_id_prefix: str = "lq") -> None:
        self.book = book if book is not None else SimBook()
        self.faults = faults if faults is not None else FaultPlan()
        self.reduce_only = reduce_only
        self._prefix = _CLIENT_ID_UNSAFE.sub("", client_id_prefix)[:8] or "lq"
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._calls: list[CallRecord] = []

    # ------------------------------------------------------------ the port
    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        """Nonzero positions of ``symbols`` (``[]``: every symbol) in the port's shape."""
        wanted = list(symbols or [])
        self._record("get_all_positions", None, symbols=wanted)
        decision = self.faults.draw(memory_names("get_all_positions"), wanted or self.book.symbols)
        await self._delay_async(decision)
        self._raise_outcome(decision, None)
        return [
            {key: leg[key] for key in ("symbol", "position_amt", "position_side", "mark_price", "entry_price")}
            for leg in self.book.positions(wanted or None)
        ]

    def cancel_all_orders(self, symbol: str) -> int:
        """Cancel the symbol's regular AND algo orders (synchronous); how many were cancelled."""
        self._record("cancel_all_orders", symbol)
        decision = self.faults.draw(memory_names("cancel_all_orders"), symbol)
        if decision.latency:
            time.sleep(decision.latency)
        if decision.hang is not None:
            self.faults.wait_hang(decision.hang)
        self._raise_outcome(decision, symbol)
        try:
            return self.book.cancel_all(symbol) + self.book.cancel_all_algo(symbol)
        except SimBookError as exc:
            raise exchange_error(exc.code, exc.msg, status=exc.status, symbol=symbol) from exc

    # ------------------------------------------------------------ optional capabilities
    async def cancel_all_orders_async(self, symbol: str) -> int:
        """``cancel_all_orders`` awaited on the loop (``SupportsAsyncCancel``); same faults, same count."""
        self._record("cancel_all_orders_async", symbol)
        decision = self.faults.draw(memory_names("cancel_all_orders"), symbol)
        await self._delay_async(decision)
        self._raise_outcome(decision, symbol)
        try:
            return self.book.cancel_all(symbol) + self.book.cancel_all_algo(symbol)
        except SimBookError as exc:
            raise exchange_error(exc.code, exc.msg, status=exc.status, symbol=symbol) from exc

    async def open_order_symbols(self) -> set[str]:
        """Every symbol with an open regular or algo order (``SupportsOrderSnapshot``), account-wide.

        Fault rules target it as ``GET /fapi/v1/openOrders`` (its HTTP twin) or the ``query`` category."""
        self._record("open_order_symbols", None)
        decision = self.faults.draw(BY_ROUTE[("GET", "v1/openOrders")].names, self.book.symbols)
        await self._delay_async(decision)
        self._raise_outcome(decision, None)
        return {o.symbol for o in self.book.open_orders()} | {o.symbol for o in self.book.open_algo_orders()}

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> dict:
        """Arm the book's countdownCancelAll for ``symbol`` (``SupportsCountdown``; 0 disarms)."""
        self._record("countdown_cancel_all", symbol, countdown_ms=countdown_ms)
        decision = self.faults.draw(BY_ROUTE[("POST", "v1/countdownCancelAll")].names, symbol)
        await self._delay_async(decision)
        self._raise_outcome(decision, symbol)
        if isinstance(countdown_ms, bool) or not isinstance(countdown_ms, int):
            raise TerminalExchangeError(f"countdown_ms={countdown_ms!r}: expected an int of milliseconds (0 disarms)",
                                        code=-1130, status=400, symbol=symbol)
        try:
            self.book.arm_countdown(symbol, countdown_ms)
        except SimBookError as exc:
            raise exchange_error(exc.code, exc.msg, status=exc.status, symbol=symbol) from exc
        return {"symbol": symbol, "countdownTime": str(countdown_ms)}

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict:
        """Close ``quantity`` (Decimal or float, rounded DOWN to the step) with MARKET order(s).

        One-way mode: reduce-only orders; hedge mode: ``positionSide`` LONG for SELL, SHORT for BUY.
        Quantities above MARKET_LOT_SIZE ``maxQty`` are split; each piece is one order request.
        """
        self._record("execute_market_close", symbol, side=side, quantity=quantity)
        qty = _to_quantity(quantity, symbol)
        try:
            spec = self.book.spec(symbol)
        except SimBookError as exc:
            raise exchange_error(exc.code, exc.msg, status=exc.status, symbol=symbol) from exc
        requested = floor_to_step(qty, spec.step_size)
        if requested <= 0:
            raise TerminalExchangeError(
                f"quantity={quantity!r} rounds down to 0 at {symbol} stepSize {spec.step_size}",
                code=-4003, status=400, symbol=symbol)
        side_u = side.upper() if isinstance(side, str) else side
        executed, quote = ZERO, ZERO
        order_ids: list[int] = []
        client_ids: list[str] = []
        for chunk in _split(requested, spec.market_max_qty):
            decision = self.faults.draw(memory_names("execute_market_close"), symbol)
            await self._delay_async(decision)
            self._raise_outcome(decision, symbol)
            order = self._place_close(symbol, side_u, chunk, decision)
            order_ids.append(order.order_id)
            client_ids.append(order.client_order_id)
            executed += order.executed_qty
            quote += order.cum_quote
            if decision.outcome is not None and decision.outcome.kind == "unknown_status_executed":
                rule = decision.outcome
                raise exchange_error(rule.code, rule.msg or UNKNOWN_ERROR, status=rule.status, symbol=symbol)
            if order.executed_qty < chunk:
                break
        status = "FILLED" if executed == requested else "PARTIALLY_FILLED" if executed > 0 else "EXPIRED"
        return {
            "symbol": symbol,
            "side": side_u,
            "requested_qty": requested,
            "executed_qty": executed,
            "status": status,
            "order_ids": order_ids,
            "client_order_ids": client_ids,
            "avg_price": quote / executed if executed else ZERO,
        }

    # ------------------------------------------------------------ assertions
    @property
    def calls(self) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, symbol: str | None = None) -> list[CallRecord]:
        """Recorded calls of ``method`` (on ``symbol`` when given)."""
        return [c for c in self.calls if c.method == method and symbol in (None, c.symbol)]

    # ------------------------------------------------------------ internals
    def _record(self, method: str, symbol: str | None, **args: Any) -> None:
        with self._lock:
            self._calls.append(CallRecord(method, symbol, dict(args), time.monotonic()))

    def _place_close(self, symbol: str, side: str, qty: Decimal, decision: FaultDecision) -> Any:
        hedge = self.book.hedge_mode
        try:
            return self.book.place_order(
                symbol, side, "MARKET", qty,
                reduce_only=None if hedge or not self.reduce_only else True,
                position_side=_HEDGE_SIDE_FOR.get(side) if hedge else None,
                client_order_id=self._client_id(),
                fill_ratio=decision.fill_ratio,
            )
        except SimBookError as exc:
            raise exchange_error(exc.code, exc.msg, status=exc.status, symbol=symbol) from exc

    def _client_id(self) -> str:
        run = _CLIENT_ID_UNSAFE.sub("", current_correlation_id.get() or "")[:12]
        number = next(self._ids)
        return f"{self._prefix}-{run}-{number}" if run else f"{self._prefix}-{number}"

    async def _delay_async(self, decision: FaultDecision) -> None:
        if decision.latency:
            await asyncio.sleep(decision.latency)
        if decision.hang is not None:
            await self.faults.wait_hang_async(decision.hang)

    @staticmethod
    def _raise_outcome(decision: FaultDecision, symbol: str | None) -> None:
        rule: FaultRule | None = decision.outcome
        if rule is None or rule.kind == "unknown_status_executed":
            return
        if rule.kind == "lock_symbol":
            raise TerminalExchangeError(f"{rule.code}: {rule.msg}", code=rule.code, status=rule.status, symbol=symbol)
        raise exchange_error(rule.code, rule.msg or "", status=rule.status, symbol=symbol,
                             retry_after=rule.retry_after)


class SyncCancelOrderManager(InMemoryOrderManager):
    """The in-process face without ``SupportsAsyncCancel``: the engine runs its synchronous
    ``cancel_all_orders`` in a thread, as it does for a seed-shaped order manager."""

    cancel_all_orders_async = None  # type: ignore[assignment]  # None switches a Protocol method off


def _to_quantity(quantity: object, symbol: str) -> Decimal:
    if isinstance(quantity, bool) or not isinstance(quantity, (Decimal, int, float, str)):
        raise TerminalExchangeError(f"quantity={quantity!r}: expected a Decimal or float", symbol=symbol)
    try:
        value = Decimal(str(quantity))
    except ArithmeticError:
        raise TerminalExchangeError(f"quantity={quantity!r}: expected a decimal number", symbol=symbol) from None
    if not value.is_finite() or value <= 0:
        raise TerminalExchangeError(f"quantity={quantity!r}: must be a finite number > 0", symbol=symbol)
    return value


def _split(total: Decimal, max_qty: Decimal) -> list[Decimal]:
    """``total`` in pieces of at most ``max_qty`` (biggest first)."""
    full, rest = divmod(total, max_qty)
    return [max_qty] * int(full) + ([rest] if rest else [])
