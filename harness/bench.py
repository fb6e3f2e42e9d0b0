"""``liquidation-harness bench``: liquidation latency at scale, against a sequential baseline.

For each account size N and round-trip time (RTT), a fresh embedded exchange serves N synthetic
USD-M symbols, each with a position (every fourth above its MARKET_LOT_SIZE maxQty, so it needs two
orders) and two open orders (a resting LIMIT and a conditional STOP_MARKET in the algo book). Every
request the exchange receives is delayed by the RTT (a latency fault on every endpoint). The bot
(``LiquidationManager`` + ``BinanceFuturesOrderManager`` over python-binance + ``AuditLogger``) warms
up as it would at start-up (clock offset, exchangeInfo, position mode), then liquidates; only the
liquidation is timed. The same accounts are then liquidated by a sequential baseline: python-binance's
sync ``Client``, one symbol at a time, cancel (regular, then algo) then close, as common bots do.

The exchange runs in a child process by default (``--exchange subprocess``), like a real exchange on
another machine: its CPU then does not compete with the bot's for one interpreter lock.
``--exchange in-process`` serves it from a thread of this process (the simulator's usual mode).

Also measured: where the time goes at the largest N and RTT (wall vs bot CPU vs garbage collection vs
the exchange's CPU, then one run under cProfile for the bot's CPU by kind) and the bot's memory over
many consecutive liquidations in one process (RSS and tracemalloc growth).
Output: ``liquidation_latency.json`` and, when matplotlib is installed (``pip install
'liquidation-harness[bench]'``), ``liquidation_latency.png`` under ``--out``. Every connection goes
to 127.0.0.1. Not a test: it measures and prints pass/miss per target; it asserts nothing.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import logging
import math
import multiprocessing
import os
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.exchanges._binance_rules import parse_exchange_info, plan_market_orders
from harness.exchanges._binance_session import _build_sync_client
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.sim import BinanceSimulator, FaultPlan, SimBook, SymbolSpec

DEFAULT_SIZES = (1, 10, 50, 200)
DEFAULT_RTTS_MS = (20, 50)
DEFAULT_RUNS = 15
#: the sequential baseline is slow (1 + 3N + splits round trips): fewer runs, one at the largest N
DEFAULT_BASELINE_RUNS = 3
LARGE_BASELINE_SIZE = 100
DEFAULT_MEMORY_LIQUIDATIONS = 1000
PROFILE_PLAIN_RUNS = 3
MEMORY_SYMBOLS = 5
MEMORY_WARMUP_LIQUIDATIONS = 50
QUICK = {"sizes": (1, 10, 50), "rtts_ms": (50,), "runs": 3, "baseline_runs": 1, "memory_liquidations": 100}
#: the floor: read positions while cancelling, send the closes, read back to verify
FLOOR_RTTS = 3
TARGETS = {
    "n50_rtt50_median_rtts": 6.0,
    "n50_rtt50_speedup": 15.0,
    "n200_rtt50_median_rtts": 10.0,
    "memory_growth_mb": 5.0,
}
#: the memory run's exchange: no latency and limits far above what 1,000 back-to-back runs use
RELAXED_LIMITS = {"weight_per_minute": 10_000_000, "orders_per_10s": 10_000_000, "orders_per_minute": 10_000_000}
EXCHANGE_START_TIMEOUT_SECONDS = 60.0
DEFAULT_OUT = Path("reports/out/bench")
log = logging.getLogger("harness.bench")


# -- accounts ------------------------------------------------------------------------------------
def synthetic_specs(count: int) -> list[SymbolSpec]:
    """``count`` USD-M-like symbols (``B000USDT``...): step 0.001, MARKET_LOT_SIZE maxQty 100."""
    return [
        SymbolSpec(
            symbol=f"B{index:03d}USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"), max_qty=Decimal("10000"), market_max_qty=Decimal("100"),
            min_notional=Decimal("5"), mark_price=Decimal(100 + index), min_price=Decimal("0.01"),
        )
        for index in range(count)
    ]


def seed_account(book: SimBook, specs: Sequence[SymbolSpec]) -> int:
    """A position and two open orders per symbol; every fourth position is 1.5x MARKET maxQty.
    Returns how many orders were placed."""
    for index, spec in enumerate(specs):
        size = spec.market_max_qty * Decimal("1.5") if index % 4 == 0 else Decimal(index % 7 + 1) / 2
        long = index % 2 == 0
        book.set_position(spec.symbol, size if long else -size)
        mark = spec.mark_price
        book.place_order(spec.symbol, "BUY" if long else "SELL", "LIMIT", "1",
                         (mark * Decimal("0.8") if long else mark * Decimal("1.2")).quantize(spec.tick_size),
                         time_in_force="GTC")
        trigger = (mark * Decimal("0.7") if long else mark * Decimal("1.3")).quantize(spec.tick_size)
        book.place_algo_order(spec.symbol, "SELL" if long else "BUY", "STOP_MARKET", trigger_price=trigger,
                              close_position=True)
    return 2 * len(specs)


# -- the exchange, in this process or a child -----------------------------------------------------
class _Exchange:
    """One benchmark exchange at a time: open (fresh simulator and account), mark, measure, close."""

    def __init__(self) -> None:
        self.sim: BinanceSimulator | None = None
        self.specs: list[SymbolSpec] = []
        self._mark: tuple[int, float, int, int] = (0, 0.0, 0, 0)

    def open(self, symbols: int, rtt: float, rate_limits: dict[str, int] | None = None) -> dict[str, Any]:
        self.close()
        self.specs = synthetic_specs(symbols)
        faults = FaultPlan()
        if rtt > 0:
            faults.latency(rtt)  # every endpoint, every symbol
        self.sim = BinanceSimulator(SimBook(self.specs), faults, rate_limits=rate_limits).start()
        self.seed()
        return {"base_url": self.sim.base_url, "api_key": self.sim.api_key, "api_secret": self.sim.api_secret,
                "symbols": [s.symbol for s in self.specs]}

    def seed(self) -> int:
        assert self.sim is not None
        return seed_account(self.sim.book, self.specs)

    def mark(self) -> None:
        """Start counting; CPU is this process's (in-process mode: the bot's and the exchange's together)."""
        assert self.sim is not None
        sim = self.sim
        self._mark = (len(sim.request_log), time.process_time(), sim.rate_limited_count, sim.banned_count)

    def measure(self) -> dict[str, Any]:
        """Requests, 429/418 and exchange CPU since ``mark()``; whether the account is flat."""
        assert self.sim is not None
        sim, (requests, cpu, limited, banned) = self.sim, self._mark
        book = sim.book
        return {
            "requests": len(sim.request_log) - requests,
            "http_429": sim.rate_limited_count - limited,
            "http_418": sim.banned_count - banned,
            "exchange_cpu_seconds": time.process_time() - cpu,
            "flat": not book.positions() and not book.open_orders() and not book.open_algo_orders(),
        }

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


