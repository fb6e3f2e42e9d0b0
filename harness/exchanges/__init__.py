"""Exchange adapters: implementations of ``harness.core.ports.OrderExecutionManager``.

``binance`` talks to Binance (or any Binance-compatible URL) through python-binance; ``sim`` is the
embedded Binance-compatible exchange used by the tests and the default harness run.
"""
