"""allure-results -> the Deployment Validation Report (markdown), the Allure HTML report, and
readers for the audit trail. Public names are re-exported here; the modules are private."""

from harness.report.audit_reader import (
    AuditEvent,
    AuditFileError,
    AuditLog,
    AuditSummary,
    LiquidationRun,
    bundle_logs,
    group_runs,
    read_audit,
    summarize,
)
from harness.report.html import find_allure, generate_html
from harness.report.outcomes import Blocker, ItemOutcome, ItemStatus, item_outcomes
from harness.report.render import Report, build_report, format_config, write_report
from harness.report.results import ResultsError, RunResults, Status, TestResult, load_results
from harness.report.rollback import RollbackRow, rollback_advised, rollback_recommendation

__all__ = [
    "AuditEvent",
    "AuditFileError",
    "AuditLog",
    "AuditSummary",
    "Blocker",
    "ItemOutcome",
    "ItemStatus",
    "LiquidationRun",
    "Report",
    "ResultsError",
    "RollbackRow",
    "RunResults",
    "Status",
    "TestResult",
    "build_report",
    "bundle_logs",
    "find_allure",
    "format_config",
    "generate_html",
    "group_runs",
    "item_outcomes",
    "load_results",
    "read_audit",
    "rollback_advised",
    "rollback_recommendation",
    "summarize",
    "write_report",
]
