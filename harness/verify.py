"""``liquidation-harness verify``: the one-command deployment verification.

Runs the project's test suite and the checklist scenarios (pytest, in a subprocess, streaming its
progress); with a bot under test (``--bot-cmd``), only the scenarios, against that bot (plus the
conformance kit when ``--order-manager`` is given): the project's own tests belong to its CI. It writes allure-results, fills the Deployment Validation Report, generates the single-file
Allure HTML report where Node.js and the Allure 3 package are installed, prints a summary table
and both paths, and exits 0 only when the run is READY FOR SIGN-OFF.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from harness.core.config import ENVIRONMENTS, load_config
from harness.core.errors import ConfigError
from harness.report import ItemStatus, Report, ResultsError, build_report, generate_html, load_results, write_report
from harness.testkit.botproc import BotUnderTest

DEFAULT_PATHS = ("tests", "scenarios")
#: ini settings the scenarios need when no pytest.ini of this project is in reach (installed use)
SCENARIO_INI = ("asyncio_mode=auto", "asyncio_default_fixture_loop_scope=function")
#: checklist items no scenario judges for a bot under test: the project's own test suite (its CI) ...
PROJECT_SUITE_ITEMS = ("pre.tests.",)
#: ... and, without --order-manager (the conformance kit), the in-process order-manager checks
ORDER_MANAGER_ITEMS = ("pre.deps.order_manager", "pre.deps.methods")
#: pytest exit codes that mean the run itself could not happen (no report can be trusted)
PYTEST_CANNOT_RUN = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}
EXIT_READY, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2


def pytest_command(paths: tuple[str, ...], results_dir: Path, *, testnet: bool, environment: str | None,
                   exchange_url: str | None, symbols: str | None, workers: str, extra: tuple[str, ...]) -> list[str]:
    command = [sys.executable, "-m", "pytest", *paths, f"--alluredir={results_dir}", "-p", "no:cacheprovider", "-q", "-rfEs"]
    if workers not in ("0", "1"):
        command += ["-n", workers]
    if testnet:
        command.append("--testnet")
    if environment:
        command.append(f"--env={environment}")
    if exchange_url:
        command.append(f"--exchange-url={exchange_url}")
    if symbols:
        command.append(f"--symbols={symbols}")
    return command + list(extra)


# -- the bot under test (options, which suites run, how the report names it) -------------------
def _package_root() -> Path:
    import harness

    return Path(harness.__file__).resolve().parent


def scenario_dir() -> Path:
    """The checklist scenarios: shipped in the package (``harness/scenarios``), else the checkout's ``scenarios/``."""
    for candidate in (_package_root() / "scenarios", _package_root().parent / "scenarios"):
        if (candidate / "conftest.py").is_file():
            return candidate
    raise click.UsageError("the checklist scenarios are not installed with this package (no harness/scenarios)")


def project_tests_dir() -> Path | None:
    """This project's own tests/ (only in a checkout)."""
    tests = _package_root().parent / "tests"
    return tests if (tests / "conftest.py").is_file() else None


def suites_to_run(bot: BotUnderTest, bot_given: bool, order_manager: str | None) -> tuple[list[str], list[str]]:
    """(pytest paths, suite names for the report). Without --bot-cmd: the project's tests (in a
    checkout) and the scenarios; with it: the scenarios only (which include the conformance kit)."""
    scenarios = str(scenario_dir())
    names = ["checklist scenarios", "success criteria", "post-deployment checks"]
    if order_manager:
        names.append(f"conformance kit ({order_manager})")
    tests = project_tests_dir()
    if bot_given or tests is None:
        return [scenarios], names
    return [str(tests), scenarios], ["project test suite (tests/)", *names]


def out_of_scope(spec: BotUnderTest, order_manager: str | None) -> tuple[str, ...]:
    """Checklist items the suites that run cannot judge (listed in the report, not blocking): the
    project's own tests with a bot under test or without tests/ at hand (installed use); the
    in-process order-manager checks for a bot other than harness.bot without --order-manager."""
    if not spec.command and project_tests_dir() is not None:
        return ()
    items = PROJECT_SUITE_ITEMS
    if not spec.is_reference and not order_manager:
        items += ORDER_MANAGER_ITEMS
    return items


