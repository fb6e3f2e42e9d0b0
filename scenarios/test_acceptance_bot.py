"""Acceptance scenarios for the bot under test: what the bot itself must get right at shutdown.

Each starts the bot under test (``--bot-cmd``, default harness.bot) through ``exchange.bot()`` /
``exchange.start()`` on the embedded exchange and judges it from the outside, exchange first:
conditional orders, hedge mode, what was actually sent (the request log: the exchange's reduce-only
cap hides oversized or duplicate closes), audit continuity across a restart, the dead-man's switch
after SIGKILL, repeated signals, and memory across on-demand liquidations (SIGUSR1, the
contract's on-demand trigger). Every failure message names the broken behaviour.

They need the embedded exchange (its request log, fault plan and countdown clock) and skip elsewhere.
The engine's own behaviours (retries, ambiguity, deadline, lot-size splits, ...) are in
``test_acceptance_engine.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.core.audit import read_audit
from harness.testkit import BotProcess, BotRun
from harness.testkit.botproc import BotContractError

from scenario_support import attach_run

pytestmark = pytest.mark.places_orders

SYMBOLS = ("BTCUSDT", "ETHUSDT")
STOP_TIMEOUT = 20.0
#: a forced exit (third signal) does not wait for the liquidation: it comes at once
FORCED_EXIT_SECONDS = 5.0
#: how long a bot may take to answer SIGUSR1 with a LIQUIDATION_COMPLETE in its audit trail
ON_DEMAND_TIMEOUT = 10.0
#: the dead-man's switch of the scenario: long enough never to fire while the bot lives, shortened by
#: the exchange's accelerated clock once the bot is killed
DEADMAN_COUNTDOWN_SECONDS = 30
DEADMAN_INTERVAL_SECONDS = 1
#: how long after readiness the bot has to arm countdownCancelAll (one re-arm interval plus slack)
ARM_TIMEOUT = DEADMAN_INTERVAL_SECONDS + 4.0
#: RSS growth allowed over the measured on-demand liquidations (see test_no_memory_growth...)
RSS_WARM_UP_RUNS = 5
RSS_GROWTH_BOUND_KIB = 8 * 1024


def _embedded(exchange: Any) -> None:
    if not exchange.embedded:
        pytest.skip("needs the embedded exchange (request log, fault plan, countdown clock)")


def _tick(exchange: Any, symbol: str, price: Decimal) -> str:
    tick = exchange.account.filters(symbol).tick
    return format((price / tick).to_integral_value(rounding=ROUND_DOWN) * tick, "f")


def _stop(bot: BotProcess, signum: int | None = None) -> BotRun:
    run = bot.stop(signum, timeout=STOP_TIMEOUT)
    attach_run(run)
    return run


def _wait(condition: Callable[[], Any], timeout: float, poll: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy or ``timeout`` passes; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll)


def _completes(log_dir: Path) -> int:
    path = log_dir / "audit.jsonl"
    if not path.exists():
        return 0
    return sum(1 for r in read_audit(path).records if r.event_type == "LIQUIDATION_COMPLETE")


# -- what the bot sent ---------------------------------------------------------------------
def close_orders(sim: Any, marker: int) -> list[dict[str, Any]]:
    """Every order the bot sent after ``marker`` (single and batch), with the exchange's HTTP status."""
    sent = []
    for entry in sim.request_log[marker:]:
        if entry.method != "POST":
            continue
        if entry.path.endswith("/fapi/v1/order"):
            sent.append({**entry.params, "_status": entry.status})
        elif entry.path.endswith("/fapi/v1/batchOrders"):
            try:
                batch = json.loads(entry.params.get("batchOrders", "[]"))
            except ValueError:
                batch = []
            sent.extend({**order, "_status": entry.status} for order in batch if isinstance(order, dict))
    return sent


def _leg(order: dict[str, Any]) -> str:
    side = str(order.get("positionSide") or "BOTH").upper()
    return order.get("symbol", "?") if side == "BOTH" else f"{order.get('symbol', '?')}:{side}"


