"""The pytest plugin records where every result came from, refuses unreachable targets, skips
embedded-only tests on real targets, and forbids order endpoints in --post-deploy mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.exchanges.sim import BinanceSimulator
from harness.exchanges.target import DEMO_KEY_VARS, PRODUCTION_KEY_VARS, TESTNET_KEY_VARS
from harness.report import Evidence, RunInfo, load_results

pytest_plugins = ["pytester"]

TESTS = """
import pytest

def test_uses_the_target(run_target):
    assert run_target is not None

def test_in_process_only():
    assert True

@pytest.mark.embedded_exchange
def test_builds_its_own_simulator():
    assert True
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PRODUCTION_KEY_VARS + TESTNET_KEY_VARS + DEMO_KEY_VARS + ("TRADING_ENV",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return monkeypatch


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, Path]:
    results = pytester.path / "allure-results"
    outcome = pytester.runpytest_subprocess("-p", "allure_pytest.plugin", "-p", "harness.pytest_plugin",
                                            "-p", "no:cacheprovider", f"--alluredir={results}", "-rs", *args)
    return outcome, results


def evidence_by_test(results: Path) -> dict[str, tuple[str, Evidence]]:
    return {r.name: (r.status.value, r.evidence) for r in load_results(results).results}


def test_embedded_run_labels_every_result_embedded(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(TESTS)
    outcome, results = run(pytester)
    outcome.assert_outcomes(passed=3)
    assert set(evidence_by_test(results).values()) == {("passed", Evidence.EMBEDDED)}
    info = RunInfo.read(results)
    assert info is not None and info.evidence is Evidence.EMBEDDED and info.bot is not None
    assert info.bot.config_digest.startswith("sha256:") and info.exit_status == 0


@pytest.mark.parametrize(("flag", "key_vars", "level"), [
    ("--testnet", TESTNET_KEY_VARS, Evidence.TESTNET_PROXIED),
    ("--demo", DEMO_KEY_VARS, Evidence.DEMO_PROXIED),
])
def test_stood_in_target_labels_only_the_tests_that_talk_to_it(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch,
                                                               flag: str, key_vars: tuple[str, str], level: Evidence) -> None:
    pytester.makepyfile(TESTS)
    with BinanceSimulator() as sim:
        clean_env.setenv(key_vars[0], sim.api_key)
        clean_env.setenv(key_vars[1], sim.api_secret)
        url = sim.base_url
        outcome, results = run(pytester, flag, "--exchange-url", url)
    outcome.assert_outcomes(passed=2, skipped=1)
    outcome.stdout.fnmatch_lines([f"*evidence={level.value}*", "*runs only on the embedded exchange*NOT RUN there*"])
    assert evidence_by_test(results) == {
        "test_uses_the_target": ("passed", level),
        "test_in_process_only": ("passed", Evidence.EMBEDDED),  # it never touched the target
        "test_builds_its_own_simulator": ("skipped", Evidence.EMBEDDED),
    }
    info = RunInfo.read(results)
    assert info is not None and info.evidence is level and url in info.target


def test_demo_without_keys_stops_naming_the_demo_variables(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(TESTS)
    outcome, _ = run(pytester, "--demo")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*--demo needs credentials*BINANCE_DEMO_API_KEY*BINANCE_DEMO_API_SECRET*"])


def test_unreachable_target_is_a_usage_error_before_any_test(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(TESTS)
    clean_env.setenv(TESTNET_KEY_VARS[0], "k")
    clean_env.setenv(TESTNET_KEY_VARS[1], "s")
    outcome, results = run(pytester, "--testnet", "--exchange-url", "http://127.0.0.1:9")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*preflight*cannot be reached*nothing was run*"])
    assert not list(results.glob("*-result.json")) if results.exists() else True


def test_refused_keys_are_a_usage_error(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(TESTS)
    clean_env.setenv(DEMO_KEY_VARS[0], "not-the-key")
    clean_env.setenv(DEMO_KEY_VARS[1], "not-the-secret")
    with BinanceSimulator() as sim:
        outcome, _ = run(pytester, "--demo", "--exchange-url", sim.base_url)
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*preflight*refused the API key*"])


POST_DEPLOY_TESTS = """
import pytest, requests
from harness.pytest_plugin import OrderEndpointRefused

def test_order_endpoints_are_refused(run_target):
    assert run_target.post_deploy and run_target.is_production
    for method in ("POST", "DELETE", "PUT"):
        with pytest.raises(OrderEndpointRefused, match=method):
            requests.request(method, "https://fapi.binance.com/fapi/v1/order", params={"symbol": "BTCUSDT"})
    for params in ({}, {"symbol": "BTCUSDT", "countdownTime": "1000"}, {"countdownTime": "soon"}):
        with pytest.raises(OrderEndpointRefused, match="countdownTime"):  # a switch that could fire before the disarm
            requests.post("https://fapi.binance.com/fapi/v1/countdownCancelAll", data=params)
    with pytest.raises(OrderEndpointRefused):
        requests.delete("https://fapi.binance.com/fapi/v1/countdownCancelAll", params={"countdownTime": "0"})
    # arming long and disarming pass the guard (port 9 then refuses the connection: nothing answered)
    for params in ({"symbol": "BTCUSDT", "countdownTime": "120000"}, {"symbol": "BTCUSDT", "countdownTime": "0"}):
        with pytest.raises(requests.ConnectionError):
            requests.post("http://127.0.0.1:9/fapi/v1/countdownCancelAll", data=params, timeout=5)

async def test_aiohttp_order_endpoints_are_refused(run_target):
    import aiohttp
    async with aiohttp.ClientSession() as session:
        with pytest.raises(OrderEndpointRefused):
            await session.post("https://fapi.binance.com/fapi/v1/batchOrders")
        with pytest.raises(OrderEndpointRefused):
            await session.post("https://fapi.binance.com/fapi/v1/countdownCancelAll", data=[("countdownTime", "5")])
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.post("http://127.0.0.1:9/fapi/v1/countdownCancelAll", data=[("countdownTime", "0")])
"""


def test_post_deploy_mode_refuses_every_order_endpoint(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(POST_DEPLOY_TESTS)
    outcome, results = run(pytester, "-p", "asyncio", "-o", "asyncio_mode=auto", "--post-deploy")
    outcome.assert_outcomes(passed=2)
    info = RunInfo.read(results)
    assert info is not None and info.post_deploy and info.evidence is Evidence.PRODUCTION
    assert json.loads((results / "harness-run.json").read_text())["post_deploy"] is True


def test_post_deploy_refuses_a_testnet_flag(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(TESTS)
    outcome, _ = run(pytester, "--post-deploy", "--testnet")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines(["*--post-deploy checks production*"])
