"""Market-data endpoints derived from the book's mark prices: premium index, tickers, depth, klines.

The simulator has no other traders: the order book is synthetic (levels one tick apart around the
mark, the same quantity on each), the last price is the mark price, and volumes are zero.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._models import SimBookError
from ._num import ZERO, floor_to_step, fmt

if TYPE_CHECKING:
    from ._routes import Call
    from .book import SimBook

FUNDING_INTERVAL_MS = 8 * 3600 * 1000
FUNDING_RATE = "0.00010000"
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
KLINE_LIMIT_MAX = 1500
KLINE_INTERVALS: dict[str, int] = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
    "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000, "12h": 43_200_000,
    "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000, "1M": 2_592_000_000,
}
DAY_MS = 86_400_000


def _invalid(name: str) -> SimBookError:
    return SimBookError(-1130, f"Data sent for parameter '{name}' is not valid.")


def _int(call: Call, name: str, default: int | None = None) -> int | None:
    raw = call.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SimBookError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^[0-9]{1,20}$'.") from None


def _symbols(call: Call) -> list[str]:
    symbol = call.symbol(required=False)
    return [symbol] if symbol else list(call.book.symbols)


def _one_or_all(call: Call, rows: list[dict[str, Any]]) -> Any:
    return rows[0] if call.get("symbol") else rows


def premium_index(call: Call) -> Any:
    book, now = call.book, call.book.now_ms()
    next_funding = now - now % FUNDING_INTERVAL_MS + FUNDING_INTERVAL_MS
    rows = []
    for symbol in _symbols(call):
        mark = fmt(book.mark_price(symbol), book.spec(symbol).tick_size)
        rows.append({"symbol": symbol, "markPrice": mark, "indexPrice": mark, "estimatedSettlePrice": mark,
                     "lastFundingRate": FUNDING_RATE, "interestRate": "0.00010000",
                     "nextFundingTime": next_funding, "time": now})
    return _one_or_all(call, rows)


def ticker_price(call: Call) -> Any:
    book, now = call.book, call.book.now_ms()
    rows = [{"symbol": s, "price": fmt(book.mark_price(s), book.spec(s).tick_size), "time": now}
            for s in _symbols(call)]
    return _one_or_all(call, rows)


def top_of_book(book: SimBook, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    """(best bid, best ask, quantity on each level) of the synthetic book around the mark."""
    spec = book.spec(symbol)
    bid = floor_to_step(book.mark_price(symbol), spec.tick_size)
    qty = max(floor_to_step(spec.market_max_qty / 10, spec.step_size), spec.min_qty)
    return bid, bid + spec.tick_size, qty


def _top_of_book(call: Call, symbol: str) -> tuple[Decimal, Decimal, Decimal]:
    return top_of_book(call.book, symbol)


def book_ticker(call: Call) -> Any:
    now, rows = call.book.now_ms(), []
    for symbol in _symbols(call):
        spec = call.book.spec(symbol)
        bid, ask, qty = _top_of_book(call, symbol)
        rows.append({"symbol": symbol, "bidPrice": fmt(bid, spec.tick_size), "bidQty": fmt(qty, spec.step_size),
                     "askPrice": fmt(ask, spec.tick_size), "askQty": fmt(qty, spec.step_size), "time": now})
    return _one_or_all(call, rows)


def ticker_24hr(call: Call) -> Any:
    book, now, rows = call.book, call.book.now_ms(), []
    for symbol in _symbols(call):
        tick = book.spec(symbol).tick_size
        first, last, high, low = book.path_prices(symbol, now - DAY_MS, now)
        change = last - first
        percent = (change / first * 100).quantize(Decimal("0.001")) if first else ZERO
        rows.append({
            "symbol": symbol, "priceChange": fmt(change, tick), "priceChangePercent": f"{percent:.3f}",
            "weightedAvgPrice": fmt(last, tick), "lastPrice": fmt(last, tick), "lastQty": "0",
            "openPrice": fmt(first, tick), "highPrice": fmt(high, tick), "lowPrice": fmt(low, tick),
            "volume": "0", "quoteVolume": "0", "openTime": now - DAY_MS, "closeTime": now,
            "firstId": 0, "lastId": 0, "count": 0,
        })
    return _one_or_all(call, rows)


def depth(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    limit = _int(call, "limit", 500)
    if limit not in DEPTH_LIMITS:
        raise _invalid("limit")
    spec = call.book.spec(symbol)
    bid, ask, qty = _top_of_book(call, symbol)
    size = fmt(qty, spec.step_size)
    bids = [[fmt(bid - i * spec.tick_size, spec.tick_size), size] for i in range(limit)
            if bid - i * spec.tick_size > 0]
    asks = [[fmt(ask + i * spec.tick_size, spec.tick_size), size] for i in range(limit)]
    now = call.book.now_ms()
    return {"lastUpdateId": now, "E": now, "T": now, "bids": bids, "asks": asks}


def depth_weight(params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit") or 500)
    except ValueError:
        return 2
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def klines(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    interval = call.require("interval")
    step = KLINE_INTERVALS.get(interval)
    if step is None:
        raise _invalid("interval")
    limit = _int(call, "limit", 500)
    assert limit is not None
    if not 1 <= limit <= KLINE_LIMIT_MAX:
        raise _invalid("limit")
    book, now = call.book, call.book.now_ms()
    tick = book.spec(symbol).tick_size
    current = now - now % step
    start, end = _int(call, "startTime"), _int(call, "endTime")
    last_open = min(current, end - end % step) if end is not None else current
    if start is not None:
        first_open = start + (-start % step)
        opens = list(range(first_open, last_open + 1, step))[:limit]
    else:
        opens = [last_open - i * step for i in range(limit - 1, -1, -1)]
    rows = []
    for open_time in opens:
        close_time = open_time + step - 1
        previous = book.path_prices(symbol, open_time - 1, open_time - 1)[1]
        _, close, high, low = book.path_prices(symbol, open_time, min(close_time, now))
        rows.append([open_time, fmt(previous, tick), fmt(max(high, previous), tick), fmt(min(low, previous), tick),
                     fmt(close, tick), "0", close_time, "0", 0, "0", "0", "0"])
    return rows


def klines_weight(params: dict[str, str]) -> int:
    try:
        limit = int(params.get("limit") or 500)
    except ValueError:
        return 1
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10
