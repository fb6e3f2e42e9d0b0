"""Decimal helpers shared by the simulator: parsing, step rounding, Binance-style formatting."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

ZERO = Decimal(0)


def to_decimal(value: object, field: str) -> Decimal:
    """``value`` (str, int, Decimal or float) as a finite Decimal; floats go through ``str``.

    Raises ``ValueError`` naming ``field`` when the value is not a finite number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{field}={value!r}: expected a decimal number (str, int, Decimal or float), not a bool")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, float, str)):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{field}={value!r}: expected a decimal number such as '0.010'") from None
    else:
        raise ValueError(f"{field}={value!r}: expected a decimal number (str, int, Decimal or float)")
    if not result.is_finite():
        raise ValueError(f"{field}={value!r}: expected a finite decimal number")
    return result


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded DOWN (towards zero) to a multiple of ``step``, with the step's exponent."""
    # Deliberately separate from the adapter's ``harness.exchanges.binance.rules.round_down``: the
    # simulator checks what the adapter sends, so a rounding bug shared by both would hide itself.
    if step <= 0:
        raise ValueError(f"step={step!r}: must be > 0")
    units = (value / step).to_integral_value(rounding=ROUND_DOWN)
    return (units * step).quantize(step)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step``."""
    return value % step == 0


#: ``format`` specs and decimal counts by step: a symbol has two steps, a response formats several
#: numbers with them, and the lookup is several times cheaper than normalising the step each time
#: (equal Decimals such as 0.01 and 0.010 share an entry, and they have the same answer)
_SPEC_BY_STEP: dict[Decimal, str] = {}
_DECIMALS: dict[Decimal, int] = {}
_CACHE_MAX = 4096  # prices are checked with decimals_of too: bound what arbitrary requests can add


def fmt(value: Decimal, step: Decimal | None = None) -> str:
    """Binance-style plain decimal string; with ``step``, shown with the step's number of decimals."""
    if step is not None:
        spec = _SPEC_BY_STEP.get(step)
        if spec is None:
            spec = f".{decimals_of(step)}f"
            if len(_SPEC_BY_STEP) < _CACHE_MAX:
                _SPEC_BY_STEP[step] = spec
        return format(value, spec)
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def decimals_of(step: Decimal) -> int:
    """Number of decimal places a step allows (``0.001`` -> 3, ``1`` -> 0)."""
    cached = _DECIMALS.get(step)
    if cached is not None:
        return cached
    exponent = step.normalize().as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if len(_DECIMALS) < _CACHE_MAX:
        _DECIMALS[step] = decimals
    return decimals
