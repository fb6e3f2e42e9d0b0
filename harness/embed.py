"""Embed the liquidation engine in any bot and honour the bot-under-test contract in three lines.

::

    from harness.embed import embed
    engine = embed(order_manager)                          # config, audit trail, engine from the environment
    sys.exit(asyncio.run(engine.serve(my_strategy())))     # READY; SIGTERM/SIGINT -> liquidate once -> exit code

(``serve`` must run in the loop the order manager uses: build an async order manager inside an
``async def main()`` and ``return await engine.serve(...)`` from it.)

What ``embed`` reads (the contract's environment):

- ``TRADING_ENV``, ``LIQUIDATION_<FIELD>`` and ``EMERGENCY_LIQUIDATION_DISABLED``: the configuration,
  through ``harness.core.config.load_config`` (an unknown ``LIQUIDATION_*`` name is still refused);
- ``LIQUIDATION_LOG_DIR`` (default ``logs``): ``audit.jsonl`` (``AuditLogger``), ``trading.log``,
  ``liquidation-result.json`` and ``bot.ready`` are written there;
- ``LIQUIDATION_SYMBOLS`` (comma-separated): the symbols the engine liquidates; unset = the whole
  account (the order manager's ``get_all_positions([])``).

The contract's non-field variables (``LIQUIDATION_EXCHANGE_URL``, ``LIQUIDATION_LOG_DIR``,
``LIQUIDATION_SYMBOLS``) are taken out of the mapping handed to ``load_config``, so its typo guard for
other ``LIQUIDATION_*`` names keeps working whether or not the loader knows them.

``serve(work)`` warms up an order manager with ``SupportsLifecycle``, prints ``READY pid=N`` on
stdout and writes ``bot.ready``, runs ``work`` (any awaitable, e.g. the strategy loop; ``None`` = wait
for the signal), and on the first SIGTERM/SIGINT cancels ``work``, runs the emergency liquidation
once, writes ``liquidation-result.json`` and returns the contract's exit code: 0 for COMPLETED or
SKIPPED, 1 otherwise. Later signals are logged and ignored. SIGUSR1 (the contract's on-demand
trigger) runs the liquidation without leaving ``serve`` (audit trail and result file as for a
shutdown); it is ignored once a shutdown signal came. If ``work`` ends by itself the
liquidation runs too (reason ``work-finished``). Bots without asyncio call
``install_signal_handlers()`` instead: the handler runs the liquidation and raises ``SystemExit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bot.gctune import collector_paused, freeze_after_start_up
from harness.bot.logs import REDACTOR
from harness.bot.shell import ON_DEMAND_SIGNAL, write_result_file
from harness.bot.logs import configure_logging as configure_bot_logging
from harness.core.audit import AuditLogger
from harness.core.config import RESERVED_ENV_NAMES, LiquidationConfig, load_config
from harness.core.errors import ConfigError
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult, LiquidationState
from harness.core.ports import OrderExecutionManager, SupportsLifecycle

log = logging.getLogger("harness.embed")

EXCHANGE_URL_VARIABLE = "LIQUIDATION_EXCHANGE_URL"
LOG_DIR_VARIABLE = "LIQUIDATION_LOG_DIR"
SYMBOLS_VARIABLE = "LIQUIDATION_SYMBOLS"
#: the contract's LIQUIDATION_* variables that are not configuration fields (one list: the loader's)
CONTRACT_VARIABLES = RESERVED_ENV_NAMES
DEFAULT_LOG_DIR = Path("logs")
READY_PREFIX = "READY"
EXIT_OK, EXIT_NOT_FLAT = 0, 1
WARM_UP_TIMEOUT_SECONDS = 10.0
#: after the liquidation, releasing connections is best effort: the exit must follow the deadline closely
CLOSE_TIMEOUT_SECONDS = 0.5
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def config_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the contract's non-field ``LIQUIDATION_*`` variables (the loader
    skips them too)."""
    return {name: value for name, value in environ.items() if name not in CONTRACT_VARIABLES}


