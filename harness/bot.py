"""TradingBot: a bot shell that embeds the liquidation engine and liquidates on SIGTERM/SIGINT.

    python -m harness.bot --enable-liquidation --env=testnet --symbols=BTCUSDT,ETHUSDT
    liquidation-harness bot --exchange-url=http://127.0.0.1:PORT --log-level=INFO

Keys come only from the environment (BINANCE_TESTNET_API_KEY/SECRET for testnet and custom URLs,
BINANCE_API_KEY/SECRET for production), never from argv. On the first SIGTERM/SIGINT the bot runs
the emergency liquidation once, within the configured timeout; a second signal is logged and
ignored; a third forces exit (code 3). It prints ``READY pid=N`` on stdout (and writes
``<log-dir>/bot.ready``) once it is up, writes ``<log-dir>/trading.log``, ``<log-dir>/audit.jsonl`` and
``<log-dir>/liquidation-result.json``, and exits 0 on COMPLETED or SKIPPED, 1 on PARTIAL or FAILED,
2 on configuration errors.

While it runs, the dead-man's switch (``harness.deadman``) keeps Binance's countdownCancelAll armed
for its symbols (``deadman_countdown_seconds``, re-armed every ``deadman_interval_seconds``; config
fields, ``LIQUIDATION_DEADMAN_*`` variables or ``--deadman-countdown`` / ``--deadman-interval``; 0
turns it off), so a killed bot leaves no working order once the countdown ends; it prints
``DEADMAN ARMED ...`` once armed and disarms on a clean exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from harness._entry import run_click
from harness.core.audit import AuditLogger
from harness.core.config import ENVIRONMENTS, LiquidationConfig, build_config, load_config
from harness.core.errors import ConfigError, TerminalExchangeError
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult, LiquidationState
from harness.deadman import DeadMansSwitch, check_timing, supports_countdown
from harness.exchanges.target import Target, credentials, refuse_crossed_credentials, resolve_target

log = logging.getLogger("harness.bot")

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT")
EXIT_OK, EXIT_NOT_FLAT, EXIT_CONFIG, EXIT_FORCED = 0, 1, 2, 3
WARM_UP_TIMEOUT_SECONDS = 10.0
SYMBOL_PATTERN = re.compile(r"[A-Z0-9_]{1,40}")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class MissingCredentialsOrderManager:
    """Stands in when no keys are configured: every call fails terminally, naming the variables."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def _error(self, symbol: str | None = None) -> TerminalExchangeError:
        names = " and ".join(self.target.key_vars)
        return TerminalExchangeError(f"no API credentials for {self.target.kind}: set {names}", code=-2015, symbol=symbol)

    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        raise self._error()

    def cancel_all_orders(self, symbol: str) -> int:
        raise self._error(symbol)

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict:
        raise self._error(symbol)


class RedactingFilter(logging.Filter):
    """Masks registered secrets (API key and secret) and request signatures in every record a
    handler writes, whichever library logged it (e.g. urllib3's DEBUG lines carry signed URLs)."""

    _SIGNATURE = re.compile(r"(signature[=\"':\s]+)[0-9a-fA-F]{16,}", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 6:
            self.secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._SIGNATURE.sub(r"\1<redacted>", message)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, "<redacted>")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


