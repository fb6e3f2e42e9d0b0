"""Click commands ``report`` and ``audit``; harness/cli.py adds them to ``liquidation-harness``.

Exit codes of ``report``: 0 every required item passed (the verdict says at which evidence level),
1 not ready, 2 usage error (bad option, missing or empty results directory, unreadable --config).
``report --verify-attestation FILE``: 0 when signature and digests check out, 1 when not.
``audit``: 0, or 2 when the file is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from harness.core.audit import AuditEvent, AuditFileError, read_audit
from harness.core.config import ENVIRONMENTS, build_config, load_config, profile
from harness.core.errors import ConfigError
from harness.report.audit_summary import AuditSummary, LiquidationRun, bundle_logs, summarize_audit
from harness.report.html import generate_html
from harness.report.render import build_report, write_report
from harness.report.results import ResultsError, RunResults, load_results

ENVIRONMENT_KEYS = ("environment", "TRADING_ENV", "env")


@click.command("report")
@click.option("--results", "results_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="allure-results directory written by pytest --alluredir; repeat it to combine runs "
                   "(e.g. a simulator run and a testnet run): the report says which evidence came from where.")
@click.option("--out", "out_dir", default=Path("reports/out"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the markdown report, its attestation (and allure-report/ for the HTML).")
@click.option("--environment", default=None,
              help="TRADING_ENV named in the report. Default: the runs' own (harness-run.json / environment.properties).")
@click.option("--deployed-by", default=None, help="Name for 'Deployed By' (blank when absent).")
@click.option("--deployment-time", default=None, help="Deployment time for a post-deployment report (blank when absent).")
@click.option("--version", "version", default=None,
              help="Version deployed. Default: the bot under test's version.")
@click.option("--technical-lead", default=None, help="Technical Lead name for the sign-off (blank when absent).")
@click.option("--operations", default=None, help="Operations name for the sign-off (blank when absent).")
@click.option("--config", "config_file", default=None,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Effective LiquidationConfig as a JSON or TOML file (flat, or under a "
                   "'liquidation' table).")
@click.option("--rollback-executed", default=None,
              help="If a rollback was executed: its reason and outcome (default: No).")
@click.option("--sign-key", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="ed25519 private key (PEM): sign the attestation written beside the report (DSSE).")
@click.option("--verify-attestation", "attestation", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Check an attestation (signature, report and results digests) instead of writing a report.")
@click.option("--public-key", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="With --verify-attestation: the signer's ed25519 public key (PEM). Default: the one beside it.")
@click.option("--html/--no-html", default=True, show_default=True,
              help="Also build the single-file Allure HTML report (needs the Allure 3 CLI).")
def report_command(
    results_dirs: tuple[Path, ...],
    out_dir: Path,
    environment: str | None,
    deployed_by: str | None,
    deployment_time: str | None,
    version: str | None,
    technical_lead: str | None,
    operations: str | None,
    config_file: Path | None,
    rollback_executed: str | None,
    sign_key: Path | None,
    attestation: Path | None,
    public_key: Path | None,
    html: bool,
) -> None:
    """Fill the Deployment Validation Report from one or more allure-results directories.

    Exits 0 when every required item passed (the verdict line says on what evidence), 1 when not,
    2 on usage errors."""
    from harness.attest import AttestationError, attestation_path, build_statement, load_signing_key, verify_attestation, write_statement

    if attestation is not None:
        try:
            check = verify_attestation(attestation, public_key)
        except AttestationError as exc:
            raise click.BadParameter(str(exc), param_hint="--verify-attestation") from exc
        for line in check.lines:
            click.echo(line)
        click.echo("ATTESTATION OK" if check.ok else "ATTESTATION CHECK FAILED")
        click.get_current_context().exit(0 if check.ok else 1)
    if not results_dirs:
        raise click.BadParameter("at least one --results directory is needed (or --verify-attestation FILE)",
                                 param_hint="--results")
    if sign_key is not None:
        try:
            load_signing_key(sign_key)
        except AttestationError as exc:
            raise click.BadParameter(str(exc), param_hint="--sign-key") from exc
    runs = []
    for directory in results_dirs:
        try:
            runs.append(load_results(directory))
        except ResultsError as exc:
            raise click.BadParameter(str(exc), param_hint="--results") from exc
    config = _load_config(config_file, environment or _environment(None, runs[0])) if config_file else None
    try:
        report = build_report(
            runs, environment=environment or None, deployed_by=deployed_by,
            version=version, technical_lead=technical_lead, operations=operations,
            config=config, rollback_executed=rollback_executed, deployment_time=deployment_time,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--config / --environment") from exc
    path = write_report(report, out_dir)
    click.echo(f"Deployment report: {path}")
    statement = build_statement(report, path, [run.directory for run in runs])
    click.echo(f"Attestation: {write_statement(statement, attestation_path(path), sign_key)}")
    for run, level in zip(runs, report.evidence, strict=True):
        click.echo(f"Evidence: {run.directory}: {level.description}")
    if html:
        index = generate_html(results_dirs[-1], out_dir / "allure-report",
                              log=lambda message: click.echo(message, err=True))
        if index is not None:
            click.echo(f"Allure HTML report: {index}")
    if report.ready:
        click.echo(report.verdict.value)
        for gap in report.production_gaps:
            click.echo(f"  - {gap}")
        return
    click.echo("NOT READY FOR SIGN-OFF; blocking:")
    for blocker in report.blocking:
        reason = f" ({blocker.reason})" if blocker.reason else ""
        click.echo(f"  - {blocker.subject}: {blocker.status.value}{reason}")
    click.get_current_context().exit(1)


def _environment(option: str | None, run: RunResults) -> str:
    if option:
        return option
    for key in ENVIRONMENT_KEYS:
        if run.environment.get(key):
            return run.environment[key]
    return os.environ.get("TRADING_ENV") or "unknown"


def _load_config(path: Path, environment: str | None = None) -> Mapping[str, Any]:
    """The effective configuration the deployment will use: the environment's profile, then the
    file (TOML as the engine reads it; JSON with the same keys), validated by the engine's rules."""
    profile_env = environment if environment in ENVIRONMENTS else None
    try:
        if path.suffix.lower() == ".json":
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and isinstance(data.get("liquidation"), dict):
                data = data["liquidation"]
            if not isinstance(data, dict):
                raise ConfigError("config_file", str(path), "expected a mapping of LiquidationConfig fields")
            return build_config({**profile(profile_env or "production"), **data}, dict.fromkeys(data, str(path))).model_dump()
        return load_config(profile_env, path, environ={}).model_dump()
    except (OSError, ValueError) as exc:  # ConfigError and JSONDecodeError are ValueErrors
        raise click.BadParameter(str(exc), param_hint="--config") from exc


