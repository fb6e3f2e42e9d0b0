"""Acceptance scenarios for the liquidation engine inside the bot under test (issue 14, item 3).

Each scenario sets up the embedded exchange (positions, orders, its ``FaultPlan``), starts the bot
under test through ``exchange.bot(...)`` / ``exchange.start(...)`` (any bot: ``--bot-cmd``), sends
the stop signal and judges in the contract's order of trust: what the exchange saw (its request and
fill logs, positions, orders), the exit code, then the audit trail (``BotRun.verdict()`` /
``events()``). Every failure message starts with the behaviour that broke, e.g. ``RETRY COUNT:``,
so a red result says what to fix without reading the code.

What they guard, beyond the checklist's four scenarios:

- retries as the exchange sees them: attempts, exponential gaps, Retry-After, terminal codes;
- ambiguous outcomes (the order executed, the reply was lost): one fill, re-read before a resend;
- the engine's own deadline (not only the adapter's per-request bound);
- a positions read that fails or is malformed: never COMPLETED, never exit 0;
- a position above MARKET_LOT_SIZE maxQty: closed in several orders;
- the whole account by default, and a scope that names what it leaves open;
- total failure: FAILED, non-zero exit, the FAILED alert's condition in the metrics.

They need the embedded exchange's fault plan and control API; on testnet they are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.testkit import BotRun

from scenario_support import attach_run

pytestmark = [pytest.mark.places_orders]

#: quick engine settings so the whole file stays a few seconds per scenario
FAST = {"timeout_seconds": 3.0, "max_retries": 3, "retry_delay_seconds": 0.1}
#: backoff tolerance, exchange-side: a retry may never come EARLIER than its delay (less the
#: simulator's clock granularity) and at most this much LATER (the position re-read before a resend,
#: the request itself and scheduling on a loaded 2-core machine)
GAP_EARLY_SECONDS = 0.03
GAP_LATE_SECONDS = 0.45
ORDER_PATH = "/fapi/v1/order"


# ---------------------------------------------------------------------------------- helpers
@pytest.fixture
def embedded(exchange: Any) -> Any:
    """The exchange, when it is the embedded one (its fault plan and logs are what these judge)."""
    if not exchange.embedded:
        pytest.skip("needs the embedded exchange's fault plan, request log and fill log")
    return exchange


@pytest.fixture
def cleanup(embedded: Any) -> Iterator[list[str]]:
    """Symbols to set flat through the control API afterwards (outside the default scenario symbols,
    or too large for the account's own flatten)."""
    extra: list[str] = []
    yield extra
    embedded.sim.faults.clear()
    for symbol in extra:
        for side in ("BOTH", "LONG", "SHORT"):
            try:
                embedded.sim.set_position(symbol, 0, side)
            except Exception:  # a side that does not exist in this mode is fine
                pass
    embedded.account.flatten(extra)


def open_positions(exchange: Any, positions: list[tuple[str, str]]) -> None:
    with allure.step(f"Set up the account: positions {positions}"):
        for symbol, side in positions:
            exchange.account.open_position(symbol, side)
        opened = exchange.account.positions([s for s, _ in positions])
        assert len(opened) == len(positions), f"setup failed: positions on the exchange are {opened}"


def liquidate(exchange: Any, log_dir: Path, *, symbols: list[str] | None = None, config: dict[str, Any] | None = None,
              after_ready: Callable[[], None] | None = None, exit_within: float = 20.0) -> tuple[BotRun, int]:
    """Start the bot under test, (optionally) change the exchange once it is ready, stop it; the run
    and the request-log index where the liquidation's requests begin."""
    with allure.step(f"Start the bot under test: {exchange.spec.describe()}"):
        bot = exchange.start(exchange.bot(log_dir, symbols, config={**FAST, **(config or {})}))
    if after_ready is not None:
        after_ready()
    marker = len(exchange.sim.request_log)
    with allure.step(f"Send {exchange.spec.stop_signal.name} and wait for the exit"):
        run = bot.stop(timeout=exit_within)
    attach_run(run)
    return run, marker


def close_requests(exchange: Any, marker: int, symbol: str) -> list[Any]:
    """Order placements for ``symbol`` the exchange received since ``marker`` (the bot's closes)."""
    return [r for r in exchange.sim.request_log[marker:]
            if r.method == "POST" and r.path.endswith(ORDER_PATH) and r.params.get("symbol") == symbol]


def verdict_or_fail(run: BotRun, behaviour: str) -> dict[str, Any]:
    verdict = run.verdict()
    if not verdict:
        pytest.fail(f"{behaviour}: no verdict from the bot ({run.exit_description})")
    return verdict


def describe_requests(records: list[Any]) -> str:
    return "; ".join(f"{r.method} {r.path} -> {r.status}{' ' + str(r.code) if r.code else ''}" for r in records) or "none"


# ---------------------------------------------------------------------------------- retries
RETRIED, RETRIES, DELAY = "BTCUSDT", 3, 0.1  # a certain, retryable failure on every close attempt
THROTTLED, RETRY_AFTER = "ETHUSDT", 1  # one 429 with Retry-After: 1, then the close goes through
TERMINAL = {"BNBUSDT": -2019, "SOLUSDT": -1121, "XRPUSDT": -4061}  # persisting terminal rejections


def retry_problems(exchange: Any, marker: int) -> list[str]:
    """What the exchange's request log says about the bot's retries (empty when right)."""
    problems = []
    sent = close_requests(exchange, marker, RETRIED)
    if len(sent) != RETRIES + 1:
        problems.append(f"RETRY COUNT: the exchange saw {len(sent)} close attempts for {RETRIED} with "
                        f"max_retries={RETRIES} (expected exactly {RETRIES + 1}): {describe_requests(sent)}")
    gaps = [later.time - earlier.time for earlier, later in zip(sent, sent[1:])]
    wanted = [DELAY * 2 ** n for n in range(len(gaps))]
    if any(not want - GAP_EARLY_SECONDS <= gap <= want + GAP_LATE_SECONDS for gap, want in zip(gaps, wanted)):
        shown = ", ".join(f"{g:.3f}s (want {w:.1f}s)" for g, w in zip(gaps, wanted))
        problems.append(f"RETRY BACKOFF: gaps between {RETRIED}'s close attempts are {shown}; each must be "
                        f"retry_delay_seconds * 2^(n-1) (tolerance -{GAP_EARLY_SECONDS}s / +{GAP_LATE_SECONDS}s)")
    throttled = close_requests(exchange, marker, THROTTLED)
    if len(throttled) < 2 or throttled[0].status != 429:
        problems.append(f"RETRY-AFTER: {THROTTLED} was not resent after its 429: {describe_requests(throttled)}")
    elif (gap := throttled[1].time - throttled[0].time) < RETRY_AFTER - GAP_EARLY_SECONDS:
        problems.append(f"RETRY-AFTER: {THROTTLED} resent {gap:.3f}s after a 429 with Retry-After: {RETRY_AFTER} "
                        f"(must wait at least {RETRY_AFTER}s, not retry_delay_seconds={DELAY})")
    if exchange.account.positions([THROTTLED]):
        problems.append(f"RETRY-AFTER: {THROTTLED} still open although only one 429 was injected")
    retried = {f"{s} (code {c})": n for s, c in TERMINAL.items() if (n := len(close_requests(exchange, marker, s))) != 1}
    if retried:
        problems.append(f"TERMINAL RETRIED: close attempts after a terminal rejection {retried} (expected exactly 1 each)")
    return problems


@pytest.mark.checklist("pre.tests.retry")
def test_retries_seen_at_the_exchange(embedded: Any, log_dir: Path) -> None:
    """One run, three symbols' worth of retry rules, judged from the exchange's request log."""
    open_positions(embedded, [(RETRIED, "BUY"), (THROTTLED, "SELL")] + [(s, "BUY") for s in TERMINAL])
    faults = embedded.sim.faults
    faults.error(503, -1001, endpoint="new_order", symbol=RETRIED)
    faults.error(429, -1003, retry_after=RETRY_AFTER, endpoint="new_order", symbol=THROTTLED, times=1)
    for symbol, code in TERMINAL.items():
        faults.error(400, code, endpoint="new_order", symbol=symbol)
    run, marker = liquidate(embedded, log_dir, config={"max_retries": RETRIES, "retry_delay_seconds": DELAY,
                                                        "timeout_seconds": 3.0})
    with allure.step("Exchange: attempts, backoff gaps, Retry-After, no retry of terminal codes"):
        problems = retry_problems(embedded, marker)
        assert not problems, "\n".join(problems)
    with allure.step("Non-zero exit, not COMPLETED"):
        assert run.returncode != 0, f"RETRY EXHAUSTION: bot {run.exit} although {RETRIED} could not be closed"
        verdict = verdict_or_fail(run, "RETRY EXHAUSTION")
        assert verdict.get("state") != "COMPLETED", f"RETRY EXHAUSTION: state COMPLETED with {RETRIED} still open"


# ---------------------------------------------------------------------------------- ambiguity
AMBIGUOUS = {
    "BTCUSDT": ("503 unknown status (-1006), executed", lambda plan, s: plan.unknown_status_executed(symbol=s, times=1)),
    "ETHUSDT": ("backend timeout (-1007), executed", lambda plan, s: plan.unknown_status_executed(code=-1007, symbol=s, times=1)),
    "BNBUSDT": ("reply lost: connection dropped after execution",
                lambda plan, s: plan.connection_reset(endpoint="new_order", symbol=s, executed=True, times=1)),
}


def test_a_close_whose_reply_is_lost_fills_once_and_the_position_is_re_read_before_any_resend(
        embedded: Any, log_dir: Path) -> None:
    open_positions(embedded, [("BTCUSDT", "BUY"), ("ETHUSDT", "SELL"), ("BNBUSDT", "BUY")])
    fills_before = len(embedded.sim.fill_log)
    for symbol, (_, inject) in AMBIGUOUS.items():
        inject(embedded.sim.faults, symbol)
    run, marker = liquidate(embedded, log_dir)
    fills = embedded.sim.fill_log[fills_before:]
    with allure.step("Exchange: exactly one fill per position"):
        counts = {s: sum(1 for f in fills if f.symbol == s) for s in AMBIGUOUS}
        wrong = {f"{s} ({AMBIGUOUS[s][0]})": n for s, n in counts.items() if n != 1}
        assert not wrong, f"AMBIGUOUS OUTCOME: fills per position after a lost reply {wrong} (expected exactly 1 each)"
    with allure.step("Exchange: every resend of a close is preceded by a positions read"):
        log = embedded.sim.request_log[marker:]
        for symbol, (what, _) in AMBIGUOUS.items():
            placed = [i for i, r in enumerate(log)
                      if r.method == "POST" and r.path.endswith(ORDER_PATH) and r.params.get("symbol") == symbol]
            for earlier, later in zip(placed, placed[1:]):
                reread = [r for r in log[earlier + 1:later] if "positionRisk" in r.path and r.status == 200
                          and r.params.get("symbol") in (None, symbol)]
                assert reread, (f"NO RE-READ BEFORE RESEND: {symbol} ({what}): the close was sent again without "
                                f"reading the position first: {describe_requests(log[earlier:later + 1])}")
    with allure.step("Exchange: flat"):
        assert embedded.account.positions(list(AMBIGUOUS)) == {}, (
            f"AMBIGUOUS OUTCOME: positions left open ({run.exit}): {embedded.account.positions(list(AMBIGUOUS))}")


# ---------------------------------------------------------------------------------- deadline
@pytest.mark.checklist("pre.tests.timeout")
def test_the_engine_enforces_its_own_deadline(embedded: Any, log_dir: Path) -> None:
    """Scenario 3's set-up: closes that cannot finish in timeout_seconds=1. The adapter's per-request
    bound would also end the run near 1 s; only the engine's deadline writes LIQUIDATION_DEADLINE_EXCEEDED."""
    fast, slow = ["BTCUSDT", "ETHUSDT"], ["BNBUSDT", "SOLUSDT"]
    open_positions(embedded, [(s, "BUY") for s in fast + slow])
    for symbol in slow:
        embedded.sim.faults.latency(4.0, endpoint="new_order", symbol=symbol)
    run, _ = liquidate(embedded, log_dir, config={"timeout_seconds": 1.0}, exit_within=10.0)
    with allure.step("Bot done within 3 s"):
        assert run.stop_seconds < 3.0, f"DEADLINE: the bot took {run.stop_seconds:.2f}s to exit with timeout_seconds=1.0"
    verdict = verdict_or_fail(run, "DEADLINE")
    with allure.step("Audit: LIQUIDATION_DEADLINE_EXCEEDED, verdict timed_out, not COMPLETED"):
        types = run.event_types()
        assert "LIQUIDATION_DEADLINE_EXCEEDED" in types, (
            f"DEADLINE NOT ENFORCED BY THE ENGINE: no LIQUIDATION_DEADLINE_EXCEEDED in the audit trail {types} "
            "(closes were held 4 s with timeout_seconds=1.0)")
        assert verdict.get("timed_out") is True, f"DEADLINE: the verdict does not say timed out: timed_out={verdict.get('timed_out')!r}"
        assert verdict.get("state") != "COMPLETED", f"DEADLINE: state COMPLETED with {slow} held past the deadline"
        assert run.returncode != 0, f"DEADLINE: bot {run.exit} after a run cut short by its deadline"


# ---------------------------------------------------------------------------------- positions read
POSITION_READ_FAULTS = {
    "fails": lambda plan: plan.error(503, -1001, endpoint="positions"),
    "malformed": lambda plan: plan.malformed_body(endpoint="positions"),
}


@pytest.mark.parametrize("fault", list(POSITION_READ_FAULTS))
def test_a_positions_read_that_fails_is_never_completed(fault: str, embedded: Any, log_dir: Path) -> None:
    open_positions(embedded, [("BTCUSDT", "BUY")])
    run, _ = liquidate(embedded, log_dir, config={"max_retries": 1, "timeout_seconds": 2.0},
                       after_ready=lambda: POSITION_READ_FAULTS[fault](embedded.sim.faults))
    embedded.sim.faults.clear()
    with allure.step("Exit code not 0, verdict not COMPLETED"):
        assert run.returncode != 0, f"UNKNOWN READ AS FLAT: bot {run.exit} although every positions read {fault}"
        verdict = verdict_or_fail(run, "UNKNOWN READ AS FLAT")
        assert verdict.get("state") != "COMPLETED", (
            f"UNKNOWN READ AS FLAT: state COMPLETED although every positions read {fault} (positions unknown)")
        assert (verdict.get("positions_failed") or 0) >= 1, (
            f"UNKNOWN READ AS FLAT: positions_failed={verdict.get('positions_failed')} although the positions are unknown")


# ---------------------------------------------------------------------------------- size
def test_a_position_above_market_max_qty_is_closed_in_several_orders(embedded: Any, log_dir: Path,
                                                                      cleanup: list[str]) -> None:
    symbol, amount = "BNBUSDT", Decimal("4500")  # MARKET_LOT_SIZE maxQty 2000: three orders at least
    cleanup.append(symbol)
    max_qty = Decimal(next(f["maxQty"] for s in embedded.account.client.futures_exchange_info()["symbols"]
                           if s["symbol"] == symbol for f in s["filters"] if f["filterType"] == "MARKET_LOT_SIZE"))
    embedded.sim.set_position(symbol, amount)
    run, marker = liquidate(embedded, log_dir)
    sent = close_requests(embedded, marker, symbol)
    with allure.step("Exchange: flat, in several orders, none above maxQty"):
        left = embedded.account.positions([symbol])
        assert left == {}, f"ABOVE MAX QTY: {symbol} {amount} (MARKET_LOT_SIZE maxQty {max_qty}) left open {left} ({run.exit}): {describe_requests(sent)}"
        too_big = [r.params.get("quantity") for r in sent if Decimal(r.params.get("quantity", "0")) > max_qty]
        assert not too_big, f"ABOVE MAX QTY: close orders above maxQty {max_qty}: {too_big}"
        assert len([r for r in sent if r.status == 200]) >= 3, f"ABOVE MAX QTY: expected >= 3 accepted orders: {describe_requests(sent)}"
    assert run.returncode == 0, f"ABOVE MAX QTY: bot {run.exit} after closing {symbol} flat"


# ---------------------------------------------------------------------------------- scope
def test_without_a_scope_the_whole_account_is_flat(embedded: Any, log_dir: Path, cleanup: list[str]) -> None:
    """LIQUIDATION_SYMBOLS unset: a position and an order on symbols nobody configured still go."""
    cleanup.extend(["LINKUSDT", "ADAUSDT"])
    embedded.account.open_position("LINKUSDT", "BUY")
    embedded.account.place_resting_limit("LINKUSDT", "SELL")
    embedded.account.place_resting_limit("ADAUSDT", "BUY")  # an order on a symbol without a position
    run, _ = liquidate(embedded, log_dir, symbols=None)
    with allure.step("Exchange: no position, no order anywhere on the account"):
        left = embedded.account.positions(["LINKUSDT"])
        orders = [(o.get("symbol"), o.get("type")) for o in embedded.account.open_orders(["LINKUSDT", "ADAUSDT"])]
        assert left == {} and orders == [], (
            f"WHOLE ACCOUNT: started without LIQUIDATION_SYMBOLS, the bot left positions {left} and orders {orders} ({run.exit})")
    assert run.returncode == 0, f"WHOLE ACCOUNT: bot {run.exit} with the account flat"


def test_with_a_scope_the_out_of_scope_position_is_left_and_named(embedded: Any, log_dir: Path,
                                                                 cleanup: list[str]) -> None:
    inside, outside = "BTCUSDT", "LINKUSDT"
    cleanup.append(outside)
    open_positions(embedded, [(inside, "BUY"), (outside, "SELL")])
    run, _ = liquidate(embedded, log_dir, symbols=[inside])
    with allure.step(f"Exchange: {inside} flat, {outside} untouched"):
        left = embedded.account.positions([inside, outside])
        assert inside not in left, f"SCOPE: the in-scope {inside} was left open ({run.exit}): {left}"
        assert outside in left, f"SCOPE: the out-of-scope {outside} was closed although LIQUIDATION_SYMBOLS={inside}"
    with allure.step("Audit: OUT_OF_SCOPE_LEFT_OPEN names it"):
        named = [r.details for r in run.events() if r.event_type == "OUT_OF_SCOPE_LEFT_OPEN"]
        assert named and outside in repr(named), (
            f"OUT_OF_SCOPE NOT NAMED: the audit trail has no OUT_OF_SCOPE_LEFT_OPEN naming {outside}: {named or run.event_types()}")


# ---------------------------------------------------------------------------------- total failure
@pytest.mark.checklist("criteria.metrics")
def test_total_failure_is_failed_with_a_non_zero_exit_and_the_alert_condition_in_the_metrics(
        embedded: Any, log_dir: Path) -> None:
    held = ["BTCUSDT", "ETHUSDT"]
    open_positions(embedded, [(held[0], "BUY"), (held[1], "SELL")])
    for symbol in held:
        embedded.sim.faults.lock_symbol(symbol)
    run, _ = liquidate(embedded, log_dir, config={"max_retries": 1})
    with allure.step("Exchange: both still open (the fault held them)"):
        assert len(embedded.account.positions(held)) == 2, f"setup: a locked position was closed: {embedded.account.positions(held)}"
    with allure.step("Exit code non-zero, verdict FAILED"):
        assert run.returncode > 0, f"TOTAL FAILURE: bot {run.exit} although every close was rejected"
        verdict = verdict_or_fail(run, "TOTAL FAILURE")
        assert verdict.get("state") == "FAILED", (
            f"TOTAL FAILURE: state {verdict.get('state')} although every close was rejected (expected FAILED)")
    with allure.step("Metrics: the FAILED alert's condition (liquidation_executions_total{state=FAILED} > 0)"):
        if not run.metrics:
            pytest.skip("exchange, exit code and FAILED verdict checked and passed; the metrics sub-check is skipped: "
                        f"the bot under test ({embedded.spec.describe()}) wrote no metrics to liquidation-result.json "
                        "and a --bot-metrics-url endpoint is gone once the bot has exited")
        failed = (run.metrics.get("executions_by_state") or {}).get("FAILED", 0)
        assert failed >= 1, (
            f"FAILED ALERT BLIND: executions_by_state.FAILED={failed} in the metrics after a FAILED run "
            f"(the alert increase(liquidation_executions_total{{state=\"FAILED\"}}[15m]) > 0 cannot fire): {run.metrics}")
