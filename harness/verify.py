"""``liquidation-harness verify``: the one-command deployment verification.

Runs the project's test suite and the checklist scenarios (pytest, in a subprocess, streaming its
progress); with a bot under test (``--bot-cmd``), only the scenarios, against that bot (plus the
conformance kit when ``--order-manager`` is given): the project's own tests belong to its CI. It writes allure-results, fills the Deployment Validation Report, generates the single-file
Allure HTML report where Node.js and the Allure 3 package are installed, prints a summary table
and both paths, and exits 0 only when every required checklist item passed (the verdict line says
at which evidence level: see harness.report.render.Verdict).

No evidence is lost: every argument, the configuration and the target (reachable, keys accepted)
are checked before anything is written; each run gets its own directory
``<out>/runs/<UTC timestamp>/`` (allure-results/, junit.xml, the report, its attestation,
verdict.json, allurerc.mjs) and ``<out>/runs/latest`` points at the last run that produced a report. A run that
is refused or cannot run leaves every earlier run as it was. Allure history is carried from the
previous run, and the report lists the last runs' verdicts.

One sign-off rule (``harness.report.gate``): each run directory gets an ``allurerc.mjs`` quality
gate generated from the checklist; ``verify`` applies it with ``allure quality-gate`` where Allure 3
is installed (``--no-gate`` to skip) and is READY only when the gate and its own verdict both pass;
CI can apply the same file to the same results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import click

from harness.core.config import ENVIRONMENTS, load_config
from harness.core.errors import ConfigError
from harness.report import (
    BotIdentity,
    ItemStatus,
    PastRun,
    Report,
    ResultsError,
    Verdict,
    build_report,
    generate_html,
    load_results,
    write_report,
)
from harness.report.gate import GateResult, run_gate, write_gate_config
from harness.testkit.botproc import BotUnderTest

#: ini settings the scenarios need when no pytest.ini of this project is in reach (installed use)
SCENARIO_INI = ("asyncio_mode=auto", "asyncio_default_fixture_loop_scope=function")
#: checklist items no scenario judges for a bot under test: the project's own test suite (its CI) ...
PROJECT_SUITE_ITEMS = ("pre.tests.",)
#: ... and, without --order-manager (the conformance kit), the in-process order-manager checks
ORDER_MANAGER_ITEMS = ("pre.deps.order_manager", "pre.deps.methods")
#: pytest exit codes that mean the run itself could not happen (no report can be trusted)
PYTEST_CANNOT_RUN = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no tests collected"}
EXIT_READY, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2
RUNS_DIR, LATEST = "runs", "latest"
VERDICT_FILE = "verdict.json"
HISTORY_SHOWN = 5


def pytest_command(paths: tuple[str, ...], results_dir: Path, *, testnet: bool, environment: str | None,
                   exchange_url: str | None, symbols: str | None, workers: str, extra: tuple[str, ...],
                   demo: bool = False, post_deploy: bool = False, junit: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "pytest", *paths, f"--alluredir={results_dir}", "-p", "no:cacheprovider",
               "-q", "-rfEs"]
    if not _runs_project_tests(paths):
        # no scenario uses Hypothesis, and its plugin's end-of-run summary imports all of it (~1 CPU-s);
        # the project's tests do use it, and without its plugin they warn of side effects at import time
        command[-2:-2] = ["-p", "no:hypothesispytest"]
    if junit is not None:
        command.append(f"--junitxml={junit}")
    if workers not in ("0", "1"):
        command += ["-n", workers]
    if testnet:
        command.append("--testnet")
    if demo:
        command.append("--demo")
    if post_deploy:
        command.append("--post-deploy")
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


def _runs_project_tests(paths: tuple[str, ...]) -> bool:
    tests = project_tests_dir()
    return tests is not None and any(Path(path).resolve() == tests.resolve() for path in paths)


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


def bot_identity(bot: BotUnderTest, config: dict) -> BotIdentity:
    """The bot under test as the report names it: the reference bot with the digest of the effective
    configuration; a team's bot with its command and version (its own configuration is not known here)."""
    if bot.is_reference:
        return BotIdentity.default(config)
    return BotIdentity(bot.describe(), bot.version(), "")


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


