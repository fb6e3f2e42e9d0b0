"""Pre-Deployment (../shared/CHECKLIST.md): Configuration Validation and Dependency Verification.

Configuration Validation runs the checklist's own command once per environment,
``python scripts/validate_liquidation_config.py --env=<env> --json``, in an isolated environment
(only ``TRADING_ENV`` and the run's ``LIQUIDATION_*`` variables), and checks the effective
configuration it reports against the checklist's numbers, which are written out here on purpose
rather than imported from the engine. Negative controls feed the same CLI a bad configuration and
carry the same checklist item, so the item fails if the validator stops catching it.

Dependency Verification builds the bot the way a deployment does for the run's target. Against
production only the parts that need no network run; the connectivity check is skipped visibly.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import allure
import pytest
from click.testing import CliRunner

from harness.bot import MissingCredentialsOrderManager, TradingBot
from harness.cli import cli
from harness.core import AuditLogger, AuditLogError, OrderExecutionManager
from harness.core.ports import REQUIRED_METHODS, describe_order_manager
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.pytest_plugin import RunTarget

REPO = Path(__file__).resolve().parent.parent
VALIDATE_SCRIPT = REPO / "scripts" / "validate_liquidation_config.py"
#: the checklist's command in a checkout; installed (no scripts/), the same command through the package
VALIDATE_ARGV = [str(VALIDATE_SCRIPT)] if VALIDATE_SCRIPT.is_file() else ["-m", "harness.cli", "validate"]
ENVIRONMENTS = [pytest.param(name, id=name) for name in ("production", "testnet", "high-latency")]
# The checklist's numbers, independent of the engine's own constants.
SWITCHES = ("emergency_liquidation", "close_positions", "cancel_orders")
FIELD_TYPES: dict[str, type] = {**dict.fromkeys(SWITCHES, bool), "timeout_seconds": float,
                                "max_retries": int, "retry_delay_seconds": float}
RANGES: dict[str, tuple[float, float]] = {"timeout_seconds": (1.0, 30.0), "max_retries": (0, 10),
                                          "retry_delay_seconds": (0.1, 5.0)}
# (lowest timeout, highest timeout, fewest retries); testnet rehearses production's settings
RECOMMENDED: dict[str, tuple[float, float, int]] = {"production": (5.0, 30.0, 3), "testnet": (5.0, 30.0, 3),
                                                    "high-latency": (10.0, 15.0, 5)}
CHECKLIST_EVENTS = ("LIQUIDATION_START", "ORDER_CANCELLED", "ORDER_PLACED", "ORDER_REJECTED", "LIQUIDATION_COMPLETE")
SECURITY_ONE_LINER = (
    "from harness.core import LiquidationConfig; config = LiquidationConfig(); "
    "assert config.emergency_liquidation == True, 'Emergency liquidation must be enabled'; "
    "print('✓ Security check passed')"
)


def isolated_env(environment: str) -> dict[str, str]:
    """A clean environment: TRADING_ENV plus only the LIQUIDATION_* variables this run provides."""
    env = {name: value for name, value in os.environ.items() if name.startswith("LIQUIDATION_")}
    env.update(PATH=os.environ.get("PATH", os.defpath), PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8",
               TRADING_ENV=environment)
    return env


@dataclass(frozen=True)
class Validation:
    """One run of the checklist's validate command."""

    command: str
    exit_code: int
    report: dict[str, Any]
    stderr: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return self.report.get("config") or {}

    def findings(self, severity: str | None = None, category: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.report.get("findings", [])
                if severity in (None, f["severity"]) and category in (None, f["category"])]


def run_validate(environment: str, strict: bool) -> Validation:
    options = [f"--env={environment}", "--json", *(["--strict"] if strict else [])]
    args = [sys.executable, *VALIDATE_ARGV, *options]
    shown = "scripts/validate_liquidation_config.py" if VALIDATE_SCRIPT.is_file() else "-m harness.cli validate"
    command = " ".join(["python", shown, *options])
    proc = subprocess.run(args, capture_output=True, text=True, env=isolated_env(environment), cwd=REPO, timeout=60)
    if proc.returncode == 2 or not proc.stdout.strip():
        pytest.fail(f"`{command}` could not read the {environment} configuration (exit {proc.returncode}): "
                    f"{proc.stderr.strip() or '<no output>'}")
    return Validation(command, proc.returncode, json.loads(proc.stdout), proc.stderr)


