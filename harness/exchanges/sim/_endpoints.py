"""The names a fault rule can target, shared by the in-memory and the HTTP face.

A call answers to several names: its exact name (``"POST /fapi/v1/order"`` or the in-memory method
``"execute_market_close"``), its path without the method (``"/fapi/v1/order"``) and its category
(``"new_order"``, ``"cancel"``, ``"positions"``, ``"query"``, ``"account"``, ``"market_data"``).
A rule with ``endpoint=None`` matches every call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /fapi, e.g. "v1/order"
    category: str
    weight: int
    signed: bool = True
    counts_order: bool = False
    #: request weight that depends on the parameters (``symbol`` absent, ``limit``), else ``weight``
    weight_of: Callable[[dict[str, str]], int] | None = None
    #: USER_STREAM security: API key required, no signature
    key_only: bool = False

    @cached_property
    def name(self) -> str:
        return f"{self.method} /fapi/{self.path}"

    @cached_property  # built once: every request's fault matching reads it
    def names(self) -> tuple[str, ...]:
        """Exact name first, then the path and the category."""
        return (self.name, f"/fapi/{self.path}", self.category)


def _by_symbol(one: int, every: int) -> Callable[[dict[str, str]], int]:
    return lambda params: one if params.get("symbol") else every


def _by_limit(steps: tuple[tuple[int, int], ...], default_limit: int, above: int) -> Callable[[dict[str, str]], int]:
    """Weight by ``limit``: the first (bound, weight) with limit <= bound, else ``above``."""
    def weight(params: dict[str, str]) -> int:
        try:
            limit = int(params.get("limit") or default_limit)
        except ValueError:
            limit = default_limit
        return next((w for bound, w in steps if limit <= bound), above)
    return weight


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "v1/ping", "market_data", 1, signed=False),
    Endpoint("GET", "v1/time", "market_data", 1, signed=False),
    Endpoint("GET", "v1/exchangeInfo", "market_data", 1, signed=False),
    Endpoint("GET", "v2/positionRisk", "positions", 5),
    Endpoint("GET", "v3/positionRisk", "positions", 5),
    Endpoint("GET", "v1/positionSide/dual", "account", 30),
    Endpoint("POST", "v1/positionSide/dual", "account", 1),
    Endpoint("GET", "v2/account", "account", 5),
    Endpoint("GET", "v3/balance", "account", 5),
    Endpoint("GET", "v1/openOrders", "query", 1),
    Endpoint("GET", "v1/openAlgoOrders", "query", 1),
    Endpoint("GET", "v1/order", "query", 1),
    Endpoint("GET", "v1/algoOrder", "query", 1),
    Endpoint("POST", "v1/order", "new_order", 0, counts_order=True),
    Endpoint("POST", "v1/algoOrder", "new_order", 0, counts_order=True),
    Endpoint("POST", "v1/batchOrders", "new_order", 5, counts_order=True),
    Endpoint("DELETE", "v1/order", "cancel", 1),
    Endpoint("DELETE", "v1/algoOrder", "cancel", 1),
    Endpoint("DELETE", "v1/allOpenOrders", "cancel", 1),
    Endpoint("DELETE", "v1/algoOpenOrders", "cancel", 1),
    Endpoint("DELETE", "v1/batchOrders", "cancel", 1),
    Endpoint("POST", "v1/countdownCancelAll", "cancel", 10),
    Endpoint("GET", "v1/premiumIndex", "market_data", 1, signed=False, weight_of=_by_symbol(1, 10)),
    Endpoint("GET", "v1/ticker/price", "market_data", 1, signed=False, weight_of=_by_symbol(1, 2)),
    Endpoint("GET", "v2/ticker/price", "market_data", 1, signed=False, weight_of=_by_symbol(1, 2)),
    Endpoint("GET", "v1/ticker/bookTicker", "market_data", 2, signed=False, weight_of=_by_symbol(2, 5)),
    Endpoint("GET", "v1/ticker/24hr", "market_data", 1, signed=False, weight_of=_by_symbol(1, 40)),
    Endpoint("GET", "v1/depth", "market_data", 10, signed=False,
             weight_of=_by_limit(((50, 2), (100, 5), (500, 10)), 500, 20)),
    Endpoint("GET", "v1/klines", "market_data", 5, signed=False,
             weight_of=_by_limit(((99, 1), (499, 2), (1000, 5)), 500, 10)),
    Endpoint("GET", "v3/account", "account", 5),
    Endpoint("GET", "v2/balance", "account", 5),
    Endpoint("POST", "v1/leverage", "account", 1),
    Endpoint("POST", "v1/marginType", "account", 1),
    Endpoint("GET", "v1/leverageBracket", "account", 1),
    Endpoint("GET", "v1/commissionRate", "account", 20),
    Endpoint("GET", "v1/multiAssetsMargin", "account", 30),
    Endpoint("POST", "v1/multiAssetsMargin", "account", 1),
    Endpoint("GET", "v1/openOrder", "query", 1),
    Endpoint("GET", "v1/allOrders", "query", 5),
    Endpoint("GET", "v1/allAlgoOrders", "query", 5),
    Endpoint("GET", "v1/userTrades", "query", 5),
    Endpoint("GET", "v1/income", "account", 30),
    Endpoint("PUT", "v1/order", "new_order", 1, counts_order=True),
    Endpoint("POST", "v1/listenKey", "account", 1, signed=False, key_only=True),
    Endpoint("PUT", "v1/listenKey", "account", 1, signed=False, key_only=True),
    Endpoint("DELETE", "v1/listenKey", "account", 1, signed=False, key_only=True),
)

#: real Binance USD-M endpoints the simulator does not model: answered with Binance's -1020
#: "This operation is not supported." instead of a 404 or a silent success (see docs/SIMULATOR.md)
UNMODELLED: frozenset[tuple[str, str]] = frozenset({
    ("GET", "v1/trades"), ("GET", "v1/historicalTrades"), ("GET", "v1/aggTrades"),
    ("GET", "v1/continuousKlines"), ("GET", "v1/indexPriceKlines"), ("GET", "v1/markPriceKlines"),
    ("GET", "v1/premiumIndexKlines"), ("GET", "v1/fundingRate"), ("GET", "v1/fundingInfo"),
    ("GET", "v1/openInterest"), ("GET", "v1/indexInfo"),
    ("GET", "v1/assetIndex"), ("GET", "v1/constituents"), ("POST", "v1/order/test"),
    ("PUT", "v1/batchOrders"), ("GET", "v1/orderAmendment"), ("POST", "v1/positionMargin"),
    ("GET", "v1/positionMargin/history"), ("GET", "v1/forceOrders"), ("GET", "v1/adlQuantile"),
    ("GET", "v1/accountConfig"), ("GET", "v1/symbolConfig"), ("GET", "v1/rateLimit/order"),
    ("GET", "v1/apiTradingStatus"), ("GET", "v1/feeBurn"), ("POST", "v1/feeBurn"),
    ("GET", "v1/income/asyn"), ("GET", "v1/order/asyn"), ("GET", "v1/trade/asyn"),
    ("POST", "v1/convert/getQuote"), ("POST", "v1/convert/acceptQuote"), ("GET", "v1/convert/orderStatus"),
    ("GET", "v1/pmAccountInfo"),
})

BY_ROUTE: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS}

#: the in-memory face's methods and their categories
MEMORY_METHODS: dict[str, str] = {
    "get_all_positions": "positions",
    "cancel_all_orders": "cancel",
    "execute_market_close": "new_order",
}

CATEGORIES: frozenset[str] = frozenset(e.category for e in ENDPOINTS)


def memory_names(method: str) -> tuple[str, ...]:
    """The names an in-memory face call answers to, exact name first."""
    return (method, MEMORY_METHODS[method])


def known_names() -> frozenset[str]:
    """Every name a fault rule's ``endpoint`` may use."""
    names: set[str] = set(CATEGORIES) | set(MEMORY_METHODS)
    for endpoint in ENDPOINTS:
        names.update(endpoint.names)
    return frozenset(names)
