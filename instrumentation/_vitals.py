"""The request vitals fast path: pre-bound per-service storage, produced as SDK-shaped metrics.

Recording a request is one lock, three additions and a bisect, with no attribute hashing and no
measurement objects: the attributes are bound once per service. At collection the producer turns
the stored numbers into the ``Sum`` and ``Histogram`` metrics the SDK would have built for
``Counter.add(1, attrs)`` / ``Histogram.record(seconds, attrs)`` with cumulative temporality.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel.instrumentation._exemplars import (
    ALWAYS_ON,
    StoredExemplar,
    candidate,
    current_context,
    span_ids,
    to_exemplars,
    tracing,
)
from telemetry_otel.vocabulary import (
    REQUEST_DURATION_BUCKETS,
    SERVICE_ERRORS,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
)

_INF = math.inf

__all__ = [
    "ERRORS_METRIC",
    "LATENCY_BUCKETS",
    "LATENCY_METRIC",
    "REQUESTS_METRIC",
    "RequestVitals",
    "VitalsProducer",
]

#: Explicit bucket boundaries (seconds) for request latency: 100 us to 60 s.
LATENCY_BUCKETS: tuple[float, ...] = REQUEST_DURATION_BUCKETS

REQUESTS_METRIC = (SERVICE_REQUESTS, "{request}", "Requests handled by the service.")
ERRORS_METRIC = (SERVICE_ERRORS, "{error}", "Requests the service failed.")
LATENCY_METRIC = (SERVICE_REQUEST_DURATION, "s", "Time the service took to handle a request.")


class RequestVitals:
    """Cumulative request count, error count and latency histogram of one service.

    Thread-safe: concurrent ``record`` calls never lose an update.
    """

    __slots__ = (
        "_bounds",
        "_buckets",
        "_count",
        "_errors",
        "_exemplars",
        "_lock",
        "_max",
        "_min",
        "_requests",
        "_sum",
        "attributes",
        "start_time_unix_nano",
    )

    def __init__(self, attributes: Mapping[str, str | bool | int | float], bounds: Sequence[float]) -> None:
        self.attributes = dict(attributes)
        self.start_time_unix_nano = time.time_ns()
        self._lock = threading.Lock()
        self._bounds = tuple(bounds)
        self._buckets = [0] * (len(self._bounds) + 1)
        self._exemplars: list[StoredExemplar | None] = [None] * (len(self._bounds) + 1)
        self._requests = 0
        self._count = 0
        self._errors = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def record(self, seconds: float, error: bool = False) -> None:
        """Count one request that took ``seconds``, and one error when ``error`` is true.

        A latency that is negative, NaN or infinite is not recorded (the SDK's histogram drops it
        too); the request and its error are still counted.
        """
        with self._lock:
            self._requests += 1
            if error:
                self._errors += 1
            if 0.0 <= seconds < _INF:  # like the SDK: a negative or non-finite latency is dropped
                self._count += 1
                self._sum += seconds
                self._buckets[bisect_left(self._bounds, seconds)] += 1
                if seconds < self._min:
                    self._min = seconds
                if seconds > self._max:
                    self._max = seconds

    def record_traced(self, seconds: float, error: bool = False) -> None:
        """:meth:`record`, keeping the ids of the sampled span it is made in as the exemplar of its
        latency bucket (``OTEL_METRICS_EXEMPLAR_FILTER=trace_based``).

        With no ``TracerProvider`` installed the span check is skipped; an empty context is one
        context-variable read. The rest is :meth:`record`'s body, repeated so that no call is added.
        """
        if tracing._TRACER_PROVIDER is not None:
            context = current_context()
            if context:
                ids = span_ids(context)
                if ids is not None:
                    self._record_exemplar(seconds, error, (seconds, time.time_ns(), ids[0], ids[1]))
                    return
        with self._lock:
            self._requests += 1
            if error:
                self._errors += 1
            if 0.0 <= seconds < _INF:
                self._count += 1
                self._sum += seconds
                self._buckets[bisect_left(self._bounds, seconds)] += 1
                if seconds < self._min:
                    self._min = seconds
                if seconds > self._max:
                    self._max = seconds

    def record_always(self, seconds: float, error: bool = False) -> None:
        """:meth:`record`, every latency an exemplar candidate (``always_on``)."""
        self._record_exemplar(seconds, error, candidate(seconds, ALWAYS_ON))

    def _record_exemplar(self, seconds: float, error: bool, exemplar: StoredExemplar | None) -> None:
        with self._lock:
            self._requests += 1
            if error:
                self._errors += 1
            if 0.0 <= seconds < _INF:
                self._count += 1
                self._sum += seconds
                index = bisect_left(self._bounds, seconds)
                self._buckets[index] += 1
                if exemplar is not None:
                    self._exemplars[index] = exemplar
                if seconds < self._min:
                    self._min = seconds
                if seconds > self._max:
                    self._max = seconds

    def reset_after_fork(self) -> None:
        """A forked child counts from zero (its lock re-made: a parent thread may have held it)."""
        self._lock = threading.Lock()
        self.start_time_unix_nano = time.time_ns()
        self._buckets = [0] * (len(self._bounds) + 1)
        self._exemplars = [None] * (len(self._bounds) + 1)  # the parent's spans are not the child's
        self._requests = self._count = self._errors = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def read(self) -> tuple[int, int, int, float, tuple[int, ...], float, float]:
        """A consistent copy: requests, errors, latency count, sum, bucket counts, min, max."""
        with self._lock:
            return (
                self._requests,
                self._errors,
                self._count,
                self._sum,
                tuple(self._buckets),
                self._min,
                self._max,
            )

    def exemplars(self) -> tuple[StoredExemplar | None, ...]:
        """The latest exemplar of each latency bucket (None where there is none)."""
        with self._lock:
            return tuple(self._exemplars)


class VitalsProducer:
    """Produces the request metrics of every registered :class:`RequestVitals`."""

    def __init__(self, scope: InstrumentationScope, bounds: Sequence[float] = LATENCY_BUCKETS) -> None:
        self._scope = scope
        self.bounds = tuple(bounds)
        self._lock = threading.Lock()
        self._vitals: list[RequestVitals] = []

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the produced metrics."""
        return self._scope

    def reset_after_fork(self) -> None:
        """A forked child: every bound service's vitals count from zero."""
        self._lock = threading.Lock()
        for vitals in self._vitals:
            vitals.reset_after_fork()

    def bind(self, attributes: Mapping[str, str | bool | int | float]) -> RequestVitals:
        """New vitals storage for one service, produced from the next collection on."""
        vitals = RequestVitals(attributes, self.bounds)
        with self._lock:
            self._vitals.append(vitals)
        return vitals

    def unbind(self, vitals: RequestVitals) -> None:
        """Stop producing ``vitals``."""
        with self._lock:
            if vitals in self._vitals:
                self._vitals.remove(vitals)

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """Cumulative ``service.requests``, ``service.errors`` and ``service.request.duration``."""
        with self._lock:
            bound = list(self._vitals)
        if not bound:
            return []
        requests: list[NumberDataPoint] = []
        errors: list[NumberDataPoint] = []
        latency: list[HistogramDataPoint] = []
        for vitals in bound:
            request_count, error_count, count, total, buckets, low, high = vitals.read()
            start = vitals.start_time_unix_nano
            requests.append(NumberDataPoint(vitals.attributes, start, time_unix_nano, request_count))
            errors.append(NumberDataPoint(vitals.attributes, start, time_unix_nano, error_count))
            if count:
                latency.append(
                    HistogramDataPoint(
                        attributes=vitals.attributes,
                        start_time_unix_nano=start,
                        time_unix_nano=time_unix_nano,
                        count=count,
                        sum=total,
                        bucket_counts=buckets,
                        explicit_bounds=self.bounds,
                        min=low,
                        max=high,
                        exemplars=to_exemplars(vitals.exemplars()),
                    )
                )
        cumulative = AggregationTemporality.CUMULATIVE
        metrics = [
            _metric(REQUESTS_METRIC, Sum(requests, cumulative, is_monotonic=True)),
            _metric(ERRORS_METRIC, Sum(errors, cumulative, is_monotonic=True)),
        ]
        if latency:
            metrics.append(_metric(LATENCY_METRIC, Histogram(latency, cumulative)))
        return metrics


def _metric(spec: tuple[str, str, str], data: Sum | Histogram) -> Metric:
    name, unit, description = spec
    return Metric(name=name, description=description, unit=unit, data=data)
