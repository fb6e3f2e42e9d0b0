"""The simulator's dead-man's switch ticker sleeps while no switch is armed and wakes when one is.

Arming from any thread (the control API, the in-memory face, HTTP) must still fire the switch; a
ticker that missed the wake-up would leave the orders open and these waits would time out.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from harness.exchanges.sim import BinanceSimulator, SimBook
from harness.exchanges.sim._num import floor_to_step


def _seed(sim: BinanceSimulator, symbol: str) -> None:
    """One resting BUY order, well under the mark price."""
    spec = sim.book.spec(symbol)
    price = floor_to_step(sim.book.mark_price(symbol) * Decimal("0.8"), spec.tick_size)
    sim.place_order(symbol, "BUY", "LIMIT", "1", price, time_in_force="GTC")
    assert len(sim.book.open_orders(symbol)) == 1


def test_a_switch_armed_through_the_book_from_another_thread_fires() -> None:
    with BinanceSimulator(SimBook(["BTCUSDT", "ETHUSDT"])) as sim:
        _seed(sim, "BTCUSDT")
        arm = threading.Thread(target=sim.book.arm_countdown, args=("BTCUSDT", 50))
        arm.start()
        arm.join()
        assert sim.wait_for_countdown("BTCUSDT", timeout=5.0) == 1
        assert sim.book.open_orders("BTCUSDT") == []


def test_switches_armed_one_after_another_each_fire() -> None:
    with BinanceSimulator(SimBook(["BTCUSDT", "ETHUSDT"])) as sim:
        _seed(sim, "BTCUSDT")
        _seed(sim, "ETHUSDT")
        sim.book.arm_countdown("BTCUSDT", 30)
        assert sim.wait_for_countdown("BTCUSDT", timeout=5.0) == 1
        sim.book.arm_countdown("ETHUSDT", 30)  # armed after the ticker went back to sleep
        assert sim.wait_for_countdown("ETHUSDT", timeout=5.0) == 1


def test_a_disarmed_switch_does_not_fire() -> None:
    with BinanceSimulator(SimBook(["BTCUSDT", "ETHUSDT"])) as sim:
        _seed(sim, "BTCUSDT")
        _seed(sim, "ETHUSDT")
        sim.book.arm_countdown("BTCUSDT", 60_000)
        sim.book.arm_countdown("BTCUSDT", 0)
        sim.book.arm_countdown("ETHUSDT", 30)  # a later switch that does fire bounds the wait
        assert sim.wait_for_countdown("ETHUSDT", timeout=5.0) == 1
        assert [symbol for symbol, _ in sim.countdowns_fired] == ["ETHUSDT"]
        assert len(sim.book.open_orders("BTCUSDT")) == 1
