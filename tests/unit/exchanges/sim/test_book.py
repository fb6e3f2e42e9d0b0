"""SimBook: the simulator's state model and its Binance order rules."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from harness.exchanges import sim
from harness.exchanges.sim import SimBook, SimBookError


class FakeClock:
    """An exchange clock the test moves by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def book() -> SimBook:
    return SimBook(wallet_balance="10000")


def rejects(code: int) -> pytest.RaisesContext:
    return pytest.raises(SimBookError, match=f"^{code}:")


def test_package_all_is_sorted_and_importable() -> None:
    assert sim.__all__ == sorted(sim.__all__)
    for name in sim.__all__:
        assert getattr(sim, name) is not None


class TestSymbols:
    def test_default_book_trades_a_dozen_real_usdm_symbols(self, book: SimBook) -> None:
        assert {"BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "TRXUSDT"} <= set(book.symbols)
        assert len(book.symbols) >= 12

    def test_btc_filters_look_like_binance(self, book: SimBook) -> None:
        info = book.spec("BTCUSDT").exchange_info()
        filters = {f["filterType"]: f for f in info["filters"]}
        assert filters["LOT_SIZE"]["stepSize"] == "0.001"
        assert filters["MARKET_LOT_SIZE"]["maxQty"] == "120"
        assert filters["MIN_NOTIONAL"]["notional"] == "100"
        assert filters["PRICE_FILTER"]["tickSize"] == "0.1"
        assert info["quantityPrecision"] == 3

    def test_unknown_symbol_is_rejected_with_1121(self, book: SimBook) -> None:
        with rejects(-1121):
            book.place_order("FOOUSDT", "BUY", "MARKET", "1")

    def test_book_can_be_limited_to_named_default_symbols(self) -> None:
        assert SimBook(["ETHUSDT", "BTCUSDT"]).symbols == ("ETHUSDT", "BTCUSDT")

    def test_unknown_symbol_name_in_constructor_names_the_argument(self) -> None:
        with pytest.raises(ValueError, match="symbols: 'NOPE'"):
            SimBook(["NOPE"])


class TestMarketOrders:
    def test_market_order_fills_at_mark_price_and_is_logged(self, book: SimBook) -> None:
        book.set_mark_price("ETHUSDT", "3000.50")
        order = book.place_order("ETHUSDT", "BUY", "MARKET", "0.010", client_order_id="t-1")
        assert order.status == "FILLED"
        assert order.avg_price == Decimal("3000.50")
        assert book.position_amount("ETHUSDT") == Decimal("0.010")
        (fill,) = book.fill_log
        assert (fill.symbol, fill.side, fill.qty, fill.price, fill.client_order_id) == (
            "ETHUSDT", "BUY", Decimal("0.010"), Decimal("3000.50"), "t-1")
        assert fill.reduce_only is False and fill.position_side == "BOTH"

    def test_reduce_only_close_never_flips_the_position(self, book: SimBook) -> None:
        book.set_position("BTCUSDT", "0.004")
        order = book.place_order("BTCUSDT", "SELL", "MARKET", "0.010", reduce_only=True)
        assert order.executed_qty == Decimal("0.004")
        assert order.status == "EXPIRED"
        assert book.position_amount("BTCUSDT") == 0

    @pytest.mark.parametrize(("position", "side"), [("0.010", "BUY"), ("-0.010", "SELL"), ("0", "SELL")],
                             ids=["would-increase-long", "would-increase-short", "nothing-to-reduce"])
    def test_reduce_only_that_cannot_reduce_is_rejected_with_2022(self, book: SimBook, position: str,
                                                                  side: str) -> None:
        book.set_position("BTCUSDT", position)
        with rejects(-2022):
            book.place_order("BTCUSDT", side, "MARKET", "0.010", reduce_only=True)
        assert book.position_amount("BTCUSDT") == Decimal(position)

    @pytest.mark.parametrize(("quantity", "code"), [
        ("0", -4003), ("-1", -4003), ("0.0015", -1111), ("120.001", -4005), ("abc", -1102), (None, -1102),
    ], ids=["zero", "negative", "off-step", "above-market-max", "malformed", "missing"])
    def test_bad_market_quantity_is_rejected_with_binance_code(self, book: SimBook, quantity: str | None,
                                                               code: int) -> None:
        book.set_position("BTCUSDT", "200")
        with rejects(code):
            book.place_order("BTCUSDT", "SELL", "MARKET", quantity, reduce_only=True)

    def test_quantity_below_min_qty_is_rejected_with_4004(self) -> None:
        spec = sim.SymbolSpec("FOOUSDT", Decimal("0.1"), Decimal("0.001"), Decimal("0.01"), Decimal("10"),
                              Decimal("5"), Decimal("5"), Decimal("100"))
        with rejects(-4004):
            SimBook([spec]).place_order("FOOUSDT", "BUY", "MARKET", "0.005")

    def test_limit_order_may_exceed_the_market_max_quantity(self) -> None:
        book = SimBook(wallet_balance="2000000")  # 500 BTC at 20x needs 1.25M USDT of initial margin
        order = book.place_order("BTCUSDT", "BUY", "LIMIT", "500", "50000.0", time_in_force="GTC")
        assert order.status == "NEW"

    def test_min_notional_applies_to_opening_orders_only(self, book: SimBook) -> None:
        with rejects(-4164):
            book.place_order("BTCUSDT", "BUY", "MARKET", "0.001")
        book.set_position("BTCUSDT", "0.001")
        order = book.place_order("BTCUSDT", "SELL", "MARKET", "0.001", reduce_only=True)
        assert order.status == "FILLED"

    def test_position_side_long_in_one_way_mode_is_rejected_with_4061(self, book: SimBook) -> None:
        with rejects(-4061):
            book.place_order("BTCUSDT", "BUY", "MARKET", "0.010", position_side="LONG")

    def test_conditional_type_on_the_order_endpoint_points_to_the_algo_api(self, book: SimBook) -> None:
        with rejects(-4120):
            book.place_order("BTCUSDT", "SELL", "STOP_MARKET", "0.010")

    def test_duplicate_client_id_is_refused_only_among_open_orders(self, book: SimBook) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000", client_order_id="dup")
        with rejects(-4116):
            book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000", client_order_id="dup")
        book.cancel_all("BTCUSDT")
        assert book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000", client_order_id="dup").status == "NEW"

    def test_client_id_with_illegal_characters_is_rejected_with_1100(self, book: SimBook) -> None:
        with rejects(-1100):
            book.place_order("BTCUSDT", "BUY", "MARKET", "0.010", client_order_id="has space")

    def test_partial_fill_ratio_fills_part_and_expires_the_rest(self, book: SimBook) -> None:
        book.set_position("ETHUSDT", "1.000")
        order = book.place_order("ETHUSDT", "SELL", "MARKET", "1.000", reduce_only=True, fill_ratio=Decimal("0.3"))
        assert (order.status, order.executed_qty) == ("EXPIRED", Decimal("0.300"))
        assert book.position_amount("ETHUSDT") == Decimal("0.700")


class TestLimitOrders:
    def test_limit_rests_until_the_mark_crosses_it_then_fills_at_its_price(self, book: SimBook) -> None:
        order = book.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3100.00", time_in_force="GTC")
        assert [o.order_id for o in book.open_orders("ETHUSDT")] == [order.order_id]
        fills = book.set_mark_price("ETHUSDT", "3099.00")
        assert [(f.qty, f.price) for f in fills] == [(Decimal("0.100"), Decimal("3100.00"))]
        assert book.get_order("ETHUSDT", order.order_id).status == "FILLED"
        assert book.open_orders() == []

    def test_marketable_post_only_order_is_rejected_with_5022(self, book: SimBook) -> None:
        with rejects(-5022):
            book.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3300.00", time_in_force="GTX")
        assert book.orders() == [] and book.fill_log == []

    def test_a_rejected_post_only_order_leaves_no_trace_in_lookups_by_symbol_or_client_id(self, book: SimBook) -> None:
        with rejects(-5022):
            book.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3300.00", time_in_force="GTX", client_order_id="px")
        with rejects(-2013):
            book.get_order("ETHUSDT", client_order_id="px")
        assert book.open_orders("ETHUSDT") == [] and book.cancel_all("ETHUSDT") == 0
        resting = book.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3100.00", client_order_id="px")
        assert book.get_order("ETHUSDT", client_order_id="px").order_id == resting.order_id

    def test_client_id_lookups_find_the_latest_order_of_that_symbol_only(self, book: SimBook) -> None:
        first = book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000", client_order_id="same")
        book.cancel_order("BTCUSDT", first.order_id)
        second = book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000", client_order_id="same")
        assert book.get_order("BTCUSDT", client_order_id="same").order_id == second.order_id
        with rejects(-2013):
            book.get_order("ETHUSDT", client_order_id="same")
        assert [o.order_id for o in book.open_orders("BTCUSDT")] == [second.order_id]
        assert book.open_orders("ETHUSDT") == []

    def test_price_off_the_tick_is_rejected_with_4014(self, book: SimBook) -> None:
        with rejects(-4014):
            book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000.05", time_in_force="GTC")

    def test_cancel_then_cancel_again_reports_unknown_order(self, book: SimBook) -> None:
        order = book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000", client_order_id="c1")
        assert book.cancel_order("BTCUSDT", client_order_id="c1").status == "CANCELED"
        with rejects(-2011):
            book.cancel_order("BTCUSDT", order.order_id)

    def test_query_of_an_unknown_order_is_rejected_with_2013(self, book: SimBook) -> None:
        with rejects(-2013):
            book.get_order("BTCUSDT", client_order_id="never-sent")

    def test_cancel_all_counts_only_that_symbols_open_orders(self, book: SimBook) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        book.place_order("BTCUSDT", "SELL", "LIMIT", "0.010", "70000")
        book.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3000")
        assert book.cancel_all("BTCUSDT") == 2
        assert book.cancel_all("BTCUSDT") == 0
        assert [o.symbol for o in book.open_orders()] == ["ETHUSDT"]


class TestHedgeMode:
    def test_switching_mode_with_a_position_is_refused_with_4068(self, book: SimBook) -> None:
        book.set_position("BTCUSDT", "0.010")
        with rejects(-4068):
            book.set_hedge_mode(True)
        assert book.hedge_mode is False

    def test_switching_mode_with_open_orders_is_refused_with_4067(self, book: SimBook) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        with rejects(-4067):
            book.set_hedge_mode(True)

    def test_hedge_mode_requires_position_side_and_refuses_reduce_only(self, book: SimBook) -> None:
        book.set_hedge_mode(True)
        with rejects(-4061):
            book.place_order("BTCUSDT", "BUY", "MARKET", "0.010")
        with rejects(-1106):
            book.place_order("BTCUSDT", "SELL", "MARKET", "0.010", position_side="LONG", reduce_only=True)

    def test_sell_long_closes_the_long_leg_and_never_opens_a_short(self, book: SimBook) -> None:
        book.set_hedge_mode(True)
        book.set_position("BTCUSDT", "0.020", "LONG")
        book.set_position("BTCUSDT", "-0.050", "SHORT")
        order = book.place_order("BTCUSDT", "SELL", "MARKET", "0.030", position_side="LONG")
        assert order.executed_qty == Decimal("0.020")
        assert book.position_amount("BTCUSDT", "LONG") == 0
        assert book.position_amount("BTCUSDT", "SHORT") == Decimal("-0.050")

    def test_closing_an_empty_leg_is_rejected_with_2022(self, book: SimBook) -> None:
        book.set_hedge_mode(True)
        with rejects(-2022):
            book.place_order("BTCUSDT", "BUY", "MARKET", "0.010", position_side="SHORT")

    def test_positions_lists_hedge_legs_separately(self, book: SimBook) -> None:
        book.set_hedge_mode(True)
        book.set_position("ETHUSDT", "1", "LONG")
        book.set_position("ETHUSDT", "-2", "SHORT")
        assert {(p["position_side"], p["position_amt"]) for p in book.positions()} == {
            ("LONG", Decimal(1)), ("SHORT", Decimal(-2))}

    def test_seeding_a_both_leg_in_hedge_mode_names_the_argument(self, book: SimBook) -> None:
        book.set_hedge_mode(True)
        with pytest.raises(ValueError, match="position_side='BOTH'"):
            book.set_position("ETHUSDT", "1")


class TestAlgoOrders:
    def test_stop_market_close_position_fires_when_the_mark_crosses(self, book: SimBook) -> None:
        book.set_position("BTCUSDT", "0.500")
        algo = book.place_algo_order("BTCUSDT", "SELL", "STOP_MARKET", trigger_price="60000", close_position=True)
        assert book.set_mark_price("BTCUSDT", "60500") == []
        fills = book.set_mark_price("BTCUSDT", "59999.9")
        assert [f.qty for f in fills] == [Decimal("0.500")]
        assert book.get_algo_order(algo.algo_id).algo_status == "FINISHED"
        assert book.positions() == []

    def test_trigger_that_would_fire_at_once_is_rejected_with_2021(self, book: SimBook) -> None:
        with rejects(-2021):
            book.place_algo_order("BTCUSDT", "SELL", "STOP_MARKET", trigger_price="70000", close_position=True)

    def test_algo_orders_live_apart_from_regular_orders(self, book: SimBook) -> None:
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        book.place_algo_order("BTCUSDT", "BUY", "TAKE_PROFIT_MARKET", quantity="0.010", trigger_price="55000")
        assert book.cancel_all("BTCUSDT") == 1
        assert len(book.open_algo_orders("BTCUSDT")) == 1
        assert book.cancel_all_algo("BTCUSDT") == 1
        assert book.open_algo_orders() == []

    def test_cancel_algo_by_client_id_then_query_shows_canceled(self, book: SimBook) -> None:
        book.place_algo_order("ETHUSDT", "BUY", "STOP_MARKET", quantity="0.100", trigger_price="3500",
                              client_algo_id="stop-1")
        book.cancel_algo_order(client_algo_id="stop-1")
        assert book.get_algo_order(client_algo_id="stop-1").algo_status == "CANCELED"
        with rejects(-2011):
            book.cancel_algo_order(client_algo_id="stop-1")


class TestCountdown:
    def test_countdown_cancels_the_symbols_orders_when_it_runs_out(self) -> None:
        clock = FakeClock()
        book = SimBook(clock=clock)
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        book.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "3000")
        book.arm_countdown("BTCUSDT", 1000)
        clock.now += 0.999
        assert book.run_due_countdowns() == {}
        clock.now += 0.001
        assert book.run_due_countdowns() == {"BTCUSDT": 1}
        assert [o.symbol for o in book.open_orders()] == ["ETHUSDT"]

    def test_zero_countdown_disarms_the_switch(self) -> None:
        clock = FakeClock()
        book = SimBook(clock=clock)
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        book.arm_countdown("BTCUSDT", 500)
        book.arm_countdown("BTCUSDT", 0)
        clock.now += 10
        assert book.run_due_countdowns() == {}
        assert book.next_countdown_deadline() is None
        assert len(book.open_orders()) == 1


