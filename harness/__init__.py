"""Emergency-liquidation engine for Binance USD-M futures and its deployment-verification harness."""

__version__ = "0.1.0"
