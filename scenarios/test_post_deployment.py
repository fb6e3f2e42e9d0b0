"""Post-Deployment (../shared/CHECKLIST.md): Verification Steps and Monitoring Setup, non-disruptive.

Everything here also runs when the target is production: the bot is only initialized (no order,
no network write), its logs go to a temporary directory, and the checklist's one-liners run as a
user would run them. Monitoring Setup reads monitoring/alerts.yml and monitoring/dashboard.json.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.bot import TradingBot, configure_logging
from harness.bot.metrics_server import METRIC_NAMES
from harness.exchanges.target import credentials
from harness.pytest_plugin import RunTarget
from harness.testkit import BotUnderTest

REPO = Path(__file__).resolve().parent.parent
#: the project's monitoring files: monitoring/ in a checkout, shipped beside the scenarios when installed
MONITORING = next((p for p in (REPO / "monitoring", Path(__file__).resolve().parent / "monitoring") if p.is_dir()),
                  REPO / "monitoring")
METRICS_ONE_LINER = ("from harness.bot import TradingBot; bot = TradingBot(); bot.initialize(); import json; "
                     "print(json.dumps(bot.liquidation_manager.get_metrics(), indent=2))")
STATES = ("COMPLETED", "PARTIAL", "FAILED", "SKIPPED")
COUNT_FIELDS = ("total_executions", "positions_closed", "positions_failed", "orders_cancelled", "retries",
                "audit_write_errors")
SECONDS_FIELDS = ("last_execution_time_seconds", "average_execution_time_seconds", "max_execution_time_seconds")
RATE_FIELDS = ("success_rate", "position_close_success_rate")
OTHER_FIELDS = ("executions_by_state", "last_state", "execution_time_histogram", "in_progress", "in_progress_since")
LEVEL = re.compile(r"^\S+ \S+ (ERROR|CRITICAL) ")  # harness.bot.logs.LOG_FORMAT: date time LEVEL name message


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def metric_problems(metrics: Any) -> list[str]:
    """Every way ``metrics`` differs from a complete, well-typed get_metrics() answer; [] when sound."""
    if not isinstance(metrics, dict):
        return [f"get_metrics() returned {type(metrics).__name__}, expected a dict"]
    fields = COUNT_FIELDS + SECONDS_FIELDS + RATE_FIELDS + OTHER_FIELDS
    problems = [f"{name}: missing" for name in fields if name not in metrics]
    problems += [f"{name}={metrics[name]!r}: expected an int >= 0" for name in COUNT_FIELDS
                 if name in metrics and not _is_count(metrics[name])]
    problems += [f"{name}={metrics[name]!r}: expected seconds >= 0" for name in SECONDS_FIELDS
                 if name in metrics and not _is_number(metrics[name])]
    problems += [f"{name}={metrics[name]!r}: expected a rate in 0..1" for name in RATE_FIELDS
                 if name in metrics and not (_is_number(metrics[name]) and metrics[name] <= 1)]
    by_state = metrics.get("executions_by_state")
    if not isinstance(by_state, dict) or sorted(by_state) != sorted(STATES) or not all(map(_is_count, by_state.values())):
        problems.append(f"executions_by_state={by_state!r}: expected a count for each of {STATES}")
    elif by_state and sum(by_state.values()) != metrics.get("total_executions"):
        problems.append(f"executions_by_state sums to {sum(by_state.values())}, total_executions={metrics.get('total_executions')}")
    if metrics.get("last_state") not in (None, *STATES):
        problems.append(f"last_state={metrics.get('last_state')!r}: expected None or one of {STATES}")
    if type(metrics.get("in_progress")) is not bool:
        problems.append(f"in_progress={metrics.get('in_progress')!r}: expected a bool")
    if metrics.get("in_progress_since") is not None and not _is_number(metrics.get("in_progress_since")):
        problems.append(f"in_progress_since={metrics.get('in_progress_since')!r}: expected None or a Unix time")
    histogram = metrics.get("execution_time_histogram")
    buckets = histogram.get("buckets") if isinstance(histogram, dict) else None
    if not isinstance(buckets, list) or not all(isinstance(b, list) and len(b) == 2 for b in buckets):
        problems.append(f"execution_time_histogram={histogram!r}: expected buckets of [bound, count]")
    elif [b[0] for b in buckets] != sorted(b[0] for b in buckets) or [b[1] for b in buckets] != sorted(b[1] for b in buckets):
        problems.append(f"execution_time_histogram buckets are not cumulative: {buckets}")
    elif histogram.get("count") != metrics.get("total_executions"):
        problems.append(f"histogram count {histogram.get('count')} != total_executions {metrics.get('total_executions')}")
    return problems


def isolated_env(environment: str) -> dict[str, str]:
    """A clean environment: TRADING_ENV plus only the LIQUIDATION_* variables this run provides (no keys)."""
    env = {name: value for name, value in os.environ.items() if name.startswith("LIQUIDATION_")}
    env.update(PATH=os.environ.get("PATH", os.defpath), PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8",
               TRADING_ENV=environment)
    return env


def log_lines(path: Path, pattern: re.Pattern[str]) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if pattern.search(line)]


@pytest.fixture
def trading_log(log_dir: Path) -> Iterator[Path]:
    """configure_logging(log_dir) as the bot does; the process's logging is restored afterwards."""
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    path = configure_logging(log_dir)
    try:
        yield path
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def _target_kwargs(request: pytest.FixtureRequest, run_target: RunTarget, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if run_target.is_production:
        return {"environment": "production"}
    if run_target.embedded:
        exchange = request.getfixturevalue("exchange")
        monkeypatch.setenv("BINANCE_TESTNET_API_KEY", exchange.api_key)
        monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", exchange.api_secret)
        return {"environment": run_target.environment, "exchange_url": exchange.base_url}
    assert run_target.target is not None
    return {"environment": run_target.environment, "exchange_url": run_target.target.root_url}


@pytest.fixture
async def build_bot(request: pytest.FixtureRequest, run_target: RunTarget, symbols: list[str], log_dir: Path,
                    trading_log: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[[], TradingBot]]:
    """Build and initialize() the bot for the run's target, as deployed (initialize never touches the network)."""
    bots: list[TradingBot] = []

    def build() -> TradingBot:
        bot = TradingBot(symbols=symbols, log_dir=log_dir, **_target_kwargs(request, run_target, monkeypatch))
        bots.append(bot)
        with allure.step(f"TradingBot(...).initialize() for {run_target.describe()}"):
            return bot.initialize()

    yield build
    for bot in bots:
        close = getattr(bot.order_manager, "close", None)
        if close is not None and inspect.iscoroutinefunction(close):
            await close()
        if bot.audit_logger is not None:
            bot.audit_logger.close()


# -- Verification Steps ------------------------------------------------------------------------
@pytest.mark.reference_bot
@pytest.mark.checklist("post.manager")
def test_liquidation_manager_initialized_successfully(build_bot: Callable[[], TradingBot], trading_log: Path) -> None:
    bot = build_bot()
    allure.attach.file(str(trading_log), name="trading.log", attachment_type=allure.attachment_type.TEXT)
    manager = bot.liquidation_manager
    assert manager is not None, "bot.initialize() left bot.liquidation_manager as None"
    assert manager.config == bot.config and manager.order_manager is bot.order_manager, (
        "the liquidation manager is not wired to the bot's configuration and order manager")
    assert not manager.in_progress, "a liquidation is already in progress right after initialize()"
    errors = log_lines(trading_log, LEVEL)
    assert not errors, f"initialization logged errors in trading.log: {errors}"
    assert log_lines(trading_log, re.compile("liquidation manager initialized")), (
        "trading.log has no 'liquidation manager initialized' line: the component does not show as active")


@pytest.mark.reference_bot
@pytest.mark.checklist("post.metrics")
def test_metrics_returned_with_every_field(build_bot: Callable[[], TradingBot]) -> None:
    bot = build_bot()
    assert bot.liquidation_manager is not None, "bot.initialize() left bot.liquidation_manager as None"
    metrics = bot.liquidation_manager.get_metrics()
    allure.attach(json.dumps(metrics, indent=2), name="get_metrics()", attachment_type=allure.attachment_type.JSON)
    problems = metric_problems(metrics)
    assert not problems, f"get_metrics() is incomplete or invalid: {problems}"
    assert (metrics["total_executions"], metrics["in_progress"]) == (0, False), (
        f"a freshly deployed bot reports executions: {metrics['total_executions']}, in_progress={metrics['in_progress']}")


@pytest.mark.reference_bot
@pytest.mark.checklist("post.metrics")
def test_checklist_metrics_command_prints_valid_json(run_target: RunTarget, tmp_path: Path) -> None:
    """The checklist's metrics one-liner, run as a user runs it (no keys: nothing reaches an exchange)."""
    environment = "production" if run_target.is_production else "testnet"
    with allure.step('python -c "from harness.bot import TradingBot; ...; print(json.dumps(get_metrics()))"'):
        proc = subprocess.run([sys.executable, "-c", METRICS_ONE_LINER], capture_output=True, text=True,
                              env=isolated_env(environment), cwd=tmp_path, timeout=60)
        allure.attach(proc.stdout, name="metrics one-liner output", attachment_type=allure.attachment_type.JSON)
    assert proc.returncode == 0, f"metrics one-liner failed (exit {proc.returncode}): {proc.stderr.strip()}"
    try:
        metrics = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        pytest.fail(f"metrics one-liner did not print JSON ({exc}): {proc.stdout[:300]!r}")
    problems = metric_problems(metrics)
    assert not problems, f"metrics one-liner printed incomplete or invalid metrics: {problems}"


@pytest.mark.reference_bot
@pytest.mark.checklist("post.audit")
def test_audit_log_written_in_the_log_dir(build_bot: Callable[[], TradingBot], log_dir: Path) -> None:
    started = time.time()
    bot = build_bot()
    path = log_dir / "audit.jsonl"
    assert bot.audit_logger is not None and bot.audit_logger.path == path, (
        f"the bot's audit trail is {getattr(bot.audit_logger, 'path', None)}, expected {path}")
    assert path.is_file(), f"{path} does not exist after initialize()"
    stat = path.stat()
    allure.attach(f"{path}  {stat.st_size} bytes  mtime {time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(stat.st_mtime))}Z",
                  name="ls -lh audit.jsonl", attachment_type=allure.attachment_type.TEXT)
    slack = 2.0  # coarse file-system timestamps
    assert started - slack <= stat.st_mtime <= time.time() + slack, (
        f"{path} is not recent: mtime {stat.st_mtime:.0f}, deployment started at {started:.0f}")
    assert os.access(path, os.W_OK), f"{path} is not writable by the bot's user"


@pytest.mark.reference_bot
@pytest.mark.parametrize(("rollback", "expect_critical"), [
    pytest.param(None, False, id="sound-configuration", marks=pytest.mark.checklist("post.no_critical")),
    pytest.param("true", True, id="negative-control-rollback-switch-on", marks=pytest.mark.checklist("post.no_critical")),
])
def test_no_critical_warnings_in_trading_log(build_bot: Callable[[], TradingBot], trading_log: Path,
                                             monkeypatch: pytest.MonkeyPatch, rollback: str | None,
                                             expect_critical: bool) -> None:
    if rollback is not None:
        monkeypatch.setenv("EMERGENCY_LIQUIDATION_DISABLED", rollback)
    build_bot()
    with allure.step("grep -i critical trading.log"):
        critical = log_lines(trading_log, re.compile("critical", re.IGNORECASE))
        allure.attach("\n".join(critical) or "<empty>", name="grep -i critical", attachment_type=allure.attachment_type.TEXT)
    if expect_critical:
        assert critical, "EMERGENCY_LIQUIDATION_DISABLED=true logged no CRITICAL: the log check would miss a disabled engine"
    else:
        assert not critical, f"CRITICAL lines in trading.log: {critical}"


# -- The deployment's keys and dead-man's switch (non-disruptive on production too) -------------
DEADMAN_PROBE_MS = 120_000  # >= harness.pytest_plugin.POST_DEPLOY_MIN_COUNTDOWN_MS: cannot fire before the disarm
DISARM_ATTEMPTS = 3


@pytest.fixture
async def adapter(request: pytest.FixtureRequest, run_target: RunTarget) -> AsyncIterator[Any]:
    """The engine's own Binance adapter on the run's target with the deployment's keys: on production
    BINANCE_API_KEY/SECRET as the bot reads them (skipped, so NOT RUN and blocking, when unset),
    elsewhere the exchange's (the embedded one stands in)."""
    from harness.exchanges.binance import BinanceFuturesOrderManager

    if run_target.is_production:
        assert run_target.target is not None
        key, secret = credentials(run_target.target)  # what the deployed bot reads; the preflight accepted them
        if not (key and secret):
            pytest.skip(f"{' and '.join(run_target.target.key_vars)} not set: the deployment's keys were not checked")
        manager = BinanceFuturesOrderManager(key, secret, target=run_target.target)
    else:
        exchange = request.getfixturevalue("exchange")
        manager = BinanceFuturesOrderManager(exchange.api_key, exchange.api_secret,
                                             base_url=exchange.base_url or exchange.account.target.root_url)
    try:
        yield manager
    finally:
        await manager.close()


@pytest.mark.checklist("post.keys")
async def test_keys_valid_for_a_signed_read(adapter: Any, run_target: RunTarget) -> None:
    """A signed read (GET /fapi/v2/positionRisk) with the deployment's keys is accepted: the engine
    could see what it would have to close. Nothing is written."""
    with allure.step(f"get_all_positions([]) on {run_target.describe()}"):
        positions = await adapter.get_all_positions([])
        allure.attach(json.dumps(positions, indent=2, default=str), name="open positions", attachment_type=allure.attachment_type.JSON)
    assert isinstance(positions, list), f"get_all_positions returned {type(positions).__name__}, expected a list"
    bad = [p for p in positions if not {"symbol", "position_amt", "position_side"} <= set(p)]
    assert not bad, f"positions without symbol/position_amt/position_side: {bad}"


@pytest.mark.checklist("post.deadman")
async def test_deadman_switch_armable_then_disarmed(adapter: Any, run_target: RunTarget, symbols: list[str],
                                                    request: pytest.FixtureRequest) -> None:
    """countdownCancelAll armed with a long countdown and disarmed at once: the keys may arm the
    switch the bot relies on, and nothing is left armed. It places no order; a switch armed for
    DEADMAN_PROBE_MS cannot cancel anything before the disarm. (On production, a running bot's own
    switch for this symbol is re-armed by its next heartbeat, within deadman_interval_seconds.)"""
    from harness.core.ports import SupportsCountdown

    assert isinstance(adapter, SupportsCountdown), "the adapter cannot arm Binance's countdownCancelAll"
    symbol = symbols[0]
    sim = None if run_target.is_production else request.getfixturevalue("exchange").sim
    with allure.step(f"countdownCancelAll {symbol} countdownTime={DEADMAN_PROBE_MS}"):
        armed = await adapter.countdown_cancel_all(symbol, DEADMAN_PROBE_MS)
        allure.attach(json.dumps(armed, default=str), name="arm answer", attachment_type=allure.attachment_type.JSON)
    deadline = time.time() + DEADMAN_PROBE_MS / 1000
    armed_seen = sim.book.next_countdown_deadline() if sim is not None else None
    problems: list[str] = []
    for attempt in range(1, DISARM_ATTEMPTS + 1):
        try:
            with allure.step(f"countdownCancelAll {symbol} countdownTime=0 (disarm, attempt {attempt})"):
                await adapter.countdown_cancel_all(symbol, 0)
            break
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then reported with the deadline
            problems.append(f"attempt {attempt}: {type(exc).__name__}: {exc}")
    else:
        pytest.fail(f"the dead-man's switch for {symbol} is still ARMED: open orders on {symbol} will be cancelled at "
                    f"{time.strftime('%H:%M:%S', time.gmtime(deadline))} UTC unless disarmed (countdownCancelAll "
                    f"countdownTime=0); disarm failed: {problems}")
    assert isinstance(armed, dict) and str(armed.get("symbol", symbol)) == symbol, f"unexpected arm answer: {armed!r}"
    if sim is not None:  # the embedded exchange shows the switch itself: armed, then gone
        assert armed_seen is not None, "the exchange shows no countdown after arming"
        assert sim.book.next_countdown_deadline() is None, "the switch is still armed after the disarm"


# -- Monitoring Setup --------------------------------------------------------------------------
@pytest.fixture
def monitoring_dir(bot_under_test: BotUnderTest) -> Path:
    """The deployment's monitoring files: ``monitoring/`` in the bot's directory; for harness.bot
    without one there, the project's own (the reference bot's monitoring)."""
    own = (bot_under_test.cwd or Path.cwd()) / "monitoring"
    if own.is_dir() or not bot_under_test.is_reference:
        return own
    return MONITORING


@dataclass(frozen=True)
class Wanted:
    """What a checklist alert or panel must look like: a name/title and the metric expression."""

    text: str
    expr: str  # regex the PromQL expression must match
    threshold: str = ""  # regex for the comparison (alerts)


def _alert_rules_from_text(text: str) -> list[dict[str, str]]:
    """``alert`` and ``expr`` of each rule, read line by line (for when PyYAML is not installed)."""
    rules: list[dict[str, str]] = []
    block: tuple[dict[str, str], int] | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if block is not None and (indent > block[1] or not line.strip()):
            block[0]["expr"] += " " + line.strip()
            continue
        block = None
        if match := re.match(r"\s*-\s*alert:\s*['\"]?([\w-]+)", line):
            rules.append({"alert": match.group(1), "expr": ""})
        elif (match := re.match(r"\s*expr:\s*(.*)$", line)) and rules:
            value = match.group(1).strip()
            if value in ("|", ">", "|-", ">-"):
                block = (rules[-1], indent)
            else:
                rules[-1]["expr"] = value.strip("'\"")
    return rules


def load_alert_rules(path: Path) -> list[dict[str, str]]:
    text = path.read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:
        return _alert_rules_from_text(text)
    data = yaml.safe_load(text) or {}
    return [{"alert": str(rule["alert"]), "expr": " ".join(str(rule.get("expr", "")).split())}
            for group in data.get("groups") or [] for rule in group.get("rules") or [] if "alert" in rule]


def _matching(rules: list[dict[str, str]], wanted: Wanted) -> list[dict[str, str]]:
    return [r for r in rules if re.search(wanted.expr, r["expr"]) and re.search(wanted.threshold, r["expr"])]


def _unknown_metrics(expr: str) -> list[str]:
    names = re.findall(r"\bliquidation_[a-z_]+", expr)
    return [n for n in names if n not in METRIC_NAMES and re.sub(r"_(bucket|sum|count)$", "", n) not in METRIC_NAMES]


_OVER = r"(?![\d.])"  # the number ends here: "> 4" but not "> 40" or "> 4.5"
ALERTS = [
    pytest.param(Wanted("execution_time > 4s", r"liquidation_(last_)?duration_seconds", rf">\s*4(\.0+)?{_OVER}"),
                 id="execution-time-over-4s", marks=pytest.mark.checklist("monitoring.alerts")),
    pytest.param(Wanted("IN_PROGRESS state > 5s", r"liquidation_in_progress", rf">\s*5(\.0+)?{_OVER}"),
                 id="in-progress-over-5s", marks=pytest.mark.checklist("monitoring.alerts")),
    pytest.param(Wanted("FAILED state", r'liquidation_executions_total\{[^}]*state\s*=~?\s*"[^"]*FAILED', rf">\s*0{_OVER}"),
                 id="failed-state", marks=pytest.mark.checklist("monitoring.alerts")),
    pytest.param(Wanted("positions_failed > 0", r"liquidation_positions_failed", rf">\s*0{_OVER}"),
                 id="positions-failed", marks=pytest.mark.checklist("monitoring.alerts")),
]


@pytest.mark.parametrize("wanted", ALERTS)
def test_monitoring_alert_configured(wanted: Wanted, monitoring_dir: Path) -> None:
    path = monitoring_dir / "alerts.yml"
    assert path.is_file(), f"{path} does not exist: no alerts are configured"
    rules = load_alert_rules(path)
    allure.attach(json.dumps(rules, indent=2), name="alert rules in alerts.yml", attachment_type=allure.attachment_type.JSON)
    found = _matching(rules, wanted)
    assert found, f"no alert for the checklist's '{wanted.text}' in {path}: rules are {[r['alert'] for r in rules]}"
    unknown = [name for rule in found for name in _unknown_metrics(rule["expr"])]
    assert not unknown, f"alert {found[0]['alert']} uses metrics the engine does not export: {unknown}"
    loosened = [{**r, "expr": re.sub(r">\s*(\d+(\.\d+)?)", r"> \g<1>9", r["expr"])} for r in found]
    assert not _matching(loosened, wanted), f"negative control: '{wanted.text}' still matched with its threshold changed"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


PANELS = [
    pytest.param(Wanted(r"^total executions$", r"liquidation_executions_total"), id="total-executions",
                 marks=pytest.mark.checklist("monitoring.dashboard")),
    pytest.param(Wanted(r"^average execution time$", r"liquidation_duration_seconds_sum.*liquidation_duration_seconds_count"),
                 id="average-execution-time", marks=pytest.mark.checklist("monitoring.dashboard")),
    pytest.param(Wanted(r"^success rate$", r'liquidation_executions_total\{state="COMPLETED"\}'), id="success-rate",
                 marks=pytest.mark.checklist("monitoring.dashboard")),
    pytest.param(Wanted(r"^position[- ]clos\w* success rate$", r"liquidation_positions_closed_total.*liquidation_positions_failed_total"),
                 id="position-close-success-rate", marks=pytest.mark.checklist("monitoring.dashboard")),
]


@pytest.mark.parametrize("wanted", PANELS)
def test_dashboard_has_panel(wanted: Wanted, monitoring_dir: Path) -> None:
    path = monitoring_dir / "dashboard.json"
    assert path.is_file(), f"{path} does not exist: no liquidation dashboard"
    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        pytest.fail(f"{path} is not valid JSON: {exc}")
    panels = list(_panels(dashboard.get("panels") or []))
    titles = [str(p.get("title", "")) for p in panels]
    allure.attach("\n".join(titles), name="dashboard panels", attachment_type=allure.attachment_type.TEXT)
    found = [p for p in panels if re.search(wanted.text, str(p.get("title", "")).strip(), re.IGNORECASE)]
    assert found, f"no panel titled like {wanted.text!r} in {path}; panels: {titles}"
    exprs = " ".join(str(t.get("expr", "")) for p in found for t in p.get("targets") or [])
    assert re.search(wanted.expr, exprs), f"panel {found[0].get('title')!r} does not query {wanted.expr!r}: {exprs}"
    assert not _unknown_metrics(exprs), f"panel {found[0].get('title')!r} uses unknown metrics: {_unknown_metrics(exprs)}"
