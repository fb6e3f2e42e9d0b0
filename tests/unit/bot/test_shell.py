"""The bot runtime (harness.bot): building apart from running, one validated configuration, and the
order manager's optional capabilities (lifecycle, countdown) used when present and skipped when absent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.bot import EXIT_CONFIG, EXIT_OK, TradingBot, make_bot_command
from harness.bot.shell import MissingCredentialsOrderManager
from harness.core.config import LiquidationConfig
from harness.core.errors import ConfigError, TerminalExchangeError
from harness.core.outcome import LiquidationState
from harness.exchanges.sim import InMemoryOrderManager, SimBook

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def book() -> SimBook:
    book = SimBook()
    book.set_position("BTCUSDT", "0.010")
    return book


class WithLifecycle(InMemoryOrderManager):
    """The in-process face plus ``SupportsLifecycle``, recording what the bot asked of it."""

    def __init__(self, book: SimBook) -> None:
        super().__init__(book)
        self.lifecycle: list[str] = []

    async def warm_up(self, *, connections: int = 0) -> None:
        self.lifecycle.append(f"warm_up connections={connections}")

    async def close(self) -> None:
        self.lifecycle.append("close")


def built(tmp_path: Path, order_manager: object, **options: object) -> TradingBot:
    options.setdefault("config", LiquidationConfig())
    return TradingBot(symbols=SYMBOLS, log_dir=tmp_path / "logs", exchange_url="http://127.0.0.1:9",
                      environment="testnet", order_manager=order_manager, **options).initialize()


class TestBuildThenRun:
    async def test_running_an_unbuilt_bot_is_refused_clearly(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError, match="initialize"):
            await TradingBot(log_dir=tmp_path / "logs").run()

    async def test_a_built_bot_warms_up_runs_liquidates_and_closes_its_order_manager(
            self, book: SimBook, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        face = WithLifecycle(book)
        bot = built(tmp_path, face)
        assert face.calls == [] and face.lifecycle == []  # building touched nothing
        bot.request_shutdown()
        assert await bot.run() == EXIT_OK
        assert face.lifecycle == [f"warm_up connections={2 * len(SYMBOLS) + 3}", "close"]
        assert bot.result is not None and bot.result.state is LiquidationState.COMPLETED
        assert book.positions() == []
        assert "READY pid=" in capsys.readouterr().out
        assert not (tmp_path / "logs" / "bot.ready").exists()

    async def test_without_lifecycle_the_bot_neither_warms_up_nor_closes_and_still_liquidates(
            self, book: SimBook, tmp_path: Path) -> None:
        face = InMemoryOrderManager(book)
        bot = built(tmp_path, face)
        bot.request_shutdown()
        assert await bot.run() == EXIT_OK
        assert book.positions() == []
        assert {c.method for c in face.calls} <= {"get_all_positions", "cancel_all_orders_async",
                                                  "execute_market_close", "countdown_cancel_all", "open_order_symbols"}


class TestDeadMansSwitchCapability:
    def test_present_the_bot_builds_a_switch_on_its_symbols(self, book: SimBook, tmp_path: Path) -> None:
        bot = built(tmp_path, InMemoryOrderManager(book), deadman_countdown=30, deadman_interval=10)
        assert bot.deadman is not None and bot.deadman.symbols == SYMBOLS and bot.deadman.countdown_ms == 30_000

    def test_absent_the_bot_runs_without_a_switch(self, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        bot = TradingBot(symbols=SYMBOLS, log_dir=tmp_path / "logs", environment="testnet",
                         exchange_url="http://127.0.0.1:9", config=LiquidationConfig())
        with caplog.at_level(logging.WARNING, logger="harness.bot.shell"):
            bot.initialize()
        assert isinstance(bot.order_manager, MissingCredentialsOrderManager) and bot.deadman is None
        assert "cannot arm countdownCancelAll" in caplog.text

    async def test_a_run_arms_the_books_countdown_and_a_clean_exit_disarms_it(self, book: SimBook,
                                                                               tmp_path: Path) -> None:
        face = InMemoryOrderManager(book)
        bot = built(tmp_path, face, deadman_countdown=30, deadman_interval=10)
        bot.request_shutdown()
        assert await bot.run() == EXIT_OK
        sent = [(c.symbol, c.args["countdown_ms"]) for c in face.calls_to("countdown_cancel_all")]
        assert sorted(sent) == sorted([(s, 30_000) for s in SYMBOLS] + [(s, 0) for s in SYMBOLS])
        assert book.next_countdown_deadline() is None


class TestOneConfigBuild:
    def test_disable_liquidation_is_validated_with_the_rest_and_skips(self, book: SimBook, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.CRITICAL, logger="harness.bot.shell"):
            bot = built(tmp_path, InMemoryOrderManager(book), liquidation_enabled=False)
        assert bot.config is not None
        assert (bot.config.emergency_liquidation, bot.config.close_positions, bot.config.cancel_orders) == (False,) * 3
        assert "--disable-liquidation" in caplog.text

    @pytest.mark.parametrize(("options", "field", "source"), [
        ({"deadman_countdown": -1.0}, "deadman_countdown_seconds", "--deadman-countdown"),
        ({"deadman_countdown": 0.5}, "deadman_countdown_seconds", "--deadman-countdown"),
        ({"deadman_interval": 500.0}, "deadman_interval_seconds", "--deadman-interval"),
    ])
    def test_a_bad_override_is_refused_naming_field_value_and_option(self, book: SimBook, tmp_path: Path,
                                                                     options: dict, field: str, source: str) -> None:
        with pytest.raises(ConfigError) as info:
            built(tmp_path, InMemoryOrderManager(book), **options)
        value = next(iter(options.values()))
        assert info.value.field == field and info.value.source == source and info.value.value == value
        assert f"(from {source})" in str(info.value)

    def test_overrides_apply_on_top_of_a_given_config(self, book: SimBook, tmp_path: Path) -> None:
        bot = built(tmp_path, InMemoryOrderManager(book), config=LiquidationConfig(timeout_seconds=7.0),
                    deadman_countdown=40, deadman_interval=20)
        assert bot.config is not None
        config = bot.config
        assert (config.timeout_seconds, config.deadman_countdown_seconds, config.deadman_interval_seconds) == (7.0, 40.0, 20.0)


class TestCommand:
    def test_the_command_hands_the_bot_it_built_to_run(self, tmp_path: Path, restore_root_logging: None) -> None:
        handed: list[TradingBot] = []
        command = make_bot_command(run=lambda bot: handed.append(bot) or 7)
        result = CliRunner().invoke(command, ["--log-dir", str(tmp_path / "logs"), "--env", "testnet",
                                              "--exchange-url", "http://127.0.0.1:9", "--symbols", "BTCUSDT",
                                              "--deadman-countdown", "45", "--disable-liquidation"])
        assert result.exit_code == 7, result.output
        (bot,) = handed
        assert bot.liquidation_manager is not None and bot.symbols == ["BTCUSDT"]
        assert bot.config is not None and bot.config.deadman_countdown_seconds == 45.0
        assert bot.config.emergency_liquidation is False

    def test_a_bad_override_exits_two_naming_the_option_and_runs_nothing(self, tmp_path: Path,
                                                                        restore_root_logging: None) -> None:
        handed: list[TradingBot] = []
        command = make_bot_command(run=lambda bot: handed.append(bot) or 0)
        result = CliRunner().invoke(command, ["--log-dir", str(tmp_path / "logs"), "--env", "testnet",
                                              "--exchange-url", "http://127.0.0.1:9", "--deadman-interval", "500"])
        assert (result.exit_code, handed) == (2, [])
        assert "deadman_interval_seconds=500.0 (from --deadman-interval)" in result.output


class TestScope:
    """No symbols = the whole account; symbols = an explicit scope, warned about (issue 14)."""

    async def test_without_symbols_the_bot_liquidates_the_whole_account(self, tmp_path: Path) -> None:
        book = SimBook()
        book.set_position("BNBUSDT", "2")
        book.place_order("SOLUSDT", "SELL", "LIMIT", "1", "900", time_in_force="GTC")
        bot = TradingBot(log_dir=tmp_path / "logs", exchange_url="http://127.0.0.1:9", environment="testnet",
                         order_manager=InMemoryOrderManager(book), config=LiquidationConfig()).initialize()
        assert bot.symbols == [] and bot.liquidation_manager is not None and bot.liquidation_manager.symbols == []
        assert bot.deadman is not None and bot.deadman.symbols == []  # arms the symbols with orders instead
        bot.request_shutdown()
        assert await bot.run() == EXIT_OK
        assert book.positions() == [] and book.open_orders() == []

    def test_a_scope_is_logged_as_a_warning(self, book: SimBook, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="harness.bot.shell"):
            built(tmp_path, InMemoryOrderManager(book))
        assert "liquidation scope is limited to BTCUSDT,ETHUSDT" in caplog.text

    def test_the_command_has_no_symbol_default(self, tmp_path: Path) -> None:
        seen: list[TradingBot] = []
        command = make_bot_command(run=lambda bot: seen.append(bot) or 0)
        outcome = CliRunner().invoke(command, ["--log-dir", str(tmp_path / "logs"), "--env", "testnet",
                                               "--exchange-url", "http://127.0.0.1:9"])
        assert outcome.exit_code == 0, outcome.output
        assert seen[0].symbols == [] and seen[0].liquidation_manager.symbols == []


class TestStartupKeyCheck:
    async def test_missing_keys_refuse_the_start_before_ready(self, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
        bot = TradingBot(log_dir=tmp_path / "logs", environment="testnet", exchange_url="http://127.0.0.1:9",
                         config=LiquidationConfig()).initialize()
        with caplog.at_level(logging.ERROR, logger="harness.bot.shell"):
            assert await bot.run() == EXIT_CONFIG
        assert "READY" not in capsys.readouterr().out
        assert "BINANCE_TESTNET_API_KEY and BINANCE_TESTNET_API_SECRET" in caplog.text

    async def test_a_refused_key_at_warm_up_exits_2_and_other_warm_up_failures_do_not(
            self, book: SimBook, tmp_path: Path) -> None:
        class Refused(WithLifecycle):
            code = -2015

            async def warm_up(self, *, connections: int = 0) -> None:
                raise TerminalExchangeError("-2015: Invalid API-key, IP, or permissions for action.", code=self.code)

        assert await built(tmp_path / "a", Refused(book)).run() == EXIT_CONFIG
        Refused.code = -1001  # a transient failure only costs speed
        slow = built(tmp_path / "b", Refused(book))
        slow.request_shutdown()
        assert await slow.run() == EXIT_OK


class TestOnDemandLiquidation:
    """SIGUSR1 (the contract's on-demand trigger): liquidate now, keep running; SIGTERM still stops."""

    async def test_sigusr1_liquidates_without_exiting_and_sigterm_still_stops(self, book: SimBook,
                                                                              tmp_path: Path) -> None:
        import asyncio
        import os
        import signal

        from harness.bot.shell import ON_DEMAND_SIGNAL
        from harness.core.audit import read_audit

        bot = built(tmp_path, InMemoryOrderManager(book), config=LiquidationConfig(deadman_countdown_seconds=0))
        audit = tmp_path / "logs" / "audit.jsonl"

        async def until(condition, what: str) -> None:
            deadline = asyncio.get_running_loop().time() + 5
            while not condition():
                assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
                await asyncio.sleep(0.01)

        def completes() -> int:
            return sum(r.event_type == "LIQUIDATION_COMPLETE" for r in read_audit(audit).records) if audit.exists() else 0

        running = asyncio.ensure_future(bot.run())
        await until((tmp_path / "logs" / "bot.ready").exists, "READY")
        # a bot without the handler fails here instead of killing the test process
        assert signal.getsignal(ON_DEMAND_SIGNAL) is not signal.SIG_DFL, "the running bot installed no SIGUSR1 handler"
        os.kill(os.getpid(), ON_DEMAND_SIGNAL)
        await until(lambda: completes() == 1, "the on-demand liquidation")
        assert book.positions() == [] and not running.done()  # liquidated, still running
        book.set_position("ETHUSDT", "-0.100")
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(running, 5) == EXIT_OK
        records = read_audit(audit).records
        starts = [r for r in records if r.event_type == "LIQUIDATION_START"]
        assert [s.details["reason"] for s in starts] == ["on-demand SIGUSR1", "shutdown signal"]
        assert len({s.correlation_id for s in starts}) == 2 and book.positions() == []
