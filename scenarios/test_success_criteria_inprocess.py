"""Testnet Success Criteria (../shared/CHECKLIST.md) that are checked in-process, in milliseconds.

* Metrics updated correctly: LiquidationManager over the simulator's in-memory face (a SimBook with
  a locked symbol for PARTIAL and FAILED, a clean book for COMPLETED, a disabled config for SKIPPED).
* No memory leaks: hundreds of consecutive liquidations in one process under tracemalloc; a
  negative control leaks ~1 KB per run on purpose and must trip the same detector.
* Correlation IDs link all related events: several runs in one audit file, grouped by id.
"""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import allure
import pytest

from harness.core import AuditLogger, AuditRecord, LiquidationConfig, LiquidationManager, LiquidationResult, read_audit
from harness.exchanges.sim import FaultPlan, InMemoryOrderManager, SimBook

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT"]
FAST = {"retry_delay_seconds": 0.1}
DISABLED = {"emergency_liquidation": False, "close_positions": False, "cancel_orders": False}
#: Growth allowed per liquidation (least-squares slope of traced memory). A leak of ~1 KB per run
#: measures ~1200 B/run. A sound engine still shows bounded noise of 10-30 KB (asyncio keeps
#: cancelled timer handles until it prunes them, dicts keep their high-water size), i.e. up to
#: ~150 B/run over 300 runs, so the bound sits between the two with room on both sides.
LEAK_BOUND_BYTES_PER_RUN = 400.0


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLogger]:
    with AuditLogger(tmp_path / "logs" / "audit.jsonl") as logger:
        yield logger


def seeded_book(positions: dict[str, str], limit_orders: int = 0) -> SimBook:
    book = SimBook()
    for symbol, amount in positions.items():
        book.set_position(symbol, amount)
    for _ in range(limit_orders):
        book.place_order("BTCUSDT", "BUY", "LIMIT", "0.010", "30000", time_in_force="GTC")
    return book


def reseed(book: SimBook, positions: dict[str, str]) -> None:
    for symbol, amount in positions.items():
        book.set_position(symbol, amount)


# -- Metrics updated correctly -----------------------------------------------------------------
def expected_metrics(results: list[LiquidationResult]) -> dict[str, Any]:
    """What get_metrics() must say after ``results``, computed from the results themselves."""
    states = [r.state.value for r in results]
    durations = [r.total_duration_seconds for r in results]
    closed, failed = sum(r.positions_closed for r in results), sum(r.positions_failed for r in results)
    acted = len(results) - states.count("SKIPPED")
    return {
        "total_executions": len(results),
        "executions_by_state": {s: states.count(s) for s in ("COMPLETED", "PARTIAL", "FAILED", "SKIPPED")},
        "last_state": states[-1] if states else None,
        "last_execution_time_seconds": durations[-1] if durations else 0.0,
        "average_execution_time_seconds": sum(durations) / len(durations) if durations else 0.0,
        "max_execution_time_seconds": max(durations, default=0.0),
        "success_rate": states.count("COMPLETED") / acted if acted else 0.0,
        "positions_closed": closed,
        "positions_failed": failed,
        "position_close_success_rate": closed / (closed + failed) if closed + failed else 0.0,
        "orders_cancelled": sum(r.orders_cancelled for r in results),
        "in_progress": False,
    }


