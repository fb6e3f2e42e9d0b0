"""Read the audit trail (``logs/audit.jsonl``) tolerantly and summarise liquidation runs.

One JSON object per line: ``timestamp`` (ISO 8601 UTC), ``event_type``, ``correlation_id``,
``details``. A torn or corrupted line (a crash mid-write, a disk-full truncation) is skipped with a
warning and counted, never fatal: the audit trail is read most urgently exactly when something
went wrong. Events are grouped by ``correlation_id`` into runs; a run's outcome comes from its
``LIQUIDATION_COMPLETE`` details (state, reason, positions_closed, positions_failed,
orders_cancelled, duration_seconds, errors).
"""

from __future__ import annotations

import json
import logging
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

log = logging.getLogger(__name__)

START = "LIQUIDATION_START"
COMPLETE = "LIQUIDATION_COMPLETE"
PROBLEM_STATES = ("FAILED", "PARTIAL")
INCOMPLETE = "INCOMPLETE"  # a run with a START and no COMPLETE (crash, hang, or still running)


class AuditFileError(HarnessError):
    """The audit file (or the logs directory to bundle) does not exist or cannot be read."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"{str(path)!r}: {problem}")


@dataclass(frozen=True)
class AuditEvent:
    timestamp: datetime
    event_type: str
    correlation_id: str | None
    details: dict[str, Any]
    line: int  # 1-based line number in the file


@dataclass(frozen=True)
class AuditLog:
    path: Path
    events: tuple[AuditEvent, ...]
    skipped_lines: int = 0
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiquidationRun:
    """All events sharing one correlation id that belong to a liquidation."""

    correlation_id: str
    events: tuple[AuditEvent, ...]
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
            "events": len(self.events),
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


def read_audit(path: str | Path) -> AuditLog:
    """Parse the audit file; corrupted lines are skipped, counted and warned about."""
    file = Path(path)
    if not file.is_file():
        raise AuditFileError(file, "audit file does not exist (is the bot writing logs/audit.jsonl?)")
    events: list[AuditEvent] = []
    warnings: list[str] = []
    try:
        with file.open(encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                event, problem = _parse_line(text, number)
                if event is not None:
                    events.append(event)
                else:
                    message = f"{file.name}:{number}: skipped corrupted line ({problem})"
                    log.warning(message)
                    warnings.append(message)
    except OSError as exc:
        raise AuditFileError(file, f"cannot be read: {exc}") from exc
    return AuditLog(file, tuple(events), len(warnings), tuple(warnings))


def _parse_line(text: str, number: int) -> tuple[AuditEvent | None, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg}"
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, [[[[... nested too deep
        return None, f"unreadable JSON: {type(exc).__name__}"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        return None, "no event_type"
    try:
        timestamp = _parse_time(data.get("timestamp"))
    except ValueError as exc:
        return None, str(exc)
    correlation = data.get("correlation_id")
    details = data.get("details")
    return AuditEvent(
        timestamp=timestamp,
        event_type=event_type,
        correlation_id=str(correlation) if correlation else None,
        details=details if isinstance(details, dict) else {},
        line=number,
    ), ""


def _parse_time(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValueError(f"timestamp={raw!r}: expected an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp={raw!r}: not ISO 8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def group_runs(events: tuple[AuditEvent, ...] | list[AuditEvent]) -> list[LiquidationRun]:
    """Runs (correlation ids with a LIQUIDATION_START or _COMPLETE), oldest first."""
    by_id: dict[str, list[AuditEvent]] = {}
    for event in events:
        if event.correlation_id:
            by_id.setdefault(event.correlation_id, []).append(event)
    runs = [
        _run(cid, chain) for cid, chain in by_id.items()
        if any(e.event_type in (START, COMPLETE) for e in chain)
    ]
    return sorted(runs, key=lambda run: run.started_at)


def _run(correlation_id: str, chain: list[AuditEvent]) -> LiquidationRun:
    ordered = tuple(sorted(chain, key=lambda e: (e.timestamp, e.line)))
    start = next((e for e in ordered if e.event_type == START), ordered[0])
    complete = next((e for e in reversed(ordered) if e.event_type == COMPLETE), None)
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


def summarize(audit: AuditLog, *, last: int = 10) -> AuditSummary:
    """Counts by event type and by run state, execution times, the last ``last`` runs, and the
    FAILED/PARTIAL runs among those with their errors."""
    if last < 1:
        raise ValueError(f"last={last!r}: must be a positive number of runs")
    runs = group_runs(audit.events)
    durations = [
        value for e in audit.events if e.event_type == COMPLETE
        if (value := _float(e.details.get("duration_seconds"))) is not None
    ]
    recent = tuple(runs[-last:])
    return AuditSummary(
        total_events=len(audit.events),
        skipped_lines=audit.skipped_lines,
        event_counts=dict(sorted(Counter(e.event_type for e in audit.events).items())),
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
