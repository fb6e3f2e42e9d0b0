"""The margin model: leverage brackets, initial and maintenance margin, available balance.

One USDT cross-margin account (Binance's single-asset mode). Simplifications, listed in
``docs/SIMULATOR.md``: isolated margin is recorded (``marginType``) but margined like cross; the
initial margin of open orders is ``remaining qty * limit price / leverage`` for every open LIMIT
order that is not reduce-only; no liquidation price is computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ._models import SimBookError
from ._num import ZERO

DEFAULT_LEVERAGE = 20
MAX_LEVERAGE = 125


@dataclass(frozen=True)
class Bracket:
    """One notional tier of ``GET /fapi/v1/leverageBracket``."""

    bracket: int
    initial_leverage: int
    notional_floor: int
    notional_cap: int
    maint_margin_ratio: Decimal
    cum: Decimal

    def to_api(self) -> dict[str, object]:
        # Binance sends these as JSON numbers, not strings
        return {"bracket": self.bracket, "initialLeverage": self.initial_leverage, "notionalCap": self.notional_cap,
                "notionalFloor": self.notional_floor, "maintMarginRatio": float(self.maint_margin_ratio),
                "cum": float(self.cum)}


def _brackets(rows: tuple[tuple[int, int, int, str], ...]) -> tuple[Bracket, ...]:
    """Tiers from (leverage, floor, cap, maintenance ratio); ``cum`` is Binance's running offset."""
    out: list[Bracket] = []
    cum, previous_ratio = ZERO, ZERO
    for number, (leverage, floor, cap, ratio) in enumerate(rows, start=1):
        mmr = Decimal(ratio)
        cum += Decimal(floor) * (mmr - previous_ratio)
        out.append(Bracket(number, leverage, floor, cap, mmr, cum))
        previous_ratio = mmr
    return tuple(out)


#: the tiers every simulated symbol uses (close to Binance's large-cap perpetuals)
BRACKETS: tuple[Bracket, ...] = _brackets((
    (125, 0, 50_000, "0.004"),
    (100, 50_000, 500_000, "0.005"),
    (50, 500_000, 10_000_000, "0.01"),
    (20, 10_000_000, 50_000_000, "0.025"),
    (10, 50_000_000, 100_000_000, "0.05"),
    (5, 100_000_000, 200_000_000, "0.1"),
    (1, 200_000_000, 500_000_000, "0.25"),
))


def check_leverage(raw: object) -> int:
    """An integer leverage 1..125 (-4028 otherwise, as Binance)."""
    try:
        value = int(str(raw))
    except ValueError:
        raise SimBookError(-1130, "Data sent for parameter 'leverage' is not valid.") from None
    if not 1 <= value <= MAX_LEVERAGE:
        raise SimBookError(-4028, f"Leverage {value} is not valid")
    return value


def max_notional(leverage: int) -> int:
    """The largest position notional allowed at ``leverage`` (the cap of the last tier allowing it)."""
    allowed = [b.notional_cap for b in BRACKETS if b.initial_leverage >= leverage]
    return allowed[-1] if allowed else BRACKETS[0].notional_cap


def maint_margin(notional: Decimal) -> Decimal:
    """Maintenance margin of a position of ``notional`` (absolute) by Binance's tier formula."""
    size = abs(notional)
    if not size:
        return ZERO
    tier = next((b for b in BRACKETS if size <= b.notional_cap), BRACKETS[-1])
    return max(size * tier.maint_margin_ratio - tier.cum, ZERO)


def opening_quantity(position: Decimal, side: str, qty: Decimal) -> Decimal:
    """How much of an order of ``qty`` on ``side`` adds exposure to a one-way ``position``."""
    signed = qty if side == "BUY" else -qty
    if position == 0 or (position > 0) == (signed > 0):
        return qty
    return max(qty - abs(position), ZERO)
