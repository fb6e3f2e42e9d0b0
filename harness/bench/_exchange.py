"""The benchmark's exchange: synthetic accounts, and one embedded simulator served in a child process
(``subprocess``) or from a thread of this process (``in-process``)."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from harness.exchanges.sim import BinanceSimulator, FaultPlan, SimBook, SymbolSpec

EXCHANGE_START_TIMEOUT_SECONDS = 60.0


# -- accounts ------------------------------------------------------------------------------------
def synthetic_specs(count: int) -> list[SymbolSpec]:
    """``count`` USD-M-like symbols (``B000USDT``...): step 0.001, MARKET_LOT_SIZE maxQty 100."""
    return [
        SymbolSpec(
            symbol=f"B{index:03d}USDT", tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
            min_qty=Decimal("0.001"), max_qty=Decimal("10000"), market_max_qty=Decimal("100"),
            min_notional=Decimal("5"), mark_price=Decimal(100 + index), min_price=Decimal("0.01"),
        )
        for index in range(count)
    ]


def seed_account(book: SimBook, specs: Sequence[SymbolSpec]) -> int:
    """A position and two open orders per symbol; every fourth position is 1.5x MARKET maxQty.
    Returns how many orders were placed."""
    for index, spec in enumerate(specs):
        size = spec.market_max_qty * Decimal("1.5") if index % 4 == 0 else Decimal(index % 7 + 1) / 2
        long = index % 2 == 0
        book.set_position(spec.symbol, size if long else -size)
        mark = spec.mark_price
        book.place_order(spec.symbol, "BUY" if long else "SELL", "LIMIT", "1",
                         (mark * Decimal("0.8") if long else mark * Decimal("1.2")).quantize(spec.tick_size),
                         time_in_force="GTC")
        trigger = (mark * Decimal("0.7") if long else mark * Decimal("1.3")).quantize(spec.tick_size)
        book.place_algo_order(spec.symbol, "SELL" if long else "BUY", "STOP_MARKET", trigger_price=trigger,
                              close_position=True)
    return 2 * len(specs)


# -- the exchange, in this process or a child -----------------------------------------------------
class _Exchange:
    """One benchmark exchange at a time: open (fresh simulator and account), mark, measure, close."""

    def __init__(self) -> None:
        self.sim: BinanceSimulator | None = None
        self.specs: list[SymbolSpec] = []
        self._mark: tuple[int, float, int, int] = (0, 0.0, 0, 0)

    def open(self, symbols: int, rtt: float, rate_limits: dict[str, int] | None = None) -> dict[str, Any]:
        self.close()
        self.specs = synthetic_specs(symbols)
        faults = FaultPlan()
        if rtt > 0:
            faults.latency(rtt)  # every endpoint, every symbol
        self.sim = BinanceSimulator(SimBook(self.specs), faults, rate_limits=rate_limits).start()
        self.seed()
        return {"base_url": self.sim.base_url, "api_key": self.sim.api_key, "api_secret": self.sim.api_secret,
                "symbols": [s.symbol for s in self.specs]}

    def seed(self) -> int:
        assert self.sim is not None
        return seed_account(self.sim.book, self.specs)

    def mark(self) -> None:
        """Start counting; CPU is this process's (in-process mode: the bot's and the exchange's together)."""
        assert self.sim is not None
        sim = self.sim
        self._mark = (len(sim.request_log), time.process_time(), sim.rate_limited_count, sim.banned_count)

    def measure(self) -> dict[str, Any]:
        """Requests, 429/418 and exchange CPU since ``mark()``; whether the account is flat."""
        assert self.sim is not None
        sim, (requests, cpu, limited, banned) = self.sim, self._mark
        book = sim.book
        return {
            "requests": len(sim.request_log) - requests,
            "http_429": sim.rate_limited_count - limited,
            "http_418": sim.banned_count - banned,
            "exchange_cpu_seconds": time.process_time() - cpu,
            "flat": not book.positions() and not book.open_orders() and not book.open_algo_orders(),
        }

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


def _serve_exchange(connection: Any) -> None:
    """The child process: run ``_Exchange`` commands received over ``connection`` until "quit"."""
    logging.disable(logging.WARNING)
    exchange = _Exchange()
    try:
        while True:
            name, kwargs = connection.recv()
            if name == "quit":
                return
            try:
                connection.send(("ok", getattr(exchange, name)(**kwargs)))
            except Exception as exc:  # reported to the parent, which raises it
                connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        exchange.close()


class ExchangeHost:
    """``_Exchange`` commands, served in a child process (``subprocess``) or here (``in-process``)."""

    def __init__(self, mode: str = "subprocess") -> None:
        if mode not in ("subprocess", "in-process"):
            raise ValueError(f"mode={mode!r}: expected 'subprocess' or 'in-process'")
        self.mode = mode
        self._local: _Exchange | None = None
        self._process: Any = None
        self._connection: Any = None

    def __enter__(self) -> ExchangeHost:
        if self.mode == "in-process":
            self._local = _Exchange()
            return self
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and loops
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve_exchange, args=(child,), name="bench-exchange", daemon=True)
        self._process.start()
        child.close()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._local is not None:
            self._local.close()
        if self._process is not None:
            try:
                self._connection.send(("quit", {}))
            except OSError:
                pass
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)

    def call(self, name: str, **kwargs: Any) -> Any:
        if self._local is not None:
            return getattr(self._local, name)(**kwargs)
        self._connection.send((name, kwargs))
        if not self._connection.poll(EXCHANGE_START_TIMEOUT_SECONDS):
            raise RuntimeError(f"benchmark exchange: no answer to {name!r} within {EXCHANGE_START_TIMEOUT_SECONDS} s")
        status, value = self._connection.recv()
        if status != "ok":
            raise RuntimeError(f"benchmark exchange: {name} failed: {value}")
        return value
