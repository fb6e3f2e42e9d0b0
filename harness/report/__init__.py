"""allure-results -> the Deployment Validation Report (markdown), the Allure HTML report, and
run summaries of the audit trail (read by ``harness.core.audit.read_audit``). Public names are
re-exported here; the modules are private."""

from harness.report.audit_summary import AuditSummary, LiquidationRun, bundle_logs, group_runs, summarize_audit
from harness.report.html import find_allure, generate_html
from harness.report.outcomes import Blocker, ItemOutcome, ItemStatus, item_outcomes
from harness.report.evidence import BotIdentity, Evidence, RunInfo, config_digest
from harness.report.render import PastRun, Report, Verdict, build_report, combined_outcomes, format_config, write_report
from harness.report.results import ResultsError, ResultStatus, RunResults, TestResult, load_results
from harness.report.rollback import RollbackRow, rollback_advised, rollback_recommendation

__all__ = [
    "AuditSummary",
    "Blocker",
    "BotIdentity",
    "Evidence",
    "ItemOutcome",
    "ItemStatus",
    "LiquidationRun",
    "PastRun",
    "Report",
    "ResultStatus",
    "ResultsError",
    "RollbackRow",
    "RunInfo",
    "RunResults",
    "TestResult",
    "Verdict",
    "build_report",
    "bundle_logs",
    "combined_outcomes",
    "config_digest",
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
