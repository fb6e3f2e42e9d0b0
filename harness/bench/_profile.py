"""Where one liquidation's time goes (wall, CPU, garbage collection, cProfile by kind) and the bot's
memory over many consecutive liquidations."""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import time
import tracemalloc
from pathlib import Path
from typing import Any

from harness.bench._exchange import ExchangeHost
from harness.bench._measure import FLOOR_RTTS, _adapter, engine_once
from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager

PROFILE_PLAIN_RUNS = 3
MEMORY_SYMBOLS = 5
MEMORY_WARMUP_LIQUIDATIONS = 50
#: the memory run's exchange: no latency and limits far above what 1,000 back-to-back runs use
RELAXED_LIMITS = {"weight_per_minute": 10_000_000, "orders_per_10s": 10_000_000, "orders_per_minute": 10_000_000}


# -- where the time goes ---------------------------------------------------------------------------
_SIGNING = ("_generate_signature", "_hmac_signature", "_order_params", "_get_request_kwargs", "quote", "urlencode")


def _category(filename: str, function: str) -> str:
    path = filename.replace("\\", "/")
    if "select.epoll" in function or "poll' of 'select" in function:
        return "waiting for the network (epoll)"
    if "/json/" in path or "_json" in function or "scan_once" in function or "encode_basestring" in function:
        return "JSON encode/decode"
    if "hmac" in path or "/urllib/" in path or "hashlib" in function or "hmac" in function or function in _SIGNING:
        return "signing + parameter encoding"
    if "/harness/exchanges/binance/wire" in path:
        return "HTTP client (the adapter's wire transport)"
    if "/harness/" in path and "/harness/core/audit" not in path:
        return "engine + adapter + limiter"
    if "/binance/" in path:
        return "python-binance (other)"
    if any(f"/{lib}/" in path for lib in ("aiohttp", "yarl", "multidict", "propcache", "frozenlist", "aiosignal")):
        return "aiohttp HTTP client"
    if "/harness/core/audit" in path:
        return "audit log"
    if "/harness/" in path:
        return "engine + adapter + limiter"
    if "/asyncio/" in path or "socket" in function or "selector" in path:
        return "asyncio loop + socket calls"
    return "other (builtins called by all of the above, stdlib)"


def profile_breakdown(profiler: cProfile.Profile, wall: float) -> dict[str, Any]:
    """Profiled time by kind (tottime, so the kinds add up), in ms and % of the wall time."""
    stats = pstats.Stats(profiler)
    totals: dict[str, float] = {}
    for (filename, _line, function), entry in stats.stats.items():  # type: ignore[attr-defined]
        kind = _category(filename, function)
        totals[kind] = totals.get(kind, 0.0) + entry[2]
    ordered = sorted(totals.items(), key=lambda item: -item[1])
    return {kind: {"ms": round(t * 1000, 2), "percent_of_wall": round(100 * t / wall, 1)} for kind, t in ordered}


