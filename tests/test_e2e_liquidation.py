"""The bot as a real subprocess against the embedded exchange, end to end; and the plugin's options."""

from __future__ import annotations

import signal
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.target import TESTNET_KEY_VARS
from harness.testkit import BotContractError, BotProcess, ExchangeAccount

pytest_plugins = ["pytester"]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as simulator:
        simulator.book.set_position("BTCUSDT", "0.010")
        simulator.book.set_position("ETHUSDT", "-0.500")
        simulator.book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "30000", time_in_force="GTC")
        yield simulator
        simulator.faults.release_hangs()



def bot_for(sim: BinanceSimulator, tmp_path: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None) -> BotProcess:
    keys = {TESTNET_KEY_VARS[0]: sim.api_key, TESTNET_KEY_VARS[1]: sim.api_secret}
    bot = BotProcess(tmp_path / "logs", exchange_url=sim.base_url, symbols=SYMBOLS, env={**keys, **(env or {})}, args=args)
    return bot


class TestBotShutdown:
    def test_sigterm_liquidates_and_exits_zero(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        run = bot_for(sim, tmp_path).start().stop()
        assert run.returncode == 0, run.stderr
        assert run.result["state"] == "COMPLETED"
        assert sim.book.positions() == [] and sim.book.open_orders() == []
        assert run.event_types()[0] == "LIQUIDATION_START" and run.event_types()[-1] == "LIQUIDATION_COMPLETE"
        assert "READY pid=" in run.stdout

    def test_sigint_liquidates_too(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        run = bot_for(sim, tmp_path).start().stop(signal.SIGINT)
        assert run.returncode == 0 and run.result["state"] == "COMPLETED"

    def test_partial_liquidation_exits_non_zero(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        sim.faults.lock_symbol("ETHUSDT")
        run = bot_for(sim, tmp_path).start().stop()
        assert run.returncode == 1
        assert run.result["state"] == "PARTIAL" and run.result["positions_failed"] == 1

    def test_rollback_switch_skips_and_logs_critical(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        run = bot_for(sim, tmp_path, env={"EMERGENCY_LIQUIDATION_DISABLED": "true"}).start().stop()
        assert run.returncode == 0 and run.result["state"] == "SKIPPED"
        assert "CRITICAL" in run.trading_log
        assert len(sim.book.positions()) == 2

    def test_second_sigterm_during_liquidation_does_not_abort_it(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        sim.faults.hang(endpoint="new_order", symbol="ETHUSDT", max_seconds=3.0)
        bot = bot_for(sim, tmp_path).start()
        bot.send_signal(signal.SIGTERM)
        assert sim.faults.wait_until_hung(1, timeout=10.0), "the liquidation never reached the exchange"
        bot.send_signal(signal.SIGTERM)
        assert bot.wait_for_output("SIGNAL SIGTERM count=2"), "the bot did not acknowledge the second signal"
        sim.faults.release_hangs()
        run = bot.stop(signal.SIGCONT)  # a harmless signal: just wait for the exit
        assert "received again during liquidation" in run.trading_log
        assert run.event_types().count("LIQUIDATION_START") == 1
        assert run.result["state"] in ("COMPLETED", "PARTIAL")

    def test_third_signal_forces_exit(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        sim.faults.hang(endpoint="new_order", max_seconds=10.0)
        bot = bot_for(sim, tmp_path, env={"LIQUIDATION_TIMEOUT_SECONDS": "20"}).start()
        bot.send_signal(signal.SIGTERM)
        assert sim.faults.wait_until_hung(1, timeout=10.0)
        bot.send_signal(signal.SIGTERM)
        assert bot.wait_for_output("SIGNAL SIGTERM count=2"), "the bot did not acknowledge the second signal"
        run = bot.stop(signal.SIGTERM, timeout=5.0)
        assert run.returncode == 3
        assert "forcing exit" in run.trading_log

    def test_bad_configuration_exits_two_naming_the_field(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = bot_for(sim, tmp_path, env={"LIQUIDATION_TIMEOUT_SECONDS": "45"})
        with pytest.raises(BotContractError, match="(?s)exit code 2.*timeout_seconds"):
            bot.start(timeout=20)
        assert bot.proc is not None and bot.proc.returncode == 2


class TestBotHygiene:
    def test_secrets_are_not_on_the_command_line_nor_in_logs(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = bot_for(sim, tmp_path)
        assert sim.api_secret not in " ".join(bot.command) and sim.api_key not in " ".join(bot.command)
        run = bot.start().stop()
        written = run.trading_log + run.stderr + run.stdout + (tmp_path / "logs" / "audit.jsonl").read_text()
        assert sim.api_secret not in written and sim.api_key not in written

    def test_logs_are_owner_only(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot_for(sim, tmp_path).start().stop()
        for name in ("trading.log", "audit.jsonl"):
            assert stat.S_IMODE((tmp_path / "logs" / name).stat().st_mode) == 0o600, name

    def test_ready_file_exists_while_running_and_is_removed_on_exit(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        bot = bot_for(sim, tmp_path).start()
        ready = tmp_path / "logs" / "bot.ready"
        assert ready.read_text() == str(bot.proc.pid)
        bot.stop()
        assert not ready.exists()


class TestBotMetricsEndpoint:
    def test_prometheus_metrics_are_served_while_running(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        import urllib.request

        bot = bot_for(sim, tmp_path, args=["--metrics-port", "0"]).start()
        [url] = [line.split(" ", 1)[1] for line in bot.output if line.startswith("METRICS ")]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
        assert "liquidation_executions_total" in body and "liquidation_in_progress 0.0" in body
        run = bot.stop()
        assert run.returncode == 0


class TestAccountThroughTheExchangeApi:
    def test_account_setup_opens_positions_and_flatten_closes_them(self, tmp_path: Path) -> None:
        with BinanceSimulator() as sim:
            account = ExchangeAccount(sim.api_key, sim.api_secret, base_url=sim.base_url)
            account.open_position("BTCUSDT", "BUY")
            account.place_resting_limit("ETHUSDT", "SELL")
            assert account.positions(SYMBOLS)["BTCUSDT"] > Decimal("0")
            assert len(account.open_orders(SYMBOLS)) == 1
            account.flatten(SYMBOLS)
            assert account.positions(SYMBOLS) == {} and account.open_orders(SYMBOLS) == []
            account.close()

    def test_account_refuses_production(self) -> None:
        with pytest.raises(Exception, match="production"):
            ExchangeAccount("k", "s", base_url="https://fapi.binance.com")


PLUGIN_TEST = """
import pytest

@pytest.mark.places_orders
def test_places_orders(run_target):
    assert run_target is not None

def test_read_only(run_target):
    assert run_target is not None
"""


class TestPluginOptions:
    @pytest.fixture(autouse=True)
    def _only_the_plugin(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The inner runs load only the plugin under test (``-p harness.pytest_plugin``): every other
        installed plugin would cost them seconds of start-up, and none of them is tested here."""
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def test_testnet_without_keys_stops_naming_the_variables(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        for name in TESTNET_KEY_VARS:
            monkeypatch.delenv(name, raising=False)
        pytester.makepyfile(PLUGIN_TEST)
        result = pytester.runpytest_subprocess("-p", "harness.pytest_plugin", "--testnet")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*BINANCE_TESTNET_API_KEY*BINANCE_TESTNET_API_SECRET*"])

    def test_production_target_skips_order_placing_tests_visibly(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TRADING_ENV", "production")
        pytester.makepyfile(PLUGIN_TEST)
        result = pytester.runpytest_subprocess("-p", "harness.pytest_plugin", "-rs")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(["*PRODUCTION*never run against production*"])

    def test_production_url_is_treated_as_production(self, pytester: pytest.Pytester) -> None:
        pytester.makepyfile(PLUGIN_TEST)
        result = pytester.runpytest_subprocess("-p", "harness.pytest_plugin", "--exchange-url", "https://fapi.binance.com", "-rs")
        result.assert_outcomes(passed=1, skipped=1)

    def test_testnet_keys_are_never_combined_with_a_production_url(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(TESTNET_KEY_VARS[0], "k" * 64)
        monkeypatch.setenv(TESTNET_KEY_VARS[1], "s" * 64)
        pytester.makepyfile(PLUGIN_TEST)
        result = pytester.runpytest_subprocess("-p", "harness.pytest_plugin", "--testnet", "--exchange-url", "https://fapi.binance.com")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*production URL*"])

    def test_default_target_is_the_embedded_exchange(self, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("TRADING_ENV", raising=False)
        pytester.makepyfile(PLUGIN_TEST)
        result = pytester.runpytest_subprocess("-p", "harness.pytest_plugin")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(["*target: embedded exchange*"])
