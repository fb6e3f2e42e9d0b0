"""InMemoryOrderManager (the in-process face) and the FaultPlan it shares with the HTTP face."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.core.context import current_correlation_id
from harness.core.errors import (
    AmbiguousExchangeError,
    ConfigError,
    RetryableExchangeError,
    TerminalExchangeError,
)
from harness.core.ports import (
    OrderExecutionManager,
    SupportsAsyncCancel,
    SupportsCountdown,
    SupportsLifecycle,
    capabilities_of,
    describe_order_manager,
)
from harness.exchanges.sim import FaultPlan, FaultRule, InMemoryOrderManager, SimBook
from harness.exchanges.sim.memory import SyncCancelOrderManager


@pytest.fixture
def book() -> SimBook:
    return SimBook()


@pytest.fixture
def faults() -> Iterator[FaultPlan]:
    plan = FaultPlan(seed=42)
    yield plan
    plan.release_hangs()


@pytest.fixture
def manager(book: SimBook, faults: FaultPlan) -> InMemoryOrderManager:
    return InMemoryOrderManager(book, faults)


class TestPort:
    def test_manager_conforms_to_the_order_execution_manager_port(self, manager: InMemoryOrderManager) -> None:
        assert describe_order_manager(manager) == []
        assert isinstance(manager, OrderExecutionManager)

    async def test_positions_come_back_in_the_port_shape_with_decimal_amounts(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "-0.010")
        (position,) = await manager.get_all_positions(["BTCUSDT", "ETHUSDT"])
        assert position["symbol"] == "BTCUSDT"
        assert position["position_amt"] == Decimal("-0.010") and isinstance(position["position_amt"], Decimal)
        assert position["position_side"] == "BOTH"
        assert position["mark_price"] == Decimal("64000.10")

    async def test_empty_symbol_list_asks_for_every_position(self, book: SimBook,
                                                            manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        book.set_position("DOGEUSDT", "-100")
        assert {p["symbol"] for p in await manager.get_all_positions([])} == {"BTCUSDT", "DOGEUSDT"}
        assert {p["symbol"] for p in await manager.get_all_positions(["DOGEUSDT", "NOPEUSDT"])} == {"DOGEUSDT"}

    def test_cancel_all_orders_is_synchronous_and_counts_regular_and_algo_orders(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        book.place_algo_order("BTCUSDT", "BUY", "STOP_MARKET", quantity="0.010", trigger_price="70000")
        assert manager.cancel_all_orders("BTCUSDT") == 2
        assert manager.cancel_all_orders("BTCUSDT") == 0
        assert book.open_orders() == [] and book.open_algo_orders() == []

    def test_cancel_on_an_invalid_symbol_is_terminal(self, manager: InMemoryOrderManager) -> None:
        with pytest.raises(TerminalExchangeError) as info:
            manager.cancel_all_orders("NOPEUSDT")
        assert info.value.code == -1121


class TestCapabilities:
    def test_the_face_offers_async_cancel_and_countdown_but_no_lifecycle(self, manager: InMemoryOrderManager) -> None:
        assert isinstance(manager, SupportsAsyncCancel) and isinstance(manager, SupportsCountdown)
        assert not isinstance(manager, SupportsLifecycle)
        assert capabilities_of(manager) == ["async_cancel", "countdown", "order_snapshot"]

    def test_the_sync_cancel_variant_switches_the_async_cancel_off(self, book: SimBook) -> None:
        sync_only = SyncCancelOrderManager(book)
        assert not isinstance(sync_only, SupportsAsyncCancel)
        assert capabilities_of(sync_only) == ["countdown", "order_snapshot"] and describe_order_manager(sync_only) == []

    async def test_async_cancel_counts_regular_and_algo_orders_like_the_sync_one(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        book.place_algo_order("BTCUSDT", "BUY", "STOP_MARKET", quantity="0.010", trigger_price="70000")
        assert await manager.cancel_all_orders_async("BTCUSDT") == 2
        assert await manager.cancel_all_orders_async("BTCUSDT") == 0
        assert book.open_orders() == [] and book.open_algo_orders() == []
        assert [c.method for c in manager.calls] == ["cancel_all_orders_async"] * 2

    async def test_async_cancel_answers_to_the_cancel_fault_rules(self, faults: FaultPlan,
                                                                  manager: InMemoryOrderManager) -> None:
        faults.error(503, endpoint="cancel_all_orders", symbol="BTCUSDT", times=1)
        with pytest.raises(RetryableExchangeError):
            await manager.cancel_all_orders_async("BTCUSDT")
        assert await manager.cancel_all_orders_async("BTCUSDT") == 0
        with pytest.raises(TerminalExchangeError) as info:
            await manager.cancel_all_orders_async("NOPEUSDT")
        assert info.value.code == -1121

    async def test_countdown_arms_the_books_switch_which_cancels_when_due_and_zero_disarms(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        before = book.now_ms()
        assert await manager.countdown_cancel_all("BTCUSDT", 30_000) == {"symbol": "BTCUSDT", "countdownTime": "30000"}
        deadline = book.next_countdown_deadline()
        assert deadline is not None and deadline >= before + 30_000
        assert book.run_due_countdowns(deadline - 1) == {} and len(book.open_orders()) == 1
        assert book.run_due_countdowns(deadline) == {"BTCUSDT": 1} and book.open_orders() == []
        await manager.countdown_cancel_all("ETHUSDT", 30_000)
        await manager.countdown_cancel_all("ETHUSDT", 0)
        assert book.next_countdown_deadline() is None
        assert manager.calls_to("countdown_cancel_all", "ETHUSDT")[-1].args == {"countdown_ms": 0}

    async def test_countdown_refuses_a_bad_time_and_answers_to_the_http_endpoints_fault_rules(
            self, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        for bad in (-1, 1.5, "30000", True):
            with pytest.raises(TerminalExchangeError) as info:
                await manager.countdown_cancel_all("BTCUSDT", bad)  # type: ignore[arg-type]
            assert info.value.code == -1130
        faults.error(503, endpoint="POST /fapi/v1/countdownCancelAll", times=1)
        with pytest.raises(RetryableExchangeError):
            await manager.countdown_cancel_all("BTCUSDT", 30_000)
        assert (await manager.countdown_cancel_all("BTCUSDT", 30_000))["countdownTime"] == "30000"


class TestMarketClose:
    async def test_close_with_a_float_quantity_rounds_down_to_the_step(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.012")
        result = await manager.execute_market_close("BTCUSDT", "SELL", 0.0129999)
        assert result["requested_qty"] == Decimal("0.012")
        assert result["executed_qty"] == Decimal("0.012")
        assert result["status"] == "FILLED"
        assert result["avg_price"] == Decimal("64000.10")
        assert book.positions() == []
        assert all(f.reduce_only for f in book.fill_log)

    async def test_close_above_market_max_is_split_into_several_orders(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "-250.000")
        result = await manager.execute_market_close("BTCUSDT", "BUY", Decimal("250.000"))
        assert [f.qty for f in book.fill_log] == [Decimal("120"), Decimal("120"), Decimal("10.000")]
        assert len(result["order_ids"]) == 3 and len(set(result["client_order_ids"])) == 3
        assert result["executed_qty"] == Decimal("250.000")

    async def test_close_in_hedge_mode_uses_position_side_inferred_from_side(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.set_hedge_mode(True)
        book.set_position("ETHUSDT", "1.000", "LONG")
        book.set_position("ETHUSDT", "-2.000", "SHORT")
        await manager.execute_market_close("ETHUSDT", "SELL", Decimal("1.000"))
        assert [(f.position_side, f.reduce_only) for f in book.fill_log] == [("LONG", False)]
        assert book.position_amount("ETHUSDT", "SHORT") == Decimal("-2.000")

    async def test_close_larger_than_the_position_fills_only_the_position(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.set_position("ETHUSDT", "0.400")
        result = await manager.execute_market_close("ETHUSDT", "SELL", Decimal("1.000"))
        assert (result["status"], result["executed_qty"]) == ("PARTIALLY_FILLED", Decimal("0.400"))
        assert book.positions() == []

    async def test_close_with_nothing_to_reduce_is_retryable_2022(self, manager: InMemoryOrderManager) -> None:
        with pytest.raises(RetryableExchangeError) as info:
            await manager.execute_market_close("ETHUSDT", "SELL", Decimal("1.000"))
        assert info.value.code == -2022

    async def test_quantity_that_rounds_to_zero_is_terminal_and_names_it(
            self, manager: InMemoryOrderManager) -> None:
        with pytest.raises(TerminalExchangeError, match="quantity=0.0004"):
            await manager.execute_market_close("BTCUSDT", "SELL", 0.0004)

    async def test_client_order_ids_carry_the_runs_correlation_id(
            self, book: SimBook, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        token = current_correlation_id.set("run-abc123")
        try:
            result = await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))
        finally:
            current_correlation_id.reset(token)
        assert result["client_order_ids"][0].startswith("lq-run-abc123-")

    async def test_without_reduce_only_a_stale_close_flips_the_position(self, book: SimBook) -> None:
        manager = InMemoryOrderManager(book, reduce_only=False)
        book.set_position("ETHUSDT", "0.400")
        await manager.execute_market_close("ETHUSDT", "SELL", Decimal("1.000"))
        assert book.position_amount("ETHUSDT") == Decimal("-0.600")


class TestFaults:
    async def test_error_fires_the_first_n_times_then_the_close_succeeds(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        faults.error(503, endpoint="execute_market_close", symbol="BTCUSDT", times=2)
        for _ in range(2):
            with pytest.raises(RetryableExchangeError, match="Service Unavailable"):
                await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))
        assert book.fill_log == []
        assert (await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010")))["status"] == "FILLED"

    async def test_locked_symbol_rejects_terminally_while_others_close(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        book.set_position("ETHUSDT", "0.100")
        faults.lock_symbol("ETHUSDT")
        await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))
        for _ in range(2):
            with pytest.raises(TerminalExchangeError) as info:
                await manager.execute_market_close("ETHUSDT", "SELL", Decimal("0.100"))
        assert info.value.code == -1122 and info.value.symbol == "ETHUSDT"
        assert [p["symbol"] for p in await manager.get_all_positions([])] == ["ETHUSDT"]

    @pytest.mark.parametrize("code", [None, -1007], ids=["503-unknown", "1007-timeout"])
    async def test_unknown_status_is_ambiguous_but_the_order_did_execute(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager, code: int | None) -> None:
        book.set_position("BTCUSDT", "0.010")
        faults.unknown_status_executed(code=code, times=1)
        with pytest.raises(AmbiguousExchangeError):
            await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))
        assert book.positions() == []
        assert len(book.fill_log) == 1

    @pytest.mark.parametrize(("status", "code", "expected"), [
        (503, None, RetryableExchangeError), (None, -1021, RetryableExchangeError),
        (None, -1008, RetryableExchangeError), (418, None, RetryableExchangeError),
        (None, -2015, TerminalExchangeError), (None, -2019, TerminalExchangeError),
        (None, -1006, AmbiguousExchangeError),
    ], ids=["503", "1021", "1008", "418", "2015", "2019", "1006"])
    async def test_injected_errors_map_to_the_engines_error_classes(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager, status: int | None,
            code: int | None, expected: type) -> None:
        book.set_position("BTCUSDT", "0.010")
        faults.error(status, code, endpoint="new_order")
        with pytest.raises(expected) as info:
            await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010"))
        assert type(info.value) is expected
        assert book.fill_log == []

    async def test_partial_fill_fault_reports_partially_filled(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        book.set_position("ETHUSDT", "1.000")
        faults.partial_fill("0.25", symbol="ETHUSDT")
        result = await manager.execute_market_close("ETHUSDT", "SELL", Decimal("1.000"))
        assert (result["status"], result["executed_qty"]) == ("PARTIALLY_FILLED", Decimal("0.250"))

    async def test_rate_limit_error_carries_retry_after(self, faults: FaultPlan,
                                                        manager: InMemoryOrderManager) -> None:
        faults.error(429, -1003, retry_after=2, endpoint="positions")
        with pytest.raises(RetryableExchangeError) as info:
            await manager.get_all_positions([])
        assert (info.value.retry_after, info.value.status, info.value.code) == (2, 429, -1003)

    async def test_latency_delays_the_order_so_a_deadline_cuts_it_off_before_sending(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        faults.latency(30.0, endpoint="new_order")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010")), 0.05)
        assert book.orders() == []

    async def test_hung_close_waits_for_release_without_blocking_the_loop(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        faults.hang(endpoint="execute_market_close", times=1)
        task = asyncio.create_task(manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010")))
        assert await asyncio.to_thread(faults.wait_until_hung, 1, 5.0)
        assert await manager.get_all_positions([]) != []  # the loop still serves other calls
        assert faults.release_hangs() == 1
        result = await asyncio.wait_for(task, 5.0)
        assert result["status"] == "FILLED"

    def test_hung_cancel_blocks_its_thread_until_released(self, book: SimBook, faults: FaultPlan,
                                                          manager: InMemoryOrderManager) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        faults.hang(endpoint="cancel_all_orders")
        results: list[int] = []
        thread = threading.Thread(target=lambda: results.append(manager.cancel_all_orders("BTCUSDT")))
        thread.start()
        assert faults.wait_until_hung(1, 5.0)
        assert results == [] and len(book.open_orders()) == 1
        faults.release_hangs()
        thread.join(timeout=5.0)
        assert results == [1]

    async def test_call_log_proves_no_close_was_requested(self, book: SimBook,
                                                          manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        await manager.get_all_positions(["BTCUSDT"])
        manager.cancel_all_orders("BTCUSDT")
        assert [c.method for c in manager.calls] == ["get_all_positions", "cancel_all_orders"]
        assert manager.calls_to("execute_market_close") == []

    async def test_http_only_faults_do_not_touch_the_in_memory_face(
            self, book: SimBook, faults: FaultPlan, manager: InMemoryOrderManager) -> None:
        book.set_position("BTCUSDT", "0.010")
        faults.connection_reset()
        faults.html_body()
        assert (await manager.execute_market_close("BTCUSDT", "SELL", Decimal("0.010")))["status"] == "FILLED"
        assert faults.fired() == 0


class TestFaultPlan:
    def test_same_seed_gives_the_same_random_fault_sequence(self) -> None:
        def sequence(seed: int) -> list[bool]:
            plan = FaultPlan(seed=seed)
            plan.error(503, probability=0.5)
            return [plan.draw(["execute_market_close", "new_order"], "BTCUSDT").outcome is not None
                    for _ in range(40)]

        assert sequence(7) == sequence(7)
        assert sequence(7) != sequence(8)
        assert 5 < sum(sequence(7)) < 35

    def test_rule_matches_by_category_exact_name_and_symbol(self) -> None:
        plan = FaultPlan()
        plan.error(503, endpoint="POST /fapi/v1/order", symbol="ETHUSDT")
        order_call = ["POST /fapi/v1/order", "/fapi/v1/order", "new_order"]
        assert plan.draw(order_call, "BTCUSDT").outcome is None
        assert plan.draw(["DELETE /fapi/v1/order", "/fapi/v1/order", "cancel"], "ETHUSDT").outcome is None
        assert plan.draw(order_call, "ETHUSDT").outcome is not None
        assert [(f.call, f.symbol) for f in plan.history] == [("POST /fapi/v1/order", "ETHUSDT")]

    @pytest.mark.parametrize(("rule", "field"), [
        ({"kind": "explode"}, "kind"),
        ({"kind": "latency"}, "seconds"),
        ({"kind": "error", "endpoint": "GET /fapi/v9/nothing", "status": 503}, "endpoint"),
        ({"kind": "error", "times": 0, "status": 503}, "times"),
        ({"kind": "partial_fill", "ratio": "1.5"}, "ratio"),
        ({"kind": "lock_symbol"}, "symbol"),
        ({"kind": "error", "status": 503, "colour": "red"}, "colour"),
    ], ids=["kind", "latency-seconds", "endpoint", "times", "ratio", "lock-symbol", "unknown-field"])
    def test_bad_rule_in_a_file_names_the_field_and_what_is_allowed(self, rule: dict, field: str) -> None:
        with pytest.raises(ConfigError) as info:
            FaultPlan.from_dict({"rules": [{"kind": "hang"}, rule]}, source="plan.json")
        assert info.value.field == f"rules[1].{field}"
        assert info.value.allowed and "plan.json" in str(info.value)

    def test_plan_round_trips_through_a_json_file(self, tmp_path: Path) -> None:
        plan = FaultPlan(seed=3)
        plan.error(429, -1003, retry_after=1, endpoint="new_order", times=2)
        plan.partial_fill("0.5", symbol="ETHUSDT")
        path = tmp_path / "faults.json"
        path.write_text(json.dumps(plan.to_dict()), encoding="utf-8")
        loaded = FaultPlan.from_file(path)
        assert loaded.seed == 3 and loaded.rules == plan.rules

    def test_plan_loads_from_toml(self, tmp_path: Path) -> None:
        path = tmp_path / "faults.toml"
        path.write_text('seed = 5\n[[rules]]\nkind = "lock_symbol"\nsymbol = "ETHUSDT"\n'
                        '[[rules]]\nkind = "error"\ncode = -1021\ntimes = 3\n', encoding="utf-8")
        plan = FaultPlan.from_file(path)
        assert [r.kind for r in plan.rules] == ["lock_symbol", "error"]
        assert (plan.rules[1].status, plan.rules[1].msg) == (
            400, "Timestamp for this request is outside of the recvWindow.")

    def test_unsupported_file_type_is_a_config_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="a .json or .toml"):
            FaultPlan.from_file(tmp_path / "faults.yaml")

    def test_rule_objects_validate_on_construction(self) -> None:
        with pytest.raises(ConfigError, match="probability=2"):
            FaultRule("error", status=503, probability=2)
