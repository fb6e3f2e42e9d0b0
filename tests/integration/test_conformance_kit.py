"""The order-manager conformance kit (harness.conformance): our own order managers pass it, and each
deliberately broken one fails it with a message naming what it broke.

The in-process runs call ``run_check`` per check; one run goes through pytest itself
(``scenarios/test_order_manager_conformance.py --order-manager ...``) to show the option, the skip
reason and the report labels. The ccxt example's order manager is judged by that scenario file in
the session's full ccxt ``verify`` run (``--order-manager examples.ccxt_bot.om:factory``,
tests/support/verify_runs.py): each check's result is read from there rather than run twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.conformance import BY_ID, CHECKS, ConformanceFailure, load_factory, run_check
from harness.conformance.reference import factory as reference_factory
from harness.core.errors import ConfigError
from harness.exchanges.binance import BinanceFuturesOrderManager
from tests.support import NO_HYPOTHESIS, REPO_ROOT
from tests.support.verify_runs import VerifyRun

pytest_plugins = ["pytester"]

ccxt = pytest.importorskip("ccxt")

CHECK_IDS = [pytest.param(check, id=check.id) for check in CHECKS]


class TestReferenceOrderManagers:
    @pytest.mark.parametrize("check", CHECK_IDS)
    async def test_binance_futures_order_manager_passes(self, check) -> None:
        await run_check(check, reference_factory)

    @pytest.mark.parametrize("check", CHECK_IDS)
    def test_ccxt_example_order_manager_passes(self, check, ccxt_verify_run: VerifyRun) -> None:
        ccxt_verify_run.assert_passed(f"test_order_manager_conformance::test_order_manager_conformance[{check.id}]")


BROKEN = [
    pytest.param("no_reduce_only", "close-one-way", "without reduceOnly in one-way mode", id="closes-without-reduce-only"),
    pytest.param("no_reduce_only", "close-never-flips", "flipped the position", id="no-reduce-only-flips"),
    pytest.param("no_reduce_only", "close-hedge", "must carry positionSide=LONG", id="hedge-without-position-side"),
    pytest.param("malformed_as_flat", "positions-unreadable", r"truncated JSON\) was read as \[\].*never be read as flat",
                 id="malformed-positions-read-as-flat"),
    pytest.param("sync_positions", "signatures", "get_all_positions: must be async", id="sync-positions"),
    pytest.param("regular_cancel_only", "cancel", "left 0 regular and 1 algo order", id="algo-orders-left"),
    pytest.param("retries_everything", "errors-terminal", r"\(-1122\) was sent 3 times: terminal errors are not retried",
                 id="terminal-retried"),
    pytest.param("no_split", "close-split", "above MARKET_LOT_SIZE maxQty", id="no-split"),
    pytest.param("ignores_deadline", "deadline", "not bounded by the run deadline", id="ignores-deadline"),
]


class TestBrokenOrderManagers:
    @pytest.mark.parametrize(("broken", "check_id", "message"), BROKEN)
    async def test_fails_naming_the_broken_behaviour(self, broken: str, check_id: str, message: str) -> None:
        factory = load_factory(f"tests.support.broken_order_managers:{broken}")
        with pytest.raises(ConformanceFailure, match=message):
            await run_check(BY_ID[check_id], factory)

    async def test_a_broken_order_manager_passes_the_checks_it_does_not_break(self) -> None:
        # the kit tells behaviours apart: closing without reduceOnly does not fail the cancel check
        await run_check(BY_ID["cancel"], load_factory("tests.support.broken_order_managers:no_reduce_only"))


class TestFactoryForms:
    """factory() may return the order manager, an awaitable of it, or an async context manager."""

    @staticmethod
    async def async_factory(url: str, key: str, secret: str) -> BinanceFuturesOrderManager:
        return BinanceFuturesOrderManager(key, secret, base_url=url)

    @staticmethod
    def context_factory(url: str, key: str, secret: str) -> Any:
        return BinanceFuturesOrderManager(key, secret, base_url=url)  # has __aenter__/__aexit__

    @pytest.mark.parametrize("form", ["async_factory", "context_factory"])
    async def test_every_form_is_opened_and_checked(self, form: str) -> None:
        await run_check(BY_ID["close-one-way"], getattr(self, form))

    @pytest.mark.parametrize(("spec", "problem"), [
        ("no-colon", "'package.module:factory'"),
        ("harness.nope_module:factory", "importing 'harness.nope_module' failed"),
        ("harness.conformance:nope", "has no attribute 'nope'"),
        ("harness.conformance:CHECKS", "is a tuple, not callable"),
        (None, "'package.module:factory'"),
    ])
    def test_bad_spec_is_a_config_error_naming_the_option(self, spec: Any, problem: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load_factory(spec)
        assert str(caught.value).startswith("--order-manager=") and problem in str(caught.value)


def _pytest(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "-o", "addopts=", *NO_HYPOTHESIS,
         str(REPO_ROOT / "scenarios" / "test_order_manager_conformance.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


class TestThroughPytest:
    def test_broken_order_manager_fails_the_kit_with_labelled_results(self, tmp_path: Path) -> None:
        results = tmp_path / "allure"
        run = _pytest("--order-manager", "tests.support.broken_order_managers:no_reduce_only",
                      f"--alluredir={results}", "-k", "close-one-way or cancel or signatures")
        assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
        assert "1 failed, 2 passed" in run.stdout, run.stdout[-2000:]
        assert "FAILED" in run.stdout and "close-one-way" in run.stdout and "without reduceOnly" in run.stdout
        labels: dict[str, dict[str, str]] = {}
        for path in results.glob("*-result.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            labels[data["name"]] = {lab["name"]: lab["value"] for lab in data["labels"]} | {"status": data["status"]}
        assert set(labels) == {
            "Order manager conformance: Seed methods: names, parameters, sync/async kinds",
            "Order manager conformance: Cancel: counts regular + algo orders and leaves none",
            "Order manager conformance: Close (one-way mode): MARKET, reduce-only, flat afterwards",
        }
        for entry in labels.values():
            assert entry["feature"] == "Dependency Verification"
            assert entry["checklist_item"] in ("pre.deps.methods", "pre.deps.order_manager")
        assert labels["Order manager conformance: Close (one-way mode): MARKET, reduce-only, flat afterwards"][
            "status"] == "failed"

    def test_without_the_option_every_check_is_skipped_with_the_reason(self, tmp_path: Path) -> None:
        results = tmp_path / "allure"
        run = _pytest("-rs", f"--alluredir={results}")
        assert run.returncode == 0, run.stdout[-2000:]
        assert f"{len(CHECKS)} skipped" in run.stdout
        assert "give --order-manager package.module:factory" in run.stdout
        skipped = [json.loads(p.read_text(encoding="utf-8")) for p in results.glob("*-result.json")]
        assert len(skipped) == len(CHECKS) and all(r["status"] == "skipped" for r in skipped)
        # a kit that did not run leaves Dependency Verification to the other checks (no SKIPPED item)
        assert not [lab for r in skipped for lab in r["labels"] if lab["name"] == "checklist_item"]



SPEC_PROBE = """
from harness.pytest_plugin import order_manager_spec

