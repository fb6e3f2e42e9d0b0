"""harness.embed: the engine embedded from the contract's environment, run to the contract's exit code."""

from __future__ import annotations

import asyncio
import os
import signal
from decimal import Decimal
from pathlib import Path

import pytest

from harness.core.audit import read_audit
from harness.core.config import load_config
from harness.core.errors import ConfigError
from harness.core.outcome import LiquidationResult, LiquidationState
from harness.embed import CONTRACT_VARIABLES, config_environ, embed, exit_code, symbols_from_env
from harness.exchanges.sim import SimBook
from harness.exchanges.sim.memory import InMemoryOrderManager

CONTRACT_ENV = {"TRADING_ENV": "testnet", "LIQUIDATION_EXCHANGE_URL": "http://127.0.0.1:1",
                "LIQUIDATION_SYMBOLS": "BTCUSDT", "LIQUIDATION_TIMEOUT_SECONDS": "2.0"}


class TestEnvironment:
    def test_contract_variables_do_not_trip_the_loader(self, tmp_path: Path) -> None:
        environ = {**CONTRACT_ENV, "LIQUIDATION_LOG_DIR": str(tmp_path)}
        assert load_config(environ=environ).timeout_seconds == 2.0  # the loader skips the reserved names itself
        assert set(config_environ(environ)) == set(environ) - set(CONTRACT_VARIABLES)
        assert load_config(environ=config_environ(environ)).timeout_seconds == 2.0

    def test_a_typo_is_still_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="timout_seconds"):
            embed(InMemoryOrderManager(), environ={"LIQUIDATION_TIMOUT_SECONDS": "2", "LIQUIDATION_LOG_DIR": str(tmp_path)},
                  logging_level=None)

    def test_symbols(self) -> None:
        assert symbols_from_env({"LIQUIDATION_SYMBOLS": "btcusdt, ETHUSDT,"}) == ["BTCUSDT", "ETHUSDT"]
        assert symbols_from_env({}) is None
        with pytest.raises(ConfigError, match="LIQUIDATION_SYMBOLS"):
            symbols_from_env({"LIQUIDATION_SYMBOLS": "BTC/USDT"})

    @pytest.mark.parametrize(("state", "code"), [(LiquidationState.COMPLETED, 0), (LiquidationState.SKIPPED, 0),
                                                 (LiquidationState.PARTIAL, 1), (LiquidationState.FAILED, 1)])
    def test_exit_code(self, state: LiquidationState, code: int) -> None:
        assert exit_code(LiquidationResult(state, "cid", "test")) == code
        assert exit_code(None) == 1


class TestServe:
    async def test_sigterm_cancels_work_liquidates_once_and_returns_0(self, tmp_path: Path, capsys) -> None:
        book = SimBook()
        book.set_position("BTCUSDT", "0.010")
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
        engine = embed(InMemoryOrderManager(book), environ={**CONTRACT_ENV, "LIQUIDATION_LOG_DIR": str(tmp_path)},
                       logging_level=None)
        cancelled = asyncio.Event()

        async def work() -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # serve installed its handlers before starting work
            os.kill(os.getpid(), signal.SIGTERM)  # a second signal is ignored
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()

        assert await engine.serve(work()) == 0
        assert cancelled.is_set()
        assert book.positions() == [] and book.open_orders() == []
        assert capsys.readouterr().out.startswith(f"READY pid={os.getpid()}")
        assert (tmp_path / "bot.ready").is_file() and (tmp_path / "liquidation-result.json").is_file()
        events = [r.event_type for r in read_audit(tmp_path / "audit.jsonl").records]
        assert events.count("LIQUIDATION_START") == 1 and events[-1] == "LIQUIDATION_COMPLETE"
        assert engine.result is not None and engine.result.reason == "SIGTERM"

    async def test_work_that_fails_still_liquidates_and_a_failed_close_exits_1(self, tmp_path: Path) -> None:
        book = SimBook()
        book.set_position("BTCUSDT", "0.010")
        om = InMemoryOrderManager(book)
        om.faults.lock_symbol("BTCUSDT")
        engine = embed(om, environ={**CONTRACT_ENV, "LIQUIDATION_LOG_DIR": str(tmp_path)}, logging_level=None)

        async def work() -> None:
            raise RuntimeError("strategy crashed")

        assert await engine.serve(work()) == 1
        assert engine.result is not None and engine.result.reason == "work-failed"
        assert engine.result.state is LiquidationState.FAILED

    async def test_rollback_switch_skips(self, tmp_path: Path) -> None:
        book = SimBook()
        book.set_position("BTCUSDT", "0.010")
        env = {**CONTRACT_ENV, "LIQUIDATION_LOG_DIR": str(tmp_path), "EMERGENCY_LIQUIDATION_DISABLED": "true"}
        engine = embed(InMemoryOrderManager(book), environ=env, logging_level=None)
        assert engine.config.emergency_liquidation is False
        assert await engine.serve(asyncio.sleep(0)) == 0
        assert engine.result is not None and engine.result.state is LiquidationState.SKIPPED
        assert book.position_amount("BTCUSDT") == Decimal("0.010")  # nothing closed


