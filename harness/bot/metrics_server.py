"""Prometheus exposition of the liquidation engine's ``get_metrics()``.

A custom collector reads ``get_metrics()`` at scrape time, so the numbers are never stale and the
engine keeps no Prometheus objects of its own. Exported families (monitoring/alerts.yml and
monitoring/dashboard.json use exactly these)::

    liquidation_executions_total{state}        counter  runs per final state (all four always present)
    liquidation_duration_seconds               histogram execution time (_bucket, _sum, _count)
    liquidation_last_duration_seconds          gauge    the last run's execution time
    liquidation_in_progress                    gauge    1 while a liquidation runs
    liquidation_in_progress_since_seconds      gauge    its start (Unix time), 0 when idle
    liquidation_positions_closed_total         counter
    liquidation_positions_failed_total         counter
    liquidation_orders_cancelled_total         counter
    liquidation_retries_total                  counter
    liquidation_audit_write_errors_total       counter
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

GetMetrics = Callable[[], Mapping[str, Any]]

STATES = ("COMPLETED", "PARTIAL", "FAILED", "SKIPPED")
COUNTERS = (  # (family name without _total, get_metrics key, help)
    ("liquidation_positions_closed", "positions_closed", "Positions closed by liquidations."),
    ("liquidation_positions_failed", "positions_failed", "Positions liquidations failed to close."),
    ("liquidation_orders_cancelled", "orders_cancelled", "Open orders cancelled by liquidations."),
    ("liquidation_retries", "retries", "Exchange calls retried during liquidations."),
    ("liquidation_audit_write_errors", "audit_write_errors", "Audit-trail writes that failed."),
)
METRIC_NAMES = (
    "liquidation_executions_total",
    "liquidation_duration_seconds",
    "liquidation_last_duration_seconds",
    "liquidation_in_progress",
    "liquidation_in_progress_since_seconds",
    *(f"{name}_total" for name, _, _ in COUNTERS),
)
_KEYS = ", ".join(("executions_by_state", "execution_time_histogram", "last_execution_time_seconds",
                   "in_progress", "in_progress_since", *(key for _, key, _ in COUNTERS)))
DEFAULT_ADDR = "127.0.0.1"
SHUTDOWN_JOIN_SECONDS = 5.0
POLL_INTERVAL_SECONDS = 0.05  # how fast close() is noticed (the library default is 0.5 s)


def _number(metrics: Mapping[str, Any], key: str, *, integer: bool = False) -> float:
    """``metrics[key]`` as a float; ValueError naming the key, the value and what is allowed."""
    if key not in metrics:
        raise ValueError(f"get_metrics() has no {key!r}; the collector needs: {_KEYS}")
    value = metrics[key]
    allowed = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, allowed):
        kind = "an int" if integer else "a number"
        raise ValueError(f"get_metrics()[{key!r}]={value!r}: must be {kind}")
    return float(value)


def _bound(raw: Any) -> float:
    if isinstance(raw, str) and raw.strip().lower() in ("+inf", "inf"):
        return math.inf
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"histogram bucket bound {raw!r}: must be a number or '+Inf'")
    return float(raw)


def _histogram_buckets(histogram: Any) -> tuple[list[tuple[str, float]], float]:
    if not isinstance(histogram, Mapping) or not {"buckets", "sum", "count"} <= set(histogram):
        raise ValueError(f"get_metrics()['execution_time_histogram']={histogram!r}: must be a "
                         "mapping with 'buckets' ([[upper_bound, cumulative_count], ...]), 'sum', 'count'")
    pairs = sorted((_bound(bound), float(count)) for bound, count in histogram["buckets"])
    count, total = _number(histogram, "count", integer=True), _number(histogram, "sum")
    if not pairs or pairs[-1][0] != math.inf:
        pairs.append((math.inf, count))
    return [(floatToGoString(bound), value) for bound, value in pairs], total


class LiquidationCollector(Collector):
    """Turns one ``get_metrics()`` call per scrape into the families listed in the module doc."""

    def __init__(self, get_metrics: GetMetrics) -> None:
        if not callable(get_metrics):
            raise TypeError(f"get_metrics={get_metrics!r}: must be a callable returning a dict")
        self._get_metrics = get_metrics

    def describe(self) -> Iterator[Any]:
        """Names only, so registering does not call the engine."""
        yield CounterMetricFamily("liquidation_executions", "", labels=["state"])
        yield HistogramMetricFamily("liquidation_duration_seconds", "")
        for name in ("liquidation_last_duration_seconds", "liquidation_in_progress",
                     "liquidation_in_progress_since_seconds"):
            yield GaugeMetricFamily(name, "")
        for name, _, _ in COUNTERS:
            yield CounterMetricFamily(name, "")

    def collect(self) -> Iterator[Any]:
        m = self._get_metrics()
        by_state = m.get("executions_by_state")
        if not isinstance(by_state, Mapping):
            raise ValueError(f"get_metrics()['executions_by_state']={by_state!r}: must be a "
                             f"mapping of state -> count ({', '.join(STATES)})")
        executions = CounterMetricFamily(
            "liquidation_executions", "Liquidations finished, by final state.", labels=["state"])
        for state in dict.fromkeys([*STATES, *sorted(by_state)]):
            executions.add_metric([state], _number(by_state, state, integer=True)
                                  if state in by_state else 0.0)
        yield executions
        buckets, total = _histogram_buckets(m.get("execution_time_histogram"))
        yield HistogramMetricFamily("liquidation_duration_seconds",
                                    "Liquidation execution time.", buckets=buckets, sum_value=total)
        yield GaugeMetricFamily("liquidation_last_duration_seconds",
                                "Execution time of the last liquidation.",
                                value=_number(m, "last_execution_time_seconds"))
        in_progress = m.get("in_progress")
        if not isinstance(in_progress, bool):
            raise ValueError(f"get_metrics()['in_progress']={in_progress!r}: must be a bool")
        since = m.get("in_progress_since")
        yield GaugeMetricFamily("liquidation_in_progress", "1 while a liquidation is running.",
                                value=1.0 if in_progress else 0.0)
        yield GaugeMetricFamily(
            "liquidation_in_progress_since_seconds",
            "Unix time the running liquidation started; 0 when none runs.",
            value=_number(m, "in_progress_since") if in_progress and since is not None else 0.0)
        for name, key, help_text in COUNTERS:
            yield CounterMetricFamily(name, help_text, value=_number(m, key, integer=True))


def registry_for(get_metrics: GetMetrics) -> CollectorRegistry:
    """A registry holding only the liquidation collector (no process/platform metrics)."""
    registry = CollectorRegistry()
    registry.register(LiquidationCollector(get_metrics))
    return registry


def render_metrics(get_metrics: GetMetrics) -> str:
    """The text exposition format of the current metrics (what a scrape returns)."""
    return generate_latest(registry_for(get_metrics)).decode("utf-8")


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` (or leaving the ``with`` block) stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(SHUTDOWN_JOIN_SECONDS)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def start_metrics_server(port: int, get_metrics: GetMetrics, *,
                         addr: str = DEFAULT_ADDR) -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` (port 0 picks a free one) in a daemon thread.

    Binds to loopback by default: expose it wider only on purpose (``addr="0.0.0.0"``)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port={port!r}: must be an int in 0-65535 (0 picks a free port)")
    server = make_server(addr, port, make_wsgi_app(registry_for(get_metrics)),
                         ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL_SECONDS,),
                              name=f"liquidation-metrics-{server.server_port}", daemon=True)
    thread.start()
    return MetricsServer(server, thread)


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr for every scrape."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None
