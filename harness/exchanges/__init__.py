"""Exchange adapters: implementations of ``harness.core.ports.OrderExecutionManager``.

``binance`` talks to Binance (or any Binance-compatible URL) through python-binance; ``sim`` is the
embedded Binance-compatible exchange used by the tests and the default harness run. Shared by
both: ``target`` (where requests go, and which keys belong there), ``hosts`` (which Binance a host
is) and ``codes`` (Binance's error codes and their meaning).
"""
