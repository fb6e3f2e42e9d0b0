"""TradingBot: a bot shell that embeds the liquidation engine and liquidates on SIGTERM/SIGINT.

Building is separate from running: ``TradingBot(...).initialize()`` builds config, audit logger,
order manager, engine and dead-man's switch without touching the network; ``await bot.run()`` runs
the built bot. The command line (``harness.bot.command``) does both::

    python -m harness.bot --enable-liquidation --env=testnet --symbols=BTCUSDT,ETHUSDT
    liquidation-harness bot --exchange-url=http://127.0.0.1:PORT --log-level=INFO

Keys come only from the environment (BINANCE_TESTNET_API_KEY/SECRET for testnet and custom URLs,
BINANCE_API_KEY/SECRET for production), never from argv. On the first SIGTERM/SIGINT the bot runs
the emergency liquidation once, within the configured timeout, over the WHOLE ACCOUNT unless
``symbols`` (``--symbols``) names an explicit scope (then what lies outside it is left open, listed in
the result and the audit trail and logged as WARNING). Before READY it checks its keys: missing keys,
or keys the exchange refuses on the warm-up's signed call (-2014, -2015, -1022), exit 2 naming the
variables and Binance's code, so a bot never runs for hours with keys that fail at shutdown; a second signal is logged and
ignored; a third forces exit (code 3). SIGUSR1 runs the same liquidation on demand and the bot keeps
running (audit trail and result file as for a shutdown; ignored once a shutdown signal came). It prints ``READY pid=N`` on stdout (and writes
``<log-dir>/bot.ready``) once it is up, writes ``<log-dir>/trading.log``, ``<log-dir>/audit.jsonl`` and
``<log-dir>/liquidation-result.json``, and exits 0 on COMPLETED or SKIPPED, 1 on PARTIAL or FAILED,
2 on configuration errors.

Configuration: the profile, file and ``LIQUIDATION_*`` values (``harness.core.config.load_raw``) or
a given ``config``, with the bot's own overrides on top (``--disable-liquidation``,
``--deadman-countdown``, ``--deadman-interval``), validated together by ONE ``build_config`` call,
so an override that is out of range is refused with the field's name like any other value.

Optional capabilities of the order manager (``harness.core.ports``) are used when present:
``SupportsLifecycle`` (warm up before READY, close on exit) and ``SupportsCountdown`` (the
dead-man's switch).

While it runs, the dead-man's switch (``harness.bot.deadman``) keeps Binance's countdownCancelAll armed
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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.bot.deadman import DeadMansSwitch, check_timing
from harness.bot.gctune import collector_paused, freeze_after_start_up
from harness.bot.logs import REDACTOR, write_private
from harness.core.audit import AuditLogger
from harness.core.config import SWITCHES, LiquidationConfig, build_config, load_raw
from harness.core.errors import ConfigError, TerminalExchangeError
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult, LiquidationState
from harness.core.ports import (
    OrderExecutionManager,
    SupportsCountdown,
    SupportsLifecycle,
    SupportsOrderSnapshot,
    capabilities_of,
)
from harness.exchanges.target import Target, credentials, refuse_crossed_credentials, resolve_target

if TYPE_CHECKING:
    from harness.bot.metrics_server import MetricsServer

log = logging.getLogger(__name__)

#: no scope: the bot liquidates the whole account (every position, every regular and algo order);
#: symbols given to the bot are an explicit scope, and what lies outside it is reported, not touched
DEFAULT_SYMBOLS: tuple[str, ...] = ()
EXIT_OK, EXIT_NOT_FLAT, EXIT_CONFIG, EXIT_FORCED = 0, 1, 2, 3
WARM_UP_TIMEOUT_SECONDS = 10.0
#: pooled connections opened at warm-up when the bot has no scope (the symbol count is not known yet)
WHOLE_ACCOUNT_CONNECTIONS = 16
#: Binance's answers to a key that will not work: bad format, rejected (wrong key, IP restriction,
#: permissions), bad signature (wrong secret); start-up refuses them (exit 2) before READY
AUTH_FAILURE_CODES = frozenset({-2014, -2015, -1022})
CLOSE_TIMEOUT_SECONDS = 1.0
#: liquidate now without exiting (the bot-under-test contract's on-demand trigger)
ON_DEMAND_SIGNAL = signal.SIGUSR1
SYMBOL_PATTERN = re.compile(r"[A-Z0-9_]{1,40}")


RESULT_FILE = "liquidation-result.json"


def _pretty_json(value: Any) -> str:
    """``value`` as indented JSON; with orjson (the 'speed' extra) at C speed: the standard library
    encodes indented JSON in pure Python, several ms per result file (a fleet writes one per account)."""
    try:
        import orjson
    except ImportError:
        return json.dumps(value, indent=2, default=str)
    return orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


def write_result_file(log_dir: Path, result: LiquidationResult, metrics: dict[str, Any]) -> Path | None:
    """``<log_dir>/liquidation-result.json`` (owner-only): the result and the engine's metrics, as the
    bot and ``liquidation-harness liquidate`` write it; None (logged) when it cannot be written."""
    path = Path(log_dir) / RESULT_FILE
    try:
        write_private(path, _pretty_json({"result": result.to_dict(), "metrics": metrics}))
    except OSError as exc:
        log.error("could not write %s: %s", RESULT_FILE, exc)
        return None
    return path


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


class TradingBot:
    """The bot shell. ``initialize()`` builds config, audit logger, order manager and liquidation manager
    without touching the network, so it is safe as a smoke test in production; ``run()`` runs the
    built bot until a signal."""

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
        order_manager: OrderExecutionManager | None = None,
        config: LiquidationConfig | None = None,
        metrics_port: int | None = None,
        metrics_addr: str = "127.0.0.1",
        deadman_countdown: float | None = None,
        deadman_interval: float | None = None,
    ) -> None:
        self.environment = environment or os.environ.get("TRADING_ENV") or "production"
        self.config_file = config_file
        self.symbols = [s.strip().upper() for s in (symbols or DEFAULT_SYMBOLS) if s.strip()]  # [] = whole account
        self._blank_scope = bool(symbols) and not self.symbols  # e.g. --symbols "": a scope that names nothing
        self.exchange_url = exchange_url
        self.testnet = testnet
        self.log_dir = Path(log_dir)
        self.liquidation_enabled = liquidation_enabled
        self._order_manager = order_manager
        self._config = config
        self.config: LiquidationConfig | None = None
        self.target: Target | None = None
        self.audit_logger: AuditLogger | None = None
        self.order_manager: OrderExecutionManager | None = None
        self.liquidation_manager: LiquidationManager | None = None
        self.result: LiquidationResult | None = None
        self.metrics_port = metrics_port
        self.metrics_addr = metrics_addr
        self.metrics_server: MetricsServer | None = None
        self.deadman_countdown = deadman_countdown
        self.deadman_interval = deadman_interval
        self.deadman: DeadMansSwitch | None = None
        self._signals = 0
        self._stop = asyncio.Event()
        self._on_demand_tasks: set[asyncio.Future[LiquidationResult]] = set()

    # -- setup ------------------------------------------------------------------------------
    def initialize(self) -> TradingBot:
        bad = [s for s in self.symbols if not SYMBOL_PATTERN.fullmatch(s)]
        if self._blank_scope:
            raise ConfigError("symbols", "", "comma-separated Binance symbols such as BTCUSDT,ETHUSDT; "
                              "omit the option to cover the whole account")
        if bad:
            raise ConfigError("symbols", ",".join(bad), "comma-separated Binance symbols such as BTCUSDT,ETHUSDT "
                              "(upper-case letters, digits and _, at most 40 characters each), or none for the whole account")
        config = self._build_config()
        self.config = config
        self.target = resolve_target(self.environment, self.exchange_url, self.testnet)
        if self._order_manager is None:
            refuse_crossed_credentials(self.target, self.environment)
        self.audit_logger = AuditLogger(self.log_dir / "audit.jsonl")
        self.order_manager = self._order_manager or self._build_order_manager(self.target)
        self.liquidation_manager = LiquidationManager(config, self.order_manager, self.audit_logger, self.symbols or None)
        self.deadman = self._build_deadman(config)
        if self.symbols:
            log.warning("liquidation scope is limited to %s: positions and orders on any other symbol are left open "
                        "on shutdown (listed in the result and the audit trail); omit the symbols to cover the whole account",
                        ",".join(self.symbols))
        log.info(
            "liquidation manager initialized: target=%s scope=%s capabilities=%s config: %s",
            self.target.describe(),
            ",".join(self.symbols) or "whole account",
            ",".join(capabilities_of(self.order_manager)) or "none",
            config.summary(),
        )
        return self

    def overrides(self) -> dict[str, tuple[Any, str]]:
        """The bot's own configuration overrides: field -> (value, where it came from)."""
        found: dict[str, tuple[Any, str]] = {}
        if self.liquidation_enabled is False:
            found.update(dict.fromkeys(SWITCHES, (False, "--disable-liquidation")))
        if self.deadman_countdown is not None:
            found["deadman_countdown_seconds"] = (self.deadman_countdown, "--deadman-countdown")
        if self.deadman_interval is not None:
            found["deadman_interval_seconds"] = (self.deadman_interval, "--deadman-interval")
        return found

    def _build_config(self) -> LiquidationConfig:
        """The loaded (or given) values with ``overrides()`` on top, validated by one ``build_config``."""
        if self._config is not None:
            values: dict[str, Any] = self._config.model_dump()
            sources: dict[str, str] = {}
        else:
            _, values, sources = load_raw(self.environment, self.config_file)
        overrides = self.overrides()
        was_enabled = values.get("emergency_liquidation") is True
        values.update({name: value for name, (value, _) in overrides.items()})
        sources.update({name: source for name, (_, source) in overrides.items()})
        config = build_config(values, sources)
        try:
            check_timing(config.deadman_countdown_seconds, config.deadman_interval_seconds)
        except ConfigError as exc:  # say where the offending value came from, like build_config does
            raise ConfigError(exc.field, exc.value, exc.allowed, source=sources.get(exc.field)) from None
        if self.liquidation_enabled is False and was_enabled:
            log.critical("liquidation disabled by --disable-liquidation: positions will NOT be closed on shutdown")
        return config

    def _build_deadman(self, config: LiquidationConfig) -> DeadMansSwitch | None:
        if config.deadman_countdown_seconds == 0:
            log.warning("dead-man's switch is OFF (deadman_countdown_seconds=0): if this bot is killed, its orders stay working")
            return None
        if not isinstance(self.order_manager, SupportsCountdown):
            log.warning("dead-man's switch unavailable: %s cannot arm countdownCancelAll", type(self.order_manager).__name__)
            return None
        order_manager = self.order_manager
        if not self.symbols and not isinstance(order_manager, SupportsOrderSnapshot):
            log.warning("dead-man's switch unavailable: no symbol scope and %s cannot list the symbols with open orders "
                        "(SupportsOrderSnapshot)", type(order_manager).__name__)
            return None
        # no scope: arm the symbols that have open orders, re-read on every refresh (harness.bot.deadman)
        discover = order_manager.open_order_symbols if isinstance(order_manager, SupportsOrderSnapshot) else None
        return DeadMansSwitch(
            order_manager,
            self.symbols,
            countdown_seconds=config.deadman_countdown_seconds,
            interval_seconds=config.deadman_interval_seconds,
            discover=discover,
            on_armed=lambda armed: print(
                f"DEADMAN ARMED countdown_ms={int(config.deadman_countdown_seconds * 1000)} "
                f"symbols={','.join(armed) if self.symbols or armed else '(those with open orders, re-read each refresh)'}",
                flush=True,
            ),
        )

    def _build_order_manager(self, target: Target) -> OrderExecutionManager:
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
        with collector_paused():  # no cyclic GC during the run (harness.bot.gctune)
            self.result = await self.liquidation_manager.execute_emergency_liquidation(reason)
        self._write_result(self.result)
        return self.result

    def _write_result(self, result: LiquidationResult) -> None:
        write_result_file(self.log_dir, result, self.liquidation_manager.get_metrics() if self.liquidation_manager else {})

    def request_shutdown(self) -> None:
        """Make ``run()`` liquidate and return, as the first SIGTERM does (for a program embedding the bot)."""
        self._stop.set()

    def _on_demand(self) -> None:
        """SIGUSR1: liquidate now and keep running (the contract's on-demand trigger). A trigger while a
        liquidation runs joins it; after a shutdown signal it is ignored (the shutdown liquidates)."""
        if self._stop.is_set():
            log.warning("SIGUSR1 received during shutdown: ignored (the shutdown liquidation runs)")
            return
        print("SIGNAL SIGUSR1 on-demand liquidation", flush=True)
        log.warning("SIGUSR1 received: on-demand emergency liquidation (the bot keeps running)")
        task = asyncio.ensure_future(self.liquidate(reason="on-demand SIGUSR1"))
        self._on_demand_tasks.add(task)
        task.add_done_callback(self._on_demand_done)

    def _on_demand_done(self, task: asyncio.Future[LiquidationResult]) -> None:
        self._on_demand_tasks.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("on-demand liquidation failed: %r", task.exception())
            return
        log.info("on-demand liquidation %s", task.result().state.value)

    def _on_signal(self, signum: int) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        print(f"SIGNAL {name} count={self._signals}", flush=True)  # lets a harness wait for the acknowledgement
        if self._signals == 1:
            log.warning("%s received: starting emergency liquidation", name)
            self._stop.set()
        elif self._signals == 2:
            log.warning("%s received again during liquidation: ignored (send a third time to force exit)", name)
        else:
            log.critical("%s received a third time: forcing exit without waiting for the liquidation", name)
            logging.shutdown()
            os._exit(EXIT_FORCED)

    async def run(self) -> int:
        """Run the built bot until SIGTERM/SIGINT, liquidate once, and return the exit code."""
        if self.liquidation_manager is None:
            raise RuntimeError("TradingBot.run(): the bot is not built; call initialize() first")
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        loop.add_signal_handler(ON_DEMAND_SIGNAL, self._on_demand)
        if self.metrics_port is not None:
            from harness.bot.metrics_server import start_metrics_server

            self.metrics_server = start_metrics_server(self.metrics_port, self.liquidation_manager.get_metrics, addr=self.metrics_addr)
            log.info("Prometheus metrics on %s", self.metrics_server.url)
            print(f"METRICS {self.metrics_server.url}", flush=True)
        refusal = await self._warm_up()
        if refusal is not None:  # fail now, not at shutdown when the liquidation needs the keys
            log.error("start-up refused: %s", refusal)
            await self._close_order_manager()
            if self.metrics_server is not None:
                self.metrics_server.close()
            for signum in (signal.SIGTERM, signal.SIGINT, ON_DEMAND_SIGNAL):
                loop.remove_signal_handler(signum)
            return EXIT_CONFIG
        if self.deadman is not None:
            self.deadman.start()
        freeze_after_start_up()  # start-up's objects are never re-scanned by the GC (harness.bot.gctune)
        write_private(self.log_dir / "bot.ready", str(os.getpid()))
        log.info("READY pid=%d", os.getpid())
        print(f"READY pid={os.getpid()}", flush=True)
        await self._stop.wait()
        try:
            result = await self.liquidate(reason="shutdown signal")
        finally:
            if self.deadman is not None:
                await self.deadman.stop(disarm=True)
            await self._close_order_manager()
            if self.metrics_server is not None:
                self.metrics_server.close()
            (self.log_dir / "bot.ready").unlink(missing_ok=True)
            for signum in (signal.SIGTERM, signal.SIGINT, ON_DEMAND_SIGNAL):
                loop.remove_signal_handler(signum)
        ok = result.state in (LiquidationState.COMPLETED, LiquidationState.SKIPPED)
        return EXIT_OK if ok else EXIT_NOT_FLAT

    async def _warm_up(self) -> str | None:
        """Check the keys and read clock offset, exchange rules and position mode and open pooled
        connections before READY, so the liquidation itself re-reads nothing. Returns why the bot must
        not start (missing keys, or keys the exchange refuses: -2014/-2015/-1022 on the warm-up's
        signed position-mode read), else None; any other warm-up failure only costs speed."""
        order_manager = self.order_manager
        if self.config is None or not self.config.emergency_liquidation:
            return None  # nothing will be sent at shutdown: nothing to refuse
        target = self.target
        names = " and ".join(target.key_vars) if target is not None else "the API key variables"
        if isinstance(order_manager, MissingCredentialsOrderManager):
            return (f"no API credentials for {order_manager.target.kind}: set {names} "
                    "(the liquidation on shutdown cannot run without them)")
        if not isinstance(order_manager, SupportsLifecycle):
            return None
        connections = 2 * len(self.symbols) + 3 if self.symbols else WHOLE_ACCOUNT_CONNECTIONS
        try:
            await asyncio.wait_for(order_manager.warm_up(connections=connections), timeout=WARM_UP_TIMEOUT_SECONDS)
            log.info("exchange warm-up done: keys accepted; clock, rules, position mode and connections ready")
        except Exception as exc:  # the liquidation reads what it needs itself
            code = getattr(exc, "code", None)
            if code in AUTH_FAILURE_CODES:
                return (f"the exchange refused the API credentials in {names} (Binance code {code}: {exc}); "
                        "check the key, the secret, the key's IP restriction and its futures permission: "
                        "the liquidation on shutdown would be refused the same way")
            log.warning("exchange warm-up failed (%s): the first liquidation will read clock, rules and mode itself",
                        exc or exc.__class__.__name__)
        return None

    async def _close_order_manager(self) -> None:
        order_manager = self.order_manager
        if not isinstance(order_manager, SupportsLifecycle):
            return
        try:
            await asyncio.wait_for(order_manager.close(), timeout=CLOSE_TIMEOUT_SECONDS)
        except Exception as exc:  # closing must never change the verdict
            log.warning("closing the order manager failed: %s", exc)


__all__ = [
    "DEFAULT_SYMBOLS", "EXIT_CONFIG", "EXIT_FORCED", "EXIT_NOT_FLAT", "EXIT_OK", "MissingCredentialsOrderManager",
    "ON_DEMAND_SIGNAL",
    "TradingBot", "write_result_file",
]
