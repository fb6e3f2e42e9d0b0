"""Account, set-up and history endpoints: account v2/v3, balance, leverage, margin type, trades, income."""

from __future__ import annotations

import secrets
import threading
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import _checks as chk
from . import _margin as mg
from ._models import SimBookError
from ._num import fmt
from .book import SimBook

if TYPE_CHECKING:
    from ._routes import Call

ACCOUNT_ALIAS = "SimAccount"
SUCCESS = {"code": 200, "msg": "success"}
HISTORY_LIMIT_DEFAULT = 500
HISTORY_LIMIT_MAX = 1000
LISTEN_KEY_TTL_MS = 60 * 60 * 1000


def _num(value: Decimal) -> str:
    return f"{value:.8f}"


def _int(call: Call, name: str) -> int | None:
    raw = call.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise SimBookError(-1100, f"Illegal characters found in parameter '{name}'; legal range is "
                                  "'^[0-9]{1,20}$'.") from None


def _limit(call: Call, default: int = HISTORY_LIMIT_DEFAULT, maximum: int = HISTORY_LIMIT_MAX) -> int:
    value = _int(call, "limit")
    if value is None:
        return default
    if not 1 <= value <= maximum:
        raise SimBookError(-1130, "Data sent for parameter 'limit' is not valid.")
    return value


# ----------------------------------------------------------------- positions
def position_row(leg: dict[str, Any], v3: bool) -> dict[str, Any]:
    """One ``positionRisk`` row (v3 shape, or v2 with leverage / marginType)."""
    row = {
        "symbol": leg["symbol"],
        "positionSide": leg["position_side"],
        "positionAmt": fmt(leg["position_amt"]),
        "entryPrice": fmt(leg["entry_price"]),
        "breakEvenPrice": fmt(leg["entry_price"]),
        "markPrice": fmt(leg["mark_price"]),
        "unRealizedProfit": _num(leg["unrealized_pnl"]),
        "liquidationPrice": "0",
        "notional": fmt(leg["notional"]),
        "isolatedMargin": "0",
        "isolatedWallet": "0",
        "updateTime": leg["update_time"],
    }
    if v3:
        row.update({"marginAsset": "USDT", "initialMargin": _num(leg["initial_margin"]),
                    "maintMargin": _num(leg["maint_margin"]), "positionInitialMargin": _num(leg["initial_margin"]),
                    "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0"})
    else:
        row.update({"leverage": str(leg["leverage"]), "maxNotionalValue": str(leg["max_notional"]),
                    "marginType": "isolated" if leg["isolated"] else "cross", "isAutoAddMargin": "false"})
    return row


def _account_totals(book: SimBook) -> dict[str, Any]:
    m = book.margins()
    return {
        "totalInitialMargin": _num(m["initial_margin"]), "totalMaintMargin": _num(m["maint_margin"]),
        "totalWalletBalance": _num(m["wallet"]), "totalUnrealizedProfit": _num(m["unrealized_pnl"]),
        "totalMarginBalance": _num(m["margin_balance"]),
        "totalPositionInitialMargin": _num(m["position_initial_margin"]),
        "totalOpenOrderInitialMargin": _num(m["open_order_initial_margin"]),
        "totalCrossWalletBalance": _num(m["wallet"]), "totalCrossUnPnl": _num(m["unrealized_pnl"]),
        "availableBalance": _num(m["available"]), "maxWithdrawAmount": _num(m["max_withdraw"]),
    }


def _asset_row(book: SimBook, v2: bool) -> dict[str, Any]:
    m = book.margins()
    row: dict[str, Any] = {
        "asset": "USDT", "walletBalance": _num(m["wallet"]), "unrealizedProfit": _num(m["unrealized_pnl"]),
        "marginBalance": _num(m["margin_balance"]), "maintMargin": _num(m["maint_margin"]),
        "initialMargin": _num(m["initial_margin"]), "positionInitialMargin": _num(m["position_initial_margin"]),
        "openOrderInitialMargin": _num(m["open_order_initial_margin"]), "crossWalletBalance": _num(m["wallet"]),
        "crossUnPnl": _num(m["unrealized_pnl"]), "availableBalance": _num(m["available"]),
        "maxWithdrawAmount": _num(m["max_withdraw"]),
    }
    if v2:
        row["marginAvailable"] = True
    row["updateTime"] = book.now_ms()
    return row


