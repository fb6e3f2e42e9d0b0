"""The conformance checks: what an ``OrderExecutionManager`` must do, judged on the embedded exchange.

Each ``Check`` gets a fresh ``BinanceSimulator`` (``hedge`` checks: in hedge mode) and the order
manager under test, built by the team's factory against it. Verdicts come from the simulator's own
state (positions, open regular and algo orders, the fill log) and its request log (what was sent),
never from the order manager's return values alone. Every call runs under a run deadline
(``harness.core.context.current_deadline``) as the engine sets it, and must come back within it
(plus ``SLACK_SECONDS``). A failed check raises ``ConformanceFailure`` naming the behaviour.

``CHECKS`` is the kit; ``run_check(check, factory)`` runs one (the pytest module
``scenarios/test_order_manager_conformance.py`` does it per check, labelled for the report).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from harness.core.context import current_deadline
from harness.core.errors import AmbiguousExchangeError, is_terminal
from harness.core.ports import OrderExecutionManager, describe_order_manager
from harness.exchanges.sim import BinanceSimulator

from .factory import open_order_manager

CALL_BUDGET_SECONDS = 5.0
DEADLINE_SECONDS = 1.0
SLACK_SECONDS = 1.5
ORDER_PATHS = ("/fapi/v1/order", "/fapi/v1/batchOrders")
ZERO = Decimal("0")


class ConformanceFailure(AssertionError):
    """The order manager does not do what the contract (harness.core.ports) says."""


def _fail(message: str) -> None:
    raise ConformanceFailure(message)


@dataclass
class Outcome:
    """What one call did: its result, or the exception it raised, and how long it took."""

    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def raised(self) -> bool:
        return self.error is not None


class Kit:
    """The order manager under test and its exchange, with deadline-bounded calls."""

    def __init__(self, sim: BinanceSimulator, order_manager: Any) -> None:
        self.sim = sim
        self.om = order_manager

    # ------------------------------------------------------------------ calls
    async def call(self, method: str, *args: Any, budget: float = CALL_BUDGET_SECONDS) -> Outcome:
        """``om.<method>(*args)`` under a run deadline ``budget`` s away; fails if it overruns."""
        if not callable(getattr(self.om, method, None)):
            _fail(f"{type(self.om).__name__} has no {method} method (harness.core.ports.OrderExecutionManager)")
        token = current_deadline.set(time.monotonic() + budget)
        started = time.monotonic()
        try:
            if method == "cancel_all_orders":
                context = contextvars.copy_context()  # the engine copies the run's context into its threads
                future: asyncio.Future[Any] = asyncio.get_running_loop().run_in_executor(
                    None, context.run, self.om.cancel_all_orders, *args)
            else:
                made = getattr(self.om, method)(*args)
                if not inspect.isawaitable(made):
                    _fail(f"{method} returned {type(made).__name__}, not an awaitable: it must be async")
                future = asyncio.ensure_future(made)
            done, _ = await asyncio.wait({future}, timeout=budget + SLACK_SECONDS)
            if not done:
                future.cancel()
                _fail(f"{method}{args!r} not bounded by the run deadline: still running "
                      f"{budget + SLACK_SECONDS:.1f} s after a deadline of {budget:.1f} s")
            try:
                return Outcome(future.result(), None, time.monotonic() - started)
            except ConformanceFailure:
                raise
            except Exception as exc:
                return Outcome(None, exc, time.monotonic() - started)
        finally:
            current_deadline.reset(token)

    async def ok(self, method: str, *args: Any, budget: float = CALL_BUDGET_SECONDS) -> Any:
        outcome = await self.call(method, *args, budget=budget)
        if outcome.raised:
            _fail(f"{method}{args!r} raised {type(outcome.error).__name__}: {outcome.error} (no fault was injected)")
        return outcome.result

    # ------------------------------------------------------------------ what the exchange saw
    def orders_sent(self, symbol: str) -> list[dict[str, str]]:
        """Every order the order manager sent for ``symbol`` (single and batch), accepted or not."""
        sent: list[dict[str, str]] = []
        for record in self.sim.request_log:
            if record.method != "POST" or record.path not in ORDER_PATHS:
                continue
            if record.path.endswith("batchOrders"):
                try:
                    batch = json.loads(record.params.get("batchOrders", "[]"))
                except ValueError:
                    batch = []
                sent += [{k: str(v) for k, v in o.items()} for o in batch if isinstance(o, dict) and o.get("symbol") == symbol]
            elif record.params.get("symbol") == symbol:
                sent.append(dict(record.params))
        return sent

    def filled(self, symbol: str) -> Decimal:
        return sum((f.qty for f in self.sim.fill_log if f.symbol == symbol), ZERO)

    def position(self, symbol: str, side: str = "BOTH") -> Decimal:
        return self.sim.book.position_amount(symbol, side)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    checklist_item: str
    run: Callable[[Kit], Awaitable[None]]
    hedge: bool = False


# ---------------------------------------------------------------------- the checks
async def check_signatures(kit: Kit) -> None:
    problems = describe_order_manager(kit.om)
    if problems:
        _fail("the three seed methods do not match harness.core.ports.OrderExecutionManager: " + "; ".join(problems))
    if not isinstance(kit.om, OrderExecutionManager):
        _fail(f"{type(kit.om).__name__} is not an OrderExecutionManager")


def _check_entry(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        _fail(f"{where}: a position must be a dict, got {type(entry).__name__}")
    for key in ("symbol", "position_amt", "position_side"):
        if key not in entry:
            _fail(f"{where}: position entry {entry!r} lacks {key!r}")
    if not isinstance(entry["position_amt"], Decimal):
        _fail(f"{where}: position_amt must be a Decimal (signed), got {type(entry['position_amt']).__name__}")
    if "mark_price" in entry and entry["mark_price"] is not None and not isinstance(entry["mark_price"], Decimal):
        _fail(f"{where}: mark_price must be a Decimal, got {type(entry['mark_price']).__name__}")


def _as_map(entries: Any, where: str) -> dict[tuple[str, str], Decimal]:
    if not isinstance(entries, list):
        _fail(f"{where}: get_all_positions must return a list, got {type(entries).__name__}")
    for entry in entries:
        _check_entry(entry, where)
    return {(e["symbol"], e["position_side"]): e["position_amt"] for e in entries}


async def check_positions_shape(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    kit.sim.set_position("ETHUSDT", "-0.500")
    every = _as_map(await kit.ok("get_all_positions", []), "get_all_positions([])")
    expected = {("BTCUSDT", "BOTH"): Decimal("0.010"), ("ETHUSDT", "BOTH"): Decimal("-0.500")}
    if every != expected:
        _fail(f"get_all_positions([]) read {every}, the exchange holds {expected} (signed amounts, "
              "negative = short, nonzero positions only)")
    one = _as_map(await kit.ok("get_all_positions", ["ETHUSDT"]), "get_all_positions(['ETHUSDT'])")
    if one != {("ETHUSDT", "BOTH"): Decimal("-0.500")}:
        _fail(f"get_all_positions(['ETHUSDT']) read {one}: only the requested symbols' nonzero positions")
    none = _as_map(await kit.ok("get_all_positions", ["BNBUSDT"]), "get_all_positions(['BNBUSDT'])")
    if none:
        _fail(f"get_all_positions(['BNBUSDT']) read {none} for a flat symbol: flat positions are left out")


async def check_positions_unreadable(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    for name, inject in (("truncated JSON", kit.sim.faults.malformed_body),
                         ("an HTML error page", kit.sim.faults.html_body)):
        kit.sim.faults.clear()
        inject(endpoint="positions")
        outcome = await kit.call("get_all_positions", ["BTCUSDT"])
        if not outcome.raised:
            read = outcome.result
            _fail(f"an unreadable positions answer ({name}) was read as {read!r} (the exchange holds BTCUSDT "
                  "0.010): it must raise, never be read as flat")
    kit.sim.faults.clear()


async def check_cancel(kit: Kit) -> None:
    sim = kit.sim
    sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
    sim.place_order("BTCUSDT", "SELL", "LIMIT", "0.010", "80000")
    sim.place_algo_order("BTCUSDT", "SELL", "STOP_MARKET", trigger_price="50000", close_position=True)
    sim.place_order("ETHUSDT", "BUY", "LIMIT", "0.100", "2000")
    count = await kit.ok("cancel_all_orders", "BTCUSDT")
    left = len(sim.book.open_orders("BTCUSDT")) + len(sim.book.open_algo_orders("BTCUSDT"))
    if left:
        _fail(f"cancel_all_orders('BTCUSDT') left {len(sim.book.open_orders('BTCUSDT'))} regular and "
              f"{len(sim.book.open_algo_orders('BTCUSDT'))} algo order(s) open: it must cancel both kinds")
    if count != 3 or isinstance(count, bool):
        _fail(f"cancel_all_orders('BTCUSDT') returned {count!r}; it cancelled 2 regular + 1 algo order: must count 3")
    if len(sim.book.open_orders("ETHUSDT")) != 1:
        _fail("cancel_all_orders('BTCUSDT') cancelled ETHUSDT's order: only the given symbol's orders")
    again = await kit.ok("cancel_all_orders", "BTCUSDT")
    if again != 0:
        _fail(f"cancel_all_orders('BTCUSDT') with nothing open returned {again!r}: must be 0 (not an error)")


async def check_close_one_way(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    kit.sim.set_position("ETHUSDT", "-0.500")
    await kit.ok("execute_market_close", "BTCUSDT", "SELL", Decimal("0.010"))
    await kit.ok("execute_market_close", "ETHUSDT", "BUY", Decimal("0.500"))
    for symbol in ("BTCUSDT", "ETHUSDT"):
        sent = kit.orders_sent(symbol)
        if not sent:
            _fail(f"execute_market_close({symbol!r}) sent no order")
        for order in sent:
            if order.get("type") != "MARKET":
                _fail(f"{symbol}: close sent a {order.get('type')} order: closes are MARKET orders")
            if order.get("reduceOnly", "").lower() != "true" and order.get("closePosition", "").lower() != "true":
                _fail(f"{symbol}: close sent without reduceOnly in one-way mode ({_show(order)}): an unflagged "
                      "order can open a position in the other direction")
        if kit.position(symbol) != 0:
            _fail(f"{symbol}: still {kit.position(symbol)} after the close")


async def check_never_flip_or_increase(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.005")
    await kit.call("execute_market_close", "BTCUSDT", "SELL", Decimal("0.010"))  # more than is held
    after = kit.position("BTCUSDT")
    if after < 0:
        _fail(f"closing 0.010 of a 0.005 BTCUSDT long left {after}: the close flipped the position")
    if after > Decimal("0.005"):
        _fail(f"closing a 0.005 BTCUSDT long left {after}: the close increased the position")
    kit.sim.set_position("ETHUSDT", "0.100")
    await kit.call("execute_market_close", "ETHUSDT", "BUY", Decimal("0.100"))  # the wrong side for a long
    if kit.position("ETHUSDT") > Decimal("0.100"):
        _fail(f"a BUY 'close' on a 0.100 ETHUSDT long left {kit.position('ETHUSDT')}: the close increased the position")


async def check_close_hedge(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010", "LONG")
    kit.sim.set_position("BTCUSDT", "-0.020", "SHORT")
    legs = _as_map(await kit.ok("get_all_positions", ["BTCUSDT"]), "hedge mode get_all_positions(['BTCUSDT'])")
    expected = {("BTCUSDT", "LONG"): Decimal("0.010"), ("BTCUSDT", "SHORT"): Decimal("-0.020")}
    if legs != expected:
        _fail(f"hedge mode: get_all_positions read {legs}, the exchange holds {expected} (one entry per leg)")
    await kit.call("execute_market_close", "BTCUSDT", "SELL", Decimal("0.010"))
    sent = kit.orders_sent("BTCUSDT")
    if not sent or any(o.get("positionSide") != "LONG" for o in sent):
        _fail(f"hedge mode: SELL close sent {[_show(o) for o in sent]}: must carry positionSide=LONG")
    if kit.position("BTCUSDT", "LONG") != 0 or kit.position("BTCUSDT", "SHORT") != Decimal("-0.020"):
        _fail(f"hedge mode: after closing the LONG leg: LONG {kit.position('BTCUSDT', 'LONG')}, SHORT "
              f"{kit.position('BTCUSDT', 'SHORT')} (expected 0 and -0.020)")
    await kit.call("execute_market_close", "BTCUSDT", "BUY", Decimal("0.020"))
    sent = kit.orders_sent("BTCUSDT")[len(sent):]
    if not sent or any(o.get("positionSide") != "SHORT" for o in sent):
        _fail(f"hedge mode: BUY close sent {[_show(o) for o in sent]}: must carry positionSide=SHORT")
    if kit.position("BTCUSDT", "SHORT") != 0:
        _fail(f"hedge mode: SHORT leg still {kit.position('BTCUSDT', 'SHORT')} after its close")


async def check_split(kit: Kit) -> None:
    spec = kit.sim.book.spec("BTCUSDT")
    size = spec.market_max_qty * 2 + spec.step_size * 5
    kit.sim.set_position("BTCUSDT", size)
    outcome = await kit.call("execute_market_close", "BTCUSDT", "SELL", size)
    sent = kit.orders_sent("BTCUSDT")
    too_big = [o for o in sent if Decimal(o.get("quantity", "0")) > spec.market_max_qty]
    if too_big:
        _fail(f"close of {size} sent {len(too_big)} order(s) above MARKET_LOT_SIZE maxQty {spec.market_max_qty}: "
              "a close must be split")
    if kit.position("BTCUSDT") != 0 or kit.filled("BTCUSDT") != size:
        error = f"; it raised {type(outcome.error).__name__}: {outcome.error}" if outcome.raised else ""
        _fail(f"close of {size} split into {len(sent)} order(s) left {kit.position('BTCUSDT')} (filled "
              f"{kit.filled('BTCUSDT')}){error}")


async def check_round_down(kit: Kit) -> None:
    step = kit.sim.book.spec("BTCUSDT").step_size
    kit.sim.set_position("BTCUSDT", "0.010")
    await kit.call("execute_market_close", "BTCUSDT", "SELL", Decimal("0.0109"))
    sent = kit.orders_sent("BTCUSDT")
    quantities = [Decimal(o.get("quantity", "0")) for o in sent]
    off_step = [q for q in quantities if q % step]
    if off_step:
        _fail(f"close of 0.0109 sent quantities {off_step} off BTCUSDT's step {step}: round down to the step")
    if sum(quantities, ZERO) > Decimal("0.0109"):
        _fail(f"close of 0.0109 sent {sum(quantities, ZERO)} in total: round DOWN to the step, never up")
    if kit.position("BTCUSDT") != 0:
        _fail(f"close of 0.0109 (0.010 after rounding down) left {kit.position('BTCUSDT')}")
    kit.sim.set_position("ETHUSDT", "0.5")
    await kit.ok("execute_market_close", "ETHUSDT", "SELL", 0.5)  # the seed's float annotation
    if kit.position("ETHUSDT") != 0:
        _fail(f"close given the float 0.5 left ETHUSDT {kit.position('ETHUSDT')}: accept float and Decimal")


async def check_terminal_not_retried(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    kit.sim.faults.lock_symbol("BTCUSDT")
    outcome = await kit.call("execute_market_close", "BTCUSDT", "SELL", Decimal("0.010"))
    sent = kit.orders_sent("BTCUSDT")
    if not outcome.raised:
        _fail(f"a close rejected with -1122 (symbol locked) returned {outcome.result!r}: it must raise")
    if not is_terminal(outcome.error):
        _fail(f"-1122 raised {type(outcome.error).__name__} (not terminal): a certain rejection must be terminal "
              "(TerminalExchangeError or terminal=True)")
    if len(sent) != 1:
        _fail(f"a terminal rejection (-1122) was sent {len(sent)} times: terminal errors are not retried")


async def check_retryable_marked(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    kit.sim.faults.error(503, endpoint="positions")
    outcome = await kit.call("get_all_positions", ["BTCUSDT"], budget=2.0)
    if not outcome.raised:
        _fail(f"positions read answered 503 every time returned {outcome.result!r}: it must raise")
    if is_terminal(outcome.error):
        _fail(f"a 503 on a positions read raised terminal {type(outcome.error).__name__}: it must be retryable")
    kit.sim.faults.clear()
    kit.sim.faults.error(503, code=-1001, endpoint="new_order")
    outcome = await kit.call("execute_market_close", "BTCUSDT", "SELL", Decimal("0.010"), budget=2.0)
    if not outcome.raised:
        _fail(f"a close answered 503 -1001 every time returned {outcome.result!r}: it must raise")
    if is_terminal(outcome.error):
        _fail(f"a close answered 503 -1001 raised terminal {type(outcome.error).__name__}: it must be retryable")
    if kit.position("BTCUSDT") != Decimal("0.010"):
        _fail("rejected closes changed the position")


async def check_ambiguous_reconciled(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    kit.sim.faults.unknown_status_executed(endpoint="new_order", symbol="BTCUSDT", times=1)
    outcome = await kit.call("execute_market_close", "BTCUSDT", "SELL", Decimal("0.010"))
    fills = [f for f in kit.sim.fill_log if f.symbol == "BTCUSDT"]
    if len(fills) != 1 or kit.position("BTCUSDT") != 0:
        _fail(f"after an executed order answered 503 'Unknown error': {len(fills)} fill(s), position "
              f"{kit.position('BTCUSDT')}: reconcile (query the order) instead of sending a second close")
    if outcome.raised:
        if is_terminal(outcome.error):
            _fail(f"an unknown outcome (503 -1006) raised terminal {type(outcome.error).__name__}: it may have "
                  "executed; raise AmbiguousExchangeError or reconcile")
        if not isinstance(outcome.error, AmbiguousExchangeError):
            return  # retryable: the engine re-reads the position before it sends again
    else:
        result = outcome.result
        executed = result.get("executed_qty") if isinstance(result, dict) else None
        if executed is None or Decimal(str(executed)) != Decimal("0.010"):
            _fail(f"an executed order answered 503 'Unknown error' was reported as {result!r}: reconcile reports "
                  "executed_qty 0.010 (the order filled)")


async def check_deadline(kit: Kit) -> None:
    kit.sim.set_position("BTCUSDT", "0.010")
    kit.sim.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "50000")
    for method, args in (("get_all_positions", (["BTCUSDT"],)),
                         ("cancel_all_orders", ("BTCUSDT",)),
                         ("execute_market_close", ("BTCUSDT", "SELL", Decimal("0.010")))):
        kit.sim.faults.hang()
        try:
            outcome = await kit.call(method, *args, budget=DEADLINE_SECONDS)
        finally:
            kit.sim.faults.release_hangs()
            kit.sim.faults.clear()
        if not outcome.raised:
            _fail(f"{method} on a hung exchange returned {outcome.result!r}: it must raise at the deadline")


CHECKS: tuple[Check, ...] = (
    Check("signatures", "Seed methods: names, parameters, sync/async kinds", "pre.deps.methods", check_signatures),
    Check("positions-shape", "Positions: documented dict, signed Decimal, nonzero only", "pre.deps.methods",
          check_positions_shape),
    Check("positions-unreadable", "Positions: an unreadable answer raises, never reads as flat", "pre.deps.methods",
          check_positions_unreadable),
    Check("cancel", "Cancel: counts regular + algo orders and leaves none", "pre.deps.order_manager", check_cancel),
    Check("close-one-way", "Close (one-way mode): MARKET, reduce-only, flat afterwards", "pre.deps.order_manager",
          check_close_one_way),
    Check("close-never-flips", "Close: never flips or increases a position", "pre.deps.order_manager",
          check_never_flip_or_increase),
    Check("close-hedge", "Close (hedge mode): positionSide per leg", "pre.deps.order_manager", check_close_hedge,
          hedge=True),
    Check("close-split", "Close: split above MARKET_LOT_SIZE maxQty", "pre.deps.order_manager", check_split),
    Check("close-round-down", "Close: quantities rounded down to the step", "pre.deps.order_manager",
          check_round_down),
    Check("errors-terminal", "Errors: terminal rejection not retried", "pre.deps.order_manager",
          check_terminal_not_retried),
    Check("errors-retryable", "Errors: retryable failures marked retryable", "pre.deps.order_manager",
          check_retryable_marked),
    Check("errors-ambiguous", "Errors: unknown outcome reconciled without a second fill", "pre.deps.order_manager",
          check_ambiguous_reconciled),
    Check("deadline", "Every call bounded by the run deadline", "pre.deps.order_manager", check_deadline),
)

BY_ID: dict[str, Check] = {check.id: check for check in CHECKS}


def _show(order: dict[str, str]) -> str:
    keys = ("side", "type", "quantity", "reduceOnly", "positionSide", "closePosition")
    return "{" + ", ".join(f"{k}={order[k]}" for k in keys if k in order) + "}"


async def run_check(check: Check, factory: Callable[[str, str, str], Any]) -> None:
    """Run one check on a fresh embedded exchange with an order manager from ``factory``."""
    async with BinanceSimulator() as sim:
        if check.hedge:
            sim.set_hedge_mode(True)
        opened = open_order_manager(factory, sim.base_url, sim.api_key, sim.api_secret)
        try:
            order_manager = await opened.__aenter__()
        except Exception as exc:
            name = getattr(factory, "__qualname__", repr(factory))
            raise ConformanceFailure(f"the factory {name}(exchange_url, api_key, api_secret) did not give an "
                                     f"order manager: {type(exc).__name__}: {exc}") from None
        try:
            await check.run(Kit(sim, order_manager))
        except BaseException as exc:
            if not await opened.__aexit__(type(exc), exc, exc.__traceback__):
                raise
        else:
            await opened.__aexit__(None, None, None)
        finally:
            sim.faults.release_hangs()
            sim.faults.clear()