def bot_pytest_args(options: dict[str, str | None], order_manager: str | None) -> list[str]:
    """The --bot-* options (and --order-manager) as pytest arguments for the plugin."""
    args = [f"--{name.replace('_', '-')}={value}" for name, value in options.items() if value not in (None, "")]
    if order_manager:
        args.append(f"--order-manager={order_manager}")
    return args


def describe_bot_under_test(bot: BotUnderTest) -> str:
    """``<command> (version <git commit or unknown>, cwd <dir>)`` for the report and the summary."""
    return f"{bot.describe()} (version {bot.version()}, cwd {bot.cwd or Path.cwd()})"


def bot_options(command: click.Command) -> click.Command:
    """The bot-under-test options of ``verify`` (the same names as the pytest plugin's)."""
    for name, text in reversed((
        ("--bot-cmd", "The bot under test, a command line (shlex-split, no shell). Default: python -m harness.bot. "
                      "With it, only the scenarios run, against that bot."),
        ("--bot-cwd", "Directory the bot under test starts in (default: the current directory); its git commit is "
                      "the version shown in the report."),
        ("--bot-ready", "How the bot says it is ready: a stdout prefix (default READY), stdout:PREFIX, file or request."),
        ("--bot-ready-timeout", "Seconds the bot has to become ready (default 30)."),
        ("--bot-stop-signal", "Signal that stops the bot (default SIGTERM)."),
        ("--bot-metrics-url", "The bot's Prometheus endpoint, read by the metrics check."),
        ("--order-manager", "package.module:factory of the bot's OrderExecutionManager: adds the conformance kit."),
    )):
        command = click.option(name, default=None, help=text)(command)
    return command


def run_pytest(command: list[str]) -> int:
    """Run pytest, streaming its output as progress; returns its exit code."""
    click.echo(f"$ {' '.join(command[2:])}")
    started = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            click.echo(line, nl=False)
        code = proc.wait()
    click.echo(f"pytest finished with exit code {code} in {time.monotonic() - started:.1f}s")
    return code


def summary_table(report: Report) -> str:
    """One row per checklist section: passed / total and the items that are not."""
    rows: dict[str, list] = {}
    for outcome in report.outcomes:
        rows.setdefault(outcome.item.feature, []).append(outcome)
    width = max(len(name) for name in rows) if rows else 10
    lines = [f"{'Checklist section'.ljust(width)}  passed  not passed"]
    for feature, outcomes in rows.items():
        passed = sum(o.status is ItemStatus.PASSED for o in outcomes)
        bad = [f"{o.status.icon} {o.item.id} ({o.status.value})" for o in outcomes if o.status is not ItemStatus.PASSED]
        lines.append(f"{feature.ljust(width)}  {passed:>2}/{len(outcomes):<3}  {', '.join(bad) or '-'}")
    return "\n".join(lines)


@click.command("verify")
@click.option("--testnet", is_flag=True, help="Run the scenarios against Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET).")
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), default=None,
              help="TRADING_ENV for the scenarios and the report (default: $TRADING_ENV, else testnet for the run and production for the report's config line).")
@click.option("--exchange-url", default=None, help="Exchange root URL to verify against instead of the embedded exchange.")
@click.option("--symbols", default=None, help="Symbols the scenarios trade (comma-separated).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The liquidation TOML the deployment will use (shown in the report's configuration line).")
@click.option("--deployed-by", default=None, help="Name for the report's 'Deployed By'.")
@click.option("--version", "version", default=None, help="Version being deployed (default: this package's version).")
@click.option("--technical-lead", default=None, help="Technical Lead name for the sign-off.")
@click.option("--operations", default=None, help="Operations name for the sign-off.")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("allure-results"),
              show_default=True, help="Where Allure results are written (emptied first).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/out"),
              show_default=True, help="Where the markdown report and the Allure HTML go.")
