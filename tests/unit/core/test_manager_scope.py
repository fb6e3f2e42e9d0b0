"""The engine's reach (issue 14): the whole account by default, an explicit scope reported, unknown never flat.

Unit tests of LiquidationManager over the in-process face (harness.exchanges.sim.memory) with the
suite's ManualClock, so backoff costs no time.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.core.audit import AuditLogger, read_audit
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationState, Status
from harness.core.positions import UnreadablePosition, read_position, read_positions
from harness.exchanges.sim import FaultPlan, InMemoryOrderManager, SimBook
from harness.exchanges.sim.memory import SyncCancelOrderManager

from tests.support.clock import ManualClock


@pytest.fixture
def book() -> SimBook:
    """The issue's account: BTCUSDT long, ETHUSDT short, BNBUSDT long, a limit on BTC, a resting limit on
    flat SOLUSDT and a stop on flat XRPUSDT (algo book)."""
    book = SimBook()
    book.set_position("BTCUSDT", "0.010")
    book.set_position("ETHUSDT", "-1.500")
    book.set_position("BNBUSDT", "2")
    book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "30000", time_in_force="GTC")
    book.place_order("SOLUSDT", "SELL", "LIMIT", "1", "900", time_in_force="GTC")
    book.place_algo_order("XRPUSDT", "SELL", "STOP_MARKET", trigger_price="0.1", close_position=True)
    return book


@pytest.fixture
def audit(tmp_path: Path) -> AuditLogger:
    with AuditLogger(tmp_path / "audit.jsonl") as logger:
        yield logger


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def engine(order_manager: Any, audit: AuditLogger, clock: ManualClock, symbols: Any = None, **config: Any) -> LiquidationManager:
    return LiquidationManager(LiquidationConfig(**config), order_manager, audit, symbols, clock=clock, sleep=clock.sleep)


def trail(audit: AuditLogger) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for record in read_audit(audit.path).records:
        found.setdefault(record.event_type, []).append(record.details)
    return found


class NoSnapshot(SyncCancelOrderManager):
    """A foreign order manager: the three seed methods, no account-wide order discovery."""

    open_order_symbols = None  # type: ignore[assignment]


class ForeignPositions(InMemoryOrderManager):
    """An order manager whose positions read returns whatever the test says (a foreign dialect)."""

    def __init__(self, book: SimBook, reply: Any) -> None:
        super().__init__(book)
        self.reply = reply

    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        return self.reply


class TestWholeAccountByDefault:
    @pytest.mark.parametrize("symbols", [None, []])
    async def test_no_scope_closes_every_position_and_cancels_every_regular_and_algo_order(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock, symbols: Any
    ) -> None:
        result = await engine(InMemoryOrderManager(book), audit, clock, symbols).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED, result.errors
        assert book.positions() == [], "a position off any list survived"
        assert book.open_orders() == [] and book.open_algo_orders() == [], "an order on a flat symbol survived"
        assert set(result.symbols) == {"BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"}
        assert (result.positions_closed, result.orders_cancelled) == (3, 3)
        assert result.order_discovery == "account" and result.out_of_scope == []

    async def test_positions_are_read_once_account_wide(self, book: SimBook, audit: AuditLogger, clock: ManualClock) -> None:
        om = InMemoryOrderManager(book)
        await engine(om, audit, clock, ["BTCUSDT"]).execute_emergency_liquidation("t")
        reads = om.calls_to("get_all_positions")
        assert [r.args["symbols"] for r in reads] == [[]]

    async def test_a_foreign_manager_without_order_discovery_falls_back_and_says_so(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="harness.liquidation"):
            result = await engine(NoSnapshot(book), audit, clock).execute_emergency_liquidation("t")
        assert book.positions() == []
        assert result.order_discovery == "unavailable"
        # the documented fallback: orders on symbols without a position are not found
        assert {o.symbol for o in book.open_orders()} == {"SOLUSDT"}
        assert "ORDER_DISCOVERY_UNAVAILABLE" in trail(audit)
        assert any("cannot list the account's open orders" in r.getMessage() for r in caplog.records)
        assert result.to_dict()["order_discovery"] == "unavailable"

    async def test_an_unreadable_order_snapshot_is_never_completed(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock
    ) -> None:
        faults = FaultPlan()
        faults.error(503, endpoint="GET /fapi/v1/openOrders")
        result = await engine(InMemoryOrderManager(book, faults), audit, clock, max_retries=2).execute_emergency_liquidation("t")
        assert result.state is not LiquidationState.COMPLETED
        assert result.order_discovery == "failed"
        assert any("open orders could not be read account-wide" in e for e in result.errors)
        assert book.positions() == [], "positions are still closed when only order discovery fails"
        assert "OPEN_ORDERS_FETCH_FAILED" in trail(audit)


    async def test_a_hung_order_snapshot_does_not_hold_up_the_known_positions(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock
    ) -> None:
        faults = FaultPlan()
        faults.hang(endpoint="GET /fapi/v1/openOrders")
        try:
            manager = LiquidationManager(LiquidationConfig(timeout_seconds=1.0), InMemoryOrderManager(book, faults), audit)
            result = await manager.execute_emergency_liquidation("t")
        finally:
            faults.release_hangs()
        assert book.positions() == [], "the positions waited for the order snapshot"
        assert result.timed_out and result.state is LiquidationState.PARTIAL
        assert result.positions_closed == 3
        assert result.order_discovery == "failed" and any("not read account-wide before the deadline" in e for e in result.errors)


class TestExplicitScope:
    async def test_outside_the_scope_is_left_alone_and_reported_everywhere(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="harness.liquidation"):
            result = await engine(InMemoryOrderManager(book), audit, clock, ["BTCUSDT", "ETHUSDT"]).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED
        assert [(p["symbol"], p["position_amt"]) for p in book.positions()] == [("BNBUSDT", Decimal("2"))]
        expected = [
            {"symbol": "BNBUSDT", "kind": "position", "position_side": "BOTH", "position_amt": "2"},
            {"symbol": "SOLUSDT", "kind": "orders"},
            {"symbol": "XRPUSDT", "kind": "orders"},
        ]
        assert result.out_of_scope == expected
        assert result.to_dict()["out_of_scope"] == expected
        [event] = trail(audit)["OUT_OF_SCOPE_LEFT_OPEN"]
        assert event["items"] == expected and event["scope"] == ["BTCUSDT", "ETHUSDT"]
        [warning] = [r for r in caplog.records if "OUTSIDE the configured symbols" in r.getMessage()]
        assert warning.levelno == logging.WARNING and "BNBUSDT BOTH 2" in warning.getMessage()

    async def test_a_hung_order_snapshot_does_not_hold_up_a_scoped_run(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock
    ) -> None:
        faults = FaultPlan()
        faults.hang(endpoint="GET /fapi/v1/openOrders")
        try:
            manager = LiquidationManager(LiquidationConfig(timeout_seconds=1.0), InMemoryOrderManager(book, faults), audit,
                                         ["BTCUSDT"])
            result = await manager.execute_emergency_liquidation("t")
        finally:
            faults.release_hangs()
        assert not result.timed_out and result.state is LiquidationState.COMPLETED, result.errors
        assert book.position_amount("BTCUSDT") == 0
        assert "what is open outside the scope could not be listed in time" in result.errors

    async def test_a_scope_covering_everything_reports_nothing(self, book: SimBook, audit: AuditLogger, clock: ManualClock) -> None:
        scope = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT"]
        result = await engine(InMemoryOrderManager(book), audit, clock, scope).execute_emergency_liquidation("t")
        assert result.out_of_scope == [] and "OUT_OF_SCOPE_LEFT_OPEN" not in trail(audit)


class TestUnknownIsNeverFlat:
    @pytest.mark.parametrize(
        ("reply", "why"),
        [
            ([{"symbol": "BNBUSDT", "position_side": "BOTH"}], "no position_amt"),
            ([{"symbol": "BNBUSDT", "position_amt": "lots"}], "not a decimal"),
            ([{"symbol": "BNBUSDT", "position_amt": None}], "not a number"),
            ([{"symbol": "BNBUSDT", "position_amt": "NaN"}], "not a finite"),
            ([{"symbol": "BNBUSDT", "amount": "2", "position_amt": "0"}], "unknown key(s) amount"),
            ([{"symbol": "BNBUSDT", "position_amt": "2", "positionAmt": "2"}], "both position_amt"),
            ([{"symbol": "BNBUSDT", "position_amt": "2", "position_side": "NET"}], "allowed: BOTH, LONG, SHORT"),
            (None, "expected a list"),
            ({"BNBUSDT": "2"}, "expected a list"),
        ],
    )
    async def test_an_entry_the_engine_cannot_read_makes_positions_unknown(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock, reply: Any, why: str
    ) -> None:
        result = await engine(ForeignPositions(book, reply), audit, clock).execute_emergency_liquidation("t")
        assert result.state is not LiquidationState.COMPLETED
        assert result.positions_failed >= 1 and result.positions_unknown
        assert any(why in e for e in result.errors), result.errors
        assert "POSITIONS_UNREADABLE" in trail(audit)

    async def test_readable_entries_are_still_closed_next_to_an_unreadable_one(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock
    ) -> None:
        reply = [{"symbol": "BTCUSDT", "position_amt": Decimal("0.010")}, {"symbol": "BNBUSDT"}]
        result = await engine(ForeignPositions(book, reply), audit, clock).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.PARTIAL
        assert book.position_amount("BTCUSDT") == 0
        assert (result.positions_closed, result.positions_failed, result.positions_unknown) == (1, 1, ["BNBUSDT"])

    async def test_binance_native_rows_are_read_not_skipped(self, book: SimBook, audit: AuditLogger, clock: ManualClock) -> None:
        reply = [
            {"symbol": "BNBUSDT", "positionAmt": "2", "positionSide": "BOTH", "markPrice": "600", "breakEvenPrice": "0"},
            {"symbol": "ETHUSDT", "positionAmt": "-1.500", "positionSide": "BOTH"},
            {"symbol": "SOLUSDT", "positionAmt": "0.000", "positionSide": "BOTH"},
        ]
        om = ForeignPositions(book, reply)
        result = await engine(om, audit, clock).execute_emergency_liquidation("t")
        assert result.state is LiquidationState.COMPLETED, result.errors
        closes = {(c.symbol, c.args["side"], Decimal(str(c.args["quantity"]))) for c in om.calls_to("execute_market_close")}
        assert closes == {("BNBUSDT", "SELL", Decimal("2")), ("ETHUSDT", "BUY", Decimal("1.500"))}

    def test_the_reader_refuses_a_hedge_leg_whose_sign_contradicts_its_side(self) -> None:
        with pytest.raises(UnreadablePosition, match="sign contradicts side") as info:
            read_position({"symbol": "BTCUSDT", "position_amt": "-1", "position_side": "LONG"})
        assert info.value.symbol == "BTCUSDT"
        entries, problems = read_positions([{"symbol": "BTCUSDT", "position_amt": "0"}, True])
        assert entries == [] and len(problems) == 1


class TestErrorsNameTheFault:
    async def test_a_cancel_never_attempted_is_an_error_not_a_silent_partial(
        self, book: SimBook, audit: AuditLogger, clock: ManualClock
    ) -> None:
        class SkipsCancels(LiquidationManager):  # a planted fault: the engine forgets to cancel
            async def _cancel(self, run: Any, outcome: Any, executor: Any) -> None:
                return None

        manager = SkipsCancels(LiquidationConfig(), InMemoryOrderManager(book), audit, ["BTCUSDT"], clock=clock, sleep=clock.sleep)
        result = await manager.execute_emergency_liquidation("t")
        assert result.state is LiquidationState.PARTIAL
        assert result.symbols["BTCUSDT"].cancel_status is Status.PENDING
        assert "BTCUSDT cancel: never attempted" in result.errors