def symbols_from_env(environ: Mapping[str, str]) -> list[str] | None:
    """``LIQUIDATION_SYMBOLS`` as a list (None when unset or empty: the whole account)."""
    raw = environ.get(SYMBOLS_VARIABLE, "")
    symbols = [part.strip().upper() for part in raw.split(",") if part.strip()]
    for symbol in symbols:
        if not (symbol.isascii() and symbol.replace("_", "").isalnum() and len(symbol) <= 40):
            raise ConfigError(SYMBOLS_VARIABLE, raw, "comma-separated symbols such as 'BTCUSDT,ETHUSDT'",
                              source=SYMBOLS_VARIABLE)
    return symbols or None


def log_dir_from_env(environ: Mapping[str, str]) -> Path:
    return Path(environ.get(LOG_DIR_VARIABLE) or DEFAULT_LOG_DIR)


def exit_code(result: LiquidationResult | None) -> int:
    """The contract's exit code: 0 for COMPLETED or SKIPPED, 1 for anything else (or no result)."""
    if result is not None and result.state in (LiquidationState.COMPLETED, LiquidationState.SKIPPED):
        return EXIT_OK
    return EXIT_NOT_FLAT


@dataclass
class Embedding:
    """The engine embedded in a bot: config, audit logger, manager, and the contract's files."""

    config: LiquidationConfig
    audit_logger: AuditLogger
    manager: LiquidationManager
    log_dir: Path
    ready_prefix: str = READY_PREFIX
    result: LiquidationResult | None = None
    _signal: asyncio.Event | None = field(default=None, repr=False)
    _signals_seen: int = field(default=0, repr=False)
    _reason: str = field(default="", repr=False)
    _on_demand_tasks: set[asyncio.Future[int]] = field(default_factory=set, repr=False)

    @property
    def order_manager(self) -> OrderExecutionManager:
        return self.manager.order_manager

    # ------------------------------------------------------------------ the liquidation
    async def liquidate(self, reason: str) -> int:
        """Run the emergency liquidation once (joins a running one); write the result; the exit code."""
        with collector_paused():  # no cyclic GC during the run (harness.bot.gctune)
            result = await self.manager.execute_emergency_liquidation(reason=reason)
        self.result = result
        self._write_result(result)
        log.info("liquidation %s (%s): exit code %d", result.state.value, reason, exit_code(result))
        return exit_code(result)

    def _write_result(self, result: LiquidationResult) -> None:
        # the same file, format and permissions as harness.bot: {"result": ..., "metrics": ...}, owner-only
        write_result_file(self.log_dir, result, self.manager.get_metrics())

    # ------------------------------------------------------------------ readiness
    def announce_ready(self) -> None:
        """Print ``READY pid=N`` on stdout and write ``bot.ready`` in the log directory."""
        line = f"{self.ready_prefix} pid={os.getpid()}"
        with contextlib.suppress(OSError):
            (self.log_dir / "bot.ready").write_text(line + "\n", encoding="utf-8")
        print(line, flush=True)

    # ------------------------------------------------------------------ asyncio bots
    async def serve(self, work: Awaitable[Any] | None = None) -> int:
        """READY, run ``work`` until the first SIGTERM/SIGINT (or its end), liquidate once, exit code."""
        loop = asyncio.get_running_loop()
        self._signal = asyncio.Event()
        installed = []
        handlers = [(signum, self._on_signal, (signum,)) for signum in SIGNALS] + [(ON_DEMAND_SIGNAL, self._on_demand, ())]
        for signum, handler, args in handlers:
            try:
                loop.add_signal_handler(signum, handler, *args)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / no signals here
                log.warning("cannot install a %s handler in this thread", signal.Signals(signum).name)
        task = asyncio.ensure_future(work) if work is not None else None
        try:
            await self._warm_up()
            freeze_after_start_up()  # start-up's objects are never re-scanned by the GC (harness.bot.gctune)
            self.announce_ready()
            waiter = asyncio.ensure_future(self._signal.wait())
            await asyncio.wait([waiter, *([task] if task else [])], return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            reason = self._reason or "work-finished"
            if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
                log.error("the bot's work failed: %r; liquidating", task.exception())
                reason = "work-failed"
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            return await self.liquidate(reason)
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            await self._close()

    def _on_demand(self) -> None:
        """SIGUSR1: liquidate now and keep serving; ignored once a shutdown signal came."""
        if self._signals_seen:
            log.warning("SIGUSR1 received during shutdown: ignored (the shutdown liquidation runs)")
            return
        log.warning("SIGUSR1 received: on-demand emergency liquidation (the bot keeps running)")
        task = asyncio.ensure_future(self.liquidate("on-demand SIGUSR1"))
        self._on_demand_tasks.add(task)
        task.add_done_callback(self._on_demand_done)

    def _on_demand_done(self, task: asyncio.Future[int]) -> None:
        self._on_demand_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("on-demand liquidation failed: %r", task.exception())

    def _on_signal(self, signum: int) -> None:
        self._signals_seen += 1
        name = signal.Signals(signum).name
        if self._signals_seen == 1:
            log.warning("%s received: emergency liquidation", name)
            self._reason = name
            assert self._signal is not None
            self._signal.set()
        else:
            log.warning("%s received again: the liquidation is already running (ignored)", name)

    async def _warm_up(self) -> None:
        om = self.order_manager
        if isinstance(om, SupportsLifecycle):
            try:
                await asyncio.wait_for(om.warm_up(), WARM_UP_TIMEOUT_SECONDS)
            except Exception as exc:  # a cold start is slower, not fatal
                log.warning("order manager warm-up failed: %r", exc)

    async def _close(self) -> None:
        om = self.order_manager
        if isinstance(om, SupportsLifecycle):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(om.close(), CLOSE_TIMEOUT_SECONDS)
        self.audit_logger.close()

    # ------------------------------------------------------------------ bots without asyncio
    def install_signal_handlers(self) -> None:
        """``signal.signal`` handlers (main thread, no running loop): liquidate once, ``SystemExit(code)``."""
        def handler(signum: int, frame: Any) -> None:
            self._signals_seen += 1
            if self._signals_seen > 1:
                log.warning("%s received again: ignored", signal.Signals(signum).name)
                return
            code = asyncio.run(self.liquidate(signal.Signals(signum).name))
            self.audit_logger.close()
            raise SystemExit(code)

        for signum in SIGNALS:
            signal.signal(signum, handler)


def _secrets(environ: Mapping[str, str]) -> list[str]:
    """Values of the environment's ``*_API_KEY`` / ``*_API_SECRET`` variables (masked in logs and audit)."""
    return [value for name, value in environ.items() if name.endswith(("_API_KEY", "_API_SECRET")) and value]


def configure_logging(log_dir: Path, level: str = "INFO", secrets: Sequence[str] = ()) -> Path:
    """Log to ``<log_dir>/trading.log`` (owner-only) and stderr through the bot's own logging set-up
    (``harness.bot.logs.configure_logging``: one redactor for the process, masking ``secrets`` and
    request signatures in every record); returns the file's path."""
    path = configure_bot_logging(log_dir, level)
    for secret in secrets:
        REDACTOR.add(secret)
    return path


def embed(
    order_manager: OrderExecutionManager,
    *,
    environ: Mapping[str, str] | None = None,
    symbols: Sequence[str] | None = None,
    config: LiquidationConfig | None = None,
    log_dir: str | Path | None = None,
    ready_prefix: str = READY_PREFIX,
    logging_level: str | None = "INFO",
) -> Embedding:
    """Build config, ``AuditLogger`` and ``LiquidationManager`` from the environment (module docstring).

    ``symbols``, ``config`` and ``log_dir`` override what the environment says; ``logging_level=None``
    leaves logging alone (the bot configures it). Raises ``ConfigError`` for a bad variable.
    """
    environ = os.environ if environ is None else environ
    if config is None:
        config = load_config(environ=config_environ(environ))
    directory = Path(log_dir) if log_dir is not None else log_dir_from_env(environ)
    directory.mkdir(parents=True, exist_ok=True)
    if logging_level is not None:
        configure_logging(directory, logging_level, _secrets(environ))
    audit = AuditLogger(directory / "audit.jsonl")
    for secret in _secrets(environ):
        audit.register_secret(secret)
    chosen = list(symbols) if symbols is not None else symbols_from_env(environ)
    manager = LiquidationManager(config, order_manager, audit, chosen)
    log.info("liquidation engine embedded: %s; symbols=%s; audit trail %s", config.summary(),
             ",".join(chosen) if chosen else "whole account", directory / "audit.jsonl")
    return Embedding(config, audit, manager, directory, ready_prefix)


__all__ = [
    "CONTRACT_VARIABLES",
    "Embedding",
    "ON_DEMAND_SIGNAL",
    "config_environ",
    "embed",
    "exit_code",
    "log_dir_from_env",
    "symbols_from_env",
]