def refuse_before_running(*, testnet: bool, demo: bool, post_deploy: bool, exchange_url: str | None,
                          environment: str | None, symbols: str | None, results_dir: Path | None,
                          sign_key: Path | None) -> None:
    """Every check that can refuse the run, before anything is written: the target (flags, keys,
    reachable, keys accepted), an explicit --results that already holds results, the signing key."""
    import pytest

    from harness.pytest_plugin import DEFAULT_SCENARIO_SYMBOLS, preflight, run_target_for

    try:
        run = run_target_for(testnet=testnet, demo=demo, post_deploy=post_deploy, url=exchange_url,
                             environment=environment or os.environ.get("TRADING_ENV") or "testnet",
                             symbols=symbols or DEFAULT_SCENARIO_SYMBOLS)
        preflight(run)
    except pytest.UsageError as exc:
        raise click.UsageError(str(exc).removeprefix("liquidation-harness: ")) from None
    if results_dir is not None and results_dir.exists() and any(results_dir.iterdir()):
        raise click.BadParameter(f"{str(results_dir)!r} already holds results; each run needs its own directory "
                                 "(omit --results to get reports/out/runs/<timestamp>/)", param_hint="--results")
    if sign_key is not None:
        from harness.attest import AttestationError, load_signing_key

        try:
            load_signing_key(sign_key)
        except AttestationError as exc:
            raise click.BadParameter(str(exc), param_hint="--sign-key") from None


def new_run_dir(out_dir: Path, now: datetime | None = None) -> Path:
    """``<out>/runs/<UTC timestamp>`` (a suffix when taken), created."""
    moment = now or datetime.now(timezone.utc)
    base = out_dir / RUNS_DIR / moment.strftime("%Y%m%dT%H%M%SZ")
    path, serial = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            serial += 1
            path = base.with_name(f"{base.name}-{serial}")


def previous_runs(out_dir: Path, *, exclude: Path | None = None, last: int = HISTORY_SHOWN) -> list[PastRun]:
    """The last runs' verdicts from ``<out>/runs/*/verdict.json``, newest first."""
    runs = []
    root = out_dir / RUNS_DIR
    if not root.is_dir():
        return []
    for entry in sorted(root.iterdir(), reverse=True):
        if entry.is_symlink() or not entry.is_dir() or (exclude is not None and entry.resolve() == exclude.resolve()):
            continue
        try:
            data = json.loads((entry / VERDICT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        runs.append(PastRun(str(data.get("finished", entry.name)), str(data.get("verdict", "?")),
                            str(data.get("evidence", "?")), str(entry)))
        if len(runs) >= last:
            break
    return runs


def carry_history(out_dir: Path, results_dir: Path) -> None:
    """Copy the previous run's Allure history (trends) into the new results directory."""
    latest = out_dir / RUNS_DIR / LATEST
    for candidate in (latest / "allure-report" / "history", latest / "allure-results" / "history"):
        if candidate.is_dir():
            shutil.copytree(candidate, results_dir / "history", dirs_exist_ok=True)
            return


def point_latest(out_dir: Path, run_dir: Path) -> None:
    """Make ``<out>/runs/latest`` point at ``run_dir`` (atomically replaced)."""
    link = out_dir / RUNS_DIR / LATEST
    temporary = link.with_name(f".{LATEST}.tmp")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(run_dir.name)
    os.replace(temporary, link)


def record_verdict(run_dir: Path, report: Report, report_path: Path, code: int) -> None:
    data = {"verdict": report.verdict.value, "ready": report.ready, "pytest_exit": code,
            "evidence": ", ".join(e.value for e in report.evidence),
            "finished": report.generated_at.isoformat(timespec="seconds"), "report": report_path.name}
    (run_dir / VERDICT_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@click.command("verify")
@click.option("--testnet", is_flag=True, help="Run the scenarios against Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET).")
@click.option("--demo", is_flag=True, help="Run the scenarios against Binance Demo Trading (keys from BINANCE_DEMO_API_KEY/SECRET).")
@click.option("--post-deploy", is_flag=True,
              help="After deploying: non-disruptive checks against production only (keys, manager, metrics, audit, "
                   "dead-man's switch); no order endpoint can be called. Fills the report's Production sections.")
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), default=None,
              help="TRADING_ENV for the scenarios and the report (default: $TRADING_ENV, else testnet).")
@click.option("--exchange-url", default=None,
              help="Exchange root URL instead of the embedded exchange (with --testnet/--demo: a fault proxy in front of it).")
@click.option("--symbols", default=None, help="Symbols the scenarios trade (comma-separated).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The liquidation TOML the deployment will use (shown in the report's configuration line).")
@click.option("--deployed-by", default=None, help="Name for the report's 'Deployed By' (blank when absent).")
@click.option("--deployment-time", default=None, help="When it was deployed, for a --post-deploy report (blank when absent).")
@click.option("--version", "version", default=None, help="Version being deployed (default: the bot under test's version).")
@click.option("--technical-lead", default=None, help="Technical Lead name for the sign-off (blank when absent).")
@click.option("--operations", default=None, help="Operations name for the sign-off (blank when absent).")
@click.option("--results", "results_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where Allure results are written (default: <out>/runs/<timestamp>/allure-results; must be new or empty).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports/out"),
              show_default=True, help="Where runs/<timestamp>/ (report, JUnit XML, attestation, HTML) go.")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ed25519 private key (PEM) to sign the report's in-toto attestation (a DSSE envelope).")