def check_sent_closes(orders: list[dict[str, Any]], opened: dict[str, Decimal], *, hedge: bool) -> list[str]:
    """What is wrong with the closes sent for ``opened`` ({leg: signed amount}); empty when right."""
    problems = []
    per_leg: dict[str, list[dict[str, Any]]] = {}
    for order in orders:
        leg = _leg(order)
        reduce_only = str(order.get("reduceOnly", "false")).lower() == "true"
        side = str(order.get("side", "")).upper()
        if hedge:
            if str(order.get("positionSide") or "BOTH").upper() not in ("LONG", "SHORT"):
                problems.append(f"{order.get('symbol')}: hedge-mode close without positionSide LONG/SHORT "
                                f"({order.get('side')} {order.get('quantity')}): it would open exposure")
                continue
            expected = "SELL" if leg.endswith(":LONG") else "BUY"
            if side != expected:
                position_side = leg.rpartition(":")[2]
                problems.append(f"{order.get('symbol')}: a {side} close sent with positionSide {position_side} (wrong "
                                f"positionSide: a {side} closes the {'LONG' if side == 'SELL' else 'SHORT'} leg, "
                                f"this one grows the {position_side} leg)")
        elif not reduce_only and str(order.get("closePosition", "false")).lower() != "true":
            problems.append(f"{leg}: one-way close without reduceOnly=true ({side} {order.get('quantity')}): "
                            "a close that can open a reverse position")
        if leg not in opened:
            problems.append(f"{leg}: an order for a leg that had no open position ({side} {order.get('quantity')})")
            continue
        per_leg.setdefault(leg, []).append(order)
    for leg, amount in opened.items():
        sent = per_leg.get(leg, [])
        if not sent:
            problems.append(f"{leg}: no close order was sent for the open position {amount}")
            continue
        accepted = [o for o in sent if o["_status"] == 200]
        for order in sent:
            qty = Decimal(str(order.get("quantity", "0")))
            if qty > abs(amount):
                problems.append(f"{leg}: close quantity {qty} is above the open position {abs(amount)} (oversized close)")
        covered, after = Decimal(0), 0
        for order in sent:  # in the order the exchange saw them
            if covered >= abs(amount):
                after += 1
            elif order["_status"] == 200:
                covered += Decimal(str(order.get("quantity", "0")))
        if after:
            problems.append(f"{leg}: {after} more close order(s) sent after accepted closes already covered the position "
                            f"of {abs(amount)} (duplicate close; sent: {', '.join(str(o.get('quantity')) for o in sent)})")
        elif len(accepted) > 1:  # the scenario's positions are far below MARKET_LOT_SIZE maxQty: no split is due
            problems.append(f"{leg}: {len(accepted)} close orders accepted for one position of {abs(amount)} "
                            f"({', '.join(str(o.get('quantity')) for o in accepted)}): one order per position leg "
                            "unless split above MARKET_LOT_SIZE maxQty or resent after a rejection")
    return problems


# -- one-way mode: conditional orders and what was sent --------------------------------------
def _place_conditional_orders(exchange: Any, qty: Decimal) -> list[str]:
    """STOP_MARKET and TAKE_PROFIT_MARKET on BTCUSDT (a long), TRAILING_STOP_MARKET on ETHUSDT (a short)."""
    sim = exchange.sim
    mark = sim.book.mark_price("BTCUSDT")
    sim.place_algo_order("BTCUSDT", "SELL", "STOP_MARKET", quantity=qty, reduce_only=True,
                         trigger_price=_tick(exchange, "BTCUSDT", mark * Decimal("0.8")))
    sim.place_algo_order("BTCUSDT", "SELL", "TAKE_PROFIT_MARKET", quantity=qty, reduce_only=True,
                         trigger_price=_tick(exchange, "BTCUSDT", mark * Decimal("1.2")))
    sim.place_algo_order("ETHUSDT", "BUY", "TRAILING_STOP_MARKET", quantity=exchange.account.small_quantity("ETHUSDT"),
                         reduce_only=True, callback_rate="1")
    return ["STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"]


