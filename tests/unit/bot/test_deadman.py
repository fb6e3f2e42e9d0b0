"""The dead-man's switch (harness.bot.deadman): Binance's countdownCancelAll kept armed while the bot runs.

Layers: the switch against a recording fake (timing, failures, a bounded disarm), against the
embedded exchange through the real adapter (the countdown is armed, refreshed and disarmed on the
book), and the bot as a subprocess: alive, the countdown never runs out; SIGKILLed, the exchange
cancels the orders once the countdown ends (``BinanceSimulator.wait_for_countdown``); a clean exit
disarms. Plus the configuration rules: timing consistency, and the production warning when off.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.bot.deadman import DeadMansSwitch, check_timing
from harness.core.config import LiquidationConfig, load_config
from harness.core.errors import ConfigError, RetryableExchangeError
from harness.core.ports import SupportsCountdown
from harness.core.validation import ConfigValidator, Severity
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.target import TESTNET_KEY_VARS
from harness.testkit import BotContractError, BotProcess

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
COUNTDOWN_SECONDS = 1.0
INTERVAL_SECONDS = 0.2


class FakeArmer:
    """Records every countdownCancelAll; ``fail`` symbols raise, ``hang`` makes every call block."""

    def __init__(self, fail: set[str] | None = None, hang: bool = False) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail = fail or set()
        self.hang = hang

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> dict:
        self.calls.append((symbol, countdown_ms))
        if self.hang:
            await asyncio.Event().wait()
        if symbol in self.fail:
            raise RetryableExchangeError(f"{symbol}: HTTP 503", status=503)
        return {"symbol": symbol, "countdownTime": str(countdown_ms)}


class Ticks:
    """An injected sleep: each call is one tick; the switch's loop stops after ``limit`` ticks."""

    def __init__(self, limit: int) -> None:
        self.slept: list[float] = []
        self.limit = limit
        self.done = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) >= self.limit:
            self.done.set()
            await asyncio.Event().wait()  # park here until stop() cancels the loop


class TestSwitch:
    async def test_arms_every_symbol_then_re_arms_each_interval(self) -> None:
        armer, ticks = FakeArmer(), Ticks(limit=3)
        switch = DeadMansSwitch(armer, SYMBOLS, countdown_seconds=60, interval_seconds=15, sleep=ticks)
        switch.start()
        await asyncio.wait_for(ticks.done.wait(), 5)
        assert armer.calls == [(s, 60000) for s in SYMBOLS] * 3
        assert ticks.slept == [15.0, 15.0, 15.0] and switch.refreshes == 3
        assert await switch.stop() is True
        assert armer.calls[-2:] == [("BTCUSDT", 0), ("ETHUSDT", 0)]

    async def test_a_failed_refresh_is_logged_and_retried_on_the_next_tick(self, caplog: pytest.LogCaptureFixture) -> None:
        armer, ticks = FakeArmer(fail={"ETHUSDT"}), Ticks(limit=2)
        armed: list[list[str]] = []
        switch = DeadMansSwitch(armer, SYMBOLS, countdown_seconds=60, interval_seconds=15, sleep=ticks,
                                on_armed=armed.append)
        switch.start()
        await asyncio.wait_for(ticks.done.wait(), 5)
        assert armer.calls.count(("ETHUSDT", 60000)) == 2 and switch.failures == 2
        assert armed == [["BTCUSDT"]] and switch.refreshes == 0
        assert "dead-man's switch arm ETHUSDT failed" in caplog.text
        await switch.stop()
        assert ("ETHUSDT", 0) not in armer.calls  # never armed, nothing to disarm

    async def test_disarm_is_bounded_when_the_exchange_hangs(self) -> None:
        switch = DeadMansSwitch(FakeArmer(hang=True), SYMBOLS, countdown_seconds=60, interval_seconds=15)
        switch.armed.update(SYMBOLS)
        started = time.monotonic()
        assert await switch.stop(timeout=0.2) is False
        assert time.monotonic() - started < 2.0

    async def test_stop_without_disarm_leaves_the_countdown_running(self) -> None:
        armer, ticks = FakeArmer(), Ticks(limit=1)
        switch = DeadMansSwitch(armer, SYMBOLS, countdown_seconds=60, interval_seconds=15, sleep=ticks)
        switch.start()
        await asyncio.wait_for(ticks.done.wait(), 5)
        await switch.stop(disarm=False)
        assert all(ms == 60000 for _, ms in armer.calls) and not switch.running

    @pytest.mark.parametrize(("countdown", "interval", "field"), [
        pytest.param(0.5, 0.1, "deadman_countdown_seconds", id="countdown-below-one-second"),
        pytest.param(10, 10, "deadman_interval_seconds", id="interval-equal-to-countdown"),
        pytest.param(10, 30, "deadman_interval_seconds", id="interval-longer-than-countdown"),
    ])
    def test_timing_that_would_fire_on_a_live_bot_is_refused(self, countdown: float, interval: float, field: str) -> None:
        with pytest.raises(ConfigError) as info:
            check_timing(countdown, interval)
        assert info.value.field == field

    def test_off_needs_no_timing(self) -> None:
        check_timing(0, 600)
        with pytest.raises(ConfigError):
            DeadMansSwitch(FakeArmer(), SYMBOLS, countdown_seconds=0, interval_seconds=1)


