"""A small trading bot written on ccxt, not on harness.bot, that embeds the liquidation engine.

It follows the bot-under-test contract (README, "Verify your own bot"):

- connects where ``LIQUIDATION_EXCHANGE_URL`` (else ``TRADING_ENV``) says, with the target's keys
  from the environment (``BINANCE_TESTNET_API_KEY`` / ``_SECRET`` for testnet and the embedded exchange);
- builds its own ccxt-based ``OrderExecutionManager`` (``om.py``) and embeds the engine with
  ``harness.embed`` (config from ``LIQUIDATION_*`` / ``EMERGENCY_LIQUIDATION_DISABLED``, ``audit.jsonl``
  in ``LIQUIDATION_LOG_DIR``);
- prints ``READY pid=N`` once it is up, then watches mark prices (its "strategy") until SIGTERM/SIGINT;
- keeps the dead-man's switch armed while it runs (``harness.bot.deadman.DeadMansSwitch`` over the
  order manager's countdownCancelAll; ``LIQUIDATION_DEADMAN_COUNTDOWN_SECONDS`` / ``_INTERVAL_SECONDS``,
  0 = off), so a killed bot leaves no working order once the countdown runs out;
- on SIGUSR1 liquidates without exiting (``serve``'s on-demand trigger);
- on SIGTERM runs the emergency liquidation once and exits 0 (COMPLETED/SKIPPED) or 1; 2 on a
  configuration error.

Run::

    LIQUIDATION_EXCHANGE_URL=http://127.0.0.1:PORT BINANCE_TESTNET_API_KEY=... BINANCE_TESTNET_API_SECRET=... \\
        LIQUIDATION_LOG_DIR=logs python examples/ccxt_bot/bot.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

if __package__:
    from .om import factory
else:  # python examples/ccxt_bot/bot.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from om import factory  # type: ignore[no-redef]

from harness.bot.deadman import DeadMansSwitch
from harness.connect import keys_from_env, target_from_env
from harness.core.config import DEFAULT_ENVIRONMENT, ENVIRONMENT_VARIABLE
from harness.core.errors import ConfigError
from harness.embed import embed, symbols_from_env
from harness.exchanges.target import refuse_crossed_credentials

log = logging.getLogger("ccxt_bot")
WATCH_INTERVAL_SECONDS = 1.0
EXIT_CONFIG = 2


async def watch_prices(order_manager, symbols: list[str]) -> None:
    """The bot's "strategy": log each symbol's mark price, once per interval, until cancelled."""
    while True:
        for symbol in symbols:
            try:
                answer = await order_manager.exchange.fapiPublicGetPremiumIndex({"symbol": symbol})
                log.info("%s mark %s", symbol, answer.get("markPrice") if isinstance(answer, dict) else answer)
            except Exception as exc:  # a market-data hiccup is not a reason to stop
                log.warning("%s mark price unavailable: %s", symbol, type(exc).__name__)
        await asyncio.sleep(WATCH_INTERVAL_SECONDS)


async def main() -> int:
    try:
        target = target_from_env()
        refuse_crossed_credentials(target, os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_ENVIRONMENT)
        api_key, api_secret = keys_from_env(target)
        order_manager = factory(target.root_url, api_key, api_secret)
        engine = embed(order_manager)
    except ConfigError as exc:
        print(f"ccxt-bot: configuration error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    scope = symbols_from_env(os.environ)
    symbols = scope or ["BTCUSDT"]
    log.info("ccxt bot on %s watching %s", target.describe(), ",".join(symbols))
    return await engine.serve(run(order_manager, symbols, scope, engine.config))


async def run(order_manager, symbols: list[str], scope: list[str] | None, config) -> None:
    """The strategy with the dead-man's switch armed beside it (scope's symbols, else those with open orders)."""
    deadman = None
    if config.deadman_countdown_seconds > 0:
        deadman = DeadMansSwitch(order_manager, scope or [], countdown_seconds=config.deadman_countdown_seconds,
                                 interval_seconds=config.deadman_interval_seconds,
                                 discover=None if scope else order_manager.open_order_symbols)
        deadman.start()
    try:
        await watch_prices(order_manager, symbols)
    finally:
        if deadman is not None:
            await deadman.stop(disarm=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