@click.option("--html/--no-html", default=True, show_default=True, help="Generate the single-file Allure HTML report (needs Node.js + Allure 3).")
@click.option("--gate/--no-gate", default=True, show_default=True,
              help="Also apply the Allure 3 quality gate (the run directory's allurerc.mjs, the same sign-off rule) "
                   "where Node.js + Allure 3 are installed; READY only when both agree.")
@click.option("--workers", default="2", show_default=True, help="pytest-xdist workers ('auto', a number, or 1 for none).")
@click.option("--path", "paths", multiple=True,
              help="Test paths to run (default: tests and scenarios; with --bot-cmd the scenarios; --post-deploy: the post-deployment scenarios).")
@bot_options
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def verify_command(testnet: bool, demo: bool, post_deploy: bool, environment: str | None, exchange_url: str | None,
                   symbols: str | None, config_file: Path | None, deployed_by: str | None, deployment_time: str | None,
                   version: str | None, technical_lead: str | None, operations: str | None, results_dir: Path | None,
                   out_dir: Path, sign_key: Path | None, html: bool, workers: str,
                   gate: bool, paths: tuple[str, ...],
                   pytest_args: tuple[str, ...], order_manager: str | None = None, **bot: str | None) -> None:
    """Run the test suite and the checklist scenarios, and fill the Deployment Validation Report.

    With --bot-cmd, the scenarios, success criteria and post-deployment checks judge that bot
    (plus the conformance kit with --order-manager); the project's own tests are not run.
    Extra arguments after `--` go to pytest. Exit 0 when every required item passed (the verdict
    says on what), 1 when not, 2 on usage or configuration errors (nothing written then).
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
    elif post_deploy:
        run_paths, suites = [str(scenario_dir() / "test_post_deployment.py")], ["post-deployment checks"]
        pytest_args = (*(f"-o{setting}" for setting in SCENARIO_INI), *pytest_args)
    else:
        run_paths, suites = suites_to_run(spec, bot_given, order_manager)
        pytest_args = (*(f"-o{setting}" for setting in SCENARIO_INI), *pytest_args)
    pytest_args = (*bot_pytest_args(bot, order_manager), *pytest_args)
    not_judged = out_of_scope(spec, order_manager)
    bot_line = describe_bot_under_test(spec)
    report_env = environment or os.environ.get("TRADING_ENV") or ("production" if post_deploy else "testnet")
    try:
        config = load_config(report_env if report_env in ENVIRONMENTS else None, config_file).model_dump()
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    try:
        refuse_before_running(testnet=testnet, demo=demo, post_deploy=post_deploy, exchange_url=exchange_url,
                              environment=environment, symbols=symbols, results_dir=results_dir, sign_key=sign_key)
    except click.ClickException as exc:
        click.echo(f"usage error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    run_dir = new_run_dir(out_dir)
    results_dir = results_dir or run_dir / "allure-results"
    results_dir.mkdir(parents=True, exist_ok=True)
    carry_history(out_dir, results_dir)
    where = "production (post-deployment, non-disruptive)" if post_deploy else (
        "Binance Demo Trading" if demo else "Binance futures testnet" if testnet else exchange_url or "the embedded exchange")
    if (demo or testnet) and exchange_url:
        where += f" through {exchange_url}"
    click.echo(f"[1/3] Running {', '.join(suites)} ({where}) into {run_dir}")
    click.echo(f"Bot under test: {bot_line}")
    code = run_pytest(pytest_command(tuple(run_paths), results_dir, testnet=testnet, environment=environment,
                                     exchange_url=exchange_url, symbols=symbols, workers=workers, extra=pytest_args,
                                     demo=demo, post_deploy=post_deploy, junit=run_dir / "junit.xml"))
    if code in PYTEST_CANNOT_RUN:
        shutil.rmtree(run_dir, ignore_errors=True)
        click.echo(f"pytest could not run the verification (exit {code}: {PYTEST_CANNOT_RUN[code]}); see above. "
                   "Earlier runs are untouched.", err=True)
        sys.exit(EXIT_USAGE)
    click.echo("[2/3] Filling the Deployment Validation Report")
    try:
        results = [load_results(results_dir)]
    except ResultsError as exc:
        shutil.rmtree(run_dir, ignore_errors=True)
        click.echo(f"no results to report: {exc}", err=True)
        sys.exit(EXIT_NOT_READY)
    if post_deploy:
        results = previous_pre_deployment(out_dir, run_dir) + results
    report = build_report(results, environment=report_env, deployed_by=deployed_by, version=version,
                          technical_lead=technical_lead, operations=operations, config=config,
                          history=previous_runs(out_dir, exclude=run_dir), deployment_time=deployment_time,
                          bot=bot_identity(spec, config), suites=tuple(suites), not_judged=not_judged)
    report_path = write_report(report, run_dir)
    attestation = write_attestation(report, report_path, results, sign_key)
    record_verdict(run_dir, report, report_path, code)
    point_latest(out_dir, run_dir)
    gate_path = write_gate_config(run_dir, not_judged)
    gate_result = run_gate(gate_path, [r.directory for r in results]) if gate else None
    html_path = None
    if html:
        click.echo("[3/3] Generating the Allure HTML report")
        html_path = generate_html(results_dir, run_dir / "allure-report", log=lambda message: click.echo(f"  {message}", err=True))
    print_summary(report, results[-1], report_path, html_path, results_dir, attestation, run_dir)
    click.echo(f"Suites run: {'; '.join(suites)}")
    click.echo(f"Bot judged: {bot_line}")
    ready = report.ready and code == 0
    gate_passed = report_gate(gate_result, gate_path, ready)  # printed either way
    ready = ready and gate_passed
    if ready:
        click.echo(f"✅ {report.verdict.value}")
        sys.exit(EXIT_READY)
    click.echo(f"❌ {Verdict.NOT_READY.value}")
    for blocker in report.blocking:
        click.echo(f"  - {blocker.subject}: {blocker.status.value}{f' ({blocker.reason})' if blocker.reason else ''}")
    for row in report.rollback:
        click.echo(f"  rollback matrix: {row.issue} -> severity {row.severity}, rollback {'YES' if row.rollback else 'no'}: {row.action}")
    sys.exit(EXIT_NOT_READY)


def report_gate(gate: GateResult | None, config: Path, ready: bool) -> bool:
    """Print the Allure quality gate's verdict; False when it ran and failed. The gate states the
    same rule as the report (harness.report.gate), so a disagreement is a harness bug: said loudly,
    and never READY."""
    if gate is None:
        click.echo(f"Quality gate: not applied (--no-gate); CI can apply it: allure quality-gate --config {config} ...")
        return True
    if not gate.ran:
        click.echo(f"Quality gate: not applied ({gate.output}); the verdict above is the same rule, {config}")
        return True
    click.echo(f"Quality gate ({config}): {'passed' if gate.passed else 'FAILED'}")
    if not gate.passed:
        for line in gate.output.splitlines():
            if line.strip():
                click.echo(f"  {line.strip()}")
    if gate.passed != ready:
        click.echo("  the Allure quality gate and verify's own verdict disagree (they state one rule: see "
                   "harness.report.gate); not ready", err=True)
    return bool(gate.passed)


def previous_pre_deployment(out_dir: Path, run_dir: Path) -> list:
    """For a --post-deploy report: the latest earlier run's results (the pre-deployment evidence)."""
    latest = out_dir / RUNS_DIR / LATEST
    if not latest.exists() or latest.resolve() == run_dir.resolve():
        return []
    try:
        return [load_results(latest / "allure-results")]
    except ResultsError:
        return []


def write_attestation(report: Report, report_path: Path, results: list, sign_key: Path | None) -> Path:
    from harness.attest import attestation_path, build_statement, write_statement

    statement = build_statement(report, report_path, [r.directory for r in results])
    return write_statement(statement, attestation_path(report_path), sign_key)


def print_summary(report: Report, results, report_path: Path, html_path: Path | None, results_dir: Path,
                  attestation: Path, run_dir: Path) -> None:
    click.echo("")
    click.echo(summary_table(report))
    click.echo("")
    click.echo("Results: " + ", ".join(f"{status.value}={count}" for status, count in results.counts().items()))
    click.echo(f"Evidence: {', '.join(e.description for e in report.evidence)}")
    click.echo(f"Deployment report: {report_path}")
    click.echo(f"Attestation: {attestation}")
    click.echo(f"JUnit XML: {run_dir / 'junit.xml'}")
    click.echo(f"Allure HTML report: {html_path or 'not generated (see above)'}")
    click.echo(f"Allure results: {results_dir}")
