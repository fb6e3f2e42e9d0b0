"""The checklist's Rollback Decision Matrix applied to a run's checklist outcomes.

Each matrix row is triggered by the failure (failed or broken, not skipped) of any of the checklist
items listed for it below. Skipped or missing items block sign-off but are not an incident, so they
trigger no row. The matrix row "Liquidation timeout (but succeeds)" has no checklist item of its
own: it is read from audit data, not from test results, and is therefore never produced here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.report.outcomes import ItemOutcome

SEVERITY_ORDER = ("Critical", "High", "Medium", "Low")


@dataclass(frozen=True)
class RollbackRow:
    """One triggered row of the Rollback Decision Matrix."""

    issue: str
    severity: str  # Critical | High | Medium
    rollback: bool
    action: str
    triggered_by: tuple[str, ...]  # the failed checklist item ids


@dataclass(frozen=True)
class _Rule:
    issue: str
    severity: str
    rollback: bool
    action: str
    items: tuple[str, ...]  # ids, or prefixes ending in "."


# The matrix, verbatim from CHECKLIST.md, with the checklist items whose failure shows each issue.
MATRIX: tuple[_Rule, ...] = (
    _Rule("Configuration validation fails", "High", True, "Fix config, re-validate",
          ("pre.config.",)),
    _Rule("Partial liquidation (some fail)", "Medium", False,
          "Investigate failures, may need manual intervention", ("scenario.4.partial",)),
    _Rule("Complete liquidation failure", "High", True, "Investigate, fix, re-test on testnet",
          ("scenario.1.normal", "criteria.no_exceptions", "post.manager")),
    _Rule("Shutdown hangs", "Critical", True, "Kill process, investigate timeout enforcement",
          ("scenario.3.timeout", "pre.tests.timeout")),
    _Rule("No audit logs", "Medium", False, "Fix logging, verify audit directory writable",
          ("pre.deps.audit_logger", "pre.deps.audit_dir", "criteria.audit_complete", "post.audit")),
)


def _matches(item_id: str, patterns: tuple[str, ...]) -> bool:
    return any(item_id.startswith(p) if p.endswith(".") else item_id == p for p in patterns)


def rollback_recommendation(outcomes: Iterable[ItemOutcome]) -> list[RollbackRow]:
    """The matrix rows the failed items trigger, most severe first; empty when nothing failed."""
    failed = [o.id for o in outcomes if o.status.is_failure]
    rows = []
    for rule in MATRIX:
        hits = tuple(item_id for item_id in failed if _matches(item_id, rule.items))
        if hits:
            rows.append(RollbackRow(rule.issue, rule.severity, rule.rollback, rule.action, hits))
    return sorted(rows, key=lambda row: SEVERITY_ORDER.index(row.severity))


def rollback_advised(rows: Iterable[RollbackRow]) -> bool:
    """True when any triggered row says to roll back."""
    return any(row.rollback for row in rows)