def account_v2(call: Call) -> Any:
    """``GET /fapi/v2/account``: every symbol's position rows (with leverage / isolated)."""
    book = call.book
    with book.lock:
        positions = []
        for symbol in book.symbols:
            for leg in book.position_legs(symbol):
                if book.hedge_mode and leg["position_side"] == "BOTH":
                    continue
                positions.append({
                    "symbol": symbol, "initialMargin": _num(leg["initial_margin"]),
                    "maintMargin": _num(leg["maint_margin"]), "unrealizedProfit": _num(leg["unrealized_pnl"]),
                    "positionInitialMargin": _num(leg["initial_margin"]), "openOrderInitialMargin": "0",
                    "leverage": str(leg["leverage"]), "isolated": leg["isolated"],
                    "entryPrice": fmt(leg["entry_price"]), "breakEvenPrice": fmt(leg["entry_price"]),
                    "maxNotional": str(leg["max_notional"]), "bidNotional": "0", "askNotional": "0",
                    "positionSide": leg["position_side"], "positionAmt": fmt(leg["position_amt"]),
                    "updateTime": leg["update_time"],
                })
        return {"feeTier": 0, "feeBurn": False, "canTrade": True, "canDeposit": True, "canWithdraw": True,
                "updateTime": 0, "multiAssetsMargin": book.multi_assets_margin, "tradeGroupId": -1,
                **_account_totals(book), "assets": [_asset_row(book, True)], "positions": positions}


def account_v3(call: Call) -> Any:
    """``GET /fapi/v3/account``: only positions that are open, in v3's lean row shape."""
    book = call.book
    with book.lock:
        positions = [{
            "symbol": leg["symbol"], "positionSide": leg["position_side"], "positionAmt": fmt(leg["position_amt"]),
            "unrealizedProfit": _num(leg["unrealized_pnl"]), "isolatedMargin": "0",
            "notional": fmt(leg["notional"]), "isolatedWallet": "0", "initialMargin": _num(leg["initial_margin"]),
            "maintMargin": _num(leg["maint_margin"]), "updateTime": leg["update_time"],
        } for leg in book.positions()]
        return {**_account_totals(book), "assets": [_asset_row(book, False)], "positions": positions}


def balance(call: Call) -> Any:
    """``GET /fapi/v2/balance`` and ``/fapi/v3/balance``."""
    m = call.book.margins()
    return [{"accountAlias": ACCOUNT_ALIAS, "asset": "USDT", "balance": _num(m["wallet"]),
             "crossWalletBalance": _num(m["wallet"]), "crossUnPnl": _num(m["unrealized_pnl"]),
             "availableBalance": _num(m["available"]), "maxWithdrawAmount": _num(m["max_withdraw"]),
             "marginAvailable": True, "updateTime": call.book.now_ms()}]


