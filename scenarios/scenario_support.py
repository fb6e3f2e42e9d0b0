"""Evidence helpers shared by the scenarios: Allure attachments and log checks."""

from __future__ import annotations

import json
import re
from typing import Any

import allure

from harness.core.audit import AuditEvent
from harness.testkit import BotRun

#: what an unhandled exception looks like in a bot's stderr or trading.log
UNHANDLED_PATTERNS = (
    re.compile(r"^Traceback \(most recent call last\)", re.MULTILINE),
    re.compile(r"Task exception was never retrieved"),
    re.compile(r"Task was destroyed but it is pending"),
    re.compile(r"Unclosed client session"),
    re.compile(r"RuntimeWarning: coroutine .* was never awaited"),
)
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/batchOrders", "/fapi/v1/allOpenOrders", "/fapi/v1/algoOpenOrders",
               "/fapi/v1/algoOrder")


def attach_run(run: BotRun) -> None:
    """Attach the run's evidence: audit lines, result, metrics, effective config, bot log."""
    attach = allure.attach
    attach("\n".join(json.dumps(r.to_dict()) for r in run.audit), name="audit.jsonl (this run)", attachment_type=allure.attachment_type.JSON)
    attach(json.dumps(run.result, indent=2, default=str), name="liquidation result", attachment_type=allure.attachment_type.JSON)
    attach(json.dumps(run.metrics, indent=2, default=str), name="metrics", attachment_type=allure.attachment_type.JSON)
    start = next((r for r in run.audit if r.event_type == AuditEvent.LIQUIDATION_START), None)
    if start is not None:
        attach(json.dumps(start.details.get("config", {}), indent=2), name="effective config",
               attachment_type=allure.attachment_type.JSON)
    attach(run.trading_log, name="trading.log", attachment_type=allure.attachment_type.TEXT)
    if run.stderr.strip():
        attach(run.stderr, name="bot stderr", attachment_type=allure.attachment_type.TEXT)


def unhandled_errors(run: BotRun) -> list[str]:
    """Signs of unhandled exceptions in the bot's stderr and trading.log (empty when clean)."""
    found = []
    for source, text in (("stderr", run.stderr), ("trading.log", run.trading_log)):
        for pattern in UNHANDLED_PATTERNS:
            if pattern.search(text):
                found.append(f"{source}: {pattern.pattern}")
    return found


def order_requests_since(sim: Any, marker: int) -> list[str]:
    """Order-changing requests (new, cancel) the embedded exchange received after ``marker``."""
    sent = []
    for entry in sim.request_log[marker:]:
        if entry.method in ("POST", "DELETE") and entry.path.endswith(ORDER_PATHS):
            sent.append(f"{entry.method} {entry.path}")
    return sent