@pytest.mark.checklist("scenario.1.normal")
def test_one_way_shutdown_cancels_conditional_orders_and_sends_only_reduce_only_closes(exchange: Any,
                                                                                      log_dir: Path) -> None:
    """One shutdown, two behaviours: the algo book is empty afterwards, and every close the bot SENT
    (request log, not the end state) was reduceOnly, at most the open position, one per position."""
    _embedded(exchange)
    sim, account = exchange.sim, exchange.account
    everything = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
    qty = account.small_quantity("BTCUSDT")
    account.open_position("BTCUSDT", "BUY", qty)
    account.open_position("ETHUSDT", "SELL")
    account.open_position("BNBUSDT", "BUY")
    opened = account.positions(everything)
    placed = _place_conditional_orders(exchange, qty)
    assert len(opened) == 3 and len(account.open_orders(everything)) == 3, (
        f"set-up: three one-way positions and three conditional orders, got {opened}")
    bot = exchange.start(exchange.bot(log_dir, None))
    marker = len(sim.request_log)
    run = _stop(bot)
    left_orders = account.open_orders(everything)
    kinds = sorted({str(o.get("orderType") or o.get("type")) for o in left_orders})
    assert not left_orders, (f"conditional orders left in the algo book after shutdown: {kinds} "
                             f"({len(left_orders)} of {placed}); the bot does not cancel algo orders ({run.exit_description})")
    problems = check_sent_closes(close_orders(sim, marker), opened, hedge=False)
    assert not problems, "one-way closes sent wrong: " + "; ".join(problems)
    left = account.positions(everything)
    assert left == {}, f"positions left open after shutdown: {left} ({run.exit_description})"
    assert run.returncode == 0, f"orders cancelled and positions closed, but the bot ended {run.exit_description}, not exit 0"


# -- hedge mode ------------------------------------------------------------------------------
@pytest.mark.checklist("scenario.1.normal")
def test_hedge_mode_closes_both_legs_with_their_position_side(exchange: Any, log_dir: Path) -> None:
    _embedded(exchange)
    sim, account = exchange.sim, exchange.account
    sim.set_hedge_mode(True)
    qty = account.small_quantity("BTCUSDT")
    sim.set_position("BTCUSDT", qty, "LONG")
    sim.set_position("BTCUSDT", -2 * qty, "SHORT")
    opened = account.positions(["BTCUSDT"])
    assert set(opened) == {"BTCUSDT:LONG", "BTCUSDT:SHORT"}, f"set-up: hedge legs {opened}"
    bot = exchange.start(exchange.bot(log_dir, None))
    marker = len(sim.request_log)
    run = _stop(bot)
    left = account.positions(["BTCUSDT"])
    problems = check_sent_closes(close_orders(sim, marker), opened, hedge=True)
    assert not problems, "hedge-mode closes sent wrong: " + "; ".join(problems)
    assert left == {}, (f"hedge mode: legs left open or flipped after shutdown: {left} (opened {opened}); "
                        f"LONG and SHORT must each be closed with their own positionSide ({run.exit_description})")
    assert run.returncode == 0, f"hedge legs closed, but the bot ended {run.exit_description}, not exit 0"


# -- restart continuity ----------------------------------------------------------------------
@pytest.mark.checklist("criteria.audit_complete")
@pytest.mark.checklist("criteria.correlation")
def test_restart_keeps_both_runs_whole_in_the_audit_trail(exchange: Any, log_dir: Path) -> None:
    _embedded(exchange)
    account = exchange.account
    runs = []
    for _ in range(2):
        account.open_position("BTCUSDT", "BUY")
        runs.append(_stop(exchange.start(exchange.bot(log_dir, None))))
        assert account.positions(["BTCUSDT"]) == {}, f"run {len(runs)} left BTCUSDT open ({runs[-1].exit_description})"
    first, second = runs
    assert not second.audit_problem, f"audit trail damaged across a restart: {second.audit_problem}"
    assert first.audit, f"the first run left no audit trail: {first.why_no_verdict()}"
    kept = second.audit[:len(first.audit)]
    assert kept == first.audit, (f"audit trail truncated or rewritten by the restart: the first run's "
                                 f"{len(first.audit)} records are not kept as they were ({len(second.audit)} now)")
    starts = [r.correlation_id for r in second.audit if r.event_type == "LIQUIDATION_START"]
    assert len(starts) == 2, f"two runs need two LIQUIDATION_START in the audit trail; found {len(starts)}: {starts}"
    assert len(set(starts)) == 2, f"correlation id reused across the restart: both runs logged as {starts[0]}"
    for cid in starts:
        types = second.event_types(cid)
        assert types[-1:] == ["LIQUIDATION_COMPLETE"], (
            f"run {cid} is not whole in the audit trail (START..COMPLETE): {types}")
    for run in runs:
        assert run.returncode == 0, f"a run of the restart ended {run.exit_description}, not exit 0"


# -- dead-man's switch -----------------------------------------------------------------------
def _armed(sim: Any, marker: int, symbol: str) -> bool:
    return any(r.path.endswith("/fapi/v1/countdownCancelAll") and r.status == 200 and r.params.get("symbol") == symbol
               and r.params.get("countdownTime", "0") not in ("0", "") for r in sim.request_log[marker:])


