"""Post-Deployment and Dependency checks judged through the bot-under-test contract, for any bot.

The in-process checks (test_pre_deployment, test_post_deployment, marked ``reference_bot``) look
inside harness.bot; these start the bot under test as a process on an empty account, let it become
ready, stop it, and judge only what the contract guarantees: readiness, the exit code, the audit
trail in ``$LIQUIDATION_LOG_DIR/audit.jsonl``, ``trading.log``, and metrics from ``--bot-metrics-url``
(or harness.bot's optional result file). Nothing is traded, so they also run for harness.bot.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.core.audit import AuditEvent
from harness.testkit import BotRun

from scenario_support import attach_run, unhandled_errors

#: the audit trail's event types (the checklist's five and the engine's others)
KNOWN_EVENTS = frozenset(event.value for event in AuditEvent)
SEVERE = re.compile(r"\b(ERROR|CRITICAL)\b")
METRIC = re.compile(r"^(liquidation_[a-z_]+)", re.MULTILINE)


def quiet_run(exchange: Any, symbols: list[str], log_dir: Path, env: dict[str, str] | None = None,
              scrape: bool = False) -> tuple[BotRun, str]:
    """Start the bot on an empty account, optionally read its metrics endpoint, stop it."""
    with allure.step(f"Start the bot under test on an empty account: {exchange.spec.describe()}"):
        bot = exchange.start(exchange.bot(log_dir, symbols[:2], env=env))
    scraped = ""
    if scrape and exchange.spec.metrics_url:
        with allure.step(f"GET {exchange.spec.metrics_url}"):
            try:
                with urllib.request.urlopen(exchange.spec.metrics_url, timeout=5) as response:
                    scraped = response.read().decode("utf-8", "replace")
            except (OSError, urllib.error.URLError) as exc:
                scraped = f"<unreachable: {exc}>"
            allure.attach(scraped, name="metrics endpoint", attachment_type=allure.attachment_type.TEXT)
    with allure.step(f"Send {exchange.spec.stop_signal.name} and wait for the exit"):
        run = bot.stop(timeout=30.0)
    attach_run(run)
    return run, scraped


@pytest.mark.checklist("post.manager")
def test_bot_starts_ready_and_stops_cleanly(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    run, _ = quiet_run(exchange, symbols, log_dir)
    assert run.returncode == 0, f"bot {run.exit} on an empty account: nothing to liquidate must be COMPLETED, exit 0"
    assert not unhandled_errors(run), f"unhandled exceptions: {unhandled_errors(run)}"


@pytest.mark.checklist("pre.deps.audit_logger")
@pytest.mark.checklist("pre.deps.audit_dir")
@pytest.mark.checklist("post.audit")
def test_bot_writes_its_audit_trail_in_the_log_dir(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    run, _ = quiet_run(exchange, symbols, log_dir)
    assert not run.audit_problem, run.audit_problem
    types = run.event_types()
    assert types and types[0] == "LIQUIDATION_START" and types[-1] == "LIQUIDATION_COMPLETE", (
        f"the stop left no START..COMPLETE run in {log_dir / 'audit.jsonl'}: {types}")
    unknown = sorted({t for t in types if t not in KNOWN_EVENTS})
    assert not unknown, f"audit event types that are not the trail's: {unknown}; known: {sorted(KNOWN_EVENTS)}"


@pytest.mark.parametrize(("rollback", "expect_critical"), [
    pytest.param(False, False, id="sound-configuration", marks=pytest.mark.checklist("post.no_critical")),
    pytest.param(True, True, id="negative-control-rollback-switch-on", marks=pytest.mark.checklist("post.no_critical")),
])
def test_bot_log_has_no_critical_lines(exchange: Any, symbols: list[str], log_dir: Path, rollback: bool,
                                       expect_critical: bool) -> None:
    run, _ = quiet_run(exchange, symbols, log_dir, env={"EMERGENCY_LIQUIDATION_DISABLED": "true"} if rollback else None)
    assert (log_dir / "trading.log").is_file(), f"the bot wrote no {log_dir / 'trading.log'}"
    severe = [line for line in run.trading_log.splitlines() if SEVERE.search(line)]
    allure.attach("\n".join(severe) or "<empty>", name="ERROR/CRITICAL lines", attachment_type=allure.attachment_type.TEXT)
    if expect_critical:
        assert any("CRITICAL" in line for line in severe), (
            "EMERGENCY_LIQUIDATION_DISABLED=true logged no CRITICAL: the log check would miss a disabled engine")
    else:
        assert not severe, f"ERROR/CRITICAL lines in trading.log: {severe}"


@pytest.mark.checklist("post.metrics")
def test_bot_reports_metrics(exchange: Any, symbols: list[str], log_dir: Path) -> None:
    run, scraped = quiet_run(exchange, symbols, log_dir, scrape=True)
    if exchange.spec.metrics_url:
        names = sorted(set(METRIC.findall(scraped)))
        assert names, f"{exchange.spec.metrics_url} served no liquidation_* metric: {scraped[:300]!r}"
        return
    if not run.metrics:
        pytest.fail("no metrics evidence: the bot wrote no liquidation-result.json metrics; give --bot-metrics-url "
                    "with the bot's Prometheus endpoint")
    allure.attach(json.dumps(run.metrics, indent=2), name="metrics (result file)", attachment_type=allure.attachment_type.JSON)
    assert run.metrics.get("total_executions") == 1 and run.metrics.get("in_progress") is False, (
        f"metrics after one liquidation: total_executions={run.metrics.get('total_executions')}, "
        f"in_progress={run.metrics.get('in_progress')}")
