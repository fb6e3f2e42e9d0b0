"""Binance USD-M futures error codes and what each means for a caller: the one table.

Both faces of the harness read it: the adapter (``harness.exchanges.binance.errors`` maps
python-binance exceptions with it) and the simulator's in-process face
(``harness.exchanges.sim.memory``, which says beside its use where it deliberately differs).
Facts: /work/shared/BINANCE.md, "Errors the engine must tell apart".

Classes (what the *request* that got the code tells the caller):

* ``TERMINAL``: a certain rejection; sending the same request again cannot help.
* ``RETRYABLE``: a certain failure that may succeed later (after a wait or a clock resync).
* ``AMBIGUOUS``: the order may exist or have executed: query before sending again.
* ``NOT_FOUND``: no such order: on a cancel "nothing to cancel", on a query "never placed".

Codes not listed here are classed by HTTP status (4xx terminal, 5xx retryable, 429/418 retryable
after ``Retry-After``). This module is plain data: no I/O, no python-binance, so the simulator can
use it without importing the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "BinanceCode",
    "CLOCK_SKEW",
    "CODES",
    "CodeClass",
    "DUPLICATE_CLIENT_ORDER_ID",
    "POSITION_SIDE_MISMATCH",
    "REDUCE_ONLY_REJECTED",
    "codes_in",
]


class CodeClass(StrEnum):
    TERMINAL = "terminal"
    RETRYABLE = "retryable"
    AMBIGUOUS = "ambiguous"
    NOT_FOUND = "not-found"


@dataclass(frozen=True)
class BinanceCode:
    """One Binance error code: ``name`` (ours, for code), Binance's ``message``, its ``klass``."""

    code: int
    name: str
    message: str
    klass: CodeClass
    #: why the class, where it is not obvious from the message
    why: str = ""


_T, _R, _A, _N = CodeClass.TERMINAL, CodeClass.RETRYABLE, CodeClass.AMBIGUOUS, CodeClass.NOT_FOUND

_TABLE = (
    BinanceCode(-1001, "DISCONNECTED", "Internal error; unable to process your request. Please try again.", _R),
    BinanceCode(-1003, "TOO_MANY_REQUESTS", "Too many requests; current limit of IP is ...", _R,
                "request weight exceeded: wait Retry-After (429) or the ban (418)"),
    BinanceCode(-1006, "UNEXPECTED_RESP", "An unexpected response was received from the message bus. "
                "Execution status unknown.", _A),
    BinanceCode(-1007, "TIMEOUT", "Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.", _A),
    BinanceCode(-1008, "SERVER_BUSY", "Server is currently overloaded with other requests. Please try again "
                "in a few minutes.", _R),
    BinanceCode(-1013, "INVALID_MESSAGE", "Filter failure (e.g. LOT_SIZE, MIN_NOTIONAL).", _T),
    BinanceCode(-1015, "TOO_MANY_ORDERS", "Too many new orders; current limit is ...", _R),
    BinanceCode(-1021, "INVALID_TIMESTAMP", "Timestamp for this request is outside of the recvWindow.", _R,
                "the clock offset is stale: resync from /fapi/v1/time, then the same request succeeds"),
    BinanceCode(-1022, "INVALID_SIGNATURE", "Signature for this request is not valid.", _T),
    BinanceCode(-1100, "ILLEGAL_CHARS", "Illegal characters found in a parameter.", _T),
    BinanceCode(-1102, "MANDATORY_PARAM_EMPTY_OR_MALFORMED", "A mandatory parameter was not sent, was empty/null, "
                "or malformed.", _T),
    BinanceCode(-1106, "PARAM_NOT_REQUIRED", "A parameter was sent when not required.", _T,
                "e.g. reduceOnly in hedge mode"),
    BinanceCode(-1111, "BAD_PRECISION", "Precision is over the maximum defined for this asset.", _T),
    BinanceCode(-1116, "INVALID_ORDER_TYPE", "Invalid orderType.", _T),
    BinanceCode(-1117, "INVALID_SIDE", "Invalid side.", _T),
    BinanceCode(-1121, "BAD_SYMBOL", "Invalid symbol.", _T),
    BinanceCode(-1122, "INVALID_SYMBOL_STATUS", "Invalid symbol status.", _T,
                "the symbol is not TRADING (settling, delisted, locked)"),
    BinanceCode(-1130, "INVALID_PARAMETER", "Data sent for a parameter is not valid.", _T),
    BinanceCode(-2010, "NEW_ORDER_REJECTED", "New order rejected.", _T),
    BinanceCode(-2011, "CANCEL_REJECTED", "Unknown order sent.", _N),
    BinanceCode(-2013, "NO_SUCH_ORDER", "Order does not exist.", _N),
    BinanceCode(-2014, "BAD_API_KEY_FMT", "API-key format invalid.", _T),
    BinanceCode(-2015, "REJECTED_MBX_KEY", "Invalid API-key, IP, or permissions for action.", _T),
    BinanceCode(-2019, "MARGIN_NOT_SUFFICIENT", "Margin is insufficient.", _T),
    BinanceCode(-2022, "REDUCE_ONLY_REJECT", "ReduceOnly Order is rejected.", _T,
                "a certain rejection of THIS request (open orders conflict, or nothing left to reduce); "
                "the adapter's closer reacts itself: cancel, re-read the position, resubmit once"),
    BinanceCode(-4003, "QTY_LESS_THAN_ZERO", "Quantity less than or equal to zero.", _T),
    BinanceCode(-4004, "QTY_LESS_THAN_MIN_QTY", "Quantity less than min quantity.", _T),
    BinanceCode(-4005, "QTY_GREATER_THAN_MAX_QTY", "Quantity greater than max quantity.", _T),
    BinanceCode(-4014, "PRICE_NOT_INCREASED_BY_TICK_SIZE", "Price not increased by tick size.", _T),
    BinanceCode(-4061, "POSITION_SIDE_NOT_MATCH", "Order's position side does not match user's setting.", _T,
                "the cached position mode is stale; the adapter's closer re-reads the mode and resubmits "
                "once, terminal if it persists"),
    BinanceCode(-4116, "DUPLICATED_CLIENT_ORDER_ID", "ClientOrderId is duplicated.", _A,
                "an order with this id already exists and may have executed: query it, never resend"),
    BinanceCode(-4120, "ORDER_TYPE_NOT_SUPPORTED", "Order type not supported for this endpoint. "
                "Please use the Algo Order API endpoints instead.", _T),
    BinanceCode(-4164, "MIN_NOTIONAL", "Order's notional must be no smaller than the minimum.", _T,
                "reduce-only closes are exempt; a plain order below it fails again"),
)

#: every code the harness tells apart, by number
CODES: dict[int, BinanceCode] = {entry.code: entry for entry in _TABLE}

CLOCK_SKEW = -1021
REDUCE_ONLY_REJECTED = -2022
POSITION_SIDE_MISMATCH = -4061
DUPLICATE_CLIENT_ORDER_ID = -4116


def codes_in(klass: CodeClass) -> frozenset[int]:
    """The codes of one class."""
    return frozenset(entry.code for entry in _TABLE if entry.klass is klass)
