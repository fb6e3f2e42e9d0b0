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

The engine asks for ``[]`` (the whole account, one read) and reads each entry with
``harness.core.positions.read_position``: this shape (extra keys only from ``PORT_OPTIONAL_KEYS``) or
Binance's native positionRisk row (``positionAmt``/``positionSide``); anything else (a missing or
unparseable amount, unknown keys, a reply that is not a list) makes the positions UNKNOWN, never flat.

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

Optional capabilities
---------------------
An order manager may offer more than the three seed methods. Each extra is a runtime-checkable
Protocol below; the engine and the bot test for it with ``isinstance`` and fall back when it is absent
(a method set to ``None`` in a class counts as absent, so a subclass can switch one off):

``SupportsAsyncCancel``: ``async cancel_all_orders_async(symbol) -> int``, the same contract as
``cancel_all_orders``. The engine awaits it on the loop; without it, it runs the synchronous cancel
in a thread pool sized for the symbol count.

``SupportsLifecycle``: ``async warm_up(*, connections: int = 0)`` (read clock offset, exchange rules
and position mode, open ``connections`` pooled connections; the return value is ignored) and
``async close()`` (release connections; idempotent). The bot warms up before READY and closes on
exit; without them it does neither.

``SupportsCountdown``: ``async countdown_cancel_all(symbol, countdown_ms: int)``: Binance's
``countdownCancelAll`` (cancel the symbol's open orders in ``countdown_ms``; 0 disarms). The bot's
dead-man's switch needs it; without it the switch is off (logged).

``SupportsOrderSnapshot``: ``async open_order_symbols() -> set[str]``: every symbol of the ACCOUNT
that has an open regular or algo (conditional) order, read account-wide (Binance: ``GET openOrders``
and ``GET openAlgoOrders`` without a symbol). With it, an engine run with no scope cancels on every
such symbol, and a scoped run lists the symbols outside its scope that keep orders. Without it the
engine cancels on the symbols with positions plus its scope, and says in the result
(``order_discovery="unavailable"``) and the audit trail that orders on other symbols were not looked
for. It raises (an ``ExchangeError``) when it cannot read the books; it never returns a partial set.

``AuditSink`` is what the engine needs of its audit logger: ``log(event_type, correlation_id,
details)`` (the event type is a ``harness.core.audit.AuditEvent`` value; the engine counts a ``log``
that raises as a failed write and carries on). ``SupportsWriteErrors``: a sink that also counts the
writes it failed itself (``write_errors: int``) has them added to ``audit_write_errors`` in
``get_metrics()``. ``harness.core.audit.AuditLogger`` is both; ``None`` means no audit trail.

Implementations: ``BinanceFuturesOrderManager`` has all four order-manager capabilities;
``InMemoryOrderManager`` has ``SupportsAsyncCancel``, ``SupportsCountdown`` and
``SupportsOrderSnapshot`` (no connections to warm or close).
"""

from __future__ import annotations

from collections.abc import Mapping
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


@runtime_checkable
class SupportsAsyncCancel(Protocol):
    async def cancel_all_orders_async(self, symbol: str) -> int: ...


@runtime_checkable
class SupportsLifecycle(Protocol):
    async def warm_up(self, *, connections: int = 0) -> Any: ...

    async def close(self) -> None: ...


@runtime_checkable
class SupportsCountdown(Protocol):
    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> Any: ...


@runtime_checkable
class SupportsOrderSnapshot(Protocol):
    async def open_order_symbols(self) -> set[str]: ...


@runtime_checkable
class AuditSink(Protocol):
    def log(self, event_type: Any, correlation_id: str | None, details: Mapping[str, Any] | None = None) -> Any: ...


@runtime_checkable
class SupportsWriteErrors(Protocol):
    write_errors: int


#: the optional capabilities by name (module docstring), for checks and descriptions
CAPABILITIES: dict[str, type] = {
    "async_cancel": SupportsAsyncCancel,
    "lifecycle": SupportsLifecycle,
    "countdown": SupportsCountdown,
    "order_snapshot": SupportsOrderSnapshot,
}


def capabilities_of(order_manager: Any) -> list[str]:
    """The names (``CAPABILITIES``) of the optional capabilities ``order_manager`` offers, sorted."""
    return sorted(name for name, protocol in CAPABILITIES.items() if isinstance(order_manager, protocol))


def describe_order_manager(order_manager: Any) -> list[str]:
    """Problems with ``order_manager`` as an OrderExecutionManager; empty when it conforms.

    Checks presence, sync/async kind and parameter names of the three seed methods, and that the
    methods of every optional capability it offers are async.
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
    for capability in capabilities_of(order_manager):
        for name in _protocol_methods(CAPABILITIES[capability]):
            if not inspect.iscoroutinefunction(getattr(order_manager, name)):
                problems.append(f"{name}: must be async (optional capability {CAPABILITIES[capability].__name__})")
    return problems


def _protocol_methods(protocol: type) -> list[str]:
    return sorted(name for name, value in vars(protocol).items() if not name.startswith("_") and callable(value))
