"""Every async test here runs on asyncio's event loop and, when installed, on uvloop's.

Bots embed the adapter on either loop, and uvloop's transports are not subclasses of asyncio's
(the wire client once refused them). uvloop comes with the ``speed`` extra, which ``dev`` includes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, LoopFactory]:
    """pytest-asyncio's hook: the event loops each async test in this directory runs on."""
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
