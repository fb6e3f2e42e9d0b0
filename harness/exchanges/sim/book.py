"""``SimBook``: the simulated exchange's whole state (pure, no I/O, thread-safe).

One account on a set of USD-M perpetual markets: mark prices, position mode (one-way / hedge),
positions with Decimal accounting, regular orders (LIMIT rests, MARKET fills at the mark price),
conditional orders in a separate algo book, a fill log and per-symbol dead-man's switches.
Every order rule answers with Binance's error code (``SimBookError``), so the in-memory face and
the HTTP face reject the same requests the same way. Seeding mistakes (the control API) raise
``ValueError`` naming the argument instead.

Both faces call in from different threads (HTTP server, control API, engine threads): every
public method takes one re-entrant lock, and every record handed out is a copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from . import _checks as chk
from . import _margin as mg
from ._algo import AlgoDesk
from ._models import CONDITIONAL_TYPES, AlgoOrder, Fill, Order, PositionState, SimBookError
from ._num import ZERO, floor_to_step, is_multiple, to_decimal
from ._symbols import DEFAULT_SYMBOLS, SymbolSpec

_ENTRY_PRICE_QUANTUM = Decimal("0.00000001")
_FIRST_ORDER_ID = 4_000_000_001
_FIRST_TRADE_ID = 700_000_001
#: big enough for the positions and resting orders test setups seed at 20x; pass a smaller wallet to
#: exercise -2019
DEFAULT_WALLET_BALANCE = "100000"
_MARGIN_TYPES = ("ISOLATED", "CROSSED")


def _fee(value: str | Decimal, name: str) -> Decimal:
    rate = to_decimal(value, name)
    if not ZERO <= rate < Decimal("0.01"):
        raise ValueError(f"{name}={value!r}: expected a commission rate in 0..0.01 such as '0.0004'")
    return rate


class SimBook:
    """The state both simulator faces share. ``symbols``: specs or names of default symbols."""

    def __init__(
        self,
        symbols: Iterable[SymbolSpec | str] | None = None,
        *,
        wallet_balance: str | Decimal = DEFAULT_WALLET_BALANCE,
        clock: Callable[[], float] | None = None,
        maker_fee: str | Decimal = "0",
        taker_fee: str | Decimal = "0",
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock or time.time
        self._specs: dict[str, SymbolSpec] = {}
        defaults = {spec.symbol: spec for spec in DEFAULT_SYMBOLS}
        if isinstance(symbols, (str, bytes)) or (symbols is not None and not isinstance(symbols, Iterable)):
            raise ValueError(f"symbols={symbols!r}: expected a list of SymbolSpec or default symbol names")
        for index, item in enumerate(DEFAULT_SYMBOLS if symbols is None else symbols):
            if isinstance(item, str):
                if item not in defaults:
                    raise ValueError(f"symbols: {item!r} is not a default symbol; allowed: {sorted(defaults)} "
                                     "or a SymbolSpec")
                item = defaults[item]
            if not isinstance(item, SymbolSpec):
                raise ValueError(f"symbols[{index}]={item!r}: expected a SymbolSpec or a default symbol name")
            if item.symbol in self._specs:
                raise ValueError(f"symbols[{index}]: {item.symbol} is listed twice")
            self._specs[item.symbol] = item
        if not self._specs:
            raise ValueError("symbols: empty; give at least one symbol")
        self._marks: dict[str, Decimal] = {name: spec.mark_price for name, spec in self._specs.items()}
        self._positions: dict[tuple[str, str], PositionState] = {}
        self._orders: dict[int, Order] = {}
        # indexes over _orders (lookups by symbol and client id stay O(orders of that key) at 200+ symbols);
        # an order dropped from _orders (a rejected post-only) is skipped by _indexed()
        self._orders_by_symbol: dict[str, list[Order]] = {}
        self._orders_by_cid: dict[str, list[Order]] = {}
        self._fills: list[Fill] = []
        self._countdowns: dict[str, int] = {}
        self._hedge_mode = False
        self._wallet = to_decimal(wallet_balance, "wallet_balance")
        self._maker_fee = _fee(maker_fee, "maker_fee")
        self._taker_fee = _fee(taker_fee, "taker_fee")
        self._next_order_id = _FIRST_ORDER_ID
        self._next_trade_id = _FIRST_TRADE_ID
        self._leverage: dict[str, int] = dict.fromkeys(self._specs, mg.DEFAULT_LEVERAGE)
        self._margin_type: dict[str, str] = dict.fromkeys(self._specs, "CROSSED")
        self._multi_assets = False
        self._paths: dict[str, tuple[int, int, tuple[Decimal, ...]]] = {}
        self._algo = AlgoDesk(self)
        self._observers: list[Callable[[str, Any], None]] = []

    # ----------------------------------------------------------------- observers (the streams' feed)
    def add_observer(self, observer: Callable[[str, Any], None]) -> None:
        """Call ``observer(kind, data)`` on every state change, with the book's lock held.

        Kinds: ``"order"`` (an ``Order`` and its execution type: NEW, CANCELED, EXPIRED, AMENDMENT),
        ``"trade"`` (the ``Order`` after a fill and the ``Fill``), ``"algo"`` (an ``AlgoOrder`` whose
        status changed), ``"mark"`` (a symbol whose mark price moved) and ``"countdown"`` (a symbol whose
        dead-man's switch was armed or disarmed; what runs the switches wakes on it). The objects are the book's
        own: read them at once, never keep or change them, and never block.
        """
        with self._lock:
            self._observers.append(observer)

    def remove_observer(self, observer: Callable[[str, Any], None]) -> None:
        with self._lock:
            if observer in self._observers:
                self._observers.remove(observer)

    @property
    def observed(self) -> bool:
        """True while some observer listens (callers skip building what nobody reads)."""
        return bool(self._observers)

    def notify(self, kind: str, data: Any) -> None:
        """Tell the observers (lock held by the caller); a no-op without any."""
        for observer in self._observers:
            observer(kind, data)

    # ----------------------------------------------------------------- market data
    def now_ms(self) -> int:
        """The exchange clock in milliseconds since the epoch."""
        return int(self._clock() * 1000)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._specs)

    @property
    def lock(self) -> threading.RLock:
        """The book's lock, for callers that need several calls to be atomic."""
        return self._lock

    def spec(self, symbol: str) -> SymbolSpec:
        """The symbol's filters; -1121 when the symbol is not traded here."""
        spec = self._specs.get(symbol) if isinstance(symbol, str) else None
        if spec is None:
            raise SimBookError(-1121, "Invalid symbol.")
        return spec

    def mark_price(self, symbol: str) -> Decimal:
        with self._lock:
            self.spec(symbol)
            return self._marks[symbol]

    def set_mark_price(self, symbol: str, price: str | Decimal) -> list[Fill]:
        """Move the mark price; resting LIMIT orders it crosses fill and algo orders trigger."""
        value = to_decimal(price, "price")
        if value <= 0:
            raise ValueError(f"price={price!r}: must be > 0")
        with self._lock:
            self._require_symbol(symbol)
            self._marks[symbol] = value
            if self._observers:
                self.notify("mark", symbol)
            start = len(self._fills)
            self._fill_crossed_limits(symbol)
            self._algo.trigger(symbol, value)
            return list(self._fills[start:])

    # ----------------------------------------------------------------- account
    @property
    def hedge_mode(self) -> bool:
        return self._hedge_mode

    def set_hedge_mode(self, enabled: bool) -> None:
        """Switch position mode; refused like Binance with open positions (-4068) or orders (-4067)."""
        with self._lock:
            if bool(enabled) == self._hedge_mode:
                raise SimBookError(-4059, "No need to change position side.")
            if any(p.amount for p in self._positions.values()):
                raise SimBookError(-4068, "Position side cannot be changed if there exists position.")
            if self.open_orders() or self.open_algo_orders():
                raise SimBookError(-4067, "Position side cannot be changed if there exists open orders.")
            self._hedge_mode = bool(enabled)
            self._positions.clear()

    @property
    def wallet_balance(self) -> Decimal:
        return self._wallet

    def set_wallet_balance(self, amount: str | Decimal) -> None:
        self._wallet = to_decimal(amount, "amount")

    @property
    def commission_rates(self) -> tuple[Decimal, Decimal]:
        """(maker, taker) commission rates charged on fills."""
        return self._maker_fee, self._taker_fee

    def leverage(self, symbol: str) -> int:
        with self._lock:
            self.spec(symbol)
            return self._leverage[symbol]

    def set_leverage(self, symbol: str, leverage: int | str) -> int:
        """``POST /fapi/v1/leverage``: 1..125 (-4028); -2027 when the open position exceeds the new cap."""
        with self._lock:
            self.spec(symbol)
            value = mg.check_leverage(leverage)
            held = sum((abs(self._leg(symbol, side)["position_amt"]) for side in ("BOTH", "LONG", "SHORT")), ZERO)
            if held * self._marks[symbol] > mg.max_notional(value):
                raise SimBookError(-2027, "Exceeded the maximum allowable position at current leverage.")
            self._leverage[symbol] = value
            return value

    def margin_type(self, symbol: str) -> str:
        """``CROSSED`` or ``ISOLATED``."""
        with self._lock:
            self.spec(symbol)
            return self._margin_type[symbol]

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        """``POST /fapi/v1/marginType`` with Binance's refusals (-4046 unchanged, -4047 orders, -4048 position)."""
        with self._lock:
            self.spec(symbol)
            kind = margin_type.upper() if isinstance(margin_type, str) else ""
            if kind not in _MARGIN_TYPES:
                raise SimBookError(-1130, "Data sent for parameter 'marginType' is not valid.")
            if kind == self._margin_type[symbol]:
                raise SimBookError(-4046, "No need to change margin type.")
            if any(p["position_amt"] for p in self.positions([symbol])):
                raise SimBookError(-4048, "Margin type cannot be changed if there exists position.")
            if self.open_orders(symbol) or self.open_algo_orders(symbol):
                raise SimBookError(-4047, "Margin type cannot be changed if there exists open orders.")
            self._margin_type[symbol] = kind

    @property
    def multi_assets_margin(self) -> bool:
        return self._multi_assets

    def set_multi_assets_margin(self, enabled: bool) -> None:
        """Multi-Assets mode is recorded only (the account holds USDT alone); -4171 when unchanged."""
        with self._lock:
            if bool(enabled) == self._multi_assets:
                raise SimBookError(-4171, "Adjusted Multi-Assets mode is same as current mode.")
            if enabled and "ISOLATED" in self._margin_type.values():
                raise SimBookError(-4168, "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures "
                                          "under isolated-margin mode.")
            self._multi_assets = bool(enabled)

    def margins(self) -> dict[str, Decimal]:
        """The account's totals: wallet, unrealized, position / open-order initial margin, maintenance, available."""
        with self._lock:
            position_im = maint = pnl = ZERO
            for (symbol, side), state in self._positions.items():
                if not state.amount:
                    continue
                leg = self._leg(symbol, side)
                position_im += leg["initial_margin"]
                maint += leg["maint_margin"]
                pnl += leg["unrealized_pnl"]
            order_im = sum((self._order_margin(o) for o in self._orders.values() if o.is_open), ZERO)
            margin_balance = self._wallet + pnl
            available = margin_balance - position_im - order_im
            return {
                "wallet": self._wallet, "unrealized_pnl": pnl, "margin_balance": margin_balance,
                "position_initial_margin": position_im, "open_order_initial_margin": order_im,
                "initial_margin": position_im + order_im, "maint_margin": maint, "available": available,
                "max_withdraw": max(min(self._wallet, available), ZERO),
            }

    def available_balance(self) -> Decimal:
        return self.margins()["available"]

    # ----------------------------------------------------------------- price path (klines, 24 h ticker)
    def set_price_path(self, symbol: str, closes: Iterable[str | Decimal], interval_ms: int = 60_000) -> list[Fill]:
        """A deterministic mark-price history: ``closes[-1]`` is the candle now, earlier ones step back.

        The mark moves to the last close (crossing orders fill). Klines and the 24 h ticker are read
        from this path; before its start the first close holds, without a path the mark is flat.
        """
        if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms < 1000:
            raise ValueError(f"interval_ms={interval_ms!r}: expected whole milliseconds >= 1000")
        values = tuple(to_decimal(c, f"closes[{i}]") for i, c in enumerate(closes))
        if not values or any(v <= 0 for v in values):
            raise ValueError(f"closes={list(closes)!r}: expected at least one price, every one > 0")
        with self._lock:
            self._require_symbol(symbol)
            now = self.now_ms()
            self._paths[symbol] = (now - now % interval_ms, interval_ms, values)
            return self.set_mark_price(symbol, values[-1])

    def path_prices(self, symbol: str, start_ms: int, end_ms: int) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(first, last, high, low) of the mark-price path between two times (inclusive)."""
        with self._lock:
            mark = self.mark_price(symbol)
            path = self._paths.get(symbol)
            if path is None:
                return mark, mark, mark, mark
            anchor, step, closes = path
            last = len(closes) - 1

            def index(t: int) -> int:
                return (t - anchor) // step + last

            def value(i: int) -> Decimal:
                return mark if i >= last else closes[max(i, 0)]

            lo, hi = index(start_ms), index(end_ms)
            seen = [value(lo), value(hi)]
            seen += closes[max(lo, 0):max(min(hi, last), 0)]
            return value(lo), value(hi), max(seen), min(seen)

    def set_position(
        self,
        symbol: str,
        amount: str | Decimal | int,
        position_side: str = "BOTH",
        *,
        entry_price: str | Decimal | None = None,
    ) -> None:
        """Seed a position (signed: negative = short). Hedge mode: LONG >= 0, SHORT <= 0 legs."""
        qty = to_decimal(amount, "amount")
        with self._lock:
            spec = self._require_symbol(symbol)
            if not is_multiple(qty, spec.step_size):
                raise ValueError(f"amount={amount!r}: not a multiple of {symbol} stepSize {spec.step_size}")
            allowed = ("LONG", "SHORT") if self._hedge_mode else ("BOTH",)
            if position_side not in allowed:
                mode = "hedge" if self._hedge_mode else "one-way"
                raise ValueError(f"position_side={position_side!r}: {mode} mode allows {allowed}")
            if (position_side == "LONG" and qty < 0) or (position_side == "SHORT" and qty > 0):
                raise ValueError(f"amount={amount!r}: a {position_side} leg must be "
                                 f"{'>= 0' if position_side == 'LONG' else '<= 0'}")
            entry = self._marks[symbol] if entry_price is None else to_decimal(entry_price, "entry_price")
            self._positions[(symbol, position_side)] = PositionState(
                amount=qty, entry_price=entry if qty else ZERO, update_time=self.now_ms()
            )

    def position_amount(self, symbol: str, position_side: str = "BOTH") -> Decimal:
        with self._lock:
            self._require_symbol(symbol)
            state = self._positions.get((symbol, position_side))
            return state.amount if state else ZERO

    def position_legs(self, symbol: str) -> list[dict[str, Any]]:
        """Every leg of the symbol for the current mode (zero legs included), as plain dicts."""
        with self._lock:
            self._require_symbol(symbol)
            sides = ("BOTH", "LONG", "SHORT") if self._hedge_mode else ("BOTH",)
            return [self._leg(symbol, side) for side in sides]

    def positions(self, symbols: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Nonzero positions: ``symbol``, ``position_amt``, ``position_side``, ``mark_price``, ...

        Unknown symbols are ignored (they hold no position).
        """
        wanted = None if symbols is None else set(symbols)
        with self._lock:
            return [
                self._leg(symbol, side)
                for (symbol, side), state in sorted(self._positions.items())
                if state.amount and (not wanted or symbol in wanted)
            ]

    def unrealized_pnl(self) -> Decimal:
        with self._lock:
            return sum((self._leg(s, side)["unrealized_pnl"] for (s, side) in self._positions), ZERO)

    # ----------------------------------------------------------------- regular orders
    def place_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        quantity: str | Decimal | None = None,
        price: str | Decimal | None = None,
        *,
        reduce_only: bool | None = None,
        position_side: str | None = None,
        client_order_id: str | None = None,
        time_in_force: str | None = None,
        fill_ratio: Decimal | None = None,
        margin_check: bool = True,
    ) -> Order:
        """Place a LIMIT or MARKET order (Binance rules); returns a copy of the order after matching.

        ``reduce_only=None`` means "not sent" (hedge mode refuses the parameter even when false).
        ``fill_ratio`` (0..1, from a partial-fill fault) caps the immediate execution; the rest of a
        MARKET order expires. A close never flips the position: it is capped at the position size.
        An order that opens or adds exposure needs initial margin (-2019, -2027); ``margin_check=False``
        skips that for test seeding.
        """
        with self._lock:
            spec = self.spec(symbol)
            side = chk.check_side(side)
            kind = (order_type or "").upper() if isinstance(order_type, str) else ""
            if not kind:
                raise chk.mandatory("type")
            if kind in CONDITIONAL_TYPES:
                raise SimBookError(-4120, "Order type not supported for this endpoint. Please use the Algo Order "
                                          "API endpoints instead.")
            if kind not in ("LIMIT", "MARKET"):
                raise SimBookError(-1116, "Invalid orderType.")
            pos_side = chk.check_position_side(position_side, self._hedge_mode)
            reduce = chk.check_reduce_only(reduce_only, self._hedge_mode)
            cid = self._new_client_id(client_order_id)
            qty = chk.check_quantity(spec, quantity, market=kind == "MARKET")
            if kind == "MARKET":
                if price not in (None, ""):
                    raise chk.not_required("price")
                limit = ZERO
                tif = "GTC"
            else:
                limit = chk.check_price(spec, price)
                tif = chk.check_time_in_force(time_in_force or "GTC")
            capacity = self.close_capacity(symbol, side, pos_side, reduce)
            if capacity is not None and capacity == 0:
                raise SimBookError(-2022, "ReduceOnly Order is rejected.")
            reference = limit if kind == "LIMIT" else self._marks[symbol]
            if capacity is None and qty * reference < spec.min_notional:
                raise SimBookError(-4164, f"Order's notional must be no smaller than {spec.min_notional} "
                                          "(unless you choose reduce only).")
            if capacity is None and margin_check:
                self._check_margin(symbol, side, pos_side, qty, reference)
            order = self._new_order(spec, cid, side, kind, qty, limit, tif, reduce, pos_side)
            self._match_new(order, capacity, fill_ratio)
            return order.copy()

    def get_order(self, symbol: str, order_id: int | str | None = None,
                  client_order_id: str | None = None) -> Order:
        """An order by id or client id (the latest with that client id); -2013 when unknown."""
        with self._lock:
            self.spec(symbol)
            return self._find(symbol, order_id, client_order_id, missing=-2013).copy()

    def cancel_order(self, symbol: str, order_id: int | str | None = None,
                     client_order_id: str | None = None) -> Order:
        """Cancel one open order; -2011 when it is unknown or no longer open."""
        with self._lock:
            self.spec(symbol)
            order = self._find(symbol, order_id, client_order_id, missing=-2011)
            if not order.is_open:
                raise SimBookError(-2011, "Unknown order sent.")
            self._close_order(order, "CANCELED")
            return order.copy()

    def modify_order(self, symbol: str, side: str, quantity: str | Decimal | None, price: str | Decimal | None,
                     order_id: int | str | None = None, client_order_id: str | None = None) -> Order:
        """``PUT /fapi/v1/order``: new price and quantity for an open LIMIT order (it may then fill).

        -2013 when the order is not open, -5027 when nothing changes; a quantity at or below what
        already executed cancels the order, as Binance does.
        """
        with self._lock:
            spec = self.spec(symbol)
            order = self._find(symbol, order_id, client_order_id, missing=-2013)
            if not order.is_open:
                raise SimBookError(-2013, "Order does not exist.")
            if chk.check_side(side) != order.side:
                raise SimBookError(-1130, "Data sent for parameter 'side' is not valid.")
            qty = chk.check_quantity(spec, quantity, market=False)
            limit = chk.check_price(spec, price)
            if (qty, limit) == (order.orig_qty, order.price):
                raise SimBookError(-5027, "No need to modify the order.")
            if qty <= order.executed_qty:
                self._close_order(order, "CANCELED")
                return order.copy()
            order.orig_qty, order.price, order.update_time = qty, limit, self.now_ms()
            capacity = self.close_capacity(symbol, order.side, order.position_side, order.reduce_only)
            self._match_new(order, capacity, None, "AMENDMENT")
            return order.copy()

    def cancel_all(self, symbol: str) -> int:
        """Cancel every open regular order of the symbol; how many were cancelled."""
        with self._lock:
            self.spec(symbol)
            orders = [o for o in self._indexed(self._orders_by_symbol, symbol) if o.is_open]
            for order in orders:
                self._close_order(order, "CANCELED")
            return len(orders)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        with self._lock:
            if symbol is not None:
                self.spec(symbol)
                return [o.copy() for o in self._indexed(self._orders_by_symbol, symbol) if o.is_open]
            return [o.copy() for o in self._orders.values() if o.is_open]

    def orders(self, symbol: str | None = None) -> list[Order]:
        """Every order ever placed (any status), oldest first."""
        with self._lock:
            return [o.copy() for o in self._orders.values() if symbol in (None, o.symbol)]

    # ----------------------------------------------------------------- algo orders
    def place_algo_order(self, symbol: str, side: str, order_type: str, **kwargs: Any) -> AlgoOrder:
        """A conditional order (STOP_MARKET, TAKE_PROFIT_MARKET, STOP, TAKE_PROFIT, TRAILING_STOP_MARKET).

        Keywords: ``quantity``, ``trigger_price``, ``price``, ``reduce_only``, ``close_position``,
        ``position_side``, ``client_algo_id``, ``time_in_force``, ``working_type``,
        ``callback_rate``, ``activate_price``. -2021 when it would trigger at once.
        """
        with self._lock:
            return self._algo.place(symbol, side, order_type, **kwargs)

    def get_algo_order(self, algo_id: int | str | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        with self._lock:
            return self._algo.find(algo_id, client_algo_id, missing=-2013).copy()

    def cancel_algo_order(self, algo_id: int | str | None = None, client_algo_id: str | None = None) -> AlgoOrder:
        with self._lock:
            return self._algo.cancel(algo_id, client_algo_id)

    def cancel_all_algo(self, symbol: str) -> int:
        """Cancel every open algo order of the symbol; how many were cancelled."""
        with self._lock:
            self.spec(symbol)
            return self._algo.cancel_all(symbol)

    def algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        """Every algo order ever placed (any status), oldest first."""
        with self._lock:
            if symbol is not None:
                self.spec(symbol)
            return self._algo.all_orders(symbol)

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        with self._lock:
            if symbol is not None:
                self.spec(symbol)
            return self._algo.open_orders(symbol)

    # ----------------------------------------------------------------- fills and countdowns
    @property
    def fill_log(self) -> list[Fill]:
        """Every execution so far, oldest first (a copy)."""
        with self._lock:
            return list(self._fills)

    def arm_countdown(self, symbol: str, countdown_ms: int) -> None:
        """Dead-man's switch: cancel the symbol's open orders in ``countdown_ms`` (0 disarms)."""
        with self._lock:
            self.spec(symbol)
            if countdown_ms < 0:
                raise SimBookError(-1130, "Data sent for parameter 'countdownTime' is not valid.")
            if countdown_ms == 0:
                self._countdowns.pop(symbol, None)
            else:
                self._countdowns[symbol] = self.now_ms() + int(countdown_ms)
            if self._observers:
                self.notify("countdown", symbol)

    def next_countdown_deadline(self) -> int | None:
        with self._lock:
            return min(self._countdowns.values(), default=None)

    def run_due_countdowns(self, now_ms: int | None = None) -> dict[str, int]:
        """Fire expired switches: cancel those symbols' open regular orders; symbol -> cancelled."""
        with self._lock:
            now = self.now_ms() if now_ms is None else now_ms
            due = [s for s, deadline in self._countdowns.items() if deadline <= now]
            fired = {}
            for symbol in due:
                del self._countdowns[symbol]
                fired[symbol] = self.cancel_all(symbol)
            return fired

    # ----------------------------------------------------------------- internals (lock held)
    def close_capacity(self, symbol: str, side: str, position_side: str, reduce_only: bool) -> Decimal | None:
        """How much a closing order may execute; ``None`` when the order opens exposure."""
        if position_side == "BOTH":
            if not reduce_only:
                return None
            amount = self.position_amount(symbol, "BOTH")
            if side == "SELL":
                return max(amount, ZERO)
            return max(-amount, ZERO)
        if (side, position_side) == ("SELL", "LONG"):
            return max(self.position_amount(symbol, "LONG"), ZERO)
        if (side, position_side) == ("BUY", "SHORT"):
            return max(-self.position_amount(symbol, "SHORT"), ZERO)
        return None

    def _check_margin(self, symbol: str, side: str, position_side: str, qty: Decimal, price: Decimal) -> None:
        """-2027 / -2019 for an order that opens or adds exposure beyond the cap / the available balance."""
        held = self.position_amount(symbol, position_side)
        opening = mg.opening_quantity(held, side, qty) if position_side == "BOTH" else qty
        if not opening:
            return
        leverage = self._leverage[symbol]
        signed = qty if side == "BUY" else -qty
        after = abs(held + signed) if position_side == "BOTH" else abs(held) + qty
        if after * self._marks[symbol] > mg.max_notional(leverage):
            raise SimBookError(-2027, "Exceeded the maximum allowable position at current leverage.")
        if opening * price / leverage > self.available_balance():
            raise SimBookError(-2019, "Margin is insufficient.")

    def _order_margin(self, order: Order) -> Decimal:
        if order.type != "LIMIT" or order.reduce_only:
            return ZERO
        if (order.side, order.position_side) in (("SELL", "LONG"), ("BUY", "SHORT")):
            return ZERO
        return (order.orig_qty - order.executed_qty) * order.price / self._leverage[order.symbol]

    def _require_symbol(self, symbol: str) -> SymbolSpec:
        if symbol not in self._specs:
            raise ValueError(f"symbol={symbol!r}: not traded here; allowed: {sorted(self._specs)}")
        return self._specs[symbol]

    def _leg(self, symbol: str, side: str) -> dict[str, Any]:
        state = self._positions.get((symbol, side)) or PositionState()
        mark = self._marks[symbol]
        leverage = self._leverage[symbol]
        notional = state.amount * mark
        return {
            "symbol": symbol,
            "position_amt": state.amount,
            "position_side": side,
            "mark_price": mark,
            "entry_price": state.entry_price,
            "unrealized_pnl": (mark - state.entry_price) * state.amount if state.amount else ZERO,
            "update_time": state.update_time,
            "notional": notional,
            "leverage": leverage,
            "isolated": self._margin_type[symbol] == "ISOLATED",
            "initial_margin": abs(notional) / leverage,
            "maint_margin": mg.maint_margin(notional),
            "max_notional": mg.max_notional(leverage),
            "realized_pnl": state.realized_pnl,
        }

    def _new_client_id(self, client_order_id: str | None) -> str:
        if client_order_id in (None, ""):
            return f"sim-{self._next_order_id}"
        cid = chk.check_client_id(client_order_id, "newClientOrderId")
        if any(o.is_open for o in self._indexed(self._orders_by_cid, cid)):
            raise SimBookError(-4116, "ClientOrderId is duplicated.")
        return cid

    def _new_order(self, spec: SymbolSpec, cid: str, side: str, kind: str, qty: Decimal, price: Decimal,
                   tif: str, reduce: bool, pos_side: str) -> Order:
        now = self.now_ms()
        order = Order(
            order_id=self._next_order_id, client_order_id=cid, symbol=spec.symbol, side=side, type=kind,
            orig_qty=qty, price=price, time_in_force=tif, reduce_only=reduce, position_side=pos_side,
            status="NEW", time=now, update_time=now, qty_step=spec.step_size, price_step=spec.tick_size,
        )
        self._next_order_id += 1
        self._orders[order.order_id] = order
        self._orders_by_symbol.setdefault(order.symbol, []).append(order)
        self._orders_by_cid.setdefault(cid, []).append(order)
        return order

    def _match_new(self, order: Order, capacity: Decimal | None, fill_ratio: Decimal | None,
                   execution: str = "NEW") -> None:
        spec = self._specs[order.symbol]
        mark = self._marks[order.symbol]
        marketable = order.type == "MARKET" or (order.price >= mark if order.side == "BUY" else order.price <= mark)
        if marketable and order.time_in_force == "GTX":
            del self._orders[order.order_id]  # Binance does not record it
            raise SimBookError(-5022, "Due to the order could not be executed as maker, the Post Only order will "
                                      "be rejected. The order will not be recorded in the order book")
        if self._observers:
            self.notify("order", (order, execution))
        if not marketable:
            if order.time_in_force in ("IOC", "FOK"):
                self._close_order(order, "EXPIRED")
            return
        qty = order.orig_qty if capacity is None else min(order.orig_qty, capacity)
        if fill_ratio is not None:
            qty = floor_to_step(qty * fill_ratio, spec.step_size)
        if order.time_in_force == "FOK" and qty < order.orig_qty:
            self._close_order(order, "EXPIRED")
            return
        if qty > 0:
            self._apply_fill(order, qty, mark)
        if order.executed_qty == order.orig_qty:
            self._close_order(order, "FILLED")
        elif order.type == "MARKET" or order.time_in_force == "IOC" or capacity is not None:
            self._close_order(order, "EXPIRED")
        else:
            order.status = "PARTIALLY_FILLED"

    def _fill_crossed_limits(self, symbol: str) -> None:
        mark = self._marks[symbol]
        for order in [o for o in self._indexed(self._orders_by_symbol, symbol) if o.is_open and o.type == "LIMIT"]:
            if not (order.price >= mark if order.side == "BUY" else order.price <= mark):
                continue
            remaining = order.orig_qty - order.executed_qty
            capacity = self.close_capacity(symbol, order.side, order.position_side, order.reduce_only)
            qty = remaining if capacity is None else min(remaining, capacity)
            if qty > 0:
                self._apply_fill(order, qty, order.price, maker=True)
            self._close_order(order, "FILLED" if order.executed_qty == order.orig_qty else "EXPIRED")

    def _apply_fill(self, order: Order, qty: Decimal, price: Decimal, *, maker: bool = False) -> None:
        state = self._positions.setdefault((order.symbol, order.position_side), PositionState())
        signed = qty if order.side == "BUY" else -qty
        old, new = state.amount, state.amount + signed
        realized = ZERO
        if old == 0 or (old > 0) == (signed > 0):
            state.entry_price = ((abs(old) * state.entry_price + qty * price) / abs(new)).quantize(_ENTRY_PRICE_QUANTUM)
        else:
            closed = min(qty, abs(old))
            realized = (price - state.entry_price) * closed * (1 if old > 0 else -1)
            if new == 0:
                state.entry_price = ZERO
            elif (new > 0) != (old > 0):
                state.entry_price = price
        now = self.now_ms()
        state.amount, state.update_time = new, now
        state.realized_pnl += realized
        commission = qty * price * (self._maker_fee if maker else self._taker_fee)
        self._wallet += realized - commission
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.update_time = now
        fill = Fill(
            symbol=order.symbol, side=order.side, qty=qty, price=price, reduce_only=order.reduce_only,
            position_side=order.position_side, client_order_id=order.client_order_id, order_id=order.order_id,
            time=now, realized_pnl=realized, trade_id=self._next_trade_id, commission=commission, maker=maker,
        )
        self._fills.append(fill)
        self._next_trade_id += 1
        if self._observers:
            self.notify("trade", (order, fill))

    def _close_order(self, order: Order, status: str) -> None:
        order.status = status
        order.update_time = self.now_ms()
        if self._observers and status != "FILLED":  # a fill's own event already says FILLED
            self.notify("order", (order, status))

    def _find(self, symbol: str, order_id: int | str | None, client_order_id: str | None, *, missing: int) -> Order:
        if order_id in (None, "") and client_order_id in (None, ""):
            raise SimBookError(-1102, "Either orderId or origClientOrderId must be sent.")
        found: Order | None = None
        if order_id not in (None, ""):
            try:
                found = self._orders.get(int(order_id))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise chk.mandatory("orderId") from None
        else:
            matches = self._indexed(self._orders_by_cid, client_order_id)  # type: ignore[arg-type]
            found = matches[-1] if matches else None
        if found is None or found.symbol != symbol:
            raise SimBookError(missing, "Order does not exist." if missing == -2013 else "Unknown order sent.")
        return found

    def _indexed(self, index: dict[str, list[Order]], key: str) -> list[Order]:
        """The orders under ``key`` in ``index`` that are still recorded, oldest first."""
        orders = self._orders
        return [o for o in index.get(key, ()) if orders.get(o.order_id) is o]


__all__ = ["AlgoOrder", "Fill", "Order", "SimBook", "SimBookError"]
