"""Chaos suite: random accounts and random fault schedules, each liquidated through the real
python-binance adapter against the embedded exchange, and judged by the invariants I1-I6
(tests/support/chaos_strategies.py has the strategies and the checks).

Every example gets a fresh ``BinanceSimulator`` over a fresh book and a fault plan seeded by the
example (starting one costs about a millisecond, and a fresh plan makes probabilistic faults
reproducible when Hypothesis shrinks), a fresh adapter and a fresh audit file.

Budgets. CI runs a bounded, derandomized set: ``test_invariants_hold_under_random_fault_schedules``
(100 examples, accounts of 1-8 symbols, hangs that end on their own, retry backoff not slept so an
example costs tens of milliseconds), ``test_deadline_holds_when_the_exchange_hangs`` (a few
examples whose hangs outlast the 1 s deadline, real sleeps) and a fifty-symbol account.

Environment variables (read here; the root conftest and the plugin are not involved):

* ``CHAOS_EXAMPLES=N``: examples of the main property (default 100, which keeps the whole suite near a
  minute; every fault kind still shows up in a dozen examples or more; ``CHAOS_EXAMPLES=200`` is the
  earlier default, same accounts and hang examples). Above 200 the accounts grow to
  1-50 symbols and the hang property runs ``N // 50`` examples. The 10,000-schedule campaign is
  ``CHAOS_EXAMPLES=10000 pytest tests/integration/test_chaos.py -p no:cacheprovider``.
* ``CHAOS_SEED=S``: draw from seed ``S`` instead of the derandomized default (another campaign).
* ``CHAOS_SHARD=i/n``: with ``CHAOS_SEED``, shard ``i`` of ``n`` (different seeds per shard), for
  running a campaign in several processes.

A failure prints the shrunk schedule; it is then kept as an ``@example`` on the property (the
``UNREADABLE_POSITIONS`` ... constants below) and pinned at the engine level in ``TestRegressions``,
so it is replayed on every run. ``TestTheInvariantsCanFail`` runs deliberately broken adapters and
engines and shows the invariant that catches each (I3's broken variant, an engine without its
deadline, costs two seconds and was run during development only).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, example, given, seed, settings
from hypothesis import note as _note
from hypothesis import strategies as st

from tests.support.chaos_strategies import (
    LONG_HANG_SECONDS,
    Account,
    Schedule,
    book_legs,
    check_audit,
    check_deadline,
    check_fills,
    check_no_secrets,
    check_report,
    new_chaos_book,
    schedules,
    seed_account,
)
from harness.core.audit import AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.sim import BinanceSimulator, FaultRule, RateLimits

EXAMPLES = int(os.environ.get("CHAOS_EXAMPLES", "100"))
CAMPAIGN = EXAMPLES > 200
MAX_SYMBOLS = 50 if CAMPAIGN else 8
HANG_EXAMPLES = max(4, EXAMPLES // 50) if CAMPAIGN else 4
_SEED = os.environ.get("CHAOS_SEED")
_SHARD = os.environ.get("CHAOS_SHARD", "0/1")

#: pytest-timeout for the properties scales with their example count: the ini's 120 s bounds one test,
#: not a campaign (400 examples took 440 s on 2 busy cores, so 10,000 take hours); generous per-example
#: budgets, so only a hung run trips it
PER_EXAMPLE_SECONDS = {"fast": 3.0 if CAMPAIGN else 0.5, "hang": 10.0, "fifty": 20.0}


def _timeout_for(examples: int, kind: str) -> pytest.MarkDecorator:
    return pytest.mark.timeout(max(120, int(60 + examples * PER_EXAMPLE_SECONDS[kind])))


#: the fast property's deadline (no hang outlasts it) and the hang property's (the minimum allowed)
FAST_TIMEOUT_SECONDS = 5.0
HANG_TIMEOUT_SECONDS = 1.0
#: per-request bound of the adapter (a short hang ends well inside it)
REQUEST_TIMEOUT_SECONDS = 0.5
#: rate limits never reached by the suite (429/418 come from injected faults instead)
UNLIMITED = RateLimits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_minute=10**9)


def _chaos_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=_SEED is None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture,
                               HealthCheck.large_base_example],
    )


def _seeded(test: Any) -> Any:
    """Apply ``CHAOS_SEED`` (offset by the shard index) when set."""
    if _SEED is None:
        return test
    index = int(_SHARD.partition("/")[0])
    return seed(int(_SEED) * 1000 + index)(test)


def note(text: str) -> None:
    """``hypothesis.note`` inside an example; nothing in a plain test (the regression tests)."""
    if currently_in_test_context():
        _note(text)


async def _no_wait(seconds: float) -> None:
    """Backoff and Retry-After waits are not slept in the fast property (the deadline still is real)."""
    await asyncio.sleep(0)


def _no_wait_sync(seconds: float) -> None:
    return None


@dataclass
class ChaosRun:
    """One liquidation under one schedule, and everything the invariants look at."""

    schedule: Schedule
    result: LiquidationResult
    elapsed: float
    start_legs: dict[tuple[str, str], Decimal]
    fills: list[Any]
    report_problems: list[str]
    audit_path: Path
    log_text: str
    secrets: tuple[str, str]

    @property
    def targeted(self) -> list[str]:
        account = self.schedule.account
        return list(account.targets) if account.targets else sorted({s for s, _ in self.start_legs})

    def violations(self, timeout_seconds: float) -> list[str]:
        problems = check_fills(self.start_legs, self.fills)
        problems += check_deadline(self.elapsed, timeout_seconds)
        problems += self.report_problems
        problems += check_audit(self.audit_path).problems
        audit_text = self.audit_path.read_text(encoding="utf-8")
        problems += check_no_secrets(audit_text, self.secrets, "audit")
        problems += check_no_secrets(self.log_text, self.secrets, "logs")
        problems += check_no_secrets(repr(self.result.to_dict()), self.secrets, "result")
        return problems


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def harness_logs() -> Iterator[_Capture]:
    """Every record of the harness's loggers at DEBUG, for I6."""
    logger = logging.getLogger("harness")
    handler = _Capture()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _liquidate(sim: BinanceSimulator, schedule: Schedule, audit_path: Path, *, timeout_seconds: float,
                     request_timeout: float, fast: bool) -> tuple[LiquidationResult, float, list[str]]:
    sleeps: dict[str, Any] = {"sleep": _no_wait, "sync_sleep": _no_wait_sync} if fast else {}
    config = LiquidationConfig(timeout_seconds=timeout_seconds, max_retries=schedule.max_retries)
    async with BinanceFuturesOrderManager(sim.api_key, sim.api_secret, base_url=sim.base_url,
                                          request_timeout=request_timeout, **sleeps) as adapter:
        with AuditLogger(audit_path) as audit:
            audit.register_secret(sim.api_key)
            audit.register_secret(sim.api_secret)
            manager = LiquidationManager(config, adapter, audit, list(schedule.account.targets),
                                         **({"sleep": _no_wait} if fast else {}))
            started = time.monotonic()
            result = await manager.execute_emergency_liquidation("chaos")
            elapsed = time.monotonic() - started
    targeted = list(schedule.account.targets)
    if not targeted:  # "every symbol with a position"
        targeted = sorted({s for s, _, amount in schedule.account.legs if amount != 0})
    return result, elapsed, check_report(result, sim.book, targeted)


