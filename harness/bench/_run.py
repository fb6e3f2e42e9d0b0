"""The whole benchmark: every (N, RTT) for the engine, the ccxt peer and the sequential baseline, the
profile and memory; the targets' verdicts; the table rows, the plot and the summary."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.bench._exchange import ExchangeHost, event_loop_kind, use_event_loop
from harness.bench._measure import ADAPTER_OPTIONS, FLOOR_RTTS, Sample, baseline_once, engine_once, summarize
from harness.bench._peer import PEER_NAME, ccxt_available, ccxt_once
from harness.bench._profile import memory_growth, profile_once

DEFAULT_SIZES = (1, 10, 50, 200)
DEFAULT_RTTS_MS = (20, 50)
DEFAULT_RUNS = 15
#: the sequential baseline is slow (1 + 3N + splits round trips): fewer runs, one at the largest N
DEFAULT_BASELINE_RUNS = 3
LARGE_BASELINE_SIZE = 100
DEFAULT_MEMORY_LIQUIDATIONS = 1000
TARGETS = {
    "n50_rtt50_median_rtts": 4.0,
    "n50_rtt50_speedup": 20.0,
    "n50_rtt50_vs_ccxt": 1.5,
    "n200_rtt50_median_rtts": 6.0,
    "n200_rtt50_vs_ccxt": 1.5,
    "n200_rtt20_median_rtts": 10.0,
    "memory_growth_mb": 5.0,
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
    batch_orders: bool = False  # the adapter's default
    #: the adapter's async transport ("wire", the default, or "python-binance")
    transport: str = "wire"
    #: the ccxt peer in the same run (skipped when ccxt is not installed)
    peer: bool = True
    #: the bot's event loop: asyncio (measured the cheaper for this bot, issue 13), uvloop, or auto (uvloop
    #: when installed)
    loop: str = "asyncio"


@contextmanager
def _quiet() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the bot logs every cancel and close at INFO; keep it out of the timing
    try:
        yield
    finally:
        logging.disable(previous)


def run_benchmark(settings: Settings, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every (N, RTT) for the engine, the peer and the baseline, the profile and memory; the report dict."""
    results: list[dict[str, Any]] = []
    ADAPTER_OPTIONS["batch_orders"] = settings.batch_orders
    ADAPTER_OPTIONS["transport"] = settings.transport
    bot_loop = event_loop_kind(settings.loop)
    peer = settings.peer and ccxt_available()
    report: dict[str, Any] = {"settings": {**settings.__dict__, "floor_rtts": FLOOR_RTTS}, "results": results,
                              "python": sys.version.split()[0], "cpus": os.cpu_count(),
                              "bot_event_loop": bot_loop,
                              "peer": PEER_NAME if peer else ("not installed (pip install 'liquidation-harness[ccxt]')"
                                                              if settings.peer else "off"),
                              "load_average_at_start": _load_average()}
    use_event_loop(bot_loop)
    try:
        with _quiet(), ExchangeHost(settings.exchange) as host, tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            report["exchange_event_loop"] = host.loop
            _measure_all(settings, host, Path(tmp), peer, report, echo)
    finally:
        use_event_loop("asyncio")
    report["load_average_at_end"] = _load_average()
    report["targets"] = evaluate_targets(report)
    return report


def _measure_all(settings: Settings, host: ExchangeHost, workdir: Path, peer: bool, report: dict[str, Any],
                 echo: Callable[[str], None]) -> None:
    results = report["results"]
    for rtt_ms in settings.rtts_ms:
        rtt = rtt_ms / 1000
        for n in settings.sizes:
            engine, ccxt = asyncio.run(_engine_runs(host, n, rtt, settings.runs, workdir, peer))
            runs = settings.baseline_runs if n < LARGE_BASELINE_SIZE else min(1, settings.baseline_runs)
            base = [baseline_once(host, n, rtt) for _ in range(runs)]
            row: dict[str, Any] = {"n": n, "rtt_ms": rtt_ms, "engine": summarize(engine, rtt)}
            ratios: dict[str, float | None] = {"vs_sequential_baseline": None, "vs_ccxt": None}
            if base:
                row["baseline"] = summarize(base, rtt)
                row["speedup"] = ratios["vs_sequential_baseline"] = _ratio(row["baseline"], row["engine"])
            if ccxt:
                row["ccxt"] = summarize(ccxt, rtt)
                ratios["vs_ccxt"] = _ratio(row["ccxt"], row["engine"])
            row["ratios"] = ratios
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


