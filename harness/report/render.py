"""Fill the Deployment Validation Report (CHECKLIST.md's template) from a run's results.

Boxes are ticked only when every checklist item behind them PASSED; anything else leaves the box
empty with the reason appended. "Tests passing (N/M)" counts all results of the run (the latest
attempt of each test): N passed out of M. The report is READY FOR SIGN-OFF only when every
required checklist item passed and no failed or broken result is left unaccounted for.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from harness.report.outcomes import (
    Blocker,
    ItemOutcome,
    ItemStatus,
    blockers,
    item_outcomes,
    one_line,
    unknown_item_ids,
)
from harness.report.results import ResultStatus, RunResults
from harness.report.rollback import RollbackRow, rollback_advised, rollback_recommendation

TEMPLATE_NAME = "deployment_report.md"
PACKAGE_NAME = "liquidation-harness"
CONFIG_FIELDS = (
    "emergency_liquidation",
    "close_positions",
    "cancel_orders",
    "timeout_seconds",
    "max_retries",
    "retry_delay_seconds",
    "deadman_countdown_seconds",
    "deadman_interval_seconds",
)
HEADLINE_FIELDS = ("emergency_liquidation", "timeout_seconds", "max_retries")

# Template box -> the checklist item ids (or id prefixes ending in ".") behind it.
PRE_BOXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Configuration validated", ("pre.config.",)),
    ("Dependencies verified", ("pre.deps.",)),
    ("Tests passing", ("pre.tests.",)),
    ("Testnet verification complete", ("scenario.", "criteria.")),
)
POST_BOXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Manager initialized", ("post.manager",)),
    ("Metrics collection working", ("post.metrics",)),
    ("Audit logs writing", ("post.audit",)),
    ("No critical warnings", ("post.no_critical",)),
    ("Monitoring alerts configured", ("monitoring.alerts",)),
)


@dataclass(frozen=True)
class Box:
    label: str
    ticked: bool
    reason: str = ""


@dataclass(frozen=True)
class ScenarioLine:
    label: str  # "Scenario 1 (Normal)"
    status: ItemStatus
    reason: str

    @property
    def display(self) -> str:
        """PASSED / FAILED / SKIPPED as in the template; broken shows as FAILED (broken)."""
        if self.status is ItemStatus.BROKEN:
            return "FAILED (broken)"
        return self.status.value


@dataclass(frozen=True)
class Report:
    """A filled report. ``blocking`` is empty exactly when ``ready`` is True."""

    ready: bool
    markdown: str
    blocking: tuple[Blocker, ...]
    rollback: tuple[RollbackRow, ...]
    outcomes: tuple[ItemOutcome, ...]
    generated_at: datetime


def build_report(
    results: RunResults,
    *,
    environment: str,
    deployed_by: str | None = None,
    version: str | None = None,
    technical_lead: str | None = None,
    operations: str | None = None,
    config: Mapping[str, Any] | None = None,
    rollback_executed: str | None = None,
    now: datetime | None = None,
    bot_under_test: str | None = None,
    suites: tuple[str, ...] = (),
    not_judged: tuple[str, ...] = (),
) -> Report:
    """Fill the template from ``results``. ``config``: the six LiquidationConfig fields (or a subset
    holding at least emergency_liquidation, timeout_seconds and max_retries). ``now`` defaults to
    the current UTC time; a naive datetime is taken as UTC. ``bot_under_test`` (command and version)
    and ``suites`` (what ran) are shown in the header; ``not_judged``: checklist item ids or prefixes
    ending in "." that the suites run cannot judge (e.g. the project's own tests for a team's bot):
    listed in the header and not blocking."""
    if not environment or not environment.strip():
        raise ValueError(f"environment={environment!r}: must be a non-empty name, e.g. 'testnet'")
    moment = _utc(now)
    outcomes = item_outcomes(results)
    blocking = [b for b in blockers(results, outcomes) if not _matches_any(b.subject, not_judged)]
    rows = rollback_recommendation(outcomes)
    by_id = {o.id: o for o in outcomes}
    context = {
        "ready": not blocking,
        "blocking": blocking,
        "rollback_rows": rows,
        "rollback_advised": rollback_advised(rows),
        "date": moment.strftime("%Y-%m-%d"),
        "environment": environment.strip(),
        "bot_under_test": bot_under_test or "",
        "suites": list(suites),
        "not_judged": list(not_judged),
        "deployed_by": deployed_by or "",
        "version": version if version is not None else _package_version(),
        "pre_boxes": _pre_boxes(results, outcomes),
        "scenarios": _scenarios(outcomes),
        "deployment_time": moment.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "configuration": format_config(config),
        "initial_status": _initial_status([by_id[i] for i in ("post.manager", "post.metrics",
                                                              "post.audit", "post.no_critical")]),
        "post_boxes": [_box(label, pats, outcomes) for label, pats in POST_BOXES],
        "issues": _issues(results),
        "rollback_executed": f"Yes: {rollback_executed}" if rollback_executed else "No",
        "technical_lead": technical_lead or "",
        "operations": operations or "",
        "outcomes": outcomes,
        "run": {
            "directory": str(results.directory),
            "summary": _counts_sentence(results),
            "unknown_items": unknown_item_ids(results),
            "warnings": list(results.warnings),
        },
    }
    markdown = _template().render(**context)
    return Report(not blocking, markdown, tuple(blocking), tuple(rows), tuple(outcomes), moment)


def _matches_any(subject: str, patterns: tuple[str, ...]) -> bool:
    return any(subject.startswith(p) if p.endswith(".") else subject == p for p in patterns)


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write ``deployment-report-YYYYmmdd-HHMMSS.md`` into ``out_dir`` (created); never overwrites."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"deployment-report-{report.generated_at:%Y%m%d-%H%M%S}"
    path = directory / f"{stem}.md"
    serial = 1
    while True:
        try:
            with path.open("x", encoding="utf-8") as handle:
                handle.write(report.markdown)
            return path
        except FileExistsError:
            serial += 1
            path = directory / f"{stem}-{serial}.md"


def format_config(config: Mapping[str, Any] | None) -> str:
    """``emergency_liquidation=True, timeout=5s, retries=3`` (+ the other fields given)."""
    if config is None:
        return "not provided (pass the effective configuration with --config)"
    unknown = sorted(set(config) - set(CONFIG_FIELDS))
    if unknown:
        raise ValueError(f"config has unknown field(s) {unknown}; allowed: {', '.join(CONFIG_FIELDS)}")
    missing = [name for name in HEADLINE_FIELDS if name not in config]
    if missing:
        raise ValueError(f"config lacks {missing}; the report needs {', '.join(HEADLINE_FIELDS)}")
    parts = [
        f"emergency_liquidation={config['emergency_liquidation']}",
        f"timeout={_seconds(config['timeout_seconds'], 'timeout_seconds')}",
        f"retries={config['max_retries']}",
    ]
    extra = []
    for name in ("close_positions", "cancel_orders"):
        if name in config:
            extra.append(f"{name}={config[name]}")
    if "retry_delay_seconds" in config:
        extra.append(f"retry_delay={_seconds(config['retry_delay_seconds'], 'retry_delay_seconds')}")
    if "deadman_countdown_seconds" in config:
        countdown = config["deadman_countdown_seconds"]
        extra.append("deadman=off" if countdown == 0 else f"deadman={_seconds(countdown, 'deadman_countdown_seconds')}")
    return ", ".join(parts) + (f" ({', '.join(extra)})" if extra else "")


def _seconds(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"config {name}={value!r}: must be a number of seconds")
    return f"{value:g}s"


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=timezone.utc)
    return now.astimezone(timezone.utc)


def _package_version() -> str:
    try:
        return importlib.metadata.version(PACKAGE_NAME)
    except importlib.metadata.PackageNotFoundError:
        return ""


def _select(outcomes: list[ItemOutcome], patterns: tuple[str, ...]) -> list[ItemOutcome]:
    return [
        o for o in outcomes
        if any(o.id.startswith(p) if p.endswith(".") else o.id == p for p in patterns)
    ]


def _box(label: str, patterns: tuple[str, ...], outcomes: list[ItemOutcome]) -> Box:
    selected = _select(outcomes, patterns)
    pending = [o for o in selected if o.status is not ItemStatus.PASSED]
    reason = "; ".join(f"{o.id}: {o.status.value}" for o in pending)
    return Box(label, bool(selected) and not pending, reason)


def _pre_boxes(results: RunResults, outcomes: list[ItemOutcome]) -> list[Box]:
    boxes = [_box(label, pats, outcomes) for label, pats in PRE_BOXES]
    tests = boxes[2]
    passed, total = results.count(ResultStatus.PASSED), results.total
    others = [f"{n} {s.value}" for s, n in results.counts().items() if n and s is not ResultStatus.PASSED]
    reasons = [r for r in (tests.reason, ", ".join(others)) if r]
    boxes[2] = Box(f"Tests passing ({passed}/{total})", tests.ticked and passed == total,
                   "; ".join(reasons))
    return boxes


def _scenarios(outcomes: list[ItemOutcome]) -> list[ScenarioLine]:
    lines = []
    for o in outcomes:
        parts = o.id.split(".")
        if parts[0] == "scenario" and len(parts) == 3:
            label = f"Scenario {parts[1]} ({parts[2].capitalize()})"
            lines.append(ScenarioLine(label, o.status, o.reason))
    return lines


def _initial_status(post: list[ItemOutcome]) -> str:
    failed = [o for o in post if o.status.is_failure]
    unverified = [o for o in post if o.status is not ItemStatus.PASSED and not o.status.is_failure]
    if failed:
        return "❌ Unhealthy (" + "; ".join(f"{o.id}: {o.status.value}" for o in failed) + ")"
    if unverified:
        return "⚠️ Unverified (" + "; ".join(f"{o.id}: {o.status.value}" for o in unverified) + ")"
    return "✅ Healthy"


def _issues(results: RunResults) -> list[str]:
    issues = []
    for r in results.failures():
        items = ", ".join(r.checklist_items) or "no checklist item"
        message = one_line(r.message) if r.message else "no message"
        issues.append(f"`{r.full_name}` [{r.name}] ({items}) {r.status.value.upper()}: {message}")
    return issues


def _counts_sentence(results: RunResults) -> str:
    counts = ", ".join(f"{n} {s.value}" for s, n in results.counts().items())
    return (f"{results.total} results, the latest attempt of each test; 'Tests passing' counts "
            f"all of them: {counts}.")


def _cell(value: object) -> str:
    return one_line(str(value), limit=500).replace("|", "\\|")


def _template() -> jinja2.Template:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    return env.from_string(template_text())


def template_text() -> str:
    """The packaged template's source (reports/templates/deployment_report.md is a copy of it)."""
    return (resources.files("harness.report") / "templates" / TEMPLATE_NAME).read_text(
        encoding="utf-8"
    )
