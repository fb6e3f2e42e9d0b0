"""Fill the Deployment Validation Report (CHECKLIST.md's template) from one or more runs' results.

Boxes are ticked only when every checklist item behind them PASSED; anything else leaves the box
empty with the reason appended. "Tests passing (N/M)" counts all results of the runs (the latest
attempt of each test): N passed out of M.

The verdict never claims more than the evidence shows (harness.report.evidence):

- NOT READY FOR SIGN-OFF: a required checklist item did not pass, or a failure is unaccounted for;
- PASSED ON THE EMBEDDED EXCHANGE - run on testnet or Demo Trading before production: everything
  passed, but some scenario has no passing result from testnet / Demo Trading for this bot version
  and config digest;
- READY FOR PRODUCTION: everything passed and every checklist scenario passed on testnet / Demo
  Trading (plain or through a fault proxy) for the same bot version and config digest.

With several runs, an item counts as failed when it failed in any run, as passed when it passed in
some run and failed in none. The Production Deployment and Post-Deployment sections are filled
only from ``production`` evidence (``verify --post-deploy``); otherwise they say "not deployed yet".
Fields a person fills stay visibly blank unless given.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
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
from harness.report.evidence import BotIdentity, Evidence
from harness.report.results import ResultStatus, RunResults, TestResult
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
BLANK = "________"  # a field a person must fill, visibly empty
NOT_DEPLOYED = "not deployed yet (no post-deployment run: `liquidation-harness verify --post-deploy` against production fills this)"


class Verdict(StrEnum):
    NOT_READY = "NOT READY FOR SIGN-OFF"
    EMBEDDED_ONLY = "PASSED ON THE EMBEDDED EXCHANGE - run on testnet or Demo Trading before production"
    READY_FOR_PRODUCTION = "READY FOR PRODUCTION"


@dataclass(frozen=True)
class PastRun:
    """One earlier verification run shown in the report's run history."""

    when: str
    verdict: str
    evidence: str
    directory: str = ""

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
    ("Keys valid", ("post.keys",)),
    ("Dead-man's switch armable", ("post.deadman",)),
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
    where: str = ""  # where it passed / ran

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
    verdict: Verdict = Verdict.NOT_READY
    production_gaps: tuple[str, ...] = ()  # why it is not READY FOR PRODUCTION although it passed
    bot: BotIdentity = field(default_factory=BotIdentity.default)
    evidence: tuple[Evidence, ...] = ()  # the levels of the runs, in the order given


