"""``HangGate``: where hung calls wait, in threads or in event loops, until released together."""

from __future__ import annotations

import asyncio
import threading


class HangGate:
    """Blocks callers until ``release()``; each release frees those waiting at that moment."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0
        self._waiting = 0
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @property
    def waiting(self) -> int:
        with self._cond:
            return self._waiting

    def wait_sync(self, timeout: float) -> bool:
        """Block this thread; True when released, False when ``timeout`` passed first."""
        with self._cond:
            generation = self._generation
            self._waiting += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._generation != generation, timeout)
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    async def wait_async(self, timeout: float) -> bool:
        """Suspend this task (the loop keeps running); True when released, False on ``timeout``."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._async_waiters.add(waiter)
            self._waiting += 1
            self._cond.notify_all()
        try:
            await asyncio.wait_for(waiter[1].wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._cond:
                self._async_waiters.discard(waiter)
                self._waiting -= 1
                self._cond.notify_all()

    def release(self) -> int:
        """Free everyone waiting now; returns how many that was."""
        with self._cond:
            released = self._waiting
            self._generation += 1
            waiters = list(self._async_waiters)
            self._async_waiters.clear()
            self._cond.notify_all()
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: its waiter is gone already
                pass
        return released

    def wait_waiting(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` callers wait (True) or ``timeout`` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting >= count, timeout)