@click.command("audit")
@click.option("--file", "audit_file", default=Path("logs/audit.jsonl"), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The audit trail (JSONL).")
@click.option("--last", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many recent liquidation runs to show.")
@click.option("--summary", is_flag=True,
              help="Also show event counts by type, runs by state, average/max execution time "
                   "and the errors of FAILED/PARTIAL runs.")
@click.option("--bundle", is_flag=True,
              help="Also write liquidation_logs_YYYYmmdd_HHMMSS.tar.gz of the audit file's "
                   "directory (rollback step 2).")
@click.option("--bundle-dir", default=Path("."), show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where --bundle writes the archive.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def audit_command(
    audit_file: Path, last: int, summary: bool, bundle: bool, bundle_dir: Path, as_json: bool
) -> None:
    """Show recent liquidation runs from the audit trail (corrupted lines are skipped)."""
    try:
        audit = read_audit(audit_file)
        archive = bundle_logs(audit_file.parent, bundle_dir) if bundle else None
    except AuditFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--file") from exc
    result = summarize_audit(audit, last=last)
    if audit.skipped_lines:
        click.echo(f"warning: skipped {audit.skipped_lines} corrupted line(s) in {audit_file}",
                   err=True)
    if as_json:
        payload = result.to_dict() if summary else {
            "recent_runs": [run.to_dict() for run in result.recent_runs],
            "skipped_lines": result.skipped_lines,
        }
        payload["file"] = str(audit_file)
        payload["warnings"] = list(audit.warnings)
        if archive is not None:
            payload["bundle"] = str(archive)
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(_runs_table(result.recent_runs))
    if summary:
        click.echo(_summary_text(result))
    if archive is not None:
        click.echo(f"Logs bundled: {archive}")


def _runs_table(runs: tuple[LiquidationRun, ...]) -> str:
    if not runs:
        return "No liquidation runs found."
    lines = [f"{'STARTED (UTC)':<20} {'CORRELATION ID':<36} {'STATE':<10} {'CLOSED':>6} "
             f"{'FAILED':>6} {'CANCELLED':>9} {'DURATION':>9}  REASON"]
    for run in runs:
        duration = f"{run.duration_seconds:.3f}s" if run.duration_seconds is not None else "-"
        lines.append(
            f"{run.started_at:%Y-%m-%d %H:%M:%S}  {run.correlation_id:<36} {run.state:<10} "
            f"{run.positions_closed:>6} {run.positions_failed:>6} {run.orders_cancelled:>9} "
            f"{duration:>9}  {run.reason}"
        )
    return "\n".join(lines)


def _summary_text(result: AuditSummary) -> str:
    def seconds(value: float | None) -> str:
        return f"{value:.3f} seconds" if value is not None else f"n/a (no {AuditEvent.LIQUIDATION_COMPLETE.value})"

    lines = ["", f"Events: {result.total_events} (skipped corrupted lines: {result.skipped_lines})"]
    lines += [f"  {count:>6} {name}" for name, count in result.event_counts.items()]
    lines.append("Runs by state: " + (", ".join(f"{state}={n}" for state, n in
                                                result.runs_by_state.items()) or "none"))
    lines.append(f"Average execution time: {seconds(result.average_duration_seconds)}")
    lines.append(f"Max execution time: {seconds(result.max_duration_seconds)}")
    if result.problem_runs:
        lines.append("Errors of FAILED/PARTIAL runs:")
        for run in result.problem_runs:
            lines.append(f"  {run.correlation_id} {run.state}:")
            lines += [f"    - {error}" for error in run.errors] or ["    (no errors recorded)"]
    return "\n".join(lines)