@pytest.fixture(scope="session")
def validate() -> Callable[[str, bool], Validation]:
    """Run the validate command for (environment, strict) once per session and remember the answer."""
    cache: dict[tuple[str, bool], Validation] = {}

    def get(environment: str, strict: bool = False) -> Validation:
        if (environment, strict) not in cache:
            cache[(environment, strict)] = run_validate(environment, strict)
        result = cache[(environment, strict)]
        allure.attach(json.dumps(result.report, indent=2), name=f"validation report: {result.command}",
                      attachment_type=allure.attachment_type.JSON)
        allure.attach(json.dumps(result.config, indent=2), name=f"effective configuration ({environment})",
                      attachment_type=allure.attachment_type.JSON)
        return result

    return get


# -- Configuration Validation: the effective configuration per environment ---------------------
@pytest.mark.checklist("pre.config.types")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_type_validation_passes(validate: Callable[[str, bool], Validation], environment: str) -> None:
    with allure.step(f"Validate the {environment} configuration"):
        result = validate(environment, False)
    with allure.step("Every parameter has its checklist type (bool, float, int)"):
        assert not result.findings(category="type"), f"{environment}: type errors: {result.findings(category='type')}"
        wrong = {name: f"{type(result.config.get(name)).__name__}, expected {kind.__name__}"
                 for name, kind in FIELD_TYPES.items() if type(result.config.get(name)) is not kind}
        assert not wrong, f"{environment}: parameters with the wrong type: {wrong}"


@pytest.mark.checklist("pre.config.ranges")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_range_validation_passes(validate: Callable[[str, bool], Validation], environment: str) -> None:
    with allure.step(f"Validate the {environment} configuration"):
        result = validate(environment, False)
    with allure.step("timeout 1.0-30.0, retries 0-10, retry delay 0.1-5.0"):
        assert not result.findings(category="range"), f"{environment}: range errors: {result.findings(category='range')}"
        outside = {name: result.config.get(name) for name, (low, high) in RANGES.items()
                   if not low <= result.config.get(name, float("nan")) <= high}
        assert not outside, f"{environment}: outside the checklist ranges {RANGES}: {outside}"


@pytest.mark.checklist("pre.config.consistency")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_consistency_check_passes(validate: Callable[[str, bool], Validation], environment: str) -> None:
    with allure.step(f"Validate the {environment} configuration"):
        result = validate(environment, False)
    with allure.step("emergency_liquidation=False implies close_positions=False and cancel_orders=False"):
        config = result.config
        if config.get("emergency_liquidation") is False:
            assert not config.get("close_positions") and not config.get("cancel_orders"), (
                f"{environment}: emergency_liquidation=False but close_positions={config.get('close_positions')}, "
                f"cancel_orders={config.get('cancel_orders')}")
        assert not result.findings(category="consistency"), (
            f"{environment}: contradictions: {result.findings(category='consistency')}")
        assert result.report.get("valid") is True, f"{environment}: validator says valid={result.report.get('valid')}"


@pytest.mark.checklist("pre.config.security")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_security_review(validate: Callable[[str, bool], Validation], environment: str) -> None:
    strict = environment == "production"
    with allure.step(f"Validate the {environment} configuration{' with --strict' if strict else ''}"):
        result = validate(environment, strict)
    with allure.step("No CRITICAL findings"):
        assert not result.findings(severity="CRITICAL"), (
            f"{environment}: CRITICAL findings: {[f['message'] for f in result.findings(severity='CRITICAL')]}")
    if strict:
        with allure.step("Production: all three switches True; Valid and Ready under --strict"):
            off = [name for name in SWITCHES if result.config.get(name) is not True]
            assert not off, f"production: these switches must be True: {off}"
            assert (result.exit_code, result.report.get("valid"), result.report.get("ready")) == (0, True, True), (
                f"`{result.command}` exit {result.exit_code}, valid={result.report.get('valid')}, "
                f"ready={result.report.get('ready')}: findings {result.report.get('findings')}")


@pytest.mark.checklist("pre.config.security")
def test_security_verification_one_liner(tmp_path: Path) -> None:
    """The checklist's Security Verification command, adapted to this package, as a user runs it."""
    with allure.step("python -c 'from harness.core import LiquidationConfig; assert ...emergency_liquidation'"):
        proc = subprocess.run([sys.executable, "-c", SECURITY_ONE_LINER], capture_output=True, text=True,
                              env=isolated_env("production"), cwd=tmp_path, timeout=60)
        allure.attach(proc.stdout + proc.stderr, name="security one-liner output", attachment_type=allure.attachment_type.TEXT)
    assert proc.returncode == 0 and "Security check passed" in proc.stdout, (
        f"security one-liner failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")


