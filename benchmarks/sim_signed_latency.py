"""Median latency of signed requests to the embedded Binance simulator on loopback.

    .venv/bin/python benchmarks/sim_signed_latency.py [--requests 1000]

Uses the real python-binance sync client (one keep-alive session) against ``BinanceSimulator`` and
times ``GET /fapi/v3/positionRisk`` (signed: key check, timestamp window, HMAC-SHA256) end to end.
Not a test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from binance import Client

from harness.exchanges.sim import BinanceSimulator


def measure(requests: int) -> list[float]:
    """Seconds per signed request, ``requests`` of them after a short warm-up."""
    with BinanceSimulator(rate_limits={"weight_per_minute": 10_000_000}) as sim:
        sim.set_position("BTCUSDT", "0.010")
        client = Client(sim.api_key, sim.api_secret, ping=False, requests_params={"timeout": 5})
        client.FUTURES_URL = sim.base_url + "/fapi"
        for _ in range(20):
            client.futures_position_information()
        samples = []
        for _ in range(requests):
            start = time.perf_counter()
            client.futures_position_information()
            samples.append(time.perf_counter() - start)
        client.close_connection()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    samples = sorted(measure(args.requests))
    ms = [s * 1000 for s in samples]
    print(f"signed requests: {len(ms)}")
    print(f"median: {statistics.median(ms):.3f} ms")
    print(f"p95:    {ms[int(len(ms) * 0.95) - 1]:.3f} ms")
    print(f"p99:    {ms[int(len(ms) * 0.99) - 1]:.3f} ms")
    print(f"max:    {ms[-1]:.3f} ms")


if __name__ == "__main__":
    main()
