"""Symbol trading rules from ``GET /fapi/v1/exchangeInfo`` and the quantity maths built on them.

Everything here is pure (no I/O) and works in ``Decimal``: quantities are rounded DOWN to the step,
never up, and a position larger than one MARKET order may carry (``MARKET_LOT_SIZE.maxQty``) is
split into several orders of nearly equal size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from harness.core.errors import InvalidArgumentError

__all__ = ["InvalidArgumentError"]  # re-exported: it used to live here (now harness.core.errors)

#: the most MARKET orders one close may be split into; a size needing more is not a real position
MAX_ORDERS_PER_CLOSE = 1000


@dataclass(frozen=True)
class SymbolRules:
    """What one MARKET order on ``symbol`` may carry.

    ``step_size``/``min_qty``/``max_qty`` come from ``MARKET_LOT_SIZE`` where it gives a positive
    value, else from ``LOT_SIZE`` (never from ``quantityPrecision``).
    """

    symbol: str
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    status: str = "TRADING"
    tick_size: Decimal | None = None
    min_notional: Decimal | None = None

    def __post_init__(self) -> None:
        if self.step_size <= 0:
            raise ValueError(f"{self.symbol}: step_size={self.step_size} must be > 0")
        if self.min_qty < 0 or self.max_qty < self.min_qty or self.max_qty < self.step_size:
            raise ValueError(
                f"{self.symbol}: min_qty={self.min_qty}, max_qty={self.max_qty}, step_size={self.step_size}: "
                "need 0 <= min_qty <= max_qty and max_qty >= step_size"
            )


@dataclass(frozen=True)
class ExchangeRules:
    """The parsed exchangeInfo: per-symbol rules and the account's ``rateLimits`` entries."""

    symbols: Mapping[str, SymbolRules]
    rate_limits: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class OrderPlan:
    """How ``requested`` is sent: ``chunks`` (each a valid MARKET quantity) plus an unsendable
    ``remainder`` (below the step, or below ``min_qty``), which is reported and never sent."""

    requested: Decimal
    chunks: tuple[Decimal, ...]
    remainder: Decimal

    @property
    def total(self) -> Decimal:
        return sum(self.chunks, Decimal("0"))


def to_decimal(value: Any, *, name: str) -> Decimal:
    """``Decimal(str(value))`` for an int, float, Decimal or numeric string; rejects bools, NaN and inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise InvalidArgumentError(f"{name}={value!r}: expected a Decimal, float, int or numeric string")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidArgumentError(f"{name}={value!r}: not a number") from None
    if not result.is_finite():
        raise InvalidArgumentError(f"{name}={value!r}: must be a finite number")
    return result


def round_down(quantity: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of ``step`` that is <= ``quantity`` (for quantity >= 0)."""
    # Deliberately separate from the simulator's ``harness.exchanges.sim._num.floor_to_step``: the
    # simulator checks what this adapter sends, so a rounding bug shared by both would hide itself.
    if step <= 0:
        raise ValueError(f"step={step}: must be > 0")
    steps = (quantity / step).to_integral_value(rounding=ROUND_DOWN)
    return (steps * step).quantize(step) if steps else Decimal("0").quantize(step)


def plan_market_orders(quantity: Decimal | float | int | str, rules: SymbolRules) -> OrderPlan:
    """Split ``quantity`` into MARKET order sizes that respect ``rules``.

    The quantity is rounded down to the step; what is cut off is the remainder. When the rounded
    quantity exceeds ``max_qty`` it is split into ``n = ceil(q / max_qty)`` chunks that differ by at
    most one step (so no chunk falls below ``min_qty``). A rounded quantity below ``min_qty`` yields
    no chunks and is all remainder.
    """
    requested = to_decimal(quantity, name="quantity")
    if requested <= 0:
        raise InvalidArgumentError(f"quantity={requested}: must be > 0")
    try:
        sendable = round_down(requested, rules.step_size)
    except InvalidOperation:  # more digits than Decimal's context carries: not a real position
        raise InvalidArgumentError(f"quantity={requested}: too large to trade in steps of {rules.step_size}") from None
    if sendable <= 0 or sendable < rules.min_qty:
        return OrderPlan(requested, (), requested)
    max_per_order = round_down(rules.max_qty, rules.step_size)
    count = int((sendable / max_per_order).to_integral_value(rounding=ROUND_CEILING))
    if count > MAX_ORDERS_PER_CLOSE:  # a garbled reply, not a position: planning it would never end
        raise InvalidArgumentError(
            f"quantity={requested}: needs {count} MARKET orders of at most {max_per_order} {rules.symbol}, more "
            f"than the {MAX_ORDERS_PER_CLOSE} a close may send; refusing an implausible size"
        )
    total_steps = int(sendable / rules.step_size)
    base, extra = divmod(total_steps, count)
    chunks = tuple(
        ((base + 1 if index < extra else base) * rules.step_size).quantize(rules.step_size)
        for index in range(count)
    )
    return OrderPlan(requested, chunks, requested - sendable)


