"""Binance's USD-M WebSocket event payloads, built from the simulator's state.

Pure functions over ``SimBook`` records; field names and JSON types as Binance's user data stream
and market stream documentation gives them (numbers as strings, ids and times as integers). Called
with the book's lock held, so every figure in one event belongs to the same state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._models import AlgoOrder, Fill, Order
from ._num import ZERO, fmt
from ._routes_market import FUNDING_INTERVAL_MS, FUNDING_RATE, top_of_book

if TYPE_CHECKING:
    from .book import SimBook

QUOTE_ASSET = "USDT"


def _price(value: Decimal, step: Decimal | None) -> str:
    return fmt(value, step) if value else "0"


class OpenNotional:
    """Bids / asks notional of the open LIMIT orders per symbol (the ``b`` and ``a`` fields), kept
    from the order events instead of rescanning every order the book ever held."""

    def __init__(self) -> None:
        self._by_order: dict[int, tuple[str, str, Decimal]] = {}
        self._totals: dict[tuple[str, str], Decimal] = {}

    def reset(self, book: SimBook) -> None:
        """Start again from the book's open orders (lock held)."""
        self._by_order.clear()
        self._totals.clear()
        for order in book.open_orders():
            self.update(order, still_open=True)

    def update(self, order: Order, *, still_open: bool) -> None:
        if order.type != "LIMIT":
            return
        old = self._by_order.pop(order.order_id, None)
        if old is not None:
            self._totals[old[:2]] -= old[2]
        value = (order.orig_qty - order.executed_qty) * order.price if still_open else ZERO
        if value:
            key = (order.symbol, order.side)
            self._by_order[order.order_id] = (*key, value)
            self._totals[key] = self._totals.get(key, ZERO) + value

    def of(self, symbol: str) -> tuple[Decimal, Decimal]:
        return self._totals.get((symbol, "BUY"), ZERO), self._totals.get((symbol, "SELL"), ZERO)


def order_trade_update(order: Order, execution: str, now: int, fill: Fill | None = None,
                       notional: tuple[Decimal, Decimal] = (ZERO, ZERO)) -> dict[str, Any]:
    """``ORDER_TRADE_UPDATE`` for one execution: NEW, TRADE, CANCELED, EXPIRED or AMENDMENT.

    ``notional``: (bids, asks) notional of the symbol's open orders after this execution.
    """
    if fill is not None:
        status = "FILLED" if order.executed_qty == order.orig_qty else "PARTIALLY_FILLED"
    elif execution in ("NEW", "AMENDMENT"):
        status = "NEW" if not order.executed_qty else "PARTIALLY_FILLED"
    else:
        status = execution
    bids, asks = notional
    avg = order.avg_price
    data: dict[str, Any] = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt(order.orig_qty, order.qty_step),
        "p": _price(order.price, order.price_step),
        "ap": _price(avg, order.price_step),
        "sp": _price(order.stop_price, order.price_step),
        "x": "TRADE" if fill is not None else execution,
        "X": status,
        "i": order.order_id,
        "l": fmt(fill.qty, order.qty_step) if fill is not None else "0",
        "z": fmt(order.executed_qty, order.qty_step),
        "L": fmt(fill.price, order.price_step) if fill is not None else "0",
    }
    if fill is not None:  # Binance: "will not push if no commission" applies to non-trade updates
        data["N"] = QUOTE_ASSET
        data["n"] = fmt(fill.commission)
    data.update({
        "T": fill.time if fill is not None else order.update_time,
        "t": fill.trade_id if fill is not None else 0,
        "b": fmt(bids),
        "a": fmt(asks),
        "m": fill.maker if fill is not None else False,
        "R": order.reduce_only,
        "wt": "CONTRACT_PRICE",
        "ot": order.orig_type or order.type,
        "ps": order.position_side,
        "cp": order.close_position,
        "rp": fmt(fill.realized_pnl) if fill is not None else "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "gtd": 0,
    })
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": data["T"], "o": data}


