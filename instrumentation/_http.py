"""The HTTP server metrics of the semantic conventions, stored pre-aggregated and produced per collection.

``http.server.request.duration`` (histogram, ``s``, the conventions' advised buckets) per
``http.request.method``, ``url.scheme``, ``http.route``, ``http.response.status_code`` and
``error.type`` (each only when known), and ``http.server.active_requests`` (up-down counter,
``{request}``) per method and scheme. Recording one request is a dict lookup, one lock, a bisect and
a few additions, like the vitals; the producer turns the cells into the ``Histogram`` and ``Sum``
the SDK would have built, with cumulative temporality and one exemplar per bucket.

Attribute sets beyond the runtime's cardinality limit fold into one ``otel.metric.overflow=true``
series (counted, and logged once), as the SDK does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import __version__
from telemetry_otel.instrumentation._exemplars import StoredExemplar, to_exemplars
from telemetry_otel.vocabulary import (
    ERROR_TYPE,
    HTTP_DURATION_BUCKETS,
    HTTP_REQUEST_METHOD,
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
    HTTP_SCOPE_NAME,
    HTTP_SERVER_ACTIVE_REQUESTS,
    HTTP_SERVER_REQUEST_DURATION,
    OVERFLOW,
    URL_SCHEME,
)

__all__ = ["ACTIVE_METRIC", "DURATION_METRIC", "HTTPServerMetrics", "RequestKey"]

_logger = logging.getLogger("telemetry_otel")

DURATION_METRIC = (HTTP_SERVER_REQUEST_DURATION, "s", "Duration of HTTP server requests.")
ACTIVE_METRIC = (HTTP_SERVER_ACTIVE_REQUESTS, "{request}", "Number of active HTTP server requests.")

#: (method, scheme, route or None, status code or None, error type or None).
RequestKey = tuple[str, str, str | None, int | None, str | None]
_OVERFLOW_KEY: RequestKey = ("", "", None, None, None)
_INF = math.inf


class _Cell:
    """One series of the duration histogram."""

    __slots__ = ("attributes", "buckets", "count", "exemplars", "max", "min", "sum")

    def __init__(self, attributes: dict[str, Any], size: int) -> None:
        self.attributes = attributes
        self.buckets = [0] * size
        self.exemplars: list[StoredExemplar | None] = [None] * size
        self.count = 0
        self.sum = 0.0
        self.min = _INF
        self.max = -_INF


class HTTPServerMetrics:
    """The HTTP server series of one runtime: every middleware on it records here."""

    def __init__(self, cardinality_limit: int, bounds: Sequence[float] = HTTP_DURATION_BUCKETS) -> None:
        self._scope = InstrumentationScope(HTTP_SCOPE_NAME, __version__, None, None)
        self.bounds = tuple(bounds)
        self._limit = cardinality_limit
        self._lock = threading.Lock()
        self._cells: dict[RequestKey, _Cell] = {}
        self._active: dict[tuple[str, str], int] = {}
        self._start_unix_nano = time.time_ns()
        #: Requests whose attribute set came beyond the cardinality limit (folded into overflow).
        self.overflowed = 0

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the produced metrics."""
        return self._scope

    def reset_after_fork(self) -> None:
        """A forked child counts from zero (its lock re-made: a parent thread may have held it)."""
        self._lock = threading.Lock()
        self._cells = {}
        self._active = {}
        self._start_unix_nano = time.time_ns()
        self.overflowed = 0

    def started(self, method: str, scheme: str) -> None:
        """One more active request."""
        key = (method, scheme)
        with self._lock:
            self._active[key] = self._active.get(key, 0) + 1

    def finished(self, key: RequestKey, seconds: float, exemplar: StoredExemplar | None) -> None:
        """One active request less, and its duration recorded under ``key``."""
        with self._lock:
            active = (key[0], key[1])
            self._active[active] -= 1
            cell = self._cells.get(key)
            if cell is None:
                cell = self._new_cell(key)
            if not 0.0 <= seconds < _INF:  # like the SDK: a negative or non-finite duration is dropped
                return
            index = bisect_left(self.bounds, seconds)
            cell.buckets[index] += 1
            cell.count += 1
            cell.sum += seconds
            if seconds < cell.min:
                cell.min = seconds
            if seconds > cell.max:
                cell.max = seconds
            if exemplar is not None:
                cell.exemplars[index] = exemplar

    def _new_cell(self, key: RequestKey) -> _Cell:
        """The cell of a new attribute set (under the lock), or the overflow cell beyond the limit."""
        if len(self._cells) >= self._limit - 1:  # one series is kept for the overflow
            self.overflowed += 1
            if self.overflowed == 1:
                _logger.warning(
                    "%s: more than %d attribute sets; further ones fold into the %s=true series",
                    HTTP_SERVER_REQUEST_DURATION,
                    self._limit - 1,
                    OVERFLOW,
                )
            cell = self._cells.get(_OVERFLOW_KEY)
            if cell is None:
                cell = self._cells[_OVERFLOW_KEY] = _Cell({OVERFLOW: True}, len(self.bounds) + 1)
            return cell
        method, scheme, route, status, error = key
        attributes: dict[str, Any] = {HTTP_REQUEST_METHOD: method, URL_SCHEME: scheme}
        if route is not None:
            attributes[HTTP_ROUTE] = route
        if status is not None:
            attributes[HTTP_RESPONSE_STATUS_CODE] = status
        if error is not None:
            attributes[ERROR_TYPE] = error
        cell = self._cells[key] = _Cell(attributes, len(self.bounds) + 1)
        return cell

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """Cumulative ``http.server.request.duration`` and ``http.server.active_requests``."""
        start = self._start_unix_nano
        with self._lock:
            active = [
                NumberDataPoint(
                    {HTTP_REQUEST_METHOD: method, URL_SCHEME: scheme}, start, time_unix_nano, value
                )
                for (method, scheme), value in self._active.items()
            ]
            durations = [
                HistogramDataPoint(
                    attributes=cell.attributes,
                    start_time_unix_nano=start,
                    time_unix_nano=time_unix_nano,
                    count=cell.count,
                    sum=cell.sum,
                    bucket_counts=tuple(cell.buckets),
                    explicit_bounds=self.bounds,
                    min=cell.min,
                    max=cell.max,
                    exemplars=to_exemplars(cell.exemplars),
                )
                for cell in self._cells.values()
                if cell.count
            ]
        metrics: list[Metric] = []
        cumulative = AggregationTemporality.CUMULATIVE
        if durations:
            name, unit, description = DURATION_METRIC
            metrics.append(Metric(name, description, unit, Histogram(durations, cumulative)))
        if active:
            name, unit, description = ACTIVE_METRIC
            metrics.append(Metric(name, description, unit, Sum(active, cumulative, is_monotonic=False)))
        return metrics
