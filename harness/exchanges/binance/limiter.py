"""Client-side rate limiting for Binance USD-M: queue a request until it fits, never earn a 429.

Binance counts request weight per IP (``REQUEST_WEIGHT``, 2400 per minute) and new orders per
account (``ORDERS``, 300 per 10 s and 1200 per minute); the real values are in exchangeInfo's
``rateLimits`` (``RequestLimiter.configure``). Going over answers HTTP 429, and carrying on after a
429 earns an IP ban (418). ``RequestLimiter``:

* knows what each python-binance method costs (``request_cost``: weight and orders);
* keeps a sliding window per limit and grants each request the earliest start at which every
  window stays within ``headroom`` (90 %) of its limit: grants are first come, first served, so a
  burst bigger than a window queues behind the requests before it instead of being rejected;
* learns usage it did not cause (another process on the same IP or account, a restart) from the
  ``X-MBX-USED-WEIGHT-*`` and ``X-MBX-ORDER-COUNT-*`` headers of every response (``observe``): the
  server's count only ever raises the local one, so a real 429's headers pause the queue too;
* counts requests in flight and keeps the numbers a benchmark or an operator wants (``stats``).

``reserve`` is pure bookkeeping on an injected clock (thread-safe, no I/O, no sleeping); the session
sleeps the delay it returns. A request whose delay would outlast the run's deadline is not reserved.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: fraction of each exchange limit the limiter lets the bot use (the rest is slack for others)
DEFAULT_HEADROOM = 0.9
#: python-binance method -> (request weight, request weight without ``symbol``, orders it counts)
_COSTS: dict[str, tuple[int, int, int]] = {
    "futures_ping": (1, 1, 0),
    "futures_time": (1, 1, 0),
    "futures_exchange_info": (1, 1, 0),
    "futures_position_information": (5, 5, 0),
    "futures_get_position_mode": (30, 30, 0),
    "futures_account": (5, 5, 0),
    "futures_get_open_orders": (1, 40, 0),
    "futures_get_open_algo_orders": (1, 40, 0),
    "futures_get_order": (1, 1, 0),
    "futures_create_order": (0, 0, 1),
    "futures_cancel_all_open_orders": (1, 1, 0),
    "futures_cancel_all_algo_open_orders": (1, 1, 0),
    "futures_countdown_cancel_all": (10, 10, 0),
}
#: a window keeps at most this many buckets of grants (its span / this = the bucket width)
BUCKETS_PER_WINDOW = 600
#: POST /fapi/v1/batchOrders, whatever its size (Binance's "Place Multiple Orders"): 5 request
#: weight, 5 on the 10 s order counter (X-MBX-ORDER-COUNT-10S) and 1 on the 1 min one
BATCH_WEIGHT = 5
BATCH_ORDERS_10S = 5
BATCH_ORDERS_1M = 1
#: order counters no longer than this (seconds) are charged a batch's short-window count
SHORT_ORDER_WINDOW_SECONDS = 10.0
UNKNOWN_METHOD_WEIGHT = 1
_INTERVAL_SECONDS = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
_KINDS = {"REQUEST_WEIGHT": "weight", "ORDERS": "orders", "RAW_REQUESTS": "requests"}


#: what a request adds to the ORDERS counters: one number for every window, or
#: (windows of at most 10 s, longer windows), as Binance charges a batch
OrderCount = int | tuple[int, int]


def request_cost(method: str, params: Mapping[str, Any]) -> tuple[int, OrderCount]:
    """(request weight, orders) of one python-binance call with ``params``; a batch's orders are
    ``(BATCH_ORDERS_10S, BATCH_ORDERS_1M)`` whatever its size, as Binance counts them."""
    if method == "futures_place_batch_order":
        return BATCH_WEIGHT, (BATCH_ORDERS_10S, BATCH_ORDERS_1M)
    with_symbol, without_symbol, orders = _COSTS.get(method, (UNKNOWN_METHOD_WEIGHT, UNKNOWN_METHOD_WEIGHT, 0))
    return (with_symbol if params.get("symbol") else without_symbol), orders


@dataclass(frozen=True)
class Limit:
    """One exchange limit: at most ``limit`` units of ``kind`` (weight | orders | requests) per ``seconds``."""

    kind: str
    seconds: float
    limit: int

    def __str__(self) -> str:
        return f"{self.limit} {self.kind} per {self.seconds:g}s"

    def __post_init__(self) -> None:
        if self.kind not in ("weight", "orders", "requests"):
            raise ValueError(f"kind={self.kind!r}: expected weight, orders or requests")
        if not self.seconds > 0 or self.limit < 1:
            raise ValueError(f"{self.kind} limit {self.limit} per {self.seconds} s: need seconds > 0 and limit >= 1")


#: Binance USD-M's documented defaults, used until exchangeInfo says otherwise
BINANCE_DEFAULT_LIMITS: tuple[Limit, ...] = (
    Limit("weight", 60.0, 2400),
    Limit("orders", 10.0, 300),
    Limit("orders", 60.0, 1200),
)


def limits_from_exchange_info(rate_limits: Iterable[Mapping[str, Any]]) -> tuple[Limit, ...]:
    """exchangeInfo ``rateLimits`` -> ``Limit``s (unknown or malformed entries are skipped)."""
    limits = []
    for entry in rate_limits:
        kind = _KINDS.get(str(entry.get("rateLimitType", "")).upper())
        unit = _INTERVAL_SECONDS.get(str(entry.get("interval", "")).upper())
        try:
            count, limit = int(entry.get("intervalNum", 1)), int(entry["limit"])
        except (KeyError, TypeError, ValueError):
            continue
        if kind is None or unit is None or count < 1 or limit < 1:
            continue
        limits.append(Limit(kind, float(unit * count), limit))
    return tuple(limits)


def _header_name(limit: Limit) -> str:
    """The response header in which Binance reports usage of ``limit`` ("" when it reports none)."""
    prefix = {"weight": "X-MBX-USED-WEIGHT-", "orders": "X-MBX-ORDER-COUNT-"}.get(limit.kind)
    if prefix is None:
        return ""
    for unit, seconds in (("D", 86400), ("H", 3600), ("M", 60), ("S", 1)):
        if limit.seconds % seconds == 0:
            return f"{prefix}{int(limit.seconds // seconds)}{unit}"
    return ""


class _Window:
    """Amounts granted in the last ``limit.seconds``; grant times never decrease.

    Grants close together share one bucket ``[first time, last time, amount]`` that leaves the window
    with its LAST grant (so counting stays conservative): at most ``BUCKETS_PER_WINDOW`` buckets,
    however busy the bot, so memory stays flat.
    """

    def __init__(self, limit: Limit, headroom: float) -> None:
        self.limit = limit
        self.capacity = max(1, math.floor(limit.limit * headroom))
        self.resolution = limit.seconds / BUCKETS_PER_WINDOW
        self.entries: deque[list[float]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        horizon = now - self.limit.seconds
        while self.entries and self.entries[0][1] <= horizon:
            self.total -= int(self.entries.popleft()[2])

    def earliest(self, start: float, amount: int) -> float:
        """The earliest time >= ``start`` at which ``amount`` more fits (entries are all <= start)."""
        excess = self.total + amount - self.capacity
        if excess <= 0 or not self.entries:
            return start
        freed = 0
        for _first, last, granted in self.entries:
            freed += int(granted)
            if freed >= excess:
                return max(start, last + self.limit.seconds)
        return max(start, self.entries[-1][1] + self.limit.seconds)

    def add(self, at: float, amount: int) -> None:
        entries = self.entries
        if entries and at - entries[-1][0] < self.resolution:
            bucket = entries[-1]
            bucket[1] = max(bucket[1], at)
            bucket[2] += amount
        else:
            entries.append([at, at, amount])
        self.total += amount


class RequestLimiter:
    """Sliding-window weight and order limits with first-come-first-served grants (module docstring)."""

    def __init__(
        self,
        limits: Iterable[Limit] = BINANCE_DEFAULT_LIMITS,
        *,
        headroom: float = DEFAULT_HEADROOM,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError(f"headroom={headroom!r}: expected a fraction in (0, 1]")
        self.headroom = headroom
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: list[_Window] = []
        self._last_grant = float("-inf")
        self._in_flight = 0
        self._stats: dict[str, float] = dict.fromkeys(
            ("requests", "weight", "orders", "queued", "queued_seconds", "max_queue_seconds", "refused",
             "peak_in_flight", "max_weight_seen", "max_orders_10s_seen", "max_orders_1m_seen", "rate_limited"),
            0,
        )
        self.configure_limits(limits)

    # -- configuration ---------------------------------------------------------------------
    @property
    def limits(self) -> tuple[Limit, ...]:
        with self._lock:
            return tuple(w.limit for w in self._windows)

    def configure_limits(self, limits: Iterable[Limit]) -> None:
        """Enforce ``limits`` from now on, keeping what was granted in windows that remain."""
        wanted = list(dict.fromkeys(limits))
        with self._lock:
            old = {(w.limit.kind, w.limit.seconds): w for w in self._windows}
            windows = []
            for limit in wanted:
                window = _Window(limit, self.headroom)
                previous = old.get((limit.kind, limit.seconds))
                if previous is not None:
                    window.entries, window.total = previous.entries, previous.total
                windows.append(window)
            self._windows = windows
            names = [(_header_name(w.limit), w.limit.kind, w.limit.seconds) for w in windows]
            for limit in BINANCE_DEFAULT_LIMITS:  # reported even when not enforced, for the stats
                names.append((_header_name(limit), limit.kind, limit.seconds))
            self._header_names = tuple((n, k, s) for n, k, s in dict.fromkeys(names) if n)

    def configure(self, rate_limits: Iterable[Mapping[str, Any]]) -> None:
        """Adopt exchangeInfo's ``rateLimits`` (ignored when they name no usable limit)."""
        limits = limits_from_exchange_info(rate_limits)
        if limits:
            self.configure_limits(limits)

    # -- grants ----------------------------------------------------------------------------
    def reserve(self, weight: int, orders: OrderCount, *, max_delay: float | None = None) -> float | None:
        """Grant a request costing ``weight`` and ``orders`` (``OrderCount``); seconds to wait before sending it.

        None (and nothing granted) when the wait would be longer than ``max_delay``.
        """
        with self._lock:
            return self._reserve_locked(weight, orders, max_delay, None)

    def _reserve_locked(self, weight: int, orders: OrderCount, max_delay: float | None,
                        shared: RequestLimiter | None) -> float | None:
        """``reserve`` with ``self._lock`` (and ``shared._lock``, when given) held: the grant must fit
        this limiter's windows and ``shared``'s (whose windows are counted for several limiters)."""
        short_orders, long_orders = orders if isinstance(orders, tuple) else (orders, orders)
        amounts = {"weight": max(0, weight), "orders": max(0, short_orders), "requests": 1}
        long_amount = max(0, long_orders)

        def amount_for(window: _Window) -> int:
            if window.limit.kind == "orders" and window.limit.seconds > SHORT_ORDER_WINDOW_SECONDS:
                return long_amount
            return amounts[window.limit.kind]

        now = self._clock()
        start = max(now, self._last_grant)
        windows = [*self._windows, *(shared._windows if shared is not None else ())]
        for window in windows:
            window.expire(now)
            amount = amount_for(window)
            if amount:
                start = max(start, window.earliest(start, amount))
        delay = start - now
        if max_delay is not None and delay > max_delay:
            self._stats["refused"] += 1
            return None
        for window in self._windows:
            amount = amount_for(window)
            if amount:
                window.add(start, amount)
        self._last_grant = start
        self._count(amounts, delay)
        if shared is not None:
            # booked no earlier than shared's last grant, so its windows' times never decrease (a
            # later booking only expires later: conservative); another limiter's queueing is not ours
            at = max(start, shared._last_grant)
            for window in shared._windows:
                amount = amount_for(window)
                if amount:
                    window.add(at, amount)
            shared._last_grant = at
            shared._count(amounts, 0.0)
        return delay

    def _count(self, amounts: Mapping[str, int], delay: float) -> None:
        stats = self._stats
        stats["requests"] += 1
        stats["weight"] += amounts["weight"]
        stats["orders"] += amounts["orders"]
        if delay > 0:
            stats["queued"] += 1
            stats["queued_seconds"] += delay
            stats["max_queue_seconds"] = max(stats["max_queue_seconds"], delay)

    def observe(self, headers: Mapping[str, str], status: int | None = None) -> None:
        """Learn the server's usage from one response's ``X-MBX-*`` headers (any status).

        ``headers`` must look names up case-insensitively (aiohttp's and requests' headers do).
        """
        seen: list[tuple[str, float, int]] = []
        for name, kind, seconds in self._header_names:
            value = headers.get(name)
            if value is None:
                continue
            try:
                seen.append((kind, seconds, int(value)))
            except (TypeError, ValueError):
                continue
        if not seen and status not in (418, 429):
            return
        with self._lock:
            if status in (418, 429):
                self._stats["rate_limited"] += 1
            now = self._clock()
            for kind, seconds, used in seen:
                self._note_seen(kind, seconds, used)
                for window in self._windows:
                    if (window.limit.kind, window.limit.seconds) != (kind, seconds):
                        continue
                    window.expire(now)
                    missing = used - window.total  # total includes grants still in flight
                    if missing > 0:  # usage we did not grant: count it from now on
                        at = max(now, self._last_grant)
                        window.add(at, missing)

    def _note_seen(self, kind: str, seconds: float, used: int) -> None:
        key = {("weight", 60.0): "max_weight_seen", ("orders", 10.0): "max_orders_10s_seen",
               ("orders", 60.0): "max_orders_1m_seen"}.get((kind, seconds))
        if key is not None and used > self._stats[key]:
            self._stats[key] = used

    # -- in flight -------------------------------------------------------------------------
    def sent(self) -> None:
        """A granted request is on the wire."""
        with self._lock:
            self._in_flight += 1
            if self._in_flight > self._stats["peak_in_flight"]:
                self._stats["peak_in_flight"] = self._in_flight

    def batch_fits(self) -> bool:
        """Whether a ``batchOrders`` request fits this limiter's order windows at all (an account whose
        10 s order limit is below a batch's charge of ``BATCH_ORDERS_10S`` must send single orders; one
        at or above it but under the headroom gets each batch when the window is empty, as any request
        bigger than a window does)."""
        with self._lock:
            return all(
                window.limit.limit >= (BATCH_ORDERS_1M if window.limit.seconds > SHORT_ORDER_WINDOW_SECONDS
                                    else BATCH_ORDERS_10S)
                for window in self._windows if window.limit.kind == "orders"
            )

    def done(self) -> None:
        """A request sent with ``sent()`` has its answer (or failed)."""
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def stats(self) -> dict[str, float]:
        """Counters since construction: requests granted, weight, orders, queueing, peak in flight,
        the highest usage the exchange reported, and 429/418 answers seen."""
        with self._lock:
            return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self._stats.items()}


