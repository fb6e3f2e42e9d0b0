"""Median latency of signed order requests to the simulator, with and without a user-stream listener.

    .venv/bin/python benchmarks/sim_stream_latency.py [--requests 500]

Times ``POST /fapi/v1/order`` (MARKET, alternating BUY / SELL so the position stays small) with the
real python-binance sync client, first with no WebSocket client, then with one aiohttp client
reading the user data stream (each order then publishes NEW, TRADE and ACCOUNT_UPDATE). Not a
test: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

import aiohttp
from binance import Client

from harness.exchanges.sim import BinanceSimulator


def _orders(client: Client, requests: int) -> list[float]:
    samples = []
    for index in range(requests):
        start = time.perf_counter()
        client.futures_create_order(symbol="BTCUSDT", side="BUY" if index % 2 == 0 else "SELL", type="MARKET",
                                    quantity="0.010")
        samples.append(time.perf_counter() - start)
    return samples


def _listen(sim: BinanceSimulator, key: str, stop: threading.Event, received: list[int]) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(f"{sim.streams_url}/ws/{key}") as ws:
            while not stop.is_set():
                try:
                    await ws.receive(timeout=0.2)
                    received[0] += 1
                except asyncio.TimeoutError:
                    continue

    asyncio.run(run())


def measure(requests: int) -> tuple[list[float], list[float], int]:
    """(seconds per order without a listener, with one, stream messages the listener got)."""
    with BinanceSimulator(rate_limits={"weight_per_minute": 10_000_000, "orders_per_10s": 10_000_000,
                                       "orders_per_minute": 10_000_000}) as sim:
        client = Client(sim.api_key, sim.api_secret, ping=False, requests_params={"timeout": 5})
        client.FUTURES_URL = sim.base_url + "/fapi"
        _orders(client, 20)
        quiet = _orders(client, requests)
        key = client.futures_stream_get_listen_key()
        stop, received = threading.Event(), [0]
        listener = threading.Thread(target=_listen, args=(sim, key, stop, received), daemon=True)
        listener.start()
        if not sim.wait_for_user_stream(1, timeout=10):
            raise RuntimeError("the user-stream listener did not connect")
        _orders(client, 20)
        listened = _orders(client, requests)
        stop.set()
        listener.join(5)
        client.close_connection()
    return quiet, listened, received[0]


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.3f} ms (p95 {sorted(samples)[int(len(samples) * 0.95)] * 1000:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    quiet, listened, received = measure(args.requests)
    print(f"orders per run:            {args.requests}")
    print(f"median, no stream client:  {_ms(quiet)}")
    print(f"median, user stream open:  {_ms(listened)}")
    print(f"stream messages received:  {received}")


if __name__ == "__main__":
    main()