def account_update(book: SimBook, symbol: str, position_side: str, now: int, reason: str = "ORDER") -> dict[str, Any]:
    """``ACCOUNT_UPDATE``: the USDT balance and the position leg a fill changed."""
    spec = book.spec(symbol)
    wallet = book.wallet_balance
    positions = []
    for leg in book.position_legs(symbol):
        if leg["position_side"] != position_side:
            continue
        positions.append({
            "s": symbol,
            "pa": fmt(leg["position_amt"], spec.step_size),
            "ep": fmt(leg["entry_price"]),
            "bep": fmt(leg["entry_price"]),
            "cr": fmt(leg["realized_pnl"]),
            "up": fmt(leg["unrealized_pnl"].quantize(Decimal("0.00000001"))),
            "mt": "isolated" if leg["isolated"] else "cross",
            "iw": "0",
            "ps": position_side,
        })
    return {
        "e": "ACCOUNT_UPDATE", "E": now, "T": now,
        "a": {"m": reason, "B": [{"a": QUOTE_ASSET, "wb": fmt(wallet), "cw": fmt(wallet), "bc": "0"}],
              "P": positions},
    }


def algo_update(algo: AlgoOrder, now: int) -> dict[str, Any]:
    """``ALGO_UPDATE``: a conditional order's status (NEW, TRIGGERING, TRIGGERED, FINISHED, CANCELED, ...)."""
    triggered = bool(algo.actual_order_id)
    data: dict[str, Any] = {
        "caid": algo.client_algo_id,
        "aid": algo.algo_id,
        "at": "CONDITIONAL",
        "o": algo.order_type,
        "s": algo.symbol,
        "S": algo.side,
        "ps": algo.position_side,
        "f": algo.time_in_force,
        "q": fmt(algo.quantity),
        "X": algo.algo_status,
        "ai": algo.actual_order_id,
        "ap": fmt(algo.avg_price),
        "aq": fmt(algo.executed_qty),
        "act": ("MARKET" if algo.order_type.endswith("MARKET") else "LIMIT") if triggered else "0",
        "tp": fmt(algo.trigger_price),
        "p": fmt(algo.price),
        "V": "EXPIRE_MAKER",
        "wt": algo.working_type,
        "pm": "NONE",
        "cp": algo.close_position,
        "pP": False,
        "R": algo.reduce_only,
        "tt": algo.trigger_time,
        "gtd": 0,
    }
    if algo.algo_status == "REJECTED":
        data["rm"] = "Order placement rejected when triggered"
    return {"e": "ALGO_UPDATE", "T": algo.update_time, "E": now, "o": data}


def mark_price_update(book: SimBook, symbol: str, now: int) -> dict[str, Any]:
    """``<symbol>@markPrice`` payload (index and settle price equal the mark, as in premiumIndex)."""
    mark = fmt(book.mark_price(symbol), book.spec(symbol).tick_size)
    next_funding = now - now % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS
    return {"e": "markPriceUpdate", "E": now, "s": symbol, "p": mark, "ap": mark, "i": mark, "P": mark,
            "r": FUNDING_RATE, "T": next_funding}


def book_ticker(book: SimBook, symbol: str, now: int, update_id: int) -> dict[str, Any]:
    """``<symbol>@bookTicker`` payload from the synthetic book (the same levels as /fapi/v1/depth)."""
    spec = book.spec(symbol)
    bid, ask, qty = top_of_book(book, symbol)
    size = fmt(qty, spec.step_size)
    return {"e": "bookTicker", "u": update_id, "E": now, "T": now, "s": symbol, "b": fmt(bid, spec.tick_size),
            "B": size, "a": fmt(ask, spec.tick_size), "A": size}


def listen_key_expired(key: str, now: int) -> dict[str, Any]:
    """``listenKeyExpired`` (Binance's USD-M docs show the event time as a string here)."""
    return {"e": "listenKeyExpired", "E": str(now), "listenKey": key}