def run_schedule(schedule: Schedule, audit_dir: Path, logs: _Capture, *, timeout_seconds: float = FAST_TIMEOUT_SECONDS,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS, fast: bool = True) -> ChaosRun:
    """Seed a fresh exchange with ``schedule``, liquidate, and collect what the invariants need."""
    book = new_chaos_book()
    accepted = seed_account(book, schedule.account)
    start_legs = book_legs(book)
    note(f"seeded {len(start_legs)} leg(s), {accepted}/{len(schedule.account.orders)} order(s)")
    audit_path = audit_dir / f"audit-{time.monotonic_ns()}.jsonl"
    logs.lines.clear()
    with BinanceSimulator(book, schedule.plan(), rate_limits=UNLIMITED) as sim:
        secrets = (sim.api_key, sim.api_secret)
        result, elapsed, report_problems = asyncio.run(_liquidate(
            sim, schedule, audit_path, timeout_seconds=timeout_seconds, request_timeout=request_timeout, fast=fast))
    # the exchange has stopped: any hung request it released has run, so late fills are in the log
    note(f"result: {result.state.value} closed={result.positions_closed} failed={result.positions_failed} "
         f"errors={result.errors[:3]}")
    return ChaosRun(schedule, result, elapsed, start_legs, book.fill_log, report_problems, audit_path,
                    "\n".join(logs.lines), secrets)


