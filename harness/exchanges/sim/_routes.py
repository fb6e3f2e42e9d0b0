"""The USD-M REST endpoints: request parameters in, ``SimBook`` calls, Binance JSON out.

Every handler takes a ``Call`` (the parsed parameters plus what the fault plan decided) and returns
JSON-able data or raises ``SimBookError``; the HTTP layer (``_http``) does the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import _checks as chk
from . import _routes_account as acct
from . import _routes_market as mkt
from ._models import SimBookError
from ._ratelimit import RateLimits
from .book import SimBook
from .faults import FaultRule

MAX_BATCH_ORDERS = 5
MAX_BATCH_CANCELS = 10
CANCEL_ALL_DONE = {"code": 200, "msg": "The operation of cancel all open order is done."}


@dataclass
class Call:
    book: SimBook
    params: dict[str, str]
    limits: RateLimits
    fill_ratio: Decimal | None = None
    lock: FaultRule | None = None
    streams: Any = None

    def get(self, name: str) -> str | None:
        value = self.params.get(name)
        return None if value in (None, "") else value

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise chk.mandatory(name)
        return value

    def flag(self, name: str) -> bool | None:
        """``"true"``/``"false"`` (any case) as a bool, ``None`` when absent; -1130 otherwise."""
        value = self.get(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise SimBookError(-1130, f"Data sent for parameter '{name}' is not valid.")
        return value.lower() == "true"

    def symbol(self, required: bool = True) -> str | None:
        value = self.require("symbol") if required else self.get("symbol")
        if value is not None:
            self.book.spec(value)
        return value


Handler = Callable[[Call], Any]


def _ping(call: Call) -> Any:
    return {}


def _time(call: Call) -> Any:
    return {"serverTime": call.book.now_ms()}


def _exchange_info(call: Call) -> Any:
    book = call.book
    return {
        "timezone": "UTC",
        "serverTime": book.now_ms(),
        "futuresType": "U_MARGINED",
        "rateLimits": call.limits.exchange_info(),
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [book.spec(symbol).exchange_info() for symbol in book.symbols],
    }


def _position_risk_v2(call: Call) -> Any:
    symbol = call.symbol(required=False)
    symbols = [symbol] if symbol else call.book.symbols
    return [acct.position_row(leg, False) for s in symbols for leg in call.book.position_legs(s)]


def _position_risk_v3(call: Call) -> Any:
    book = call.book
    symbol = call.symbol(required=False)
    with book.lock:
        active = {p["symbol"] for p in book.positions()} | {o.symbol for o in book.open_orders()} | {
            o.symbol for o in book.open_algo_orders()}
        symbols = [s for s in ([symbol] if symbol else book.symbols) if s in active]
        return [acct.position_row(leg, True) for s in symbols for leg in book.position_legs(s)
                if not (book.hedge_mode and leg["position_side"] == "BOTH")]


def _get_dual(call: Call) -> Any:
    return {"dualSidePosition": call.book.hedge_mode}


def _set_dual(call: Call) -> Any:
    enabled = call.flag("dualSidePosition")
    if enabled is None:
        raise chk.mandatory("dualSidePosition")
    call.book.set_hedge_mode(enabled)
    return {"code": 200, "msg": "success"}


def _open_orders(call: Call) -> Any:
    return [o.to_api() for o in call.book.open_orders(call.symbol(required=False))]


def _open_algo_orders(call: Call) -> Any:
    return [o.to_api() for o in call.book.open_algo_orders(call.symbol(required=False))]


def _check_lock(call: Call, symbol: str) -> None:
    if call.lock is not None and call.lock.symbol == symbol:
        raise SimBookError(call.lock.code or -1122, call.lock.msg or "Invalid symbol status.", call.lock.status)


def place_order(call: Call) -> dict[str, Any]:
    """POST /fapi/v1/order (also one item of a batch)."""
    symbol = call.symbol()
    assert symbol is not None
    _check_lock(call, symbol)
    order = call.book.place_order(
        symbol, call.require("side"), call.require("type"), call.get("quantity"), call.get("price"),
        reduce_only=call.flag("reduceOnly"), position_side=call.get("positionSide"),
        client_order_id=call.get("newClientOrderId"), time_in_force=call.get("timeInForce"),
        fill_ratio=call.fill_ratio,
    )
    response = order.to_api()
    if (call.get("newOrderRespType") or "ACK").upper() == "ACK":
        response.update({"status": "NEW", "executedQty": "0", "cumQty": "0", "cumQuote": "0", "avgPrice": "0.00"})
    return response


def _query_order(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    return call.book.get_order(symbol, call.get("orderId"), call.get("origClientOrderId")).to_api()


def _cancel_order(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    return call.book.cancel_order(symbol, call.get("orderId"), call.get("origClientOrderId")).to_api()


def _place_algo(call: Call) -> Any:
    algo_type = call.require("algoType")
    if algo_type.upper() != "CONDITIONAL":
        raise SimBookError(-1130, "Data sent for parameter 'algoType' is not valid.")
    symbol = call.symbol()
    assert symbol is not None
    _check_lock(call, symbol)
    return call.book.place_algo_order(
        symbol, call.require("side"), call.require("type"), quantity=call.get("quantity"),
        trigger_price=call.get("triggerPrice"), price=call.get("price"), reduce_only=call.flag("reduceOnly"),
        close_position=bool(call.flag("closePosition")), position_side=call.get("positionSide"),
        client_algo_id=call.get("clientAlgoId"), time_in_force=call.get("timeInForce"),
        working_type=call.get("workingType"), callback_rate=call.get("callbackRate"),
        activate_price=call.get("activatePrice"),
    ).to_api()


def _query_algo(call: Call) -> Any:
    return call.book.get_algo_order(call.get("algoId"), call.get("clientAlgoId")).to_api()


def _cancel_algo(call: Call) -> Any:
    order = call.book.cancel_algo_order(call.get("algoId"), call.get("clientAlgoId"))
    return {"algoId": order.algo_id, "clientAlgoId": order.client_algo_id, "code": "200", "msg": "success"}


def _cancel_all(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    call.book.cancel_all(symbol)
    return CANCEL_ALL_DONE


def _cancel_all_algo(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    call.book.cancel_all_algo(symbol)
    return CANCEL_ALL_DONE


def _json_list(call: Call, name: str, limit: int) -> list[Any] | None:
    raw = next((v for k, v in call.params.items() if k.lower() == name.lower() and v), None)
    if raw is None:
        return None
    try:
        items = json.loads(raw)
    except ValueError:
        raise SimBookError(-1130, f"Data sent for parameter '{name}' is not valid.") from None
    if not isinstance(items, list) or not items or len(items) > limit:
        raise SimBookError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return items


def _batch_place(call: Call) -> Any:
    items = _json_list(call, "batchOrders", MAX_BATCH_ORDERS)
    if items is None:
        raise chk.mandatory("batchOrders")
    results: list[Any] = []
    for item in items:
        if not isinstance(item, dict):
            results.append({"code": -1130, "msg": "Data sent for parameter 'batchOrders' is not valid."})
            continue
        sub = Call(call.book, {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in item.items()},
                   call.limits, call.fill_ratio, call.lock, call.streams)
        try:
            results.append(place_order(sub))
        except SimBookError as exc:
            results.append(exc.to_api())
    return results


def _batch_cancel(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    ids = _json_list(call, "orderIdList", MAX_BATCH_CANCELS)
    client_ids = _json_list(call, "origClientOrderIdList", MAX_BATCH_CANCELS)
    if ids is None and client_ids is None:
        raise SimBookError(-1102, "Mandatory parameter 'orderIdList' was not sent, was empty/null, or malformed.")
    results: list[Any] = []
    for order_id, client_id in [(i, None) for i in ids or []] + [(None, c) for c in client_ids or []]:
        try:
            results.append(call.book.cancel_order(symbol, order_id, client_id).to_api())
        except SimBookError as exc:
            results.append(exc.to_api())
    return results


def _countdown(call: Call) -> Any:
    symbol = call.symbol()
    assert symbol is not None
    raw = call.require("countdownTime")
    try:
        countdown = int(raw)
    except ValueError:
        raise SimBookError(-1130, "Data sent for parameter 'countdownTime' is not valid.") from None
    call.book.arm_countdown(symbol, countdown)
    return {"symbol": symbol, "countdownTime": str(countdown)}


HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", "v1/ping"): _ping,
    ("GET", "v1/time"): _time,
    ("GET", "v1/exchangeInfo"): _exchange_info,
    ("GET", "v2/positionRisk"): _position_risk_v2,
    ("GET", "v3/positionRisk"): _position_risk_v3,
    ("GET", "v1/positionSide/dual"): _get_dual,
    ("POST", "v1/positionSide/dual"): _set_dual,
    ("GET", "v2/account"): acct.account_v2,
    ("GET", "v3/account"): acct.account_v3,
    ("GET", "v2/balance"): acct.balance,
    ("GET", "v3/balance"): acct.balance,
    ("POST", "v1/leverage"): acct.set_leverage,
    ("POST", "v1/marginType"): acct.set_margin_type,
    ("GET", "v1/leverageBracket"): acct.leverage_bracket,
    ("GET", "v1/commissionRate"): acct.commission_rate,
    ("GET", "v1/multiAssetsMargin"): acct.get_multi_assets,
    ("POST", "v1/multiAssetsMargin"): acct.set_multi_assets,
    ("GET", "v1/openOrder"): acct.open_order,
    ("GET", "v1/allOrders"): acct.all_orders,
    ("GET", "v1/allAlgoOrders"): acct.all_algo_orders,
    ("GET", "v1/userTrades"): acct.user_trades,
    ("GET", "v1/income"): acct.income,
    ("PUT", "v1/order"): acct.modify_order,
    ("POST", "v1/listenKey"): acct.listen_key_post,
    ("PUT", "v1/listenKey"): acct.listen_key_put,
    ("DELETE", "v1/listenKey"): acct.listen_key_delete,
    ("GET", "v1/premiumIndex"): mkt.premium_index,
    ("GET", "v1/ticker/price"): mkt.ticker_price,
    ("GET", "v2/ticker/price"): mkt.ticker_price,
    ("GET", "v1/ticker/bookTicker"): mkt.book_ticker,
    ("GET", "v1/ticker/24hr"): mkt.ticker_24hr,
    ("GET", "v1/depth"): mkt.depth,
    ("GET", "v1/klines"): mkt.klines,
    ("GET", "v1/openOrders"): _open_orders,
    ("GET", "v1/openAlgoOrders"): _open_algo_orders,
    ("GET", "v1/order"): _query_order,
    ("POST", "v1/order"): place_order,
    ("DELETE", "v1/order"): _cancel_order,
    ("GET", "v1/algoOrder"): _query_algo,
    ("POST", "v1/algoOrder"): _place_algo,
    ("DELETE", "v1/algoOrder"): _cancel_algo,
    ("DELETE", "v1/allOpenOrders"): _cancel_all,
    ("DELETE", "v1/algoOpenOrders"): _cancel_all_algo,
    ("POST", "v1/batchOrders"): _batch_place,
    ("DELETE", "v1/batchOrders"): _batch_cancel,
    ("POST", "v1/countdownCancelAll"): _countdown,
}


def request_symbols(params: dict[str, str]) -> list[str]:
    """The symbol(s) a request concerns, for fault matching (batch items included)."""
    symbol = params.get("symbol")
    raw = params.get("batchOrders")
    if not raw:  # every request but a batch: nothing to parse
        return [symbol] if symbol else []
    symbols = [symbol] if symbol else []
    if raw:
        try:
            items = json.loads(raw)
        except ValueError:
            items = []
        if isinstance(items, list):
            symbols += [str(i["symbol"]) for i in items if isinstance(i, dict) and i.get("symbol")]
    return list(dict.fromkeys(symbols))


#: (10 s, 1 min) ORDERS counter cost per Binance's docs: a batch counts 5 on the 10 s counter and 1 on
#: the minute counter, whatever its size
_ORDER_COUNTS: dict[tuple[str, str], tuple[int, int]] = {
    ("POST", "v1/order"): (1, 1),
    ("POST", "v1/algoOrder"): (1, 1),
    ("PUT", "v1/order"): (1, 1),
    ("POST", "v1/batchOrders"): (5, 1),
}


def order_count(method: str, path: str, params: dict[str, str]) -> tuple[int, int]:
    """What a request adds to the (10 s, 1 min) ORDERS counters."""
    return _ORDER_COUNTS.get((method, path), (0, 0))
