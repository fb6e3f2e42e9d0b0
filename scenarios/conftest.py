"""Fixtures for the checklist scenarios: the target exchange, its account, and the bot under test.

``exchange`` is the embedded Binance-compatible exchange (one per test, free loopback port, so
scenarios run in parallel under pytest-xdist) or, with --testnet, Binance futures testnet. Every
order-placing scenario flattens the account afterwards, also when it fails. ``exchange.faults`` is
the same FaultPlan interface on both: the embedded exchange's own, or on testnet / demo the fault
proxy's (the plugin's ``fault_proxy`` for scenarios marked ``fault_injection``; the bot is pointed
at the proxy, the account's set-up and clean-up go to the exchange directly).

``exchange.bot(...)`` starts the bot under test (``--bot-cmd`` ..., default ``python -m harness.bot``)
under the bot-under-test contract (``harness.testkit.botproc``): the scenario's configuration goes in
as ``LIQUIDATION_<FIELD>`` variables, the rollback switch as ``EMERGENCY_LIQUIDATION_DISABLED=true``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin import PRODUCTION_SKIP_REASON, RunTarget
from harness.testkit import BotProcess, BotUnderTest, ExchangeAccount


@dataclass
class Exchange:
    """The scenario's exchange: where the bot connects and how scenarios set it up and check it."""

    base_url: str | None
    testnet: bool
    api_key: str
    api_secret: str
    account: ExchangeAccount
    sim: Any = None  # the BinanceSimulator when embedded (control API: faults, request log)
    proxy: Any = None  # the FaultProxy in front of testnet / demo, for scenarios marked fault_injection
    bots: list[BotProcess] = field(default_factory=list)
    spec: BotUnderTest = field(default_factory=BotUnderTest)
    environment: str = "testnet"  # TRADING_ENV of the bot: the testnet profile on every non-production target

    @property
    def embedded(self) -> bool:
        return self.sim is not None

    @property
    def injects_faults(self) -> bool:
        """True when ``faults`` acts on what the bot sends: the embedded exchange, or the fault proxy."""
        return self.sim is not None or self.proxy is not None

    @property
    def faults(self) -> Any:
        """The FaultPlan the bot's requests meet: the embedded exchange's, or the fault proxy's on
        testnet / demo (mark the scenario ``@pytest.mark.fault_injection`` to get the proxy there)."""
        if self.sim is not None:
            return self.sim.faults
        if self.proxy is not None:
            return self.proxy.faults
        raise RuntimeError(f"no fault injection on {self.base_url}: mark the scenario @pytest.mark.fault_injection "
                           "so the harness puts its fault proxy in front of the exchange")

    @property
    def request_log(self) -> list[Any]:
        """What the bot sent, as the embedded exchange or the fault proxy recorded it ([] without either)."""
        source = self.sim if self.sim is not None else self.proxy
        return source.request_log if source is not None else []

    def bot_env(self) -> dict[str, str]:
        key_var, secret_var = self.account.target.key_vars  # the variables the bot reads for this target
        return {key_var: self.api_key, secret_var: self.api_secret}

    def bot(self, log_dir: Path, symbols: list[str] | None, *, env: dict[str, str] | None = None,
            config: dict[str, Any] | None = None, rollback: bool = False) -> BotProcess:
        """The bot under test for this exchange, scoped to ``symbols`` (None: the whole account)."""
        process = BotProcess(log_dir, exchange_url=self.base_url, symbols=symbols, env={**self.bot_env(), **(env or {})},
                             environment=self.environment, spec=self.spec, config=config, rollback=rollback)
        self.bots.append(process)
        return process

    def start(self, bot: BotProcess) -> BotProcess:
        """Start ``bot`` and wait until it is ready; on the embedded exchange its first signed request counts."""
        if not self.injects_faults:
            return bot.start()
        marker = len(self.request_log)
        return bot.start(request_seen=lambda: any("timestamp" in r.params for r in self.request_log[marker:]))


@pytest.fixture
def exchange(run_target: RunTarget, bot_under_test: BotUnderTest, fault_proxy: Any) -> Iterator[Exchange]:
    """The target exchange for one scenario, flattened on teardown."""
    if run_target.is_production:
        pytest.skip(PRODUCTION_SKIP_REASON)
    if run_target.embedded:
        from harness.exchanges.sim import BinanceSimulator

        with BinanceSimulator() as sim:
            account = ExchangeAccount(sim.api_key, sim.api_secret, base_url=sim.base_url)
            yield from _with_cleanup(Exchange(sim.base_url, False, sim.api_key, sim.api_secret, account, sim,
                                              spec=bot_under_test), run_target)
        return
    assert run_target.target is not None
    if not (run_target.api_key and run_target.api_secret):
        pytest.fail(f"{run_target.describe()} needs {' and '.join(run_target.target.key_vars)}")
    account = ExchangeAccount(run_target.api_key, run_target.api_secret, target=run_target.target)
    bot_url = fault_proxy.base_url if fault_proxy is not None else run_target.target.root_url
    yield from _with_cleanup(
        Exchange(bot_url, True, run_target.api_key, run_target.api_secret, account, proxy=fault_proxy,
                 spec=bot_under_test), run_target
    )


def _with_cleanup(exchange: Exchange, run_target: RunTarget) -> Iterator[Exchange]:
    try:
        yield exchange
    finally:
        for bot in exchange.bots:
            bot.kill()
        if exchange.injects_faults:
            exchange.faults.release_hangs()
            exchange.faults.clear()
        try:
            exchange.account.flatten(list(run_target.symbols) + _extra_symbols(exchange))
        finally:
            exchange.account.close()


def _extra_symbols(exchange: Exchange) -> list[str]:
    return sorted({s for bot in exchange.bots for s in bot.symbols if s.isalnum()})


@pytest.fixture
def symbols(run_target: RunTarget) -> list[str]:
    return list(run_target.symbols)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


BotFactory = Callable[..., BotProcess]


# -- for scenarios/test_acceptance_bot.py (additive) -------------------------------------------
#: request-weight and order limits high enough never to bind (the embedded exchange's defaults are Binance's)
NO_RATE_LIMITS = {"weight_per_minute": 10**9, "orders_per_10s": 10**9, "orders_per_minute": 10**9}


@pytest.fixture
def unlimited_exchange(run_target: RunTarget, bot_under_test: BotUnderTest) -> Iterator[Exchange]:
    """The embedded exchange without Binance's rate limits, for checks that liquidate dozens of times a
    minute (the memory check's on-demand liquidations: ~100 weight each would hit 2400/min); skipped
    on testnet and Demo Trading, where those limits are real. Flattened on teardown."""
    if run_target.is_production:
        pytest.skip(PRODUCTION_SKIP_REASON)
    if not run_target.embedded:
        pytest.skip("needs the embedded exchange (its rate limits lifted)")
    from harness.exchanges.sim import BinanceSimulator

    with BinanceSimulator(rate_limits=NO_RATE_LIMITS) as sim:
        account = ExchangeAccount(sim.api_key, sim.api_secret, base_url=sim.base_url)
        yield from _with_cleanup(Exchange(sim.base_url, False, sim.api_key, sim.api_secret, account, sim,
                                          spec=bot_under_test), run_target)