def metric_mismatches(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    def same(a: Any, b: Any) -> bool:
        return abs(a - b) <= 1e-6 if isinstance(b, float) and isinstance(a, (int, float)) else a == b

    mismatched = {k: (actual.get(k), v) for k, v in expected.items() if not same(actual.get(k), v)}
    histogram = actual.get("execution_time_histogram", {})
    if histogram.get("count") != expected["total_executions"]:
        mismatched["execution_time_histogram.count"] = (histogram.get("count"), expected["total_executions"])
    return mismatched


async def run_and_check(manager: LiquidationManager, results: list[LiquidationResult], state: str, step: str) -> None:
    with allure.step(step):
        result = await manager.execute_emergency_liquidation(step)
        results.append(result)
        metrics = manager.get_metrics()
        allure.attach(json.dumps(metrics, indent=2), name=f"get_metrics() after: {step}",
                      attachment_type=allure.attachment_type.JSON)
    assert result.state.value == state, f"{step}: state {result.state.value}, expected {state}; errors {result.errors}"
    mismatched = metric_mismatches(metrics, expected_metrics(results))
    assert not mismatched, f"after {step}: metrics (actual, expected) differ: {mismatched}"


@pytest.mark.checklist("criteria.metrics")
async def test_metrics_updated_correctly_after_liquidations(audit: AuditLogger) -> None:
    book = seeded_book({"BTCUSDT": "0.010", "ETHUSDT": "-0.500"}, limit_orders=2)
    faults = FaultPlan()
    manager = LiquidationManager(LiquidationConfig(**FAST), InMemoryOrderManager(book, faults), audit, SYMBOLS)
    results: list[LiquidationResult] = []
    await run_and_check(manager, results, "COMPLETED", "clean account: 2 positions, 2 orders")
    reseed(book, {"BTCUSDT": "0.020", "ETHUSDT": "0.100", "BNBUSDT": "1.00"})
    faults.lock_symbol("BNBUSDT")
    await run_and_check(manager, results, "PARTIAL", "BNBUSDT locked: 2 of 3 positions close")
    reseed(book, {"BNBUSDT": "2.00"})
    await run_and_check(manager, results, "FAILED", "only the locked BNBUSDT position open")
    totals = manager.get_metrics()
    assert (totals["positions_closed"], totals["positions_failed"], totals["orders_cancelled"]) == (4, 2, 2), (
        f"closed/failed/cancelled {totals['positions_closed']}/{totals['positions_failed']}/{totals['orders_cancelled']},"
        " expected 4/2/2 from the three runs")

    disabled_book = seeded_book({"BTCUSDT": "0.010"})
    disabled = LiquidationManager(LiquidationConfig(**DISABLED), InMemoryOrderManager(disabled_book), audit, SYMBOLS)
    await run_and_check(disabled, [], "SKIPPED", "emergency_liquidation=False")
    assert disabled_book.position_amount("BTCUSDT") == Decimal("0.010"), "a SKIPPED liquidation touched the position"


# -- Correlation IDs link all related events ---------------------------------------------------
def correlation_problems(events: list[AuditRecord], run_ids: list[str]) -> list[str]:
    """How the audit trail fails to link each run's events by one correlation id; [] when it does."""
    problems = [f"line {e.line} ({e.event_type}) has no correlation_id" for e in events if not e.correlation_id]
    positions: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for index, event in enumerate(events):
        positions[str(event.correlation_id)].append((index, event.event_type))
    if len(set(run_ids)) != len(run_ids):
        problems.append(f"correlation ids repeat between runs: {run_ids}")
    unknown = sorted(set(positions) - set(run_ids) - {"None"})
    if unknown:
        problems.append(f"events carry ids of no run: {unknown}")
    for run_id in run_ids:
        group = positions.get(run_id, [])
        kinds = [kind for _, kind in group]
        if kinds.count("LIQUIDATION_START") != 1 or kinds.count("LIQUIDATION_COMPLETE") != 1:
            problems.append(f"run {run_id}: {kinds.count('LIQUIDATION_START')} START and "
                            f"{kinds.count('LIQUIDATION_COMPLETE')} COMPLETE events, expected one each")
        elif kinds[0] != "LIQUIDATION_START" or kinds[-1] != "LIQUIDATION_COMPLETE":
            problems.append(f"run {run_id}: events are not between its START and COMPLETE: {kinds}")
    return problems


@pytest.mark.checklist("criteria.correlation")
async def test_correlation_ids_link_all_events_of_a_run(audit: AuditLogger) -> None:
    book = seeded_book({"BTCUSDT": "0.010", "ETHUSDT": "-0.500"}, limit_orders=1)
    faults = FaultPlan()
    manager = LiquidationManager(LiquidationConfig(**FAST), InMemoryOrderManager(book, faults), audit, SYMBOLS)
    disabled = LiquidationManager(LiquidationConfig(**DISABLED), InMemoryOrderManager(book), audit, SYMBOLS)
    results = [await manager.execute_emergency_liquidation("run 1: normal")]
    reseed(book, {"ETHUSDT": "0.100", "BNBUSDT": "1.00"})
    faults.lock_symbol("BNBUSDT")
    results.append(await manager.execute_emergency_liquidation("run 2: partial"))
    results.append(await disabled.execute_emergency_liquidation("run 3: disabled"))
    results.append(await manager.execute_emergency_liquidation("run 4: nothing left but the lock"))
    events = list(read_audit(audit.path).records)
    allure.attach.file(str(audit.path), name="audit.jsonl", attachment_type=allure.attachment_type.TEXT, extension="jsonl")
    run_ids = [r.correlation_id for r in results]
    problems = correlation_problems(events, run_ids)
    assert not problems, f"correlation ids do not link the runs' events: {problems}"
    by_run = {run_id: [e for e in events if e.correlation_id == run_id] for run_id in run_ids}
    partial_kinds = {e.event_type for e in by_run[results[1].correlation_id]}
    assert {"ORDER_PLACED", "ORDER_REJECTED"} <= partial_kinds, f"the PARTIAL run's events lack a close or a rejection: {partial_kinds}"
    for result in results:
        complete = by_run[result.correlation_id][-1]
        assert complete.details.get("state") == result.state.value, (
            f"run {result.correlation_id}: LIQUIDATION_COMPLETE says {complete.details.get('state')}, result says {result.state.value}")

    with allure.step("Negative control: one event moved to another run's id is detected"):
        tampered = list(events)
        tampered[1] = replace(tampered[1], correlation_id=run_ids[1])
        assert correlation_problems(tampered, run_ids), "the correlation check accepted an event filed under the wrong run"


# -- No memory leaks ---------------------------------------------------------------------------
class FlatAccountOrderManager:
    """A port implementation that keeps nothing between calls: every run sees the same positions.

    The simulator's faces record every call and keep an order history by design (an exchange keeps
    history), which would hide the engine's own memory behaviour, so the measurement uses this.
    """

    def __init__(self, symbols: list[str]) -> None:
        self.positions = [{"symbol": s, "position_amt": Decimal("0.010"), "position_side": "BOTH"} for s in symbols]

    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        return [dict(p) for p in self.positions if not symbols or p["symbol"] in symbols]  # [] = every symbol

    def cancel_all_orders(self, symbol: str) -> int:
        return 1

    async def execute_market_close(self, symbol: str, side: str, quantity: float) -> dict:
        qty = Decimal(str(quantity))
        return {"symbol": symbol, "side": side, "requested_qty": qty, "executed_qty": qty, "status": "FILLED",
                "order_ids": [1], "client_order_ids": ["lq-1"], "avg_price": Decimal("100")}


class LeakingOrderManager(FlatAccountOrderManager):
    """Negative control: keeps ~1 KB per liquidation forever."""

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self.kept: list[bytes] = []

    async def get_all_positions(self, symbols: list[str]) -> list[dict]:
        self.kept.append(bytes(1024))
        return await super().get_all_positions(symbols)


@dataclass
class MemoryTrace:
    """Traced Python memory (bytes) after each sampled liquidation, counted from the end of warm-up."""

    runs: list[int]
    traced: list[int]

    def slope(self) -> float:
        """Growth in bytes per liquidation (least squares over the samples)."""
        mean_x, mean_y = sum(self.runs) / len(self.runs), sum(self.traced) / len(self.traced)
        spread = sum((x - mean_x) ** 2 for x in self.runs)
        return sum((x - mean_x) * (y - mean_y) for x, y in zip(self.runs, self.traced, strict=True)) / spread

    def csv(self) -> str:
        return "run,traced_bytes\n" + "".join(f"{x},{y}\n" for x, y in zip(self.runs, self.traced, strict=True))

    def svg(self, title: str, bound: float) -> str:
        """A line chart of the samples with the allowed growth as a dashed line."""
        width, height, pad = 640, 320, 50
        limit = [self.traced[0] + bound * x for x in self.runs]
        low, high = min(self.traced + limit), max(self.traced + limit)
        span_x, span_y = max(self.runs[-1], 1), max(high - low, 1)

        def point(x: float, y: float) -> str:
            return f"{pad + (width - 2 * pad) * x / span_x:.1f},{height - pad - (height - 2 * pad) * (y - low) / span_y:.1f}"

        line = " ".join(point(x, y) for x, y in zip(self.runs, self.traced, strict=True))
        allowed = f"{point(0, limit[0])} {point(self.runs[-1], limit[-1])}"
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">'
            f'<rect width="{width}" height="{height}" fill="white"/>'
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
            f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">liquidations after warm-up (0..{self.runs[-1]})</text>'
            f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">'
            f'traced KiB ({low / 1024:.0f}..{high / 1024:.0f})</text>'
            f'<polyline points="{allowed}" fill="none" stroke="red" stroke-dasharray="6,4"/>'
            f'<text x="{width - pad}" y="{pad - 8}" text-anchor="end" fill="red">allowed: {bound:g} B/run</text>'
            f'<polyline points="{line}" fill="none" stroke="steelblue" stroke-width="2"/>'
            "</svg>"
        )


