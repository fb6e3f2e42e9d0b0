"""LiquidationManager over the in-process simulator: states, deadline, retries, concurrency, audit, metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from harness.core.audit import AuditLogger, AuditRecord, read_audit
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationState
from harness.exchanges.sim import FaultPlan, InMemoryOrderManager, SimBook
from harness.exchanges.sim.memory import SyncCancelOrderManager

from tests.support.clock import ManualClock

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
def book() -> SimBook:
    book = SimBook()
    book.set_position("BTCUSDT", "0.010")
    book.set_position("ETHUSDT", "-1.500")
    book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "30000", time_in_force="GTC")
    book.place_order("SOLUSDT", "SELL", "LIMIT", "1", "900", time_in_force="GTC")
    return book


@pytest.fixture
def faults() -> FaultPlan:
    plan = FaultPlan(seed=1)
    yield plan
    plan.release_hangs()


@pytest.fixture
def order_manager(book: SimBook, faults: FaultPlan) -> InMemoryOrderManager:
    return InMemoryOrderManager(book, faults)


@pytest.fixture
def audit(tmp_path: Path) -> AuditLogger:
    with AuditLogger(tmp_path / "logs" / "audit.jsonl") as logger:
        yield logger


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make(order_manager, audit, clock=None, symbols=SYMBOLS, **config) -> LiquidationManager:
    kwargs = {"clock": clock, "sleep": clock.sleep} if clock is not None else {}
    return LiquidationManager(LiquidationConfig(**config), order_manager, audit, symbols, **kwargs)


def events(audit: AuditLogger) -> list[AuditRecord]:
    return list(read_audit(audit.path).records)


def event_types(audit: AuditLogger) -> list[str]:
    return [e.event_type for e in events(audit)]


def fills_for(book: SimBook, symbol: str) -> list:
    return [f for f in book.fill_log if f.symbol == symbol]


class TestLiquidationStates:
    async def test_closes_every_position_and_cancels_every_order(self, book, order_manager, audit, clock) -> None:
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("test")
        assert result.state is LiquidationState.COMPLETED
        assert (result.positions_closed, result.positions_failed, result.orders_cancelled) == (2, 0, 2)
        assert book.positions() == []
        assert book.open_orders() == []

    async def test_close_side_is_opposite_to_the_position_sign(self, book, order_manager, audit, clock) -> None:
        await make(order_manager, audit, clock).execute_emergency_liquidation("test")
        [btc] = fills_for(book, "BTCUSDT")
        [eth] = fills_for(book, "ETHUSDT")
        assert (btc.side, btc.qty) == ("SELL", Decimal("0.010"))
        assert (eth.side, eth.qty) == ("BUY", Decimal("1.500"))

    async def test_flat_account_is_completed_with_zero_counts(self, order_manager, audit, clock) -> None:
        empty = InMemoryOrderManager(SimBook())
        result = await make(empty, audit, clock).execute_emergency_liquidation("test")
        assert result.state is LiquidationState.COMPLETED
        assert (result.positions_closed, result.positions_failed, result.orders_cancelled) == (0, 0, 0)

    async def test_hedge_mode_closes_both_legs_of_a_symbol(self, audit, clock) -> None:
        book = SimBook()
        book.set_hedge_mode(True)
        book.set_position("BTCUSDT", "0.020", "LONG")
        book.set_position("BTCUSDT", "-0.005", "SHORT")
        result = await make(InMemoryOrderManager(book), audit, clock, symbols=["BTCUSDT"]).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED and result.positions_closed == 2
        assert book.positions() == []

    async def test_disabled_liquidation_is_skipped_without_touching_the_exchange(
        self, book, order_manager, audit, clock, caplog: pytest.LogCaptureFixture
    ) -> None:
        manager = make(order_manager, audit, clock, emergency_liquidation=False, close_positions=False, cancel_orders=False)
        with caplog.at_level(logging.CRITICAL, logger="harness.liquidation"):
            result = await manager.execute_emergency_liquidation("test")
        assert result.state is LiquidationState.SKIPPED
        assert order_manager.calls == []
        assert len(book.positions()) == 2 and len(book.open_orders()) == 2
        assert any(r.levelno == logging.CRITICAL and "SKIPPED" in r.getMessage() for r in caplog.records)
        assert event_types(audit) == ["LIQUIDATION_START", "LIQUIDATION_COMPLETE"]
        assert events(audit)[-1].details["state"] == "SKIPPED"

    async def test_unreadable_positions_with_nothing_cancelled_is_failed(self, faults, audit, clock) -> None:
        faults.error(503, endpoint="get_all_positions")
        book = SimBook()
        book.set_position("BTCUSDT", "0.010")
        result = await make(InMemoryOrderManager(book, faults), audit, clock, max_retries=1).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.FAILED
        assert any("positions could not be read" in e for e in result.errors)
        assert "POSITIONS_FETCH_FAILED" in event_types(audit)

    async def test_locked_symbol_gives_partial_with_the_rest_closed(self, book, faults, order_manager, audit, clock) -> None:
        faults.lock_symbol("ETHUSDT")
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("test")
        assert result.state is LiquidationState.PARTIAL
        assert (result.positions_closed, result.positions_failed) == (1, 1)
        assert book.position_amount("BTCUSDT") == 0 and book.position_amount("ETHUSDT") == Decimal("-1.500")
        assert {"ORDER_PLACED", "ORDER_REJECTED"} <= set(event_types(audit))

    async def test_cancel_orders_false_leaves_orders_alone(self, book, order_manager, audit, clock) -> None:
        result = await make(order_manager, audit, clock, cancel_orders=False).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED and result.orders_cancelled == 0
        assert len(book.open_orders()) == 2 and book.positions() == []

    async def test_close_positions_false_only_cancels(self, book, order_manager, audit, clock) -> None:
        result = await make(order_manager, audit, clock, close_positions=False).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED and result.positions_closed == 0
        assert book.open_orders() == [] and len(book.positions()) == 2
        assert order_manager.calls_to("execute_market_close") == []

    async def test_untargeted_symbols_are_left_untouched(self, book, order_manager, audit, clock) -> None:
        result = await make(order_manager, audit, clock, symbols=["BTCUSDT"]).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert book.position_amount("ETHUSDT") == Decimal("-1.500")
        assert len(book.open_orders("SOLUSDT")) == 1

    async def test_no_symbols_targets_the_whole_account(self, book, order_manager, audit, clock) -> None:
        # SOLUSDT has an order and no position: the whole account includes it
        result = await make(order_manager, audit, clock, symbols=None).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert book.positions() == [] and book.open_orders() == []
        assert set(result.symbols) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
        assert result.order_discovery == "account" and result.out_of_scope == []


class TestLiquidationTimeout:
    async def test_hanging_close_returns_within_the_deadline(self, faults, order_manager, audit) -> None:
        faults.hang(endpoint="execute_market_close")
        manager = make(order_manager, audit, timeout_seconds=1.0)
        started = time.monotonic()
        result = await manager.execute_emergency_liquidation("test")
        assert time.monotonic() - started < 1.5
        assert result.state is not LiquidationState.COMPLETED
        assert result.timed_out and result.total_duration_seconds <= 1.5
        start, complete = events(audit)[0], events(audit)[-1]
        assert (start.event_type, complete.event_type) == ("LIQUIDATION_START", "LIQUIDATION_COMPLETE")
        assert start.correlation_id == complete.correlation_id == result.correlation_id

    async def test_blocking_synchronous_cancel_cannot_hold_the_engine(self, book, faults, audit) -> None:
        faults.hang(endpoint="cancel_all_orders")
        started = time.monotonic()
        result = await make(SyncCancelOrderManager(book, faults), audit, timeout_seconds=1.0).execute_emergency_liquidation("test")
        assert time.monotonic() - started < 1.5
        assert result.state is LiquidationState.FAILED
        assert result.positions_failed == 2  # read but never closed: reported, not forgotten
        assert len(book.positions()) == 2

    async def test_hanging_position_read_is_failed_in_time(self, faults, order_manager, audit) -> None:
        faults.hang(endpoint="get_all_positions")
        started = time.monotonic()
        result = await make(order_manager, audit, timeout_seconds=1.0).execute_emergency_liquidation("test")
        assert time.monotonic() - started < 1.5
        assert result.state in (LiquidationState.PARTIAL, LiquidationState.FAILED)
        assert result.timed_out

    async def test_deadline_cut_is_partial_when_some_work_finished(self, book, faults, order_manager, audit) -> None:
        faults.hang(endpoint="execute_market_close", symbol="ETHUSDT")
        result = await make(order_manager, audit, timeout_seconds=1.0).execute_emergency_liquidation("test")
        assert result.state is LiquidationState.PARTIAL
        assert (result.positions_closed, result.positions_failed) == (1, 1)
        assert "LIQUIDATION_DEADLINE_EXCEEDED" in event_types(audit)
        assert any("unfinished at the deadline" in e for e in result.errors)

    async def test_cancel_pool_is_sized_for_the_symbol_count(self, audit) -> None:
        """Twelve cancels that each wait for all twelve to be running at once: a small pool would deadlock."""
        symbols = list(SimBook().symbols)[:12]
        barrier = threading.Barrier(len(symbols), timeout=3)

        class AllAtOnce(SyncCancelOrderManager):  # the thread-pool path: no async cancel
            def cancel_all_orders(self, symbol: str) -> int:
                barrier.wait()
                return super().cancel_all_orders(symbol)

        result = await make(AllAtOnce(SimBook()), audit, symbols=symbols, timeout_seconds=2.0).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED


class TestRetryLogic:
    async def test_backoff_doubles_from_the_retry_delay(self, book, faults, order_manager, audit, clock) -> None:
        faults.error(503, endpoint="execute_market_close", symbol="BTCUSDT", times=3)
        manager = make(order_manager, audit, clock, max_retries=3, retry_delay_seconds=0.5)
        result = await manager.execute_emergency_liquidation("test")
        assert result.state is LiquidationState.COMPLETED
        assert clock.sleeps == [0.5, 1.0, 2.0]
        assert manager.get_metrics()["retries"] == 3 == result.retries

    async def test_max_retries_is_respected(self, book, faults, order_manager, audit, clock) -> None:
        faults.error(503, endpoint="execute_market_close", symbol="BTCUSDT")
        result = await make(order_manager, audit, clock, max_retries=2, timeout_seconds=30.0).execute_emergency_liquidation("t")
        btc = result.symbols["BTCUSDT"].positions[0]
        assert btc.attempts == 3 and len(clock.sleeps) == 2
        assert result.state is LiquidationState.PARTIAL and result.positions_failed == 1
        rejected = [e for e in events(audit) if e.event_type == "ORDER_REJECTED"]
        assert [e.details["will_retry"] for e in rejected] == [True, True, False]

    async def test_zero_retries_means_a_single_attempt(self, faults, order_manager, audit, clock) -> None:
        faults.error(503, endpoint="execute_market_close", symbol="BTCUSDT")
        result = await make(order_manager, audit, clock, max_retries=0).execute_emergency_liquidation("t")
        assert result.symbols["BTCUSDT"].positions[0].attempts == 1 and clock.sleeps == []

    async def test_terminal_error_is_not_retried(self, faults, order_manager, audit, clock) -> None:
        faults.lock_symbol("BTCUSDT")
        result = await make(order_manager, audit, clock, max_retries=5).execute_emergency_liquidation("t")
        assert result.symbols["BTCUSDT"].positions[0].attempts == 1
        assert clock.sleeps == []

    async def test_backoff_never_sleeps_past_the_deadline(self, faults, order_manager, audit, clock) -> None:
        faults.error(503, endpoint="execute_market_close", symbol="BTCUSDT")
        manager = make(order_manager, audit, clock, timeout_seconds=2.5, max_retries=10, retry_delay_seconds=1.0)
        result = await manager.execute_emergency_liquidation("t")
        assert clock.sleeps == [1.0]  # the next sleep (2.0) would end past the 2.5 s deadline
        assert result.positions_failed == 1

    async def test_retry_after_from_the_exchange_is_honoured(self, faults, order_manager, audit, clock) -> None:
        faults.error(429, code=-1003, retry_after=2, endpoint="execute_market_close", symbol="BTCUSDT", times=1)
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert clock.sleeps == [2.0]

    async def test_ambiguous_failure_is_reconciled_never_closed_twice(self, book, faults, order_manager, audit, clock) -> None:
        faults.unknown_status_executed(endpoint="execute_market_close", symbol="BTCUSDT", times=1)
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert [f.qty for f in fills_for(book, "BTCUSDT")] == [Decimal("0.010")]
        assert book.position_amount("BTCUSDT") == 0

    async def test_partial_fill_is_followed_up_for_the_remainder(self, book, faults, order_manager, audit, clock) -> None:
        faults.partial_fill("0.5", endpoint="execute_market_close", symbol="ETHUSDT", times=1)
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert sum(f.qty for f in fills_for(book, "ETHUSDT")) == Decimal("1.500")
        assert book.position_amount("ETHUSDT") == 0

    async def test_failed_cancel_is_retried(self, book, faults, order_manager, audit, clock) -> None:
        faults.error(503, endpoint="cancel_all_orders", symbol="SOLUSDT", times=2)
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert result.symbols["SOLUSDT"].cancel_attempts == 3
        assert event_types(audit).count("ORDER_CANCEL_FAILED") == 2


class TestConcurrentTriggers:
    async def test_a_trigger_during_a_run_joins_it(self, faults, order_manager, audit) -> None:
        faults.latency(0.2, endpoint="execute_market_close")
        manager = make(order_manager, audit)
        first, second = await asyncio.gather(
            manager.execute_emergency_liquidation("SIGTERM"), manager.execute_emergency_liquidation("SIGINT")
        )
        assert first is second
        assert event_types(audit).count("LIQUIDATION_START") == 1
        assert manager.get_metrics()["total_executions"] == 1

    async def test_a_later_trigger_is_a_new_run_with_a_new_correlation_id(self, order_manager, audit, clock) -> None:
        manager = make(order_manager, audit, clock)
        first = await manager.execute_emergency_liquidation("one")
        second = await manager.execute_emergency_liquidation("two")
        assert first.correlation_id != second.correlation_id
        assert second.state is LiquidationState.COMPLETED and second.positions_closed == 0


class TestAuditTrail:
    async def test_every_event_of_a_run_carries_its_correlation_id(self, order_manager, audit, clock) -> None:
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("test")
        lines = events(audit)
        assert {e.correlation_id for e in lines} == {result.correlation_id}
        types = [e.event_type for e in lines]
        assert types[0] == "LIQUIDATION_START" and types[-1] == "LIQUIDATION_COMPLETE"
        assert types.count("ORDER_CANCELLED") == len(SYMBOLS)
        assert types.count("ORDER_PLACED") == 2
        for line in audit.path.read_text(encoding="utf-8").splitlines():  # as written, not as parsed
            assert datetime.fromisoformat(json.loads(line)["timestamp"]).utcoffset().total_seconds() == 0

    async def test_complete_event_carries_state_counts_and_a_numeric_duration(self, order_manager, audit, clock) -> None:
        await make(order_manager, audit, clock).execute_emergency_liquidation("test")
        complete = events(audit)[-1].details
        assert complete["state"] == "COMPLETED"
        assert (complete["positions_closed"], complete["positions_failed"], complete["orders_cancelled"]) == (2, 0, 2)
        assert isinstance(complete["duration_seconds"], float)

    async def test_audit_write_failure_never_stops_the_liquidation(self, book, order_manager, clock) -> None:
        broken = AuditLogger("/dev/full")  # every write fails with ENOSPC
        manager = make(order_manager, broken, clock)
        result = await manager.execute_emergency_liquidation("test")
        assert result.state is LiquidationState.COMPLETED and book.positions() == []
        assert broken.write_errors > 0
        assert manager.get_metrics()["audit_write_errors"] == broken.write_errors

    async def test_an_audit_logger_that_raises_is_counted_not_fatal(self, book, order_manager, clock) -> None:
        class Exploding:
            def log(self, *args: object) -> None:
                raise RuntimeError("disk on fire")

        manager = make(order_manager, Exploding(), clock)
        result = await manager.execute_emergency_liquidation("test")
        assert result.state is LiquidationState.COMPLETED
        assert manager.get_metrics()["audit_write_errors"] >= 4

    async def test_result_is_json_serialisable(self, order_manager, audit, clock) -> None:
        result = await make(order_manager, audit, clock).execute_emergency_liquidation("test")
        data = json.loads(json.dumps(result.to_dict()))
        assert data["state"] == "COMPLETED" and data["symbols"]["BTCUSDT"]["positions"][0]["status"] == "CLOSED"


class TestMetrics:
    def test_every_field_is_present_from_the_start(self, order_manager, audit) -> None:
        metrics = make(order_manager, audit).get_metrics()
        expected = {
            "total_executions", "executions_by_state", "last_state", "last_execution_time_seconds",
            "average_execution_time_seconds", "max_execution_time_seconds", "execution_time_histogram",
            "success_rate", "positions_closed", "positions_failed", "position_close_success_rate",
            "orders_cancelled", "retries", "audit_write_errors", "in_progress", "in_progress_since",
        }
        assert set(metrics) == expected
        assert metrics["total_executions"] == 0 and metrics["in_progress"] is False and metrics["last_state"] is None
        json.dumps(metrics)

    async def test_metrics_count_runs_states_and_positions(self, faults, order_manager, audit, clock) -> None:
        faults.lock_symbol("ETHUSDT")
        manager = make(order_manager, audit, clock)
        await manager.execute_emergency_liquidation("one")
        await manager.execute_emergency_liquidation("two")
        metrics = manager.get_metrics()
        assert metrics["total_executions"] == 2
        assert metrics["executions_by_state"] == {"COMPLETED": 0, "PARTIAL": 1, "FAILED": 1, "SKIPPED": 0}
        assert (metrics["positions_closed"], metrics["positions_failed"]) == (1, 2)
        assert metrics["position_close_success_rate"] == pytest.approx(1 / 3)
        assert metrics["last_state"] == "FAILED" and metrics["success_rate"] == 0.0

    async def test_in_progress_is_visible_while_running(self, faults, order_manager, audit) -> None:
        faults.hang(endpoint="execute_market_close")
        manager = make(order_manager, audit, timeout_seconds=5.0)
        task = asyncio.create_task(manager.execute_emergency_liquidation("test"))
        assert await asyncio.to_thread(faults.wait_until_hung, 1, 3.0)
        during = manager.get_metrics()
        assert during["in_progress"] is True and during["in_progress_since"] is not None
        faults.release_hangs()
        await task
        after = manager.get_metrics()
        assert after["in_progress"] is False and after["total_executions"] == 1
