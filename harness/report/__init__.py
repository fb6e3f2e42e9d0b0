"""allure-results -> the Deployment Validation Report (markdown), the Allure HTML report, and
run summaries of the audit trail (read by ``harness.core.audit.read_audit``). Public names are
re-exported here; the modules are private."""

from harness.report.audit_summary import AuditSummary, LiquidationRun, bundle_logs, group_runs, summarize_audit
from harness.report.html import find_allure, generate_html
from harness.report.outcomes import Blocker, ItemOutcome, ItemStatus, item_outcomes
from harness.report.render import Report, build_report, format_config, write_report
from harness.report.results import ResultsError, ResultStatus, RunResults, TestResult, load_results
from harness.report.rollback import RollbackRow, rollback_advised, rollback_recommendation

__all__ = [
    "AuditSummary",
    "Blocker",
    "ItemOutcome",
    "ItemStatus",
    "LiquidationRun",
    "Report",
    "ResultStatus",
    "ResultsError",
    "RollbackRow",
    "RunResults",
    "TestResult",
    "build_report",
    "bundle_logs",
    "find_allure",
    "format_config",
    "generate_html",
    "group_runs",
    "item_outcomes",
    "load_results",
    "rollback_advised",
    "rollback_recommendation",
    "summarize_audit",
    "write_report",
]
