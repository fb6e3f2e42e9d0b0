"""Reading the entries ``get_all_positions`` returns: a position the engine cannot read is UNKNOWN, never flat.

Two shapes are accepted, nothing else:

* the port's shape (``harness.core.ports``): ``symbol``, signed ``position_amt``, optional
  ``position_side`` (BOTH when absent) and the optional extras in ``PORT_OPTIONAL_KEYS``; any other
  key is refused (it usually means the order manager speaks another dialect, e.g. ``amount``);
* Binance's native ``GET /fapi/v3/positionRisk`` row, as a foreign order manager may pass it on
  unchanged: ``symbol``, ``positionAmt``, ``positionSide`` (other native keys are ignored: Binance
  adds fields over time).

An entry is refused (``UnreadablePosition``) when it is not a mapping, mixes the two shapes, lacks
the symbol or the amount, has an amount that is not a finite decimal (bools and None included), a
position side other than BOTH/LONG/SHORT, or a hedge leg whose sign contradicts its side (LONG < 0,
SHORT > 0). The engine then counts the positions as unknown: the run cannot be COMPLETED.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

PORT_REQUIRED_KEYS = frozenset({"symbol", "position_amt"})
PORT_OPTIONAL_KEYS = frozenset({
    "position_side", "mark_price", "entry_price", "unrealized_pnl", "leverage", "liquidation_price",
    "notional", "margin_type", "update_time",
})
POSITION_SIDES = ("BOTH", "LONG", "SHORT")


class UnreadablePosition(ValueError):
    """A position entry the engine cannot read; ``symbol`` is its symbol when that much was readable."""

    def __init__(self, message: str, symbol: str | None = None) -> None:
        super().__init__(message)
        self.symbol = symbol


@dataclass(frozen=True)
class PositionEntry:
    symbol: str
    position_side: str  # BOTH | LONG | SHORT
    amount: Decimal  # signed: negative = short

    def to_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "position_amt": str(self.amount), "position_side": self.position_side}


def _short(entry: Any) -> str:
    text = repr(entry)
    return text if len(text) <= 160 else text[:157] + "..."


def read_position(entry: Any) -> PositionEntry:
    """The entry as a ``PositionEntry``; raises ``UnreadablePosition`` naming what is wrong."""
    if not isinstance(entry, Mapping):
        raise UnreadablePosition(f"position entry {_short(entry)}: expected a dict with symbol and position_amt")
    symbol = entry.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip():
        raise UnreadablePosition(f"position entry {_short(entry)}: symbol missing or not a string")
    native = "positionAmt" in entry
    if native and "position_amt" in entry:
        raise UnreadablePosition(f"position entry {_short(entry)}: both position_amt and Binance's positionAmt", symbol)
    if native:
        amount_key, side_key = "positionAmt", "positionSide"
    else:
        amount_key, side_key = "position_amt", "position_side"
        unknown = sorted(str(k) for k in entry if k not in PORT_REQUIRED_KEYS | PORT_OPTIONAL_KEYS)
        if "position_amt" not in entry:
            raise UnreadablePosition(
                f"position entry {_short(entry)}: no position_amt (nor Binance's positionAmt)", symbol)
        if unknown:
            raise UnreadablePosition(
                f"position entry {_short(entry)}: unknown key(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(sorted(PORT_REQUIRED_KEYS | PORT_OPTIONAL_KEYS))}", symbol)
    raw_amount = entry[amount_key]
    if isinstance(raw_amount, bool) or not isinstance(raw_amount, (Decimal, int, float, str)):
        raise UnreadablePosition(f"{symbol}: {amount_key}={raw_amount!r} is not a number", symbol)
    try:
        amount = Decimal(str(raw_amount).strip())
    except (InvalidOperation, ValueError):
        raise UnreadablePosition(f"{symbol}: {amount_key}={raw_amount!r} is not a decimal number", symbol) from None
    if not amount.is_finite():
        raise UnreadablePosition(f"{symbol}: {amount_key}={raw_amount!r} is not a finite number", symbol)
    side = entry.get(side_key, "BOTH")
    if side not in POSITION_SIDES:
        raise UnreadablePosition(f"{symbol}: {side_key}={side!r}; allowed: {', '.join(POSITION_SIDES)}", symbol)
    if (side == "LONG" and amount < 0) or (side == "SHORT" and amount > 0):
        raise UnreadablePosition(f"{symbol}: {side_key}={side} with {amount_key}={raw_amount!r} (sign contradicts side)",
                                 symbol)
    return PositionEntry(symbol=symbol, position_side=str(side), amount=amount)


def read_positions(reply: Any) -> tuple[list[PositionEntry], list[UnreadablePosition]]:
    """Every readable nonzero entry of a ``get_all_positions`` reply, and the problems with the rest.

    A reply that is not a list (None included) is one problem: the positions are unknown."""
    if isinstance(reply, (str, bytes, Mapping)) or not isinstance(reply, (list, tuple)):
        return [], [UnreadablePosition(f"get_all_positions returned {_short(reply)}: expected a list of positions")]
    entries: list[PositionEntry] = []
    problems: list[UnreadablePosition] = []
    for raw in reply:
        try:
            entry = read_position(raw)
        except UnreadablePosition as exc:
            problems.append(exc)
            continue
        if entry.amount != 0:
            entries.append(entry)
    return entries, problems


__all__ = ["POSITION_SIDES", "PORT_OPTIONAL_KEYS", "PORT_REQUIRED_KEYS", "PositionEntry", "UnreadablePosition",
           "read_position", "read_positions"]