class _GcTimer:
    """Wall time spent in the garbage collector while installed (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections += 1

    def __enter__(self) -> _GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


async def profile_once(host: ExchangeHost, symbols: int, rtt: float, workdir: Path) -> dict[str, Any]:
    """Where one liquidation's time goes: an unprofiled run (wall vs bot CPU vs garbage collection vs
    the exchange's CPU), then one under cProfile (which slows CPU-bound parts) for CPU by kind."""
    runs = []
    for _ in range(PROFILE_PLAIN_RUNS):
        collector = _GcTimer()
        runs.append((await engine_once(host, symbols, rtt, workdir, collector=collector), collector))
    plain, collector = sorted(runs, key=lambda run: run[0].seconds)[len(runs) // 2]  # the median run
    profiler = cProfile.Profile()
    profiled = await engine_once(host, symbols, rtt, workdir, profiler)
    exchange: dict[str, Any] = {}
    exchange_profiled = await engine_once(host, symbols, rtt, workdir, exchange_profile=exchange)
    return {
        "n": symbols, "rtt_ms": round(rtt * 1000), "median_of_runs": PROFILE_PLAIN_RUNS,
        "wall_ms": round(plain.seconds * 1000, 2),
        "bot_cpu_ms": round(plain.cpu_seconds * 1000, 2),
        "of_which_garbage_collection_ms": round(collector.seconds * 1000, 2),
        "garbage_collections": collector.collections,
        "exchange_cpu_ms": round(plain.exchange_cpu_seconds * 1000, 2),
        "injected_latency_floor_ms": FLOOR_RTTS * rtt * 1000,
        "bot_idle_ms": round((plain.seconds - plain.cpu_seconds) * 1000, 2),
        "profiled_wall_ms": round(profiled.seconds * 1000, 2),
        "by_kind": profile_breakdown(profiler, profiled.seconds),
        "exchange_profiled": {"requests": exchange_profiled.requests,
                              "exchange_cpu_ms": round(exchange_profiled.exchange_cpu_seconds * 1000, 2), **exchange},
    }


# -- memory ----------------------------------------------------------------------------------------
def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc), else its peak (getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def memory_growth(host: ExchangeHost, liquidations: int, workdir: Path) -> dict[str, Any]:
    """RSS and tracemalloc growth of one bot over ``liquidations`` consecutive liquidations."""
    endpoint = host.call("open", symbols=MEMORY_SYMBOLS, rtt=0.0, rate_limits=RELAXED_LIMITS)
    failures = 0
    try:
        async with _adapter(endpoint) as adapter:
            await adapter.warm_up()
            audit = AuditLogger(workdir / "memory-audit.jsonl")
            manager = LiquidationManager(LiquidationConfig(), adapter, audit, endpoint["symbols"])

            async def liquidate() -> bool:
                host.call("seed")
                return (await manager.execute_emergency_liquidation("memory")).state.value == "COMPLETED"

            warmup = min(MEMORY_WARMUP_LIQUIDATIONS, max(1, liquidations // 10))
            for _ in range(warmup):  # pools, caches and allocator arenas settle first
                await liquidate()
            gc.collect()
            tracemalloc.start(1)
            rss_before, traced_before = rss_bytes(), tracemalloc.take_snapshot()
            started = time.perf_counter()
            for _ in range(liquidations):
                failures += 0 if await liquidate() else 1
            seconds = time.perf_counter() - started
            gc.collect()
            traced_after, rss_after = tracemalloc.take_snapshot(), rss_bytes()
            tracer_overhead = tracemalloc.get_tracemalloc_memory()
            tracemalloc.stop()
            audit.close()
    finally:
        host.call("close")
    noise = (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>"))
    diff = traced_after.filter_traces(noise).compare_to(traced_before.filter_traces(noise), "lineno")
    traced_growth = sum(stat.size_diff for stat in diff)
    rss_growth = rss_after - rss_before - tracer_overhead
    top = [{"where": f"{s.traceback[0].filename}:{s.traceback[0].lineno}", "kib": round(s.size_diff / 1024, 1),
            "blocks": s.count_diff} for s in diff[:5] if s.size_diff > 0]
    return {
        "liquidations": liquidations, "symbols_each": MEMORY_SYMBOLS, "warmup_liquidations": warmup,
        "failures": failures, "seconds": round(seconds, 2),
        "rss_before_mb": round(rss_before / 2**20, 2), "rss_after_mb": round(rss_after / 2**20, 2),
        "rss_growth_mb": round(rss_growth / 2**20, 3), "tracemalloc_self_mb": round(tracer_overhead / 2**20, 2),
        "traced_growth_mb": round(traced_growth / 2**20, 3),
        "traced_growth_bytes_per_liquidation": round(traced_growth / max(1, liquidations), 1),
        "top_growth": top,
    }