async def trace_liquidations(manager: LiquidationManager, warmup: int, runs: int, every: int) -> MemoryTrace:
    """Under tracemalloc, run ``warmup`` liquidations, then ``runs`` more sampling every ``every`` runs.

    The warm-up runs traced too: bounded structures (caches, buffers) that turn over during the
    first runs would otherwise read as growth. Objects alive after the warm-up are then frozen out
    of the collector (``gc.freeze``), so each sample's ``gc.collect()`` only walks what the measured
    runs created. INFO logging is suspended while measuring: pytest keeps every captured log record
    in memory, which would read as a leak that the deployed bot (logging to a file) does not have.
    """
    was_tracing, was_disabled = tracemalloc.is_tracing(), logging.root.manager.disable
    logging.disable(logging.INFO)
    if not was_tracing:
        tracemalloc.start()
    trace = MemoryTrace([], [])
    try:
        for _ in range(warmup):
            await manager.execute_emergency_liquidation("memory warm-up")
        gc.collect()
        gc.freeze()
        for run in range(runs + 1):
            if run % every == 0 or run == runs:
                gc.collect()
                trace.runs.append(run)
                trace.traced.append(tracemalloc.get_traced_memory()[0])
            if run < runs:
                await manager.execute_emergency_liquidation("memory run")
    finally:
        if not was_tracing:
            tracemalloc.stop()
        gc.unfreeze()
        logging.disable(was_disabled)
    return trace