@pytest.mark.checklist("pre.config.defaults")
@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_defaults_appropriate_for_environment(validate: Callable[[str, bool], Validation], environment: str) -> None:
    low, high, retries = RECOMMENDED[environment]
    with allure.step(f"Validate the {environment} configuration"):
        result = validate(environment, False)
    with allure.step(f"Timeout {low:g}-{high:g}s and at least {retries} retries"):
        timeout, max_retries = result.config.get("timeout_seconds"), result.config.get("max_retries")
        assert low <= timeout <= high, f"{environment}: timeout_seconds={timeout}, recommended {low:g}-{high:g}s"
        assert max_retries >= retries, f"{environment}: max_retries={max_retries}, recommended at least {retries}"
        assert not result.findings(category="defaults"), (
            f"{environment}: validator warns about defaults: {[f['message'] for f in result.findings(category='defaults')]}")


# -- Configuration Validation: negative controls (the validator must catch these) ---------------
@dataclass(frozen=True)
class Control:
    """A bad configuration and how the validate command must answer it."""

    args: tuple[str, ...]
    toml: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    exit_code: int = 1
    names: str = ""  # the field the answer must name
    finding: tuple[str, str] | None = None  # (severity, category) expected in the JSON report


CONTROLS = [
    pytest.param(Control(("--env=production",), toml='emergency_liquidation = "yes"\n', exit_code=2,
                         names="emergency_liquidation"),
                 id="string-for-bool-is-a-type-error", marks=pytest.mark.checklist("pre.config.types")),
    pytest.param(Control(("--env=production",), toml="max_retries = 2.5\n", exit_code=2, names="max_retries"),
                 id="float-for-int-is-a-type-error", marks=pytest.mark.checklist("pre.config.types")),
    pytest.param(Control(("--env=production",), toml="timeout_seconds = 45.0\n", exit_code=2, names="timeout_seconds"),
                 id="timeout-45s-is-out-of-range", marks=pytest.mark.checklist("pre.config.ranges")),
    pytest.param(Control(("--env=testnet",), toml="emergency_liquidation = false\nclose_positions = true\n"
                         "cancel_orders = false\n", names="close_positions", finding=("CRITICAL", "consistency")),
                 id="close-positions-without-emergency-is-inconsistent",
                 marks=pytest.mark.checklist("pre.config.consistency")),
    pytest.param(Control(("--env=production", "--strict"), env={"LIQUIDATION_CANCEL_ORDERS": "false"},
                         names="cancel_orders", finding=("CRITICAL", "security")),
                 id="production-with-cancel-orders-off-is-not-ready", marks=pytest.mark.checklist("pre.config.security")),
    pytest.param(Control(("--env=high-latency", "--strict"), toml="timeout_seconds = 5.0\n", names="timeout_seconds",
                         finding=("WARNING", "defaults")),
                 id="high-latency-with-5s-timeout-is-flagged", marks=pytest.mark.checklist("pre.config.defaults")),
]


