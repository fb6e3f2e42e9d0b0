"""This project's own order manager as a conformance-kit factory (the kit's reference run in CI)."""

from __future__ import annotations

from harness.exchanges.binance import BinanceFuturesOrderManager


def factory(exchange_url: str, api_key: str, api_secret: str) -> BinanceFuturesOrderManager:
    return BinanceFuturesOrderManager(api_key, api_secret, base_url=exchange_url)
