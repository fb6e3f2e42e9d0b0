"""``liquidation-harness bench``: liquidation latency at scale, against the ccxt peer and a sequential baseline.

For each account size N and round-trip time (RTT), a fresh embedded exchange serves N synthetic
USD-M symbols, each with a position (every fourth above its MARKET_LOT_SIZE maxQty, so it needs two
orders) and two open orders (a resting LIMIT and a conditional STOP_MARKET in the algo book). Every
request the exchange receives is delayed by the RTT (a latency fault on every endpoint). The bot
(``LiquidationManager`` + ``BinanceFuturesOrderManager`` over python-binance + ``AuditLogger``) warms
up as it would at start-up (clock offset, exchangeInfo, position mode), then liquidates; only the
liquidation is timed. The same accounts are then liquidated by a sequential baseline: python-binance's
sync ``Client``, one symbol at a time, cancel (regular, then algo) then close, as common bots do; and,
in alternation with the engine's runs, by the peer a competent user would write instead: ccxt's async
``binanceusdm`` with ``asyncio.gather`` over symbols (``_peer.py``; the ``ccxt`` extra). Each row
reports the engine's speed-up over both (``ratios``).

The exchange runs in a child process by default (``--exchange subprocess``), like a real exchange on
another machine: its CPU then does not compete with the bot's for one interpreter lock, and it is
reported on its own (``exchange_cpu_ms_median``, the child's CPU time). It serves on uvloop when that
is installed (the ``speed`` extra); the bot uses asyncio's own loop unless ``--loop uvloop``. Measured
with the wire transport (7 runs each, RTT 50 ms, load 0.8): uvloop cost the bot about 4% less CPU but
its median was slower, 226 ms against 195 ms at N=50 and 369 ms against 343 ms at N=200.
``--exchange in-process`` serves it from a thread of this process (the simulator's usual mode).

Also measured: where the time goes at the largest N and RTT (wall vs bot CPU vs garbage collection vs
the exchange's CPU, then one run under cProfile for the bot's CPU by kind) and the bot's memory over
many consecutive liquidations in one process (RSS and tracemalloc growth).
Output: ``liquidation_latency.json`` and, when matplotlib is installed (``pip install
'liquidation-harness[bench]'``), ``liquidation_latency.png`` under ``--out``. Every connection goes
to 127.0.0.1. Not a test: it measures and prints pass/miss per target; it asserts nothing.
"""

from __future__ import annotations

import logging

from harness.bench._exchange import (
    EXCHANGE_START_TIMEOUT_SECONDS,
    ExchangeHost,
    event_loop_kind,
    seed_account,
    synthetic_specs,
    use_event_loop,
)
from harness.bench._measure import (
    ADAPTER_OPTIONS,
    FLOOR_RTTS,
    Sample,
    baseline_once,
    engine_once,
    percentile,
    summarize,
    warm_connections,
)
from harness.bench._peer import PEER_NAME, ccxt_available, ccxt_liquidate, ccxt_once
from harness.bench._profile import (
    MEMORY_SYMBOLS,
    MEMORY_WARMUP_LIQUIDATIONS,
    PROFILE_PLAIN_RUNS,
    RELAXED_LIMITS,
    memory_growth,
    profile_breakdown,
    profile_once,
    rss_bytes,
)
from harness.bench._run import (
    DEFAULT_BASELINE_RUNS,
    DEFAULT_MEMORY_LIQUIDATIONS,
    DEFAULT_RTTS_MS,
    DEFAULT_RUNS,
    DEFAULT_SIZES,
    LARGE_BASELINE_SIZE,
    TARGETS,
    Settings,
    evaluate_targets,
    plot_labels,
    run_benchmark,
    write_plot,
)
from harness.bench.cli import DEFAULT_OUT, QUICK, bench_command

__all__ = [
    "ADAPTER_OPTIONS",
    "DEFAULT_BASELINE_RUNS",
    "DEFAULT_MEMORY_LIQUIDATIONS",
    "DEFAULT_OUT",
    "DEFAULT_RTTS_MS",
    "DEFAULT_RUNS",
    "DEFAULT_SIZES",
    "EXCHANGE_START_TIMEOUT_SECONDS",
    "ExchangeHost",
    "FLOOR_RTTS",
    "LARGE_BASELINE_SIZE",
    "MEMORY_SYMBOLS",
    "MEMORY_WARMUP_LIQUIDATIONS",
    "PEER_NAME",
    "PROFILE_PLAIN_RUNS",
    "QUICK",
    "RELAXED_LIMITS",
    "Sample",
    "Settings",
    "TARGETS",
    "baseline_once",
    "bench_command",
    "ccxt_available",
    "ccxt_liquidate",
    "ccxt_once",
    "engine_once",
    "evaluate_targets",
    "event_loop_kind",
    "memory_growth",
    "percentile",
    "plot_labels",
    "profile_breakdown",
    "profile_once",
    "rss_bytes",
    "run_benchmark",
    "seed_account",
    "summarize",
    "synthetic_specs",
    "use_event_loop",
    "warm_connections",
    "write_plot",
]

log = logging.getLogger("harness.bench")