@pytest.mark.parametrize("control", CONTROLS)
def test_validator_rejects_bad_configuration(control: Control, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: the validate command must refuse this configuration, naming the field."""
    for name in [n for n in os.environ if n.startswith("LIQUIDATION_")] + ["EMERGENCY_LIQUIDATION_DISABLED", "TRADING_ENV"]:
        monkeypatch.delenv(name, raising=False)
    args = ["validate", "--json", *control.args]
    if control.toml is not None:
        path = tmp_path / "liquidation.toml"
        path.write_text(control.toml, encoding="utf-8")
        args += ["--config", str(path)]
        allure.attach(control.toml, name="liquidation.toml", attachment_type=allure.attachment_type.TEXT)
    with allure.step(f"liquidation-harness {' '.join(args)} {control.env or ''}"):
        result = CliRunner().invoke(cli, args, env=control.env)
        allure.attach(result.stdout + result.stderr, name="validate output", attachment_type=allure.attachment_type.TEXT)
    assert result.exit_code == control.exit_code, (
        f"validator accepted a bad configuration: exit {result.exit_code}, expected {control.exit_code}; "
        f"output: {result.stdout.strip()} {result.stderr.strip()}")
    if control.finding is None:
        assert control.names in result.stderr, f"the error does not name {control.names!r}: {result.stderr.strip()}"
        return
    report = json.loads(result.stdout)
    hits = [f for f in report["findings"] if (f["severity"], f["category"]) == control.finding and f["field"] == control.names]
    assert hits, f"no {control.finding[0]} {control.finding[1]} finding for {control.names}: {report['findings']}"
    assert report["ready"] is False, f"a configuration with {hits[0]['message']!r} was reported ready"


# -- Dependency Verification -------------------------------------------------------------------
@pytest.fixture
async def deployed_bot(request: pytest.FixtureRequest, run_target: RunTarget, symbols: list[str], log_dir: Path,
                       monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TradingBot]:
    """The bot built as a deployment builds it: the run's exchange with its keys; production: no network at all."""
    if run_target.is_production:
        bot = TradingBot(environment="production", symbols=symbols, log_dir=log_dir)
    else:
        exchange = request.getfixturevalue("exchange")
        monkeypatch.setenv("BINANCE_TESTNET_API_KEY", exchange.api_key)
        monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", exchange.api_secret)
        bot = TradingBot(environment="testnet", exchange_url=exchange.base_url, testnet=exchange.base_url is None,
                         symbols=symbols, log_dir=log_dir)
    with allure.step(f"TradingBot(...).initialize() for {run_target.describe()}"):
        bot.initialize()
    try:
        yield bot
    finally:
        close = getattr(bot.order_manager, "close", None)
        if close is not None and inspect.iscoroutinefunction(close):
            await close()
        if bot.audit_logger is not None:
            bot.audit_logger.close()


@pytest.mark.reference_bot
@pytest.mark.checklist("pre.deps.order_manager")
def test_order_manager_exists_in_the_trading_bot(deployed_bot: TradingBot, run_target: RunTarget) -> None:
    om = deployed_bot.order_manager
    allure.attach(repr(om), name="order manager in use", attachment_type=allure.attachment_type.TEXT)
    assert om is not None, "initialize() left the bot without an order manager"
    assert deployed_bot.liquidation_manager is not None and deployed_bot.liquidation_manager.order_manager is om, (
        "the liquidation manager does not use the bot's order manager")
    if isinstance(om, MissingCredentialsOrderManager):
        if run_target.is_production:
            pytest.skip("production keys are not given to scenarios: the bot holds its no-credentials stand-in")
        pytest.fail(f"the bot found no API credentials for {run_target.describe()} and cannot reach the exchange")
    assert isinstance(om, BinanceFuturesOrderManager), f"unexpected order manager {type(om).__name__}"


@pytest.mark.reference_bot
@pytest.mark.checklist("pre.deps.order_manager")
async def test_order_manager_is_connected_to_the_exchange_api(
        exchange: Any, symbols: list[str], log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only call through the bot's order manager succeeds (skipped against production)."""
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", exchange.api_key)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", exchange.api_secret)
    bot = TradingBot(environment="testnet", exchange_url=exchange.base_url, testnet=exchange.base_url is None,
                     symbols=symbols, log_dir=log_dir).initialize()
    seeded = None
    if exchange.embedded:
        seeded = exchange.sim.book.spec(symbols[0]).min_qty
        exchange.sim.book.set_position(symbols[0], seeded)
    try:
        with allure.step(f"await order_manager.get_all_positions({symbols})"):
            positions = await bot.order_manager.get_all_positions(list(symbols))
            allure.attach(json.dumps(positions, indent=2, default=str), name="positions",
                          attachment_type=allure.attachment_type.JSON)
    finally:
        await bot.order_manager.close()
        bot.audit_logger.close()
    assert isinstance(positions, list), f"get_all_positions returned {type(positions).__name__}, expected a list"
    if exchange.embedded:
        amounts = {p["symbol"]: p["position_amt"] for p in positions}
        assert amounts.get(symbols[0]) == seeded, f"read {amounts}, expected {symbols[0]}={seeded} from the exchange"
        writes = [f"{r.method} {r.path}" for r in exchange.sim.request_log if r.method != "GET"]
        assert not writes, f"the connectivity check wrote to the exchange: {writes}"


@pytest.mark.reference_bot
@pytest.mark.checklist("pre.deps.methods")
def test_required_methods_on_the_order_manager_in_use(deployed_bot: TradingBot) -> None:
    om = deployed_bot.order_manager
    signatures = "\n".join(f"{'async ' if inspect.iscoroutinefunction(getattr(om, n, None)) else ''}def {n}"
                           f"{inspect.signature(getattr(om, n)) if hasattr(om, n) else ': MISSING'}" for n in REQUIRED_METHODS)
    allure.attach(signatures, name=f"{type(om).__name__} methods", attachment_type=allure.attachment_type.TEXT)
    problems = describe_order_manager(om)
    assert not problems, f"{type(om).__name__} does not match the checklist's methods: {problems}"
    assert isinstance(om, OrderExecutionManager), f"{type(om).__name__} is not an OrderExecutionManager"


@pytest.mark.checklist("pre.deps.methods")
def test_binance_adapter_provides_required_methods() -> None:
    """The adapter a production bot uses has the three seed methods (no network: the class itself)."""
    problems = describe_order_manager(BinanceFuturesOrderManager)
    assert not problems, f"BinanceFuturesOrderManager does not match the checklist's methods: {problems}"


class _WrongOrderManager:
    def get_all_positions(self, symbols: list[str]) -> list[dict]:  # must be async
        return []

    def cancel_all_orders(self, sym: str) -> int:  # wrong parameter name
        return 0


@pytest.mark.checklist("pre.deps.methods")
def test_method_check_rejects_a_wrong_order_manager() -> None:
    """Negative control: a sync get_all_positions, a renamed parameter and a missing close are all reported."""
    problems = " | ".join(describe_order_manager(_WrongOrderManager()))
    for expected in ("get_all_positions: must be async", "cancel_all_orders: parameters", "execute_market_close: missing"):
        assert expected in problems, f"the method check missed {expected!r}; it reported: {problems}"
    assert not isinstance(_WrongOrderManager(), OrderExecutionManager), "protocol check accepted a manager without a close"


@pytest.mark.reference_bot
@pytest.mark.checklist("pre.deps.audit_logger")
def test_audit_logger_initialized_with_the_checklist_event_types(deployed_bot: TradingBot, log_dir: Path) -> None:
    audit = deployed_bot.audit_logger
    assert isinstance(audit, AuditLogger), f"the bot's audit logger is {type(audit).__name__}"
    assert deployed_bot.liquidation_manager is not None and deployed_bot.liquidation_manager.audit_logger is audit, (
        "the liquidation manager does not write to the bot's audit logger")
    allure.attach("\n".join(audit.event_types), name="audit event types", attachment_type=allure.attachment_type.TEXT)
    missing = [event for event in CHECKLIST_EVENTS if event not in audit.event_types]
    assert not missing, f"audit logger lacks the checklist's event types {missing}; it has {list(audit.event_types)}"
    assert audit.path == log_dir / "audit.jsonl", f"audit trail at {audit.path}, expected {log_dir / 'audit.jsonl'}"


def _touch_and_remove(directory: Path) -> subprocess.CompletedProcess[str]:
    script = 'mkdir -p "$1" && touch "$1/test.txt" && rm "$1/test.txt"'
    return subprocess.run(["sh", "-c", script, "sh", str(directory)], capture_output=True, text=True, timeout=30)


@pytest.mark.reference_bot
@pytest.mark.checklist("pre.deps.audit_dir")
def test_audit_trail_directory_writable(deployed_bot: TradingBot) -> None:
    assert deployed_bot.audit_logger is not None, "initialize() left the bot without an audit logger"
    directory = deployed_bot.audit_logger.path.parent
    with allure.step(f"mkdir -p {directory}; touch {directory}/test.txt && rm {directory}/test.txt"):
        proc = _touch_and_remove(directory)
    assert proc.returncode == 0, f"audit directory {directory} is not writable: {proc.stderr.strip()}"
    assert not (directory / "test.txt").exists(), f"{directory}/test.txt was not removed"


@pytest.mark.reference_bot
@pytest.mark.checklist("pre.deps.audit_dir")
def test_unwritable_audit_directory_is_detected(tmp_path: Path, symbols: list[str]) -> None:
    """Negative control: a log dir under a regular file fails both the shell check and the bot's start-up."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    assert _touch_and_remove(blocker / "logs").returncode != 0, "the shell check accepted an unwritable directory"
    try:
        TradingBot(environment="production", symbols=symbols, log_dir=blocker / "logs").initialize()
    except AuditLogError as exc:
        allure.attach(str(exc), name="start-up error", attachment_type=allure.attachment_type.TEXT)
    else:
        pytest.fail("the bot started with an audit directory it cannot create: no audit trail would be written")
