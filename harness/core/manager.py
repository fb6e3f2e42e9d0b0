"""LiquidationManager: cancel every order and close every position inside a hard deadline.

Per symbol, concurrently across symbols: cancel the symbol's orders (the synchronous
``cancel_all_orders`` runs in a thread pool sized for the symbol count; an order manager that is also
a ``SupportsAsyncCancel`` (``async cancel_all_orders_async(symbol)``, same contract, see
``harness.core.ports``) is awaited on the loop instead, so a large account needs no threads), then
close its positions (opposite side, absolute size). Positions are read once, account-wide
(``get_all_positions([])``), concurrently with the cancels.

Scope: by default (``symbols`` empty or None) the run covers the WHOLE ACCOUNT: every symbol with a
position, and every symbol with an open regular or algo order, found with the order manager's
``SupportsOrderSnapshot`` (``harness.core.ports``). An order manager without it gets the fallback:
orders are cancelled on the symbols with positions only, and the result (``order_discovery=
"unavailable"``) and the trail (ORDER_DISCOVERY_UNAVAILABLE) say so. With an explicit scope, only
those symbols are touched; positions and orders seen outside it are listed in
``result.out_of_scope``, in an OUT_OF_SCOPE_LEFT_OPEN audit event and in a WARNING.

Unknown is never flat: a positions read that fails, returns something other than a list, or holds
an entry ``harness.core.positions.read_position`` cannot read makes the positions unknown; the run
is then never COMPLETED and ``positions_failed``/``positions_unknown`` count them. An open-order
snapshot that cannot be read (``order_discovery="failed"``) also rules out COMPLETED.

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
from harness.core.ports import (
    AuditSink,
    OrderExecutionManager,
    SupportsAsyncCancel,
    SupportsOrderSnapshot,
    SupportsWriteErrors,
)
from harness.core.positions import PositionEntry, read_positions

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
    unreadable: list[str] = field(default_factory=list)  # symbols ("*": unknown) of position entries not readable
    out_of_scope: list[dict[str, str]] = field(default_factory=list)
    order_discovery: str = "account"

    def outcome(self, symbol: str) -> SymbolOutcome:
        return self.outcomes.setdefault(symbol, SymbolOutcome(symbol))


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}({code}): {text}" if code is not None else f"{exc.__class__.__name__}: {text}"


class LiquidationManager:
    """Runs emergency liquidations for ``symbols`` through ``order_manager``.

    ``symbols`` empty or None means the whole account (module docstring); given, it is the explicit
    scope and what lies outside it is reported, not touched. ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests of
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
        self._warned_no_snapshot = False
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
        scope = self.symbols
        positions: asyncio.Task[list[PositionEntry] | None] | None = None
        if self.config.close_positions or not scope:
            positions = asyncio.ensure_future(self._fetch_positions(run))
        orders: asyncio.Task[set[str] | None] | None = None
        if not self.config.cancel_orders:
            run.order_discovery = "off"
        elif isinstance(self.order_manager, SupportsOrderSnapshot):
            orders = asyncio.ensure_future(self._fetch_order_symbols(run))
        else:
            run.order_discovery = "unavailable"
            level = logging.DEBUG if self._warned_no_snapshot else logging.WARNING  # once per manager, then the trail says it
            self._warned_no_snapshot = True
            log.log(
                level,
                "liquidation %s: %s cannot list the account's open orders (no SupportsOrderSnapshot): orders are "
                "cancelled on the symbols with positions%s only; orders on other symbols are not looked for",
                run.correlation_id, type(self.order_manager).__name__, " and the scope" if scope else "",
            )
            self._audit(AuditEvent.ORDER_DISCOVERY_UNAVAILABLE, run, order_manager=type(self.order_manager).__name__,
                        cancelled_on="symbols with positions" + (" and the scope" if scope else ""))
        started: set[str] = set()

        def spawn(group: asyncio.TaskGroup, symbols: Sequence[str] | set[str]) -> None:
            for symbol in sorted(set(symbols) - started):
                started.add(symbol)
                run.outcome(symbol)
                group.create_task(self._liquidate_symbol(run, symbol, executor, positions))

        async def when_found(group: asyncio.TaskGroup, task: asyncio.Task[Any], symbols_of: Callable[[Any], set[str]]) -> None:
            # each discovery starts its symbols as soon as it answers: a slow or hung order snapshot
            # never holds up the closes of positions already known (nor the other way round)
            spawn(group, symbols_of(await asyncio.shield(task)))

        report = asyncio.ensure_future(self._report_out_of_scope(run, positions, orders)) if scope else None
        try:
            async with asyncio.TaskGroup() as group:
                if scope:
                    spawn(group, scope)
                else:  # the whole account: every symbol with a position or an open order
                    if positions is not None:
                        group.create_task(when_found(group, positions, lambda found: {p.symbol for p in found or []}))
                    if orders is not None:
                        group.create_task(when_found(group, orders, lambda found: set(found or ())))
            if report is not None:  # the scope is done: what lies outside it must not hold the run
                await asyncio.wait({report}, timeout=UNWIND_GRACE_SECONDS)
        finally:
            if report is not None and not report.done():
                report.cancel()
                run.errors.append("what is open outside the scope could not be listed in time")
            if orders is not None and not orders.done():
                run.order_discovery = "failed"
                run.errors.append("open orders were not read account-wide before the deadline: orders on symbols "
                                  "without a position may remain")
            for task in (positions, orders):
                if task is not None and not task.done():
                    task.cancel()

    async def _liquidate_symbol(
        self, run: _Run, symbol: str, executor: ThreadPoolExecutor,
        positions: asyncio.Task[list[PositionEntry] | None] | None,
    ) -> None:
        outcome = run.outcome(symbol)
        if self.config.cancel_orders:
            await self._cancel(run, outcome, executor)
        if not self.config.close_positions or positions is None:
            return
        if await asyncio.shield(positions) is None:
            return
        if len(outcome.positions) == 1:  # one side to close (the usual case): no extra task
            await self._close(run, outcome.positions[0])
        else:
            await asyncio.gather(*(self._close(run, p) for p in outcome.positions))

    async def _fetch_positions(self, run: _Run) -> list[PositionEntry] | None:
        """ONE account-wide positions read; every nonzero readable entry (in scope or not), or None."""
        ok, found, error, _ = await self._retrying(run, lambda attempt: self.order_manager.get_all_positions([]), None)
        if not ok:
            run.positions_unknown = True
            run.errors.append(f"positions could not be read: {_describe(error)}")
            self._audit(AuditEvent.POSITIONS_FETCH_FAILED, run, error=_describe(error))
            return None
        entries, problems = read_positions(found)
        run.positions_read = True
        for problem in problems:
            if self.symbols and problem.symbol is not None and problem.symbol not in self.symbols:
                run.out_of_scope.append({"symbol": problem.symbol, "kind": "position", "position_side": "?",
                                         "position_amt": "unreadable"})
                continue
            run.unreadable.append(problem.symbol or "*")
            run.errors.append(f"position unknown: {problem}")
        if problems:
            log.error("liquidation %s: %d position entr%s could not be read (counted as unknown, never as flat): %s",
                      run.correlation_id, len(problems), "y" if len(problems) == 1 else "ies",
                      "; ".join(str(p) for p in problems))
            self._audit(AuditEvent.POSITIONS_UNREADABLE, run, problems=[str(p) for p in problems])
        if self.config.close_positions:
            # registered at once, so a deadline that strikes before the close counts them as open
            for entry in entries:
                if self.symbols and entry.symbol not in self.symbols:
                    continue
                run.outcome(entry.symbol).positions.append(
                    PositionOutcome(
                        symbol=entry.symbol,
                        position_side=entry.position_side,
                        side="SELL" if entry.amount > 0 else "BUY",
                        quantity=abs(entry.amount),
                    )
                )
        self._audit(AuditEvent.POSITIONS_FETCHED, run, count=len(entries), positions=[e.to_dict() for e in entries])
        return entries

    async def _fetch_order_symbols(self, run: _Run) -> set[str] | None:
        """The account's symbols with open regular or algo orders (one snapshot), or None when unreadable."""
        order_manager = self.order_manager
        assert isinstance(order_manager, SupportsOrderSnapshot)

        async def call(attempt: int) -> set[str]:
            reply = await order_manager.open_order_symbols()
            if isinstance(reply, (str, bytes)) or not isinstance(reply, (set, frozenset, list, tuple)) or not all(
                isinstance(s, str) and s for s in reply
            ):
                raise ValueError(f"open_order_symbols returned {reply!r:.160}: expected a set of symbols")
            return set(reply)

        ok, found, error, _ = await self._retrying(run, call, None)
        if not ok:
            run.order_discovery = "failed"
            where = "the symbols with positions" + (" and the scope" if self.symbols else "")
            run.errors.append(f"open orders could not be read account-wide: {_describe(error)}; cancelled on {where} only")
            self._audit(AuditEvent.OPEN_ORDERS_FETCH_FAILED, run, error=_describe(error), cancelled_on=where)
            return None
        return found

    async def _report_out_of_scope(
        self, run: _Run, positions: asyncio.Task[list[PositionEntry] | None] | None,
        orders: asyncio.Task[set[str] | None] | None,
    ) -> None:
        """With a scope: list what is open outside it (WARNING, result, OUT_OF_SCOPE_LEFT_OPEN)."""
        scope = set(self.symbols)
        entries = await asyncio.shield(positions) if positions is not None else None
        with_orders = await asyncio.shield(orders) if orders is not None else None
        for entry in entries or []:
            if entry.symbol not in scope:
                run.out_of_scope.append({"symbol": entry.symbol, "kind": "position", "position_side": entry.position_side,
                                         "position_amt": str(entry.amount)})
        for symbol in sorted(set(with_orders or ()) - scope):
            run.out_of_scope.append({"symbol": symbol, "kind": "orders"})
        if run.out_of_scope:
            described = ", ".join(
                f"{i['symbol']} {i['position_side']} {i['position_amt']}" if i["kind"] == "position" else f"{i['symbol']} open orders"
                for i in run.out_of_scope
            )
            log.warning("liquidation %s: left open OUTSIDE the configured symbols %s: %s",
                        run.correlation_id, ",".join(self.symbols), described)
            self._audit(AuditEvent.OUT_OF_SCOPE_LEFT_OPEN, run, scope=list(self.symbols), items=list(run.out_of_scope))

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
        entries, problems = read_positions(current)
        if problems:  # never read "unknown" as "closed": this attempt fails and the retry re-reads
            raise problems[0]
        for entry in entries:
            if entry.symbol != position.symbol or entry.position_side != position.position_side:
                continue
            amount = entry.amount
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
        # an unreadable order snapshot leaves orders unknown on the whole account; with a scope it only
        # costs the out-of-scope listing (the scope's own symbols are cancelled one by one)
        orders_unknown = run.order_discovery == "failed" and not self.symbols
        known = not run.positions_unknown and not run.unreadable and not orders_unknown
        if cancels_ok and closes_ok and known and not timed_out and not engine_error:
            return LiquidationState.COMPLETED
        acted = sum(o.orders_cancelled for o in outcomes) + sum(p.status is Status.DONE for p in positions)
        return LiquidationState.PARTIAL if acted else LiquidationState.FAILED

    def _finish(
        self, run: _Run, state: LiquidationState, started: float, started_at: str, timed_out: bool
    ) -> LiquidationResult:
        duration = max(0.0, self._clock() - started)
        positions = [p for o in run.outcomes.values() for p in o.positions]
        skipped = state is LiquidationState.SKIPPED
        for outcome in run.outcomes.values():
            if outcome.cancel_status is Status.PENDING and self.config.cancel_orders and not skipped:
                why = "unfinished at the deadline" if timed_out or outcome.cancel_attempts else "never attempted"
                run.errors.append(f"{outcome.symbol} cancel: {why}")
        for position in positions:
            if position.status is Status.PENDING and not skipped:
                why = "unfinished at the deadline" if timed_out or position.attempts else "never attempted"
                run.errors.append(f"{position.symbol} close {position.position_side}: {why}")
            if position.status is not Status.DONE and position.unconfirmed:
                run.errors.append(
                    f"{position.symbol} close {position.position_side}: may have executed, not confirmed (check the exchange)"
                )
        # positions never read may all still be open: each targeted symbol counts as one failed position,
        # so positions_failed never says 0 about an account the engine could not see; so does each entry
        # the engine could not read
        unknown: list[str] = []
        if not skipped and self.config.close_positions and not run.positions_read:
            unknown = list(self.symbols) or ["*"]
            run.errors.append(f"positions unknown on {', '.join(unknown)}: counted as failed")
        elif not skipped and run.unreadable:
            unknown = list(run.unreadable)
            run.errors.append(f"positions unknown on {', '.join(unknown)} (unreadable entries): counted as failed")
        discovery = "off" if skipped else run.order_discovery
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
            out_of_scope=list(run.out_of_scope),
            order_discovery=discovery,
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
            out_of_scope=list(run.out_of_scope),
            order_discovery=discovery,
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
