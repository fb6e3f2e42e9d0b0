"""The harness's pytest plugin: target options, production refusal, Allure run metadata.

Options (one group, each with an ini twin):
  --testnet          target Binance futures testnet; keys from BINANCE_TESTNET_API_KEY/SECRET
  --env              TRADING_ENV for the run (production | testnet | development | high-latency)
  --exchange-url     an exchange root URL instead of the embedded exchange
  --symbols          symbols scenarios trade (comma-separated)
  --run-slow         also run tests marked ``slow`` (chaos, soak)
  --bot-cmd, --bot-cwd, --bot-ready, --bot-ready-timeout, --bot-stop-signal, --bot-metrics-url
                     the bot under test (``harness.testkit.BotUnderTest``, fixture ``bot_under_test``;
                     default ``python -m harness.bot``). With another bot, tests marked
                     ``reference_bot`` (in-process checks of harness.bot) are deselected.
  --order-manager    package.module:factory: run the order-manager conformance kit
                     (scenarios/test_order_manager_conformance.py, harness.conformance) on it

Installed, the plugin loads through its ``pytest11`` entry point (named ``harness.pytest_plugin``, so
the checkout's root conftest naming the same module does not register it twice).

Default target: the embedded Binance-compatible exchange, one per test on a free loopback port.
With --testnet and no keys the run stops with a usage error naming the variables. When the target
is production (TRADING_ENV=production with --testnet absent and a production URL, or a production
--exchange-url), every test marked ``places_orders`` is skipped with a visible reason.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.checklist import CHECKLIST_LABEL, EPIC, item as checklist_item
from harness.core.errors import ConfigError
from harness.exchanges.target import TESTNET_KEY_VARS, Target, credentials, resolve_target
from harness.testkit.botproc import BotUnderTest

DEFAULT_SCENARIO_SYMBOLS = "BTCUSDT,ETHUSDT,BNBUSDT"
PRODUCTION_SKIP_REASON = "target is PRODUCTION: order-placing scenarios never run against production (non-disruptive checks only)"
TARGET_KEY = pytest.StashKey["RunTarget"]()
BOT_KEY = pytest.StashKey[BotUnderTest]()
#: (option, ini name, help) of the bot under test; the ini twin is the option's name with underscores
BOT_OPTIONS = (
    ("--bot-cmd", "bot_cmd", "the bot under test: a command line (shlex-split, no shell; default python -m harness.bot)"),
    ("--bot-cwd", "bot_cwd", "directory the bot under test starts in (default: the current directory)"),
    ("--bot-ready", "bot_ready", "how the bot says it is ready: a stdout prefix (default READY; the bot.ready file "
                                 "and, on the embedded exchange, its first signed request count too), stdout:PREFIX, file or request"),
    ("--bot-ready-timeout", "bot_ready_timeout", "seconds the bot has to become ready (default 30)"),
    ("--bot-stop-signal", "bot_stop_signal", "the signal that stops the bot (default SIGTERM)"),
    ("--bot-metrics-url", "bot_metrics_url", "the bot's Prometheus endpoint, read for the metrics checks"),
)
NO_ORDER_MANAGER_REASON = ("conformance kit: no order manager under test; give --order-manager package.module:factory "
                           "(factory(exchange_url, api_key, api_secret) -> OrderExecutionManager)")


@dataclass(frozen=True)
class RunTarget:
    """What this pytest run tests against."""

    environment: str
    target: Target | None  # None = the embedded exchange
    symbols: tuple[str, ...]
    api_key: str | None = None
    api_secret: str | None = None

    @property
    def embedded(self) -> bool:
        return self.target is None

    @property
    def is_production(self) -> bool:
        return self.target is not None and self.target.is_production

    def describe(self) -> str:
        return "embedded exchange (127.0.0.1)" if self.embedded else self.target.describe()  # type: ignore[union-attr]


def _option(config: pytest.Config, name: str, ini: str) -> str | bool | None:
    value = config.getoption(name)
    if value in (None, False, ""):
        value = config.getini(ini)
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("liquidation-harness", "emergency-liquidation verification harness")
    group.addoption("--testnet", action="store_true", default=False,
                    help="run scenarios against Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET)")
    group.addoption("--env", action="store", default=None, dest="harness_env",
                    help="TRADING_ENV for the run: production | testnet | development | high-latency (default: $TRADING_ENV or testnet)")
    group.addoption("--exchange-url", action="store", default=None,
                    help="exchange root URL to test against instead of the embedded exchange")
    group.addoption("--symbols", action="store", default=None, help=f"symbols scenarios trade (default {DEFAULT_SCENARIO_SYMBOLS})")
    group.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow (chaos, soak)")
    group.addoption("--order-manager", action="store", default=None, dest="order_manager", metavar="MODULE:FACTORY",
                    help="conformance kit: factory(exchange_url, api_key, api_secret) returning the team's "
                         "OrderExecutionManager, e.g. mybot.om:factory")
    parser.addini("testnet", "run scenarios against Binance futures testnet", type="bool", default=False)
    parser.addini("trading_env", "TRADING_ENV for the run", default="")
    parser.addini("exchange_url", "exchange root URL to test against", default="")
    parser.addini("symbols", "symbols scenarios trade", default="")
    parser.addini("run_slow", "also run tests marked slow", type="bool", default=False)
    parser.addini("order_manager", "conformance kit: package.module:factory of the team's order manager", default="")
    for option, ini, text in BOT_OPTIONS:
        group.addoption(option, action="store", default=None, dest=ini, help=text)
        parser.addini(ini, text, default="")


def resolve_bot_under_test(config: pytest.Config) -> BotUnderTest:
    """The --bot-* options (or their ini twins) as a BotUnderTest; a bad value is a usage error naming it."""
    values = {ini: _option(config, ini, ini) or None for _, ini, _ in BOT_OPTIONS}
    try:
        return BotUnderTest.from_options(cmd=values["bot_cmd"], cwd=values["bot_cwd"], ready=values["bot_ready"],
                                         ready_timeout=values["bot_ready_timeout"], stop_signal=values["bot_stop_signal"],
                                         metrics_url=values["bot_metrics_url"])
    except ConfigError as exc:
        raise pytest.UsageError(f"liquidation-harness: {exc}") from None


def resolve_run_target(config: pytest.Config) -> RunTarget:
    testnet = bool(_option(config, "testnet", "testnet"))
    url = _option(config, "exchange_url", "exchange_url") or None
    environment = str(_option(config, "harness_env", "trading_env") or os.environ.get("TRADING_ENV") or "testnet")
    symbols = tuple(s.strip().upper() for s in str(_option(config, "symbols", "symbols") or DEFAULT_SCENARIO_SYMBOLS).split(",") if s.strip())
    try:
        if not testnet and not url and environment != "production":
            return RunTarget(environment, None, symbols)
        target = resolve_target(environment, str(url) if url else None, testnet)
    except ConfigError as exc:
        raise pytest.UsageError(f"liquidation-harness: {exc}") from None
    key, secret = credentials(target)
    if target.kind == "testnet" and not (key and secret):
        raise pytest.UsageError(
            "liquidation-harness: --testnet needs credentials: set "
            f"{TESTNET_KEY_VARS[0]} and {TESTNET_KEY_VARS[1]} in the environment"
        )
    if target.is_production:
        key, secret = None, None  # scenarios never get production keys
    return RunTarget(environment, target, symbols, key, secret)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "checklist(item_id): the deployment-checklist item this test verifies (harness.checklist ids)")
    config.addinivalue_line("markers", "order_manager_kit: a conformance-kit check; skipped without --order-manager")
    config.addinivalue_line("markers", "allure_label: allure label marker")  # registered by allure-pytest too; strict-markers safe without it
    config.addinivalue_line("markers", "slow: long chaos / soak runs; deselected unless --run-slow is given")
    config.addinivalue_line("markers", "places_orders: the scenario places or cancels orders on the target exchange")
    config.addinivalue_line("markers", "reference_bot: checks harness.bot in-process; deselected when --bot-cmd names another bot")
    config.stash[TARGET_KEY] = resolve_run_target(config)
    config.stash[BOT_KEY] = resolve_bot_under_test(config)
    spec = order_manager_spec(config)
    if spec is not None:
        from harness.conformance.factory import load_factory

        try:
            load_factory(spec)
        except ConfigError as exc:
            raise pytest.UsageError(f"liquidation-harness: {exc}") from None


def checklist_marks(item_id: str) -> list[pytest.MarkDecorator]:
    """Allure labels for a checklist item: epic, feature (section), story (box), severity, checklist_item."""
    entry = checklist_item(item_id)
    label = pytest.mark.allure_label
    return [
        label(EPIC, label_type="epic"),
        label(entry.feature, label_type="feature"),
        label(entry.story, label_type="story"),
        label(entry.severity, label_type="severity"),
        label(entry.id, label_type=CHECKLIST_LABEL),
    ]


def pytest_report_header(config: pytest.Config) -> str:
    run = config.stash[TARGET_KEY]
    bot = config.stash[BOT_KEY]
    return [f"liquidation-harness target: {run.describe()}, environment={run.environment}, symbols={','.join(run.symbols)}",
            f"liquidation-harness bot under test: {bot.describe()} (cwd {bot.cwd or Path.cwd()})"]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash[TARGET_KEY]
    run_slow = bool(_option(config, "run_slow", "run_slow"))
    if not config.stash[BOT_KEY].is_reference:
        deselected = [item for item in items if item.get_closest_marker("reference_bot")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("reference_bot")]
    kit_skip = None if order_manager_spec(config) else pytest.mark.skip(reason=NO_ORDER_MANAGER_REASON)
    for item in items:
        if kit_skip is not None and item.get_closest_marker("order_manager_kit"):
            item.add_marker(kit_skip)
            continue  # no checklist labels: a kit that did not run must not mark its items skipped
        for marker in item.iter_markers("checklist"):
            try:
                marks = checklist_marks(str(marker.args[0]))
            except (IndexError, KeyError) as exc:
                raise pytest.UsageError(f"{item.nodeid}: bad checklist marker: {exc}") from None
            for mark in marks:
                item.add_marker(mark)
        if run.is_production and item.get_closest_marker("places_orders"):
            item.add_marker(pytest.mark.skip(reason=PRODUCTION_SKIP_REASON))
        if item.get_closest_marker("slow") and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))


def order_manager_spec(config: pytest.Config) -> str | None:
    """``--order-manager`` (or the ``order_manager`` ini value); None when not given."""
    value = _option(config, "order_manager", "order_manager")
    return str(value).strip() or None if value else None


@pytest.fixture(scope="session")
def run_target(pytestconfig: pytest.Config) -> RunTarget:
    """The run's target (embedded exchange, testnet or a custom URL)."""
    return pytestconfig.stash[TARGET_KEY]


