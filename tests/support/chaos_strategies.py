"""Hypothesis strategies for the chaos suite, and the invariants I1-I6 every run is judged by.

Shared by test_chaos.py, test_crash_recovery.py, test_deadman.py, test_hostile_input.py and
test_security.py (attrs' habit: strategies live in one module).

Accounts (``accounts``): 1-50 symbols of ``CHAOS_SPECS`` (the twelve default markets plus synthetic
ones whose ``minQty`` is above their step), one-way or hedge mode, position sizes drawn around the
filter limits (``minQty`` and one step either side, ``MARKET_LOT_SIZE.maxQty`` and one step either
side, several times ``maxQty``, dust below ``minQty``), resting LIMIT orders and algo
(conditional) orders, and a target list that may hold an idle or an unlisted symbol, or be empty
("every symbol with a position").

Fault schedules (``fault_rules``): every kind ``FaultPlan`` offers (latency, hang, error,
unknown_status_executed, lock_symbol, partial_fill, malformed_body, html_body, connection_reset),
on any endpoint the liquidation touches, any or one symbol, limited in count or not, certain or
probabilistic. Injected ``error`` codes are the ones an exchange can send whatever its state
(5xx, -1001, -1003/429/418, -1006/-1007, -1008, -1021, -1022, -2015, -1121, -2019, -2022, -4061,
-4116, -4164, -1111); "no such order" answers (-2011/-2013) are left to the book, which gives them
when they are true, because an exchange that lies about existence cannot be reconciled with.

Invariants (``check_*``), each returning the list of violations (empty when it holds):

* I1 ``check_fills``: replaying the fill log from the starting legs, no fill opens, increases or
  flips a leg;
* I2 ``check_fills``: per leg, the executed quantity is at most the leg's size at the start;
* I3 ``check_deadline``: the run ended within ``timeout_seconds + 0.5`` s;
* I4 ``check_report``: COMPLETED implies the targeted symbols are flat with no regular or algo
  order open; ``positions_failed`` equals the legs left open on them (a leg whose close order's
  fate the engine could not learn is reported failed and ``unconfirmed``; positions that could not
  be read at all count once per symbol, ``positions_unknown``);
* I5 ``check_audit``: every line parses; every run has exactly one START and one COMPLETE; every
  line carries its run's correlation id (a crashed run: a START, no COMPLETE, at most one torn
  last line);
* I6 ``check_no_secrets``: no key, secret or signature (a 64-hex run or ``signature=``) in text.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from harness.exchanges.sim import DEFAULT_SYMBOLS, FaultPlan, FaultRule, SimBook, SimBookError, SymbolSpec

# -- markets ------------------------------------------------------------------------------------


def _synthetic_specs(count: int, seed: int = 7) -> tuple[SymbolSpec, ...]:
    """Markets with filters the defaults lack: minQty several steps above the step, tiny maxQty."""
    rng = random.Random(seed)
    specs = []
    for index in range(count):
        step = Decimal(rng.choice(["0.001", "0.01", "0.1", "1", "10"]))
        min_qty = step * rng.choice([1, 3, 10])
        market_max = step * rng.choice([50, 120, 1000, 20000])
        tick = Decimal(rng.choice(["0.0001", "0.001", "0.01", "0.1"]))
        mark = (Decimal(rng.choice(["0.5", "3.3", "12.34", "250", "4100"])) / tick).to_integral_value() * tick
        specs.append(SymbolSpec(
            symbol=f"CHAOS{index:02d}USDT", tick_size=tick, step_size=step, min_qty=min_qty,
            max_qty=market_max * 5, market_max_qty=market_max, min_notional=Decimal("5"),
            mark_price=mark, min_price=tick,
        ))
    return tuple(specs)


#: the markets every chaos exchange lists: the twelve defaults and 38 synthetic ones (50 in all)
CHAOS_SPECS: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS + _synthetic_specs(38)
SPEC_BY_SYMBOL: dict[str, SymbolSpec] = {spec.symbol: spec for spec in CHAOS_SPECS}
#: a well-formed symbol the exchange does not list (-1121)
UNLISTED_SYMBOL = "NOTLISTEDUSDT"
ZERO = Decimal("0")

# -- accounts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderSeed:
    """A working order to seed: ``template`` names its shape, ``side`` BUY or SELL."""

    symbol: str
    template: str  # LIMIT | LIMIT_REDUCE | STOP_MARKET_CLOSE | TAKE_PROFIT_MARKET | TRAILING_STOP_MARKET | STOP
    side: str
    position_side: str = "BOTH"


@dataclass(frozen=True)
class Account:
    """A starting account: mode, legs ``{(symbol, position_side): signed amount}``, orders, targets.

    ``targets`` is what the engine is told to liquidate (``()`` = every symbol with a position).
    """

    hedge: bool
    legs: tuple[tuple[str, str, Decimal], ...]
    orders: tuple[OrderSeed, ...] = ()
    targets: tuple[str, ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        """Listed symbols this account touches (legs, orders and targets), in order."""
        names = [s for s, _, _ in self.legs] + [o.symbol for o in self.orders] + list(self.targets)
        return tuple(dict.fromkeys(n for n in names if n in SPEC_BY_SYMBOL))

    def leg_amounts(self) -> dict[tuple[str, str], Decimal]:
        return {(s, side): amount for s, side, amount in self.legs if amount != 0}


def size_near_limits(spec: SymbolSpec) -> st.SearchStrategy[Decimal]:
    """Absolute position sizes around the symbol's filter limits (dust below minQty included)."""
    step, low, high = spec.step_size, spec.min_qty, spec.market_max_qty
    anchors = sorted({q for q in (
        step, low - step, low, low + step, high - step, high, high + step, 2 * high, 3 * high + step,
    ) if q > 0})
    multiples = st.integers(1, int(3 * high / step)).map(lambda n: (n * step).quantize(step))
    return st.one_of(st.sampled_from(anchors), multiples).map(lambda q: q.quantize(step))


