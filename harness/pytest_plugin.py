"""The harness's pytest plugin: target options, production refusal, Allure run metadata.

Options (one group, each with an ini twin):
  --testnet          target Binance futures testnet; keys from BINANCE_TESTNET_API_KEY/SECRET
  --demo             target Binance Demo Trading; keys from BINANCE_DEMO_API_KEY/SECRET
  --post-deploy      non-disruptive post-deployment checks against production: no order endpoint
                     (no non-GET request to /fapi) can be called from this process
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
  --fault-proxy-passthrough
                     the fault proxy forwards only and injects nothing (shows that the fault
                     scenarios fail without their faults)

Installed, the plugin loads through its ``pytest11`` entry point (named ``harness.pytest_plugin``, so
the checkout's root conftest naming the same module does not register it twice).

Default target: the embedded Binance-compatible exchange, one per test on a free loopback port.
With --testnet and no keys the run stops with a usage error naming the variables. When the target
is production (TRADING_ENV=production with --testnet absent and a production URL, or a production
--exchange-url), every test marked ``places_orders`` is skipped with a visible reason.

--testnet/--demo with a non-Binance --exchange-url means "testnet (demo) reached through the fault
proxy or stand-in at that URL": keys come from the testnet (demo) variables and the evidence level
is ``testnet-proxied`` (``demo-proxied``). Before anything runs against testnet or demo, a preflight
checks that the exchange answers and accepts the keys (usage error otherwise).

Faults on testnet / demo: a test marked ``fault_injection`` gets the fixture ``fault_proxy``, a
``harness.exchanges.fault_proxy.FaultProxy`` on 127.0.0.1 in front of the run's exchange (None on the
embedded exchange, which applies faults itself); the bot is pointed at it and its results are labelled
``testnet-proxied`` (``demo-proxied``).

Evidence (harness.report.evidence): every result gets the Allure labels ``evidence`` and
``evidence_target``; a test that does not use the ``run_target`` fixture ran on the embedded
exchange or in-process and is labelled so. Tests marked ``embedded_exchange`` (they build their own
embedded exchange) are skipped with a reason on any other target. ``harness-run.json`` beside the
results records the run's level, target, versions and config digest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from harness.checklist import CHECKLIST_LABEL, EPIC, item as checklist_item
from harness.core.errors import ConfigError
from harness.exchanges.target import DEMO_KEY_VARS, TESTNET_KEY_VARS, Target, TargetKind, credentials, resolve_target
from harness.report.evidence import EVIDENCE_LABEL, EVIDENCE_TARGET_LABEL, BotIdentity, Evidence, RunInfo
from harness.testkit.botproc import BotUnderTest

if TYPE_CHECKING:
    from harness.exchanges.fault_proxy import FaultProxy

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
STARTED_KEY = pytest.StashKey[str]()
EMBEDDED_ONLY_REASON = ("runs only on the embedded exchange (it builds its own and drives its control API); "
                        "not evidence for {target}: NOT RUN there")
PREFLIGHT_TIMEOUT_SECONDS = 10.0
#: the level of a result obtained through the harness's fault proxy, by the run's own level
PROXIED = {Evidence.TESTNET: Evidence.TESTNET_PROXIED, Evidence.DEMO: Evidence.DEMO_PROXIED}


@dataclass(frozen=True)
class RunTarget:
    """What this pytest run tests against."""

    environment: str
    target: Target | None  # None = the embedded exchange
    symbols: tuple[str, ...]
    api_key: str | None = None
    api_secret: str | None = None
    #: TESTNET or DEMO when --testnet/--demo was given with a non-Binance --exchange-url (a proxy or stand-in)
    via_proxy_for: TargetKind | None = None
    post_deploy: bool = False

    @property
    def embedded(self) -> bool:
        return self.target is None

    @property
    def evidence(self) -> Evidence:
        """The evidence level of results obtained on this target."""
        if self.target is None:
            return Evidence.EMBEDDED
        if self.via_proxy_for is TargetKind.TESTNET:
            return Evidence.TESTNET_PROXIED
        if self.via_proxy_for is TargetKind.DEMO:
            return Evidence.DEMO_PROXIED
        return {TargetKind.TESTNET: Evidence.TESTNET, TargetKind.DEMO: Evidence.DEMO,
                TargetKind.PRODUCTION: Evidence.PRODUCTION}.get(self.target.kind, Evidence.CUSTOM)

    @property
    def is_production(self) -> bool:
        return self.target is not None and self.target.is_production

    def describe(self) -> str:
        if self.target is None:
            return "embedded exchange (127.0.0.1)"
        if self.via_proxy_for is not None:
            return f"{self.via_proxy_for.value} through the proxy/stand-in at {self.target.root_url}"
        return self.target.describe()


def _option(config: pytest.Config, name: str, ini: str) -> str | bool | None:
    value = config.getoption(name)
    if value in (None, False, ""):
        value = config.getini(ini)
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("liquidation-harness", "emergency-liquidation verification harness")
    group.addoption("--testnet", action="store_true", default=False,
                    help="run scenarios against Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET)")
    group.addoption("--demo", action="store_true", default=False,
                    help="run scenarios against Binance Demo Trading (keys from BINANCE_DEMO_API_KEY/SECRET)")
    group.addoption("--post-deploy", action="store_true", default=False,
                    help="post-deployment checks against production: non-disruptive only, order endpoints refused")
    group.addoption("--env", action="store", default=None, dest="harness_env",
                    help="TRADING_ENV for the run: production | testnet | development | high-latency (default: $TRADING_ENV or testnet)")
    group.addoption("--exchange-url", action="store", default=None,
                    help="exchange root URL to test against instead of the embedded exchange")
    group.addoption("--symbols", action="store", default=None, help=f"symbols scenarios trade (default {DEFAULT_SCENARIO_SYMBOLS})")
    group.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow (chaos, soak)")
    group.addoption("--order-manager", action="store", default=None, dest="order_manager", metavar="MODULE:FACTORY",
                    help="conformance kit: factory(exchange_url, api_key, api_secret) returning the team's "
                         "OrderExecutionManager, e.g. mybot.om:factory")
    group.addoption("--fault-proxy-passthrough", action="store_true", default=False,
                    help="on testnet/demo the fault proxy forwards only, injecting nothing (fault scenarios must then fail)")
    parser.addini("fault_proxy_passthrough", "the fault proxy forwards only, injecting nothing", type="bool", default=False)
    parser.addini("testnet", "run scenarios against Binance futures testnet", type="bool", default=False)
    parser.addini("demo", "run scenarios against Binance Demo Trading", type="bool", default=False)
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
    return run_target_for(
        testnet=bool(_option(config, "testnet", "testnet")),
        demo=bool(_option(config, "demo", "demo")),
        post_deploy=bool(config.getoption("post_deploy", False)),
        url=str(_option(config, "exchange_url", "exchange_url") or "") or None,
        environment=str(_option(config, "harness_env", "trading_env") or os.environ.get("TRADING_ENV") or "testnet"),
        symbols=str(_option(config, "symbols", "symbols") or DEFAULT_SCENARIO_SYMBOLS),
    )


def run_target_for(*, testnet: bool, demo: bool, post_deploy: bool, url: str | None, environment: str,
                   symbols: str = DEFAULT_SCENARIO_SYMBOLS) -> RunTarget:
    """The run's target from the options; pytest.UsageError naming the problem (also used by verify
    to refuse a run before touching any results)."""
    symbols = tuple(s.strip().upper() for s in symbols.split(",") if s.strip())  # type: ignore[assignment]
    if post_deploy and (testnet or demo):
        raise pytest.UsageError("liquidation-harness: --post-deploy checks production; it cannot be combined with --testnet or --demo")
    try:
        if post_deploy:
            target = resolve_target("production", str(url) if url else None)
            if not target.is_production:
                raise pytest.UsageError(f"liquidation-harness: --post-deploy needs a production target, got {target.describe()}")
            return RunTarget("production", target, symbols, post_deploy=True)
        if not testnet and not demo and not url and environment != "production":
            return RunTarget(environment, None, symbols)
        target = resolve_target(environment, str(url) if url else None, testnet, demo)
    except ConfigError as exc:
        raise pytest.UsageError(f"liquidation-harness: {exc}") from None
    claimed = TargetKind.DEMO if demo else TargetKind.TESTNET if testnet else None
    via_proxy = claimed if claimed is not None and target.kind is TargetKind.CUSTOM else None
    key_vars = DEMO_KEY_VARS if claimed is TargetKind.DEMO else TESTNET_KEY_VARS if claimed else target.key_vars
    key, secret = os.environ.get(key_vars[0]) or None, os.environ.get(key_vars[1]) or None
    if claimed is None:
        key, secret = credentials(target)
    if target.kind in (TargetKind.TESTNET, TargetKind.DEMO) or via_proxy is not None:
        if not (key and secret):
            flag = "--demo" if claimed is TargetKind.DEMO or target.kind is TargetKind.DEMO else "--testnet"
            raise pytest.UsageError(
                f"liquidation-harness: {flag} needs credentials: set {key_vars[0]} and {key_vars[1]} in the environment"
            )
    if target.is_production:
        key, secret = None, None  # scenarios never get production keys
    return RunTarget(environment, target, symbols, key, secret, via_proxy)


def _signed_get(root: str, path: str, key: str, secret: str) -> Any:
    import requests

    query = urlencode({"timestamp": int(time.time() * 1000), "recvWindow": 10000})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return requests.get(f"{root}{path}?{query}&signature={signature}", headers={"X-MBX-APIKEY": key},
                        timeout=PREFLIGHT_TIMEOUT_SECONDS)


def preflight(run: RunTarget) -> None:
    """Usage error unless the target answers and accepts the keys: testnet / demo / custom with keys,
    and production in --post-deploy mode when BINANCE_API_KEY/SECRET are set (a read-only signed GET;
    the keys stay in this check and never reach a scenario)."""
    if run.target is None:
        return
    key, secret = run.api_key, run.api_secret
    if run.target.is_production:
        key, secret = credentials(run.target) if run.post_deploy else (None, None)
    if not (key and secret):
        return
    import requests

    root = run.target.root_url
    try:
        answer = requests.get(f"{root}/fapi/v1/time", timeout=PREFLIGHT_TIMEOUT_SECONDS)
        answer.raise_for_status()
    except (requests.RequestException, ValueError) as exc:
        raise pytest.UsageError(f"liquidation-harness: preflight: {run.describe()} cannot be reached "
                                f"(GET /fapi/v1/time: {type(exc).__name__}); nothing was run") from None
    try:
        answer = _signed_get(root, "/fapi/v2/balance", key, secret)
    except requests.RequestException as exc:
        raise pytest.UsageError(f"liquidation-harness: preflight: {run.describe()} did not answer a signed request "
                                f"({type(exc).__name__}); nothing was run") from None
    if answer.status_code != 200:
        try:
            body = answer.json()
            detail = f"code {body.get('code')}: {body.get('msg')}"
        except ValueError:
            detail = f"HTTP {answer.status_code}"
        raise pytest.UsageError(f"liquidation-harness: preflight: {run.describe()} refused the API key "
                                f"(signed GET /fapi/v2/balance: {detail}); nothing was run")


_ORDER_GUARD_INSTALLED = False


class OrderEndpointRefused(RuntimeError):
    """Raised when a request that could place, cancel or change anything is made in --post-deploy mode."""


#: The one write a post-deployment check may make: arming the dead-man's switch with a long
#: countdown and disarming it (countdownTime=0) at once, to show the deployed keys can arm it.
#: countdownCancelAll places no order and changes no position; it only schedules a cancel of the
#: symbol's open orders if not refreshed in time. The guard lets it through only with
#: countdownTime 0 (disarm) or at least POST_DEPLOY_MIN_COUNTDOWN_MS, so an armed switch cannot
#: fire before the disarm that follows within milliseconds (scenarios/test_post_deployment.py
#: retries the disarm and fails loudly, naming the deadline, if it cannot). Unreadable parameters
#: are refused. Nothing else that writes reaches production.
POST_DEPLOY_ALLOWED_WRITES = frozenset({("POST", "/fapi/v1/countdownCancelAll")})
POST_DEPLOY_MIN_COUNTDOWN_MS = 60_000


def _countdown_ms(url: str, body: Any) -> int | None:
    """``countdownTime`` from the query string or the form body (str, bytes, dict or pairs); None if absent or not an int."""
    pairs = parse_qsl(urlsplit(url).query)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        pairs += parse_qsl(body)
    elif isinstance(body, dict):
        pairs += list(body.items())
    elif isinstance(body, (list, tuple)):
        pairs += [tuple(pair) for pair in body if isinstance(pair, (list, tuple)) and len(pair) == 2]
    values = [value for name, value in pairs if name == "countdownTime"]
    try:
        return int(values[-1]) if values else None
    except (TypeError, ValueError):
        return None


def _refuse_writes(method: str, url: str, body: Any = None) -> None:
    path = urlsplit(str(url)).path
    if (method.upper(), path) in POST_DEPLOY_ALLOWED_WRITES:
        countdown = _countdown_ms(str(url), body)
        if countdown is not None and (countdown == 0 or countdown >= POST_DEPLOY_MIN_COUNTDOWN_MS):
            return
        raise OrderEndpointRefused(f"--post-deploy: {method.upper()} {path} with countdownTime={countdown!r} refused: "
                                   f"only 0 (disarm) or >= {POST_DEPLOY_MIN_COUNTDOWN_MS} ms (armed long enough to "
                                   "be disarmed before it could cancel anything)")
    if method.upper() not in ("GET", "HEAD", "OPTIONS") and "/fapi/" in path:
        raise OrderEndpointRefused(f"--post-deploy: {method.upper()} {path} refused: post-deployment checks never "
                                   "place, cancel or change anything on production")


def install_order_guard() -> None:
    """From now on, any non-GET request to a /fapi/ path from this process (requests or aiohttp) raises."""
    global _ORDER_GUARD_INSTALLED
    if _ORDER_GUARD_INSTALLED:
        return
    import requests

    original_send = requests.Session.send

    def guarded_send(self: Any, request: Any, **kwargs: Any) -> Any:
        _refuse_writes(request.method or "GET", request.url, request.body)
        return original_send(self, request, **kwargs)

    requests.Session.send = guarded_send  # type: ignore[method-assign]
    try:
        import aiohttp

        original_request = aiohttp.ClientSession._request

        async def guarded_request(self: Any, method: str, str_or_url: Any, *args: Any, **kwargs: Any) -> Any:
            _refuse_writes(method, str(str_or_url), kwargs.get("data", kwargs.get("params")))
            return await original_request(self, method, str_or_url, *args, **kwargs)

        aiohttp.ClientSession._request = guarded_request  # type: ignore[method-assign]
    except ImportError:  # pragma: no cover - aiohttp is a dependency
        pass
    _ORDER_GUARD_INSTALLED = True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "checklist(item_id): the deployment-checklist item this test verifies (harness.checklist ids)")
    config.addinivalue_line("markers", "order_manager_kit: a conformance-kit check; skipped without --order-manager")
    config.addinivalue_line("markers", "allure_label: allure label marker")  # registered by allure-pytest too; strict-markers safe without it
    config.addinivalue_line("markers", "slow: long chaos / soak runs; deselected unless --run-slow is given")
    config.addinivalue_line("markers", "places_orders: the scenario places or cancels orders on the target exchange")
    config.addinivalue_line("markers", "reference_bot: checks harness.bot in-process; deselected when --bot-cmd names another bot")
    config.addinivalue_line("markers", "embedded_exchange: the test builds its own embedded exchange; skipped (NOT RUN) on any other target")
    config.addinivalue_line("markers", "fault_injection: the test injects faults (exchange.faults); on testnet/demo through the "
                                       "harness's fault proxy, evidence testnet-proxied / demo-proxied")
    run = resolve_run_target(config)
    config.stash[TARGET_KEY] = run
    config.stash[BOT_KEY] = resolve_bot_under_test(config)
    config.stash[STARTED_KEY] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    spec = order_manager_spec(config)
    if spec is not None:
        from harness.conformance.factory import load_factory

        try:
            load_factory(spec)
        except ConfigError as exc:
            raise pytest.UsageError(f"liquidation-harness: {exc}") from None
    if run.post_deploy:
        install_order_guard()
    if not hasattr(config, "workerinput"):
        preflight(run)


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
    return [f"liquidation-harness target: {run.describe()}, evidence={run.evidence.value}, environment={run.environment}, "
            f"symbols={','.join(run.symbols)}",
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
        deselected_slow = bool(item.get_closest_marker("slow")) and not run_slow
        # a soak variant left out without --run-slow labels nothing either: its item is judged by the
        # fast checks that ran (an item whose only check is slow has no result and stays NOT RUN)
        for marker in () if deselected_slow else item.iter_markers("checklist"):
            try:
                marks = checklist_marks(str(marker.args[0]))
            except (IndexError, KeyError) as exc:
                raise pytest.UsageError(f"{item.nodeid}: bad checklist marker: {exc}") from None
            for mark in marks:
                item.add_marker(mark)
        uses_target = "run_target" in getattr(item, "fixturenames", ())
        evidence = run.evidence if uses_target else Evidence.EMBEDDED
        where = run.describe() if uses_target else "embedded exchange / in-process"
        if uses_target and not run.embedded and item.get_closest_marker("fault_injection"):
            evidence = PROXIED.get(evidence, evidence)
            where = f"{where} through the harness's fault proxy"
        item.add_marker(pytest.mark.allure_label(evidence.value, label_type=EVIDENCE_LABEL))
        item.add_marker(pytest.mark.allure_label(where, label_type=EVIDENCE_TARGET_LABEL))
        if not run.embedded and item.get_closest_marker("embedded_exchange"):
            item.add_marker(pytest.mark.skip(reason=EMBEDDED_ONLY_REASON.format(target=run.describe())))
        if run.is_production and item.get_closest_marker("places_orders"):
            item.add_marker(pytest.mark.skip(reason=PRODUCTION_SKIP_REASON))
        if deselected_slow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))


def order_manager_spec(config: pytest.Config) -> str | None:
    """``--order-manager`` (or the ``order_manager`` ini value); None when not given."""
    value = _option(config, "order_manager", "order_manager")
    return str(value).strip() or None if value else None


@pytest.fixture(scope="session")
def run_target(pytestconfig: pytest.Config) -> RunTarget:
    """The run's target (embedded exchange, testnet or a custom URL)."""
    return pytestconfig.stash[TARGET_KEY]


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest, run_target: RunTarget) -> Iterator[FaultProxy | None]:
    """For a test marked ``fault_injection`` on testnet / demo (or a stand-in): a started FaultProxy in
    front of the run's exchange, stopped after the test; None on the embedded exchange or unmarked."""
    if run_target.target is None or request.node.get_closest_marker("fault_injection") is None:
        yield None
        return
    from harness.exchanges.fault_proxy import FaultProxy

    passthrough = bool(_option(request.config, "fault_proxy_passthrough", "fault_proxy_passthrough"))
    try:
        proxy = FaultProxy(run_target.target.root_url, inject=not passthrough)
    except ConfigError as exc:
        pytest.fail(f"fault proxy: {exc}", pytrace=False)
    with proxy:
        yield proxy


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
    properties["Evidence"] = run.evidence.value
    (out / "environment.properties").write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
    RunInfo(
        evidence=run.evidence, target=run.describe(), environment=run.environment, harness_version=__version__,
        started=session.config.stash.get(STARTED_KEY, ""),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"), exit_status=int(exitstatus),
        bot=_bot_identity(run.environment, session.config.stash[BOT_KEY]), post_deploy=run.post_deploy,
    ).write(out)
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


def _bot_identity(environment: str, bot: BotUnderTest) -> BotIdentity:
    """The bot under test as the report names it: its command and version; for the reference bot also
    the digest of the configuration its environment gives it (a foreign bot's own config is unknown here)."""
    if not bot.is_reference:
        return BotIdentity(bot.describe(), bot.version(), "")
    from harness.core.config import load_config

    try:
        config = load_config(environment).model_dump()
    except (ConfigError, ValueError):
        return BotIdentity.default()
    return BotIdentity.default(config)
