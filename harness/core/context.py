"""Per-run context the engine shares with order managers without changing the seed signatures.

``current_correlation_id`` lets an adapter tie its client order ids to the run; ``current_deadline``
(a ``time.monotonic()`` instant) lets it bound each HTTP request by the time the run has left.
Both are contextvars: asyncio tasks inherit them, and the engine copies them into its cancel threads.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

current_correlation_id: ContextVar[str | None] = ContextVar("current_correlation_id", default=None)
current_deadline: ContextVar[float | None] = ContextVar("current_deadline", default=None)


def remaining_time(default: float | None = None) -> float | None:
    """Seconds left before the current run's deadline (never negative), or ``default`` outside a run."""
    deadline = current_deadline.get()
    if deadline is None:
        return default
    return max(0.0, deadline - time.monotonic())
