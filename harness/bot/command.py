"""The bot's command line: ``python -m harness.bot`` and ``liquidation-harness bot``.

The bot-under-test contract's variables are the defaults of their options: ``LIQUIDATION_EXCHANGE_URL``
(--exchange-url), ``LIQUIDATION_LOG_DIR`` (--log-dir), ``LIQUIDATION_SYMBOLS`` (--symbols); an option
given on the command line wins.

``make_bot_command(run=...)`` builds the click command; the command configures logging, builds the
bot (``TradingBot(...).initialize()``: exit 2 on a configuration error) and hands it to ``run``
(default ``run_bot``: ``asyncio.run(bot.run())``). Tests pass their own ``run`` to check what a
command line builds without waiting for a signal.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import click

from harness.bot.logs import configure_logging
from harness.bot.shell import DEFAULT_SYMBOLS, EXIT_CONFIG, TradingBot
from harness.clickrun import run_click
from harness.core.config import ENVIRONMENTS
from harness.core.errors import ConfigError

log = logging.getLogger(__name__)

#: what the command does with the bot it built; returns the exit code
RunBot = Callable[[TradingBot], int]


def run_bot(bot: TradingBot) -> int:
    """Run a built bot until its signal and return its exit code."""
    return asyncio.run(bot.run())


def make_bot_command(run: RunBot = run_bot) -> click.Command:
    """The ``bot`` click command, handing the bot it built to ``run``."""

    @click.command("bot")
    @click.option("--enable-liquidation/--disable-liquidation", default=None,
                  help="Liquidate on SIGTERM/SIGINT (default: as the configuration says; --disable-liquidation forces SKIPPED).")
    @click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False), default="INFO",
                  show_default=True, help="Level of logs/trading.log and stderr.")
    @click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), envvar="TRADING_ENV", default="production",
                  show_default=True, help="Configuration profile and default target (default from $TRADING_ENV).")
    @click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML file with liquidation settings.")
    @click.option("--symbols", envvar="LIQUIDATION_SYMBOLS", default=None,
                  help="Explicit scope: comma-separated symbols to liquidate; anything open on other symbols is left, "
                       "listed in the result and logged as WARNING. Default ($LIQUIDATION_SYMBOLS unset): the whole account.")
    @click.option("--exchange-url", envvar="LIQUIDATION_EXCHANGE_URL",
                  help="Exchange root URL (e.g. the embedded exchange http://127.0.0.1:PORT; default from "
                       "$LIQUIDATION_EXCHANGE_URL, else the environment's Binance URL).")
    @click.option("--testnet", is_flag=True, help="Target Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET).")
    @click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), envvar="LIQUIDATION_LOG_DIR", default=Path("logs"),
                  show_default=True, help="Where trading.log, audit.jsonl and liquidation-result.json are written "
                                          "(default from $LIQUIDATION_LOG_DIR).")
    @click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
                  help="Serve Prometheus metrics on this port (0 picks a free one; the URL is printed as 'METRICS <url>').")
    @click.option("--metrics-addr", default="127.0.0.1", show_default=True, help="Address the metrics endpoint binds to.")
    @click.option("--deadman-countdown", type=float, default=None,
                  help="Dead-man's switch: seconds of Binance countdownCancelAll kept armed per symbol (0 = off; "
                       "default: deadman_countdown_seconds from the configuration, 120).")
    @click.option("--deadman-interval", type=float, default=None,
                  help="Dead-man's switch: seconds between re-arms, shorter than the countdown (default: "
                       "deadman_interval_seconds from the configuration, 30).")
    def bot_command(enable_liquidation: bool | None, log_level: str, environment: str, config_file: Path | None, symbols: str | None,
                    exchange_url: str | None, testnet: bool, log_dir: Path, metrics_port: int | None, metrics_addr: str,
                    deadman_countdown: float | None, deadman_interval: float | None) -> None:
        """Run the trading bot shell; on SIGTERM/SIGINT it liquidates once and exits.

        Exit 0 on COMPLETED or SKIPPED, 1 on PARTIAL or FAILED, 2 on configuration errors, 3 when forced.
        """
        try:
            configure_logging(log_dir, log_level)
        except OSError as exc:
            click.echo(f"configuration error: --log-dir {str(log_dir)!r} is not a writable directory: "
                       f"{exc.strerror or exc}", err=True)
            sys.exit(EXIT_CONFIG)
        bot = TradingBot(environment=environment, config_file=config_file, symbols=symbols.split(",") if symbols is not None else DEFAULT_SYMBOLS, exchange_url=exchange_url,
                         testnet=testnet, log_dir=log_dir, liquidation_enabled=enable_liquidation,
                         metrics_port=metrics_port, metrics_addr=metrics_addr,
                         deadman_countdown=deadman_countdown, deadman_interval=deadman_interval)
        try:
            bot.initialize()
        except (ConfigError, OSError) as exc:  # OSError: the audit trail cannot be opened (AuditLogError)
            log.error("configuration error: %s", exc)
            sys.exit(EXIT_CONFIG)
        sys.exit(run(bot))

    return bot_command


#: the command as shipped (``liquidation-harness bot`` registers it too)
bot_command = make_bot_command()


def main(argv: list[str] | None = None) -> int:
    return run_click(bot_command, argv, "python -m harness.bot")


__all__ = ["RunBot", "bot_command", "main", "make_bot_command", "run_bot"]