@pytest.mark.checklist("scenario.1.normal")
def test_deadmans_switch_cancels_orders_after_sigkill(exchange: Any, log_dir: Path) -> None:
    _embedded(exchange)
    sim, account = exchange.sim, exchange.account
    for symbol in SYMBOLS:
        account.place_resting_limit(symbol, "BUY")
    marker = len(sim.request_log)
    bot = exchange.start(exchange.bot(log_dir, None, config={"deadman_countdown_seconds": DEADMAN_COUNTDOWN_SECONDS,
                                                             "deadman_interval_seconds": DEADMAN_INTERVAL_SECONDS}))
    armed = _wait(lambda: all(_armed(sim, marker, s) for s in SYMBOLS), ARM_TIMEOUT)
    os.kill(bot.proc.pid, signal.SIGKILL)  # no chance to liquidate or disarm
    bot.kill()
    # the accelerated clock: the exchange runs its countdowns as if DEADMAN_COUNTDOWN_SECONDS had passed
    sim.book.run_due_countdowns(now_ms=sim.book.now_ms() + DEADMAN_COUNTDOWN_SECONDS * 1000 + 1000)
    left = account.open_orders(list(SYMBOLS))
    never = [s for s in SYMBOLS if not _armed(sim, marker, s)]
    assert not left, (f"dead-man's switch: {len(left)} order(s) still working on "
                      f"{sorted({o['symbol'] for o in left})} after SIGKILL and the countdown; "
                      + (f"the bot never armed countdownCancelAll for {never} within {ARM_TIMEOUT:g}s of READY"
                         if never else "the countdown was armed but did not cancel them"))
    assert armed, f"dead-man's switch: countdownCancelAll not armed for every symbol with orders ({never})"


# -- signals ---------------------------------------------------------------------------------
@pytest.mark.checklist("scenario.1.normal")
def test_second_sigterm_does_not_abort_the_liquidation(exchange: Any, log_dir: Path) -> None:
    _embedded(exchange)
    sim, account = exchange.sim, exchange.account
    account.open_position("BTCUSDT", "BUY")
    account.open_position("ETHUSDT", "SELL")
    bot = exchange.start(exchange.bot(log_dir, None))
    sim.faults.latency(1.0, endpoint="new_order", times=1)  # the liquidation is in flight when the second signal lands
    bot.send_signal(signal.SIGTERM)
    _wait(lambda: sim.faults.fired("latency") >= 1 or bot.proc.poll() is not None, 10.0)
    in_flight = sim.faults.fired("latency") >= 1
    bot.send_signal(signal.SIGTERM)
    try:  # wait without a third signal (bot.stop() would send one)
        bot.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        bot.kill()
        pytest.fail(f"Shutdown hangs: the bot did not exit within {STOP_TIMEOUT:g}s of its second SIGTERM")
    run = bot.collect()
    attach_run(run)
    left = account.positions(list(SYMBOLS))
    assert in_flight, f"the first SIGTERM started no close within 10s ({run.exit_description})"
    assert left == {}, (f"a second SIGTERM during the liquidation aborted it: {left} left open "
                        f"({run.exit_description})")
    assert run.returncode == 0, f"a second SIGTERM during the liquidation: the bot ended {run.exit_description}, not exit 0"


@pytest.mark.reference_bot
@pytest.mark.checklist("scenario.1.normal")
def test_third_signal_forces_exit_3(exchange: Any, log_dir: Path) -> None:
    """harness.bot's documented behaviour (not part of the bot-under-test contract): a third signal
    forces exit 3 while the liquidation still hangs."""
    _embedded(exchange)
    sim, account = exchange.sim, exchange.account
    account.open_position("BTCUSDT", "BUY")
    bot = exchange.start(exchange.bot(log_dir, None, config={"timeout_seconds": 30}))
    rule = sim.faults.hang(endpoint="new_order", max_seconds=20.0)
    bot.send_signal(signal.SIGTERM)
    assert sim.faults.wait_until_hung(1, timeout=10.0), "the first SIGTERM started no close within 10s"
    bot.send_signal(signal.SIGTERM)
    assert bot.wait_for_output("SIGNAL SIGTERM count=2", timeout=5.0), "the bot did not acknowledge the second SIGTERM"
    try:
        run = bot.stop(timeout=FORCED_EXIT_SECONDS)  # the third
    except BotContractError as exc:
        pytest.fail(f"a third SIGTERM did not force exit 3 within {FORCED_EXIT_SECONDS:g}s while the liquidation "
                    f"hung: {str(exc).splitlines()[0]}")
    finally:
        sim.faults.remove(rule)
    attach_run(run)
    assert run.returncode == 3, f"a third SIGTERM must force exit 3; the bot ended {run.exit_description}"