def assert_invariants(run: ChaosRun, timeout_seconds: float) -> None:
    problems = run.violations(timeout_seconds)
    assert not problems, "\n".join(problems)


# -- regression examples (shrunk failures found by this suite; see the module docstring) ---------
def _one_way(*legs: tuple[str, str]) -> Account:
    return Account(False, tuple((s, "BOTH", Decimal(a)) for s, a in legs), (), tuple(dict.fromkeys(s for s, _ in legs)))


#: bug 1: positions unreadable (503 on every call) -> FAILED with positions_failed=0 while open
UNREADABLE_POSITIONS = Schedule(_one_way(("BTCUSDT", "0.001")), (FaultRule("error", status=503, code=-1001),),
                                max_retries=0)
#: bug 1 with no symbols named ("every symbol with a position")
UNREADABLE_POSITIONS_ALL = Schedule(
    Account(False, tuple((s, "BOTH", Decimal(a)) for s, a in (("BTCUSDT", "0.001"), ("SOLUSDT", "1"))), (), ()),
    (FaultRule("error", status=503, code=-1001),), max_retries=0)
#: bug 2: the close executed, every answer about it was garbled -> reported failed, flat, nothing said
GARBLED_AFTER_EXECUTION = Schedule(
    _one_way(("BTCUSDT", "0.001")),
    (FaultRule("latency", seconds=0.001), FaultRule("malformed_body", probability=0.5, executed=True)),
    seed=294, max_retries=2)


class TestChaos:
    @_timeout_for(EXAMPLES, "fast")
    @_seeded
    @_chaos_settings(EXAMPLES)
    @given(schedule=schedules(max_symbols=MAX_SYMBOLS))
    @example(schedule=UNREADABLE_POSITIONS)
    @example(schedule=UNREADABLE_POSITIONS_ALL)
    @example(schedule=GARBLED_AFTER_EXECUTION)
    def test_invariants_hold_under_random_fault_schedules(self, schedule: Schedule, tmp_path: Path,
                                                           harness_logs: _Capture) -> None:
        """I1-I6 after every account x fault schedule (hangs end on their own here)."""
        assert_invariants(run_schedule(schedule, tmp_path, harness_logs), FAST_TIMEOUT_SECONDS)

    @_timeout_for(HANG_EXAMPLES, "hang")
    @_seeded
    @_chaos_settings(HANG_EXAMPLES)
    @given(schedule=schedules(max_symbols=4, min_rules=1, max_rules=3,
                              hang_seconds=st.sampled_from([LONG_HANG_SECONDS, 0.4]),
                              kinds=("hang", "hang", "latency", "error", "unknown_status_executed", "partial_fill",
                                     "connection_reset")))
    def test_deadline_holds_when_the_exchange_hangs(self, schedule: Schedule, tmp_path: Path,
                                                    harness_logs: _Capture) -> None:
        """I3 with hangs that outlast the deadline (or a request's timeout), real sleeps; and I1, I2, I4-I6."""
        run = run_schedule(schedule, tmp_path, harness_logs, timeout_seconds=HANG_TIMEOUT_SECONDS,
                           request_timeout=0.3, fast=False)
        assert_invariants(run, HANG_TIMEOUT_SECONDS)

    @_timeout_for(2 if not CAMPAIGN else 20, "fifty")
    @_seeded
    @_chaos_settings(2 if not CAMPAIGN else 20)
    @given(schedule=schedules(min_symbols=50, max_symbols=50, max_rules=4))
    def test_invariants_hold_on_a_fifty_symbol_account(self, schedule: Schedule, tmp_path: Path,
                                                       harness_logs: _Capture) -> None:
        assert_invariants(run_schedule(schedule, tmp_path, harness_logs), FAST_TIMEOUT_SECONDS)


