"""Conformance kit for a team's ``OrderExecutionManager`` (the checklist's "Required methods
available" and "Mock order manager tests pass", made a real test kit).

``pytest --order-manager package.module:factory`` runs ``scenarios/test_order_manager_conformance.py``:
one labelled test per ``CHECKS`` entry, on the embedded exchange, each in the report's Dependency
Verification section. ``factory(exchange_url, api_key, api_secret)`` returns an order manager (or an
awaitable of one, or an async context manager yielding one). ``harness.conformance.reference:factory``
is this project's own ``BinanceFuturesOrderManager``.
"""

from harness.conformance.checks import BY_ID, CHECKS, Check, ConformanceFailure, Kit, run_check
from harness.conformance.factory import load_factory, open_order_manager

__all__ = ["BY_ID", "CHECKS", "Check", "ConformanceFailure", "Kit", "load_factory", "open_order_manager", "run_check"]