def _serve_exchange(connection: Any) -> None:
    """The child process: run ``_Exchange`` commands received over ``connection`` until "quit"."""
    logging.disable(logging.WARNING)
    exchange = _Exchange()
    try:
        while True:
            name, kwargs = connection.recv()
            if name == "quit":
                return
            try:
                connection.send(("ok", getattr(exchange, name)(**kwargs)))
            except Exception as exc:  # reported to the parent, which raises it
                connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        exchange.close()


class ExchangeHost:
    """``_Exchange`` commands, served in a child process (``subprocess``) or here (``in-process``)."""

    def __init__(self, mode: str = "subprocess") -> None:
        if mode not in ("subprocess", "in-process"):
            raise ValueError(f"mode={mode!r}: expected 'subprocess' or 'in-process'")
        self.mode = mode
        self._local: _Exchange | None = None
        self._process: Any = None
        self._connection: Any = None

    def __enter__(self) -> ExchangeHost:
        if self.mode == "in-process":
            self._local = _Exchange()
            return self
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and loops
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve_exchange, args=(child,), name="bench-exchange", daemon=True)
        self._process.start()
        child.close()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._local is not None:
            self._local.close()
        if self._process is not None:
            try:
                self._connection.send(("quit", {}))
            except OSError:
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)

    def call(self, name: str, **kwargs: Any) -> Any:
        if self._local is not None:
            return getattr(self._local, name)(**kwargs)
        self._connection.send((name, kwargs))
        if not self._connection.poll(EXCHANGE_START_TIMEOUT_SECONDS):
            raise RuntimeError(f"benchmark exchange: no answer to {name!r} within {EXCHANGE_START_TIMEOUT_SECONDS} s")
        status, value = self._connection.recv()
        if status != "ok":
            raise RuntimeError(f"benchmark exchange: {name} failed: {value}")
        return value


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
                      profiler: cProfile.Profile | None = None, collector: _GcTimer | None = None) -> Sample:
    """Open a fresh account, warm the bot up, time one liquidation by the engine."""
    endpoint = host.call("open", symbols=symbols, rtt=rtt)
    try:
        async with _adapter(endpoint) as adapter:
            await adapter.warm_up(connections=warm_connections(symbols))
            audit = AuditLogger(workdir / "audit.jsonl")
            manager = LiquidationManager(LiquidationConfig(), adapter, audit, endpoint["symbols"])
            host.call("mark")
            with collector if collector is not None else nullcontext():
                if profiler is not None:
                    profiler.enable()
                cpu, started = time.process_time(), time.perf_counter()
                result = await manager.execute_emergency_liquidation("benchmark")
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                if profiler is not None:
                    profiler.disable()
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


