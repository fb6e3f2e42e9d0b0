"""One timed liquidation, by the engine or by the sequential baseline, and the statistics over many."""

from __future__ import annotations

import cProfile
import math
import statistics
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bench._exchange import ExchangeHost
from harness.bot.gctune import collector_paused, freeze_after_start_up
from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.exchanges.binance.rules import parse_exchange_info, plan_market_orders
from harness.exchanges.binance.session import _build_sync_client
from harness.exchanges.binance import BinanceFuturesOrderManager

if TYPE_CHECKING:
    from harness.bench._profile import _GcTimer

#: the floor: read positions while cancelling, send the closes, read back to verify
FLOOR_RTTS = 3


# -- one liquidation -------------------------------------------------------------------------------
@dataclass
class Sample:
    """One timed liquidation."""

    seconds: float
    cpu_seconds: float
    requests: int
    peak_in_flight: int
    max_orders_10s: int
    max_weight_1m: int
    http_429: int
    http_418: int
    flat: bool
    state: str
    exchange_cpu_seconds: float


def warm_connections(symbols: int) -> int:
    """Connections a bot of ``symbols`` keeps warm: the most a liquidation sends at once
    (positions, two open-order snapshots, two cancels per symbol)."""
    return 3 + 2 * symbols


#: adapter options for every bot the benchmark builds (``--batch-orders`` sets batch_orders)
ADAPTER_OPTIONS: dict[str, Any] = {}


def _adapter(endpoint: dict[str, Any]) -> BinanceFuturesOrderManager:
    return BinanceFuturesOrderManager(endpoint["api_key"], endpoint["api_secret"], base_url=endpoint["base_url"],
                                      **ADAPTER_OPTIONS)


async def engine_once(host: ExchangeHost, symbols: int, rtt: float, workdir: Path,
                      profiler: cProfile.Profile | None = None, collector: _GcTimer | None = None,
                      exchange_profile: dict[str, Any] | None = None) -> Sample:
    """Open a fresh account, warm the bot up, time one liquidation by the engine. With ``exchange_profile``
    (a dict to fill), the exchange's serving thread runs under cProfile during the liquidation."""
    endpoint = host.call("open", symbols=symbols, rtt=rtt)
    try:
        async with _adapter(endpoint) as adapter:
            await adapter.warm_up(connections=warm_connections(symbols))
            freeze_after_start_up()  # as the bot does before READY (harness.bot.gctune)
            audit = AuditLogger(workdir / "audit.jsonl")
            manager = LiquidationManager(LiquidationConfig(), adapter, audit, endpoint["symbols"])
            host.call("mark")
            if exchange_profile is not None:
                host.call("profile_start")
            with collector if collector is not None else nullcontext(), collector_paused():  # as the bot liquidates
                if profiler is not None:
                    profiler.enable()
                cpu, started = time.process_time(), time.perf_counter()
                result = await manager.execute_emergency_liquidation("benchmark")
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                if profiler is not None:
                    profiler.disable()
            if exchange_profile is not None:
                exchange_profile.update(host.call("profile_stop", top=12))
            stats = adapter.request_stats()
            audit.close()
        exchange = host.call("measure")
    finally:
        host.call("close")
    return Sample(
        seconds, cpu, exchange["requests"], int(stats["peak_in_flight"]), int(stats["max_orders_10s_seen"]),
        int(stats["max_weight_seen"]), exchange["http_429"], exchange["http_418"], exchange["flat"],
        result.state.value, exchange["exchange_cpu_seconds"],
    )


def baseline_once(host: ExchangeHost, symbols: int, rtt: float) -> Sample:
    """The same account liquidated one symbol at a time with python-binance's sync ``Client``."""
    endpoint = host.call("open", symbols=symbols, rtt=rtt)
    try:
        client = _build_sync_client(endpoint["api_key"], endpoint["api_secret"])
        client.FUTURES_URL = endpoint["base_url"] + "/fapi"
        seen = {"weight": 0, "orders": 0}

        def headers(response: Any, *args: Any, **kwargs: Any) -> None:
            seen["weight"] = max(seen["weight"], int(response.headers.get("X-MBX-USED-WEIGHT-1M", 0)))
            seen["orders"] = max(seen["orders"], int(response.headers.get("X-MBX-ORDER-COUNT-10S", 0)))

        client.session.hooks["response"].append(headers)
        client.timestamp_offset = client.futures_time()["serverTime"] - int(time.time() * 1000)
        rules = parse_exchange_info(client.futures_exchange_info()).symbols  # read at start-up, as a bot would
        host.call("mark")
        cpu, started = time.process_time(), time.perf_counter()
        positions = {p["symbol"]: Decimal(p["positionAmt"]) for p in client.futures_position_information()}
        for symbol in endpoint["symbols"]:
            client.futures_cancel_all_open_orders(symbol=symbol)
            client.futures_cancel_all_algo_open_orders(symbol=symbol)
            amount = positions.get(symbol, Decimal("0"))
            if amount == 0:
                continue
            for quantity in plan_market_orders(abs(amount), rules[symbol]).chunks:
                client.futures_create_order(symbol=symbol, side="SELL" if amount > 0 else "BUY", type="MARKET",
                                            quantity=format(quantity, "f"), reduceOnly="true")
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        client.close_connection()
        exchange = host.call("measure")
    finally:
        host.call("close")
    return Sample(seconds, cpu, exchange["requests"], 1, seen["orders"], seen["weight"], exchange["http_429"],
                  exchange["http_418"], exchange["flat"], "COMPLETED" if exchange["flat"] else "PARTIAL",
                  exchange["exchange_cpu_seconds"])


# -- statistics ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in (0, 1])."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarize(samples: Sequence[Sample], rtt: float) -> dict[str, Any]:
    seconds = [s.seconds for s in samples]
    median = statistics.median(seconds)
    p95 = percentile(seconds, 0.95)
    return {
        "runs": len(samples),
        "median_ms": round(median * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "median_rtts": round(median / rtt, 2),
        "p95_rtts": round(p95 / rtt, 2),
        "requests": int(statistics.median([s.requests for s in samples])),
        "peak_in_flight": max(s.peak_in_flight for s in samples),
        "max_orders_10s": max(s.max_orders_10s for s in samples),
        "max_weight_1m": max(s.max_weight_1m for s in samples),
        "http_429": sum(s.http_429 for s in samples),
        "http_418": sum(s.http_418 for s in samples),
        "all_flat": all(s.flat for s in samples),
        "states": sorted({s.state for s in samples}),
        "bot_cpu_ms_median": round(statistics.median([s.cpu_seconds for s in samples]) * 1000, 2),
        "exchange_cpu_ms_median": round(statistics.median([s.exchange_cpu_seconds for s in samples]) * 1000, 2),
        "samples_ms": [round(s * 1000, 2) for s in seconds],
    }
