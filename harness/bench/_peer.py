"""The peer a competent user would write instead of this engine: ccxt's async ``binanceusdm`` with
``asyncio.gather`` over symbols, against the same exchange and the same accounts.

Start-up (untimed, as for the engine): ``load_markets``. Timed: positions read while every symbol's
regular and conditional (algo) orders are cancelled, all at once; then every position closed by
reduce-only MARKET orders, all at once (split at the market's MARKET_LOT_SIZE maxQty, which ccxt
reports as ``limits.market.max``); then the positions read back to verify. ccxt is built as
``ccxt_binanceusdm_config`` builds it: ``enableRateLimit`` off (its throttle would space 650
requests 50 ms apart) and its own aiohttp session (ccxt's connection pool, as a user gets it).
ccxt comes with the ``ccxt`` (or ``dev``) extra; without it the peer is skipped.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from harness.bench._exchange import ExchangeHost
from harness.bench._measure import Sample
from harness.exchanges.sim.ccxt_urls import ccxt_binanceusdm_config

PEER_NAME = "ccxt.async_support.binanceusdm + asyncio.gather"


def ccxt_available() -> bool:
    try:
        import ccxt.async_support  # noqa: F401
    except ImportError:
        return False
    return True


class _InFlight:
    """Counts ccxt's requests in flight (wraps ``exchange.fetch``, the one call every request makes)."""

    def __init__(self, exchange: Any) -> None:
        self.now = self.peak = 0
        self._fetch = exchange.fetch
        exchange.fetch = self

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await self._fetch(*args, **kwargs)
        finally:
            self.now -= 1


def _chunks(amount: Decimal, most: Decimal | None) -> list[Decimal]:
    if most is None or most <= 0 or amount <= most:
        return [amount]
    whole, rest = divmod(amount, most)
    return [most] * int(whole) + ([rest] if rest else [])


async def ccxt_liquidate(exchange: Any) -> None:
    """The peer's liquidation: cancel everything and read positions at once, close at once, verify."""
    symbols = [m["symbol"] for m in exchange.markets.values() if m.get("linear") and m.get("active", True)]
    positions, *_ = await asyncio.gather(
        exchange.fetch_positions(),
        *(exchange.cancel_all_orders(symbol) for symbol in symbols),
        *(exchange.cancel_all_orders(symbol, {"trigger": True}) for symbol in symbols),
    )
    closes = []
    for position in positions:
        contracts = Decimal(str(position.get("contracts") or 0))
        if contracts == 0:
            continue
        symbol = position["symbol"]
        most = exchange.markets[symbol]["limits"]["market"]["max"]
        side = "sell" if position["side"] == "long" else "buy"
        for amount in _chunks(contracts, None if most is None else Decimal(str(most))):
            closes.append(exchange.create_order(symbol, "market", side, float(amount), None, {"reduceOnly": True}))
    await asyncio.gather(*closes)
    left = [p for p in await exchange.fetch_positions() if p.get("contracts")]
    if left:
        raise RuntimeError(f"ccxt peer: {len(left)} positions still open after the closes")


async def ccxt_once(host: ExchangeHost, symbols: int, rtt: float) -> Sample:
    """Open a fresh account, load markets, time one liquidation by the ccxt peer."""
    import ccxt.async_support as ccxt_async

    endpoint = host.call("open", symbols=symbols, rtt=rtt)
    state = "COMPLETED"
    try:
        exchange = ccxt_async.binanceusdm(
            ccxt_binanceusdm_config(endpoint["base_url"], endpoint["api_key"], endpoint["api_secret"]))
        try:
            await exchange.load_markets()
            in_flight = _InFlight(exchange)
            host.call("mark")
            cpu, started = time.process_time(), time.perf_counter()
            try:
                await ccxt_liquidate(exchange)
            except Exception:  # counted as a failed run (not flat), the run goes on
                state = "FAILED"
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            await exchange.close()
        exchange_figures = host.call("measure")
    finally:
        host.call("close")
    used = exchange_figures
    return Sample(seconds, cpu, used["requests"], in_flight.peak, 0, 0, used["http_429"], used["http_418"],
                  used["flat"], state if used["flat"] else "PARTIAL", used["exchange_cpu_seconds"])