def test_probe(pytestconfig):
    assert order_manager_spec(pytestconfig) == "harness.conformance.reference:factory"
"""
PROBE_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


class TestOption:
    def test_ini_twin_selects_the_order_manager(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(f"{PROBE_INI}order_manager = harness.conformance.reference:factory\n")
        pytester.makepyfile(SPEC_PROBE)
        result = pytester.runpytest_inprocess("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-n", "0")
        result.assert_outcomes(passed=1)

    def test_an_unimportable_factory_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        pytester.makeini(PROBE_INI)
        pytester.makepyfile(SPEC_PROBE)
        result = pytester.runpytest_inprocess("-p", "harness.pytest_plugin", "-p", "no:cacheprovider", "-n", "0",
                                              "--order-manager", "nowhere.at_all:factory")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        assert "--order-manager='nowhere.at_all:factory'" in result.stderr.str()
        assert "No module named 'nowhere'" in result.stderr.str()


class TestBadFactories:
    async def test_a_factory_that_raises_fails_every_check_naming_the_factory(self) -> None:
        def broken_factory(url: str, key: str, secret: str) -> Any:
            raise RuntimeError("cannot reach the vault")

        with pytest.raises(ConformanceFailure, match=r"broken_factory\(exchange_url, api_key, api_secret\) did not give "
                                                     r"an order manager: RuntimeError: cannot reach the vault"):
            await run_check(BY_ID["cancel"], broken_factory)

    async def test_something_that_is_no_order_manager_fails_naming_the_method(self) -> None:
        with pytest.raises(ConformanceFailure, match="object has no cancel_all_orders method"):
            await run_check(BY_ID["cancel"], lambda url, key, secret: object())
        with pytest.raises(ConformanceFailure, match="get_all_positions: missing"):
            await run_check(BY_ID["signatures"], lambda url, key, secret: object())


def test_the_docs_list_every_check() -> None:
    text = (REPO_ROOT / "docs" / "CONFORMANCE.md").read_text(encoding="utf-8")
    for check in CHECKS:
        assert f"| `{check.id}` | {check.title} | `{check.checklist_item}` |" in text, check.id
