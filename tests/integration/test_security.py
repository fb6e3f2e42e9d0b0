"""Security: production refusal, crossed credentials, owner-only files, and I6 (no secret written).

* A production target skips every order-placing scenario (the plugin's ``places_orders`` rule and
  the ``exchange`` fixture), so a verification run never trades on Binance production.
* Keys and environment on the wrong side of the production/testnet line are refused at start-up
  (``harness.exchanges.target.refuse_crossed_credentials``): testnet or demo keys for a production
  URL, production keys for testnet, demo or an unknown host, demo keys for testnet, TRADING_ENV
  contradicting the target, one key in both variables. The bot exits 2 naming the variables; no request is sent.
* The bot's log directory is created 0700 and everything in it 0600 (trading.log, audit.jsonl,
  liquidation-result.json, bot.ready).
* I6: ``liquidation-harness verify`` (a checklist scenario against the embedded exchange, bots as
  subprocesses) is run and every file it leaves (Allure results, the deployment report, the bots'
  logs, audit trails and results) is scanned for keys, secrets and signatures; so is a bot run at
  DEBUG. The bot's log handlers redact signatures and its keys whatever library logs them.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import NO_HYPOTHESIS, REPO_ROOT
from click.testing import CliRunner

from tests.support.chaos_strategies import check_no_secrets, scan_tree
from harness.bot import REDACTOR, TradingBot, configure_logging, make_bot_command
from harness.core.audit import AuditLogger
from harness.core.errors import ConfigError
from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.target import (
    DEMO_KEY_VARS,
    PRODUCTION_KEY_VARS,
    TESTNET_KEY_VARS,
    Target,
    refuse_crossed_credentials,
    resolve_target,
)
from harness.testkit import BotProcess

ROOT = REPO_ROOT
PRODUCTION_URL = "https://fapi.binance.com"
KEY_A, SECRET_A = "a" * 8 + "-test-key-0001", "s" * 8 + "-test-secret-0001"
KEY_B, SECRET_B = "b" * 8 + "-test-key-0002", "t" * 8 + "-test-secret-0002"


class TestProductionRefusesOrderPlacingScenarios:
    def test_every_order_placing_scenario_is_skipped_on_a_production_target(self, tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "PYTEST_", "LIQUIDATION_"))}
        env["TRADING_ENV"] = "production"
        result = subprocess.run(
            [sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-m", "places_orders", "-p", "no:cacheprovider",
             # every test skips: xdist workers (pytest.ini's -n auto) would only add their start-up
             "-q", "-rs", "-n", "0", *NO_HYPOTHESIS, f"--exchange-url={PRODUCTION_URL}", f"--basetemp={tmp_path / 'basetemp'}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )
        summary = result.stdout.strip().splitlines()[-1]
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "skipped" in summary and "passed" not in summary and "failed" not in summary, summary
        assert "target is PRODUCTION" in result.stdout


class TestCrossedCredentials:
    PRODUCTION = resolve_target("production")
    TESTNET = resolve_target("testnet")
    DEMO = resolve_target("testnet", demo=True)
    CUSTOM = resolve_target("testnet", "http://127.0.0.1:9")

    @pytest.mark.parametrize(("target", "environment", "environ", "field"), [
        pytest.param(PRODUCTION, "production", {TESTNET_KEY_VARS[0]: KEY_A, TESTNET_KEY_VARS[1]: SECRET_A},
                     PRODUCTION_KEY_VARS[0], id="testnet-keys-for-production"),
        pytest.param(TESTNET, "testnet", {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A},
                     TESTNET_KEY_VARS[0], id="production-keys-for-testnet"),
        pytest.param(CUSTOM, "testnet", {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A},
                     TESTNET_KEY_VARS[0], id="production-keys-for-an-unknown-host"),
        pytest.param(PRODUCTION, "testnet", {}, "exchange_url", id="testnet-environment-production-target"),
        pytest.param(TESTNET, "production", {}, "exchange_url", id="production-environment-testnet-target"),
        pytest.param(CUSTOM, "testnet", {PRODUCTION_KEY_VARS[0]: KEY_A, TESTNET_KEY_VARS[0]: KEY_A,
                                         TESTNET_KEY_VARS[1]: SECRET_A}, TESTNET_KEY_VARS[0], id="one-key-in-both"),
        pytest.param(PRODUCTION, "production", {DEMO_KEY_VARS[0]: KEY_A, DEMO_KEY_VARS[1]: SECRET_A},
                     PRODUCTION_KEY_VARS[0], id="demo-keys-for-production"),
        pytest.param(DEMO, "testnet", {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A},
                     DEMO_KEY_VARS[0], id="production-keys-for-demo"),
        pytest.param(DEMO, "testnet", {TESTNET_KEY_VARS[0]: KEY_A, TESTNET_KEY_VARS[1]: SECRET_A},
                     DEMO_KEY_VARS[0], id="testnet-keys-for-demo"),
        pytest.param(CUSTOM, "testnet", {DEMO_KEY_VARS[0]: KEY_A, DEMO_KEY_VARS[1]: SECRET_A},
                     TESTNET_KEY_VARS[0], id="demo-keys-for-an-unknown-host"),
        pytest.param(DEMO, "production", {DEMO_KEY_VARS[0]: KEY_A, DEMO_KEY_VARS[1]: SECRET_A},
                     "exchange_url", id="production-environment-demo-target"),
        pytest.param(DEMO, "testnet", {PRODUCTION_KEY_VARS[0]: KEY_A, DEMO_KEY_VARS[0]: KEY_A,
                                       DEMO_KEY_VARS[1]: SECRET_A}, DEMO_KEY_VARS[0], id="one-key-production-and-demo"),
    ])
    def test_crossed_keys_or_environment_are_refused(self, target: Target, environment: str, environ: dict[str, str],
                                                     field: str) -> None:
        with pytest.raises(ConfigError) as info:
            refuse_crossed_credentials(target, environment, environ)
        assert info.value.field == field
        assert KEY_A not in str(info.value) and SECRET_A not in str(info.value)

    @pytest.mark.parametrize(("target", "environment", "environ"), [
        pytest.param(PRODUCTION, "production", {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A,
                                                TESTNET_KEY_VARS[0]: KEY_B, TESTNET_KEY_VARS[1]: SECRET_B},
                     id="production-with-both-kinds-set"),
        pytest.param(CUSTOM, "testnet", {TESTNET_KEY_VARS[0]: KEY_B, TESTNET_KEY_VARS[1]: SECRET_B}, id="embedded"),
        pytest.param(PRODUCTION, "production", {}, id="no-keys-at-all-smoke-test"),
        pytest.param(DEMO, "testnet", {DEMO_KEY_VARS[0]: KEY_B, DEMO_KEY_VARS[1]: SECRET_B,
                                       TESTNET_KEY_VARS[0]: KEY_A, TESTNET_KEY_VARS[1]: SECRET_A}, id="demo-own-keys"),
        pytest.param(PRODUCTION, "production", {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A,
                                                DEMO_KEY_VARS[0]: KEY_B, DEMO_KEY_VARS[1]: SECRET_B},
                     id="production-with-demo-keys-also-set"),
    ])
    def test_matching_keys_are_accepted(self, target: Target, environment: str, environ: dict[str, str]) -> None:
        refuse_crossed_credentials(target, environment, environ)

    @pytest.mark.parametrize(("args", "env"), [
        pytest.param(["--exchange-url", PRODUCTION_URL, "--env", "production"],
                     {TESTNET_KEY_VARS[0]: KEY_A, TESTNET_KEY_VARS[1]: SECRET_A}, id="testnet-keys-production-url"),
        pytest.param(["--exchange-url", "http://127.0.0.1:9", "--env", "testnet"],
                     {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A}, id="production-keys-local-url"),
        pytest.param(["--testnet", "--env", "production"],
                     {TESTNET_KEY_VARS[0]: KEY_A, TESTNET_KEY_VARS[1]: SECRET_A}, id="testnet-flag-production-env"),
        pytest.param(["--exchange-url", PRODUCTION_URL, "--env", "testnet"],
                     {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A}, id="production-url-testnet-env"),
        pytest.param(["--exchange-url", "https://demo-fapi.binance.com/fapi", "--env", "testnet"],
                     {PRODUCTION_KEY_VARS[0]: KEY_A, PRODUCTION_KEY_VARS[1]: SECRET_A}, id="production-keys-demo-url"),
        pytest.param(["--exchange-url", PRODUCTION_URL, "--env", "production"],
                     {DEMO_KEY_VARS[0]: KEY_A, DEMO_KEY_VARS[1]: SECRET_A}, id="demo-keys-production-url"),
    ])
    def test_the_bot_refuses_to_start_with_exit_two(self, args: list[str], env: dict[str, str], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, restore_root_logging: None) -> None:
        started: list[TradingBot] = []
        command = make_bot_command(run=lambda bot: started.append(bot) or 0)
        for name in PRODUCTION_KEY_VARS + TESTNET_KEY_VARS + DEMO_KEY_VARS:
            monkeypatch.delenv(name, raising=False)
        result = CliRunner().invoke(command, ["--log-dir", str(tmp_path / "logs"), *args], env=env)
        assert (result.exit_code, started) == (2, []), result.output
        assert "configuration error" in result.output and "Traceback" not in result.output
        assert KEY_A not in result.output and SECRET_A not in result.output



@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as simulator:
        simulator.book.set_position("BTCUSDT", "0.010")
        simulator.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "30000", time_in_force="GTC")
        yield simulator



def _bot(sim: BinanceSimulator, log_dir: Path, *args: str) -> BotProcess:
    keys = {TESTNET_KEY_VARS[0]: sim.api_key, TESTNET_KEY_VARS[1]: sim.api_secret}
    bot = BotProcess(log_dir, exchange_url=sim.base_url, symbols=["BTCUSDT"], env=keys, args=list(args))
    return bot


class TestOwnerOnlyFiles:
    def test_the_bots_log_directory_and_every_file_in_it_are_owner_only(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        log_dir = tmp_path / "logs"
        bot = _bot(sim, log_dir).start()
        ready_mode = stat.S_IMODE((log_dir / "bot.ready").stat().st_mode)
        run = bot.stop()
        assert run.returncode == 0, run.stderr[-2000:]
        assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in log_dir.iterdir()}
        assert set(modes) >= {"trading.log", "audit.jsonl", "liquidation-result.json"}
        assert modes == dict.fromkeys(modes, 0o600) and ready_mode == 0o600, modes

    def test_an_audit_logger_creates_its_directory_and_file_owner_only(self, tmp_path: Path) -> None:
        path = tmp_path / "fresh" / "audit.jsonl"
        with AuditLogger(path) as audit:
            audit.log("LIQUIDATION_START", "cid", {})
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and stat.S_IMODE(path.stat().st_mode) == 0o600


class TestNoSecretWritten:
    def test_the_scan_finds_a_planted_key_secret_or_signature(self, tmp_path: Path) -> None:
        """The scan can fail: each kind of leak is caught."""
        leak = tmp_path / "leaky"
        leak.mkdir()
        (leak / "key.log").write_text(f"using {KEY_A}\n")
        (leak / "url.txt").write_text("GET /fapi/v1/order?symbol=BTCUSDT&signature=" + "ab" * 32 + "\n")
        (leak / "hmac.json").write_text('{"x": "' + "0f" * 32 + '"}')
        problems = scan_tree(leak, [KEY_A])
        assert len(problems) == 4 and all(p.startswith("I6: ") for p in problems), problems
        assert check_no_secrets("signature=<redacted> and a 32-hex id " + "ab" * 16, [KEY_A], "clean") == []
        digests = 'config sha256:' + "ab" * 32 + ' {"digest": {"sha256": "' + "cd" * 32 + '"}}'
        assert check_no_secrets(digests, [KEY_A], "attestation") == []  # labelled content digests are no secret
        assert check_no_secrets('{"sha": "' + "cd" * 32 + '"}', [KEY_A], "unlabelled")  # a bare one still is

    def test_log_handlers_redact_what_other_libraries_log(self, tmp_path: Path, restore_root_logging: None) -> None:
        path = configure_logging(tmp_path / "logs", "DEBUG")
        REDACTOR.add(SECRET_B)
        logging.getLogger("urllib3.connectionpool").debug(
            'http://127.0.0.1:9 "GET /fapi/v1/openOrders?symbol=BTCUSDT&timestamp=1&signature=%s HTTP/1.1" 200 2',
            "c" * 64)
        logging.getLogger("binance").debug("secret is %s", SECRET_B)
        for handler in logging.getLogger().handlers:
            handler.flush()
        text = path.read_text()
        assert "signature=<redacted>" in text and "secret is <redacted>" in text
        assert check_no_secrets(text, [SECRET_B], "trading.log") == []

    def test_a_verification_run_writes_no_secret_anywhere(self, tmp_path: Path) -> None:
        """``liquidation-harness verify`` on checklist scenarios (bots against the embedded exchange):
        Allure results, the deployment report and the bots' logs, audit and results, all scanned."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "PYTEST_", "LIQUIDATION_"))}
        env.pop("TRADING_ENV", None)
        result = subprocess.run(
            [sys.executable, "-m", "harness.cli", "verify", "--path", str(ROOT / "scenarios" / "test_testnet_scenarios.py"),
             "--results", str(tmp_path / "allure-results"), "--out", str(tmp_path / "reports"), "--no-html", "--no-gate",
             "--workers", "1", "--", "-n", "0", *NO_HYPOTHESIS, "-k", "scenario-1 or scenario-4", f"--basetemp={tmp_path / 'basetemp'}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )
        assert "pytest finished with exit code 0" in result.stdout, result.stdout[-3000:] + result.stderr[-2000:]
        (tmp_path / "verify-output.txt").write_text(result.stdout + result.stderr)
        written = {p.name for p in tmp_path.rglob("*") if p.is_file()}
        assert {"trading.log", "audit.jsonl", "liquidation-result.json"} <= written, sorted(written)
        assert any(name.endswith("-result.json") and name != "liquidation-result.json" for name in written)
        assert any(name.startswith("deployment-report-") for name in written)
        assert scan_tree(tmp_path, []) == []

    def test_a_bot_at_debug_level_writes_no_secret(self, sim: BinanceSimulator, tmp_path: Path) -> None:
        run = _bot(sim, tmp_path / "logs", "--log-level", "DEBUG").start().stop()
        assert run.returncode == 0, run.stderr[-2000:]
        (tmp_path / "bot-output.txt").write_text(run.stdout + run.stderr)
        assert "DEBUG" in run.trading_log
        assert scan_tree(tmp_path, [sim.api_key, sim.api_secret]) == []