def build_report(
    results: RunResults | Sequence[RunResults],
    *,
    environment: str | None = None,
    deployed_by: str | None = None,
    version: str | None = None,
    technical_lead: str | None = None,
    operations: str | None = None,
    config: Mapping[str, Any] | None = None,
    rollback_executed: str | None = None,
    now: datetime | None = None,
    bot: BotIdentity | None = None,
    suites: tuple[str, ...] = (),
    not_judged: tuple[str, ...] = (),
    history: Sequence[PastRun] = (),
    deployment_time: str | None = None,
) -> Report:
    """Fill the template from one run's ``results`` or several (e.g. a simulator run and a testnet run).

    ``environment``: TRADING_ENV to name (default: the runs' own); the Environment line always says
    what ran. ``config``: LiquidationConfig fields (at least emergency_liquidation, timeout_seconds
    and max_retries). ``bot``: the bot under test (default: harness.bot with this package's version
    and the runs' config digest). ``history``: earlier runs' verdicts. ``now`` defaults to the
    current UTC time; a naive datetime is taken as UTC. ``suites``: what ran (shown in the header);
    ``not_judged``: checklist item ids or prefixes ending in "." that the suites run cannot judge
    (e.g. the project's own tests for a team's bot): listed in the header and not blocking."""
    if environment is not None and not environment.strip():
        raise ValueError(f"environment={environment!r}: must be a non-empty name, e.g. 'testnet', or omitted")
    runs = [results] if isinstance(results, RunResults) else list(results)
    if not runs:
        raise ValueError("results: at least one results directory is needed")
    moment = _utc(now)
    outcomes = combined_outcomes(runs)
    merged = _merged(runs)
    blocking = [b for b in blockers(merged, outcomes) if not _matches_any(b.subject, not_judged)]
    rows = rollback_recommendation(outcomes)
    subject = bot or _default_bot(runs)
    gaps = production_gaps(runs, outcomes, subject)
    verdict = Verdict.NOT_READY if blocking else Verdict.EMBEDDED_ONLY if gaps else Verdict.READY_FOR_PRODUCTION
    production = [o for o in _production_outcomes(runs)]
    deployed = bool(production)
    by_id = {o.id: o for o in production}
    context = {
        "ready": not blocking,
        "verdict": verdict.value,
        "production_ready": verdict is Verdict.READY_FOR_PRODUCTION,
        "gaps": gaps,
        "blocking": blocking,
        "rollback_rows": rows,
        "rollback_advised": rollback_advised(rows),
        "date": moment.strftime("%Y-%m-%d"),
        "environment": _environment_line(runs, environment),
        "evidence_runs": [_run_line(n, run) for n, run in enumerate(runs, 1)],
        "harness_version": _package_version() or "unknown",
        "bot": subject.describe(),
        "suites": list(suites),
        "not_judged": list(not_judged),
        "deployed_by": deployed_by or BLANK,
        "version": version if version is not None else (subject.version or _package_version() or BLANK),
        "pre_boxes": _pre_boxes(merged, outcomes, gaps),
        "scenarios": _scenarios(outcomes),
        "deployed": deployed,
        "not_deployed": NOT_DEPLOYED,
        "deployment_time": deployment_time or BLANK,
        "verified_at": _post_deploy_time(runs),
        "configuration": format_config(config),
        "initial_status": _initial_status([by_id[i] for i in ("post.manager", "post.metrics", "post.audit",
                                                              "post.no_critical", "post.keys", "post.deadman") if i in by_id]) if deployed else "",
        "post_boxes": [_box(label, pats, production) for label, pats in POST_BOXES] if deployed else [],
        "issues": _issues(merged),
        "rollback_executed": f"Yes: {rollback_executed}" if rollback_executed else "No",
        "technical_lead": technical_lead or BLANK,
        "operations": operations or BLANK,
        "signed_off": verdict is Verdict.READY_FOR_PRODUCTION,
        "outcomes": outcomes,
        "history": list(history),
        "run": {
            "directory": ", ".join(str(r.directory) for r in runs),
            "summary": _counts_sentence(merged),
            "unknown_items": unknown_item_ids(merged),
            "warnings": list(merged.warnings),
        },
    }
    markdown = _template().render(**context)
    return Report(not blocking, markdown, tuple(blocking), tuple(rows), tuple(outcomes), moment, verdict,
                  tuple(gaps), subject, tuple(_run_evidence(r) for r in runs))


def _merged(runs: list[RunResults]) -> RunResults:
    if len(runs) == 1:
        return runs[0]
    return RunResults(runs[0].directory, tuple(r for run in runs for r in run.results), dict(runs[0].environment),
                      tuple(w for run in runs for w in run.warnings), runs[0].info)


def combined_outcomes(runs: Sequence[RunResults]) -> list[ItemOutcome]:
    """One outcome per checklist item over several runs: failed/broken anywhere wins, then passed
    in some run, then the worst of the rest (unknown, skipped, not run)."""
    per_run = [item_outcomes(run) for run in runs]
    if len(per_run) == 1:
        return per_run[0]
    combined = []
    for index, first in enumerate(per_run[0]):
        candidates = [outcomes[index] for outcomes in per_run]
        every = tuple(r for c in candidates for r in c.results)
        failed = [c for c in candidates if c.status.is_failure]
        passed = [c for c in candidates if c.status is ItemStatus.PASSED]
        order = (ItemStatus.UNKNOWN, ItemStatus.SKIPPED, ItemStatus.MISSING)
        pick = failed[0] if failed else passed[0] if passed else min(candidates, key=lambda c: order.index(c.status))
        combined.append(ItemOutcome(first.item, pick.status, pick.reason, every))
    return combined


def _run_evidence(run: RunResults) -> Evidence:
    if run.info is not None:
        return run.info.evidence
    levels = {r.evidence for r in run.results}
    return levels.pop() if len(levels) == 1 else Evidence.UNKNOWN


def _default_bot(runs: Sequence[RunResults]) -> BotIdentity:
    for run in runs:
        if run.info is not None and run.info.bot is not None:
            return run.info.bot
    return BotIdentity.default()


def _same_subject(run: RunResults, bot: BotIdentity) -> str:
    """Empty when ``run`` tested ``bot`` (version and config digest, where both are known); else why not."""
    tested = run.info.bot if run.info is not None else None
    if tested is None:
        return f"{run.directory}: the run does not record which bot version and config it tested"
    problems = []
    if bot.version and tested.version and bot.version != tested.version:
        problems.append(f"bot version {tested.version}, not {bot.version}")
    if bot.config_digest and tested.config_digest and bot.config_digest != tested.config_digest:
        problems.append(f"config {tested.config_digest}, not {bot.config_digest}")
    if not tested.config_digest:
        problems.append("no config digest recorded")
    return f"{run.directory}: tested {'; '.join(problems)}" if problems else ""


