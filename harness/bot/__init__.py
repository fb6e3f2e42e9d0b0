"""The bot runtime: the shell that embeds the engine, and what it runs with.

* ``harness.bot.shell``: ``TradingBot`` (build with ``initialize()``, run with ``run()``) and
  ``MissingCredentialsOrderManager``;
* ``harness.bot.logs``: ``configure_logging``, the redacting filter ``REDACTOR``, ``write_private``;
* ``harness.bot.deadman``: ``DeadMansSwitch`` (Binance countdownCancelAll kept armed);
* ``harness.bot.metrics_server``: the Prometheus ``/metrics`` endpoint;
* ``harness.bot.command``: the click command (``python -m harness.bot``, ``liquidation-harness bot``).

The sign-off tooling (verify, report, checklist, pytest plugin) lives outside this package.
"""

from harness.bot.command import bot_command, main, make_bot_command, run_bot
from harness.bot.logs import LOG_FORMAT, REDACTOR, RedactingFilter, configure_logging, write_private
from harness.bot.shell import (
    DEFAULT_SYMBOLS,
    EXIT_CONFIG,
    EXIT_FORCED,
    EXIT_NOT_FLAT,
    EXIT_OK,
    MissingCredentialsOrderManager,
    TradingBot,
)

__all__ = [
    "DEFAULT_SYMBOLS",
    "EXIT_CONFIG",
    "EXIT_FORCED",
    "EXIT_NOT_FLAT",
    "EXIT_OK",
    "LOG_FORMAT",
    "REDACTOR",
    "MissingCredentialsOrderManager",
    "RedactingFilter",
    "TradingBot",
    "bot_command",
    "configure_logging",
    "main",
    "make_bot_command",
    "run_bot",
    "write_private",
]
