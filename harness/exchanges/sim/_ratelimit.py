"""Binance-style rate limits: request weight per minute, order counts per 10 s and per minute.

Exceeding a limit answers 429 with ``Retry-After``; a client that keeps sending while limited
(``ban_after`` more requests) is banned with 418 for ``ban_seconds``, as Binance does with IPs.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from harness.core.errors import ConfigError

from ._models import SimBookError


@dataclass(frozen=True)
class RateLimits:
    """Limits the simulator enforces; Binance's production values by default."""

    weight_per_minute: int = 2400
    orders_per_10s: int = 300
    orders_per_minute: int = 1200
    ban_after: int = 3
    ban_seconds: int = 120

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"rate_limits.{f.name}", value, "an integer >= 1")

    @classmethod
    def coerce(cls, value: RateLimits | Mapping[str, int] | None) -> RateLimits:
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            allowed = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise ConfigError(f"rate_limits.{unknown[0]}", value[unknown[0]],
                                  f"known limits: {', '.join(sorted(allowed))}")
            return cls(**dict(value))
        raise ConfigError("rate_limits", value, "None, a RateLimits or a mapping of limit name to integer")

    def exchange_info(self) -> list[dict[str, Any]]:
        """The ``rateLimits`` array of ``exchangeInfo``."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": self.orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_per_10s},
        ]


class _Window:
    """Sum of amounts over the last ``span`` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self._events: deque[tuple[float, int]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        events, cutoff = self._events, now - self.span
        while events and events[0][0] <= cutoff:
            self.total -= events.popleft()[1]

    def add(self, now: float, amount: int) -> None:
        if amount:
            self._events.append((now, amount))
            self.total += amount

    def seconds_until_below(self, now: float, limit: int) -> int:
        """Whole seconds until the window's total drops to ``limit`` or less (at least 1)."""
        total = self.total
        for at, amount in self._events:
            total -= amount
            if total <= limit:
                return max(1, math.ceil(at + self.span - now))
        return 1


class RateLimiter:
    """Counts one client's (the simulator serves one) weight and orders; thread-safe."""

    def __init__(self, limits: RateLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._weight = _Window(60.0)
        self._orders_10s = _Window(10.0)
        self._orders_1m = _Window(60.0)
        self._sent_while_limited = 0
        self._banned_until = 0.0
        self.rejected_429 = 0
        self.rejected_418 = 0

    def admit(self, weight: int, orders: int | tuple[int, int]) -> dict[str, str]:
        """Count a request; its usage headers, or ``RateLimitExceeded`` (429 / 418).

        ``orders``: what the request adds to the ORDERS counters, one number for both or
        ``(ten_seconds, one_minute)`` (a batch counts 5 and 1).
        """
        orders_10s, orders_1m = orders if isinstance(orders, tuple) else (orders, orders)
        with self._lock:
            now = self._clock()
            self._weight.expire(now)
            self._orders_10s.expire(now)
            self._orders_1m.expire(now)
            if now < self._banned_until:
                self.rejected_418 += 1
                raise RateLimitExceeded(418, -1003, "Way too much request weight used; IP banned until "
                                        f"{int((time.time() + self._banned_until - now) * 1000)}. Please use "
                                        "WebSocket Streams for live updates to avoid bans.",
                                        math.ceil(self._banned_until - now), self._headers())
            self._weight.add(now, weight)
            failure = self._over_limit(now, orders_10s, orders_1m)
            if failure is None:
                self._sent_while_limited = 0
                self._orders_10s.add(now, orders_10s)
                self._orders_1m.add(now, orders_1m)
                return self._headers(orders_10s > 0 or orders_1m > 0)
            if self._sent_while_limited >= self.limits.ban_after:
                self._banned_until = now + self.limits.ban_seconds
                self.rejected_418 += 1
                raise RateLimitExceeded(418, -1003, "Way too much request weight used; IP banned. Please use "
                                        "WebSocket Streams for live updates to avoid bans.",
                                        self.limits.ban_seconds, self._headers())
            self._sent_while_limited += 1
            self.rejected_429 += 1
            code, msg, retry_after = failure
            raise RateLimitExceeded(429, code, msg, retry_after, self._headers())

    def _over_limit(self, now: float, orders: int, orders_1m: int) -> tuple[int, str, int] | None:
        limits = self.limits
        if self._weight.total > limits.weight_per_minute:
            return (-1003, f"Too many requests; current limit of IP is {limits.weight_per_minute} requests per "
                           "minute. Please use WebSocket Streams for live updates to avoid polling the API.",
                    self._weight.seconds_until_below(now, limits.weight_per_minute))
        if orders and self._orders_10s.total + orders > limits.orders_per_10s:
            return (-1015, f"Too many new orders; current limit is {limits.orders_per_10s} orders per TEN_SECONDS.",
                    self._orders_10s.seconds_until_below(now, limits.orders_per_10s - orders))
        if orders_1m and self._orders_1m.total + orders_1m > limits.orders_per_minute:
            return (-1015, f"Too many new orders; current limit is {limits.orders_per_minute} orders per MINUTE.",
                    self._orders_1m.seconds_until_below(now, limits.orders_per_minute - orders_1m))
        return None

    def _headers(self, with_orders: bool = False) -> dict[str, str]:
        if with_orders:
            return {"X-MBX-USED-WEIGHT-1M": str(self._weight.total),
                    "X-MBX-ORDER-COUNT-10S": str(self._orders_10s.total),
                    "X-MBX-ORDER-COUNT-1M": str(self._orders_1m.total)}
        return {"X-MBX-USED-WEIGHT-1M": str(self._weight.total)}


class RateLimitExceeded(SimBookError):
    """429 (limited) or 418 (banned), with the ``Retry-After`` seconds and usage headers."""

    def __init__(self, status: int, code: int, msg: str, retry_after: int, headers: dict[str, str]) -> None:
        super().__init__(code, msg, status)
        self.retry_after = retry_after
        self.headers = {**headers, "Retry-After": str(retry_after)}
