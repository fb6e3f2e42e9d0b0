"""How many requests a whole-account liquidation sends over HTTP (issue 13): cancels only where the
run's snapshot saw orders, each book separately; closes batched five to a request; and a batch
whose reply is lost never fills an order twice."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.bench._exchange import seed_account, synthetic_specs
from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult, LiquidationState
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.sim import BinanceSimulator, SimBook

N = 200
#: positionRisk, openOrders and openAlgoOrders (account-wide): the reads a warmed-up run needs
READS = 3


async def _liquidate(sim: BinanceSimulator, tmp_path: Path, **options: object) -> tuple[LiquidationResult, list]:
    async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url, **options) as om:
        await om.warm_up()
        before = len(sim.request_log)
        audit = AuditLogger(tmp_path / "audit.jsonl")
        result = await LiquidationManager(LiquidationConfig(), om, audit).execute_emergency_liquidation("test")
        audit.close()
        return result, sim.request_log[before:]


def _kinds(requests: list) -> Counter:
    return Counter(f"{r.method} {r.path.rsplit('/fapi/', 1)[-1]}" for r in requests)


def _tick(price: Decimal, tick: Decimal) -> Decimal:
    return (price // tick) * tick


def _flat(book: SimBook) -> bool:
    return not book.positions() and not book.open_orders() and not book.open_algo_orders()


@pytest.fixture
async def big_sim() -> AsyncIterator[BinanceSimulator]:
    async with BinanceSimulator(SimBook(synthetic_specs(N))) as sim:
        yield sim


class TestTwoHundredSymbols:
    async def test_one_regular_and_one_algo_order_per_symbol_costs_one_delete_per_book(
        self, big_sim: BinanceSimulator, tmp_path: Path
    ) -> None:
        seed_account(big_sim.book, synthetic_specs(N))  # the benchmark's account
        orders = sum(2 if i % 4 == 0 else 1 for i in range(N))  # every fourth position needs two MARKET orders
        result, requests = await _liquidate(big_sim, tmp_path, batch_orders=True)
        kinds = _kinds(requests)
        assert result.state is LiquidationState.COMPLETED and _flat(big_sim.book), result.errors
        assert kinds["DELETE v1/allOpenOrders"] == kinds["DELETE v1/algoOpenOrders"] == N
        assert kinds["POST v1/order"] + 5 * kinds["POST v1/batchOrders"] >= orders
        # only full batches (a batch costs 5 on the 10 s order counter whatever its size); how many form
        # depends on how closely the closes follow each other (BATCH_LINGER_SECONDS)
        batches = [r for r in requests if r.method == "POST" and r.path.endswith("v1/batchOrders")]
        assert batches and all(len(json.loads(r.params["batchOrders"])) == 5 for r in batches)
        closes = kinds["POST v1/batchOrders"] + kinds["POST v1/order"]
        assert closes < orders * 0.4, kinds
        assert len(requests) == READS + 2 * N + closes < 653 - 150  # 653 before issue 13
        assert all(r.status == 200 for r in requests)  # no 429, no refused batch item

    async def test_two_regular_orders_per_symbol_stay_within_260_requests(
        self, big_sim: BinanceSimulator, tmp_path: Path
    ) -> None:
        book = big_sim.book
        for index, spec in enumerate(synthetic_specs(N)):
            book.set_position(spec.symbol, Decimal(index % 5 + 1))
            for factor in ("0.8", "0.7"):
                book.place_order(spec.symbol, "BUY", "LIMIT", "1", (spec.mark_price * Decimal(factor)).quantize(spec.tick_size))
        result, requests = await _liquidate(big_sim, tmp_path, batch_orders=True)
        kinds = _kinds(requests)
        assert result.state is LiquidationState.COMPLETED and _flat(book)
        assert kinds["DELETE v1/allOpenOrders"] == N and kinds["DELETE v1/algoOpenOrders"] == 0
        assert len(requests) <= 260, kinds

    async def test_single_orders_by_default_one_request_each(
        self, big_sim: BinanceSimulator, tmp_path: Path
    ) -> None:
        for index, spec in enumerate(synthetic_specs(N)):
            big_sim.book.set_position(spec.symbol, Decimal(index % 3 + 1))
        result, requests = await _liquidate(big_sim, tmp_path)
        kinds = _kinds(requests)
        assert result.state is LiquidationState.COMPLETED and _flat(big_sim.book)
        assert kinds["POST v1/order"] == N and kinds["POST v1/batchOrders"] == 0
        assert kinds["DELETE v1/allOpenOrders"] == kinds["DELETE v1/algoOpenOrders"] == 0  # no orders: no cancels


class TestCancelOnlyWhereOpen:
    async def test_each_book_is_cancelled_only_where_the_snapshot_saw_an_order(self, tmp_path: Path) -> None:
        async with BinanceSimulator() as sim:
            book = sim.book
            regular, algo, both, bare = "BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"
            for symbol in (regular, algo, both, bare):
                book.set_position(symbol, book.spec(symbol).min_qty * 10)
            for symbol in (regular, both):
                spec = book.spec(symbol)
                price = _tick(spec.mark_price * Decimal("0.8"), spec.tick_size)
                book.place_order(symbol, "BUY", "LIMIT", _tick(spec.min_notional * 2 / price, spec.step_size) + spec.step_size,
                                 price)
            for symbol in (algo, both):
                spec = book.spec(symbol)
                book.place_algo_order(symbol, "SELL", "STOP_MARKET", close_position=True,
                                      trigger_price=_tick(spec.mark_price * Decimal("0.7"), spec.tick_size))
            result, requests = await _liquidate(sim, tmp_path)
        cancelled = {(r.path.rsplit("/", 1)[-1], r.params.get("symbol")) for r in requests if r.method == "DELETE"}
        assert result.state is LiquidationState.COMPLETED and _flat(book)
        assert cancelled == {("allOpenOrders", regular), ("allOpenOrders", both),
                             ("algoOpenOrders", algo), ("algoOpenOrders", both)}

    async def test_outside_a_run_every_book_of_the_symbol_is_cancelled(self) -> None:
        async with BinanceSimulator() as sim:
            async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url) as om:
                await om.warm_up()
                before = len(sim.request_log)
                assert await om.cancel_all_orders_async("BTCUSDT") == 0
                deletes = {r.path.rsplit("/", 1)[-1] for r in sim.request_log[before:] if r.method == "DELETE"}
                assert deletes == {"allOpenOrders", "algoOpenOrders"}  # no snapshot: nothing is assumed empty


class TestLostBatchReplies:
    @pytest.mark.parametrize("executed", [True, False], ids=["executed-reply-lost", "not-executed-reply-503"])
    async def test_every_item_of_an_ambiguous_batch_is_looked_up_and_nothing_fills_twice(
        self, executed: bool, tmp_path: Path
    ) -> None:
        specs = synthetic_specs(12)
        async with BinanceSimulator(SimBook(specs)) as sim:
            for index, spec in enumerate(specs):
                sim.book.set_position(spec.symbol, Decimal(index + 1) if index % 2 else -Decimal(index + 1))
            if executed:
                sim.faults.unknown_status_executed(endpoint="POST /fapi/v1/batchOrders", times=1)
            else:
                sim.faults.error(503, msg="Unknown error, please check your request or try again later.",
                                 endpoint="POST /fapi/v1/batchOrders", times=1)
            result, requests = await _liquidate(sim, tmp_path, batch_orders=True)
            fills = Counter(fill.symbol for fill in sim.fill_log)
            lookups = [r for r in requests if r.method == "GET" and r.path.endswith("v1/order")]
            assert result.state is LiquidationState.COMPLETED and _flat(sim.book)
            assert fills == Counter({spec.symbol: 1 for spec in specs})  # each position closed by exactly one fill
            assert len(lookups) == 5  # the failed batch's five items, each by its own client order id
            assert len({r.params["origClientOrderId"] for r in lookups}) == 5
