"""LiquidationManager: cancel every order and close every position inside a hard deadline.

Per symbol, concurrently across symbols: cancel the symbol's orders (the synchronous
``cancel_all_orders`` runs in a thread pool sized for the symbol count; an order manager that is also
a ``SupportsAsyncCancel`` (``async cancel_all_orders_async(symbol)``, same contract, see
``harness.core.ports``) is awaited on the loop instead, so a large account needs no threads), then
close its positions (opposite side, absolute size). Positions are read once, concurrently with the
cancels.

The whole run is bounded by ``timeout_seconds``: the engine waits on its own work with that
timeout, so a hanging order manager (async or blocking sync) cannot hold it; pending work is
cancelled and the result says what finished. Failed calls are retried up to ``max_retries`` times
with backoff ``retry_delay_seconds * 2^(attempt-1)`` (or the exchange's Retry-After when longer),
never sleeping past the deadline; terminal errors are not retried. Before retrying a close the
position is re-read, so an order that executed despite an error is never sent twice.

States: COMPLETED (everything cancelled and closed; nothing to do counts), PARTIAL (something
succeeded, something did not or the deadline cut it short), FAILED (nothing that needed doing
succeeded), SKIPPED (emergency_liquidation=False: CRITICAL log, no order-manager call at all).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from harness.core.audit import AuditEvent
from harness.core.config import LiquidationConfig
from harness.core.context import current_correlation_id, current_deadline
from harness.core.errors import RetryableExchangeError, is_terminal
from harness.core.metrics import LiquidationMetrics
from harness.core.outcome import LiquidationResult, LiquidationState, PositionOutcome, Status, SymbolOutcome
from harness.core.ports import AuditSink, OrderExecutionManager, SupportsAsyncCancel, SupportsWriteErrors

log = logging.getLogger("harness.liquidation")
T = TypeVar("T")

#: time the engine allows itself after the deadline to unwind cancelled work and write the audit
UNWIND_GRACE_SECONDS = 0.1
MAX_CANCEL_THREADS = 64


class IncompleteClose(Exception):
    """A close returned with less executed than requested; retried after re-reading the position."""


@dataclass
class _Run:
    correlation_id: str
    reason: str
    deadline: float  # on the injected clock
    outcomes: dict[str, SymbolOutcome] = field(default_factory=dict)
    positions_unknown: bool = False
    positions_read: bool = False
    errors: list[str] = field(default_factory=list)
    retries: int = 0

    def outcome(self, symbol: str) -> SymbolOutcome:
        return self.outcomes.setdefault(symbol, SymbolOutcome(symbol))


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}({code}): {text}" if code is not None else f"{exc.__class__.__name__}: {text}"


class LiquidationManager:
    """Runs emergency liquidations for ``symbols`` through ``order_manager``.

    ``symbols`` empty or None means "every symbol with a position" (orders are then cancelled on
    those symbols only). ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests of
    backoff and deadlines are exact and instant.
    """

    def __init__(
        self,
        config: LiquidationConfig,
        order_manager: OrderExecutionManager,
        audit_logger: AuditSink | None = None,
        symbols: Sequence[str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if audit_logger is not None and not isinstance(audit_logger, AuditSink):
            raise TypeError(f"audit_logger={audit_logger!r}: must be None or a harness.core.ports.AuditSink "
                            "(a log(event_type, correlation_id, details) method), e.g. AuditLogger")
        self.config = config
        self.order_manager = order_manager
        self.audit_logger: AuditSink | None = audit_logger
        self.symbols: list[str] = list(dict.fromkeys(symbols or []))
        self._clock = clock
        self._sleep = sleep
        self._metrics = LiquidationMetrics()
        self._running: asyncio.Future[LiquidationResult] | None = None
        self._audit_errors = 0
        self.last_result: LiquidationResult | None = None
        if audit_logger is None:
            log.warning("LiquidationManager has no audit logger: liquidations will leave no audit trail")

    # -- public API ------------------------------------------------------------------------
    async def execute_emergency_liquidation(self, reason: str = "manual") -> LiquidationResult:
        """Run (or join the running) liquidation and return its result. Never raises for exchange errors."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._execute(reason))
        else:
            log.warning("liquidation already in progress; trigger %r joins it", reason)
        return await asyncio.shield(self._running)

    @property
    def in_progress(self) -> bool:
        return self._running is not None and not self._running.done()

    def get_metrics(self) -> dict[str, Any]:
        sink = self.audit_logger
        audit_errors = self._audit_errors + (sink.write_errors if isinstance(sink, SupportsWriteErrors) else 0)
        return self._metrics.snapshot(audit_write_errors=audit_errors)

    # -- the run ---------------------------------------------------------------------------
    def _audit(self, event: AuditEvent, run: _Run, **details: Any) -> None:
        if self.audit_logger is None:
            return
        try:
            self.audit_logger.log(event.value, run.correlation_id, details)
        except Exception as exc:  # a foreign logger that raises must not stop the liquidation
            self._audit_errors += 1
            log.error("audit logger raised on %s: %s", event.value, exc)

    async def _execute(self, reason: str) -> LiquidationResult:
        started = self._clock()
        started_at = datetime.now(UTC).isoformat()
        run = _Run(uuid.uuid4().hex, reason, started + self.config.timeout_seconds)
        self._metrics.started()
        log.info("liquidation %s started: reason=%s symbols=%s", run.correlation_id, reason, self.symbols or "all")
        self._audit(
            AuditEvent.LIQUIDATION_START,
            run,
            reason=reason,
            symbols=self.symbols,
            config=self.config.model_dump(),
        )
        timed_out = False
        if not self.config.emergency_liquidation:
            log.critical(
                "EMERGENCY LIQUIDATION SKIPPED (%s): emergency_liquidation=False; positions and orders are left open",
                run.correlation_id,
            )
            state = LiquidationState.SKIPPED
        else:
            timed_out = await self._bounded(run)
            state = self._state_of(run, timed_out)
        return self._finish(run, state, started, started_at, timed_out)

    async def _bounded(self, run: _Run) -> bool:
        """Run the liquidation under the hard deadline; True when the deadline cut it short."""
        cid_token = current_correlation_id.set(run.correlation_id)
        deadline_token = current_deadline.set(time.monotonic() + self.config.timeout_seconds)
        workers = max(1, min(len(self.symbols) or MAX_CANCEL_THREADS, MAX_CANCEL_THREADS))
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="liq-cancel")
        task = asyncio.ensure_future(self._liquidate(run, executor))
        try:
            done, _ = await asyncio.wait({task}, timeout=max(0.0, run.deadline - self._clock()))
            if task in done:
                task.result()  # surfaces a bug in the engine itself
                return False
            task.cancel()
            await asyncio.wait({task}, timeout=UNWIND_GRACE_SECONDS)
            log.error("liquidation %s hit its %.1fs deadline", run.correlation_id, self.config.timeout_seconds)
            self._audit(AuditEvent.LIQUIDATION_DEADLINE_EXCEEDED, run, timeout_seconds=self.config.timeout_seconds)
            return True
        except Exception as exc:  # an engine bug: report it, never lose the audit trail
            run.errors.append(f"engine error: {_describe(exc)}")
            log.exception("liquidation %s failed inside the engine", run.correlation_id)
            return False
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            current_deadline.reset(deadline_token)
            current_correlation_id.reset(cid_token)

    async def _liquidate(self, run: _Run, executor: ThreadPoolExecutor) -> None:
        symbols = self.symbols
        positions: asyncio.Task[list[dict] | None] | None = None
        if self.config.close_positions or not symbols:
            positions = asyncio.ensure_future(self._fetch_positions(run, symbols))
        if not symbols:
            found = await positions if positions else None
            symbols = sorted({str(p["symbol"]) for p in found or []})
        for symbol in symbols:
            run.outcome(symbol)
        try:
            async with asyncio.TaskGroup() as group:
                for symbol in symbols:
                    group.create_task(self._liquidate_symbol(run, symbol, executor, positions))
        finally:
            if positions is not None and not positions.done():
                positions.cancel()

    async def _liquidate_symbol(
        self, run: _Run, symbol: str, executor: ThreadPoolExecutor, positions: asyncio.Task[list[dict] | None] | None
    ) -> None:
        outcome = run.outcome(symbol)
        if self.config.cancel_orders:
            await self._cancel(run, outcome, executor)
        if not self.config.close_positions or positions is None:
            return
        if await asyncio.shield(positions) is None:
            return
        await asyncio.gather(*(self._close(run, p) for p in outcome.positions))

    async def _fetch_positions(self, run: _Run, symbols: list[str]) -> list[dict] | None:
        ok, found, error, _ = await self._retrying(
            run, lambda attempt: self.order_manager.get_all_positions(list(symbols)), None
        )
        if not ok:
            run.positions_unknown = True
            run.errors.append(f"positions could not be read: {_describe(error)}")
            self._audit(AuditEvent.POSITIONS_FETCH_FAILED, run, error=_describe(error))
            return None
        found = [p for p in found or [] if Decimal(str(p.get("position_amt", 0))) != 0]
        run.positions_read = True
        if self.config.close_positions:
            # registered at once, so a deadline that strikes before the close counts them as open
            for position in found:
                symbol = str(position["symbol"])
                if self.symbols and symbol not in self.symbols:
                    continue
                amount = Decimal(str(position["position_amt"]))
                run.outcome(symbol).positions.append(
                    PositionOutcome(
                        symbol=symbol,
                        position_side=str(position.get("position_side", "BOTH")),
                        side="SELL" if amount > 0 else "BUY",
                        quantity=abs(amount),
                    )
                )
        self._audit(
            AuditEvent.POSITIONS_FETCHED,
            run,
            count=len(found),
            positions=[
                {"symbol": p.get("symbol"), "position_amt": str(p.get("position_amt")), "position_side": p.get("position_side", "BOTH")}
                for p in found
            ],
        )
        return found

    async def _cancel(self, run: _Run, outcome: SymbolOutcome, executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        symbol = outcome.symbol

        order_manager = self.order_manager

        def call(attempt: int) -> Awaitable[int]:
            if isinstance(order_manager, SupportsAsyncCancel):  # no thread: hundreds of symbols cancel at once on the loop
                return order_manager.cancel_all_orders_async(symbol)
            bound = functools.partial(contextvars.copy_context().run, order_manager.cancel_all_orders, symbol)
            return loop.run_in_executor(executor, bound)

        def failed(exc: BaseException, attempt: int, will_retry: bool) -> None:
            self._audit(AuditEvent.ORDER_CANCEL_FAILED, run, symbol=symbol, attempt=attempt, will_retry=will_retry, error=_describe(exc))

        ok, count, error, attempts = await self._retrying(run, call, failed)
        outcome.cancel_attempts = attempts
        if ok:
            outcome.orders_cancelled = int(count or 0)
            outcome.cancel_status = Status.DONE
            self._audit(AuditEvent.ORDER_CANCELLED, run, symbol=symbol, orders_cancelled=outcome.orders_cancelled)
        else:
            outcome.cancel_status = Status.FAILED
            outcome.cancel_error = _describe(error)
            run.errors.append(f"{symbol} cancel: {outcome.cancel_error}")

    async def _close(self, run: _Run, position: PositionOutcome) -> None:
        symbol = position.symbol

        async def call(attempt: int) -> dict:
            remaining = position.quantity - position.executed_qty
            if attempt > 1:  # the last attempt may have executed: trust the exchange, not our memory
                remaining = await self._remaining_after_error(position)
                position.unconfirmed = False  # the exchange has just said what is open
                if remaining <= 0:
                    position.executed_qty = position.quantity
                    return {"executed_qty": Decimal("0"), "status": "FILLED", "order_ids": [], "reconciled": True}
            position.attempts = attempt
            position.unconfirmed = True  # from here on an order may execute even if no answer comes back
            try:
                result = await self.order_manager.execute_market_close(symbol, position.side, remaining)
            except Exception as exc:
                position.unconfirmed = not (is_terminal(exc) or isinstance(exc, RetryableExchangeError))
                raise
            position.unconfirmed = False
            executed = Decimal(str(result.get("executed_qty", "0")))
            position.executed_qty += executed
            position.order_ids.extend(result.get("order_ids") or [])
            if executed < remaining and result.get("status") != "FILLED":
                raise IncompleteClose(f"{symbol}: executed {executed} of {remaining}")
            return result

        def failed(exc: BaseException, attempt: int, will_retry: bool) -> None:
            self._audit(
                AuditEvent.ORDER_REJECTED,
                run,
                symbol=symbol,
                side=position.side,
                position_side=position.position_side,
                quantity=position.quantity - position.executed_qty,
                attempt=attempt,
                will_retry=will_retry,
                terminal=is_terminal(exc),
                error=_describe(exc),
            )

        ok, result, error, attempts = await self._retrying(run, call, failed)
        position.attempts = max(position.attempts, attempts)
        if ok:
            position.status = Status.DONE
            self._audit(
                AuditEvent.ORDER_PLACED,
                run,
                symbol=symbol,
                side=position.side,
                position_side=position.position_side,
                quantity=position.quantity,
                executed_qty=position.executed_qty,
                order_ids=position.order_ids,
                avg_price=(result or {}).get("avg_price"),
                status="FILLED",
                attempts=position.attempts,
            )
        else:
            position.status = Status.FAILED
            position.error = _describe(error)
            run.errors.append(f"{symbol} close {position.position_side}: {position.error}")

    async def _remaining_after_error(self, position: PositionOutcome) -> Decimal:
        """Re-read the position before a retry; returns the absolute size still open on that side."""
        current = await self.order_manager.get_all_positions([position.symbol])
        for entry in current or []:
            if entry.get("symbol") != position.symbol or str(entry.get("position_side", "BOTH")) != position.position_side:
                continue
            amount = Decimal(str(entry.get("position_amt", 0)))
            if (amount > 0 and position.side == "SELL") or (amount < 0 and position.side == "BUY"):
                open_qty = min(abs(amount), position.quantity)  # never close more than we set out to
                position.executed_qty = position.quantity - open_qty
                return open_qty
        return Decimal("0")

    async def _retrying(
        self,
        run: _Run,
        call: Callable[[int], Awaitable[T]],
        on_failure: Callable[[BaseException, int, bool], None] | None,
    ) -> tuple[bool, T | None, BaseException | None, int]:
        """Call with retries and backoff; returns (ok, value, last error, attempts)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return True, await call(attempt), None, attempt
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.config.retry_delay_seconds * 2 ** (attempt - 1)
                retry_after = getattr(exc, "retry_after", None)
                if isinstance(retry_after, (int, float)) and retry_after > delay:
                    delay = float(retry_after)
                will_retry = (
                    not is_terminal(exc)
                    and attempt <= self.config.max_retries
                    and self._clock() + delay < run.deadline
                )
                if on_failure is not None:
                    on_failure(exc, attempt, will_retry)
                if not will_retry:
                    return False, None, exc, attempt
                run.retries += 1
                self._metrics.retried()
                await self._sleep(delay)

    # -- the verdict -----------------------------------------------------------------------
    def _state_of(self, run: _Run, timed_out: bool) -> LiquidationState:
        outcomes = run.outcomes.values()
        cancels_ok = not self.config.cancel_orders or all(o.cancel_status is Status.DONE for o in outcomes)
        positions = [p for o in outcomes for p in o.positions]
        closes_ok = all(p.status is Status.DONE for p in positions)
        engine_error = any(e.startswith("engine error") for e in run.errors)
        if cancels_ok and closes_ok and not run.positions_unknown and not timed_out and not engine_error:
            return LiquidationState.COMPLETED
        acted = sum(o.orders_cancelled for o in outcomes) + sum(p.status is Status.DONE for p in positions)
        return LiquidationState.PARTIAL if acted else LiquidationState.FAILED

    def _finish(
        self, run: _Run, state: LiquidationState, started: float, started_at: str, timed_out: bool
    ) -> LiquidationResult:
        duration = max(0.0, self._clock() - started)
        positions = [p for o in run.outcomes.values() for p in o.positions]
        for outcome in run.outcomes.values():
            if outcome.cancel_status is Status.PENDING and self.config.cancel_orders and timed_out:
                run.errors.append(f"{outcome.symbol} cancel: unfinished at the deadline")
        for position in positions:
            if position.status is Status.PENDING and state is not LiquidationState.SKIPPED:
                run.errors.append(f"{position.symbol} close {position.position_side}: unfinished at the deadline")
            if position.status is not Status.DONE and position.unconfirmed:
                run.errors.append(
                    f"{position.symbol} close {position.position_side}: may have executed, not confirmed (check the exchange)"
                )
        # positions never read may all still be open: each targeted symbol counts as one failed position,
        # so positions_failed never says 0 about an account the engine could not see
        unknown: list[str] = []
        if state is not LiquidationState.SKIPPED and self.config.close_positions and not run.positions_read:
            unknown = list(self.symbols) or ["*"]
            run.errors.append(f"positions unknown on {', '.join(unknown)}: counted as failed")
        result = LiquidationResult(
            state=state,
            correlation_id=run.correlation_id,
            reason=run.reason,
            positions_closed=sum(p.status is Status.DONE for p in positions),
            positions_failed=sum(p.status is not Status.DONE for p in positions) + len(unknown),
            orders_cancelled=sum(o.orders_cancelled for o in run.outcomes.values()),
            total_duration_seconds=round(duration, 6),
            errors=run.errors,
            symbols=run.outcomes,
            timed_out=timed_out,
            retries=run.retries,
            started_at=started_at,
            positions_unknown=unknown,
        )
        self._audit(
            AuditEvent.LIQUIDATION_COMPLETE,
            run,
            state=state.value,
            reason=run.reason,
            positions_closed=result.positions_closed,
            positions_failed=result.positions_failed,
            orders_cancelled=result.orders_cancelled,
            positions_unknown=unknown,
            duration_seconds=result.total_duration_seconds,
            timed_out=timed_out,
            retries=run.retries,
            errors=run.errors,
            symbols={name: o.to_dict() for name, o in run.outcomes.items()},
        )
        self._metrics.finished(
            state.value, result.total_duration_seconds, result.positions_closed, result.positions_failed, result.orders_cancelled
        )
        self.last_result = result
        level = logging.INFO if state in (LiquidationState.COMPLETED, LiquidationState.SKIPPED) else logging.ERROR
        log.log(
            level,
            "liquidation %s finished: state=%s closed=%d failed=%d cancelled=%d duration=%.3fs",
            run.correlation_id,
            state.value,
            result.positions_closed,
            result.positions_failed,
            result.orders_cancelled,
            result.total_duration_seconds,
        )
        return result