def _ratio(peer: dict[str, Any], engine: dict[str, Any]) -> float:
    """How many times faster the engine's median is than the peer's."""
    return round(peer["median_ms"] / engine["median_ms"], 2)


def _load_average() -> list[float] | None:
    """The machine's 1/5/15-minute load (other work on the machine skews every timing)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


async def _engine_runs(host: ExchangeHost, n: int, rtt: float, runs: int, workdir: Path,
                       peer: bool = False) -> tuple[list[Sample], list[Sample]]:
    """``runs`` engine runs and as many ccxt peer runs, alternating (machine load hits both alike)."""
    engine: list[Sample] = []
    ccxt: list[Sample] = []
    for _ in range(runs):
        engine.append(await engine_once(host, n, rtt, workdir))
        if peer:
            ccxt.append(await ccxt_once(host, n, rtt))
    return engine, ccxt


def _find(report: dict[str, Any], n: int, rtt_ms: int) -> dict[str, Any] | None:
    return next((r for r in report["results"] if (r["n"], r["rtt_ms"]) == (n, rtt_ms)), None)


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets: pass, miss, or not measured (with the measured value)."""
    def target(name: str, measured: Any, ok: bool | None, goal: str) -> dict[str, Any]:
        verdict = "not measured" if ok is None else ("pass" if ok else "miss")
        return {"target": name, "goal": goal, "measured": measured, "verdict": verdict}

    def at_most(name: str, row: dict[str, Any] | None, goal: float, rtt_ms: int) -> dict[str, Any]:
        measured = None if row is None else row["engine"]["median_rtts"]
        return target(name, measured, None if measured is None else measured <= goal,
                      f"<= {goal:g} RTT ({goal * rtt_ms:g} ms)")

    def ratio(name: str, row: dict[str, Any] | None, key: str, goal: float) -> dict[str, Any]:
        measured = None if row is None else row.get("ratios", {}).get(key)
        return target(name, measured, None if measured is None else measured >= goal, f">= {goal:g}x")

    n50, n200, n200_20 = _find(report, 50, 50), _find(report, 200, 50), _find(report, 200, 20)
    memory = report.get("memory")
    limited = None if n200 is None else n200["engine"]["http_429"] + n200["engine"]["http_418"]
    checks = [
        at_most("N=50 RTT=50ms median", n50, TARGETS["n50_rtt50_median_rtts"], 50),
        ratio("N=50 RTT=50ms speed-up over the sequential baseline", n50, "vs_sequential_baseline",
              TARGETS["n50_rtt50_speedup"]),
        ratio("N=50 RTT=50ms speed-up over the ccxt peer", n50, "vs_ccxt", TARGETS["n50_rtt50_vs_ccxt"]),
        at_most("N=200 RTT=50ms median", n200, TARGETS["n200_rtt50_median_rtts"], 50),
        ratio("N=200 RTT=50ms speed-up over the ccxt peer", n200, "vs_ccxt", TARGETS["n200_rtt50_vs_ccxt"]),
        target("N=200 RTT=50ms 429/418 answers", limited, None if limited is None else limited == 0, "0"),
        target("N=200 RTT=50ms every symbol flat", n200 and n200["engine"]["all_flat"],
               None if n200 is None else n200["engine"]["all_flat"], "every run"),
        at_most("N=200 RTT=20ms median", n200_20, TARGETS["n200_rtt20_median_rtts"], 20),
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
           f"{'weight':>6} {'429':>4} {'flat':>5} {'bot CPU':>8} {'exch CPU':>8} {'baseline':>10} {'ratio':>6} "
           f"{'ccxt':>9} {'ratio':>6}")


def _row_line(row: dict[str, Any]) -> str:
    engine, base, ccxt, ratios = row["engine"], row.get("baseline"), row.get("ccxt"), row.get("ratios", {})

    def ratio(key: str) -> str:
        return f"{ratios[key]:>5.1f}x" if ratios.get(key) is not None else f"{'-':>6}"

    base_text = f"{base['median_ms']:>8.0f}ms" if base else f"{'-':>10}"
    ccxt_text = f"{ccxt['median_ms']:>7.0f}ms" if ccxt else f"{'-':>9}"
    return (f"{row['n']:>4} {row['rtt_ms']:>3}ms {engine['median_ms']:>7.1f}ms {engine['p95_ms']:>7.1f}ms "
            f"{engine['median_rtts']:>6.2f} {engine['requests']:>5} {engine['peak_in_flight']:>5} "
            f"{engine['max_orders_10s']:>7} {engine['max_weight_1m']:>6} {engine['http_429'] + engine['http_418']:>4} "
            f"{str(engine['all_flat']):>5} {engine['bot_cpu_ms_median']:>6.0f}ms {engine['exchange_cpu_ms_median']:>6.0f}ms "
            f"{base_text} {ratio('vs_sequential_baseline')} {ccxt_text} {ratio('vs_ccxt')}")