# -- the checks can fail ---------------------------------------------------------------------------
BTC_LONG = _one_way(("BTCUSDT", "0.010"))
BTC_HEDGED = Account(True, (("BTCUSDT", "LONG", Decimal("0.010")), ("BTCUSDT", "SHORT", Decimal("-0.020"))), (),
                     ("BTCUSDT",))


def _opposite_side_params(original: Any) -> Any:
    """``MarketCloser._params`` made to OPEN: the opposite side, no reduceOnly (positionSide kept)."""
    def broken(self: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
        params = dict(original(self, *args, **kwargs))
        params.pop("reduceOnly", None)
        params["side"] = "BUY" if params["side"] == "SELL" else "SELL"
        return params
    return broken


class TestTheInvariantsCanFail:
    """Deliberately broken engines and adapters, and the invariant that catches each."""

    @pytest.mark.parametrize("account", [BTC_LONG, BTC_HEDGED], ids=["one-way", "hedge"])
    def test_i1_catches_an_adapter_that_opens_instead_of_closing(
        self, account: Account, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from harness.exchanges.binance.close import MarketCloser

        monkeypatch.setattr(MarketCloser, "_params", _opposite_side_params(MarketCloser._params))
        problems = run_schedule(Schedule(account, ()), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I1: ") and "increased" in p for p in problems), problems

    def test_i1_and_i2_catch_a_resend_after_an_unknown_status_without_reconciling(
        self, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """No reduceOnly, and a retry that trusts memory instead of re-reading: the close runs twice."""
        from harness.exchanges.binance.close import MarketCloser

        original = MarketCloser._params

        def no_reduce_only(self: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
            params = dict(original(self, *args, **kwargs))
            params.pop("reduceOnly", None)
            return params

        async def remembered(self: LiquidationManager, position: Any) -> Decimal:
            return position.quantity

        monkeypatch.setattr(MarketCloser, "_params", no_reduce_only)
        monkeypatch.setattr(LiquidationManager, "_remaining_after_error", remembered)
        rules = (FaultRule("unknown_status_executed", endpoint="POST /fapi/v1/order", times=1),
                 FaultRule("error", endpoint="GET /fapi/v1/order", status=503, times=3))
        problems = run_schedule(Schedule(BTC_LONG, rules), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I1: ") and ("flipped" in p or "opened" in p) for p in problems), problems
        assert any(p.startswith("I2: ") for p in problems), problems

    def test_i4_catches_a_completed_verdict_with_a_position_left_open(
        self, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from harness.core.outcome import LiquidationState

        monkeypatch.setattr(LiquidationManager, "_state_of", lambda self, run, timed_out: LiquidationState.COMPLETED)
        rules = (FaultRule("lock_symbol", symbol="BTCUSDT"),)
        problems = run_schedule(Schedule(BTC_LONG, rules), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I4: COMPLETED but open") for p in problems), problems

    def test_i4_catches_a_failed_count_that_disagrees_with_the_exchange(
        self, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        original = LiquidationResult.to_dict

        def undercount(self: LiquidationResult) -> dict[str, Any]:
            return {**original(self), "positions_failed": 0}

        monkeypatch.setattr(LiquidationResult, "to_dict", undercount)
        rules = (FaultRule("lock_symbol", symbol="BTCUSDT"),)
        problems = run_schedule(Schedule(BTC_LONG, rules), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I4: positions_failed=0") for p in problems), problems

    def test_i4_catches_a_flat_position_reported_failed_without_saying_it_may_have_closed(
        self, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from harness.core.outcome import PositionOutcome, Status

        original = PositionOutcome.to_dict

        def pessimist(self: PositionOutcome) -> dict[str, Any]:
            return {**original(self), "status": Status.FAILED.value, "unconfirmed": False}

        monkeypatch.setattr(PositionOutcome, "to_dict", pessimist)
        problems = run_schedule(Schedule(BTC_LONG, ()), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I4: reported failed but flat") for p in problems), problems

    def test_i5_catches_an_audit_line_without_its_correlation_id(
        self, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        original = AuditLogger.log

        def forgetful(self: AuditLogger, event_type: Any, correlation_id: str | None, details: Any = None) -> bool:
            return original(self, event_type, None if str(event_type).endswith("ORDER_PLACED") else correlation_id,
                            details)

        monkeypatch.setattr(AuditLogger, "log", forgetful)
        problems = run_schedule(Schedule(BTC_LONG, ()), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I5: ") and "no correlation id" in p for p in problems), problems

    def test_i6_catches_a_secret_in_the_logs(
        self, tmp_path: Path, harness_logs: _Capture, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        original = BinanceFuturesOrderManager.get_all_positions

        async def leaky(self: BinanceFuturesOrderManager, symbols: list[str]) -> list[dict]:
            logging.getLogger("harness.exchanges.binance").debug("secret %s", self._session._secret.reveal())
            return await original(self, symbols)

        monkeypatch.setattr(BinanceFuturesOrderManager, "get_all_positions", leaky)
        problems = run_schedule(Schedule(BTC_LONG, ()), tmp_path, harness_logs).violations(FAST_TIMEOUT_SECONDS)
        assert any(p.startswith("I6: logs") for p in problems), problems


class TestRegressions:
    """The engine bugs this suite found, pinned at the engine level (in-process exchange, milliseconds)."""

    @staticmethod
    async def _run(book: Any, faults: Any, symbols: list[str] | None, **config: Any) -> LiquidationResult:
        from harness.exchanges.sim import InMemoryOrderManager

        manager = LiquidationManager(LiquidationConfig(**config), InMemoryOrderManager(book, faults), None, symbols,
                                     sleep=_no_wait)
        return await manager.execute_emergency_liquidation("regression")

    @pytest.mark.parametrize(("symbols", "unknown"), [(["BTCUSDT", "ETHUSDT"], ["BTCUSDT", "ETHUSDT"]), (None, ["*"])],
                             ids=["named-symbols", "every-symbol"])
    async def test_unreadable_positions_count_as_failed_not_as_zero(self, symbols: list[str] | None,
                                                                    unknown: list[str]) -> None:
        from harness.exchanges.sim import FaultPlan, SimBook

        book, faults = SimBook(), FaultPlan()
        book.set_position("BTCUSDT", "0.010")
        book.set_position("ETHUSDT", "-1.000")
        faults.error(503, endpoint="get_all_positions")
        result = await self._run(book, faults, symbols, max_retries=1)
        assert result.state.value == "FAILED"
        assert (result.positions_failed, result.positions_unknown) == (len(unknown), unknown)
        assert result.to_dict()["positions_unknown"] == unknown

    async def test_a_close_that_executed_unanswered_is_reported_failed_and_unconfirmed(self) -> None:
        from harness.exchanges.sim import FaultPlan, SimBook

        book, faults = SimBook(), FaultPlan()
        book.set_position("BTCUSDT", "0.010")
        faults.unknown_status_executed(endpoint="execute_market_close", times=1)
        result = await self._run(book, faults, ["BTCUSDT"], max_retries=0)
        (position,) = result.symbols["BTCUSDT"].positions
        assert book.positions() == [] and result.positions_failed == 1
        assert position.unconfirmed and position.to_dict()["unconfirmed"] is True
        assert any("may have executed, not confirmed" in e for e in result.errors)

    async def test_a_certain_rejection_is_not_marked_unconfirmed(self) -> None:
        from harness.exchanges.sim import FaultPlan, SimBook

        book, faults = SimBook(), FaultPlan()
        book.set_position("BTCUSDT", "0.010")
        faults.lock_symbol("BTCUSDT")
        result = await self._run(book, faults, ["BTCUSDT"], max_retries=0)
        (position,) = result.symbols["BTCUSDT"].positions
        assert result.positions_failed == 1 and not position.unconfirmed
