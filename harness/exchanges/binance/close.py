"""Closing one side of one symbol's position with MARKET orders, without ever closing it twice.

``MarketCloser.run(quantity)``:

1. plans the orders (rounded down to the step, split above ``MARKET_LOT_SIZE.maxQty``; a remainder
   below the step or minQty is reported, not sent) and sends them all at once (one round trip, not
   one per order; together they never exceed the position, so none can over-close), each with its
   own deterministic ``newClientOrderId`` and ``newOrderRespType=RESULT``; one-way mode sends
   ``reduceOnly=true``, hedge mode sends ``positionSide`` (SELL closes LONG, BUY closes SHORT);
2. an ambiguous failure (timeout, -1006, -1007, 503 "Unknown error", other unexplained 5xx, -4116)
   is resolved by ``GET /fapi/v1/order?origClientOrderId=`` before anything is resent: found -> use
   its result; -2013 -> it was never placed, resend with the same id; query failed -> raise
   ``AmbiguousExchangeError`` (the engine re-reads the position before retrying);
3. -4061: re-read the position mode once and resend in the right form; terminal if it persists;
4. -2022: cancel the symbol's orders, re-read the position, resubmit once with the re-read size
   (never more than was still to close; nothing when that side is flat);
5. an order that filled only partly (and made progress) is followed up for the shortfall, at most
   ``MAX_FOLLOW_UPS`` times.

Orders sent together are settled together: fills are recorded, then a -2022 (first time) triggers
step 4 for whatever is still open, and any other failure is raised (the engine re-reads the position
before it retries, so fills that came back alongside the failure are never closed twice).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from binance.exceptions import BinanceAPIException

from harness.core.errors import (
    AmbiguousExchangeError,
    ExchangeError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.exchanges.binance.errors import NOT_FOUND_CODES, to_exchange_error
from harness.exchanges.binance.rules import SymbolRules, parse_position_rows, plan_market_orders, to_decimal
from harness.exchanges.binance.session import BinanceSession
from harness.exchanges.codes import POSITION_SIDE_MISMATCH, REDUCE_ONLY_REJECTED

#: sends of one order (same client id) when each attempt is proven never placed
MAX_SENDS = 3
MAX_FOLLOW_UPS = 3
#: final statuses of a MARKET order whose shortfall may be followed up
FOLLOW_UP_STATUSES = frozenset({"PARTIALLY_FILLED", "EXPIRED", "EXPIRED_IN_MATCH", "CANCELED", "FILLED"})
ZERO = Decimal("0")
#: POST /fapi/v1/batchOrders carries at most 5 orders
MAX_BATCH_ORDERS = 5
#: how long ``OrderBatcher`` waits for more closes before sending a batch that is not full
BATCH_LINGER_SECONDS = 0.008


def _decimal(value: Any, name: str) -> Decimal:
    try:
        return to_decimal(value if value not in (None, "") else "0", name=name)
    except ValueError as exc:
        raise RetryableExchangeError(f"unexpected exchange reply: {exc}") from None


class MarketCloser:
    """One ``execute_market_close`` call (see the module docstring)."""

    def __init__(
        self,
        session: BinanceSession,
        rules: SymbolRules,
        side: str,
        *,
        hedge: bool,
        next_client_order_id: Callable[[], str],
        refresh_hedge_mode: Callable[[], Awaitable[bool]],
        send_order: Callable[[dict[str, str]], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.session = session
        self._send_order = send_order  # None: POST /fapi/v1/order; else e.g. OrderBatcher.place
        self.rules = rules
        self.symbol = rules.symbol
        self.side = side
        self.hedge = hedge
        self._next_id = next_client_order_id
        self._refresh_mode = refresh_hedge_mode
        self.executed = ZERO
        self.notional = ZERO
        self.target = ZERO
        self.order_ids: list[Any] = []
        self.client_order_ids: list[str] = []
        self.last_status: str | None = None
        self.already_flat = False

    @property
    def position_side(self) -> str:
        if not self.hedge:
            return "BOTH"
        return "LONG" if self.side == "SELL" else "SHORT"

    async def run(self, quantity: Decimal) -> dict[str, Any]:
        plan = plan_market_orders(quantity, self.rules)
        if not plan.chunks:
            raise TerminalExchangeError(
                f"execute_market_close {self.symbol}: quantity={quantity} is below what one MARKET order can carry "
                f"(minQty {self.rules.min_qty}, stepSize {self.rules.step_size}); nothing was sent",
                symbol=self.symbol,
            )
        self.target = plan.total
        pending = list(plan.chunks)
        reduce_only_retried = False
        follow_ups = 0
        while pending:
            chunks, pending = pending, []
            outcomes = await asyncio.gather(*(self._place(qty) for qty in chunks), return_exceptions=True)
            rejected = False
            failure: BaseException | None = None
            for qty, outcome in zip(chunks, outcomes):
                if isinstance(outcome, BaseException):
                    code = outcome.code if isinstance(outcome, ExchangeError) else None
                    if code == REDUCE_ONLY_REJECTED and not reduce_only_retried:
                        rejected = True
                    elif failure is None:
                        failure = outcome
                    continue
                order, client_order_id = outcome
                filled = self._record(order, client_order_id)
                shortfall = qty - filled
                if shortfall > 0 and filled > 0 and self.last_status in FOLLOW_UP_STATUSES and follow_ups < MAX_FOLLOW_UPS:
                    follow_ups += 1
                    pending.extend(plan_market_orders(shortfall, self.rules).chunks)
            if failure is not None:
                raise failure
            if rejected:
                reduce_only_retried = True
                pending = await self._after_reduce_only_rejection()
        return self._result(plan.requested, plan.remainder)

    # -- one order -------------------------------------------------------------------------
    def _params(self, qty: Decimal, client_order_id: str, hedge: bool) -> dict[str, str]:
        params = {
            "side": self.side,
            "type": "MARKET",
            "quantity": format(qty, "f"),
            "newClientOrderId": client_order_id,
            "newOrderRespType": "RESULT",
        }
        if hedge:
            params["positionSide"] = "LONG" if self.side == "SELL" else "SHORT"
        else:
            params["reduceOnly"] = "true"
        return params

    async def _place(self, qty: Decimal) -> tuple[dict[str, Any], str]:
        client_order_id = self._next_id()
        mode_rechecked = False
        for _send in range(MAX_SENDS):
            hedge = self.hedge
            params = self._params(qty, client_order_id, hedge)
            try:
                if self._send_order is not None:
                    order = await self._send_order(params)
                else:
                    order = await self.session.call("futures_create_order", symbol=self.symbol, idempotent=False, **params)
                return order, client_order_id
            except AmbiguousExchangeError as exc:
                found = await self._lookup(client_order_id, exc)
                if found is not None:
                    return found, client_order_id
                last: ExchangeError = exc
            except ExchangeError as exc:
                if exc.code != POSITION_SIDE_MISMATCH or mode_rechecked:
                    raise
                mode_rechecked = True
                if self.hedge == hedge:  # not re-read yet by an order sent alongside this one
                    self.hedge = await self._refresh_mode()
                if self.hedge == hedge:
                    raise TerminalExchangeError(
                        f"{exc} (the account's position mode is still {'hedge' if self.hedge else 'one-way'})",
                        code=exc.code,
                        status=exc.status,
                        symbol=self.symbol,
                    ) from None
                last = exc
        raise RetryableExchangeError(
            f"execute_market_close {self.symbol}: order {client_order_id} was not placed after {MAX_SENDS} sends: {last}",
            code=last.code,
            status=last.status,
            symbol=self.symbol,
        )

    async def _lookup(self, client_order_id: str, cause: ExchangeError) -> dict[str, Any] | None:
        """The order ``client_order_id`` as the exchange knows it, or None when it was never placed."""
        try:
            return await self.session.call(
                "futures_get_order", symbol=self.symbol, idempotent=True, origClientOrderId=client_order_id
            )
        except ExchangeError as exc:
            if exc.code in NOT_FOUND_CODES:
                return None
            raise AmbiguousExchangeError(
                f"execute_market_close {self.symbol}: order {client_order_id} may have executed ({cause}); "
                f"querying it failed ({exc})",
                code=cause.code,
                status=cause.status,
                symbol=self.symbol,
            ) from None

    def _record(self, order: dict[str, Any], client_order_id: str) -> Decimal:
        filled = _decimal(order.get("executedQty"), "executedQty")
        price = _decimal(order.get("avgPrice"), "avgPrice")
        self.executed += filled
        self.notional += filled * price
        self.last_status = str(order.get("status") or "")
        if order.get("orderId") is not None:
            self.order_ids.append(order["orderId"])
        self.client_order_ids.append(str(order.get("clientOrderId") or client_order_id))
        return filled

    # -- -2022 -----------------------------------------------------------------------------
    async def _after_reduce_only_rejection(self) -> list[Decimal]:
        """Cancel the symbol's orders, re-read the position, and plan what is still to close."""
        for method in ("futures_cancel_all_open_orders", "futures_cancel_all_algo_open_orders"):
            try:
                await self.session.call(method, symbol=self.symbol, idempotent=True)
            except ExchangeError as exc:
                if exc.code not in NOT_FOUND_CODES:
                    raise
        open_size, flat = await self._open_size()
        size = min(open_size, self.target - self.executed)
        if size <= 0:
            self.already_flat = flat
            self.last_status = self.last_status if flat else "REJECTED"  # flipped by someone else
            self.target = self.executed
            return []
        chunks = list(plan_market_orders(size, self.rules).chunks)
        self.target = self.executed + sum(chunks, ZERO)
        return chunks

    async def _open_size(self) -> tuple[Decimal, bool]:
        """(size still open on the side this close reduces, whether the leg is flat).

        A one-way position that flipped to the other side reports size 0 but is not flat.
        """
        entries = await self.session.call("futures_position_information", symbol=self.symbol, idempotent=True)
        try:  # a reply it cannot read is an error, never "flat"
            rows = parse_position_rows(entries)
        except ValueError as exc:
            raise RetryableExchangeError(f"futures_position_information {self.symbol}: unusable reply: {exc}") from None
        for row in rows:
            if row.symbol != self.symbol or row.position_side != self.position_side:
                continue
            reducible = row.amount if self.side == "SELL" else -row.amount
            return max(reducible, ZERO), row.amount == 0
        return ZERO, True

    # -- result ----------------------------------------------------------------------------
    def _result(self, requested: Decimal, remainder: Decimal) -> dict[str, Any]:
        if self.already_flat or (self.target > 0 and self.executed >= self.target):
            status = "FILLED"
        elif self.executed > 0:
            status = "PARTIALLY_FILLED"
        else:
            status = self.last_status or "EXPIRED"
        return {
            "symbol": self.symbol,
            "side": self.side,
            "position_side": self.position_side,
            "requested_qty": requested,
            "executed_qty": self.executed,
            "status": status,
            "order_ids": list(self.order_ids),
            "client_order_ids": list(self.client_order_ids),
            "avg_price": (self.notional / self.executed) if self.executed > 0 else None,
            "remainder_qty": remainder,
            "already_flat": self.already_flat,
        }


