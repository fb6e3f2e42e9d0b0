"""The ``bench`` command: its options, then the run, the summary and the files it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from harness.bench._exchange import event_loop_kind
from harness.bench._run import (
    _HEADER,
    DEFAULT_BASELINE_RUNS,
    DEFAULT_MEMORY_LIQUIDATIONS,
    DEFAULT_RTTS_MS,
    DEFAULT_RUNS,
    DEFAULT_SIZES,
    LARGE_BASELINE_SIZE,
    Settings,
    _echo_summary,
    run_benchmark,
    write_plot,
)

QUICK = {"sizes": (1, 10, 50), "rtts_ms": (50,), "runs": 3, "baseline_runs": 1, "memory_liquidations": 100}
DEFAULT_OUT = Path("reports/out/bench")


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
@click.option("--peer/--no-peer", default=True, show_default=True,
              help="Also liquidate each account with the ccxt peer (ccxt async binanceusdm + asyncio.gather).")
@click.option("--loop", "loop", type=click.Choice(["asyncio", "uvloop", "auto"]), default="asyncio", show_default=True,
              help="The bot's event loop (auto: uvloop when installed, the 'speed' extra). The exchange's child "
                   "process uses uvloop whenever it is installed.")
@click.option("--batch-orders/--single-orders", default=False, show_default=True,
              help="Build the bot with batch_orders=True (closes sent as batchOrders) or the adapter's default, False.")
@click.option("--transport", type=click.Choice(["wire", "python-binance"]), default="wire", show_default=True,
              help="The adapter's async transport: its own lean HTTP client (the default) or python-binance's "
                   "AsyncClient over aiohttp.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_OUT, show_default=True)
def bench_command(quick: bool, sizes: str | None, rtts: str | None, runs: int | None, baseline_runs: int | None,
                  memory_liquidations: int | None, exchange: str, profile: bool, peer: bool, loop: str,
                  batch_orders: bool, transport: str, out_dir: Path) -> None:
    """Liquidation latency at scale against the ccxt peer and a sequential baseline, where the time goes,
    and memory growth."""
    defaults: dict[str, Any] = dict(QUICK) if quick else {}
    settings = Settings(
        sizes=_ints(sizes, "--sizes") if sizes else defaults.get("sizes", DEFAULT_SIZES),
        rtts_ms=_ints(rtts, "--rtt-ms") if rtts else defaults.get("rtts_ms", DEFAULT_RTTS_MS),
        runs=runs if runs is not None else defaults.get("runs", DEFAULT_RUNS),
        baseline_runs=baseline_runs if baseline_runs is not None else defaults.get("baseline_runs", DEFAULT_BASELINE_RUNS),
        memory_liquidations=memory_liquidations if memory_liquidations is not None
        else defaults.get("memory_liquidations", DEFAULT_MEMORY_LIQUIDATIONS),
        exchange=exchange, profile=profile, quick=quick, batch_orders=batch_orders, peer=peer, loop=loop,
        transport=transport,
    )
    click.echo(f"liquidation latency: exchange {settings.exchange}, runs {settings.runs} "
               f"(baseline {settings.baseline_runs}), sizes {settings.sizes}, RTT {settings.rtts_ms} ms"
               f"{', batch_orders' if settings.batch_orders else ', single orders'}, transport {settings.transport}")
    try:
        event_loop_kind(loop)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--loop") from None
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
