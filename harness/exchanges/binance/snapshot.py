"""What is open on an account, read without changing anything: for a dry run and for the listing of
what a scoped liquidation leaves alone (``liquidation-harness liquidate --dry-run``).

``read_account`` sends only GETs: positionRisk and the position mode (through
``get_all_positions``), ``openOrders`` and ``openAlgoOrders`` without a symbol (account-wide).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from harness.core.errors import RetryableExchangeError
from harness.exchanges.binance.manager import BinanceFuturesOrderManager


@dataclass(frozen=True)
class OpenOrder:
    symbol: str
    kind: str  # "regular" | "algo"
    order_id: str
    side: str
    type: str
    quantity: str
    price: str

    def to_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "kind": self.kind, "order_id": self.order_id, "side": self.side,
                "type": self.type, "quantity": self.quantity, "price": self.price}


@dataclass(frozen=True)
class OpenPosition:
    symbol: str
    position_side: str
    amount: Decimal

    @property
    def close_side(self) -> str:
        return "SELL" if self.amount > 0 else "BUY"

    def to_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "position_side": self.position_side, "amount": str(self.amount),
                "close_side": self.close_side, "close_quantity": str(abs(self.amount))}


@dataclass
class AccountSnapshot:
    positions: list[OpenPosition] = field(default_factory=list)
    orders: list[OpenOrder] = field(default_factory=list)

    @property
    def flat(self) -> bool:
        return not self.positions and not self.orders

    def split(self, symbols: list[str] | None) -> tuple[AccountSnapshot, AccountSnapshot]:
        """(in scope, out of scope) for a liquidation of ``symbols`` (None or empty: everything)."""
        if not symbols:
            return self, AccountSnapshot()
        wanted = set(symbols)
        inside = AccountSnapshot([p for p in self.positions if p.symbol in wanted], [o for o in self.orders if o.symbol in wanted])
        outside = AccountSnapshot([p for p in self.positions if p.symbol not in wanted],
                                  [o for o in self.orders if o.symbol not in wanted])
        return inside, outside

    def to_dict(self) -> dict[str, Any]:
        return {"positions": [p.to_dict() for p in self.positions], "orders": [o.to_dict() for o in self.orders]}


def _text(order: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = order.get(name)
        if value not in (None, ""):
            return str(value)
    return ""


def _orders(reply: Any, kind: str) -> list[OpenOrder]:
    rows = reply if isinstance(reply, list) else (reply.get("orders") if isinstance(reply, Mapping) else None)
    if not isinstance(rows, list):
        raise RetryableExchangeError(f"open {kind} orders: unexpected reply {reply!r:.200}")
    found = []
    for row in rows:
        if not isinstance(row, Mapping) or not isinstance(row.get("symbol"), str):
            raise RetryableExchangeError(f"open {kind} orders: an order without a symbol: {row!r:.200}")
        closes = str(row.get("closePosition", "")).lower() == "true"
        prices = ("triggerPrice", "stopPrice", "price") if kind == "algo" else ("price", "stopPrice")
        found.append(OpenOrder(
            symbol=row["symbol"], kind=kind, order_id=_text(row, "orderId", "algoId"), side=_text(row, "side"),
            type=_text(row, "type", "orderType", "algoType"),
            quantity="close-position" if closes else _text(row, "origQty", "quantity") or "-",
            price=_text(row, *prices) or "-",
        ))
    return found


async def read_account(manager: BinanceFuturesOrderManager) -> AccountSnapshot:
    """Every open position and open (regular and algo) order on the account; GETs only."""
    session = manager._session  # same package: the adapter's signed session and rate limiter
    positions, regular, algo = await asyncio.gather(
        manager.get_all_positions([]),
        session.call("futures_get_open_orders", idempotent=True),
        session.call("futures_get_open_algo_orders", idempotent=True),
    )
    return AccountSnapshot(
        positions=sorted(
            (OpenPosition(str(p["symbol"]), str(p.get("position_side", "BOTH")), Decimal(str(p["position_amt"]))) for p in positions),
            key=lambda p: (p.symbol, p.position_side),
        ),
        orders=sorted(_orders(regular, "regular") + _orders(algo, "algo"), key=lambda o: (o.symbol, o.kind, o.order_id)),
    )


__all__ = ["AccountSnapshot", "OpenOrder", "OpenPosition", "read_account"]
