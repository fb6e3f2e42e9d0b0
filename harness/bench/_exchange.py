"""The benchmark's exchange: synthetic accounts, and one embedded simulator served in a child process
(``subprocess``) or from a thread of this process (``in-process``)."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import logging
import multiprocessing
import pstats
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
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

    def __init__(self, *, own_process: bool = False) -> None:
        self.own_process = own_process
        self.sim: BinanceSimulator | None = None
        self.specs: list[SymbolSpec] = []
        self._mark: tuple[int, float, int, int] = (0, 0.0, 0, 0)
        self._profiler: cProfile.Profile | None = None

    def open(self, symbols: int, rtt: float, rate_limits: dict[str, int] | None = None) -> dict[str, Any]:
        self.close()
        self.specs = synthetic_specs(symbols)
        faults = FaultPlan()
        if rtt > 0:
            faults.latency(rtt)  # every endpoint, every symbol
        self.sim = BinanceSimulator(SimBook(self.specs), faults, rate_limits=rate_limits).start()
        self.seed()
        if self.own_process:  # a fair exchange has no collector pauses of ours (one run in five had ~120 ms)
            gc.collect()
            gc.freeze()
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

    def profile_start(self) -> None:
        """cProfile the simulator's serving thread (where every request is handled) until ``profile_stop``."""
        assert self.sim is not None
        self._profiler = cProfile.Profile()
        self.sim.call_in_loop(self._profiler.enable)

    def profile_stop(self, top: int = 25) -> dict[str, Any]:
        """The simulator's profiled CPU: total and the ``top`` functions by own time (ms)."""
        assert self.sim is not None and self._profiler is not None
        profiler, self._profiler = self._profiler, None
        self.sim.call_in_loop(profiler.disable)
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        rows = sorted(((entry[2], entry[3], entry[1], f"{Path(name).name}:{line}({function})")
                       for (name, line, function), entry in stats.items()), reverse=True)
        return {"profiled_cpu_ms": round(sum(row[0] for row in rows) * 1000, 2),
                "top_by_own_time": [{"function": where, "own_ms": round(own * 1000, 2), "cumulative_ms":
                                     round(cumulative * 1000, 2), "calls": calls}
                                    for own, cumulative, calls, where in rows[:top]]}

    def close(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None


def event_loop_kind(wanted: str = "auto") -> str:
    """``uvloop`` when wanted (``auto``: when installed, the ``speed`` extra), else ``asyncio``."""
    if wanted not in ("auto", "asyncio", "uvloop"):
        raise ValueError(f"loop={wanted!r}: expected 'auto', 'asyncio' or 'uvloop'")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if wanted == "uvloop":
            raise ValueError("loop='uvloop': uvloop is not installed (pip install 'liquidation-harness[speed]')") \
                from None
        return "asyncio"
    return "uvloop"


def use_event_loop(kind: str) -> None:
    """Make ``kind`` (from ``event_loop_kind``) the loop every new event loop of this process uses."""
    if kind == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        asyncio.set_event_loop_policy(None)


def _serve_exchange(connection: Any, loop: str = "asyncio") -> None:
    """The child process: run ``_Exchange`` commands received over ``connection`` until "quit"."""
    logging.disable(logging.WARNING)
    use_event_loop(loop)  # the simulator's serving thread makes its loop from this policy
    exchange = _Exchange(own_process=True)
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

    def __init__(self, mode: str = "subprocess", loop: str = "auto") -> None:
        if mode not in ("subprocess", "in-process"):
            raise ValueError(f"mode={mode!r}: expected 'subprocess' or 'in-process'")
        self.mode = mode
        #: the child exchange's event loop (uvloop when installed: a fast exchange, like a real one)
        self.loop = event_loop_kind(loop) if mode == "subprocess" else "shared with the bot"
        self._local: _Exchange | None = None
        self._process: Any = None
        self._connection: Any = None

    def __enter__(self) -> ExchangeHost:
        if self.mode == "in-process":
            self._local = _Exchange()
            return self
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and loops
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve_exchange, args=(child, self.loop), name="bench-exchange", daemon=True)
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
