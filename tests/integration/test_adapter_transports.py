"""The adapter's two async transports (its own lean client, the default, and python-binance's
AsyncClient) liquidate the same accounts on the embedded exchange with the same outcome: flat, the
same requests, ambiguous replies looked up before any resend, a connection reset on an order
never closing twice, hedge mode, and conditional orders in the algo book."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.errors import ConfigError
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationState
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.sim import BinanceSimulator, SimBook

# (transport, event loop): trading bots often run on uvloop, whose transports are not asyncio's classes
LOOPS = [pytest.param("wire", "asyncio", id="wire-asyncio"),
         pytest.param("python-binance", "asyncio", id="python-binance-asyncio"),
         pytest.param("wire", "uvloop", id="wire-uvloop")]


def run_on(loop: str, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on a new event loop of kind ``loop``."""
    if loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            coroutine.close()
            pytest.skip("uvloop not installed (the 'speed' extra)")
        return uvloop.run(coroutine)
    return asyncio.run(coroutine)
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
T = TypeVar("T")


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as simulator:
        yield simulator
        simulator.faults.release_hangs()


def seed(sim: BinanceSimulator) -> None:
    sim.book.set_position("BTCUSDT", "0.010")
    sim.book.set_position("ETHUSDT", "-0.500")
    sim.book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "30000", time_in_force="GTC")


async def liquidate(sim: BinanceSimulator, transport: str, tmp_path: Path, symbols: list[str] | None = SYMBOLS):
    async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url, transport=transport) as om:
        await om.warm_up()
        with AuditLogger(tmp_path / f"{transport}.jsonl") as audit:
            engine = LiquidationManager(LiquidationConfig(retry_delay_seconds=0.1), om, audit, symbols)
            return await engine.execute_emergency_liquidation("transport test"), om.request_stats()


def flat(sim: BinanceSimulator) -> bool:
    return not sim.book.positions() and not sim.book.open_orders() and not sim.book.open_algo_orders()


@pytest.mark.parametrize(("transport", "loop"), LOOPS)
def test_both_transports_flatten_the_account_with_the_same_requests(sim: BinanceSimulator, transport: str, loop: str,
                                                                    tmp_path: Path) -> None:
    seed(sim)
    result, stats = run_on(loop, liquidate(sim, transport, tmp_path))
    assert result.state is LiquidationState.COMPLETED, result.errors
    assert flat(sim), (sim.book.positions(), sim.book.open_orders())
    assert result.orders_cancelled == 1 and result.positions_closed == 2
    # warm-up (time, exchangeInfo, position mode), then positions, the two account-wide open-order
    # reads, one cancel (BTCUSDT's regular book) and two closes
    assert stats["requests"] == 9, stats


@pytest.mark.parametrize(("transport", "loop"), LOOPS)
def test_an_ambiguous_order_reply_is_looked_up_never_resent_blindly(sim: BinanceSimulator, transport: str, loop: str,
                                                                    tmp_path: Path) -> None:
    seed(sim)
    sim.faults.unknown_status_executed(endpoint="new_order", symbol="BTCUSDT", times=1)
    result, _ = run_on(loop, liquidate(sim, transport, tmp_path))
    assert result.state is LiquidationState.COMPLETED, result.errors
    assert flat(sim)
    fills = [f for f in sim.book.fill_log if f.symbol == "BTCUSDT"]
    assert len(fills) == 1, f"BTCUSDT filled {len(fills)} times: the executed order was sent again"


@pytest.mark.parametrize(("transport", "loop"), LOOPS)
def test_a_connection_reset_on_an_order_never_closes_twice(sim: BinanceSimulator, transport: str, loop: str,
                                                           tmp_path: Path) -> None:
    seed(sim)
    sim.faults.connection_reset(endpoint="new_order", symbol="ETHUSDT", times=1)
    result, _ = run_on(loop, liquidate(sim, transport, tmp_path))
    assert result.state is LiquidationState.COMPLETED, result.errors
    assert flat(sim)
    assert sum(f.qty for f in sim.book.fill_log if f.symbol == "ETHUSDT") == Decimal("0.500")


