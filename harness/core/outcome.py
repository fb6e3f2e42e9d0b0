"""What a liquidation reports: its state, per-symbol outcomes and the final result."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any


class LiquidationState(str, Enum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Status(str, Enum):
    """Outcome of one unit of work (a symbol's cancel, a position's close)."""

    PENDING = "PENDING"  # not finished when the deadline struck (or never started)
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass
class PositionOutcome:
    symbol: str
    position_side: str  # BOTH | LONG | SHORT
    side: str  # the closing order's side: SELL closes a long, BUY closes a short
    quantity: Decimal  # absolute size at the start
    executed_qty: Decimal = Decimal("0")
    status: Status = Status.PENDING
    attempts: int = 0
    error: str | None = None
    order_ids: list[Any] = field(default_factory=list)
    #: an order was sent and its fate is unknown (ambiguous failure, or in flight at the deadline): a
    #: position reported failed with this set may in fact be closed
    unconfirmed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "position_side": self.position_side,
            "side": self.side,
            "quantity": str(self.quantity),
            "executed_qty": str(self.executed_qty),
            "status": "CLOSED" if self.status is Status.DONE else self.status.value,
            "attempts": self.attempts,
            "error": self.error,
            "unconfirmed": self.unconfirmed,
        }


@dataclass
class SymbolOutcome:
    symbol: str
    cancel_status: Status = Status.PENDING
    orders_cancelled: int = 0
    cancel_attempts: int = 0
    cancel_error: str | None = None
    positions: list[PositionOutcome] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cancel": self.cancel_status.value,
            "orders_cancelled": self.orders_cancelled,
            "cancel_error": self.cancel_error,
            "positions": [p.to_dict() for p in self.positions],
        }


@dataclass
class LiquidationResult:
    """The honest account of one liquidation run."""

    state: LiquidationState
    correlation_id: str
    reason: str
    positions_closed: int = 0
    positions_failed: int = 0
    orders_cancelled: int = 0
    total_duration_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    symbols: dict[str, SymbolOutcome] = field(default_factory=dict)
    timed_out: bool = False
    retries: int = 0
    started_at: str = ""
    #: targeted symbols whose positions could not be read; each counts once in positions_failed
    #: ("*" when no symbols were named: an unknown number of positions, counted as one)
    positions_unknown: list[str] = field(default_factory=list)
    #: with an explicit scope: what the run saw open OUTSIDE it and left alone, one dict per item:
    #: ``{"symbol", "kind": "position", "position_side", "position_amt"}`` or ``{"symbol", "kind": "orders"}``
    out_of_scope: list[dict[str, str]] = field(default_factory=list)
    #: how the run found the symbols with open orders: "account" (an account-wide snapshot),
    #: "unavailable" (the order manager has no SupportsOrderSnapshot: positions' symbols plus the
    #: scope only), "failed" (the snapshot could not be read: never COMPLETED), "off" (cancel_orders
    #: is False or the run was skipped)
    order_discovery: str = "account"

    @property
    def success(self) -> bool:
        return self.state in (LiquidationState.COMPLETED, LiquidationState.SKIPPED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "correlation_id": self.correlation_id,
            "reason": self.reason,
            "positions_closed": self.positions_closed,
            "positions_failed": self.positions_failed,
            "orders_cancelled": self.orders_cancelled,
            "total_duration_seconds": self.total_duration_seconds,
            "timed_out": self.timed_out,
            "retries": self.retries,
            "started_at": self.started_at,
            "positions_unknown": list(self.positions_unknown),
            "out_of_scope": [dict(item) for item in self.out_of_scope],
            "order_discovery": self.order_discovery,
            "errors": list(self.errors),
            "symbols": {name: outcome.to_dict() for name, outcome in self.symbols.items()},
        }