def _decimal_field(entry: Mapping[str, Any], key: str, symbol: str) -> Decimal | None:
    raw = entry.get(key)
    if raw is None:
        return None
    try:
        return to_decimal(raw, name=f"{symbol}.{entry.get('filterType')}.{key}")
    except ValueError as exc:
        raise ValueError(f"exchangeInfo: {exc}") from None


def parse_symbol(entry: Mapping[str, Any]) -> SymbolRules:
    """One ``symbols[]`` entry of exchangeInfo -> ``SymbolRules`` (ValueError naming what is missing)."""
    symbol = str(entry.get("symbol") or "")
    if not symbol:
        raise ValueError(f"exchangeInfo: a symbols[] entry has no 'symbol': {dict(entry)!r:.200}")
    filters = {str(f.get("filterType")): f for f in entry.get("filters") or [] if isinstance(f, Mapping)}
    lot = filters.get("LOT_SIZE")
    if lot is None:
        raise ValueError(f"exchangeInfo: {symbol} has no LOT_SIZE filter (filters: {sorted(filters)})")
    market = filters.get("MARKET_LOT_SIZE") or {}
    market_step = _decimal_field(market, "stepSize", symbol)
    source = market if market_step is not None and market_step > 0 else lot
    step = _decimal_field(source, "stepSize", symbol)
    if step is None:
        raise ValueError(f"exchangeInfo: {symbol} LOT_SIZE has no 'stepSize'")
    max_qty = _decimal_field(source, "maxQty", symbol)
    if max_qty is None or max_qty <= 0:
        max_qty = _decimal_field(lot, "maxQty", symbol)
    if max_qty is None:
        raise ValueError(f"exchangeInfo: {symbol} LOT_SIZE has no 'maxQty'")
    min_qty = _decimal_field(source, "minQty", symbol) or Decimal("0")
    price = filters.get("PRICE_FILTER") or {}
    notional = filters.get("MIN_NOTIONAL") or {}
    return SymbolRules(
        symbol=symbol,
        step_size=step,
        min_qty=min_qty,
        max_qty=max_qty,
        status=str(entry.get("status", "TRADING")),
        tick_size=_decimal_field(price, "tickSize", symbol),
        min_notional=_decimal_field(notional, "notional", symbol) or _decimal_field(notional, "minNotional", symbol),
    )


def parse_exchange_info(raw: Mapping[str, Any]) -> ExchangeRules:
    """``GET /fapi/v1/exchangeInfo`` (as JSON) -> ``ExchangeRules``."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("symbols"), list):
        raise ValueError(f"exchangeInfo: expected an object with a 'symbols' list, got {type(raw).__name__}")
    symbols = {}
    for entry in raw["symbols"]:
        rules = parse_symbol(entry)
        symbols[rules.symbol] = rules
    limits = tuple(dict(item) for item in raw.get("rateLimits") or [] if isinstance(item, Mapping))
    return ExchangeRules(symbols=symbols, rate_limits=limits)


POSITION_SIDES = frozenset({"BOTH", "LONG", "SHORT"})


@dataclass(frozen=True)
class PositionRow:
    """One row of ``GET /fapi/v3/positionRisk``."""

    symbol: str
    position_side: str
    amount: Decimal  # signed: negative = short
    mark_price: Decimal | None = None


def parse_position_rows(raw: Any) -> list[PositionRow]:
    """``GET /fapi/v3/positionRisk`` -> rows; ValueError for anything else.

    The reply must be a list (``[]`` when nothing is open) of objects, each with a ``symbol`` and a
    finite ``positionAmt`` (and a known ``positionSide`` when given): an empty body (``{}``),
    ``null``, HTML or a row missing its amount is never taken for "no position".
    """
    if not isinstance(raw, list):
        raise ValueError(f"positionRisk: expected a list of positions, got {type(raw).__name__}: {raw!r:.80}")
    rows = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise ValueError(f"positionRisk: a row is not an object: {entry!r:.80}")
        symbol = entry.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"positionRisk: a row has no symbol: {dict(entry)!r:.120}")
        if entry.get("positionAmt") in (None, ""):
            raise ValueError(f"positionRisk: {symbol} has no positionAmt")
        side = entry.get("positionSide", "BOTH")
        if side not in POSITION_SIDES:
            raise ValueError(f"positionRisk: {symbol} positionSide={side!r}")
        amount = to_decimal(entry["positionAmt"], name=f"{symbol}.positionAmt")
        try:  # informational only: a garbled mark price does not make the position unreadable
            mark_price = to_decimal(entry.get("markPrice"), name=f"{symbol}.markPrice")
        except ValueError:
            mark_price = None
        rows.append(PositionRow(symbol, side, amount, mark_price))
    return rows