# ----------------------------------------------------------------- set-up
def set_leverage(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    value = call.book.set_leverage(symbol, call.require("leverage"))
    return {"leverage": value, "maxNotionalValue": str(mg.max_notional(value)), "symbol": symbol}


def set_margin_type(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    call.book.set_margin_type(symbol, call.require("marginType"))
    return SUCCESS


def leverage_bracket(call: Call) -> Any:
    brackets = [b.to_api() for b in mg.BRACKETS]
    symbol = call.symbol(required=False)
    if symbol:
        return [{"symbol": symbol, "notionalCoef": 1.0, "brackets": brackets}]
    return [{"symbol": s, "notionalCoef": 1.0, "brackets": brackets} for s in call.book.symbols]


def commission_rate(call: Call) -> Any:
    symbol = call.symbol()
    maker, taker = call.book.commission_rates
    return {"symbol": symbol, "makerCommissionRate": fmt(maker), "takerCommissionRate": fmt(taker),
            "rpiCommissionRate": fmt(maker)}


def get_multi_assets(call: Call) -> Any:
    return {"multiAssetsMargin": call.book.multi_assets_margin}


def set_multi_assets(call: Call) -> Any:
    enabled = call.flag("multiAssetsMargin")
    if enabled is None:
        raise chk.mandatory("multiAssetsMargin")
    call.book.set_multi_assets_margin(enabled)
    return SUCCESS


# ----------------------------------------------------------------- history and reads
def _window(call: Call, items: list[Any], time_of: Any) -> list[Any]:
    start, end = _int(call, "startTime"), _int(call, "endTime")
    return [i for i in items if (start is None or time_of(i) >= start) and (end is None or time_of(i) <= end)]


def open_order(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    order = call.book.get_order(symbol, call.get("orderId"), call.get("origClientOrderId"))
    if not order.is_open:
        raise SimBookError(-2013, "Order does not exist.")
    return order.to_api()


def all_orders(call: Call) -> Any:
    symbol = call.symbol()
    orders = _window(call, call.book.orders(symbol), lambda o: o.time)
    first = _int(call, "orderId")
    if first is not None:
        orders = [o for o in orders if o.order_id >= first]
    return [o.to_api() for o in orders[-_limit(call):]] if first is None else \
        [o.to_api() for o in orders[:_limit(call)]]


def all_algo_orders(call: Call) -> Any:
    symbol = call.symbol()
    orders = _window(call, call.book.algo_orders(symbol), lambda o: o.create_time)
    first = _int(call, "algoId")
    if first is not None:
        orders = [o for o in orders if o.algo_id >= first]
    limit = _limit(call, default=500, maximum=1000)
    return [o.to_api() for o in (orders[:limit] if first is not None else orders[-limit:])]


def user_trades(call: Call) -> Any:
    symbol = call.symbol()
    fills = [f for f in call.book.fill_log if f.symbol == symbol]
    order_id, from_id = _int(call, "orderId"), _int(call, "fromId")
    if order_id is not None:
        fills = [f for f in fills if f.order_id == order_id]
    if from_id is not None:
        fills = [f for f in fills if f.trade_id >= from_id]
    fills = _window(call, fills, lambda f: f.time)
    limit = _limit(call)
    return [f.to_api() for f in (fills[:limit] if from_id is not None else fills[-limit:])]


def income(call: Call) -> Any:
    symbol = call.symbol(required=False)
    kind = call.get("incomeType")
    rows = []
    for fill in call.book.fill_log:
        if symbol not in (None, fill.symbol):
            continue
        for income_type, amount, offset in (("REALIZED_PNL", fill.realized_pnl, 0), ("COMMISSION", -fill.commission, 1)):
            if amount and kind in (None, income_type):
                rows.append({"symbol": fill.symbol, "incomeType": income_type, "income": _num(amount),
                             "asset": "USDT", "info": "", "time": fill.time, "tranId": fill.trade_id * 10 + offset,
                             "tradeId": str(fill.trade_id)})
    rows = _window(call, rows, lambda r: r["time"])
    return rows[-_limit(call, default=100, maximum=1000):]


def modify_order(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    order = call.book.modify_order(symbol, call.require("side"), call.get("quantity"), call.get("price"),
                                   call.get("orderId"), call.get("origClientOrderId"))
    return order.to_api()


# ----------------------------------------------------------------- user data stream keys
class ListenKeys:
    """The one listen key of the simulator's account (Binance gives the same key until it expires)."""

    def __init__(self, book: SimBook) -> None:
        self._book = book
        self._lock = threading.Lock()
        self._key: str | None = None
        self._expires = 0

    def create(self) -> str:
        with self._lock:
            now = self._book.now_ms()
            if self._key is None or now >= self._expires:
                self._key = secrets.token_urlsafe(48)[:64]
            self._expires = now + LISTEN_KEY_TTL_MS
            return self._key

    def keepalive(self) -> str:
        with self._lock:
            if self._key is None or self._book.now_ms() >= self._expires:
                raise SimBookError(-1125, "This listenKey does not exist.")
            self._expires = self._book.now_ms() + LISTEN_KEY_TTL_MS
            return self._key

    def close(self) -> None:
        with self._lock:
            self._key = None

    def valid(self, key: str) -> bool:
        with self._lock:
            return key == self._key and self._book.now_ms() < self._expires


def listen_key_post(call: Call) -> Any:
    return {"listenKey": call.streams.create()}


def listen_key_put(call: Call) -> Any:
    return {"listenKey": call.streams.keepalive()}


def listen_key_delete(call: Call) -> Any:
    call.streams.close()
    return {}