ORDER_TEMPLATES = ("LIMIT", "LIMIT_REDUCE", "STOP_MARKET_CLOSE", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET", "STOP")


@st.composite
def accounts(draw: st.DrawFn, *, min_symbols: int = 1, max_symbols: int = 8) -> Account:
    """A random account on ``min_symbols``..``max_symbols`` listed symbols (see the module docstring)."""
    count = draw(st.integers(min_symbols, max_symbols))
    symbols = draw(st.permutations([s.symbol for s in CHAOS_SPECS]))[:count]
    hedge = draw(st.booleans())
    legs: list[tuple[str, str, Decimal]] = []
    orders: list[OrderSeed] = []
    for symbol in symbols:
        spec = SPEC_BY_SYMBOL[symbol]
        sides = draw(st.sampled_from([("LONG",), ("SHORT",), ("LONG", "SHORT"), ()])) if hedge else ("BOTH",)
        for position_side in sides:
            size = draw(size_near_limits(spec))
            short = position_side == "SHORT" or (position_side == "BOTH" and draw(st.booleans()))
            legs.append((symbol, position_side, -size if short else size))
        for _ in range(draw(st.integers(0, 2))):
            template = draw(st.sampled_from(ORDER_TEMPLATES))
            side = draw(st.sampled_from(["BUY", "SELL"]))
            position_side = draw(st.sampled_from(["LONG", "SHORT"])) if hedge else "BOTH"
            orders.append(OrderSeed(symbol, template, side, position_side))
    extra = draw(st.sampled_from([(), (), (), ("idle",), ("unlisted",), ("all",)]))
    targets: tuple[str, ...] = tuple(symbols)
    idle = [s.symbol for s in CHAOS_SPECS if s.symbol not in symbols]
    if "idle" in extra and idle:
        targets += (draw(st.sampled_from(idle)),)
    elif "unlisted" in extra:
        targets += (UNLISTED_SYMBOL,)
    elif "all" in extra:
        targets = ()
    return Account(hedge, tuple(legs), tuple(orders), targets)


def _price(spec: SymbolSpec, factor: str, rounding: str) -> Decimal:
    raw = spec.mark_price * Decimal(factor)
    return max(spec.tick_size, (raw / spec.tick_size).to_integral_value(rounding=rounding) * spec.tick_size)


def _order_qty(spec: SymbolSpec, price: Decimal, cap: Decimal) -> Decimal:
    wanted = (spec.min_notional * 2 / price / spec.step_size).to_integral_value(rounding=ROUND_CEILING) * spec.step_size
    return min(max(wanted, spec.min_qty), cap)


def seed_order(book: SimBook, order: OrderSeed) -> bool:
    """Place ``order`` on ``book`` far from the market (never marketable); False when the book refuses it."""
    spec = book.spec(order.symbol)
    hedge = book.hedge_mode
    extra: dict[str, Any] = {"position_side": order.position_side} if hedge else {}
    below, above = _price(spec, "0.8", ROUND_DOWN), _price(spec, "1.2", ROUND_CEILING)
    # a STOP / STOP_MARKET triggers when the mark crosses towards the side; a TAKE_PROFIT the other way
    stop_trigger = _price(spec, "1.3", ROUND_CEILING) if order.side == "BUY" else _price(spec, "0.7", ROUND_DOWN)
    take_trigger = _price(spec, "0.7", ROUND_DOWN) if order.side == "BUY" else _price(spec, "1.3", ROUND_CEILING)
    try:
        if order.template in ("LIMIT", "LIMIT_REDUCE"):
            price = below if order.side == "BUY" else above
            if order.template == "LIMIT_REDUCE" and not hedge:
                extra["reduce_only"] = True
            book.place_order(order.symbol, order.side, "LIMIT", _order_qty(spec, price, spec.max_qty), price,
                             time_in_force="GTC", **extra)
        elif order.template == "STOP_MARKET_CLOSE":
            book.place_algo_order(order.symbol, order.side, "STOP_MARKET", trigger_price=stop_trigger,
                                  close_position=True, **extra)
        elif order.template == "TAKE_PROFIT_MARKET":
            book.place_algo_order(order.symbol, order.side, "TAKE_PROFIT_MARKET", trigger_price=take_trigger,
                                  quantity=_order_qty(spec, take_trigger, spec.market_max_qty), **extra)
        elif order.template == "TRAILING_STOP_MARKET":
            book.place_algo_order(order.symbol, order.side, "TRAILING_STOP_MARKET", callback_rate="1",
                                  quantity=_order_qty(spec, spec.mark_price, spec.market_max_qty), **extra)
        else:
            book.place_algo_order(order.symbol, order.side, "STOP", trigger_price=stop_trigger, price=stop_trigger,
                                  quantity=_order_qty(spec, stop_trigger, spec.max_qty), **extra)
    except (SimBookError, ValueError):
        return False
    return True


def seed_account(book: SimBook, account: Account) -> int:
    """Put ``account`` on a fresh ``book``; returns how many of its orders the book accepted."""
    if account.hedge:
        book.set_hedge_mode(True)
    for symbol, position_side, amount in account.legs:
        book.set_position(symbol, amount, position_side)
    return sum(seed_order(book, order) for order in account.orders)


def new_chaos_book() -> SimBook:
    """A book listing every ``CHAOS_SPECS`` market."""
    return SimBook(CHAOS_SPECS)


# -- fault schedules ----------------------------------------------------------------------------

#: (HTTP status, Binance code) of every injected error (see the module docstring)
INJECTED_ERRORS: tuple[tuple[int, int | None], ...] = (
    (503, None), (503, -1006), (503, -1007), (500, -1001), (502, None), (504, None),
    (429, -1003), (418, -1003), (400, -1021), (400, -1008), (400, -1022), (401, -2015),
    (400, -1121), (400, -2019), (400, -2022), (400, -4061), (400, -4116), (400, -4164), (400, -1111),
)
#: endpoints an emergency liquidation touches, by exact name, plus the categories and "any"
LIQUIDATION_ENDPOINTS: tuple[str | None, ...] = (
    None, "new_order", "cancel", "positions", "query", "account", "market_data",
    "GET /fapi/v1/time", "GET /fapi/v1/exchangeInfo", "GET /fapi/v3/positionRisk", "GET /fapi/v1/positionSide/dual",
    "GET /fapi/v1/openOrders", "GET /fapi/v1/openAlgoOrders", "DELETE /fapi/v1/allOpenOrders",
    "DELETE /fapi/v1/algoOpenOrders", "POST /fapi/v1/order", "GET /fapi/v1/order",
)
#: every kind the embedded exchange offers
ALL_KINDS: tuple[str, ...] = (
    "latency", "hang", "error", "unknown_status_executed", "lock_symbol", "partial_fill",
    "malformed_body", "html_body", "connection_reset",
)
#: hangs that end on their own well inside a request's timeout (the fast suite)
SHORT_HANG = (0.005, 0.05)
#: hangs that outlast the run's deadline (the I3 suite); released when the exchange stops
LONG_HANG_SECONDS = 30.0


@st.composite
def fault_rules(draw: st.DrawFn, symbols: Sequence[str], *, kinds: Sequence[str] = ALL_KINDS,
                hang_seconds: st.SearchStrategy[float] | None = None) -> FaultRule:
    """One fault rule of any of ``kinds``, on any liquidation endpoint, any or one of ``symbols``."""
    kind = draw(st.sampled_from(list(kinds)))
    symbol_choices: list[str | None] = [None, *symbols]
    match: dict[str, Any] = {
        "endpoint": draw(st.sampled_from(LIQUIDATION_ENDPOINTS)),
        "symbol": draw(st.sampled_from(symbol_choices)),
        "times": draw(st.one_of(st.none(), st.integers(1, 3))),
        "probability": draw(st.one_of(st.none(), st.sampled_from([0.25, 0.5, 0.9]))),
    }
    if kind == "latency":
        return FaultRule("latency", seconds=draw(st.sampled_from([0.001, 0.005, 0.02])), **match)
    if kind == "hang":
        seconds = draw(hang_seconds if hang_seconds is not None else st.floats(*SHORT_HANG))
        return FaultRule("hang", seconds=seconds, **match)
    if kind == "error":
        status, code = draw(st.sampled_from(INJECTED_ERRORS))
        retry_after = draw(st.sampled_from([None, 0, 1, 120])) if status in (418, 429) else None
        return FaultRule("error", status=status, code=code, retry_after=retry_after, **match)
    if kind == "unknown_status_executed":
        return FaultRule("unknown_status_executed", code=draw(st.sampled_from([-1006, -1007])), **match)
    if kind == "lock_symbol":
        match["symbol"] = draw(st.sampled_from(list(symbols) or [UNLISTED_SYMBOL]))
        return FaultRule("lock_symbol", **match)
    if kind == "partial_fill":
        ratio = draw(st.sampled_from(["0", "0.1", "0.5", "0.9", "0.99"]))
        return FaultRule("partial_fill", ratio=Decimal(ratio), **match)
    return FaultRule(kind, executed=draw(st.booleans()), **match)


@dataclass(frozen=True)
class Schedule:
    """One chaos example: the account, the fault rules, the plan's seed and the engine's retries."""

    account: Account
    rules: tuple[FaultRule, ...]
    seed: int = 0
    max_retries: int = 3

    def plan(self) -> FaultPlan:
        return FaultPlan(seed=self.seed, rules=self.rules)


@st.composite
def schedules(draw: st.DrawFn, *, min_symbols: int = 1, max_symbols: int = 8, max_rules: int = 6,
              kinds: Sequence[str] = ALL_KINDS, hang_seconds: st.SearchStrategy[float] | None = None,
              min_rules: int = 0) -> Schedule:
    """An account and a fault schedule against it."""
    account = draw(accounts(min_symbols=min_symbols, max_symbols=max_symbols))
    rules = draw(st.lists(fault_rules(account.symbols, kinds=kinds, hang_seconds=hang_seconds),
                          min_size=min_rules, max_size=max_rules))
    return Schedule(account, tuple(rules), draw(st.integers(0, 2**16)), draw(st.integers(0, 5)))


# -- the invariants -----------------------------------------------------------------------------

#: I3's slack over timeout_seconds
DEADLINE_SLACK_SECONDS = 0.5
_HEX64 = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")
#: a labelled content digest (``sha256:<hex>`` or in-toto's ``"sha256": "<hex>"``) is no secret
_LABELLED_DIGEST = re.compile(r"""sha256(:|"\s*:\s*")[0-9a-fA-F]{64}(?![0-9a-fA-F])""")
_SIGNATURE_PARAM = re.compile(r"signature=(?!<redacted>|\*\*\*)[^&\s\"']+", re.IGNORECASE)


def book_legs(book: SimBook, symbols: Iterable[str] | None = None) -> dict[tuple[str, str], Decimal]:
    """Nonzero legs on the book, on ``symbols`` when given."""
    wanted = None if symbols is None else set(symbols)
    return {(p["symbol"], p["position_side"]): p["position_amt"] for p in book.positions()
            if wanted is None or p["symbol"] in wanted}


def check_fills(start: Mapping[tuple[str, str], Decimal], fills: Iterable[Any]) -> list[str]:
    """I1 and I2 over ``fills`` (``Fill`` records, oldest first) from the legs ``start``."""
    problems: list[str] = []
    current = dict(start)
    executed: dict[tuple[str, str], Decimal] = {}
    for fill in fills:
        key = (fill.symbol, fill.position_side)
        before = current.get(key, ZERO)
        after = before + (fill.qty if fill.side == "BUY" else -fill.qty)
        if before == 0:
            problems.append(f"I1: {fill.client_order_id} opened {key}: 0 -> {after}")
        elif after * before < 0:
            problems.append(f"I1: {fill.client_order_id} flipped {key}: {before} -> {after}")
        elif abs(after) > abs(before):
            problems.append(f"I1: {fill.client_order_id} increased {key}: {before} -> {after}")
        current[key] = after
        executed[key] = executed.get(key, ZERO) + fill.qty
    for key, total in executed.items():
        if total > abs(start.get(key, ZERO)):
            problems.append(f"I2: {key} executed {total} in closes, more than the {abs(start.get(key, ZERO))} open at the start")
    return problems


def check_deadline(elapsed: float, timeout_seconds: float) -> list[str]:
    """I3: the run ended within ``timeout_seconds + DEADLINE_SLACK_SECONDS``."""
    limit = timeout_seconds + DEADLINE_SLACK_SECONDS
    return [] if elapsed <= limit else [f"I3: the run took {elapsed:.3f}s, more than {limit:.1f}s"]


def check_report(result: Any, book: SimBook, targeted: Iterable[str]) -> list[str]:
    """I4: ``result`` (a LiquidationResult or its dict) agrees with ``book`` on the targeted symbols.

    COMPLETED implies no leg and no regular or algo order open there. The legs reported failed are
    exactly the legs left open, except a failed leg the engine marked ``unconfirmed`` (an order whose
    fate it could not learn) may be flat; ``positions_failed`` counts the failed legs plus one per
    symbol whose positions could not be read at all (``positions_unknown``), and those symbols' open
    legs need not be listed.
    """
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    listed = [s for s in targeted if s in book.symbols]
    left_open = book_legs(book, listed)
    orders = [o.symbol for o in book.open_orders() if o.symbol in listed]
    algos = [o.symbol for o in book.open_algo_orders() if o.symbol in listed]
    problems = []
    if data["state"] == "COMPLETED" and (left_open or orders or algos):
        problems.append(f"I4: COMPLETED but open: legs {left_open}, orders on {orders}, algo orders on {algos}")
    unknown = list(data.get("positions_unknown") or [])
    reported = [(symbol, p) for symbol, outcome in data["symbols"].items() for p in outcome["positions"]]
    failed = {(symbol, p["position_side"]) for symbol, p in reported if p["status"] != "CLOSED"}
    unconfirmed = {(symbol, p["position_side"]) for symbol, p in reported if p.get("unconfirmed")}
    unseen = {leg for leg in left_open if leg not in failed and leg[0] not in unknown and "*" not in unknown}
    if unseen:
        problems.append(f"I4: left open but not reported failed: {sorted(unseen)} (failed: {sorted(failed)})")
    wrongly_failed = failed - set(left_open) - unconfirmed
    if wrongly_failed:
        problems.append(f"I4: reported failed but flat (and not marked unconfirmed): {sorted(wrongly_failed)}")
    if data["positions_failed"] != len(failed) + len(unknown):
        problems.append(f"I4: positions_failed={data['positions_failed']} but {len(failed)} leg(s) failed and "
                        f"{len(unknown)} symbol(s) unknown; left open: {left_open}")
    if unknown and data["state"] == "COMPLETED":
        problems.append(f"I4: COMPLETED with positions unknown on {unknown}")
    return problems


@dataclass
class AuditCheck:
    """What ``check_audit`` found: the runs (correlation id -> event types) and any violations."""

    runs: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    torn_lines: int = 0


def check_audit(path: Path, *, crashed_runs: int = 0) -> AuditCheck:
    """I5 over the audit file at ``path``; ``crashed_runs`` runs may lack their COMPLETE (killed).

    A crashed run may leave one torn LAST line (nothing after it parses as its line); every other
    line must parse as one JSON object with the four fields.
    """
    check = AuditCheck()
    raw_lines = path.read_bytes().split(b"\n")
    trailing = raw_lines.pop() if raw_lines else b""
    if trailing:  # the file does not end with a newline: its last line was cut mid-write
        check.torn_lines = 1
        if not crashed_runs:
            check.problems.append(f"I5: torn last line in a run that was not killed: {trailing[:80]!r}")
    for number, raw in enumerate(raw_lines, start=1):
        try:
            record = json.loads(raw)
        except ValueError:
            check.problems.append(f"I5: line {number} does not parse: {raw[:80]!r}")
            continue
        if not isinstance(record, dict) or set(record) != {"timestamp", "event_type", "correlation_id", "details"}:
            check.problems.append(f"I5: line {number} is not an audit record: {raw[:80]!r}")
            continue
        cid = record["correlation_id"]
        if not isinstance(cid, str) or not cid:
            check.problems.append(f"I5: line {number} ({record['event_type']}) has no correlation id")
            continue
        check.runs.setdefault(cid, []).append(record["event_type"])
    unfinished = 0
    for cid, events in check.runs.items():
        starts, completes = events.count("LIQUIDATION_START"), events.count("LIQUIDATION_COMPLETE")
        if starts != 1 or events[0] != "LIQUIDATION_START":
            check.problems.append(f"I5: run {cid} has {starts} START(s) and begins with {events[0]}")
        if completes == 0:
            unfinished += 1
        elif completes > 1 or events[-1] != "LIQUIDATION_COMPLETE":
            check.problems.append(f"I5: run {cid} has {completes} COMPLETE(s) and ends with {events[-1]}")
    if unfinished > crashed_runs:
        check.problems.append(f"I5: {unfinished} run(s) without a COMPLETE, {crashed_runs} allowed (killed)")
    return check


def check_no_secrets(text: str, secrets: Iterable[str], where: str) -> list[str]:
    """I6: none of ``secrets``, no unredacted ``signature=`` and no 64-hex run (an HMAC) in ``text``."""
    problems = [f"I6: {where} holds a secret ({secret[:4]}...)" for secret in secrets if secret and secret in text]
    if _SIGNATURE_PARAM.search(text):
        problems.append(f"I6: {where} holds a request signature")
    match = _HEX64.search(_LABELLED_DIGEST.sub("sha256:<digest>", text))
    if match:
        problems.append(f"I6: {where} holds a 64-hex value (a key or an HMAC signature): {match.group()[:6]}...")
    return problems


def scan_tree(root: Path, secrets: Iterable[str]) -> list[str]:
    """I6 over every file under ``root`` (binary files are decoded leniently)."""
    secrets = list(secrets)
    problems: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        problems += check_no_secrets(path.read_bytes().decode("utf-8", "replace"), secrets, str(path.relative_to(root)))
    return problems
