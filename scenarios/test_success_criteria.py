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
    with allure.step("Start the bot, send SIGTERM, wait for the exit"):
        run = exchange.bot(log_dir, targets).start().stop(timeout=30.0)
    attach_run(run)
    return run, targets


@pytest.mark.places_orders
@pytest.mark.checklist("criteria.no_exceptions")
def test_no_unhandled_exceptions_during_shutdown(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    """Even with a degraded exchange, the shutdown ends with a verdict and no traceback."""
    run, _ = hostile_shutdown(exchange, symbols, log_dir)
    with allure.step("stderr and trading.log free of unhandled exceptions"):
        assert unhandled_errors(run) == [], f"unhandled exception during shutdown: {unhandled_errors(run)}"
    with allure.step("The bot reached a verdict and exited by itself"):
        assert run.result.get("state") in ("COMPLETED", "PARTIAL"), f"the bot reached no verdict: {run.exit_description}"
        assert run.returncode in (0, 1), f"bot exit code {run.returncode} (crash or forced exit)"


@pytest.mark.places_orders
@pytest.mark.checklist("criteria.audit_complete")
def test_audit_trail_is_complete(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    """Every line parses; one START and one COMPLETE; every step of the run is accounted for."""
    run, targets = hostile_shutdown(exchange, symbols, log_dir)
    raw = (log_dir / "audit.jsonl").read_text(encoding="utf-8").splitlines()
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
        assert types.count("ORDER_PLACED") == run.result["positions_closed"], types
    complete = run.events()[-1].details
    with allure.step("LIQUIDATION_COMPLETE agrees with the exchange"):
        left_open = exchange.account.positions(targets)
        assert complete["positions_failed"] == len(left_open), f"COMPLETE says {complete['positions_failed']} failed, exchange has {left_open}"
        assert complete["state"] == run.result["state"] and isinstance(complete["duration_seconds"], float)
        if exchange.embedded:
            assert "ORDER_REJECTED" in types, f"the locked symbol's rejection is missing from {types}"
