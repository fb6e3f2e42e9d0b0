"""The seam's optional capabilities (harness.core.ports): each is used when present, and the engine,
the bot's dead-man's switch and the port check fall back or refuse clearly when it is absent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.bot.deadman import DeadMansSwitch
from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationState
from harness.core.ports import AuditSink, SupportsWriteErrors, capabilities_of, describe_order_manager
from harness.exchanges.sim import FaultPlan, InMemoryOrderManager, SimBook
from harness.exchanges.sim.memory import SyncCancelOrderManager

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.fixture
def book() -> SimBook:
    book = SimBook()
    book.set_position("BTCUSDT", "0.010")
    for symbol in SYMBOLS:
        spec = book.spec(symbol)
        bid = (spec.mark_price * Decimal("0.8") / spec.tick_size).to_integral_value() * spec.tick_size
        book.place_order(symbol, "BUY", "LIMIT", spec.min_qty * 100, bid, time_in_force="GTC")
    return book


@pytest.fixture
def faults() -> Iterator[FaultPlan]:
    plan = FaultPlan(seed=3)
    yield plan
    plan.release_hangs()


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLogger]:
    with AuditLogger(tmp_path / "audit.jsonl") as logger:
        yield logger


class ThreadRecordingSync(SyncCancelOrderManager):
    """The sync-only face, noting which thread each cancel ran on."""

    def __init__(self, book: SimBook) -> None:
        super().__init__(book)
        self.cancel_threads: list[threading.Thread] = []

    def cancel_all_orders(self, symbol: str) -> int:
        self.cancel_threads.append(threading.current_thread())
        return super().cancel_all_orders(symbol)


class TestAsyncCancel:
    async def test_present_the_engine_awaits_it_and_never_calls_the_sync_cancel(self, book: SimBook,
                                                                              audit: AuditLogger) -> None:
        face = InMemoryOrderManager(book)
        result = await LiquidationManager(LiquidationConfig(), face, audit, SYMBOLS).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED and result.orders_cancelled == 3
        assert sorted(c.symbol for c in face.calls_to("cancel_all_orders_async")) == sorted(SYMBOLS)
        assert face.calls_to("cancel_all_orders") == []
        assert book.open_orders() == []

    async def test_absent_the_engine_runs_the_sync_cancel_in_a_worker_thread(self, book: SimBook,
                                                                            audit: AuditLogger) -> None:
        face = ThreadRecordingSync(book)
        result = await LiquidationManager(LiquidationConfig(), face, audit, SYMBOLS).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED and result.orders_cancelled == 3
        assert sorted(c.symbol for c in face.calls_to("cancel_all_orders")) == sorted(SYMBOLS)
        assert len(face.cancel_threads) == 3
        assert all(thread is not threading.main_thread() and thread is not threading.current_thread()
                   for thread in face.cancel_threads)

    async def test_async_cancel_failures_are_retried_like_sync_ones(self, book: SimBook, faults: FaultPlan,
                                                                    audit: AuditLogger) -> None:
        faults.error(503, endpoint="cancel_all_orders", symbol="SOLUSDT", times=2)
        face = InMemoryOrderManager(book, faults)
        manager = LiquidationManager(LiquidationConfig(retry_delay_seconds=0.1), face, audit, SYMBOLS)
        result = await manager.execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert len(face.calls_to("cancel_all_orders_async", "SOLUSDT")) == 3


class TestAuditSink:
    async def test_a_sink_that_counts_its_failed_writes_adds_them_to_the_metrics(self, book: SimBook) -> None:
        broken = AuditLogger("/dev/full")
        assert isinstance(broken, AuditSink) and isinstance(broken, SupportsWriteErrors)
        manager = LiquidationManager(LiquidationConfig(), InMemoryOrderManager(book), broken, SYMBOLS)
        await manager.execute_emergency_liquidation("t")
        assert broken.write_errors > 0
        assert manager.get_metrics()["audit_write_errors"] == broken.write_errors

    async def test_a_sink_without_a_count_is_written_to_and_counts_nothing_it_did_not_see(self, book: SimBook) -> None:
        class ListSink:
            def __init__(self) -> None:
                self.events: list[str] = []

            def log(self, event_type: object, correlation_id: str | None, details: object = None) -> bool:
                self.events.append(str(event_type))
                return True

        sink = ListSink()
        assert isinstance(sink, AuditSink) and not isinstance(sink, SupportsWriteErrors)
        manager = LiquidationManager(LiquidationConfig(), InMemoryOrderManager(book), sink, SYMBOLS)
        await manager.execute_emergency_liquidation("t")
        assert sink.events[0] == "LIQUIDATION_START" and sink.events[-1] == "LIQUIDATION_COMPLETE"
        assert manager.get_metrics()["audit_write_errors"] == 0

    def test_something_that_is_not_a_sink_is_refused_naming_the_argument(self, book: SimBook) -> None:
        with pytest.raises(TypeError, match=r"audit_logger=.*AuditSink"):
            LiquidationManager(LiquidationConfig(), InMemoryOrderManager(book), "audit.jsonl", SYMBOLS)  # type: ignore[arg-type]


class TestPortCheck:
    def test_a_capability_with_a_sync_method_is_reported(self, book: SimBook) -> None:
        class SyncWarmUp(InMemoryOrderManager):
            def warm_up(self, *, connections: int = 0) -> None:
                return None

            async def close(self) -> None:
                return None

        face = SyncWarmUp(book)
        assert "lifecycle" in capabilities_of(face)
        assert describe_order_manager(face) == ["warm_up: must be async (optional capability SupportsLifecycle)"]


class TestCountdown:
    async def test_the_switch_arms_and_disarms_the_in_process_books_countdown(self, book: SimBook) -> None:
        switch = DeadMansSwitch(InMemoryOrderManager(book), SYMBOLS, countdown_seconds=30, interval_seconds=10)
        assert await switch.arm_once() == SYMBOLS
        deadline = book.next_countdown_deadline()
        assert deadline is not None and deadline >= book.now_ms() + 29_000
        assert await switch.stop() is True
        assert book.next_countdown_deadline() is None

    def test_the_switch_refuses_an_order_manager_without_the_countdown(self) -> None:
        class NoCountdown:
            pass

        with pytest.raises(TypeError, match=r"armer=.*SupportsCountdown"):
            DeadMansSwitch(NoCountdown(), SYMBOLS, countdown_seconds=30, interval_seconds=10)  # type: ignore[arg-type]
