"""The embedded Binance USD-M futures exchange: ONE state model, two faces.

* ``SimBook``: accounts, positions, orders, filters and fills (pure, thread-safe);
* ``InMemoryOrderManager``: the in-process ``OrderExecutionManager`` over a book;
* ``BinanceSimulator``: Binance's REST API over HTTP on 127.0.0.1, for python-binance, and its
  WebSocket streams (user data, markPrice, bookTicker) on the same port (``sim.streams_url``);
* ``FaultPlan``: latency, hangs, errors, unknown status, locks and partial fills for both faces.

What the simulator models and what it does not (synthetic depth, no liquidations, ...) is listed
in ``docs/SIMULATOR.md``; ``ccxt_urls`` points ccxt at it.
"""

from ._models import AlgoOrder, Fill, Order, SimBookError
from ._symbols import DEFAULT_SYMBOLS, SymbolSpec
from .book import SimBook
from .faults import FaultDecision, FaultPlan, FaultRule, FiredFault
from ._http import RequestRecord
from ._ratelimit import RateLimits
from .memory import CallRecord, InMemoryOrderManager, exchange_error
from .server import BinanceSimulator

__all__ = [
    "AlgoOrder",
    "BinanceSimulator",
    "CallRecord",
    "DEFAULT_SYMBOLS",
    "FaultDecision",
    "FaultPlan",
    "FaultRule",
    "Fill",
    "FiredFault",
    "InMemoryOrderManager",
    "Order",
    "RateLimits",
    "RequestRecord",
    "SimBook",
    "SimBookError",
    "SymbolSpec",
    "exchange_error",
]
