"""The bot as a process against the HTTP simulator (issue 14): the whole account without ``--symbols``,
a scope that reports what it leaves, and start-up refusing what would fail at shutdown."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.target import TESTNET_KEY_VARS
from harness.testkit import BotProcess
from harness.testkit.botproc import INHERITED

from tests.support import REPO_ROOT

STARTUP_TIMEOUT = 60


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    """The issue's account: BTCUSDT long, ETHUSDT short, BNBUSDT long, a limit and a stop on flat symbols."""
    with BinanceSimulator() as simulator:
        simulator.set_position("BTCUSDT", "0.010")
        simulator.set_position("ETHUSDT", "-1.500")
        simulator.set_position("BNBUSDT", "2")
        simulator.place_order("SOLUSDT", "SELL", "LIMIT", "1", "900", time_in_force="GTC")
        simulator.place_algo_order("XRPUSDT", "SELL", "STOP_MARKET", trigger_price="0.1", close_position=True)
        yield simulator


def keys(sim: BinanceSimulator, *, key: str | None = None, secret: str | None = None) -> dict[str, str]:
    return {TESTNET_KEY_VARS[0]: sim.api_key if key is None else key,
            TESTNET_KEY_VARS[1]: sim.api_secret if secret is None else secret}


def bot_command(sim: BinanceSimulator, log_dir: Path) -> list[str]:
    return [sys.executable, "-m", "harness.bot", "--log-dir", str(log_dir), "--env", "testnet",
            "--exchange-url", sim.base_url]


def run_refused(sim: BinanceSimulator, tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the bot that should refuse to start; it must exit by itself (no signal is ever sent)."""
    base = {k: v for k, v in os.environ.items() if k in INHERITED}
    return subprocess.run(bot_command(sim, tmp_path / "logs"), capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
                          env={**base, "PYTHONUNBUFFERED": "1", **env}, cwd=REPO_ROOT)


class TestWholeAccount:
    def test_without_symbols_sigterm_leaves_the_whole_account_flat(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = BotProcess(tmp_path / "logs", exchange_url=sim.base_url, env=keys(sim)).start(timeout=STARTUP_TIMEOUT)
        run = bot.stop()
        assert run.returncode == 0, run.stderr[-2000:]
        assert run.result["state"] == "COMPLETED"
        assert sim.book.positions() == [], "a position on a symbol nobody listed was left open"
        assert sim.book.open_orders() == [] and sim.book.open_algo_orders() == []
        assert run.result["out_of_scope"] == [] and run.result["order_discovery"] == "account"

    def test_a_scope_lists_what_it_leaves_open_in_the_result_and_the_log(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = BotProcess(tmp_path / "logs", exchange_url=sim.base_url, symbols=["BTCUSDT", "ETHUSDT"], env=keys(sim))
        run = bot.start(timeout=STARTUP_TIMEOUT).stop()
        assert run.returncode == 0, run.stderr[-2000:]
        assert [(p["symbol"], p["position_amt"]) for p in sim.book.positions()] == [("BNBUSDT", Decimal("2"))]
        left = {(i["symbol"], i["kind"]) for i in run.result["out_of_scope"]}
        assert left == {("BNBUSDT", "position"), ("SOLUSDT", "orders"), ("XRPUSDT", "orders")}
        log = (tmp_path / "logs" / "trading.log").read_text()
        assert "WARNING" in log and "OUTSIDE the configured symbols" in log and "BNBUSDT" in log
        assert "OUT_OF_SCOPE_LEFT_OPEN" in (tmp_path / "logs" / "audit.jsonl").read_text()


class TestStartupRefusesWhatWillFailAtShutdown:
    @pytest.mark.parametrize(("override", "code"), [
        ({"key": "not-the-simulators-key-0000"}, "-2015"),
        ({"secret": "not-the-simulators-secret-0000"}, "-1022"),
    ], ids=["wrong-key", "wrong-secret"])
    def test_keys_the_exchange_refuses_exit_2_before_ready(
        self, sim: BinanceSimulator, tmp_path: Path, override: dict[str, str], code: str
    ) -> None:
        done = run_refused(sim, tmp_path, keys(sim, **override))
        assert done.returncode == 2, done.stderr[-2000:]
        assert "READY" not in done.stdout
        assert TESTNET_KEY_VARS[0] in done.stderr and TESTNET_KEY_VARS[1] in done.stderr
        assert f"Binance code {code}" in done.stderr, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        assert sim.book.position_amount("BTCUSDT") == Decimal("0.010")  # nothing was touched

    def test_missing_keys_exit_2_naming_the_variables(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        done = run_refused(sim, tmp_path, {})
        assert done.returncode == 2, done.stderr[-2000:]
        assert "READY" not in done.stdout and "Traceback" not in done.stderr
        assert f"set {TESTNET_KEY_VARS[0]} and {TESTNET_KEY_VARS[1]}" in done.stderr

    def test_a_disabled_liquidation_needs_no_keys_to_start(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = BotProcess(tmp_path / "logs", exchange_url=sim.base_url, args=["--disable-liquidation"])
        run = bot.start(timeout=STARTUP_TIMEOUT).stop()
        assert run.returncode == 0 and run.result["state"] == "SKIPPED"


class TestSimulateCommand:
    def test_a_used_port_is_one_line_and_exit_2(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            done = subprocess.run([sys.executable, "-m", "harness.cli", "simulate", "--port", str(port)],
                                  capture_output=True, text=True, timeout=STARTUP_TIMEOUT, cwd=REPO_ROOT)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"--port {port}" in lines[0] and "address already in use" in lines[0]