#: limits Binance counts per IP (shared by every account sending from it); ORDERS are per account
IP_KINDS = frozenset({"weight", "requests"})


def ip_limiter(limits: Iterable[Limit] = BINANCE_DEFAULT_LIMITS, *, headroom: float = DEFAULT_HEADROOM,
               clock: Callable[[], float] = time.monotonic) -> RequestLimiter:
    """The per-IP part of ``limits`` (request weight, raw requests) as one limiter for several
    ``AccountLimiter``s: accounts liquidated together from one machine against one exchange host."""
    return RequestLimiter([limit for limit in limits if limit.kind in IP_KINDS], headroom=headroom, clock=clock)


class AccountLimiter(RequestLimiter):
    """One account's limiter beside others on the same IP: its ORDERS limits are its own, while
    request weight and raw requests are granted against ``ip`` (see ``ip_limiter``), shared by every
    account on the same exchange host, so a fleet together never earns the IP a 429.

    A grant must fit both; the account's own queueing (its order-count windows) never delays the
    other accounts' requests. exchangeInfo's ``rateLimits`` configure both (the IP part for all).
    """

    def __init__(self, ip: RequestLimiter, limits: Iterable[Limit] = BINANCE_DEFAULT_LIMITS, *,
                 headroom: float = DEFAULT_HEADROOM, clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(ip, RequestLimiter) or isinstance(ip, AccountLimiter):
            raise TypeError(f"ip={ip!r}: expected the shared per-IP RequestLimiter (see ip_limiter)")
        self.ip = ip
        super().__init__(limits, headroom=headroom, clock=clock)

    def configure_limits(self, limits: Iterable[Limit]) -> None:
        limits = list(limits)
        super().configure_limits([limit for limit in limits if limit.kind not in IP_KINDS])
        shared = [limit for limit in limits if limit.kind in IP_KINDS]
        if shared:
            self.ip.configure_limits(shared)

    def reserve(self, weight: int, orders: OrderCount, *, max_delay: float | None = None) -> float | None:
        with self.ip._lock, self._lock:  # always the shared lock first: no two accounts deadlock
            return self._reserve_locked(weight, orders, max_delay, self.ip)

    def observe(self, headers: Mapping[str, str], status: int | None = None) -> None:
        super().observe(headers, status)
        self.ip.observe(headers, status)

    @property
    def limits(self) -> tuple[Limit, ...]:
        return (*self.ip.limits, *super().limits)
