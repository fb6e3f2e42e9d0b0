"""examples/ccxt_bot: a bot written on ccxt honours the bot-under-test contract on the embedded exchange.

Started as a team's bot would be: ``python examples/ccxt_bot/bot.py`` with the contract's environment
(TRADING_ENV, the keys, LIQUIDATION_EXCHANGE_URL, LIQUIDATION_LOG_DIR, LIQUIDATION_*), READY awaited on
stdout, positions and orders opened through the exchange's API (ExchangeAccount), then SIGTERM.
Verdicts in the contract's order of trust: the exchange, the exit code, the audit trail.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from harness.core.audit import read_audit
from harness.exchanges.sim import BinanceSimulator
from harness.testkit import ExchangeAccount
from tests.support import REPO_ROOT

pytest.importorskip("ccxt")

BOT = REPO_ROOT / "examples" / "ccxt_bot" / "bot.py"
READY_TIMEOUT = 30.0
EXIT_TIMEOUT = 30.0


@dataclass
class RunningBot:
    process: subprocess.Popen[str]
    lines: queue.Queue[str | None]
    log_dir: Path
    err: list[str]
    err_done: threading.Event

    def wait_ready(self) -> str:
        while True:
            try:
                line = self.lines.get(timeout=READY_TIMEOUT)
            except queue.Empty:
                pytest.fail(f"the ccxt bot printed no READY line within {READY_TIMEOUT} s")
            if line is None:
                pytest.fail(f"the ccxt bot exited before READY: {self.process.wait()} {self.stderr()[-1500:]}")
            if line.startswith("READY"):
                return line

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(EXIT_TIMEOUT)

    def stderr(self) -> str:
        """What the bot wrote on stderr (all of it once it has exited)."""
        if self.process.poll() is not None:
            self.err_done.wait(EXIT_TIMEOUT)
        return "".join(self.err)


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as simulator:
        yield simulator


@pytest.fixture
def account(sim: BinanceSimulator) -> Iterator[ExchangeAccount]:
    acct = ExchangeAccount(sim.api_key, sim.api_secret, base_url=sim.base_url)
    yield acct
    acct.close()


@pytest.fixture
def start_bot(sim: BinanceSimulator, tmp_path: Path) -> Iterator:
    started: list[RunningBot] = []

    def start(**extra_env: str) -> RunningBot:
        log_dir = tmp_path / f"logs{len(started)}"
        env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": str(REPO_ROOT), "PYTHONIOENCODING": "utf-8",
               "TRADING_ENV": "testnet", "LIQUIDATION_EXCHANGE_URL": sim.base_url, "LIQUIDATION_LOG_DIR": str(log_dir),
               "BINANCE_TESTNET_API_KEY": sim.api_key, "BINANCE_TESTNET_API_SECRET": sim.api_secret, **extra_env}
        process = subprocess.Popen([sys.executable, str(BOT)], cwd=tmp_path, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        err: list[str] = []
        done = threading.Event()

        def pump_err() -> None:  # drained while the bot runs, so a chatty bot never blocks on a full pipe
            assert process.stderr is not None
            for line in process.stderr:
                err.append(line)
            done.set()

        threading.Thread(target=pump, daemon=True).start()
        threading.Thread(target=pump_err, daemon=True).start()
        bot = RunningBot(process, lines, log_dir, err, done)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        if bot.process.poll() is None:
            bot.process.kill()
            bot.process.wait(EXIT_TIMEOUT)
    sim.faults.release_hangs()


def test_sigterm_liquidates_the_account_through_the_ccxt_order_manager(sim, account, start_bot) -> None:
    bot = start_bot()
    assert bot.wait_ready().startswith("READY pid=")
    assert (bot.log_dir / "bot.ready").is_file()
    account.open_position("BTCUSDT", "BUY")
    account.open_position("ETHUSDT", "SELL")
    account.place_resting_limit("BTCUSDT", "BUY")
    sim.place_algo_order("BTCUSDT", "SELL", "STOP_MARKET", trigger_price="50000", close_position=True)
    assert account.positions(["BTCUSDT", "ETHUSDT"]) and sim.book.open_orders("BTCUSDT")

    code = bot.stop()

    assert sim.book.positions() == [], "the exchange is not flat after SIGTERM"
    assert sim.book.open_orders() == [] and sim.book.open_algo_orders() == []
    assert code == 0, bot.stderr()[-2000:]
    closes = [r for r in sim.requests_to("v1/order", "POST") if r.params.get("newClientOrderId", "").startswith("ccxtlq-")]
    assert {r.params["symbol"] for r in closes} == {"BTCUSDT", "ETHUSDT"}
    assert all(r.params.get("reduceOnly") == "true" for r in closes)
    audit = read_audit(bot.log_dir / "audit.jsonl")
    events = [record.event_type for record in audit.records]
    assert events[0] == "LIQUIDATION_START" and events[-1] == "LIQUIDATION_COMPLETE"
    assert len({record.correlation_id for record in audit.records}) == 1
    assert audit.records[-1].details["state"] == "COMPLETED"
    assert (bot.log_dir / "trading.log").stat().st_size > 0
    assert (bot.log_dir / "liquidation-result.json").is_file()


def test_rollback_switch_skips_and_leaves_positions(sim, account, start_bot) -> None:
    bot = start_bot(EMERGENCY_LIQUIDATION_DISABLED="true")
    bot.wait_ready()
    account.open_position("BTCUSDT", "BUY")
    before = account.positions(["BTCUSDT"])

    assert bot.stop() == 0
    assert account.positions(["BTCUSDT"]) == before  # SKIPPED: nothing closed
    records = read_audit(bot.log_dir / "audit.jsonl").records
    assert records[-1].event_type == "LIQUIDATION_COMPLETE" and records[-1].details["state"] == "SKIPPED"


def test_timeout_on_a_hung_exchange_exits_non_zero_within_the_bound(sim, account, start_bot) -> None:
    bot = start_bot(LIQUIDATION_TIMEOUT_SECONDS="1.0", LIQUIDATION_SYMBOLS="BTCUSDT")
    bot.wait_ready()
    account.open_position("BTCUSDT", "BUY")
    sim.faults.hang(endpoint="new_order")

    code = bot.stop()

    assert code == 1
    records = read_audit(bot.log_dir / "audit.jsonl").records
    assert records[-1].event_type == "LIQUIDATION_COMPLETE"
    assert records[-1].details["state"] in ("PARTIAL", "FAILED")
    assert any(r.event_type == "LIQUIDATION_DEADLINE_EXCEEDED" for r in records)
    assert sim.book.position_amount("BTCUSDT") > Decimal("0")  # the hung close never reached the book


def test_a_bad_configuration_exits_2_naming_the_variable(start_bot) -> None:
    bot = start_bot(LIQUIDATION_TIMEOUT_SECONDS="45")
    assert bot.process.wait(EXIT_TIMEOUT) == 2
    err = bot.stderr()
    assert "timeout_seconds" in err and "LIQUIDATION_TIMEOUT_SECONDS" in err and "Traceback" not in err
    assert bot.lines.get(timeout=READY_TIMEOUT) is None  # never READY