#: the filter on the bot's log handlers; the bot registers its keys with it
REDACTOR = RedactingFilter()


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` created owner-only (0600), replacing what was there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def configure_logging(log_dir: Path, level: str = "INFO") -> Path:
    """trading.log (owner-only) plus stderr, both through ``REDACTOR``; returns the log file's path."""
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = log_dir / "trading.log"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.close(fd)
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_harness", False):
            root.removeHandler(handler)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    stream_handler = logging.StreamHandler(sys.stderr)
    for handler in (file_handler, stream_handler):
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(REDACTOR)
        handler._harness = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    return path


class TradingBot:
    """The bot shell. ``initialize()`` builds config, audit logger, order manager and liquidation manager
    without touching the network, so it is safe as a smoke test in production."""

    def __init__(
        self,
        *,
        environment: str | None = None,
        config_file: str | Path | None = None,
        symbols: Sequence[str] | None = None,
        exchange_url: str | None = None,
        testnet: bool = False,
        log_dir: str | Path = "logs",
        liquidation_enabled: bool | None = None,
        order_manager: Any = None,
        config: LiquidationConfig | None = None,
        metrics_port: int | None = None,
        metrics_addr: str = "127.0.0.1",
        deadman_countdown: float | None = None,
        deadman_interval: float | None = None,
    ) -> None:
        self.environment = environment or os.environ.get("TRADING_ENV") or "production"
        self.config_file = config_file
        self.symbols = [s.strip().upper() for s in (symbols or DEFAULT_SYMBOLS) if s.strip()]
        self.exchange_url = exchange_url
        self.testnet = testnet
        self.log_dir = Path(log_dir)
        self.liquidation_enabled = liquidation_enabled
        self._order_manager = order_manager
        self._config = config
        self.config: LiquidationConfig | None = None
        self.target: Target | None = None
        self.audit_logger: AuditLogger | None = None
        self.order_manager: Any = None
        self.liquidation_manager: LiquidationManager | None = None
        self.result: LiquidationResult | None = None
        self.metrics_port = metrics_port
        self.metrics_addr = metrics_addr
        self.metrics_server: Any = None
        self._deadman_overrides = {
            name: value for name, value in (("deadman_countdown_seconds", deadman_countdown),
                                            ("deadman_interval_seconds", deadman_interval)) if value is not None
        }
        self.deadman: DeadMansSwitch | None = None
        self._signals = 0

    # -- setup ------------------------------------------------------------------------------
    def initialize(self) -> TradingBot:
        bad = [s for s in self.symbols if not SYMBOL_PATTERN.fullmatch(s)]
        if bad or not self.symbols:
            raise ConfigError("symbols", ",".join(bad) if bad else "", "comma-separated Binance symbols such as BTCUSDT,ETHUSDT "
                              "(upper-case letters, digits and _, at most 40 characters each)")
        config = self._config or load_config(self.environment, self.config_file)
        if self.liquidation_enabled is False and config.emergency_liquidation:
            config = config.model_copy(update={"emergency_liquidation": False, "close_positions": False, "cancel_orders": False})
            log.critical("liquidation disabled by --disable-liquidation: positions will NOT be closed on shutdown")
        if self._deadman_overrides:
            config = build_config({**config.model_dump(), **self._deadman_overrides},
                                  dict.fromkeys(self._deadman_overrides, "command line"))
        check_timing(config.deadman_countdown_seconds, config.deadman_interval_seconds)
        self.config = config
        self.target = resolve_target(self.environment, self.exchange_url, self.testnet)
        if self._order_manager is None:
            refuse_crossed_credentials(self.target, self.environment)
        self.audit_logger = AuditLogger(self.log_dir / "audit.jsonl")
        self.order_manager = self._order_manager or self._build_order_manager(self.target)
        self.liquidation_manager = LiquidationManager(config, self.order_manager, self.audit_logger, self.symbols)
        self.deadman = self._build_deadman(config)
        log.info(
            "liquidation manager initialized: target=%s symbols=%s config: %s",
            self.target.describe(),
            ",".join(self.symbols),
            config.summary(),
        )
        return self

    def _build_deadman(self, config: LiquidationConfig) -> DeadMansSwitch | None:
        if config.deadman_countdown_seconds == 0:
            log.warning("dead-man's switch is OFF (deadman_countdown_seconds=0): if this bot is killed, its orders stay working")
            return None
        if not supports_countdown(self.order_manager):
            log.warning("dead-man's switch unavailable: %s cannot arm countdownCancelAll", type(self.order_manager).__name__)
            return None
        return DeadMansSwitch(
            self.order_manager,
            self.symbols,
            countdown_seconds=config.deadman_countdown_seconds,
            interval_seconds=config.deadman_interval_seconds,
            on_armed=lambda armed: print(
                f"DEADMAN ARMED countdown_ms={int(config.deadman_countdown_seconds * 1000)} symbols={','.join(armed)}",
                flush=True,
            ),
        )

    def _build_order_manager(self, target: Target) -> Any:
        key, secret = credentials(target)
        if not key or not secret:
            log.warning("no API credentials for %s (set %s): exchange calls will fail", target.kind, " and ".join(target.key_vars))
            return MissingCredentialsOrderManager(target)
        assert self.audit_logger is not None
        self.audit_logger.register_secret(key)
        self.audit_logger.register_secret(secret)
        REDACTOR.add(key)
        REDACTOR.add(secret)
        from harness.exchanges.binance import BinanceFuturesOrderManager

        return BinanceFuturesOrderManager(key, secret, target=target)

    # -- running ----------------------------------------------------------------------------
    async def liquidate(self, reason: str) -> LiquidationResult:
        assert self.liquidation_manager is not None, "call initialize() first"
        self.result = await self.liquidation_manager.execute_emergency_liquidation(reason)
        self._write_result(self.result)
        return self.result

    def _write_result(self, result: LiquidationResult) -> None:
        payload = {"result": result.to_dict(), "metrics": self.liquidation_manager.get_metrics() if self.liquidation_manager else {}}
        try:
            write_private(self.log_dir / "liquidation-result.json", json.dumps(payload, indent=2, default=str))
        except OSError as exc:
            log.error("could not write liquidation-result.json: %s", exc)

    def _on_signal(self, signum: int, stop: asyncio.Event) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        print(f"SIGNAL {name} count={self._signals}", flush=True)  # lets a harness wait for the acknowledgement
        if self._signals == 1:
            log.warning("%s received: starting emergency liquidation", name)
            stop.set()
        elif self._signals == 2:
            log.warning("%s received again during liquidation: ignored (send a third time to force exit)", name)
        else:
            log.critical("%s received a third time: forcing exit without waiting for the liquidation", name)
            logging.shutdown()
            os._exit(EXIT_FORCED)

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT, liquidate once, and return the exit code."""
        if self.liquidation_manager is None:
            self.initialize()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum, stop)
        if self.metrics_port is not None:
            from harness.monitoring import start_metrics_server

            self.metrics_server = start_metrics_server(self.metrics_port, self.liquidation_manager.get_metrics, addr=self.metrics_addr)
            log.info("Prometheus metrics on %s", self.metrics_server.url)
            print(f"METRICS {self.metrics_server.url}", flush=True)
        await self._warm_up()
        if self.deadman is not None:
            self.deadman.start()
        write_private(self.log_dir / "bot.ready", str(os.getpid()))
        log.info("READY pid=%d", os.getpid())
        print(f"READY pid={os.getpid()}", flush=True)
        await stop.wait()
        try:
            result = await self.liquidate(reason="shutdown signal")
        finally:
            if self.deadman is not None:
                await self.deadman.stop(disarm=True)
            await self._close_order_manager()
            if self.metrics_server is not None:
                self.metrics_server.close()
            (self.log_dir / "bot.ready").unlink(missing_ok=True)
        ok = result.state in (LiquidationState.COMPLETED, LiquidationState.SKIPPED)
        return EXIT_OK if ok else EXIT_NOT_FLAT

    async def _warm_up(self) -> None:
        """Read clock offset, exchange rules and position mode and open pooled connections before
        READY, so the liquidation itself re-reads nothing. Bounded; a failure only costs speed."""
        warm_up = getattr(self.order_manager, "warm_up", None)
        if warm_up is None or self.config is None or not self.config.emergency_liquidation:
            return
        try:
            await asyncio.wait_for(warm_up(connections=2 * len(self.symbols) + 3), timeout=WARM_UP_TIMEOUT_SECONDS)
            log.info("exchange warm-up done: clock, rules, position mode and connections ready")
        except Exception as exc:  # the liquidation reads what it needs itself
            log.warning("exchange warm-up failed (%s): the first liquidation will read clock, rules and mode itself",
                        exc or exc.__class__.__name__)

    async def _close_order_manager(self) -> None:
        close = getattr(self.order_manager, "close", None)
        if close is None:
            return
        try:
            outcome = close()
            if asyncio.iscoroutine(outcome):
                await asyncio.wait_for(outcome, timeout=1.0)
        except Exception as exc:  # closing must never change the verdict
            log.warning("closing the order manager failed: %s", exc)


@click.command("bot")
@click.option("--enable-liquidation/--disable-liquidation", default=None,
              help="Liquidate on SIGTERM/SIGINT (default: as the configuration says; --disable-liquidation forces SKIPPED).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False), default="INFO",
              show_default=True, help="Level of logs/trading.log and stderr.")
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), envvar="TRADING_ENV", default="production",
              show_default=True, help="Configuration profile and default target (default from $TRADING_ENV).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML file with liquidation settings.")
@click.option("--symbols", default=",".join(DEFAULT_SYMBOLS), show_default=True, help="Comma-separated symbols the bot trades and liquidates.")
@click.option("--exchange-url", help="Exchange root URL (e.g. the embedded exchange http://127.0.0.1:PORT); default: the environment's Binance URL.")
@click.option("--testnet", is_flag=True, help="Target Binance futures testnet (keys from BINANCE_TESTNET_API_KEY/SECRET).")
@click.option("--log-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("logs"), show_default=True,
              help="Where trading.log, audit.jsonl and liquidation-result.json are written.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus metrics on this port (0 picks a free one; the URL is printed as 'METRICS <url>').")
@click.option("--metrics-addr", default="127.0.0.1", show_default=True, help="Address the metrics endpoint binds to.")
@click.option("--deadman-countdown", type=float, default=None,
              help="Dead-man's switch: seconds of Binance countdownCancelAll kept armed per symbol (0 = off; "
                   "default: deadman_countdown_seconds from the configuration, 120).")
@click.option("--deadman-interval", type=float, default=None,
              help="Dead-man's switch: seconds between re-arms, shorter than the countdown (default: "
                   "deadman_interval_seconds from the configuration, 30).")
def bot_command(enable_liquidation: bool | None, log_level: str, environment: str, config_file: Path | None, symbols: str,
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
    bot = TradingBot(environment=environment, config_file=config_file, symbols=symbols.split(","), exchange_url=exchange_url,
                     testnet=testnet, log_dir=log_dir, liquidation_enabled=enable_liquidation,
                     metrics_port=metrics_port, metrics_addr=metrics_addr,
                     deadman_countdown=deadman_countdown, deadman_interval=deadman_interval)
    try:
        bot.initialize()
    except (ConfigError, OSError) as exc:  # OSError: the audit trail cannot be opened (AuditLogError)
        log.error("configuration error: %s", exc)
        sys.exit(EXIT_CONFIG)
    sys.exit(asyncio.run(bot.run()))


def main(argv: list[str] | None = None) -> int:
    return run_click(bot_command, argv, "python -m harness.bot")


if __name__ == "__main__":
    sys.exit(main())
