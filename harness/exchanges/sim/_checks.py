"""Order-parameter checks with Binance's error codes and messages (raise ``SimBookError``)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ._models import SimBookError
from ._num import decimals_of, is_multiple
from ._symbols import SymbolSpec

CLIENT_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
SIDES = frozenset({"BUY", "SELL"})
POSITION_SIDES = frozenset({"BOTH", "LONG", "SHORT"})
TIME_IN_FORCE = frozenset({"GTC", "IOC", "FOK", "GTX", "GTD"})


def mandatory(name: str) -> SimBookError:
    return SimBookError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> SimBookError:
    return SimBookError(-1106, f"Parameter '{name}' sent when not required.")


def check_side(side: object) -> str:
    if side is None or side == "":
        raise mandatory("side")
    if not isinstance(side, str) or side.upper() not in SIDES:
        raise SimBookError(-1117, "Invalid side.")
    return side.upper()


def parse_decimal(value: object, name: str) -> Decimal | None:
    """``None`` when absent; a Decimal; -1102 when malformed."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise mandatory(name) from None
    if not result.is_finite():
        raise mandatory(name)
    return result


def check_quantity(spec: SymbolSpec, value: object, *, market: bool) -> Decimal:
    """A positive multiple of the step within LOT_SIZE (LIMIT) or MARKET_LOT_SIZE (MARKET) bounds."""
    qty = parse_decimal(value, "quantity")
    if qty is None:
        raise mandatory("quantity")
    if qty <= 0:
        raise SimBookError(-4003, "Quantity less than or equal to zero.")
    if not is_multiple(qty, spec.step_size):
        raise SimBookError(-1111, "Precision is over the maximum defined for this asset.")
    if qty < spec.min_qty:
        raise SimBookError(-4004, "Quantity less than min quantity.")
    if qty > (spec.market_max_qty if market else spec.max_qty):
        raise SimBookError(-4005, "Quantity greater than max quantity.")
    return qty


def check_price(spec: SymbolSpec, value: object, name: str = "price") -> Decimal:
    """A positive multiple of the tick size within PRICE_FILTER bounds."""
    price = parse_decimal(value, name)
    if price is None:
        raise mandatory(name)
    if price <= 0:
        raise SimBookError(-4001, "Price less than 0.")
    if decimals_of(price) > spec.price_precision:
        raise SimBookError(-1111, "Precision is over the maximum defined for this asset.")
    if not is_multiple(price, spec.tick_size):
        raise SimBookError(-4014, "Price not increased by tick size.")
    if price < spec.min_price:
        raise SimBookError(-4013, "Price less than min price.")
    if price > spec.max_price:
        raise SimBookError(-4016, "Limit price can't be higher than max price.")
    return price


def check_client_id(value: str, name: str) -> str:
    if not isinstance(value, str) or not CLIENT_ID_PATTERN.match(value):
        raise SimBookError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{{1,36}}$'."
        )
    return value


def check_position_side(value: object, hedge_mode: bool) -> str:
    """BOTH in one-way mode, LONG/SHORT (required) in hedge mode; -4061 on a mismatch."""
    if value is None or value == "":
        if hedge_mode:
            raise SimBookError(-4061, "Order's position side does not match user's setting.")
        return "BOTH"
    if not isinstance(value, str) or value.upper() not in POSITION_SIDES:
        raise SimBookError(-1130, "Data sent for parameter 'positionSide' is not valid.")
    side = value.upper()
    if hedge_mode == (side == "BOTH"):
        raise SimBookError(-4061, "Order's position side does not match user's setting.")
    return side


def check_time_in_force(value: object) -> str:
    if not isinstance(value, str) or value.upper() not in TIME_IN_FORCE:
        raise SimBookError(-1115, "Invalid timeInForce.")
    return value.upper()


def check_reduce_only(value: bool | None, hedge_mode: bool) -> bool:
    """``None`` means the parameter was not sent; hedge mode refuses it even when false."""
    if value is None:
        return False
    if hedge_mode:
        raise not_required("reduceonly")
    return bool(value)

