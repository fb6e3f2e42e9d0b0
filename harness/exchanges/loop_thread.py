"""An aiohttp server on its own thread and event loop, started and stopped from synchronous code.

The embedded exchange (``sim.server.BinanceSimulator``) and the fault proxy (``fault_proxy.FaultProxy``)
both serve this way, so a test, a scenario or a bot's harness can use them from any thread, with or
without a running event loop. A subclass sets ``host``, ``_requested_port`` and ``faults`` (its
``FaultPlan``, whose hung calls are released before stopping), and implements ``_startup()`` (bind, set
``_port``) and ``_shutdown()`` (release what ``_startup`` opened); both run on the serving loop.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Any, Self

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


class LoopThreadServer:
    host: str
    faults: Any
    _requested_port: int
    #: the serving thread's name (and the name used in error messages)
    thread_name = "loop-thread-server"

    def _init_loop_thread(self) -> None:
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None

    # -- to implement ------------------------------------------------------------------------
    async def _startup(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started: call start() or use it as a context manager")
        return self._port

    def start(self) -> Self:
        """Serve in a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        self._ready.clear()
        self._start_error = None
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            raise RuntimeError(f"{type(self).__name__} did not start within {START_TIMEOUT_SECONDS} s")
        if self._start_error is not None:
            self._thread.join(STOP_TIMEOUT_SECONDS)
            self._thread = None
            raise RuntimeError(f"{type(self).__name__} could not serve on {self.host}:{self._requested_port}: "
                               f"{self._start_error}") from self._start_error
        return self

    def stop(self) -> None:
        """Stop serving: release hung calls, cancel what is left, join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self.faults.release_hangs()
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(STOP_TIMEOUT_SECONDS)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_SECONDS)
            self._thread = self._loop = None
            self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:  # reported by start()
            self._start_error = exc
            loop.close()
            self._ready.set()
            return
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
