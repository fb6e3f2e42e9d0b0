"""The simulator's records: orders, algo (conditional) orders, fills and the book's error.

``SimBook`` keeps mutable ``Order`` / ``AlgoOrder`` objects under its lock and hands out copies, so a
caller never sees a record change under its feet. ``to_api()`` renders a record as Binance's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from ._num import ZERO, fmt

#: HTTP status Binance uses for each error code family (anything else: 400)
_STATUS_BY_CODE: dict[int, int] = {-2015: 401, -2014: 401, -1003: 429, -1006: 503, -1007: 503, -1001: 503}

CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


class SimBookError(Exception):
    """An order request the exchange rejects: Binance ``code`` (negative), ``msg`` and HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int | None = None) -> None:
        self.code = code
        self.msg = msg
        self.status = status if status is not None else _STATUS_BY_CODE.get(code, 400)
        super().__init__(f"{code}: {msg}")

    def to_api(self) -> dict[str, Any]:
        """The JSON body Binance sends with this error."""
        return {"code": self.code, "msg": self.msg}


_T = TypeVar("_T")


def _shallow_copy(item: _T) -> _T:
    """A shallow copy of a plain dataclass instance (as ``dataclasses.replace`` without re-running
    ``__init__``: the book copies every order it hands out, hundreds per request at 200 symbols)."""
    clone = object.__new__(type(item))
    clone.__dict__.update(item.__dict__)
    return clone


@dataclass
class Order:
    """A regular (LIMIT / MARKET) order. Quantities and prices are Decimals."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str
    type: str
    orig_qty: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    position_side: str
    status: str
    time: int
    update_time: int
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    close_position: bool = False
    stop_price: Decimal = ZERO
    orig_type: str = ""
    qty_step: Decimal | None = None
    price_step: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    def copy(self) -> Order:
        return _shallow_copy(self)

    def to_api(self) -> dict[str, Any]:
        """The order as Binance's ``/fapi/v1/order`` JSON."""
        avg = self.avg_price
        return {
            "orderId": self.order_id,
            "symbol": self.symbol,
            "status": self.status,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price, self.price_step) if self.price else "0",
            "avgPrice": fmt(avg, self.price_step) if avg else "0.00",
            "origQty": fmt(self.orig_qty, self.qty_step),
            "executedQty": fmt(self.executed_qty, self.qty_step),
            "cumQty": fmt(self.executed_qty, self.qty_step),
            "cumQuote": fmt(self.cum_quote),
            "timeInForce": self.time_in_force,
            "type": self.type,
            "reduceOnly": self.reduce_only,
            "closePosition": self.close_position,
            "side": self.side,
            "positionSide": self.position_side,
            "stopPrice": fmt(self.stop_price) if self.stop_price else "0",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": self.orig_type or self.type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "goodTillDate": 0,
            "time": self.time,
            "updateTime": self.update_time,
        }


@dataclass
class AlgoOrder:
    """A conditional order living in Binance's algo service (``/fapi/v1/algoOrder``)."""

    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    trigger_price: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    close_position: bool
    position_side: str
    working_type: str
    algo_status: str
    create_time: int
    update_time: int
    trigger_time: int = 0
    actual_order_id: str = ""
    executed_qty: Decimal = ZERO
    avg_price: Decimal = ZERO
    callback_rate: Decimal = ZERO
    activate_price: Decimal = ZERO

    @property
    def is_open(self) -> bool:
        return self.algo_status == "NEW"

    def copy(self) -> AlgoOrder:
        return _shallow_copy(self)

    def to_api(self) -> dict[str, Any]:
        """The order as Binance's ``/fapi/v1/algoOrder`` JSON."""
        return {
            "algoId": self.algo_id,
            "clientAlgoId": self.client_algo_id,
            "algoType": "CONDITIONAL",
            "orderType": self.order_type,
            "symbol": self.symbol,
            "side": self.side,
            "positionSide": self.position_side,
            "timeInForce": self.time_in_force,
            "quantity": fmt(self.quantity),
            "algoStatus": self.algo_status,
            "triggerPrice": fmt(self.trigger_price),
            "price": fmt(self.price),
            "icebergQuantity": None,
            "selfTradePreventionMode": "EXPIRE_MAKER",
            "workingType": self.working_type,
            "priceMatch": "NONE",
            "closePosition": self.close_position,
            "priceProtect": False,
            "reduceOnly": self.reduce_only,
            "activatePrice": fmt(self.activate_price) if self.activate_price else "",
            "callbackRate": fmt(self.callback_rate) if self.callback_rate else "",
            "createTime": self.create_time,
            "updateTime": self.update_time,
            "triggerTime": self.trigger_time,
            "goodTillDate": 0,
            "actualOrderId": self.actual_order_id,
            "executedQty": fmt(self.executed_qty),
            "avgPrice": fmt(self.avg_price),
        }


@dataclass(frozen=True)
class Fill:
    """One execution: ``qty`` (positive) at ``price`` on ``side``; ``time`` in ms since the epoch."""

    symbol: str
    side: str
    qty: Decimal
    price: Decimal
    reduce_only: bool
    position_side: str
    client_order_id: str
    order_id: int
    time: int
    realized_pnl: Decimal = ZERO
    trade_id: int = 0
    commission: Decimal = ZERO
    maker: bool = False

    def to_api(self) -> dict[str, Any]:
        """The fill as one row of ``GET /fapi/v1/userTrades``."""
        return {
            "buyer": self.side == "BUY", "commission": fmt(self.commission),
            "commissionAsset": "USDT", "id": self.trade_id, "maker": self.maker, "orderId": self.order_id,
            "price": fmt(self.price), "qty": fmt(self.qty), "quoteQty": fmt(self.qty * self.price),
            "realizedPnl": fmt(self.realized_pnl), "side": self.side, "positionSide": self.position_side,
            "symbol": self.symbol, "time": self.time,
        }


@dataclass
class PositionState:
    """A position leg: signed ``amount`` (negative = short) and its average ``entry_price``."""

    amount: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    update_time: int = 0
