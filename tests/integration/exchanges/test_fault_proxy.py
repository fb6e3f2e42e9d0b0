"""The fault proxy in front of the embedded exchange as the stand-in upstream: python-binance works
through it unchanged, and the simulator's fault plan acts on a real exchange's traffic."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from binance.client import Client
from binance.exceptions import BinanceAPIException

from harness.core.errors import ConfigError
from harness.exchanges.fault_proxy import FaultProxy
from harness.exchanges.sim import BinanceSimulator, FaultPlan
from harness.exchanges.target import TESTNET_KEY_VARS
from harness.report import Evidence, load_results

from support import REPO_ROOT


@pytest.fixture
def sim() -> Iterator[BinanceSimulator]:
    with BinanceSimulator() as simulator:
        simulator.book.set_position("BTCUSDT", "0.010")
        simulator.book.set_position("ETHUSDT", "-0.100")
        yield simulator


@pytest.fixture
def proxy(sim: BinanceSimulator) -> Iterator[FaultProxy]:
    with FaultProxy(sim.base_url) as fault_proxy:
        yield fault_proxy


@pytest.fixture
def client(sim: BinanceSimulator, proxy: FaultProxy) -> Client:
    binance = Client(sim.api_key, sim.api_secret, ping=False)
    binance.FUTURES_URL = proxy.base_url + "/fapi"
    return binance


def amount(sim: BinanceSimulator, symbol: str) -> Decimal:
    return sum((Decimal(p["position_amt"]) for p in sim.book.positions([symbol])), Decimal(0))


def close(client: Client, symbol: str, side: str, quantity: str) -> dict:
    return client.futures_create_order(symbol=symbol, side=side, type="MARKET", quantity=quantity, reduceOnly="true")


def test_python_binance_through_the_proxy_signs_reads_and_trades_unchanged(
        sim: BinanceSimulator, proxy: FaultProxy, client: Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    amounts = {p["symbol"]: Decimal(p["positionAmt"]) for p in client.futures_position_information()}
    assert amounts["BTCUSDT"] == Decimal("0.010") and amounts["ETHUSDT"] == Decimal("-0.100")
    order = close(client, "BTCUSDT", "SELL", "0.010")
    assert order["symbol"] == "BTCUSDT" and order["orderId"]
    assert "X-MBX-USED-WEIGHT-1M" in client.response.headers  # upstream's weight counters pass through
    assert amount(sim, "BTCUSDT") == 0  # the signature survived: the exchange executed it
    assert [r.forwarded for r in proxy.request_log] == [True, True]
    assert [r.upstream_status for r in proxy.request_log] == [200, 200]
    # the client's own urllib3 logs its URL; what the proxy side (harness, aiohttp) logs or records must not
    proxy_side = [r.getMessage() for r in caplog.records if r.name.startswith(("harness", "aiohttp"))]
    logged = "\n".join(proxy_side) + repr(proxy.request_log)
    assert sim.api_key not in logged and "signature" not in logged


def test_latency_is_felt_by_the_client_and_only_on_the_matching_endpoint(proxy: FaultProxy, client: Client) -> None:
    proxy.faults.latency(0.4, endpoint="positions")
    started = time.monotonic()
    client.futures_position_information()
    slowed = time.monotonic() - started
    started = time.monotonic()
    client.futures_time()
    unslowed = time.monotonic() - started
    assert slowed >= 0.4, f"the positions read took {slowed:.3f}s: the injected 0.4 s latency was not applied"
    assert unslowed < 0.4, f"GET /fapi/v1/time took {unslowed:.3f}s although no rule matches it"
    assert [r.faults for r in proxy.request_log] == [("latency",), ()]


def test_an_error_rule_answers_binances_shape_without_reaching_upstream(
        sim: BinanceSimulator, proxy: FaultProxy, client: Client) -> None:
    proxy.faults.error(429, -1003, retry_after=7, endpoint="new_order", times=1)
    with pytest.raises(BinanceAPIException) as caught:
        close(client, "BTCUSDT", "SELL", "0.010")
    assert (caught.value.status_code, caught.value.code) == (429, -1003)
    assert caught.value.response.headers["Retry-After"] == "7"
    assert sim.requests_to("v1/order", "POST") == [] and amount(sim, "BTCUSDT") == Decimal("0.010")
    record = proxy.requests_to("v1/order", "POST")[0]
    assert (record.forwarded, record.status, record.code, record.faults) == (False, 429, -1003, ("error",))


def test_a_lost_reply_reaches_upstream_but_the_client_gets_the_ambiguous_answer(
        sim: BinanceSimulator, proxy: FaultProxy, client: Client) -> None:
    proxy.faults.unknown_status_executed(endpoint="new_order", symbol="ETHUSDT", times=1)
    with pytest.raises(BinanceAPIException) as caught:
        close(client, "ETHUSDT", "BUY", "0.100")
    assert (caught.value.status_code, caught.value.code) == (503, -1006)
    assert amount(sim, "ETHUSDT") == 0, "the order never reached the exchange"
    assert len(sim.fill_log) == 1
    record = proxy.requests_to("v1/order", "POST")[0]
    assert (record.forwarded, record.upstream_status, record.status) == (True, 200, 503)


def test_a_connection_reset_after_forwarding_leaves_the_order_executed(sim: BinanceSimulator, proxy: FaultProxy,
                                                                         client: Client) -> None:
    proxy.faults.connection_reset(endpoint="new_order", executed=True, times=1)
    with pytest.raises(Exception):  # noqa: B017 - requests' ConnectionError, whatever its wrapping
        close(client, "BTCUSDT", "SELL", "0.010")
    assert amount(sim, "BTCUSDT") == 0 and len(sim.fill_log) == 1


def test_a_per_symbol_rule_hits_only_that_symbol(sim: BinanceSimulator, proxy: FaultProxy, client: Client) -> None:
    proxy.faults.lock_symbol("ETHUSDT")
    close(client, "BTCUSDT", "SELL", "0.010")
    with pytest.raises(BinanceAPIException) as caught:
        close(client, "ETHUSDT", "BUY", "0.100")
    assert caught.value.code == -1122
    assert amount(sim, "BTCUSDT") == 0 and amount(sim, "ETHUSDT") == Decimal("-0.100")
    assert [r.params["symbol"] for r in sim.requests_to("v1/order", "POST")] == ["BTCUSDT"]


def test_a_passthrough_proxy_forwards_without_applying_its_plan(sim: BinanceSimulator) -> None:
    plan = FaultPlan(rules=())
    plan.error(503, endpoint="new_order")
    with FaultProxy(sim.base_url, plan, inject=False) as proxy:
        client = Client(sim.api_key, sim.api_secret, ping=False)
        client.FUTURES_URL = proxy.base_url + "/fapi"
        close(client, "BTCUSDT", "SELL", "0.010")
    assert plan.fired() == 0 and amount(sim, "BTCUSDT") == 0


@pytest.mark.parametrize("url", ["https://fapi.binance.com", "https://fapi.binance.com/fapi/", "http://www.binance.com"])
def test_a_production_upstream_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FaultProxy(url)
    assert caught.value.field == "upstream" and "never stands in front of production" in str(caught.value)


@pytest.mark.parametrize("url", ["https://testnet.binancefuture.com", "https://demo-fapi.binance.com/fapi"])
def test_testnet_and_demo_are_accepted_upstreams(url: str) -> None:
    assert FaultProxy(url).upstream == url.removesuffix("/fapi")


def test_a_partial_fill_rule_is_refused_on_the_proxy(proxy: FaultProxy) -> None:
    with pytest.raises(ConfigError) as caught:
        proxy.faults.partial_fill("0.5")
    assert caught.value.field == "kind" and "embedded exchange" in str(caught.value)


def run_stood_in_scenarios(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path, int]:
    """Scenarios 3 and 4 with --testnet at a simulator standing in for testnet (the plugin puts its
    fault proxy in front of it); the simulator's own plan stays empty, so any fault is the proxy's."""
    results = tmp_path / "allure-results"
    with BinanceSimulator() as stand_in:
        env = {**os.environ, TESTNET_KEY_VARS[0]: stand_in.api_key, TESTNET_KEY_VARS[1]: stand_in.api_secret}
        outcome = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q",
             "scenarios/test_testnet_scenarios.py", "-k", "scenario-3 or scenario-4", "--testnet",
             "--exchange-url", stand_in.base_url, f"--alluredir={results}", *extra],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=150)
        faults_at_stand_in = stand_in.faults.fired()
    return outcome, results, faults_at_stand_in


def test_scenarios_3_and_4_pass_on_a_stood_in_testnet_through_the_proxy(tmp_path: Path) -> None:
    outcome, results, at_stand_in = run_stood_in_scenarios(tmp_path)
    assert outcome.returncode == 0, outcome.stdout[-4000:] + outcome.stderr[-2000:]
    assert "2 passed" in outcome.stdout and at_stand_in == 0
    labels = {r.name: (r.evidence, r.evidence_target) for r in load_results(results).results}
    assert len(labels) == 2
    for evidence, where in labels.values():
        assert evidence is Evidence.TESTNET_PROXIED and "through the harness's fault proxy" in where


@pytest.mark.slow  # a second bot run of both scenarios (~15 s): the proof that the checks above can fail
def test_scenarios_3_and_4_fail_naming_the_fault_when_the_proxy_injects_nothing(tmp_path: Path) -> None:
    outcome, _, _ = run_stood_in_scenarios(tmp_path, "--fault-proxy-passthrough")
    assert outcome.returncode == 1, outcome.stdout[-4000:]
    assert "2 failed" in outcome.stdout
    assert "slowed symbols the run must be PARTIAL" in outcome.stdout or "positions left open" in outcome.stdout
    assert "expected only" in outcome.stdout  # scenario 4: the locked symbol was closed after all