class TestAccounting:
    def test_closing_a_long_above_entry_realizes_profit_into_the_wallet(self, book: SimBook) -> None:
        book.set_position("ETHUSDT", "2.000", entry_price="3000")
        book.set_mark_price("ETHUSDT", "3100")
        book.place_order("ETHUSDT", "SELL", "MARKET", "2.000", reduce_only=True)
        assert book.fill_log[-1].realized_pnl == Decimal("200")
        assert book.wallet_balance == Decimal("10200")

    def test_adding_to_a_position_averages_the_entry_price(self, book: SimBook) -> None:
        book.set_position("ETHUSDT", "1.000", entry_price="3000")
        book.set_mark_price("ETHUSDT", "3300")
        book.place_order("ETHUSDT", "BUY", "MARKET", "2.000")
        assert book.positions()[0]["entry_price"] == Decimal("3200")

    def test_concurrent_reduce_only_closes_from_threads_never_overclose(self, book: SimBook) -> None:
        book.set_position("SOLUSDT", "50")
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []

        def close() -> None:
            barrier.wait(timeout=5)
            try:
                book.place_order("SOLUSDT", "SELL", "MARKET", "10", reduce_only=True)
            except SimBookError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=close) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=5)
        assert book.position_amount("SOLUSDT") == 0
        assert sum(f.qty for f in book.fill_log) == Decimal("50")
        assert all(exc.code == -2022 for exc in errors)
