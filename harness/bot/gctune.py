"""Garbage-collector settings for a bot process (process-global: only the bot and ``harness.embed``
call these; the engine core never touches the collector).

A liquidation of a large account allocates a lot of short-lived objects (requests, replies,
futures), and CPython's cyclic collector then re-scans every long-lived object the bot built at
start-up (modules, clients, exchangeInfo, the limiter) again and again: profiles at 200 symbols
showed more than half the bot's CPU in the collector. Two measures, both cheap to undo:

* ``freeze_after_start_up()``: one full collection, then ``gc.freeze()`` moves every object that
  survived start-up into the permanent generation, which later collections skip; called once after
  warm-up, before READY;
* ``collector_paused()``: the cyclic collector is off for the liquidation's few seconds (reference
  counting still frees almost everything at once) and back on afterwards, followed by a young
  collection of what the run left; a collector that was already off stays off.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def freeze_after_start_up() -> int:
    """Collect once, then freeze what survived start-up (``gc.freeze``); how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cyclic garbage collector off inside the block (a liquidation), then restore it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


__all__ = ["collector_paused", "freeze_after_start_up"]