def production_gaps(runs: Sequence[RunResults], outcomes: Sequence[ItemOutcome], bot: BotIdentity) -> list[str]:
    """Why the evidence does not reach READY FOR PRODUCTION; [] when every scenario passed on
    testnet / Demo Trading for ``bot``'s version and config digest."""
    eligible = {}
    mismatches = []
    for run in runs:
        if _run_evidence(run).is_exchange_evidence or any(r.evidence.is_exchange_evidence for r in run.results):
            problem = _same_subject(run, bot)
            if problem:
                mismatches.append(problem)
            else:
                eligible[str(run.directory)] = run
    gaps = []
    for o in outcomes:
        if not o.id.startswith("scenario."):
            continue
        on_exchange = [r for run in eligible.values() for r in run.results
                       if o.id in r.checklist_items and r.status is ResultStatus.PASSED and r.evidence.is_exchange_evidence]
        failed_there = [r for run in eligible.values() for r in run.results
                        if o.id in r.checklist_items and r.evidence.is_exchange_evidence and r.status is not ResultStatus.PASSED]
        if not on_exchange or failed_there:
            levels = sorted({r.evidence.value for r in o.results if r.status is ResultStatus.PASSED}) or ["nowhere"]
            gaps.append(f"{o.id} passed only on: {', '.join(levels)} (needs testnet or Demo Trading)")
    return mismatches + gaps if gaps else []


def _where(results: Sequence[TestResult]) -> str:
    places: dict[str, list[str]] = {}
    for r in results:
        key = r.evidence.description + (f" at {r.evidence_target}" if r.evidence.is_exchange_evidence and r.evidence_target else "")
        places.setdefault(key, []).append(r.status.value)
    return "; ".join(f"{place}: {', '.join(sorted(set(states)))}" for place, states in places.items())


def _environment_line(runs: Sequence[RunResults], trading_env: str | None) -> str:
    targets = []
    for run in runs:
        level = _run_evidence(run)
        target = run.info.target if run.info is not None and run.info.target else run.environment.get("Target", "")
        targets.append(f"{level.description}" + (f" [{target}]" if target else ""))
    envs = sorted({run.info.environment for run in runs if run.info is not None and run.info.environment}
                  | {run.environment.get("TRADING_ENV", "") for run in runs if run.environment.get("TRADING_ENV")})
    named = trading_env.strip() if trading_env else ", ".join(envs) or "unknown"
    return f"ran on {' + '.join(dict.fromkeys(targets))}; TRADING_ENV={named}"


def _run_line(number: int, run: RunResults) -> str:
    level = _run_evidence(run)
    info = run.info
    when = f", finished {info.finished}" if info is not None and info.finished else ""
    counts = ", ".join(f"{n} {s.value}" for s, n in run.counts().items() if n)
    mode = " (post-deployment checks)" if info is not None and info.post_deploy else ""
    return f"{number}. `{run.directory}`: {level.description}{mode}{when}: {counts}"


def _production_outcomes(runs: Sequence[RunResults]) -> list[ItemOutcome]:
    """Outcomes of the post-deployment items from production (post-deploy) evidence only."""
    production = [r for run in runs for r in run.results if r.evidence is Evidence.PRODUCTION]
    if not production:
        return []
    only = RunResults(runs[0].directory, tuple(production))
    return [o for o in item_outcomes(only) if o.id.startswith(("post.", "monitoring."))]


def _post_deploy_time(runs: Sequence[RunResults]) -> str:
    times = [run.info.finished for run in runs if run.info is not None and run.info.post_deploy and run.info.finished]
    return max(times) if times else ""


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


def _pre_boxes(results: RunResults, outcomes: list[ItemOutcome], gaps: Sequence[str] = ()) -> list[Box]:
    boxes = [_box(label, pats, outcomes) for label, pats in PRE_BOXES]
    testnet = boxes[3]
    if testnet.ticked and gaps:
        boxes[3] = Box(testnet.label, False, "not on testnet / Demo Trading: " + "; ".join(gaps))
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
            lines.append(ScenarioLine(label, o.status, o.reason, _where(o.results) or "no result"))
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
