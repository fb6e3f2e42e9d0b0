"""A fleet liquidation against one account: does flattening 20 accounts take about as long as one?

    .venv/bin/python benchmarks/fleet_liquidation.py [--accounts 20] [--rtt 0.05] [--symbols 10] [--runs 3]

Each account is its own embedded exchange (``BinanceSimulator``), all served from one child process
by default (so the exchanges' CPU is not the fleet's), seeded like the ``bench`` command's accounts
(``harness.bench._exchange.seed_account``: a position and a regular and an algo order per symbol),
every request delayed by ``--rtt`` seconds (a ``FaultPlan`` latency rule, as ``bench`` injects RTT). The accounts are flattened by
``harness.panic.run.Fleet``, the code behind ``liquidation-harness liquidate --accounts``: one event
loop, each account its own adapter and engine, accounts sharing nothing but the event loop.
Prints the median wall time of one account and of the fleet, and whether every account ended flat.
Not a test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from harness.bench._exchange import seed_account, synthetic_specs
from harness.core.config import LiquidationConfig
from harness.exchanges.sim import BinanceSimulator, FaultPlan, SimBook
from harness.exchanges.target import target_for_url
from harness.panic.accounts import Account
from harness.panic.run import Fleet


def _serve(connection: Any, count: int, symbols: int, rtt: float) -> None:
    """``count`` seeded exchanges, each with RTT ``rtt``; answers "measure" (flat per exchange), "quit"."""
    logging.disable(logging.WARNING)
    specs = synthetic_specs(symbols)
    with ExitStack() as stack:
        sims = []
        for _ in range(count):
            faults = FaultPlan()
            if rtt > 0:
                faults.latency(rtt)  # every endpoint, every symbol, as the bench command injects RTT
            sim = stack.enter_context(BinanceSimulator(SimBook(specs), faults))
            seed_account(sim.book, specs)
            sims.append(sim)
        connection.send([{"base_url": s.base_url, "api_key": s.api_key, "api_secret": s.api_secret} for s in sims])
        while (asked := connection.recv()) != "quit":
            if asked == "cpu":  # this process's CPU seconds so far (the exchanges' own, in subprocess mode)
                connection.send(time.process_time())
                continue
            connection.send([not s.book.positions() and not s.book.open_orders() and not s.book.open_algo_orders()
                             for s in sims])


@contextmanager
def exchanges(count: int, symbols: int, rtt: float, mode: str) -> Iterator[tuple[list[dict[str, str]], Any]]:
    """The exchanges (served from one child process, or threads here) and a function saying which are flat."""
    if mode == "in-process":
        here, there = multiprocessing.Pipe()
        thread = threading.Thread(target=_serve, args=(there, count, symbols, rtt), daemon=True)
    else:
        here, there = multiprocessing.get_context("spawn").Pipe()
        thread = multiprocessing.get_context("spawn").Process(target=_serve, args=(there, count, symbols, rtt), daemon=True)
    thread.start()
    try:
        opened = here.recv()

        def ask(what: str) -> Any:
            here.send(what)
            return here.recv()

        yield opened, ask
    finally:
        here.send("quit")
        thread.join(30)


def flatten(count: int, rtt: float, symbols: int, timeout: float, mode: str) -> tuple[float, int, float, float, float]:
    """(wall seconds, accounts flat, slowest account's seconds, the fleet's CPU seconds, the exchanges'
    CPU seconds; in-process mode: both in the first) for ``count`` accounts flattened together."""
    with exchanges(count, symbols, rtt, mode) as (opened, ask), tempfile.TemporaryDirectory() as logs:
        accounts = [Account(f"acct{i:02d}", target_for_url(o["base_url"]), "K", "S", o["api_key"], o["api_secret"])
                    for i, o in enumerate(opened)]
        fleet = Fleet(accounts, LiquidationConfig(timeout_seconds=timeout), Path(logs), "benchmark",
                      per_account_dirs=True)
        exchange_cpu = ask("cpu") if mode != "in-process" else 0.0
        cpu, started = time.process_time(), time.perf_counter()
        runs = asyncio.run(fleet.run())
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        exchange_cpu = ask("cpu") - exchange_cpu if mode != "in-process" else 0.0
        return wall, sum(ask("measure")), max(r.duration for r in runs), cpu, exchange_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--rtt", type=float, default=0.05, help="seconds added to every request")
    parser.add_argument("--symbols", type=int, default=10, help="symbols with a position and two orders, per account")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--exchanges", choices=("subprocess", "in-process"), default="subprocess",
                        help="serve the exchanges from one child process (default) or from threads of this one")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    for count in (1, args.accounts):
        results = [flatten(count, args.rtt, args.symbols, args.timeout, args.exchanges) for _ in range(args.runs)]
        walls = [r[0] for r in results]
        flat = min(r[1] for r in results)
        print(f"{count:>3} account(s), {args.symbols} symbols each, RTT {args.rtt * 1000:.0f} ms: "
              f"median {statistics.median(walls):.3f} s (min {min(walls):.3f}, max {max(walls):.3f}); "
              f"slowest account {max(r[2] for r in results):.3f} s; flat {flat}/{count} in every run; CPU median: "
              f"fleet {statistics.median(r[3] for r in results):.3f} s, exchanges "
              f"{statistics.median(r[4] for r in results):.3f} s ({args.exchanges})")


if __name__ == "__main__":
    main()