class TestWithoutAScope:
    """No symbol scope (the bot covers the whole account): the switch arms the symbols with open orders,
    read again on every refresh."""

    async def test_arms_the_symbols_with_orders_follows_them_and_disarms_the_dropped(self) -> None:
        books = [{"BTCUSDT"}, {"BTCUSDT", "SOLUSDT"}, {"SOLUSDT"}]
        reads: list[int] = []

        async def discover() -> set[str]:
            reads.append(1)
            return books[min(len(reads), len(books)) - 1]

        armer, ticks, announced = FakeArmer(), Ticks(limit=3), []
        switch = DeadMansSwitch(armer, [], countdown_seconds=60, interval_seconds=15, sleep=ticks,
                                discover=discover, on_armed=announced.append)
        switch.start()
        await asyncio.wait_for(ticks.done.wait(), 5)
        assert armer.calls == [("BTCUSDT", 60000), ("BTCUSDT", 60000), ("SOLUSDT", 60000), ("SOLUSDT", 60000), ("BTCUSDT", 0)]
        assert switch.armed == {"SOLUSDT"} and announced == [["BTCUSDT"]] and len(reads) == 3
        await switch.stop()
        assert armer.calls[-1] == ("SOLUSDT", 0) and switch.armed == set()

    async def test_a_failed_discovery_keeps_what_is_armed_armed(self, caplog: pytest.LogCaptureFixture) -> None:
        reads: list[int] = []

        async def discover() -> set[str]:
            reads.append(1)
            if len(reads) > 1:
                raise RetryableExchangeError("openOrders: HTTP 503", status=503)
            return {"BTCUSDT"}

        armer, ticks = FakeArmer(), Ticks(limit=2)
        switch = DeadMansSwitch(armer, [], countdown_seconds=60, interval_seconds=15, sleep=ticks, discover=discover)
        switch.start()
        await asyncio.wait_for(ticks.done.wait(), 5)
        assert armer.calls == [("BTCUSDT", 60000), ("BTCUSDT", 60000)] and switch.failures == 1
        assert "could not be read" in caplog.text
        await switch.stop()

    async def test_an_account_without_orders_is_announced_as_armed_with_nothing_to_arm(self) -> None:
        async def discover() -> set[str]:
            return set()

        armer, ticks, announced = FakeArmer(), Ticks(limit=1), []
        switch = DeadMansSwitch(armer, [], countdown_seconds=60, interval_seconds=15, sleep=ticks,
                                discover=discover, on_armed=announced.append)
        switch.start()
        await asyncio.wait_for(ticks.done.wait(), 5)
        assert armer.calls == [] and announced == [[]]
        await switch.stop()

    def test_no_symbols_and_no_discovery_is_refused(self) -> None:
        with pytest.raises(ConfigError) as info:
            DeadMansSwitch(FakeArmer(), [], countdown_seconds=60, interval_seconds=15)
        assert info.value.field == "symbols"


class TestAgainstTheEmbeddedExchange:
    async def test_the_adapter_arms_refreshes_and_disarms_the_books_countdown(self) -> None:
        async with BinanceSimulator() as sim, BinanceFuturesOrderManager(
            sim.api_key, sim.api_secret, base_url=sim.base_url
        ) as adapter:
            assert isinstance(adapter, SupportsCountdown)
            switch = DeadMansSwitch(adapter, SYMBOLS, countdown_seconds=30, interval_seconds=10)
            assert await switch.arm_once() == SYMBOLS
            first = sim.book.next_countdown_deadline()
            assert first is not None and first >= sim.book.now_ms() + 29_000
            assert await switch.stop() is True
            assert sim.book.next_countdown_deadline() is None
            sent = [(r.params["symbol"], r.params["countdownTime"]) for r in sim.requests_to("v1/countdownCancelAll")]
            assert sent == [("BTCUSDT", "30000"), ("ETHUSDT", "30000"), ("BTCUSDT", "0"), ("ETHUSDT", "0")]


# -- the bot ----------------------------------------------------------------------------------------
@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as simulator:
        for symbol in SYMBOLS:
            spec = simulator.book.spec(symbol)
            bid = (spec.mark_price * Decimal("0.8") / spec.tick_size).to_integral_value() * spec.tick_size
            simulator.place_order(symbol, "BUY", "LIMIT", spec.min_qty * 100, bid, time_in_force="GTC")
        simulator.book.set_position("BTCUSDT", "0.010")
        yield simulator
        simulator.faults.release_hangs()



