"""The one seam between the engine and an exchange: ``OrderExecutionManager``.

Every byte the engine sends to an exchange goes through these three methods (the seed's signatures,
kept exactly). Implementations: ``harness.exchanges.binance.BinanceFuturesOrderManager`` (real
python-binance over HTTP) and ``harness.exchanges.sim.memory.InMemoryOrderManager`` (in-process).

Shapes
------
``get_all_positions(symbols)`` returns one dict per NONZERO position on the requested symbols
(``[]`` asks for every symbol)::

    {"symbol": "BTCUSDT", "position_amt": Decimal("-0.010"),   # signed: negative = short
     "position_side": "BOTH",                                   # BOTH (one-way) | LONG | SHORT (hedge)
     "mark_price": Decimal("64000.1")}                          # optional

``cancel_all_orders(symbol)`` is synchronous and cancels regular AND conditional (algo) orders of the
symbol; it returns how many were cancelled (0 when there were none, which is not an error).

``execute_market_close(symbol, side, quantity)`` sends reduce-only MARKET order(s) (one-way mode) or
positionSide orders (hedge mode: SELL closes LONG, BUY closes SHORT). ``quantity`` is annotated
``float`` as in the seed, but the engine passes a ``Decimal`` and implementations must accept both
(convert with ``Decimal(str(q))``, never float maths). It returns::

    {"symbol": "BTCUSDT", "side": "BUY", "requested_qty": Decimal("0.010"),
     "executed_qty": Decimal("0.010"), "status": "FILLED",      # FILLED | PARTIALLY_FILLED | ...
     "order_ids": [123], "client_order_ids": ["lq-..."], "avg_price": Decimal("64000.1")}

Errors are raised as ``harness.core.errors.ExchangeError`` subclasses; ``TerminalExchangeError`` (or
any exception with a true ``terminal`` attribute) is never retried by the engine.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

#: the three methods every order manager provides, with their kind (sync or async)
REQUIRED_METHODS: dict[str, str] = {
    "get_all_positions": "async",
    "cancel_all_orders": "sync",
    "execute_market_close": "async",
}


@runtime_checkable
class OrderExecutionManager(Protocol):
    async def get_all_positions(self, symbols: list[str]) -> list[dict]: ...

    def cancel_all_orders(self, symbol: str) -> int: ...

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict: ...


def describe_order_manager(order_manager: Any) -> list[str]:
    """Problems with ``order_manager`` as an OrderExecutionManager; empty when it conforms.

    Checks presence, sync/async kind and parameter names of the three seed methods.
    """
    import inspect

    problems: list[str] = []
    expected_params = {
        "get_all_positions": ["symbols"],
        "cancel_all_orders": ["symbol"],
        "execute_market_close": ["symbol", "side", "quantity"],
    }
    for name, kind in REQUIRED_METHODS.items():
        method = getattr(order_manager, name, None)
        if method is None or not callable(method):
            problems.append(f"{name}: missing")
            continue
        is_async = inspect.iscoroutinefunction(method)
        if kind == "async" and not is_async:
            problems.append(f"{name}: must be async")
        if kind == "sync" and is_async:
            problems.append(f"{name}: must be synchronous")
        try:
            params = [p for p in inspect.signature(method).parameters if p != "self"]
        except (TypeError, ValueError):
            problems.append(f"{name}: signature cannot be read")
            continue
        if params[: len(expected_params[name])] != expected_params[name]:
            problems.append(f"{name}: parameters {params}, expected {expected_params[name]}")
    return problems
