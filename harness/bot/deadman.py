"""The dead-man's switch: Binance's ``countdownCancelAll`` kept armed while the bot runs.

``POST /fapi/v1/countdownCancelAll`` (``symbol``, ``countdownTime`` in ms; weight 10) starts a
per-symbol countdown on the exchange: when it runs out without being re-armed, the exchange cancels
that symbol's open orders (it never closes positions). ``DeadMansSwitch`` re-arms every symbol the
bot trades every ``interval_seconds`` with ``countdown_seconds``, so a bot that dies without
running its own liquidation (SIGKILL, OOM kill, power loss, a hung process) leaves no working
order once ``countdown_seconds`` have passed. A clean exit disarms (``countdownTime=0``).

Timing: ``interval_seconds`` must be shorter than ``countdown_seconds`` (else the switch fires while
the bot is alive); a refresh that fails is logged and retried on the next tick, and when refreshes
keep failing for longer than the countdown the exchange cancels the orders (the safe outcome).
Weight: each refresh costs 10 per symbol, i.e. ``10 * symbols * 60 / interval_seconds`` per minute.

Which symbols: with an explicit scope, the scope's symbols. Without one (the bot covers the whole
account) the switch has no list to arm, so it asks ``discover`` (the bot passes the order manager's
``SupportsOrderSnapshot.open_order_symbols``) on every refresh and arms the symbols that have open
orders NOW (a countdown only ever cancels orders, so a symbol without orders needs none); a symbol
that no longer has orders is disarmed (countdown 0), so it cannot fire later on an order placed
after the refresh (that order is found and armed on the next refresh, within ``interval_seconds``).
A discovery that fails keeps re-arming what is armed and counts as a failure. Weight then follows
the symbols with orders, plus 40 + 40 per refresh for the account-wide order reads.

The switch talks to any ``harness.core.ports.SupportsCountdown`` (``async
countdown_cancel_all(symbol, countdown_ms)``: ``BinanceFuturesOrderManager`` and the simulator's
``InMemoryOrderManager`` have it); its sleep is injectable for tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from harness.core.config import check_deadman_timing
from harness.core.errors import ConfigError
from harness.core.ports import SupportsCountdown

log = logging.getLogger(__name__)

#: how long a clean exit may spend disarming (the process is leaving either way)
DISARM_TIMEOUT_SECONDS = 2.0


#: the timing rule, shared with the configuration validator (harness.core.config)
check_timing = check_deadman_timing


class DeadMansSwitch:
    """Keeps ``countdownCancelAll`` armed for ``symbols`` (or, with none, for the symbols ``discover``
    returns on each refresh) through ``armer`` (module docstring)."""

    def __init__(
        self,
        armer: SupportsCountdown,
        symbols: Sequence[str],
        *,
        countdown_seconds: float,
        interval_seconds: float,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        on_armed: Callable[[list[str]], None] | None = None,
        discover: Callable[[], Awaitable[Iterable[str]]] | None = None,
    ) -> None:
        if not isinstance(armer, SupportsCountdown):
            raise TypeError(f"armer={armer!r}: must be a harness.core.ports.SupportsCountdown "
                            "(async countdown_cancel_all(symbol, countdown_ms))")
        check_timing(countdown_seconds, interval_seconds)
        if countdown_seconds == 0:
            raise ConfigError("deadman_countdown_seconds", 0, "a countdown > 0 (0 means the switch is off: do not build one)")
        self.armer = armer
        self.symbols = list(dict.fromkeys(symbols))
        if not self.symbols and discover is None:
            raise ConfigError("symbols", "", "the symbols to arm, or discover= (the symbols with open orders, read each refresh)")
        self._discover = discover if not self.symbols else None
        self.countdown_ms = int(round(countdown_seconds * 1000))
        self.interval_seconds = float(interval_seconds)
        self._sleep = sleep
        self._on_armed = on_armed
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0  # rounds in which every symbol was armed
        self.failures = 0  # single-symbol arm requests that failed
        self.armed: set[str] = set()
        self.last_round_complete = False

    def __repr__(self) -> str:
        return (f"DeadMansSwitch(symbols={self.symbols}, countdown_ms={self.countdown_ms}, "
                f"interval_seconds={self.interval_seconds:g})")

    async def _set(self, symbol: str, countdown_ms: int) -> bool:
        try:
            await self.armer.countdown_cancel_all(symbol, countdown_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed refresh must never stop the bot: the next tick tries again
            self.failures += 1
            log.warning("dead-man's switch %s %s failed: %s", "arm" if countdown_ms else "disarm", symbol, exc)
            return False
        return True

    async def _targets(self) -> list[str] | None:
        """The symbols to arm this round: the fixed list, or the ones with open orders now (None: unknown)."""
        if self._discover is None:
            return self.symbols
        try:
            found = await self._discover()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep what is armed armed; the next tick reads again
            self.failures += 1
            log.warning("dead-man's switch: the symbols with open orders could not be read (%s): re-arming %s",
                        exc or exc.__class__.__name__, ",".join(sorted(self.armed)) or "nothing")
            return None
        return sorted(set(found))

    async def arm_once(self) -> list[str]:
        """Arm every target symbol now (concurrently); the symbols armed. In discovery mode, symbols
        armed before that no longer have orders are disarmed."""
        targets = await self._targets()
        complete = targets is not None
        if targets is None:
            targets = sorted(self.armed)
        dropped = sorted(self.armed - set(targets)) if self._discover is not None else []
        results = await asyncio.gather(
            *(self._set(symbol, self.countdown_ms) for symbol in targets),
            *(self._set(symbol, 0) for symbol in dropped),
        )
        armed = [symbol for symbol, ok in zip(targets, results[: len(targets)], strict=True) if ok]
        self.armed.update(armed)
        self.armed.difference_update(s for s, ok in zip(dropped, results[len(targets):], strict=True) if ok)
        self.last_round_complete = complete and len(armed) == len(targets)
        if self.last_round_complete:
            self.refreshes += 1
        return armed

    async def _run(self) -> None:
        announced = False
        while True:
            armed = await self.arm_once()
            if not announced and (armed or (self._discover is not None and self.last_round_complete)):
                announced = True
                log.info("dead-man's switch armed: countdownCancelAll %d ms on %s, refreshed every %gs",
                         self.countdown_ms, ",".join(armed) or "no symbol yet (none has open orders; re-read each refresh)",
                         self.interval_seconds)
                if self._on_armed is not None:
                    self._on_armed(armed)
            await self._sleep(self.interval_seconds)

    def start(self) -> asyncio.Task[None]:
        """Arm now and keep re-arming in a background task on the running loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="deadman-switch")
        return self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self, *, disarm: bool = True, timeout: float = DISARM_TIMEOUT_SECONDS) -> bool:
        """Stop re-arming and (``disarm``) set every symbol's countdown to 0; True when all were disarmed.

        Bounded by ``timeout``: a hung exchange cannot hold the bot's exit (the countdown then runs
        out on the exchange, which only cancels orders the bot no longer has a use for).
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if not disarm or not self.armed:
            return True
        symbols = sorted(self.armed)
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(self._set(symbol, 0) for symbol in symbols)), timeout)
        except TimeoutError:
            log.warning("dead-man's switch: disarm timed out after %gs; the exchange's countdown will run out", timeout)
            return False
        self.armed.difference_update(s for s, ok in zip(symbols, results, strict=True) if ok)
        if not self.armed:
            log.info("dead-man's switch disarmed on %s", ",".join(symbols))
        return not self.armed


__all__ = ["DISARM_TIMEOUT_SECONDS", "DeadMansSwitch", "check_timing"]
