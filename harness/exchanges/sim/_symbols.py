"""Symbol specifications: the exchange filters and starting mark price of each simulated market.

The defaults copy the shape (and roughly the values) of Binance USD-M ``exchangeInfo``: LOT_SIZE
bounds a LIMIT order, MARKET_LOT_SIZE (smaller ``maxQty``) bounds one MARKET order, MIN_NOTIONAL's
``notional`` does not apply to reduce-only orders, PRICE_FILTER's ``tickSize`` bounds prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._num import decimals_of, fmt, is_multiple, to_decimal


@dataclass(frozen=True)
class SymbolSpec:
    """One market: its filters and the mark price it starts with."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    mark_price: Decimal
    min_price: Decimal = Decimal("0.0001")
    max_price: Decimal = Decimal("10000000")
    base_asset: str = ""
    quote_asset: str = "USDT"

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol or not self.symbol.isalnum() \
                or self.symbol.upper() != self.symbol or not self.symbol.isascii():
            raise ValueError(f"symbol={self.symbol!r}: expected upper-case letters and digits such as 'BTCUSDT'")
        for name in ("tick_size", "step_size", "min_qty", "max_qty", "market_max_qty", "min_notional", "mark_price",
                     "min_price", "max_price"):
            value = to_decimal(getattr(self, name), f"{self.symbol}.{name}")
            if value <= 0:
                raise ValueError(f"{self.symbol}.{name}={value}: must be > 0")
            object.__setattr__(self, name, value)
        for name in ("base_asset", "quote_asset"):
            value = getattr(self, name)
            if not isinstance(value, str) or (value and not (value.isalnum() and value.isascii())):
                raise ValueError(f"{self.symbol}.{name}={value!r}: expected an asset name such as 'USDT'")
        if self.quote_asset != "USDT":
            raise ValueError(f"{self.symbol}.quote_asset={self.quote_asset!r}: the simulator's account holds USDT "
                             "only; allowed: 'USDT'")
        if self.min_price > self.max_price:
            raise ValueError(f"{self.symbol}: need min_price <= max_price, got {self.min_price} / {self.max_price}")
        if not is_multiple(self.min_qty, self.step_size):
            raise ValueError(f"{self.symbol}.min_qty={self.min_qty}: not a multiple of step_size {self.step_size}")
        if self.market_max_qty > self.max_qty or self.min_qty > self.market_max_qty:
            raise ValueError(
                f"{self.symbol}: need min_qty <= market_max_qty <= max_qty, got "
                f"{self.min_qty} / {self.market_max_qty} / {self.max_qty}"
            )
        if not self.base_asset:
            object.__setattr__(self, "base_asset", self.symbol.removesuffix(self.quote_asset) or self.symbol)

    @property
    def price_precision(self) -> int:
        """Decimals of the tick as written (``0.10`` -> 2, as Binance's BTCUSDT ``pricePrecision``)."""
        exponent = self.tick_size.as_tuple().exponent
        return -exponent if isinstance(exponent, int) and exponent < 0 else 0

    def exchange_info(self) -> dict[str, Any]:
        """This symbol as one entry of ``GET /fapi/v1/exchangeInfo`` ``symbols``."""
        return {
            "symbol": self.symbol,
            "pair": self.symbol,
            "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000,
            "onboardDate": 1569398400000,
            "status": "TRADING",
            "baseAsset": self.base_asset,
            "quoteAsset": self.quote_asset,
            "marginAsset": self.quote_asset,
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "pricePrecision": self.price_precision,
            "quantityPrecision": decimals_of(self.step_size),
            "baseAssetPrecision": 8,
            "quotePrecision": 8,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "settlePlan": 0,
            "triggerProtect": "0.0500",
            "liquidationFee": "0.012500",
            "marketTakeBound": "0.05",
            "maxMoveOrderLimit": 10000,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": fmt(self.min_price),
                    "maxPrice": fmt(self.max_price),
                    "tickSize": fmt(self.tick_size),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": fmt(self.min_qty),
                    "maxQty": fmt(self.max_qty),
                    "stepSize": fmt(self.step_size),
                },
                {
                    "filterType": "MARKET_LOT_SIZE",
                    "minQty": fmt(self.min_qty),
                    "maxQty": fmt(self.market_max_qty),
                    "stepSize": fmt(self.step_size),
                },
                {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                {"filterType": "MIN_NOTIONAL", "notional": fmt(self.min_notional)},
                {
                    "filterType": "PERCENT_PRICE",
                    "multiplierUp": "1.0500",
                    "multiplierDown": "0.9500",
                    "multiplierDecimal": "4",
                },
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                           "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }


def _spec(symbol: str, tick: str, step: str, max_qty: str, market_max: str, notional: str, mark: str) -> SymbolSpec:
    return SymbolSpec(
        symbol=symbol,
        tick_size=Decimal(tick),
        step_size=Decimal(step),
        min_qty=Decimal(step),
        max_qty=Decimal(max_qty),
        market_max_qty=Decimal(market_max),
        min_notional=Decimal(notional),
        mark_price=Decimal(mark),
        min_price=Decimal(tick),
    )


#: a dozen real USD-M perpetuals with filters close to Binance's
DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec("BTCUSDT", "0.10", "0.001", "1000", "120", "100", "64000.10"),
    _spec("ETHUSDT", "0.01", "0.001", "10000", "2000", "20", "3200.00"),
    _spec("BNBUSDT", "0.010", "0.01", "100000", "2000", "5", "600.000"),
    _spec("SOLUSDT", "0.0100", "1", "1000000", "5000", "5", "150.0000"),
    _spec("XRPUSDT", "0.0001", "0.1", "10000000", "2000000", "5", "0.5500"),
    _spec("DOGEUSDT", "0.000010", "1", "50000000", "30000000", "5", "0.150000"),
    _spec("ADAUSDT", "0.00010", "1", "10000000", "1000000", "5", "0.45000"),
    _spec("LTCUSDT", "0.01", "0.001", "100000", "5000", "20", "80.00"),
    _spec("LINKUSDT", "0.001", "0.01", "100000", "20000", "20", "14.000"),
    _spec("AVAXUSDT", "0.0010", "1", "100000", "10000", "5", "30.0000"),
    _spec("DOTUSDT", "0.001", "0.1", "1000000", "80000", "5", "6.000"),
    _spec("TRXUSDT", "0.00001", "1", "50000000", "5000000", "5", "0.12000"),
)