def write_plot(report: dict[str, Any], path: Path) -> bool:
    """Duration vs N: the engine, the ccxt peer, the sequential baseline and the 3-RTT floor; False when
    matplotlib is not installed."""
    plotted = _plot(report)
    if plotted is None:
        return False
    plt, figure, _labels = plotted
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True


def plot_labels(report: dict[str, Any]) -> list[str]:
    """The legend of ``write_plot``'s figure (what it plots); empty when matplotlib is not installed."""
    plotted = _plot(report)
    if plotted is None:
        return []
    plt, figure, labels = plotted
    plt.close(figure)
    return labels


def _plot(report: dict[str, Any]) -> tuple[Any, Any, list[str]] | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
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
        with_ccxt = [r for r in rows if "ccxt" in r]
        if with_ccxt:
            axes.plot([r["n"] for r in with_ccxt], [r["ccxt"]["median_ms"] for r in with_ccxt], "^-.", color=color,
                      alpha=0.8, label=f"ccxt async + gather, RTT {rtt_ms} ms")
            for r in with_ccxt:
                if r["ratios"].get("vs_ccxt") is not None:
                    axes.annotate(f"{r['ratios']['vs_ccxt']:.1f}x", (r["n"], r["engine"]["median_ms"]),
                                  textcoords="offset points", xytext=(4, -11), fontsize=7, color=color)
        axes.axhline(FLOOR_RTTS * rtt_ms, color=color, linestyle=":", linewidth=1,
                     label=f"floor {FLOOR_RTTS} RTT = {FLOOR_RTTS * rtt_ms} ms")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("symbols with a position and two open orders (N)")
    axes.set_ylabel("liquidation time (ms)")
    axes.set_title("Emergency liquidation: engine vs ccxt peer vs sequential baseline\n"
                   "(shaded: engine median to p95; labels: engine's speed-up over ccxt)", fontsize=11)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    if report.get("load_average_at_start") is not None:
        figure.text(0.99, 0.005, f"load average {report['load_average_at_start']} at start, "
                    f"{report.get('load_average_at_end')} at end, {report.get('cpus')} CPUs",
                    ha="right", va="bottom", fontsize=7, alpha=0.7)
    figure.tight_layout()
    return plt, figure, [text.get_text() for text in axes.get_legend().get_texts()]


def _echo_summary(report: dict[str, Any], echo: Callable[[str], None]) -> None:
    echo(f"\nbot event loop {report['bot_event_loop']}, exchange event loop {report.get('exchange_event_loop')}, "
         f"peer: {report['peer']}; bot CPU and exchange CPU are medians per liquidation, each process its own "
         f"(in-process exchange: the two together); load average {report['load_average_at_start']} at start, "
         f"{report['load_average_at_end']} at end on {report['cpus']} CPUs")
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
        exchange = profile.get("exchange_profiled")
        if exchange:
            echo(f"  the exchange's serving thread under cProfile ({exchange['requests']} requests, "
                 f"{exchange['profiled_cpu_ms']} ms profiled), by own time:")
            for row in exchange["top_by_own_time"]:
                echo(f"    {row['function']:<60} {row['own_ms']:>8.1f} ms {row['calls']:>7} calls")
    memory = report.get("memory")
    if memory:
        echo(f"\nmemory over {memory['liquidations']} liquidations of {memory['symbols_each']} symbols: "
             f"RSS {memory['rss_before_mb']} -> {memory['rss_after_mb']} MB (growth {memory['rss_growth_mb']} MB "
             f"net of tracemalloc's own {memory['tracemalloc_self_mb']} MB), traced growth "
             f"{memory['traced_growth_mb']} MB, failures {memory['failures']}")
    echo("\ntargets:")
    for check in report["targets"]:
        echo(f"  [{check['verdict'].upper():^12}] {check['target']}: {check['measured']} (goal {check['goal']})")
