"""The whole benchmark: every (N, RTT) for the engine and the baseline, the profile and memory; the
targets' verdicts; the table rows, the plot and the summary."""

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

from harness.bench._exchange import ExchangeHost
from harness.bench._measure import ADAPTER_OPTIONS, FLOOR_RTTS, Sample, baseline_once, engine_once, summarize
from harness.bench._profile import memory_growth, profile_once

DEFAULT_SIZES = (1, 10, 50, 200)
DEFAULT_RTTS_MS = (20, 50)
DEFAULT_RUNS = 15
#: the sequential baseline is slow (1 + 3N + splits round trips): fewer runs, one at the largest N
DEFAULT_BASELINE_RUNS = 3
LARGE_BASELINE_SIZE = 100
DEFAULT_MEMORY_LIQUIDATIONS = 1000
TARGETS = {
    "n50_rtt50_median_rtts": 6.0,
    "n50_rtt50_speedup": 15.0,
    "n200_rtt50_median_rtts": 10.0,
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
