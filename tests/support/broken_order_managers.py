"""Deliberately broken order managers: each breaks ONE rule of the contract the conformance kit checks.

Built on the ccxt example (``examples/ccxt_bot/om.py``, which passes the kit), so each differs from a
conforming order manager by exactly the broken behaviour. Factories have the kit's signature and are
given to it as ``tests.support.broken_order_managers:<name>``.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from examples.ccxt_bot.om import CcxtOrderManager
from harness.core.errors import ExchangeError


class NoReduceOnly(CcxtOrderManager):
    """Closes with plain MARKET orders: no reduceOnly, no positionSide."""

    @staticmethod
    def _close_flags(side: str, hedge: bool) -> dict[str, str]:
        return {}


class MalformedAsFlat(CcxtOrderManager):
    """Reads an answer it cannot parse as "no positions"."""

    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        try:
            return await super().get_all_positions(symbols)
        except ExchangeError:
            return []


class SyncPositions(CcxtOrderManager):
    """``get_all_positions`` is synchronous (the seed's method is async)."""

    def get_all_positions(self, symbols: list[str]) -> list[dict]:  # type: ignore[override]
        return []


class RegularCancelOnly(CcxtOrderManager):
    """Cancels regular orders only, leaving conditional (algo) orders working."""

    def cancel_all_orders(self, symbol: str) -> int:
        regular = self._call_sync("fapiPrivateGetOpenOrders", {"symbol": symbol}, symbol)
        self._call_sync("fapiPrivateDeleteAllOpenOrders", {"symbol": symbol}, symbol)
        return len(regular)


class RetriesEverything(CcxtOrderManager):
    """Resends a rejected close three times, whatever the rejection."""

    async def _place(self, params: dict[str, Any], symbol: str) -> dict:
        for attempt in range(3):
            try:
                return await super()._place({**params, "newClientOrderId": self._client_id()}, symbol)
            except ExchangeError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class NoSplit(CcxtOrderManager):
    """Sends a close as one order whatever its size (ignores MARKET_LOT_SIZE maxQty)."""

    async def _symbol_rules(self, symbol: str) -> tuple[Decimal, Decimal]:
        step, _ = await super()._symbol_rules(symbol)
        return step, Decimal("1000000")


class IgnoresDeadline(CcxtOrderManager):
    """Waits for every answer as long as it takes (no bound from the run's deadline)."""

    async def _call(self, method: str, params: dict[str, Any], *, placing: bool = False,
                    symbol: str | None = None) -> Any:
        self.exchange.timeout = 60_000
        return await asyncio.wait_for(getattr(self.exchange, method)(params), 60)


def _factory(cls: type[CcxtOrderManager]) -> Any:
    def factory(exchange_url: str, api_key: str, api_secret: str) -> CcxtOrderManager:
        return cls(exchange_url, api_key, api_secret)
    factory.__name__ = f"{cls.__name__.lower()}_factory"
    return factory


no_reduce_only = _factory(NoReduceOnly)
malformed_as_flat = _factory(MalformedAsFlat)
sync_positions = _factory(SyncPositions)
regular_cancel_only = _factory(RegularCancelOnly)
retries_everything = _factory(RetriesEverything)
no_split = _factory(NoSplit)
ignores_deadline = _factory(IgnoresDeadline)
