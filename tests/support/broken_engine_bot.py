"""harness.bot with ONE behaviour broken, to show the acceptance scenarios fail naming it (issue 14, item 7).

    python tests/support/broken_engine_bot.py BREAKAGE     # then harness.bot's own command line

Each breakage is a realistic fault planted in the engine or the adapter by monkeypatching before the
bot starts; ``BREAKAGES`` maps its name to (the patch, the acceptance scenario that must fail, the
words its failure message must contain). Not a bot to copy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from any cwd

from harness.core import manager  # noqa: E402
from harness.core.manager import LiquidationManager  # noqa: E402
from harness.core.metrics import LiquidationMetrics  # noqa: E402
from harness.core.outcome import LiquidationState  # noqa: E402


def _wrap_init(after: Callable[[LiquidationManager], None]) -> None:
    original = LiquidationManager.__init__

    def init(self: LiquidationManager, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        after(self)

    LiquidationManager.__init__ = init  # type: ignore[method-assign]


def never_retry() -> None:
    manager.is_terminal = lambda exc: True  # type: ignore[attr-defined]


def retry_terminal_errors() -> None:
    manager.is_terminal = lambda exc: False  # type: ignore[attr-defined]


def one_retry_too_many() -> None:
    def bump(engine: LiquidationManager) -> None:
        engine.config = engine.config.model_copy(update={"max_retries": engine.config.max_retries + 1})

    _wrap_init(bump)


def constant_backoff() -> None:
    def constant(engine: LiquidationManager) -> None:
        async def sleep(delay: float) -> None:
            await asyncio.sleep(engine.config.retry_delay_seconds)

        engine._sleep = sleep

    _wrap_init(constant)


def ignore_retry_after() -> None:
    """Neither the adapter's session nor the error it raises keeps the 429's Retry-After."""
    from harness.exchanges.binance import errors as binance_errors
    from harness.exchanges.binance import session

    session.retry_after_seconds = binance_errors.retry_after_seconds = lambda exc: None  # type: ignore[assignment]


def resend_without_lookup() -> None:
    """The adapter treats a lost reply as 'never placed' and sends the close again at once."""
    from harness.exchanges.binance.close import MarketCloser

    async def lookup(self: Any, client_order_id: str, cause: Any) -> None:
        return None

    MarketCloser._lookup = lookup  # type: ignore[method-assign]


def resend_without_lookup_or_reduce_only() -> None:
    from harness.exchanges.binance.close import MarketCloser

    resend_without_lookup()
    original = MarketCloser._params

    def params(self: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
        sent = dict(original(self, *args, **kwargs))
        sent.pop("reduceOnly", None)
        return sent

    MarketCloser._params = params  # type: ignore[method-assign]


class _WaitWithoutTimeout:
    """``asyncio`` as the engine sees it, except that ``wait`` ignores its timeout."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def wait(tasks: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        return await asyncio.wait(tasks, **kwargs)


def ignore_the_deadline() -> None:
    """The engine never stops waiting; only the adapter's per-request bound ends the run."""
    manager.asyncio = _WaitWithoutTimeout()  # type: ignore[attr-defined]


def unreadable_positions_as_flat() -> None:
    from harness.exchanges.binance.manager import BinanceFuturesOrderManager

    original = BinanceFuturesOrderManager.get_all_positions

    async def positions(self: Any, symbols: list[str]) -> list[dict]:
        try:
            return await original(self, symbols)
        except Exception:
            return []

    BinanceFuturesOrderManager.get_all_positions = positions  # type: ignore[method-assign]


def no_max_qty_split() -> None:
    from harness.exchanges.binance import close

    original = close.plan_market_orders

    def plan(quantity: Any, rules: Any) -> Any:
        return original(quantity, dataclasses.replace(rules, max_qty=Decimal("1e12")))

    close.plan_market_orders = plan  # type: ignore[assignment]


def default_symbols() -> None:
    """The issue's story: no --symbols means BTCUSDT,ETHUSDT, not the whole account."""
    def default(engine: LiquidationManager) -> None:
        engine.symbols = engine.symbols or ["BTCUSDT", "ETHUSDT"]

    _wrap_init(default)


def silent_scope() -> None:
    async def nothing(self: Any, *args: Any) -> None:
        return None

    LiquidationManager._report_out_of_scope = nothing  # type: ignore[method-assign]


def failed_as_partial() -> None:
    original = LiquidationManager._state_of

    def state(self: Any, run: Any, timed_out: bool) -> LiquidationState:
        found = original(self, run, timed_out)
        return LiquidationState.PARTIAL if found is LiquidationState.FAILED else found

    LiquidationManager._state_of = state  # type: ignore[method-assign]


def failed_runs_not_counted() -> None:
    original = LiquidationMetrics.finished

    def finished(self: Any, state: str, *args: Any) -> None:
        original(self, "PARTIAL" if state == "FAILED" else state, *args)

    LiquidationMetrics.finished = finished  # type: ignore[method-assign]


#: name -> (patch, the acceptance scenario (-k expression) that must fail, words its message must hold)
BREAKAGES: dict[str, tuple[Callable[[], None], str, str]] = {
    "never-retry": (never_retry, "retries_seen", "RETRY COUNT"),
    "one-retry-too-many": (one_retry_too_many, "retries_seen", "RETRY COUNT"),
    "constant-backoff": (constant_backoff, "retries_seen", "RETRY BACKOFF"),
    "ignore-retry-after": (ignore_retry_after, "retries_seen", "RETRY-AFTER"),
    "retry-terminal-errors": (retry_terminal_errors, "retries_seen", "TERMINAL RETRIED"),
    "resend-without-lookup": (resend_without_lookup, "reply_is_lost", "NO RE-READ BEFORE RESEND"),
    "resend-without-lookup-or-reduce-only": (resend_without_lookup_or_reduce_only, "reply_is_lost", "AMBIGUOUS OUTCOME"),
    "ignore-the-deadline": (ignore_the_deadline, "own_deadline", "DEADLINE NOT ENFORCED BY THE ENGINE"),
    "unreadable-positions-as-flat": (unreadable_positions_as_flat, "positions_read", "UNKNOWN READ AS FLAT"),
    "no-max-qty-split": (no_max_qty_split, "above_market_max_qty", "ABOVE MAX QTY"),
    "default-symbols": (default_symbols, "whole_account", "WHOLE ACCOUNT"),
    "silent-scope": (silent_scope, "out_of_scope", "OUT_OF_SCOPE NOT NAMED"),
    "failed-as-partial": (failed_as_partial, "total_failure", "TOTAL FAILURE"),
    "failed-runs-not-counted": (failed_runs_not_counted, "total_failure", "FAILED ALERT BLIND"),
}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in BREAKAGES:
        given = sys.argv[1] if len(sys.argv) > 1 else "<none>"
        print(f"broken_engine_bot: BREAKAGE={given}: expected one of {', '.join(BREAKAGES)}", file=sys.stderr)
        return 2
    BREAKAGES[sys.argv.pop(1)][0]()
    from harness.bot.command import main as bot_main

    return bot_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
