"""Flatten (or, dry, read) accounts concurrently, each within its own deadline.

Every account gets its own ``BinanceFuturesOrderManager``, ``AuditLogger`` and ``LiquidationManager``
(the bot's engine, ``symbols=None`` = the whole account, or the account's scope); accounts on the
same exchange host share one per-IP weight limiter (``ip_limiter``), each keeping its own order-count
limits. They all run on one event loop; nothing one account does (hanging, failing) waits for
another: the engine bounds its own run by ``timeout_seconds`` and this module bounds the rest
(closing the adapter, reading the scope) so that every account is done by its deadline plus
``GRACE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.bot.logs import REDACTOR
from harness.bot.shell import write_result_file
from harness.core.audit import AuditEvent, AuditLogger
from harness.core.config import LiquidationConfig
from harness.core.manager import LiquidationManager
from harness.core.outcome import LiquidationResult, LiquidationState
from harness.exchanges.binance import BinanceFuturesOrderManager
from harness.exchanges.binance.limiter import RequestLimiter, ip_limiter
from harness.exchanges.binance.snapshot import AccountSnapshot, read_account
from harness.panic.accounts import Account

log = logging.getLogger(__name__)

#: what an account may take beyond its deadline: the engine's unwind, the audit, closing the adapter
GRACE_SECONDS = 0.4
CLOSE_SECONDS = 0.2
#: connections opened while the first reads are in flight: two cancels per symbol of a scope, else a
#: guess at a whole account's burst (more are opened as needed)
PREWARM_PER_SYMBOL = 2
PREWARM_WHOLE_ACCOUNT = 16
#: the audit event that says who pressed the button, why, and how it was confirmed
REQUESTED_EVENT = "LIQUIDATE_REQUESTED"


@dataclass
class AccountRun:
    """One account's run as the progress display and the summary see it."""

    account: Account
    log_dir: Path
    timeout: float
    phase: str = "waiting"  # waiting | reading | running | done
    started: float | None = None
    orders_cancelled: int = 0
    positions_found: int | None = None
    positions_closed: int = 0
    result: LiquidationResult | None = None
    result_file: Path | None = None
    snapshot: AccountSnapshot | None = None
    out_of_scope: AccountSnapshot | None = None
    #: what the read after the liquidation found still open in scope (None: not read)
    left_open: AccountSnapshot | None = None
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0

    @property
    def state(self) -> str:
        if self.result is not None:
            if self.result.state is LiquidationState.COMPLETED and not self.flat:
                return "NOT FLAT"
            return self.result.state.value
        if self.phase == "done":
            return "FAILED" if self.error else "READ"
        return self.phase.upper()

    @property
    def flat(self) -> bool:
        return (self.result is not None and self.result.state is LiquidationState.COMPLETED
                and (self.left_open is None or self.left_open.flat))

    def time_left(self, now: float | None = None) -> float:
        if self.started is None:
            return self.timeout
        if self.phase == "done":
            return 0.0
        return max(0.0, self.started + self.timeout - (time.monotonic() if now is None else now))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "account": self.account.name, "target": self.account.target.describe(), "state": self.state,
            "orders_cancelled": self.orders_cancelled, "positions_closed": self.positions_closed,
            "positions_failed": self.result.positions_failed if self.result else None,
            "duration_seconds": round(self.duration, 3), "log_dir": str(self.log_dir),
            "result_file": str(self.result_file) if self.result_file else None, "error": self.error,
            "symbols": list(self.account.symbols) or "all",
        }
        if self.result is not None:
            data["errors"] = self.result.errors
            data["correlation_id"] = self.result.correlation_id
            data["metrics"] = self.metrics
        if self.snapshot is not None:
            data["would"] = self.snapshot.to_dict()
        if self.out_of_scope is not None:
            data["out_of_scope"] = self.out_of_scope.to_dict()
        if self.left_open is not None:
            data["left_open"] = self.left_open.to_dict()
        return data


class _ProgressAudit:
    """The account's ``AuditLogger`` plus live counts for the display (an ``AuditSink``)."""

    def __init__(self, inner: AuditLogger, run: AccountRun, changed: Callable[[AccountRun], None]) -> None:
        self.inner = inner
        self.run = run
        self.changed = changed

    @property
    def write_errors(self) -> int:
        return self.inner.write_errors

    def log(self, event_type: Any, correlation_id: str | None, details: Mapping[str, Any] | None = None) -> Any:
        written = self.inner.log(event_type, correlation_id, details)
        name = getattr(event_type, "value", event_type)
        details = details or {}
        if name == AuditEvent.ORDER_CANCELLED.value:
            self.run.orders_cancelled += int(details.get("orders_cancelled") or 0)
        elif name == AuditEvent.ORDER_PLACED.value:
            self.run.positions_closed += 1
        elif name == AuditEvent.POSITIONS_FETCHED.value:
            self.run.positions_found = int(details.get("count") or 0)
        else:
            return written
        self.changed(self.run)
        return written


