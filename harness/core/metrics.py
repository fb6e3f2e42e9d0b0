"""LiquidationMetrics: the counters behind ``LiquidationManager.get_metrics()``.

Every field is present from the start (zeros and ``None``), so a monitoring probe never has to guess.
The Prometheus exposition (harness.bot.metrics_server) reads the same dictionary.
"""

from __future__ import annotations

import threading
import time
from typing import Any

STATES: tuple[str, ...] = ("COMPLETED", "PARTIAL", "FAILED", "SKIPPED")
#: finite upper bounds (seconds); the implicit +Inf bucket is the total count (kept out: JSON has no Infinity)
DURATION_BUCKETS: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 30.0)


class LiquidationMetrics:
    """Thread-safe counters; ``snapshot()`` returns a fresh plain dict."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total_executions = 0
        self.executions_by_state: dict[str, int] = dict.fromkeys(STATES, 0)
        self.last_state: str | None = None
        self.last_execution_time = 0.0
        self.total_execution_time = 0.0
        self.max_execution_time = 0.0
        self.bucket_counts = [0] * len(DURATION_BUCKETS)
        self.positions_closed = 0
        self.positions_failed = 0
        self.orders_cancelled = 0
        self.retries = 0
        self.in_progress_since: float | None = None

    def started(self, wall_time: float | None = None) -> None:
        with self._lock:
            self.in_progress_since = time.time() if wall_time is None else wall_time

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    def finished(self, state: str, duration: float, positions_closed: int, positions_failed: int, orders_cancelled: int) -> None:
        with self._lock:
            self.total_executions += 1
            self.executions_by_state[state] = self.executions_by_state.get(state, 0) + 1
            self.last_state = state
            self.last_execution_time = duration
            self.total_execution_time += duration
            self.max_execution_time = max(self.max_execution_time, duration)
            for index, bound in enumerate(DURATION_BUCKETS):
                if duration <= bound:
                    self.bucket_counts[index] += 1
            self.positions_closed += positions_closed
            self.positions_failed += positions_failed
            self.orders_cancelled += orders_cancelled
            self.in_progress_since = None

    def snapshot(self, audit_write_errors: int = 0) -> dict[str, Any]:
        with self._lock:
            executions = self.total_executions
            attempted_positions = self.positions_closed + self.positions_failed
            acted = executions - self.executions_by_state["SKIPPED"]  # success rate: COMPLETED vs PARTIAL/FAILED
            return {
                "total_executions": executions,
                "executions_by_state": dict(self.executions_by_state),
                "last_state": self.last_state,
                "last_execution_time_seconds": self.last_execution_time,
                "average_execution_time_seconds": self.total_execution_time / executions if executions else 0.0,
                "max_execution_time_seconds": self.max_execution_time,
                "execution_time_histogram": {
                    "buckets": [[bound, count] for bound, count in zip(DURATION_BUCKETS, self.bucket_counts, strict=True)],
                    "sum": self.total_execution_time,
                    "count": executions,
                },
                "success_rate": self.executions_by_state["COMPLETED"] / acted if acted else 0.0,
                "positions_closed": self.positions_closed,
                "positions_failed": self.positions_failed,
                "position_close_success_rate": self.positions_closed / attempted_positions if attempted_positions else 0.0,
                "orders_cancelled": self.orders_cancelled,
                "retries": self.retries,
                "audit_write_errors": audit_write_errors,
                "in_progress": self.in_progress_since is not None,
                "in_progress_since": self.in_progress_since,
            }
