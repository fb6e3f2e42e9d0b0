"""``liquidation-harness simulate``: serve the embedded exchange until SIGINT/SIGTERM.

Prints the base URL and the simulator's test credentials (public test values, valid only for this
process), either as shell ``export`` lines or, with ``--json``, as one JSON line for scripts.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from harness.core.errors import ConfigError

from .faults import FaultPlan
from .server import BinanceSimulator


def _load_faults(path: Path | None, seed: int | None) -> FaultPlan:
    plan = FaultPlan.from_file(path) if path is not None else FaultPlan(seed=seed or 0)
    if seed is not None and path is not None:
        plan = FaultPlan(seed=seed, rules=plan.rules)
    return plan


@click.command("simulate")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0 = any free port.")
@click.option("--faults", "faults_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Fault plan file (.json or .toml).")
@click.option("--seed", type=int, default=None, help="Seed for random faults (overrides the file's seed).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON line {base_url, futures_url, api_key, api_secret}.")
def simulate_command(host: str, port: int, faults_path: Path | None, seed: int | None, as_json: bool) -> None:
    """Serve a Binance USD-M compatible exchange on 127.0.0.1 until SIGINT/SIGTERM."""
    try:
        sim = BinanceSimulator(faults=_load_faults(faults_path, seed), host=host, port=port)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.field}" if exc.field in ("host", "port") else None)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    try:
        sim.start()
    except RuntimeError as exc:  # the port is taken (or the address cannot be bound): one line, exit 2
        cause = exc.__cause__
        why = (cause.strerror or str(cause)) if isinstance(cause, OSError) else str(exc)
        click.echo(f"error: --port {port}: cannot listen on {host}:{port}: {why} "
                   "(choose a free port, or --port 0 for any free one)", err=True)
        sys.exit(2)
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        info = {"base_url": sim.base_url, "futures_url": sim.base_url + "/fapi",
                "api_key": sim.api_key, "api_secret": sim.api_secret}
        if as_json:
            click.echo(json.dumps(info))
        else:
            click.echo(f"Binance simulator serving on {info['base_url']} (FUTURES_URL {info['futures_url']})")
            click.echo(f"export BINANCE_SIM_URL={info['base_url']}")
            click.echo(f"export BINANCE_TESTNET_API_KEY={info['api_key']}")
            click.echo(f"export BINANCE_TESTNET_API_SECRET={info['api_secret']}")
            click.echo("Press Ctrl+C to stop.")
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Binance simulator stopped.", err=True)