@pytest.mark.parametrize(("leaking", "warmup", "runs", "every"), [
    pytest.param(False, 100, 300, 25, id="300-consecutive-liquidations", marks=pytest.mark.checklist("criteria.memory")),
    pytest.param(True, 20, 60, 10, id="negative-control-leaks-1kb-per-run", marks=pytest.mark.checklist("criteria.memory")),
])
async def test_no_memory_leak_over_consecutive_liquidations(tmp_path: Path, leaking: bool, warmup: int, runs: int,
                                                            every: int) -> None:
    symbols = SYMBOLS[:2]
    order_manager = (LeakingOrderManager if leaking else FlatAccountOrderManager)(symbols)
    with AuditLogger(tmp_path / "audit.jsonl", fsync_events=()) as audit:
        manager = LiquidationManager(LiquidationConfig(**FAST), order_manager, audit, symbols)
        with allure.step(f"{warmup} warm-up then {runs} liquidations under tracemalloc"):
            trace = await trace_liquidations(manager, warmup, runs, every)
    slope = trace.slope()
    label = "leaking order manager (control)" if leaking else "liquidation engine"
    allure.attach(trace.csv(), name=f"memory samples: {label}", attachment_type=allure.attachment_type.CSV)
    allure.attach(trace.svg(f"Traced memory, {label}: {slope:.0f} B/run", LEAK_BOUND_BYTES_PER_RUN),
                  name=f"memory chart: {label}", attachment_type=allure.attachment_type.SVG)
    metrics = manager.get_metrics()
    assert metrics["executions_by_state"]["COMPLETED"] == warmup + runs, f"not every run COMPLETED: {metrics['executions_by_state']}"
    if leaking:
        assert slope > LEAK_BOUND_BYTES_PER_RUN, (
            f"the detector missed a 1 KB/run leak: {slope:.0f} B/run is within the {LEAK_BOUND_BYTES_PER_RUN:g} B/run bound")
    else:
        growth = trace.traced[-1] - trace.traced[0]
        assert slope <= LEAK_BOUND_BYTES_PER_RUN, (
            f"memory grows {slope:.0f} B per liquidation ({growth} B over {runs} runs), "
            f"bound {LEAK_BOUND_BYTES_PER_RUN:g} B/run: the engine keeps something from every run")
