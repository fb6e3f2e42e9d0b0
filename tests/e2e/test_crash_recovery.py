"""Crash recovery: the bot SIGKILLed mid-liquidation at several points, restarted, liquidating again.

Each kill point is a hang the embedded exchange holds a request in (``FaultPlan.wait_until_hung``
says when the bot is inside it), so the kill lands at that exact step, never by timing. After the
kill the hangs are released and cleared, a second bot process starts on the same log directory and
liquidates on SIGTERM. Across both processes:

* the account converges to flat, with no regular or algo order left;
* I1 and I2 hold over the whole fill log (no fill opened, grew or flipped a leg; no leg closed more
  than it held), because every close is reduce-only (one-way) or positionSide-bound (hedge) and the
  second run reads the positions afresh instead of trusting the first run's plan;
* an order the first run sent whose answer it never got is found on the exchange by the client
  order id recomputed from the first run's correlation id (``make_client_order_id``), which is how
  an operator reconciles after a crash;
* both audit trails are intact: the killed run has its START and no COMPLETE, the second run is
  complete, every line parses (at most one torn last line, which readers skip with a warning).

A process killed while writing leaves at most one torn last line: ``test_a_writer_killed_mid_line``
kills a process that appends large audit lines and checks the file, and the deterministic
counterpart (every truncation point of a valid file) is in test_hostile_input.py.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support.chaos_strategies import book_legs, check_audit, check_fills
from harness.core.audit import read_audit
from harness.exchanges.binance.ids import make_client_order_id
from harness.exchanges.sim import BinanceSimulator, FaultRule, RateLimits
from harness.exchanges.target import TESTNET_KEY_VARS
from harness.testkit import BotProcess

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
#: BTCUSDT's long is above MARKET_LOT_SIZE maxQty (120): its close takes several orders
ONE_WAY = {("BTCUSDT", "BOTH"): "250.5", ("ETHUSDT", "BOTH"): "-3.25", ("SOLUSDT", "BOTH"): "40"}
HEDGE = {("BTCUSDT", "LONG"): "0.5", ("BTCUSDT", "SHORT"): "-0.25", ("ETHUSDT", "SHORT"): "-2", ("SOLUSDT", "LONG"): "7"}
HUNG_WITHIN_SECONDS = 20.0


@dataclass(frozen=True)
class KillPoint:
    """Where the first run is killed: the request the exchange holds when the SIGKILL lands."""

    name: str
    rules: tuple[FaultRule, ...]
    #: (symbol) whose close order executed in the first run without the run learning it
    executed_unanswered: str | None = None


KILL_POINTS = (
    KillPoint("reading-positions", (FaultRule("hang", endpoint="GET /fapi/v3/positionRisk", seconds=60),)),
    KillPoint("cancelling-orders", (FaultRule("hang", endpoint="DELETE /fapi/v1/allOpenOrders", symbol="ETHUSDT",
                                              seconds=60),)),
    KillPoint("closing-the-second-symbol", (FaultRule("hang", endpoint="POST /fapi/v1/order", symbol="ETHUSDT",
                                                      seconds=60),)),
    KillPoint("order-executed-answer-lost", (
        FaultRule("unknown_status_executed", endpoint="POST /fapi/v1/order", symbol="SOLUSDT", times=1),
        FaultRule("hang", endpoint="GET /fapi/v1/order", symbol="SOLUSDT", seconds=60),
    ), executed_unanswered="SOLUSDT"),
    KillPoint("split-close-partly-filled", (
        FaultRule("partial_fill", endpoint="POST /fapi/v1/order", symbol="BTCUSDT", ratio=Decimal("0.5"), times=1),
        FaultRule("hang", endpoint="POST /fapi/v1/order", symbol="BTCUSDT", seconds=60),
    )),
)


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator(rate_limits=RateLimits(weight_per_minute=10**6)) as simulator:
        yield simulator
        simulator.faults.release_hangs()


def seed(sim: BinanceSimulator, legs: dict[tuple[str, str], str]) -> dict[tuple[str, str], Decimal]:
    """The legs plus a resting LIMIT order and a conditional order per symbol."""
    hedge = any(side != "BOTH" for _, side in legs)
    if hedge:
        sim.book.set_hedge_mode(True)
    for (symbol, side), amount in legs.items():
        sim.book.set_position(symbol, amount, side)
    for symbol in SYMBOLS:
        spec = sim.book.spec(symbol)
        bid = (spec.mark_price * Decimal("0.8") / spec.tick_size).to_integral_value() * spec.tick_size
        qty = max(spec.min_qty, ((spec.min_notional * 2 / bid) / spec.step_size).to_integral_value() * spec.step_size + spec.step_size)
        extra = {"position_side": "LONG"} if hedge else {}
        sim.place_order(symbol, "BUY", "LIMIT", qty, bid, time_in_force="GTC", **extra)
        trigger = (spec.mark_price * Decimal("1.3") / spec.tick_size).to_integral_value() * spec.tick_size
        sim.place_algo_order(symbol, "BUY", "STOP_MARKET", trigger_price=trigger, quantity=qty, **extra)
    return book_legs(sim.book)



def bot_for(sim: BinanceSimulator, log_dir: Path) -> BotProcess:
    keys = {TESTNET_KEY_VARS[0]: sim.api_key, TESTNET_KEY_VARS[1]: sim.api_secret}
    bot = BotProcess(log_dir, exchange_url=sim.base_url, symbols=SYMBOLS, env=keys)
    return bot


def kill_mid_liquidation(sim: BinanceSimulator, log_dir: Path, point: KillPoint) -> None:
    """Start a bot, SIGTERM it, SIGKILL it while the exchange holds the kill point's request."""
    bot = bot_for(sim, log_dir).start()
    for rule in point.rules:
        sim.faults.add(rule)
    bot.send_signal(signal.SIGTERM)
    assert sim.faults.wait_until_hung(1, timeout=HUNG_WITHIN_SECONDS), f"{point.name}: the bot never got there"
    bot.kill()  # SIGKILL to the process group
    assert bot.proc is not None and bot.proc.returncode == -signal.SIGKILL
    sim.faults.clear()
    sim.faults.release_hangs()