@click.option("--html/--no-html", default=True, show_default=True, help="Generate the single-file Allure HTML report (needs Node.js + Allure 3).")
@click.option("--workers", default="2", show_default=True, help="pytest-xdist workers ('auto', a number, or 1 for none).")
@click.option("--path", "paths", multiple=True, help="Test paths to run (default: tests and scenarios; with --bot-cmd the scenarios).")
@bot_options
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def verify_command(testnet: bool, environment: str | None, exchange_url: str | None, symbols: str | None,
                   config_file: Path | None, deployed_by: str | None, version: str | None, technical_lead: str | None,
                   operations: str | None, results_dir: Path, out_dir: Path, html: bool, workers: str,
                   paths: tuple[str, ...], pytest_args: tuple[str, ...], order_manager: str | None = None,
                   **bot: str | None) -> None:
    """Run the test suite and the checklist scenarios, and fill the Deployment Validation Report.

    With --bot-cmd, the scenarios, success criteria and post-deployment checks judge that bot
    (plus the conformance kit with --order-manager); the project's own tests are not run.
    Extra arguments after `--` go to pytest. Exit 0 only when READY FOR SIGN-OFF, 1 when not,
    2 on usage or configuration errors.
    """
    try:
        spec = BotUnderTest.from_options(cmd=bot["bot_cmd"], cwd=bot["bot_cwd"], ready=bot["bot_ready"],
                                         ready_timeout=bot["bot_ready_timeout"], stop_signal=bot["bot_stop_signal"],
                                         metrics_url=bot["bot_metrics_url"])
    except ConfigError as exc:
        click.echo(f"usage error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    bot_given = bool(spec.command)
    if paths:
        run_paths, suites = list(paths), [f"given paths: {', '.join(paths)}"]
    else:
        run_paths, suites = suites_to_run(spec, bot_given, order_manager)
        pytest_args = (*(f"-o{setting}" for setting in SCENARIO_INI), *pytest_args)
    pytest_args = (*bot_pytest_args(bot, order_manager), *pytest_args)
    not_judged = out_of_scope(spec, order_manager)
    bot_line = describe_bot_under_test(spec)
    report_env = environment or os.environ.get("TRADING_ENV") or "production"
    try:
        config = load_config(report_env, config_file).model_dump()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if results_dir.exists():
        shutil.rmtree(results_dir)
    results_dir.mkdir(parents=True)
    click.echo(f"[1/3] Running {', '.join(suites)} ({'testnet' if testnet else exchange_url or 'embedded exchange'})")
    click.echo(f"Bot under test: {bot_line}")
    code = run_pytest(pytest_command(tuple(run_paths), results_dir, testnet=testnet, environment=environment,
                                     exchange_url=exchange_url, symbols=symbols, workers=workers, extra=pytest_args))
    if code in PYTEST_CANNOT_RUN:
        click.echo(f"pytest could not run the verification (exit {code}: {PYTEST_CANNOT_RUN[code]}); see above", err=True)
        sys.exit(EXIT_USAGE)
    click.echo("[2/3] Filling the Deployment Validation Report")
    try:
        results = load_results(results_dir)
    except ResultsError as exc:
        click.echo(f"no results to report: {exc}", err=True)
        sys.exit(EXIT_NOT_READY)
    target = "Binance futures testnet" if testnet else (exchange_url or "the embedded exchange")
    report = build_report(results, environment=f"{report_env} (scenarios run against {target})", deployed_by=deployed_by, version=version,
                          technical_lead=technical_lead, operations=operations, config=config,
                          bot_under_test=bot_line, suites=tuple(suites), not_judged=not_judged)
    report_path = write_report(report, out_dir)
    html_path = None
    if html:
        click.echo("[3/3] Generating the Allure HTML report")
        html_path = generate_html(results_dir, out_dir / "allure-report", log=lambda message: click.echo(f"  {message}", err=True))
    click.echo("")
    click.echo(summary_table(report))
    click.echo("")
    click.echo(f"Suites run: {'; '.join(suites)}")
    click.echo(f"Bot judged: {bot_line}")
    click.echo("Results: " + ", ".join(f"{status.value}={count}" for status, count in results.counts().items()))
    click.echo(f"Deployment report: {report_path}")
    click.echo(f"Allure HTML report: {html_path or 'not generated (see above)'}")
    click.echo(f"Allure results: {results_dir}")
    if report.ready and code == 0:
        click.echo("✅ READY FOR SIGN-OFF")
        sys.exit(EXIT_READY)
    click.echo("❌ NOT READY FOR SIGN-OFF")
    for blocker in report.blocking:
        click.echo(f"  - {blocker.subject}: {blocker.status.value}{f' ({blocker.reason})' if blocker.reason else ''}")
    for row in report.rollback:
        click.echo(f"  rollback matrix: {row.issue} -> severity {row.severity}, rollback {'YES' if row.rollback else 'no'}: {row.action}")
    sys.exit(EXIT_NOT_READY)

