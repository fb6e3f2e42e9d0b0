"""The Binance USD-M futures adapter: ``BinanceFuturesOrderManager`` over python-binance.

Modules (each says what it guarantees):

* ``manager``: ``BinanceFuturesOrderManager``, the ``OrderExecutionManager`` implementation;
* ``session``: signed requests, clock offset, timeouts, retries (python-binance clients);
* ``limiter``: the client-side rate limiter built from exchangeInfo's ``rateLimits``;
* ``close``: market closes without double execution, and optional order batching;
* ``rules``: exchangeInfo filters and the Decimal quantity maths;
* ``errors``: python-binance / transport exceptions -> ``harness.core.errors``;
* ``ids``: deterministic client order ids.

Where it sends requests: ``harness.exchanges.target``; what Binance's codes mean:
``harness.exchanges.codes``.
"""

from __future__ import annotations

from harness.core.errors import InvalidArgumentError
from harness.exchanges.binance.ids import CLIENT_ORDER_ID_PATTERN, make_client_order_id
from harness.exchanges.binance.manager import BinanceFuturesOrderManager
from harness.exchanges.binance.rules import (
    ExchangeRules,
    OrderPlan,
    SymbolRules,
    parse_exchange_info,
    plan_market_orders,
)

__all__ = [
    "BinanceFuturesOrderManager",
    "CLIENT_ORDER_ID_PATTERN",
    "ExchangeRules",
    "InvalidArgumentError",
    "OrderPlan",
    "SymbolRules",
    "make_client_order_id",
    "parse_exchange_info",
    "plan_market_orders",
]
