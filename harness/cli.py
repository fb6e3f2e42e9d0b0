"""``liquidation-harness``: the command line of the engine and the verification harness.

Exit codes a CI gate can trust: 0 success / ready, 1 the check ran and failed (not ready, not
flat), 2 usage or configuration errors (the message names the field, the value and what is allowed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from harness.clickrun import run_click
from harness.core.config import ENVIRONMENT_VARIABLE, ENVIRONMENTS, build_config, load_raw
from harness.core.errors import ConfigError
from harness.core.validation import ConfigValidator, Severity, ValidationReport

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_ICONS = {Severity.CRITICAL: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="liquidation-harness")
def cli() -> None:
    """Emergency-liquidation engine for Binance USD-M futures and its deployment-verification harness.

    Exit codes: 0 success, 1 the check failed, 2 usage or configuration error.
    """


def render_validation(report: ValidationReport) -> str:
    """The checklist's human form: Valid, Ready, one line per finding, and the verdict."""
    lines = [
        f"{'✓' if report.valid else '✗'} Valid: {report.valid}",
        f"{'✓' if report.ready else '✗'} Ready: {report.ready}",
    ]
    for finding in report.findings:
        lines.append(f"{_ICONS[finding.severity]} [{finding.severity.value}] {finding.message}")
    if report.ready:
        lines.append("✅ Configuration validated successfully")
    else:
        why = "strict mode treats WARNINGs as blocking" if report.valid and report.strict and not report.by_severity(Severity.CRITICAL) else "fix the findings above"
        lines.append(f"❌ Configuration NOT ready for {report.environment}: {why}")
    return "\n".join(lines)


@cli.command("validate")
@click.option(
    "--env",
    "environment",
    type=click.Choice(ENVIRONMENTS),
    envvar=ENVIRONMENT_VARIABLE,
    default="production",
    show_default=True,
    help=f"Environment profile to validate against (default from ${ENVIRONMENT_VARIABLE}).",
)
@click.option("--strict", is_flag=True, help="Treat WARNING findings as blocking: Ready only with none.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with liquidation settings (top-level keys or a [liquidation] table).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON for machines instead of text.")
def validate_command(environment: str, strict: bool, config_file: Path | None, as_json: bool) -> None:
    """Validate the liquidation configuration: types, ranges, consistency, security, defaults.

    The effective configuration is the environment's profile, then --config, then
    LIQUIDATION_<FIELD> variables, then EMERGENCY_LIQUIDATION_DISABLED=true (the rollback switch).
    Exit 0 when valid and ready, 1 when not, 2 when the configuration cannot be read.
    """
    try:
        environment, values, sources = load_raw(environment, config_file)
        build_config(values, sources)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    report = ConfigValidator(env=environment, strict=strict).validate(values)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else render_validation(report))
    sys.exit(EXIT_OK if report.valid and report.ready else EXIT_FAILED)


def _register_commands() -> None:
    """Commands that live beside their subsystems (imported here so `--help` lists them all)."""
    from harness.bench import bench_command
    from harness.bot import bot_command
    from harness.exchanges.sim.cli import simulate_command
    from harness.panic import liquidate_command
    from harness.report.cli import audit_command, report_command
    from harness.verify import verify_command

    for command in (verify_command, report_command, bot_command, simulate_command, audit_command, bench_command,
                    liquidate_command):
        cli.add_command(command)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (click's usage errors exit 2)."""
    return run_click(cli, argv, "liquidation-harness")


if __name__ == "__main__":
    sys.exit(main())