class OrderBatcher:
    """Coalesces closing orders placed at about the same moment into ``POST /fapi/v1/batchOrders``.

    Opt-in (``BinanceFuturesOrderManager(batch_orders=True)``). An order waits at most
    ``BATCH_LINGER_SECONDS`` for others; five make a batch that goes at once; a lone order goes as
    ``POST /fapi/v1/order``. Each order keeps its own client id and gets its own result or error
    (Binance answers a batch with one object per item, errors inside a 200 array), so
    ``MarketCloser`` handles it exactly like a single order. Only FULL batches go as
    ``batchOrders``: fewer than five waiting when the linger ends go as single orders, because
    Binance charges a batch 5 on the 10 s order counter whatever its size, and a full batch is then
    never more of the order budget than the same orders sent one by one. The price: orders in one batch share a
    fate on the wire: a batch that times out or answers 5xx is ambiguous for all of its orders (each
    is then looked up by client id before anything is resent), a slow item delays its batch-mates,
    and a batch costs 5 request weight where single orders cost none. Binance charges a batch 5 on
    the 10 s order counter and 1 on the 1 min one whatever its size (``limiter.request_cost``); an
    account whose order limits cannot take that (``RequestLimiter.batch_fits``) gets single orders.

    Why it stays opt-in (measured, issue 13): it is as safe as single orders, because safety never
    rested on the HTTP reply (every item carries its own deterministic client order id, and an item
    whose fate is unknown is looked up by that id before anything is resent, as a single order is),
    and at 200 symbols it turns 250 order requests into about 50; but one hung item holds its
    batch-mates with it until the request times out, and under a 5 s deadline those batch-mates may
    then stay open where single orders would have closed them.
    """

    def __init__(self, session: BinanceSession, *, linger: float = BATCH_LINGER_SECONDS) -> None:
        self.session = session
        self.linger = linger
        self._pending: list[tuple[str, dict[str, str], asyncio.Future[dict[str, Any]]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def place(self, symbol: str, params: dict[str, str]) -> dict[str, Any]:
        """Send one order (``params`` as for ``futures_create_order``); its reply, or its error raised."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._pending, self._timer = loop, [], None
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._pending.append((symbol, params, future))
        if len(self._pending) >= MAX_BATCH_ORDERS:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.linger, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending = [item for item in self._pending if not item[2].done()]  # a cancelled waiter sends nothing
        self._pending = []
        for start in range(0, len(pending), MAX_BATCH_ORDERS):
            task = asyncio.ensure_future(self._send(pending[start:start + MAX_BATCH_ORDERS]))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, group: list[tuple[str, dict[str, str], asyncio.Future[dict[str, Any]]]]) -> None:
        if 1 < len(group) < MAX_BATCH_ORDERS or (len(group) > 1 and not self.session.limiter.batch_fits()):
            # a batch costs 5 on the 10 s order counter whatever its size: only a full one costs no
            # more than its orders sent singly (and a tiny order limit cannot take a batch at all)
            await asyncio.gather(*(self._send([item]) for item in group))
            return
        try:
            if len(group) == 1:
                symbol, params, future = group[0]
                reply = await self.session.call("futures_create_order", symbol=symbol, idempotent=False, **params)
                _settle(future, reply)
                return
            orders = [{"symbol": symbol, **params} for symbol, params, _ in group]
            replies = await self.session.call("futures_place_batch_order", idempotent=False, batchOrders=orders)
        except asyncio.CancelledError:
            for _, _, future in group:
                future.cancel()
            raise
        except Exception as exc:
            for symbol, _, future in group:
                error = copy.copy(exc)
                if isinstance(error, ExchangeError) and error.symbol is None:
                    error.symbol = symbol
                _settle(future, error)
            return
        if not isinstance(replies, list) or len(replies) != len(group):
            for symbol, _, future in group:
                _settle(future, AmbiguousExchangeError(
                    f"futures_place_batch_order: unexpected reply {replies!r:.200}; order may have executed",
                    symbol=symbol))
            return
        for (symbol, _, future), reply in zip(group, replies):
            if isinstance(reply, dict) and "orderId" not in reply and "code" in reply:
                _settle(future, to_exchange_error(BinanceAPIException(None, 400, json.dumps(reply)),
                                                  operation="futures_create_order (in a batch)", symbol=symbol,
                                                  idempotent=False))
            else:
                _settle(future, reply)


def _settle(future: asyncio.Future[dict[str, Any]], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