def bot_for(sim: BinanceSimulator, tmp_path: Path, *args: str) -> BotProcess:
    keys = {TESTNET_KEY_VARS[0]: sim.api_key, TESTNET_KEY_VARS[1]: sim.api_secret}
    bot = BotProcess(tmp_path / "logs", exchange_url=sim.base_url, symbols=SYMBOLS, env=keys,
                     args=["--deadman-countdown", str(COUNTDOWN_SECONDS), "--deadman-interval", str(INTERVAL_SECONDS),
                           *args])
    return bot


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Poll ``condition`` until true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            return False
        pause.wait(step)
    return True


def arms(sim: BinanceSimulator, symbol: str) -> list[float]:
    """When the exchange received each arming (countdownTime > 0) for ``symbol``."""
    return [r.time for r in sim.requests_to("v1/countdownCancelAll")
            if r.params.get("symbol") == symbol and r.params.get("countdownTime") != "0" and r.status == 200]


class TestBotDeadMansSwitch:
    def test_sigkill_leaves_no_working_order_once_the_countdown_ends(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = bot_for(sim, tmp_path).start()
        assert bot.wait_for_output("DEADMAN ARMED", timeout=10), "the bot never armed its dead-man's switch"
        assert len(sim.book.open_orders()) == 2
        bot.kill()
        for symbol in SYMBOLS:
            assert sim.wait_for_countdown(symbol, timeout=COUNTDOWN_SECONDS + 5) == 1, f"{symbol}: the switch never fired"
        assert sim.book.open_orders() == []
        assert sim.book.position_amount("BTCUSDT") == Decimal("0.010")  # it cancels orders, never closes positions

    def test_a_live_bot_keeps_it_armed_and_a_clean_exit_disarms_it(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = bot_for(sim, tmp_path).start()
        assert bot.wait_for_output("DEADMAN ARMED", timeout=10)
        first = arms(sim, "BTCUSDT")[0]
        lived_past_the_countdown = wait_until(lambda: arms(sim, "BTCUSDT")[-1] - first > COUNTDOWN_SECONDS * 1.5, 10)
        assert lived_past_the_countdown, "the bot stopped re-arming"
        assert sim.countdowns_fired == [] and len(sim.book.open_orders()) == 2
        run = bot.stop()
        assert run.returncode == 0, run.stderr[-2000:]
        assert sim.book.next_countdown_deadline() is None
        last = {r.params["symbol"]: r.params["countdownTime"] for r in sim.requests_to("v1/countdownCancelAll")}
        assert last == {"BTCUSDT": "0", "ETHUSDT": "0"}
        assert "dead-man's switch disarmed" in run.trading_log

    def test_interval_not_shorter_than_the_countdown_exits_two(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = bot_for(sim, tmp_path, "--deadman-interval", "5")
        with pytest.raises(BotContractError, match="(?s)exit code 2.*deadman_interval_seconds"):
            bot.start(timeout=20)
        assert bot.proc is not None and bot.proc.returncode == 2

    def test_off_is_logged_and_nothing_is_armed(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        run = bot_for(sim, tmp_path, "--deadman-countdown", "0").start().stop()
        assert run.returncode == 0
        assert sim.requests_to("v1/countdownCancelAll") == []
        assert "dead-man's switch is OFF" in run.trading_log


class TestValidation:
    def test_off_in_production_is_a_warning(self) -> None:
        report = ConfigValidator("production").validate(LiquidationConfig(deadman_countdown_seconds=0.0))
        (finding,) = [f for f in report.findings if f.field == "deadman_countdown_seconds"]
        assert finding.severity is Severity.WARNING and "dead-man's switch is off in production" in finding.message
        assert report.ready and not ConfigValidator("production", strict=True).validate(
            LiquidationConfig(deadman_countdown_seconds=0.0)).ready

    def test_off_elsewhere_is_not_a_finding(self) -> None:
        report = ConfigValidator("testnet").validate(LiquidationConfig(deadman_countdown_seconds=0.0))
        assert not [f for f in report.findings if f.field == "deadman_countdown_seconds"]

    def test_on_by_default_in_every_profile(self) -> None:
        for environment in ("production", "testnet", "development", "high-latency"):
            config = load_config(environment, environ={})
            assert config.deadman_countdown_seconds > config.deadman_interval_seconds > 0

    def test_interval_not_shorter_than_the_countdown_is_a_consistency_error(self) -> None:
        report = ConfigValidator("production").validate({"deadman_countdown_seconds": 10.0, "deadman_interval_seconds": 10.0})
        assert not report.valid
        assert [f.field for f in report.by_category("consistency")] == ["deadman_interval_seconds"]

    def test_environment_variables_set_it(self) -> None:
        config = load_config("production", environ={"LIQUIDATION_DEADMAN_COUNTDOWN_SECONDS": "0"})
        assert config.deadman_countdown_seconds == 0.0