@pytest.fixture(scope="session")
def bot_under_test(pytestconfig: pytest.Config) -> BotUnderTest:
    """The bot the scenarios judge (--bot-cmd ...; default python -m harness.bot)."""
    return pytestconfig.stash[BOT_KEY]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write Allure's environment.properties, executor.json and categories.json next to the results."""
    alluredir = getattr(session.config.option, "allure_report_dir", None)
    if not alluredir or hasattr(session.config, "workerinput"):
        return
    out = Path(alluredir)
    out.mkdir(parents=True, exist_ok=True)
    run = session.config.stash[TARGET_KEY]
    from harness import __version__

    properties = {
        "Target": run.describe(),
        "TRADING_ENV": run.environment,
        "Symbols": ",".join(run.symbols),
        "Python": platform.python_version(),
        "Platform": platform.platform(),
        "Harness.Version": __version__,
        "Bot.Command": session.config.stash[BOT_KEY].describe(),
    }
    (out / "environment.properties").write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
    executor = {"name": "liquidation-harness", "type": "pytest", "buildName": os.environ.get("BUILD_NAME", "local run"),
                "reportName": "Emergency Liquidation - Deployment Validation", "url": os.environ.get("CI_JOB_URL", "")}
    (out / "executor.json").write_text(json.dumps(executor, indent=2), encoding="utf-8")
    categories = [
        {"name": "Timeout / hung shutdown", "matchedStatuses": ["failed", "broken"], "messageRegex": "(?s).*(timeout|deadline|hang|Timeout).*"},
        {"name": "Exchange rejection", "matchedStatuses": ["failed", "broken"],
         "messageRegex": "(?s).*(BinanceAPIException|ExchangeError|code=-\\d+|APIError).*"},
        {"name": "Assertion (checklist item not met)", "matchedStatuses": ["failed"], "traceRegex": "(?s).*AssertionError.*"},
        {"name": "Harness or environment error", "matchedStatuses": ["broken"]},
    ]
    (out / "categories.json").write_text(json.dumps(categories, indent=2), encoding="utf-8")
