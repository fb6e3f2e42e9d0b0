"""Load a team's order-manager factory (``package.module:factory``) and open what it returns.

``factory(exchange_url, api_key, api_secret)`` may return an ``OrderExecutionManager``, an awaitable of
one, or an async context manager yielding one. ``open_order_manager`` handles all three, warms up an
order manager with ``SupportsLifecycle`` as a bot does before READY (``harness.core.ports``), and
closes it afterwards (``async with``'s exit, else an async ``close()`` when it has one).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from harness.core.errors import ConfigError
from harness.core.ports import SupportsLifecycle

WARM_UP_TIMEOUT_SECONDS = 10.0

FactorySpec = str
_SPEC_HINT = "'package.module:factory', a callable factory(exchange_url, api_key, api_secret) importable from here"


def load_factory(spec: Any, *, field: str = "--order-manager") -> Callable[[str, str, str], Any]:
    """The callable named by ``spec``; ConfigError naming the option, the value and what is allowed."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError(field, spec, _SPEC_HINT)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(field, spec, _SPEC_HINT)
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ConfigError(field, spec, f"{_SPEC_HINT}; importing {module_name!r} failed: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ConfigError(field, spec, f"{_SPEC_HINT}; {module_name} has no attribute {attribute!r}")
    if not callable(target):
        raise ConfigError(field, spec, f"{_SPEC_HINT}; {attribute!r} is a {type(target).__name__}, not callable")
    return target


def _import(module_name: str) -> Any:
    """Import ``module_name``; like ``python -m``, the current directory counts as a source root."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        cwd = os.getcwd()
        if cwd in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(module_name)


@asynccontextmanager
async def open_order_manager(factory: Callable[[str, str, str], Any], exchange_url: str, api_key: str,
                             api_secret: str) -> AsyncIterator[Any]:
    """``factory(...)``'s order manager for the duration of the block, closed afterwards."""
    made = factory(exchange_url, api_key, api_secret)
    if inspect.isawaitable(made):
        made = await made
    if hasattr(made, "__aenter__") and hasattr(made, "__aexit__"):
        async with made as entered:
            order_manager = entered if entered is not None else made
            await _warm_up(order_manager)
            yield order_manager
        return
    try:
        await _warm_up(made)
        yield made
    finally:
        close = getattr(made, "close", None)
        if close is not None and inspect.iscoroutinefunction(close):
            await close()


async def _warm_up(order_manager: Any) -> None:
    if isinstance(order_manager, SupportsLifecycle):
        await asyncio.wait_for(order_manager.warm_up(), WARM_UP_TIMEOUT_SECONDS)