# -- the whole benchmark -----------------------------------------------------------------------------
@dataclass
class Settings:
    sizes: tuple[int, ...] = DEFAULT_SIZES
    rtts_ms: tuple[int, ...] = DEFAULT_RTTS_MS
    runs: int = DEFAULT_RUNS
    baseline_runs: int = DEFAULT_BASELINE_RUNS
    memory_liquidations: int = DEFAULT_MEMORY_LIQUIDATIONS
    exchange: str = "subprocess"
    profile: bool = True
    quick: bool = False
    batch_orders: bool = False


@contextmanager
def _quiet() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the bot logs every cancel and close at INFO; keep it out of the timing
    try:
        yield
    finally:
        logging.disable(previous)


def run_benchmark(settings: Settings, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every (N, RTT) for the engine and the baseline, the profile and memory; the report dict."""
    results: list[dict[str, Any]] = []
    ADAPTER_OPTIONS["batch_orders"] = settings.batch_orders
    report: dict[str, Any] = {"settings": {**settings.__dict__, "floor_rtts": FLOOR_RTTS}, "results": results,
                              "python": sys.version.split()[0], "cpus": os.cpu_count(),
                              "load_average_at_start": _load_average()}
    with _quiet(), ExchangeHost(settings.exchange) as host, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        for rtt_ms in settings.rtts_ms:
            rtt = rtt_ms / 1000
            for n in settings.sizes:
                engine = asyncio.run(_engine_runs(host, n, rtt, settings.runs, workdir))
                runs = settings.baseline_runs if n < LARGE_BASELINE_SIZE else min(1, settings.baseline_runs)
                base = [baseline_once(host, n, rtt) for _ in range(runs)]
                row: dict[str, Any] = {"n": n, "rtt_ms": rtt_ms, "engine": summarize(engine, rtt)}
                if base:
                    row["baseline"] = summarize(base, rtt)
                    row["speedup"] = round(row["baseline"]["median_ms"] / row["engine"]["median_ms"], 1)
                results.append(row)
                echo(_row_line(row))
        if settings.profile:
            n, rtt = max(settings.sizes), max(settings.rtts_ms) / 1000
            report["profile"] = asyncio.run(profile_once(host, n, rtt, workdir))
        if settings.memory_liquidations > 0:
            memory_host = host if settings.exchange == "subprocess" else None
            if memory_host is None:  # an in-process exchange's own growth would be counted as the bot's
                with ExchangeHost("subprocess") as child:
                    report["memory"] = asyncio.run(memory_growth(child, settings.memory_liquidations, workdir))
            else:
                report["memory"] = asyncio.run(memory_growth(memory_host, settings.memory_liquidations, workdir))
    report["load_average_at_end"] = _load_average()
    report["targets"] = evaluate_targets(report)
    return report


def _load_average() -> list[float] | None:
    """The machine's 1/5/15-minute load (other work on the machine skews every timing)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


async def _engine_runs(host: ExchangeHost, n: int, rtt: float, runs: int, workdir: Path) -> list[Sample]:
    return [await engine_once(host, n, rtt, workdir) for _ in range(runs)]


def _find(report: dict[str, Any], n: int, rtt_ms: int) -> dict[str, Any] | None:
    return next((r for r in report["results"] if (r["n"], r["rtt_ms"]) == (n, rtt_ms)), None)


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: pass, miss, or not measured (with the measured value)."""
    def target(name: str, measured: Any, ok: bool | None, goal: str) -> dict[str, Any]:
        verdict = "not measured" if ok is None else ("pass" if ok else "miss")
        return {"target": name, "goal": goal, "measured": measured, "verdict": verdict}

    n50, n200, memory = _find(report, 50, 50), _find(report, 200, 50), report.get("memory")
    checks = [
        target("N=50 RTT=50ms median", n50 and n50["engine"]["median_rtts"],
               None if n50 is None else n50["engine"]["median_rtts"] <= TARGETS["n50_rtt50_median_rtts"],
               f"<= {TARGETS['n50_rtt50_median_rtts']:g} RTT (300 ms)"),
        target("N=50 RTT=50ms speed-up over the sequential baseline", n50 and n50.get("speedup"),
               None if n50 is None or "speedup" not in n50 else n50["speedup"] >= TARGETS["n50_rtt50_speedup"],
               f">= {TARGETS['n50_rtt50_speedup']:g}x"),
        target("N=200 RTT=50ms 429/418 answers", n200 and n200["engine"]["http_429"] + n200["engine"]["http_418"],
               None if n200 is None else n200["engine"]["http_429"] + n200["engine"]["http_418"] == 0, "0"),
        target("N=200 RTT=50ms every symbol flat", n200 and n200["engine"]["all_flat"],
               None if n200 is None else n200["engine"]["all_flat"], "every run"),
        target("N=200 RTT=50ms median", n200 and n200["engine"]["median_rtts"],
               None if n200 is None else n200["engine"]["median_rtts"] <= TARGETS["n200_rtt50_median_rtts"],
               f"<= {TARGETS['n200_rtt50_median_rtts']:g} RTT (500 ms)"),
    ]
    if memory is None:
        checks.append(target("memory growth", None, None, f"< {TARGETS['memory_growth_mb']:g} MB"))
    else:
        growth = max(memory["rss_growth_mb"], memory["traced_growth_mb"])
        checks.append(target(f"memory growth over {memory['liquidations']} liquidations (RSS, traced)",
                             [memory["rss_growth_mb"], memory["traced_growth_mb"]],
                             growth < TARGETS["memory_growth_mb"] and memory["failures"] == 0,
                             f"< {TARGETS['memory_growth_mb']:g} MB"))
    return checks


# -- output ----------------------------------------------------------------------------------------
_HEADER = (f"{'N':>4} {'RTT':>5} {'median':>9} {'p95':>9} {'RTTs':>6} {'reqs':>5} {'peak':>5} {'ord/10s':>7} "
           f"{'weight':>6} {'429':>4} {'flat':>5} {'baseline':>10} {'ratio':>6}")


def _row_line(row: dict[str, Any]) -> str:
    engine, base = row["engine"], row.get("baseline")
    base_text = f"{base['median_ms']:>8.0f}ms" if base else f"{'-':>10}"
    ratio = f"{row['speedup']:>5.1f}x" if "speedup" in row else f"{'-':>6}"
    return (f"{row['n']:>4} {row['rtt_ms']:>3}ms {engine['median_ms']:>7.1f}ms {engine['p95_ms']:>7.1f}ms "
            f"{engine['median_rtts']:>6.2f} {engine['requests']:>5} {engine['peak_in_flight']:>5} "
            f"{engine['max_orders_10s']:>7} {engine['max_weight_1m']:>6} {engine['http_429'] + engine['http_418']:>4} "
            f"{str(engine['all_flat']):>5} {base_text} {ratio}")


def write_plot(report: dict[str, Any], path: Path) -> bool:
    """Duration vs N for both engines with the 3-RTT floor; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(figsize=(8, 5.5))
    for index, rtt_ms in enumerate(report["settings"]["rtts_ms"]):
        rows = sorted((r for r in report["results"] if r["rtt_ms"] == rtt_ms), key=lambda r: r["n"])
        sizes = [r["n"] for r in rows]
        color = f"C{index}"
        axes.plot(sizes, [r["engine"]["median_ms"] for r in rows], "o-", color=color,
                  label=f"engine, RTT {rtt_ms} ms (median)")
        axes.fill_between(sizes, [r["engine"]["median_ms"] for r in rows], [r["engine"]["p95_ms"] for r in rows],
                          color=color, alpha=0.15)
        with_base = [r for r in rows if "baseline" in r]
        axes.plot([r["n"] for r in with_base], [r["baseline"]["median_ms"] for r in with_base], "s--", color=color,
                  alpha=0.7, label=f"sequential baseline, RTT {rtt_ms} ms")
        axes.axhline(FLOOR_RTTS * rtt_ms, color=color, linestyle=":", linewidth=1,
                     label=f"floor {FLOOR_RTTS} RTT = {FLOOR_RTTS * rtt_ms} ms")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("symbols with a position and two open orders (N)")
    axes.set_ylabel("liquidation time (ms)")
    axes.set_title("Emergency liquidation: engine vs sequential baseline\n(shaded: engine median to p95)", fontsize=11)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def _echo_summary(report: dict[str, Any], echo: Callable[[str], None]) -> None:
    profile = report.get("profile")
    if profile:
        echo(f"\nwhere the time goes (N={profile['n']}, RTT {profile['rtt_ms']} ms): the median of "
             f"{profile['median_of_runs']} runs took {profile['wall_ms']} ms: "
             f"bot CPU {profile['bot_cpu_ms']} ms (garbage collection {profile['of_which_garbage_collection_ms']} ms), "
             f"bot waiting {profile['bot_idle_ms']} ms "
             f"(injected latency floor {profile['injected_latency_floor_ms']:g} ms), "
             f"exchange CPU {profile['exchange_cpu_ms']} ms (its own process)")
        echo(f"  the same under cProfile ({profile['profiled_wall_ms']} ms), by kind:")
        for kind, value in profile["by_kind"].items():
            echo(f"  {kind:<36} {value['ms']:>9.1f} ms {value['percent_of_wall']:>6.1f} %")
    memory = report.get("memory")
    if memory:
        echo(f"\nmemory over {memory['liquidations']} liquidations of {memory['symbols_each']} symbols: "
             f"RSS {memory['rss_before_mb']} -> {memory['rss_after_mb']} MB (growth {memory['rss_growth_mb']} MB "
             f"net of tracemalloc's own {memory['tracemalloc_self_mb']} MB), traced growth "
             f"{memory['traced_growth_mb']} MB, failures {memory['failures']}")
    echo("\ntargets:")
    for check in report["targets"]:
        echo(f"  [{check['verdict'].upper():^12}] {check['target']}: {check['measured']} (goal {check['goal']})")


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated integers", param_hint=name) from None
    if not values or any(v < 1 for v in values):
        raise click.BadParameter(f"{text!r}: expected integers >= 1", param_hint=name)
    return values


@click.command("bench")
@click.option("--quick", is_flag=True,
              help="Sanity run (< 30 s): N=1,10,50 at RTT 50 ms, 3 runs, 100 liquidations for memory.")
@click.option("--sizes", default=None, help="Account sizes N, comma-separated (default 1,10,50,200).")
@click.option("--rtt-ms", "rtts", default=None, help="Injected round-trip times in ms, comma-separated (default 20,50).")
@click.option("--runs", type=click.IntRange(1, 1000), default=None, help="Engine runs per (N, RTT) (default 15).")
@click.option("--baseline-runs", type=click.IntRange(0, 100), default=None,
              help=f"Sequential-baseline runs per (N, RTT), 0 = none (default 3; 1 for N >= {LARGE_BASELINE_SIZE}).")
@click.option("--memory-liquidations", type=click.IntRange(0, 100_000), default=None,
              help="Consecutive liquidations for the memory measurement, 0 = skip (default 1000).")
@click.option("--exchange", type=click.Choice(["subprocess", "in-process"]), default="subprocess", show_default=True,
              help="Where the embedded exchange runs.")
@click.option("--profile/--no-profile", default=True, show_default=True,
              help="Where the time goes, at the largest N and RTT.")
@click.option("--batch-orders", is_flag=True, help="Build the bot with batch_orders=True (closes sent as batchOrders).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
def bench_command(quick: bool, sizes: str | None, rtts: str | None, runs: int | None, baseline_runs: int | None,
                  memory_liquidations: int | None, exchange: str, profile: bool, batch_orders: bool,
                  out_dir: Path) -> None:
    """Liquidation latency at scale against a sequential baseline, where the time goes, and memory growth."""
    defaults: dict[str, Any] = dict(QUICK) if quick else {}
    settings = Settings(
        sizes=_ints(sizes, "--sizes") if sizes else defaults.get("sizes", DEFAULT_SIZES),
        rtts_ms=_ints(rtts, "--rtt-ms") if rtts else defaults.get("rtts_ms", DEFAULT_RTTS_MS),
        runs=runs if runs is not None else defaults.get("runs", DEFAULT_RUNS),
        baseline_runs=baseline_runs if baseline_runs is not None else defaults.get("baseline_runs", DEFAULT_BASELINE_RUNS),
        memory_liquidations=memory_liquidations if memory_liquidations is not None
        else defaults.get("memory_liquidations", DEFAULT_MEMORY_LIQUIDATIONS),
        exchange=exchange, profile=profile, quick=quick, batch_orders=batch_orders,
    )
    click.echo(f"liquidation latency: exchange {settings.exchange}, runs {settings.runs} "
               f"(baseline {settings.baseline_runs}), sizes {settings.sizes}, RTT {settings.rtts_ms} ms"
               f"{', batch_orders' if settings.batch_orders else ''}")
    click.echo(_HEADER)
    report = run_benchmark(settings, click.echo)
    _echo_summary(report, click.echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "liquidation_latency.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    click.echo(f"\nwrote {json_path}")
    png_path = out_dir / "liquidation_latency.png"
    if write_plot(report, png_path):
        click.echo(f"wrote {png_path}")
    else:
        click.echo("PNG skipped: matplotlib is not installed (pip install 'liquidation-harness[bench]')")