class TestSecrets:
    def test_keys_from_the_environment_never_reach_the_logs(self, tmp_path: Path) -> None:
        import logging

        secret = "s3cr3t-value-0123456789"
        root = logging.getLogger()
        before, level = list(root.handlers), root.level
        try:
            embed(InMemoryOrderManager(), environ={"LIQUIDATION_LOG_DIR": str(tmp_path), "TRADING_ENV": "testnet",
                                                   "BINANCE_TESTNET_API_SECRET": secret})
            logging.getLogger("bot").warning("signing with %s", secret)
            for handler in root.handlers:
                handler.flush()
            text = (tmp_path / "trading.log").read_text(encoding="utf-8")
            assert "signing with <redacted>" in text and secret not in text
        finally:
            for handler in root.handlers[:]:
                if handler not in before:
                    root.removeHandler(handler)
                    handler.close()
            root.setLevel(level)


SYNC_BOT = """
import signal, sys
from harness.embed import embed
from harness.exchanges.sim import SimBook
from harness.exchanges.sim.memory import InMemoryOrderManager

book = SimBook()
book.set_position("BTCUSDT", "0.010")
engine = embed(InMemoryOrderManager(book))
engine.install_signal_handlers()
engine.announce_ready()
while True:
    signal.pause()
"""


class TestSyncBot:
    def test_signal_handlers_liquidate_and_exit_with_the_code(self, tmp_path: Path) -> None:
        import json
        import subprocess
        import sys

        from tests.support import REPO_ROOT

        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO_ROOT), "TRADING_ENV": "testnet",
               "LIQUIDATION_LOG_DIR": str(tmp_path), "LIQUIDATION_SYMBOLS": "BTCUSDT"}
        process = subprocess.Popen([sys.executable, "-c", SYNC_BOT], env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("READY pid=")
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(30)
        written = json.loads((tmp_path / "liquidation-result.json").read_text(encoding="utf-8"))
        result = written["result"]  # harness.bot's format: {"result": ..., "metrics": ...}
        assert (result["state"], result["positions_closed"], result["reason"]) == ("COMPLETED", 1, "SIGTERM")
        assert written["metrics"]["total_executions"] == 1 and written["metrics"]["last_state"] == "COMPLETED"
        assert (tmp_path / "liquidation-result.json").stat().st_mode & 0o077 == 0  # owner-only, as harness.bot writes it
        events = [r.event_type for r in read_audit(tmp_path / "audit.jsonl").records]
        assert events[0] == "LIQUIDATION_START" and events[-1] == "LIQUIDATION_COMPLETE"


class TestOnDemand:
    async def test_sigusr1_liquidates_and_serve_keeps_running_until_sigterm(self, tmp_path: Path) -> None:
        from harness.embed import ON_DEMAND_SIGNAL

        book = SimBook()
        book.set_position("BTCUSDT", "0.010")
        engine = embed(InMemoryOrderManager(book), environ={**CONTRACT_ENV, "LIQUIDATION_LOG_DIR": str(tmp_path)},
                       logging_level=None)
        seen: list[str] = []

        async def work() -> None:
            # serve installed its handlers before starting work; without one this fails instead of killing the process
            assert signal.getsignal(ON_DEMAND_SIGNAL) is not signal.SIG_DFL, "serve installed no SIGUSR1 handler"
            os.kill(os.getpid(), ON_DEMAND_SIGNAL)
            deadline = asyncio.get_running_loop().time() + 5
            while engine.result is None:
                assert asyncio.get_running_loop().time() < deadline, "no on-demand liquidation within 5 s"
                await asyncio.sleep(0.01)
            seen.append(engine.result.reason)
            assert book.positions() == []
            book.set_position("BTCUSDT", "-0.020")  # re-seeded: the shutdown has something to close again
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.Event().wait()

        assert await engine.serve(work()) == 0
        assert seen == ["on-demand SIGUSR1"] and engine.result is not None and engine.result.reason == "SIGTERM"
        assert book.positions() == []
        starts = [r for r in read_audit(tmp_path / "audit.jsonl").records if r.event_type == "LIQUIDATION_START"]
        assert len({r.correlation_id for r in starts}) == 2