def assert_flat(sim: BinanceSimulator) -> None:
    assert sim.book.positions() == [], sim.book.positions()
    assert sim.book.open_orders() == [] and sim.book.open_algo_orders() == []


def closing_orders_are_bound(sim: BinanceSimulator, hedge: bool) -> list[str]:
    """Every close the bots sent is reduce-only (one-way) or carries its positionSide (hedge)."""
    wrong = []
    for record in sim.requests_to("v1/order", "POST"):
        params = record.params
        bound = params.get("positionSide") in ("LONG", "SHORT") if hedge else params.get("reduceOnly") == "true"
        if not bound:
            wrong.append(f"{params.get('symbol')} {params.get('side')} {params.get('newClientOrderId')}")
    return wrong


#: every kill point in one-way mode; the two that involve an executed order in hedge mode too
CASES = [pytest.param(point, ONE_WAY, id=f"{point.name}-one-way") for point in KILL_POINTS] + [
    pytest.param(point, HEDGE, id=f"{point.name}-hedge") for point in KILL_POINTS
    if point.name in ("order-executed-answer-lost", "split-close-partly-filled")
]


class TestCrashRecovery:
    @pytest.mark.parametrize(("point", "legs"), CASES)
    def test_restart_after_sigkill_converges_to_flat_without_double_closing(
        self, sim: BinanceSimulator, tmp_path: Path, point: KillPoint, legs: dict[tuple[str, str], str]
    ) -> None:
        start = seed(sim, legs)
        log_dir = tmp_path / "logs"
        kill_mid_liquidation(sim, log_dir, point)

        second = bot_for(sim, log_dir).start().stop()

        assert second.returncode == 0, second.stderr[-3000:]
        assert second.result["state"] == "COMPLETED", second.result
        assert_flat(sim)
        assert check_fills(start, sim.fill_log) == []
        assert closing_orders_are_bound(sim, hedge=legs is HEDGE) == []
        audit = check_audit(log_dir / "audit.jsonl", crashed_runs=1)
        assert audit.problems == []
        first_cid = next(cid for cid in audit.runs if cid != second.result["correlation_id"])
        assert audit.runs[first_cid][0] == "LIQUIDATION_START" and "LIQUIDATION_COMPLETE" not in audit.runs[first_cid]
        assert audit.runs[second.result["correlation_id"]][-1] == "LIQUIDATION_COMPLETE"
        if point.executed_unanswered:
            self._reconciled_by_client_order_id(sim, point.executed_unanswered, first_cid, second.result)

    @staticmethod
    def _reconciled_by_client_order_id(sim: BinanceSimulator, symbol: str, first_cid: str, second: dict) -> None:
        """The first run's order is found by its recomputed id, and the second run did not close it again."""
        lost = sim.book.get_order(symbol, client_order_id=make_client_order_id(first_cid, symbol, 1))
        assert lost.status == "FILLED" and lost.reduce_only in (True, False)
        later = [f for f in sim.fill_log if f.symbol == symbol and f.client_order_id != lost.client_order_id]
        assert later == [], f"{symbol} was closed again after the crash: {later}"
        assert second["symbols"][symbol]["positions"] == []  # nothing left to close on it


WRITER = textwrap.dedent("""
    import sys
    from harness.core.audit import AuditLogger

    audit = AuditLogger(sys.argv[1])
    audit.log("LIQUIDATION_START", "run-1", {"reason": "crash test"})
    print("WRITING", flush=True)
    payload = "x" * (4 * 1024 * 1024)
    while True:
        audit.log("ORDER_PLACED", "run-1", {"blob": payload})
""")


class TestTornAuditLine:
    def test_a_writer_killed_mid_line_leaves_at_most_one_torn_last_line(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "audit.jsonl"
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "WRITING"
            deadline = time.monotonic() + 20.0
            while path.stat().st_size < 12 * 1024 * 1024:  # a few lines in, then kill while it writes on
                assert time.monotonic() < deadline and proc.poll() is None, "the writer stopped writing"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        check = check_audit(path, crashed_runs=1)
        assert check.problems == [] and check.torn_lines <= 1
        with caplog.at_level(logging.WARNING, logger="harness.audit"):
            log = read_audit(path)
        assert log.records[0].event_type == "LIQUIDATION_START" and len(log.records) >= 3
        assert ("torn or corrupt" in caplog.text) == bool(check.torn_lines)
        lines = [line for line in path.read_bytes().split(b"\n") if line.strip()]
        assert log.skipped_lines == check.torn_lines and len(log.records) == len(lines) - check.torn_lines
