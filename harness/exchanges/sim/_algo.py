"""The algo book: conditional orders placed through ``/fapi/v1/algoOrder`` (Binance, Dec 2025 on).

Private helper of ``SimBook``; every method runs with the book's lock held.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from . import _checks as chk
from ._models import CONDITIONAL_TYPES, AlgoOrder, SimBookError
from ._num import ZERO

if TYPE_CHECKING:
    from .book import SimBook

_CLOSE_POSITION_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET"})
_FIRST_ALGO_ID = 2_146_760
_WORKING_TYPES = frozenset({"CONTRACT_PRICE", "MARK_PRICE"})


def _triggered(order_type: str, side: str, trigger: Decimal, mark: Decimal) -> bool:
    if order_type.startswith("STOP"):
        return mark >= trigger if side == "BUY" else mark <= trigger
    return mark <= trigger if side == "BUY" else mark >= trigger


class AlgoDesk:
    """Conditional orders of one ``SimBook``; triggers them when the mark price crosses."""

    def __init__(self, book: SimBook) -> None:
        self._book = book
        self._orders: dict[int, AlgoOrder] = {}
        #: the same orders by symbol, oldest first (a cancel-all per symbol at 200 symbols would
        #: otherwise scan every symbol's orders each time)
        self._by_symbol: dict[str, list[AlgoOrder]] = {}
        self._next_id = _FIRST_ALGO_ID

    def place(
        self,
        symbol: str,
        side: str,
        order_type: str,
        *,
        quantity: str | Decimal | None = None,
        trigger_price: str | Decimal | None = None,
        price: str | Decimal | None = None,
        reduce_only: bool | None = None,
        close_position: bool = False,
        position_side: str | None = None,
        client_algo_id: str | None = None,
        time_in_force: str | None = None,
        working_type: str | None = None,
        callback_rate: str | Decimal | None = None,
        activate_price: str | Decimal | None = None,
    ) -> AlgoOrder:
        book = self._book
        spec = book.spec(symbol)
        side = chk.check_side(side)
        kind = order_type.upper() if isinstance(order_type, str) else ""
        if not kind:
            raise chk.mandatory("type")
        if kind not in CONDITIONAL_TYPES:
            raise SimBookError(-1116, "Invalid orderType.")
        pos_side = chk.check_position_side(position_side, book.hedge_mode)
        reduce = chk.check_reduce_only(reduce_only, book.hedge_mode)
        working = (working_type or "CONTRACT_PRICE").upper()
        if working not in _WORKING_TYPES:
            raise SimBookError(-1130, "Data sent for parameter 'workingType' is not valid.")
        if close_position:
            if kind not in _CLOSE_POSITION_TYPES:
                raise chk.not_required("closePosition")
            if quantity not in (None, ""):
                raise chk.not_required("quantity")
            if reduce:
                raise chk.not_required("reduceonly")
            qty = ZERO
        else:
            qty = chk.check_quantity(spec, quantity, market=kind.endswith("MARKET"))
        rate = activate = trigger = limit = ZERO
        if kind == "TRAILING_STOP_MARKET":
            rate = chk.parse_decimal(callback_rate, "callbackRate") or ZERO
            if not Decimal("0.1") <= rate <= Decimal("10"):
                raise SimBookError(-2007, "Invalid callBackRate.")
            if activate_price not in (None, ""):
                activate = chk.check_price(spec, activate_price, "activatePrice")
        else:
            trigger = chk.check_price(spec, trigger_price, "triggerPrice")
            if _triggered(kind, side, trigger, book.mark_price(symbol)):
                raise SimBookError(-2021, "Order would immediately trigger.")
        if kind in ("STOP", "TAKE_PROFIT"):
            limit = chk.check_price(spec, price)
        elif price not in (None, ""):
            raise chk.not_required("price")
        if reduce and book.close_capacity(symbol, side, pos_side, True) == 0:
            raise SimBookError(-2022, "ReduceOnly Order is rejected.")
        cid = self._client_id(client_algo_id)
        now = book.now_ms()
        order = AlgoOrder(
            algo_id=self._next_id, client_algo_id=cid, symbol=symbol, side=side, order_type=kind, quantity=qty,
            trigger_price=trigger, price=limit, time_in_force=chk.check_time_in_force(time_in_force or "GTC"),
            reduce_only=reduce, close_position=bool(close_position), position_side=pos_side, working_type=working,
            algo_status="NEW", create_time=now, update_time=now, callback_rate=rate, activate_price=activate,
        )
        self._next_id += 1
        self._orders[order.algo_id] = order
        self._by_symbol.setdefault(symbol, []).append(order)
        if book.observed:
            book.notify("algo", order)
        return order.copy()

    def find(self, algo_id: int | str | None, client_algo_id: str | None, *, missing: int) -> AlgoOrder:
        if algo_id in (None, "") and client_algo_id in (None, ""):
            raise SimBookError(-1102, "Either algoId or clientAlgoId must be sent.")
        found: AlgoOrder | None
        if algo_id not in (None, ""):
            try:
                found = self._orders.get(int(algo_id))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise chk.mandatory("algoId") from None
        else:
            matches = [o for o in self._orders.values() if o.client_algo_id == client_algo_id]
            found = matches[-1] if matches else None
        if found is None:
            raise SimBookError(missing, "Order does not exist." if missing == -2013 else "Unknown order sent.")
        return found

    def cancel(self, algo_id: int | str | None, client_algo_id: str | None) -> AlgoOrder:
        order = self.find(algo_id, client_algo_id, missing=-2011)
        if not order.is_open:
            raise SimBookError(-2011, "Unknown order sent.")
        self._set_status(order, "CANCELED")
        return order.copy()

    def cancel_all(self, symbol: str) -> int:
        orders = [o for o in self._by_symbol.get(symbol, ()) if o.is_open]
        for order in orders:
            self._set_status(order, "CANCELED")
        return len(orders)

    def all_orders(self, symbol: str | None) -> list[AlgoOrder]:
        return [o.copy() for o in self._of(symbol)]

    def open_orders(self, symbol: str | None) -> list[AlgoOrder]:
        return [o.copy() for o in self._of(symbol) if o.is_open]

    def _of(self, symbol: str | None) -> Iterable[AlgoOrder]:
        """Every algo order (``symbol=None``) or the symbol's, oldest first."""
        return self._orders.values() if symbol is None else self._by_symbol.get(symbol, ())

    def trigger(self, symbol: str, mark: Decimal) -> None:
        """Fire the symbol's open conditional orders the new mark price crosses (trailing stops rest)."""
        for algo in [o for o in self._by_symbol.get(symbol, ()) if o.is_open]:
            if algo.order_type == "TRAILING_STOP_MARKET" or not _triggered(
                algo.order_type, algo.side, algo.trigger_price, mark
            ):
                continue
            self._fire(algo)

    def _fire(self, algo: AlgoOrder) -> None:
        book = self._book
        spec = book.spec(algo.symbol)
        algo.trigger_time = book.now_ms()
        if book.observed:
            book.notify("algo", dataclasses.replace(algo, algo_status="TRIGGERING"))
        qty = algo.quantity
        if algo.close_position:
            capacity = book.close_capacity(algo.symbol, algo.side, algo.position_side, True) or ZERO
            qty = min(capacity, spec.market_max_qty)
            if qty == 0:
                self._set_status(algo, "EXPIRED")
                return
        hedge = book.hedge_mode
        try:
            order = book.place_order(
                algo.symbol, algo.side, "MARKET" if algo.order_type.endswith("MARKET") else "LIMIT", qty,
                algo.price if algo.price else None,
                reduce_only=None if hedge else (algo.reduce_only or algo.close_position),
                position_side=algo.position_side if hedge else None,
                time_in_force=algo.time_in_force,
            )
        except SimBookError:
            self._set_status(algo, "REJECTED")
            return
        algo.actual_order_id = str(order.order_id)
        algo.executed_qty = order.executed_qty
        algo.avg_price = order.avg_price
        self._set_status(algo, "TRIGGERED" if order.is_open else "FINISHED")

    def _client_id(self, client_algo_id: str | None) -> str:
        if client_algo_id in (None, ""):
            return f"sim-algo-{self._next_id}"
        cid = chk.check_client_id(client_algo_id, "clientAlgoId")
        if any(o.is_open and o.client_algo_id == cid for o in self._orders.values()):
            raise SimBookError(-4116, "ClientOrderId is duplicated.")
        return cid

    def _set_status(self, order: AlgoOrder, status: str) -> None:
        order.algo_status = status
        order.update_time = self._book.now_ms()
        if self._book.observed:
            self._book.notify("algo", order)

