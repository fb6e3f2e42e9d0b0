"""The adapter's request budget: the rate limiter (pure, on a manual clock), and the adapter's use of it
against the embedded exchange (queue instead of 429, one open-order snapshot per run, no threads for
cancels, warm-up, bounded memory)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.context import current_correlation_id, current_deadline
from harness.core.errors import RetryableExchangeError
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationState
from harness.exchanges.binance.limiter import (
    BINANCE_DEFAULT_LIMITS,
    BUCKETS_PER_WINDOW,
    Limit,
    RequestLimiter,
    limits_from_exchange_info,
    request_cost,
)
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.binance.manager import MAX_TRACKED_RUNS
from harness.exchanges.sim import BinanceSimulator, RateLimits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(*limits: Limit, headroom: float = 1.0) -> tuple[RequestLimiter, Clock]:
    clock = Clock()
    return RequestLimiter(limits or BINANCE_DEFAULT_LIMITS, headroom=headroom, clock=clock), clock


class TestRequestCost:
    @pytest.mark.parametrize(
        ("method", "params", "cost"),
        [
            pytest.param("futures_position_information", {}, (5, 0), id="positions"),
            pytest.param("futures_get_open_orders", {"symbol": "BTCUSDT"}, (1, 0), id="open-orders-one-symbol"),
            pytest.param("futures_get_open_orders", {}, (40, 0), id="open-orders-all-symbols"),
            pytest.param("futures_get_open_algo_orders", {}, (40, 0), id="algo-orders-all-symbols"),
            pytest.param("futures_create_order", {"symbol": "BTCUSDT"}, (0, 1), id="new-order"),
            pytest.param("futures_place_batch_order", {"batchOrders": [{}, {}, {}]}, (5, (5, 1)), id="batch"),
            pytest.param("futures_place_batch_order", {"batchOrders": [{}] * 5}, (5, (5, 1)), id="full-batch"),
            pytest.param("futures_get_position_mode", {}, (30, 0), id="position-mode"),
            pytest.param("futures_something_new", {}, (1, 0), id="unknown-method"),
        ],
    )
    def test_weight_and_orders_follow_binance_documentation(self, method: str, params: dict, cost: tuple) -> None:
        assert request_cost(method, params) == cost


class TestLimitsFromExchangeInfo:
    def test_the_simulators_rate_limits_are_read_as_binance_publishes_them(self) -> None:
        limits = limits_from_exchange_info(RateLimits(weight_per_minute=600, orders_per_10s=7).exchange_info())
        assert set(limits) == {Limit("weight", 60.0, 600), Limit("orders", 60.0, 1200), Limit("orders", 10.0, 7)}

    def test_unknown_and_malformed_entries_are_skipped(self) -> None:
        raw = [{"rateLimitType": "CONNECTIONS", "interval": "MINUTE", "intervalNum": 1, "limit": 5},
               {"rateLimitType": "ORDERS", "interval": "WEEK", "intervalNum": 1, "limit": 5},
               {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10},
               {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 6100}]
        assert limits_from_exchange_info(raw) == (Limit("requests", 300.0, 6100),)

    def test_an_exchange_info_without_limits_keeps_the_current_ones(self) -> None:
        limit, _ = limiter()
        limit.configure([])
        assert limit.limits == BINANCE_DEFAULT_LIMITS

    @pytest.mark.parametrize(("kind", "seconds", "count"), [("bananas", 1, 1), ("orders", 0, 1), ("orders", 10, 0)])
    def test_impossible_limits_are_rejected(self, kind: str, seconds: float, count: int) -> None:
        with pytest.raises(ValueError):
            Limit(kind, seconds, count)


class TestQueueing:
    def test_requests_within_the_limits_go_at_once(self) -> None:
        limit, _ = limiter()
        assert [limit.reserve(5, 1) for _ in range(10)] == [0.0] * 10

    def test_orders_beyond_the_ten_second_window_queue_until_the_oldest_expire(self) -> None:
        limit, clock = limiter(Limit("orders", 10.0, 3))
        assert [limit.reserve(0, 1) for _ in range(3)] == [0.0, 0.0, 0.0]
        clock.now += 4.0
        assert limit.reserve(0, 1) == pytest.approx(6.0)  # the first three leave the window at +10 s
        assert limit.reserve(0, 1) == pytest.approx(6.0)
        assert limit.reserve(0, 1) == pytest.approx(6.0)
        assert limit.reserve(0, 1) == pytest.approx(16.0)  # first come, first served: behind the queue
        assert limit.stats()["queued"] == 4

    def test_a_batch_counts_five_on_the_ten_second_window_and_one_on_the_minute(self) -> None:
        limit, clock = limiter(Limit("orders", 10.0, 10), Limit("orders", 60.0, 3))
        assert limit.reserve(5, (5, 1)) == 0.0
        assert limit.reserve(5, (5, 1)) == 0.0
        assert limit.reserve(0, 1) == pytest.approx(10.0)  # the 10 s window is full (5 + 5)
        clock.now += 10.0
        assert limit.reserve(5, (5, 1)) == pytest.approx(50.0)  # 1 + 1 + 1 fill the minute's 3

    def test_headroom_keeps_a_share_of_each_limit_free(self) -> None:
        limit, _ = limiter(Limit("weight", 60.0, 100), headroom=0.9)
        assert limit.reserve(90, 0) == 0.0
        assert limit.reserve(1, 0) == pytest.approx(60.0)

    def test_a_wait_longer_than_the_budget_is_refused_and_nothing_is_counted(self) -> None:
        limit, _ = limiter(Limit("orders", 10.0, 1))
        assert limit.reserve(0, 1) == 0.0
        assert limit.reserve(0, 1, max_delay=2.0) is None
        assert limit.stats()["refused"] == 1 and limit.stats()["orders"] == 1
        assert limit.reserve(0, 1, max_delay=10.0) == pytest.approx(10.0)

    def test_a_request_bigger_than_a_window_waits_for_the_window_to_empty(self) -> None:
        limit, _ = limiter(Limit("weight", 60.0, 10))
        assert limit.reserve(4, 0) == 0.0
        assert limit.reserve(50, 0) == pytest.approx(60.0)

    def test_a_busy_bot_keeps_a_bounded_number_of_buckets_and_still_counts_everything(self) -> None:
        limit, clock = limiter(Limit("weight", 60.0, 10**9))
        for _ in range(20_000):
            clock.now += 0.001
            limit.reserve(1, 0)
        window = limit._windows[0]
        assert len(window.entries) <= BUCKETS_PER_WINDOW + 1 and window.total == 20_000

    def test_reconfiguring_keeps_what_was_already_used(self) -> None:
        limit, _ = limiter(Limit("orders", 10.0, 5))
        for _ in range(4):
            limit.reserve(0, 1)
        limit.configure_limits([Limit("orders", 10.0, 4)])
        assert limit.reserve(0, 1) == pytest.approx(10.0)


class TestServerHeaders:
    def test_usage_reported_by_the_server_pauses_the_queue(self) -> None:
        """Another process used most of the weight: the server says so, and the limiter believes it."""
        limit, _ = limiter(Limit("weight", 60.0, 2400))
        limit.observe({"X-MBX-USED-WEIGHT-1M": "2390"}, 200)
        assert limit.reserve(5, 0) == 0.0
        assert limit.reserve(40, 0) == pytest.approx(60.0)
        assert limit.stats()["max_weight_seen"] == 2390

    def test_the_server_never_lowers_local_usage(self) -> None:
        limit, _ = limiter(Limit("orders", 10.0, 3))
        for _ in range(3):
            limit.reserve(0, 1)
        limit.observe({"X-MBX-ORDER-COUNT-10S": "0"}, 200)
        assert limit.reserve(0, 1) == pytest.approx(10.0)

    def test_order_counts_and_429s_are_kept_for_the_report(self) -> None:
        limit, _ = limiter()
        limit.observe({"X-MBX-ORDER-COUNT-10S": "12", "X-MBX-ORDER-COUNT-1M": "40"}, 200)
        limit.observe({"X-MBX-USED-WEIGHT-1M": "junk"}, 429)
        stats = limit.stats()
        assert (stats["max_orders_10s_seen"], stats["max_orders_1m_seen"], stats["rate_limited"]) == (12, 40, 1)

    def test_peak_in_flight_is_the_most_requests_on_the_wire_at_once(self) -> None:
        limit, _ = limiter()
        limit.sent()
        limit.sent()
        limit.done()
        limit.sent()
        assert (limit.in_flight, limit.stats()["peak_in_flight"]) == (2, 2)


# -- the adapter against the embedded exchange -----------------------------------------------------
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]


def _tick(price: Decimal, tick: Decimal) -> Decimal:
    return (price / tick).to_integral_value() * tick


@pytest.fixture
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[BinanceSimulator]:
    # a batch counts 5 on Binance's 10 s order counter: the batching tests need room for one
    limit = 5 if request.cls is not None and request.cls.__name__ == "TestOrderBatching" else 3
    async with BinanceSimulator(rate_limits={"orders_per_10s": limit}) as simulator:
        for index, symbol in enumerate(SYMBOLS):
            spec = simulator.book.spec(symbol)
            simulator.book.set_position(symbol, spec.min_qty * (index + 1))
            bid = _tick(spec.mark_price * Decimal("0.8"), spec.tick_size)
            quantity = _tick(spec.min_notional * 2 / bid, spec.step_size) + spec.step_size
            simulator.book.place_order(symbol, "BUY", "LIMIT", quantity, bid)
            simulator.book.place_algo_order(symbol, "SELL", "STOP_MARKET", close_position=True,
                                            trigger_price=_tick(spec.mark_price * Decimal("0.7"), spec.tick_size))
        yield simulator


@pytest.fixture
async def adapter(sim: BinanceSimulator) -> AsyncIterator[BinanceFuturesOrderManager]:
    async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url) as om:
        yield om


class TestAdapterBudget:
    async def test_warm_up_reads_the_exchanges_limits_and_opens_connections(
        self, sim: BinanceSimulator, adapter: BinanceFuturesOrderManager
    ) -> None:
        await adapter.warm_up(connections=4)
        assert Limit("orders", 10.0, 3) in adapter._session.limiter.limits
        assert len(sim.requests_to("v1/ping")) == 4 and len(sim.requests_to("v1/exchangeInfo")) == 1
        assert adapter.request_stats()["peak_in_flight"] >= 2

    async def test_orders_beyond_the_exchanges_limit_queue_and_are_refused_at_the_deadline_not_sent(
        self, sim: BinanceSimulator, adapter: BinanceFuturesOrderManager
    ) -> None:
        """Three orders per 10 s, 90 % of it used: the third close would wait ~10 s, so inside a 1 s run
        it is never sent."""
        await adapter.warm_up()
        for symbol in SYMBOLS[:2]:
            await adapter.execute_market_close(symbol, "SELL", sim.book.position_amount(symbol))
        token = current_deadline.set(time.monotonic() + 1.0)
        try:
            with pytest.raises(RetryableExchangeError, match="rate limits leave no room"):
                await adapter.execute_market_close("SOLUSDT", "SELL", sim.book.position_amount("SOLUSDT"))
        finally:
            current_deadline.reset(token)
        assert sim.rate_limited_count == 0 and sim.banned_count == 0
        assert len(sim.requests_to("v1/order", "POST")) == 2
        assert adapter.request_stats()["max_orders_10s_seen"] == 2

    async def test_one_open_order_snapshot_per_run_counts_every_symbol(
        self, sim: BinanceSimulator, adapter: BinanceFuturesOrderManager
    ) -> None:
        token = current_correlation_id.set("run-1")
        try:
            counts = await asyncio.gather(*(adapter.cancel_all_orders_async(s) for s in SYMBOLS))
        finally:
            current_correlation_id.reset(token)
        assert counts == [2, 2, 2, 2]
        reads = sim.requests_to("v1/openOrders", "GET") + sim.requests_to("v1/openAlgoOrders", "GET")
        assert [r.params.get("symbol") for r in reads] == [None, None]
        assert len(sim.requests_to("v1/allOpenOrders", "DELETE")) == len(SYMBOLS)
        assert sim.book.open_orders() == [] and sim.book.open_algo_orders() == []

    async def test_outside_a_run_each_symbol_counts_its_own_orders(
        self, sim: BinanceSimulator, adapter: BinanceFuturesOrderManager
    ) -> None:
        assert await adapter.cancel_all_orders_async("BTCUSDT") == 2
        reads = sim.requests_to("v1/openOrders", "GET") + sim.requests_to("v1/openAlgoOrders", "GET")
        assert [r.params.get("symbol") for r in reads] == ["BTCUSDT", "BTCUSDT"]

    async def test_a_failed_snapshot_falls_back_to_counting_per_symbol(
        self, sim: BinanceSimulator, adapter: BinanceFuturesOrderManager
    ) -> None:
        sim.faults.error(503, endpoint="GET /fapi/v1/openAlgoOrders", times=1)
        token = current_correlation_id.set("run-2")
        try:
            assert await adapter.cancel_all_orders_async("ETHUSDT") == 2
        finally:
            current_correlation_id.reset(token)
        assert sim.book.open_orders("ETHUSDT") == []

    async def test_the_engine_cancels_through_the_async_path_without_threads(
        self, sim: BinanceSimulator, adapter: BinanceFuturesOrderManager, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_threads(symbol: str) -> int:
            raise AssertionError("the synchronous cancel path was used")

        monkeypatch.setattr(adapter, "cancel_all_orders", no_threads)
        with AuditLogger(tmp_path / "audit.jsonl") as audit:
            manager = LiquidationManager(LiquidationConfig(), adapter, audit, SYMBOLS[:2])
            result = await manager.execute_emergency_liquidation("test")
        assert result.state is LiquidationState.COMPLETED, result.errors
        assert result.orders_cancelled == 4 and result.positions_closed == 2

    async def test_client_order_id_sequences_are_kept_for_recent_runs_only(
        self, adapter: BinanceFuturesOrderManager
    ) -> None:
        for run in range(MAX_TRACKED_RUNS * 3):
            token = current_correlation_id.set(f"run-{run}")
            try:
                adapter._next_client_order_id("BTCUSDT")
            finally:
                current_correlation_id.reset(token)
        assert len(adapter._sequences) == MAX_TRACKED_RUNS


class TestOrderBatching:
    @pytest.fixture
    async def batching(self, sim: BinanceSimulator) -> AsyncIterator[BinanceFuturesOrderManager]:
        async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url,
                                              batch_orders=True) as om:
            await om.warm_up()
            yield om

    async def test_closes_placed_together_share_one_batch_and_each_gets_its_own_result(
        self, sim: BinanceSimulator, batching: BinanceFuturesOrderManager
    ) -> None:
        symbols = [*SYMBOLS, "BNBUSDT"]  # five: a full batch
        for symbol in symbols:
            sim.book.set_position(symbol, sim.book.spec(symbol).min_qty)
        sim.book.set_position("ETHUSDT", "0")  # nothing to close: -2022 inside the batch, for ETH only
        results = await asyncio.gather(*(batching.execute_market_close(s, "SELL", sim.book.spec(s).min_qty)
                                         for s in symbols))
        assert [r["status"] for r in results] == ["FILLED"] * 5
        assert results[1]["already_flat"] is True
        assert [r["executed_qty"] for i, r in enumerate(results) if i != 1] == [sim.book.spec(s).min_qty
                                                                              for s in symbols if s != "ETHUSDT"]
        assert len(sim.requests_to("v1/batchOrders", "POST")) == 1 and sim.requests_to("v1/order", "POST") == []
        assert all(sim.book.position_amount(s) == 0 for s in symbols)

    async def test_fewer_than_five_go_as_single_orders_which_cost_less_of_the_ten_second_count(
        self, sim: BinanceSimulator, batching: BinanceFuturesOrderManager
    ) -> None:
        results = await asyncio.gather(*(batching.execute_market_close(s, "SELL", sim.book.position_amount(s))
                                         for s in ("BTCUSDT", "ETHUSDT")))
        assert [r["status"] for r in results] == ["FILLED", "FILLED"]
        assert sim.requests_to("v1/batchOrders") == [] and len(sim.requests_to("v1/order", "POST")) == 2

    async def test_a_lone_close_goes_as_a_single_order(
        self, sim: BinanceSimulator, batching: BinanceFuturesOrderManager
    ) -> None:
        result = await batching.execute_market_close("BTCUSDT", "SELL", Decimal("0.001"))
        assert result["status"] == "FILLED"
        assert len(sim.requests_to("v1/order", "POST")) == 1 and sim.requests_to("v1/batchOrders") == []

    async def test_an_ambiguous_batch_is_resolved_order_by_order_and_nothing_is_sent_twice(
        self, sim: BinanceSimulator, batching: BinanceFuturesOrderManager
    ) -> None:
        symbols = [*SYMBOLS, "BNBUSDT"]  # five: a full batch
        sim.book.set_position("BNBUSDT", sim.book.spec("BNBUSDT").min_qty)
        sim.faults.unknown_status_executed(endpoint="POST /fapi/v1/batchOrders", times=1)
        results = await asyncio.gather(*(batching.execute_market_close(s, "SELL", sim.book.position_amount(s))
                                         for s in symbols))
        assert [r["status"] for r in results] == ["FILLED"] * 5
        assert len(sim.requests_to("v1/order", "GET")) == 5  # each looked up by its client id
        assert len(sim.fill_log) == 5
        assert all(sim.book.position_amount(s) == 0 for s in symbols)
