"""The one fake clock of the test suite: time moves only when the code under test sleeps.

``ManualClock`` stands in for ``time.monotonic`` (call it) and for both kinds of sleep the code
accepts by injection: ``await clock.sleep(s)`` (the engine's backoff, the async adapter's
Retry-After wait) and ``clock.sync_sleep(s)`` (the synchronous client's wait). Every sleep is
recorded in ``sleeps`` and advances ``now`` at once, so tests of backoff and deadlines are exact and
instant, and never synchronise on real time.
"""

from __future__ import annotations

import asyncio


class ManualClock:
    """Monotonic time that moves only when something sleeps (or a test calls ``advance``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sync_sleep(seconds)
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would

    def sync_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