@pytest.mark.parametrize(("transport", "loop"), LOOPS)
def test_hedge_mode_and_algo_orders_on_the_whole_account(sim: BinanceSimulator, transport: str, loop: str,
                                                         tmp_path: Path) -> None:
    sim.book.set_hedge_mode(True)
    sim.book.set_position("BTCUSDT", "0.010", position_side="LONG")
    sim.book.set_position("BTCUSDT", "-0.020", position_side="SHORT")
    sim.book.place_algo_order("ETHUSDT", "SELL", "STOP_MARKET", trigger_price="1000", close_position=True,
                              position_side="LONG")
    result, _ = run_on(loop, liquidate(sim, transport, tmp_path, symbols=None))
    assert result.state is LiquidationState.COMPLETED, result.errors
    assert flat(sim), (sim.book.positions(), sim.book.open_algo_orders())
    assert result.positions_closed == 2 and result.orders_cancelled == 1


def test_an_unknown_transport_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="transport"):
        BinanceFuturesOrderManager("k" * 8, "s" * 8, base_url="http://127.0.0.1:1", transport="curl")


class TestColdClock:
    """Without ``warm_up`` (the panic button's cold start) the first signed requests do not wait for
    ``GET /fapi/v1/time``: they go at once, signed with the local clock, while the offset is measured;
    a burst of -1021s from a skewed clock costs one resync, not one per request."""

    @staticmethod
    async def cold_liquidation(sim: BinanceSimulator, tmp_path: Path, **options: str):
        async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url, **options) as om:
            with AuditLogger(tmp_path / "cold.jsonl") as audit:
                engine = LiquidationManager(LiquidationConfig(), om, audit, None)
                return await engine.execute_emergency_liquidation("cold start")

    async def test_a_synced_clock_costs_one_time_request_and_no_rejection(self, sim: BinanceSimulator,
                                                                         tmp_path: Path) -> None:
        seed(sim)
        result = await self.cold_liquidation(sim, tmp_path)
        assert result.state is LiquidationState.COMPLETED, result.errors
        assert flat(sim)
        assert len(sim.requests_to("v1/time")) == 1
        assert len(sim.requests_to("v1/exchangeInfo")) == 1  # prefetched once, shared by both closes
        assert not [r for r in sim.request_log if r.code == -1021]

    async def test_a_clock_two_seconds_ahead_is_resynced_once_for_the_whole_burst(self, tmp_path: Path) -> None:
        import time

        book = SimBook(clock=lambda: time.time() - 2.0)  # the exchange is 2 s behind this machine
        with BinanceSimulator(book) as sim:
            seed(sim)
            for symbol in ("LTCUSDT", "SOLUSDT", "ADAUSDT"):
                sim.book.set_position(symbol, "1")
            result = await self.cold_liquidation(sim, tmp_path)
            assert result.state is LiquidationState.COMPLETED, result.errors
            assert flat(sim)
            rejected = [r for r in sim.request_log if r.code == -1021]
            assert rejected, "the first signed requests should have been rejected: the skew exceeds 1 s"
            assert len(sim.requests_to("v1/time")) == 1, "one resync for the whole burst of -1021s"

    async def test_clock_sync_first_waits_for_the_offset_and_is_never_rejected(self, tmp_path: Path) -> None:
        import time

        with BinanceSimulator(SimBook(clock=lambda: time.time() - 2.0)) as sim:
            seed(sim)
            result = await self.cold_liquidation(sim, tmp_path, clock_sync="first")
            assert result.state is LiquidationState.COMPLETED, result.errors
            assert not [r for r in sim.request_log if r.code == -1021]
            assert len(sim.requests_to("v1/time")) == 1


def test_the_transport_comes_from_binance_transport_when_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_TRANSPORT", "python-binance")
    assert BinanceFuturesOrderManager("k" * 8, "s" * 8, base_url="http://127.0.0.1:1")._session.transport == "python-binance"
    assert BinanceFuturesOrderManager("k" * 8, "s" * 8, base_url="http://127.0.0.1:1",
                                      transport="wire")._session.transport == "wire"
    monkeypatch.setenv("BINANCE_TRANSPORT", "")
    assert BinanceFuturesOrderManager("k" * 8, "s" * 8, base_url="http://127.0.0.1:1")._session.transport == "wire"
    monkeypatch.setenv("BINANCE_TRANSPORT", "h2")
    with pytest.raises(ConfigError, match="BINANCE_TRANSPORT='h2'"):
        BinanceFuturesOrderManager("k" * 8, "s" * 8, base_url="http://127.0.0.1:1")
