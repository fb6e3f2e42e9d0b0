"""Testnet Success Criteria that need a real bot process: no unhandled exceptions, complete audit trail.

The bot liquidates an account on which the exchange misbehaves the way Binance does on a bad day
(an order executed but answered 503 "Unknown error", a 429 with Retry-After, a locked symbol):
the shutdown must stay clean and the audit trail must account for every step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.testkit import BotRun

from scenario_support import attach_run, unhandled_errors


def hostile_shutdown(exchange: Any, symbols: list[str], log_dir: Path) -> tuple[BotRun, list[str]]:
    """Three positions, one resting order, exchange faults on the embedded exchange; SIGTERM."""
    targets = symbols[:3]
    with allure.step("Set up three positions and a resting order"):
        for index, symbol in enumerate(targets):
            exchange.account.open_position(symbol, "BUY" if index % 2 == 0 else "SELL")
        exchange.account.place_resting_limit(targets[0], "BUY")
    if exchange.embedded:
        with allure.step("Inject faults: unknown-status-but-executed, 429 with Retry-After, a locked symbol"):
            exchange.sim.faults.unknown_status_executed(endpoint="new_order", symbol=targets[0], times=1)
            exchange.sim.faults.error(429, code=-1003, retry_after=1, endpoint="new_order", symbol=targets[1], times=1)
            exchange.sim.faults.lock_symbol(targets[2])
    with allure.step(f"Start the bot under test ({exchange.spec.describe()}), send {exchange.spec.stop_signal.name}, wait for the exit"):
        run = exchange.start(exchange.bot(log_dir, targets)).stop(timeout=30.0)
    attach_run(run)
    return run, targets


@pytest.mark.places_orders
@pytest.mark.checklist("criteria.no_exceptions")
def test_no_unhandled_exceptions_during_shutdown(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    """Even with a degraded exchange, the shutdown ends with a verdict and no traceback."""
    run, _ = hostile_shutdown(exchange, symbols, log_dir)
    with allure.step("stderr and trading.log free of unhandled exceptions"):
        assert unhandled_errors(run) == [], f"unhandled exception during shutdown: {unhandled_errors(run)}"
    with allure.step("The bot exited by itself and reached a verdict"):
        assert run.returncode >= 0, f"bot {run.exit}: a crash, not a shutdown"
        verdict = run.verdict()
        assert verdict.get("state") in ("COMPLETED", "PARTIAL"), f"no verdict ({run.exit}): {verdict or run.why_no_verdict()}"
        assert (run.returncode == 0) == (verdict["state"] == "COMPLETED"), (
            f"bot {run.exit} for a {verdict['state']} liquidation (0 for COMPLETED, non-zero otherwise)")


@pytest.mark.places_orders
@pytest.mark.checklist("criteria.audit_complete")
def test_audit_trail_is_complete(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    """Every line parses; one START and one COMPLETE; every step of the run is accounted for."""
    run, targets = hostile_shutdown(exchange, symbols, log_dir)
    assert not run.audit_problem, run.audit_problem
    raw = [line for line in (log_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    with allure.step("Every audit line is a whole JSON object with the four fields"):
        assert len(raw) == len(run.audit), "an audit line does not parse"
        for line in raw:
            assert set(json.loads(line)) == {"timestamp", "event_type", "correlation_id", "details"}, line
    types = run.event_types()
    with allure.step("Exactly one LIQUIDATION_START and one LIQUIDATION_COMPLETE"):
        assert types.count("LIQUIDATION_START") == 1 and types.count("LIQUIDATION_COMPLETE") == 1, types
        assert types[0] == "LIQUIDATION_START" and types[-1] == "LIQUIDATION_COMPLETE", types
    with allure.step("One ORDER_CANCELLED per symbol, one ORDER_PLACED per closed position"):
        assert types.count("ORDER_CANCELLED") == len(targets), types
        complete = run.events()[-1].details
        assert types.count("ORDER_PLACED") == complete["positions_closed"], types
    with allure.step("LIQUIDATION_COMPLETE agrees with the exchange"):
        left_open = exchange.account.positions(targets)
        assert complete["positions_failed"] == len(left_open), f"COMPLETE says {complete['positions_failed']} failed, exchange has {left_open}"
        assert isinstance(complete["duration_seconds"], float), complete
        if run.result:  # harness.bot's result file, optional evidence: when present it must agree
            assert complete["state"] == run.result["state"], f"audit says {complete['state']}, result file {run.result['state']}"
        if exchange.embedded:
            assert "ORDER_REJECTED" in types, f"the locked symbol's rejection is missing from {types}"
