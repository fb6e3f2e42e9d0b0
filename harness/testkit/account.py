"""ExchangeAccount: scenario setup and verification through the exchange's own API.

The same code drives the embedded exchange and Binance futures testnet, through the real
python-binance client: open small positions, rest limit orders far from the market, read what is
open, and flatten afterwards. It refuses production outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any

from binance.client import Client

from harness.core.errors import ConfigError
from harness.exchanges.target import Target, target_for_url

#: notional of a test position, as a multiple of the symbol's MIN_NOTIONAL
NOTIONAL_MARGIN = Decimal("1.5")
#: resting limit orders are placed this far from the mark price (BUY below, SELL above)
FAR_FROM_MARKET = Decimal("0.2")


@dataclass(frozen=True)
class SymbolFilters:
    step: Decimal
    min_qty: Decimal
    tick: Decimal
    min_notional: Decimal


class ExchangeAccount:
    """A python-binance ``Client`` pointed at ``target`` (or ``base_url``, an exchange root: shorthand
    for ``target_for_url(base_url)``); never production."""

    def __init__(self, api_key: str, api_secret: str, *, target: Target | None = None, base_url: str | None = None,
                 timeout: float = 10.0) -> None:
        if (target is None) == (base_url is None):
            raise ConfigError("base_url", base_url, "give either the embedded exchange's URL or a target, not both or neither")
        target = target if target is not None else target_for_url(base_url, field="base_url")
        if target.is_production:
            raise ConfigError("base_url", target.root_url, "scenarios never place orders on Binance production")
        self.target = target
        self.client = Client(api_key, api_secret, ping=False, requests_params={"timeout": timeout})
        self.client.FUTURES_URL = target.futures_url
        self._filters: dict[str, SymbolFilters] = {}

    def close(self) -> None:
        self.client.close_connection()

    # -- market facts -----------------------------------------------------------------------
    def filters(self, symbol: str) -> SymbolFilters:
        if not self._filters:
            for entry in self.client.futures_exchange_info()["symbols"]:
                found = {f["filterType"]: f for f in entry.get("filters", [])}
                self._filters[entry["symbol"]] = SymbolFilters(
                    step=Decimal(found["LOT_SIZE"]["stepSize"]),
                    min_qty=Decimal(found["LOT_SIZE"]["minQty"]),
                    tick=Decimal(found["PRICE_FILTER"]["tickSize"]),
                    min_notional=Decimal(found.get("MIN_NOTIONAL", {}).get("notional", "5")),
                )
        if symbol not in self._filters:
            raise ConfigError("symbol", symbol, f"not listed by the exchange; known: {', '.join(sorted(self._filters))}")
        return self._filters[symbol]

    def mark_price(self, symbol: str) -> Decimal:
        rows = self.client.futures_position_information(symbol=symbol, version=2)
        for row in rows:
            if row.get("symbol") == symbol and Decimal(str(row.get("markPrice", "0"))) > 0:
                return Decimal(str(row["markPrice"]))
        raise RuntimeError(f"no mark price for {symbol}")

    def small_quantity(self, symbol: str) -> Decimal:
        """The smallest step-aligned quantity whose notional clears MIN_NOTIONAL with a margin."""
        spec = self.filters(symbol)
        wanted = spec.min_notional * NOTIONAL_MARGIN / self.mark_price(symbol)
        steps = (wanted / spec.step).to_integral_value(rounding=ROUND_CEILING)
        return max(spec.min_qty, steps * spec.step)

    # -- setup ------------------------------------------------------------------------------
    def open_position(self, symbol: str, side: str, quantity: Decimal | None = None) -> dict[str, Any]:
        qty = quantity if quantity is not None else self.small_quantity(symbol)
        return self.client.futures_create_order(
            symbol=symbol, side=side, type="MARKET", quantity=format(qty, "f"), newOrderRespType="RESULT"
        )

    def place_resting_limit(self, symbol: str, side: str) -> dict[str, Any]:
        spec = self.filters(symbol)
        mark = self.mark_price(symbol)
        factor = (1 - FAR_FROM_MARKET) if side == "BUY" else (1 + FAR_FROM_MARKET)
        price = (mark * factor / spec.tick).to_integral_value(rounding=ROUND_DOWN) * spec.tick
        qty = self.small_quantity(symbol)
        if price * qty < spec.min_notional * NOTIONAL_MARGIN:
            qty = ((spec.min_notional * NOTIONAL_MARGIN / price) / spec.step).to_integral_value(rounding=ROUND_CEILING) * spec.step
        return self.client.futures_create_order(
            symbol=symbol, side=side, type="LIMIT", timeInForce="GTC", quantity=str(qty), price=str(price)
        )

    # -- verification -----------------------------------------------------------------------
    def positions(self, symbols: list[str]) -> dict[str, Decimal]:
        """Nonzero positions on ``symbols`` as {symbol or symbol:side: signed amount}."""
        open_positions: dict[str, Decimal] = {}
        for row in self.client.futures_position_information():
            amount = Decimal(str(row.get("positionAmt", "0")))
            if row.get("symbol") in symbols and amount != 0:
                side = row.get("positionSide", "BOTH")
                open_positions[row["symbol"] if side == "BOTH" else f"{row['symbol']}:{side}"] = amount
        return open_positions

    def open_orders(self, symbols: list[str]) -> list[dict[str, Any]]:
        """Working regular and algo (conditional) orders on ``symbols``."""
        found: list[dict[str, Any]] = []
        for symbol in symbols:
            found.extend(self.client.futures_get_open_orders(symbol=symbol))
            algo = self.client.futures_get_open_algo_orders(symbol=symbol)
            found.extend(algo.get("orders", algo) if isinstance(algo, dict) else algo)
        return found

    # -- teardown ---------------------------------------------------------------------------
    def flatten(self, symbols: list[str]) -> None:
        """Cancel every order and close every position on ``symbols`` (best effort, for cleanup)."""
        for symbol in symbols:
            for conditional in (False, True):
                try:
                    self.client.futures_cancel_all_open_orders(symbol=symbol, conditional=conditional)
                except Exception:  # nothing to cancel on that book is fine here
                    pass
        hedge = bool(self.client.futures_get_position_mode().get("dualSidePosition"))
        for key, amount in self.positions(symbols).items():
            symbol, _, position_side = key.partition(":")
            params: dict[str, Any] = {"symbol": symbol, "type": "MARKET", "quantity": str(abs(amount)),
                                      "side": "SELL" if amount > 0 else "BUY"}
            if hedge:
                params["positionSide"] = position_side or ("LONG" if amount > 0 else "SHORT")
            else:
                params["reduceOnly"] = "true"
            self.client.futures_create_order(**params)
