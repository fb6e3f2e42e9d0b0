"""The deployment checklist (../shared/CHECKLIST.md) as data: one entry per box that can be ticked.

Scenarios tag their Allure results with the label ``checklist_item`` = ``ChecklistItem.id``; the
report maps results back to boxes through this table. Epic, feature and story labels come from
here too, so the report and the scenarios cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

EPIC = "Emergency Liquidation"
CHECKLIST_LABEL = "checklist_item"


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    feature: str  # checklist section
    story: str  # the box's text
    severity: str = "critical"  # Allure severity: blocker | critical | normal | minor | trivial
    required: bool = True  # a failed or skipped required item blocks sign-off


ITEMS: tuple[ChecklistItem, ...] = (
    # Pre-Deployment: Configuration Validation
    ChecklistItem("pre.config.types", "Configuration Validation", "Type validation passes"),
    ChecklistItem("pre.config.ranges", "Configuration Validation", "Range validation passes"),
    ChecklistItem("pre.config.consistency", "Configuration Validation", "Consistency check passes"),
    ChecklistItem("pre.config.security", "Configuration Validation", "Security review completed", "blocker"),
    ChecklistItem("pre.config.defaults", "Configuration Validation", "Defaults appropriate for environment", "normal"),
    # Pre-Deployment: Dependency Verification
    ChecklistItem("pre.deps.order_manager", "Dependency Verification", "OrderExecutionManager initialized"),
    ChecklistItem("pre.deps.methods", "Dependency Verification", "Required methods available"),
    ChecklistItem("pre.deps.audit_logger", "Dependency Verification", "AuditLogger initialized"),
    ChecklistItem("pre.deps.audit_dir", "Dependency Verification", "Audit trail directory writable"),
    # Pre-Deployment: Testing Validation (the project's own test suite)
    ChecklistItem("pre.tests.unit", "Testing Validation", "All unit tests pass"),
    ChecklistItem("pre.tests.integration", "Testing Validation", "Integration tests pass"),
    ChecklistItem("pre.tests.mock", "Testing Validation", "Mock order manager tests pass"),
    ChecklistItem("pre.tests.timeout", "Testing Validation", "Timeout enforcement verified", "blocker"),
    ChecklistItem("pre.tests.retry", "Testing Validation", "Retry logic verified"),
    # Testnet Verification Scenarios
    ChecklistItem("scenario.1.normal", "Testnet Verification Scenarios", "Scenario 1: Normal Shutdown with Positions", "blocker"),
    ChecklistItem("scenario.2.disabled", "Testnet Verification Scenarios", "Scenario 2: Emergency Disabled (Config Test)"),
    ChecklistItem("scenario.3.timeout", "Testnet Verification Scenarios", "Scenario 3: Timeout Enforcement", "blocker"),
    ChecklistItem("scenario.4.partial", "Testnet Verification Scenarios", "Scenario 4: Partial Failure Simulation"),
    # Testnet Success Criteria
    ChecklistItem("criteria.no_exceptions", "Testnet Success Criteria", "No unhandled exceptions during shutdown"),
    ChecklistItem("criteria.audit_complete", "Testnet Success Criteria", "Audit trail complete for all scenarios"),
    ChecklistItem("criteria.metrics", "Testnet Success Criteria", "Metrics updated correctly"),
    ChecklistItem("criteria.memory", "Testnet Success Criteria", "No memory leaks"),
    ChecklistItem("criteria.correlation", "Testnet Success Criteria", "Correlation IDs link all related events"),
    # Post-Deployment: Verification Steps (non-disruptive)
    ChecklistItem("post.manager", "Post-Deployment Verification", "Liquidation manager initialized successfully"),
    ChecklistItem("post.metrics", "Post-Deployment Verification", "Metrics collection working"),
    ChecklistItem("post.audit", "Post-Deployment Verification", "Audit logs being written"),
    ChecklistItem("post.no_critical", "Post-Deployment Verification", "No CRITICAL warnings in logs"),
    ChecklistItem("post.keys", "Post-Deployment Verification", "API keys valid (a signed read is accepted)"),
    ChecklistItem("post.deadman", "Post-Deployment Verification", "Dead-man's switch armable (armed, then disarmed; no order)"),
    # Post-Deployment: Monitoring Setup
    ChecklistItem("monitoring.alerts", "Monitoring Setup", "Monitoring alerts configured", "normal"),
    ChecklistItem("monitoring.dashboard", "Monitoring Setup", "Dashboard for liquidation metrics", "normal", required=False),
)

BY_ID: dict[str, ChecklistItem] = {item.id: item for item in ITEMS}


def item(item_id: str) -> ChecklistItem:
    """The checklist item with this id; KeyError names the known ids when it does not exist."""
    try:
        return BY_ID[item_id]
    except KeyError:
        raise KeyError(f"unknown checklist item {item_id!r}; known: {', '.join(BY_ID)}") from None