@dataclass
class Fleet:
    """What a ``liquidate`` run does to its accounts; ``changed`` is called on every progress step."""

    accounts: list[Account]
    config: LiquidationConfig
    log_dir: Path
    reason: str
    dry_run: bool = False
    confirmed_by: str = "--yes"
    per_account_dirs: bool = False
    changed: Callable[[AccountRun], None] = lambda run: None
    request_timeout: float = 5.0
    runs: list[AccountRun] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.runs = [
            AccountRun(a, self.log_dir / a.name if self.per_account_dirs else self.log_dir, self.config.timeout_seconds)
            for a in self.accounts
        ]
        self._limiters: dict[str, RequestLimiter] = {}

    def _limiter(self, account: Account) -> RequestLimiter:
        """One per-IP weight limiter per exchange host (scheme, host and port)."""
        return self._limiters.setdefault(account.target.root_url, ip_limiter())

    async def run(self) -> list[AccountRun]:
        await asyncio.gather(*(self._one(run) for run in self.runs))
        return self.runs

    async def _one(self, run: AccountRun) -> None:
        account = run.account
        for secret in (account.api_key, account.api_secret):
            REDACTOR.add(secret)
        run.started = time.monotonic()
        run.phase = "reading" if self.dry_run else "running"
        self.changed(run)
        manager: BinanceFuturesOrderManager | None = None
        try:
            manager = BinanceFuturesOrderManager(
                account.api_key, account.api_secret, target=account.target, weight_limiter=self._limiter(account),
                request_timeout=min(self.request_timeout, self.config.timeout_seconds),
            )
            bound = self.config.timeout_seconds + (0.0 if self.dry_run else GRACE_SECONDS - CLOSE_SECONDS)
            await asyncio.wait_for(self._dry(run, manager) if self.dry_run else self._liquidate(run, manager), bound)
        except TimeoutError:
            if run.result is None:
                run.error = run.error or f"did not finish within {self.config.timeout_seconds:g}s"
        except Exception as exc:  # one account's trouble never stops the others
            run.error = f"{type(exc).__name__}: {exc}"
            log.error("account %s: %s", account.name, run.error)
        finally:
            if manager is not None:
                try:
                    await asyncio.wait_for(manager.close(), CLOSE_SECONDS)
                except Exception as exc:  # closing never changes the verdict
                    log.warning("account %s: closing the exchange session: %s", account.name, exc or type(exc).__name__)
            run.duration = time.monotonic() - run.started
            run.phase = "done"
            self.changed(run)

    async def _dry(self, run: AccountRun, manager: BinanceFuturesOrderManager) -> None:
        snapshot = await read_account(manager)
        run.snapshot, run.out_of_scope = snapshot.split(list(run.account.symbols))
        run.positions_found = len(run.snapshot.positions)

    async def _liquidate(self, run: AccountRun, manager: BinanceFuturesOrderManager) -> None:
        account = run.account
        # no fsync on the shared event loop (a slow disk would stall every account): once, in a thread, at the end
        audit = AuditLogger(run.log_dir / "audit.jsonl", fsync_events=())
        for secret in (account.api_key, account.api_secret):
            audit.register_secret(secret)
        try:
            audit.log(REQUESTED_EVENT, None, {
                "reason": self.reason, "account": account.name, "target": account.target.describe(),
                "key_fingerprint": account.fingerprint, "symbols": list(account.symbols) or "all",
                "operator": _operator(), "confirmed_by": self.confirmed_by,
            })
            engine = LiquidationManager(self.config, manager, _ProgressAudit(audit, run, self.changed),
                                        list(account.symbols) or None)
            manager.prewarm_connections(PREWARM_PER_SYMBOL * len(account.symbols) if account.symbols
                                        else PREWARM_WHOLE_ACCOUNT)
            run.result = await engine.execute_emergency_liquidation(self.reason)
            run.orders_cancelled = run.result.orders_cancelled
            run.positions_closed = run.result.positions_closed
            run.metrics = engine.get_metrics()
            run.result_file = write_result_file(run.log_dir, run.result, run.metrics)
        finally:
            audit.close()
            fsync = asyncio.ensure_future(asyncio.to_thread(_fsync, audit.path))
        await self._check(run, manager)
        try:
            await asyncio.wait_for(asyncio.shield(fsync), CLOSE_SECONDS)
        except Exception as exc:  # the lines are written; only their durability waits on the disk
            log.warning("account %s: audit trail fsync: %s", account.name, exc or type(exc).__name__)

    async def _check(self, run: AccountRun, manager: BinanceFuturesOrderManager) -> None:
        """Read the account once more, in the time left: is the scope really flat, and what did a
        scoped run leave alone? (Skipped when no time is left; the engine's verdict stands.)"""
        assert run.started is not None and run.result is not None
        left = run.started + self.config.timeout_seconds + GRACE_SECONDS - 2 * CLOSE_SECONDS - time.monotonic()
        if left <= 0 or (run.result.state is not LiquidationState.COMPLETED and not run.account.symbols):
            return
        try:
            run.left_open, run.out_of_scope = (await asyncio.wait_for(read_account(manager), left)).split(
                list(run.account.symbols))
        except Exception as exc:
            log.warning("account %s: could not read the account after the liquidation: %s", run.account.name,
                        exc or type(exc).__name__)
            return
        if not run.left_open.flat:
            run.error = (f"still open after the liquidation: {len(run.left_open.positions)} position(s), "
                         f"{len(run.left_open.orders)} order(s)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


__all__ = ["AccountRun", "Fleet", "GRACE_SECONDS", "REQUESTED_EVENT"]