# -- memory across on-demand liquidations ----------------------------------------------------
def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def _seed(exchange: Any, sizes: dict[str, Decimal]) -> None:
    """Re-seed through the exchange's control API: no HTTP, so the scenario's own set-up never spends
    the request weight the bot's liquidations need (a soak of hundreds of rounds would hit the limit)."""
    sim = exchange.sim
    sim.set_position("BTCUSDT", sizes["BTCUSDT"])
    sim.set_position("ETHUSDT", -sizes["ETHUSDT"])
    price = _tick(exchange, "BTCUSDT", sim.book.mark_price("BTCUSDT") * Decimal("0.8"))
    sim.place_order("BTCUSDT", "BUY", "LIMIT", sizes["BTCUSDT"] * 2, price, time_in_force="GTC")


def _on_demand_liquidations(exchange: Any, log_dir: Path, count: int) -> list[int]:
    """RSS (KiB) of the bot after each of ``count`` SIGUSR1 liquidations, the account re-seeded before each."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/<pid>/status to sample the bot's RSS")
    sizes = {symbol: exchange.account.small_quantity(symbol) for symbol in SYMBOLS}
    bot = exchange.start(exchange.bot(log_dir, None))
    samples = []
    for n in range(1, count + 1):
        _seed(exchange, sizes)
        bot.send_signal(signal.SIGUSR1)
        done = _wait(lambda: _completes(log_dir) >= n or bot.proc.poll() is not None, ON_DEMAND_TIMEOUT)
        if bot.proc.poll() is not None:
            run = bot.collect()
            attach_run(run)
            pytest.fail(f"the bot does not support SIGUSR1 (the contract's on-demand liquidation): it exited on "
                        f"SIGUSR1 #{n} ({run.exit})")
        if not done or _completes(log_dir) < n:
            bot.kill()
            pytest.fail(f"the bot does not support SIGUSR1 (the contract's on-demand liquidation): no "
                        f"LIQUIDATION_COMPLETE #{n} in its audit trail within {ON_DEMAND_TIMEOUT:g}s of SIGUSR1")
        left = exchange.sim.book.positions(SYMBOLS)
        if left:
            run = bot.collect()
            pytest.fail(f"on-demand liquidation #{n} left positions open: "
                        f"{[(p['symbol'], str(p['position_amt'])) for p in left]} (verdict {run.verdict().get('state')})")
        samples.append(_rss_kib(bot.proc.pid))
    run = _stop(bot)
    assert run.returncode == 0, f"after {count} on-demand liquidations the bot ended {run.exit_description}"
    return samples


def _assert_no_growth(samples: list[int], bound_kib: int) -> None:
    baseline, last = samples[RSS_WARM_UP_RUNS - 1], samples[-1]
    growth = last - baseline
    measured = len(samples) - RSS_WARM_UP_RUNS
    assert growth < bound_kib, (
        f"memory growth across repeated liquidations: RSS grew {growth} KiB over {measured} on-demand liquidations "
        f"after {RSS_WARM_UP_RUNS} warm-up runs ({baseline} -> {last} KiB; bound {bound_kib} KiB); samples {samples}")


@pytest.mark.checklist("criteria.memory")
def test_no_memory_growth_across_on_demand_liquidations(unlimited_exchange: Any, log_dir: Path) -> None:
    """20 SIGUSR1 liquidations; after 5 warm-up runs (imports, connection pools, allocator arenas) the
    RSS may not grow by 8 MiB over the next 15: allocator noise stays within 1-2 MiB, while a leak of
    half a MiB per liquidation (e.g. each run's orders, responses or audit records kept) exceeds it."""
    _assert_no_growth(_on_demand_liquidations(unlimited_exchange, log_dir, 20), RSS_GROWTH_BOUND_KIB)


@pytest.mark.slow
@pytest.mark.checklist("criteria.memory")
def test_no_memory_growth_across_many_on_demand_liquidations(unlimited_exchange: Any, log_dir: Path) -> None:
    """The soak variant: 200 liquidations, the same 8 MiB bound (a leak of 40 KiB per run fails)."""
    _assert_no_growth(_on_demand_liquidations(unlimited_exchange, log_dir, 200), RSS_GROWTH_BOUND_KIB)
