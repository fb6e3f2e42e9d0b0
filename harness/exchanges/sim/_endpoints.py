"""The names a fault rule can target, shared by the in-memory and the HTTP face.

A call answers to several names: its exact name (``"POST /fapi/v1/order"`` or the in-memory method
``"execute_market_close"``), its path without the method (``"/fapi/v1/order"``) and its category
(``"new_order"``, ``"cancel"``, ``"positions"``, ``"query"``, ``"account"``, ``"market_data"``).
A rule with ``endpoint=None`` matches every call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /fapi, e.g. "v1/order"
    category: str
    weight: int
    signed: bool = True
    counts_order: bool = False

    @property
    def name(self) -> str:
        return f"{self.method} /fapi/{self.path}"

    @property
    def names(self) -> tuple[str, ...]:
        """Exact name first, then the path and the category."""
        return (self.name, f"/fapi/{self.path}", self.category)


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
)

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
