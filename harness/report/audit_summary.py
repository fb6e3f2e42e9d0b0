"""Liquidation runs and summaries built on the audit trail that ``harness.core.audit.read_audit``
reads (torn or corrupt lines are skipped there, counted and named in ``AuditLog.warnings``).

Records are grouped by ``correlation_id`` into runs; a run's outcome comes from its
``LIQUIDATION_COMPLETE`` details (state, reason, positions_closed, positions_failed,
orders_cancelled, duration_seconds, errors).
"""

from __future__ import annotations

import tarfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.audit import AuditEvent, AuditFileError, AuditLog, AuditRecord
from harness.core.outcome import LiquidationState

PROBLEM_STATES = (LiquidationState.FAILED.value, LiquidationState.PARTIAL.value)
INCOMPLETE = "INCOMPLETE"  # a run with a START and no COMPLETE (crash, hang, or still running)


@dataclass(frozen=True)
class LiquidationRun:
    """All events sharing one correlation id that belong to a liquidation."""

    correlation_id: str
    records: tuple[AuditRecord, ...]
    started_at: datetime
    state: str  # COMPLETED | PARTIAL | FAILED | SKIPPED | ... | INCOMPLETE
    reason: str = ""
    positions_closed: int = 0
    positions_failed: int = 0
    orders_cancelled: int = 0
    duration_seconds: float | None = None
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "started_at": self.started_at.isoformat(),
            "state": self.state,
            "reason": self.reason,
            "positions_closed": self.positions_closed,
            "positions_failed": self.positions_failed,
            "orders_cancelled": self.orders_cancelled,
            "duration_seconds": self.duration_seconds,
            "errors": list(self.errors),
            "events": len(self.records),
        }


@dataclass(frozen=True)
class AuditSummary:
    total_events: int
    skipped_lines: int
    event_counts: dict[str, int]
    runs_by_state: dict[str, int]
    average_duration_seconds: float | None  # over every LIQUIDATION_COMPLETE with a duration
    max_duration_seconds: float | None
    recent_runs: tuple[LiquidationRun, ...]
    problem_runs: tuple[LiquidationRun, ...] = field(default=())  # FAILED / PARTIAL, with errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_events": self.total_events,
            "skipped_lines": self.skipped_lines,
            "event_counts": dict(self.event_counts),
            "runs_by_state": dict(self.runs_by_state),
            "average_duration_seconds": self.average_duration_seconds,
            "max_duration_seconds": self.max_duration_seconds,
            "recent_runs": [run.to_dict() for run in self.recent_runs],
            "problem_runs": [run.to_dict() for run in self.problem_runs],
        }


def group_runs(records: Sequence[AuditRecord]) -> list[LiquidationRun]:
    """Runs (correlation ids with a LIQUIDATION_START or _COMPLETE), oldest first."""
    by_id: dict[str, list[AuditRecord]] = {}
    for record in records:
        if record.correlation_id:
            by_id.setdefault(record.correlation_id, []).append(record)
    runs = [
        _run(cid, chain) for cid, chain in by_id.items()
        if any(r.event_type in (AuditEvent.LIQUIDATION_START, AuditEvent.LIQUIDATION_COMPLETE) for r in chain)
    ]
    return sorted(runs, key=lambda run: run.started_at)


def _run(correlation_id: str, chain: list[AuditRecord]) -> LiquidationRun:
    ordered = tuple(sorted(chain, key=lambda r: (r.timestamp, r.line)))
    start = next((r for r in ordered if r.event_type == AuditEvent.LIQUIDATION_START), ordered[0])
    complete = next((r for r in reversed(ordered) if r.event_type == AuditEvent.LIQUIDATION_COMPLETE), None)
    if complete is None:
        return LiquidationRun(correlation_id, ordered, start.timestamp, INCOMPLETE,
                              reason=str(start.details.get("reason", "")))
    d = complete.details
    errors = d.get("errors")
    return LiquidationRun(
        correlation_id,
        ordered,
        start.timestamp,
        str(d.get("state") or "UNKNOWN"),
        reason=str(d.get("reason") or start.details.get("reason") or ""),
        positions_closed=_int(d.get("positions_closed")),
        positions_failed=_int(d.get("positions_failed")),
        orders_cancelled=_int(d.get("orders_cancelled")),
        duration_seconds=_float(d.get("duration_seconds")),
        errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (),
    )


def _int(raw: Any) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def _float(raw: Any) -> float | None:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw)
    return None


def summarize_audit(audit: AuditLog, *, last: int = 10) -> AuditSummary:
    """Counts by event type and by run state, execution times, the last ``last`` runs, and the
    FAILED/PARTIAL runs among those with their errors."""
    if last < 1:
        raise ValueError(f"last={last!r}: must be a positive number of runs")
    runs = group_runs(audit.records)
    durations = [
        value for r in audit.records if r.event_type == AuditEvent.LIQUIDATION_COMPLETE
        if (value := _float(r.details.get("duration_seconds"))) is not None
    ]
    recent = tuple(runs[-last:])
    return AuditSummary(
        total_events=len(audit.records),
        skipped_lines=audit.skipped_lines,
        event_counts=dict(sorted(Counter(r.event_type for r in audit.records).items())),
        runs_by_state=dict(sorted(Counter(run.state for run in runs).items())),
        average_duration_seconds=sum(durations) / len(durations) if durations else None,
        max_duration_seconds=max(durations) if durations else None,
        recent_runs=recent,
        problem_runs=tuple(run for run in recent if run.state in PROBLEM_STATES),
    )


def bundle_logs(logs_dir: str | Path, out_dir: str | Path, *, now: datetime | None = None) -> Path:
    """Write ``liquidation_logs_YYYYmmdd_HHMMSS.tar.gz`` (the checklist's rollback step 2) holding
    ``logs_dir`` under its own name, into ``out_dir``."""
    source, target_dir = Path(logs_dir), Path(out_dir)
    if not source.is_dir():
        raise AuditFileError(source, "logs directory does not exist; nothing to bundle")
    moment = now or datetime.now(timezone.utc)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"liquidation_logs_{moment:%Y%m%d_%H%M%S}.tar.gz"
    resolved_target = target.resolve()

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        # Leave out the bundle itself when it is written inside the logs directory.
        return None if info.name == _arcname(source, resolved_target) else info

    with tarfile.open(target, "w:gz") as archive:
        archive.add(source, arcname=source.resolve().name, filter=keep)
    return target


def _arcname(source: Path, target: Path) -> str:
    try:
        return str(Path(source.resolve().name) / target.relative_to(source.resolve()))
    except ValueError:
        return ""
