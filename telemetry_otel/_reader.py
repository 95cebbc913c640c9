"""The one SDK reader on the shared provider, and the merge of producer metrics into its data.

Every consumer (the endpoint, ``/metrics``, buses, push exporters) reads through this single reader,
so the SDK keeps exactly one storage per instrument and a measurement costs the same however many
consumers there are. Metrics recorded outside the SDK (the vitals fast path) come in through
:class:`MetricProducer` objects and are merged into the same ``MetricsData``.

Cardinality: the reader passes one limit (``TelemetryConfig.cardinality_limit``, 2000 by default)
to the SDK for every instrument kind. The SDK then keeps at most that many distinct attribute sets
per instrument and folds every further one into a single extra series with the attribute
``otel.metric.overflow=true`` (sums add up, gauges keep the last value, histograms merge), so an
instrument holds at most ``limit + 1`` series whatever its attribute values. :func:`merge_produced`
applies the same rule to the metrics merged in from producers and aggregators (:func:`cap_series`):
the first ``limit`` series in produced order are kept, the rest fold into the overflow series.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol, cast

from opentelemetry.metrics import Synchronous
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import (
    _Gauge as SyncGauge,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Gauge as GaugeData
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.export import Sum as SumData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._config import DEFAULT_CARDINALITY_LIMIT
from telemetry_otel._index import MetricKey, OwnerIndex
from telemetry_otel.vocabulary import OVERFLOW

__all__ = [
    "DEFAULT_CARDINALITY_LIMIT",
    "OVERFLOW_ATTRIBUTE",
    "MetricAggregator",
    "MetricProducer",
    "PullReader",
    "append_only_metrics",
    "cap_series",
    "merge_produced",
]

#: The attribute of the one series that holds every measurement beyond the cardinality limit.
OVERFLOW_ATTRIBUTE = OVERFLOW

_CUMULATIVE: dict[type, AggregationTemporality] = {
    kind: AggregationTemporality.CUMULATIVE
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        SyncGauge,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}


class MetricProducer(Protocol):
    """Supplies metrics kept outside the SDK's measurement pipeline at collection time.

    ``produce`` returns cumulative ``Metric`` objects shaped exactly as the SDK would build them.
    """

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope the produced metrics belong to."""
        ...

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """The current cumulative metrics, stamped with ``time_unix_nano``."""
        ...


class MetricAggregator(Protocol):
    """Derives metrics from what the SDK and the producers recorded (a bus aggregating providers).

    ``aggregate`` is called once per read with the data it derives from; it must not call back
    into the runtime's read.
    """

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the derived metrics."""
        ...

    def aggregate(self, data: MetricsData, index: OwnerIndex) -> Iterable[Metric]:
        """The derived cumulative metrics for ``data``; ``index`` is its owner index (built once per
        read for every aggregator)."""
        ...


class PullReader(MetricReader):
    """A cumulative reader collected on demand; the only reader on the shared provider.

    ``cardinality_limit`` bounds the distinct attribute sets the SDK keeps per instrument, for
    every instrument kind (beyond it, measurements fold into the ``otel.metric.overflow=true``
    series).
    """

    def __init__(self, cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT) -> None:
        if (
            isinstance(cardinality_limit, bool)
            or not isinstance(cardinality_limit, int)
            or cardinality_limit < 1
        ):
            raise ValueError(f"cardinality_limit must be a positive integer, got {cardinality_limit!r}")
        self.cardinality_limit = cardinality_limit
        super().__init__(
            preferred_temporality=dict(_CUMULATIVE),
            cardinality_limits=dict.fromkeys(_CUMULATIVE, cardinality_limit),
        )
        self._lock = threading.Lock()
        self._received: MetricsData | None = None

    def read(self, timeout_millis: float = 10_000) -> MetricsData | None:
        """Collect now and return what the SDK produced (None when nothing is registered)."""
        with self._lock:
            self.collect(timeout_millis=timeout_millis)
            data, self._received = self._received, None
        return data

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._received = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Nothing to release: the reader holds no thread or connection."""


def _merge_by_name(metrics: Sequence[Metric]) -> list[Metric]:
    """One ``Metric`` per name in a scope: points of same-named metrics of the same type join."""
    kept: list[Metric] = []
    places: dict[str, int] = {}  # name -> its first metric's place in ``kept``
    joined: dict[str, list[Any]] = {}  # name -> the points of every metric joining the first
    for metric in metrics:
        place = places.get(metric.name)
        if place is None:
            places[metric.name] = len(kept)
            kept.append(metric)
            continue
        first = kept[place]
        if type(first.data) is not type(metric.data) or first.unit != metric.unit:
            kept.append(metric)  # a conflicting definition is left for the encoders to report
            continue
        points = joined.get(metric.name)
        if points is None:
            points = joined[metric.name] = list(first.data.data_points)
        points.extend(metric.data.data_points)
    for name, points in joined.items():  # one new metric per joined name, however many joined it
        first = kept[places[name]]
        data = replace(cast(Any, first.data), data_points=points)
        kept[places[name]] = Metric(first.name, first.description, first.unit, data)
    return kept


def _is_overflow(point: NumberDataPoint | HistogramDataPoint) -> bool:
    return bool((point.attributes or {}).get(OVERFLOW_ATTRIBUTE))


def _fold_numbers(points: Sequence[NumberDataPoint], *, last: bool) -> NumberDataPoint:
    value: int | float = points[-1].value if last else sum(point.value for point in points)
    starts = [point.start_time_unix_nano for point in points if point.start_time_unix_nano is not None]
    return NumberDataPoint(
        attributes={OVERFLOW_ATTRIBUTE: True},
        # A gauge's points have no start time (None), like the SDK's.
        start_time_unix_nano=min(starts) if starts else points[0].start_time_unix_nano,
        time_unix_nano=max(point.time_unix_nano for point in points),
        value=value,
    )


def _fold_histograms(points: Sequence[HistogramDataPoint]) -> HistogramDataPoint:
    bounds = tuple(points[0].explicit_bounds)
    # Points with other bounds cannot be added bucket by bucket; the vitals all share their bounds.
    same = [point for point in points if tuple(point.explicit_bounds) == bounds]
    buckets = [0] * (len(bounds) + 1)
    for point in same:
        for index, count in enumerate(point.bucket_counts):
            buckets[index] += count
    return HistogramDataPoint(
        attributes={OVERFLOW_ATTRIBUTE: True},
        start_time_unix_nano=min(point.start_time_unix_nano for point in same),
        time_unix_nano=max(point.time_unix_nano for point in same),
        count=sum(point.count for point in same),
        sum=sum(point.sum for point in same),
        bucket_counts=tuple(buckets),
        explicit_bounds=bounds,
        min=min(point.min for point in same),
        max=max(point.max for point in same),
    )


def cap_series(metric: Metric, limit: int) -> Metric:
    """``metric`` with at most ``limit`` series plus one ``otel.metric.overflow=true`` series.

    The first ``limit`` series (in order, not counting an overflow series already there) are kept
    as they are; every other one folds into the overflow series like the SDK folds measurements:
    sums add up, a gauge keeps the last value, histograms with the same bounds merge. Metrics
    within the limit (and exponential histograms) are returned unchanged.
    """
    data = metric.data
    points: Sequence[Any] = data.data_points
    if len(points) <= limit or not isinstance(data, SumData | GaugeData | HistogramData):
        return metric
    kept: list[Any] = []
    folded: list[Any] = []
    for point in points:
        if len(kept) < limit and not _is_overflow(point):
            kept.append(point)
        else:
            folded.append(point)
    if not folded:
        return metric
    if isinstance(data, HistogramData):
        capped: SumData | GaugeData | HistogramData = replace(
            data, data_points=[*kept, _fold_histograms(folded)]
        )
    else:
        overflow = _fold_numbers(folded, last=isinstance(data, GaugeData))
        capped = replace(data, data_points=[*kept, overflow])
    return Metric(name=metric.name, description=metric.description, unit=metric.unit, data=capped)


def merge_produced(
    data: MetricsData | None,
    resource: Resource,
    produced: Sequence[tuple[InstrumentationScope, Sequence[Metric]]],
    cardinality_limit: int | None = None,
) -> MetricsData:
    """Return ``data`` with ``produced`` metrics added under their scopes (new scopes appended).

    With ``cardinality_limit``, each metric of a scope that received produced metrics is capped by
    :func:`cap_series` (the SDK's own metrics are already within it).
    """
    if data is None or not data.resource_metrics:
        resource_metrics = ResourceMetrics(resource=resource, scope_metrics=[], schema_url="")
    else:
        resource_metrics = data.resource_metrics[0]
    scopes: list[ScopeMetrics] = list(resource_metrics.scope_metrics)
    for scope, metrics in produced:
        if not metrics:
            continue
        for index, existing in enumerate(scopes):
            if existing.scope == scope:
                scopes[index] = ScopeMetrics(
                    scope=existing.scope,
                    metrics=_capped(_merge_by_name([*existing.metrics, *metrics]), cardinality_limit),
                    schema_url=existing.schema_url,
                )
                break
        else:
            scopes.append(
                ScopeMetrics(
                    scope=scope,
                    metrics=_capped(_merge_by_name(metrics), cardinality_limit),
                    schema_url=scope.schema_url or "",
                )
            )
    merged = ResourceMetrics(
        resource=resource_metrics.resource,
        scope_metrics=scopes,
        schema_url=resource_metrics.schema_url,
    )
    rest = list(data.resource_metrics[1:]) if data is not None else []
    return MetricsData(resource_metrics=[merged, *rest])


def _capped(metrics: list[Metric], limit: int | None) -> list[Metric]:
    if limit is None:
        return metrics
    return [cap_series(metric, limit) for metric in metrics]


def append_only_metrics(provider: object, reader: MetricReader) -> frozenset[MetricKey]:
    """The metrics of ``reader``'s storage in ``provider`` whose points only grow at the end.

    Those of synchronous instruments: with cumulative temporality the SDK emits every series they
    ever had on every read, in the order the series appeared, each with the attributes object it
    was created with. An observable instrument's read leaves out the series its callback did not
    report, so its metrics (and any metric an observable instrument shares a name with) are not
    listed. The SDK's storage is read through its internals; when they are not as expected, nothing
    is listed and every point is indexed (:class:`~telemetry_otel._index.IndexMemo`).
    """
    try:
        storage = cast(Any, provider)._measurement_consumer._reader_storages[reader]
        matches = list(storage._instrument_view_instrument_matches.items())
        synchronous: set[MetricKey] = set()
        other: set[MetricKey] = set()
        for instrument, views in matches:
            scope = instrument.instrumentation_scope
            into = synchronous if isinstance(instrument, Synchronous) else other
            into.update((scope.name, scope.version, scope.schema_url, view._name) for view in views)
    except (AttributeError, KeyError, TypeError):
        return frozenset()
    return frozenset(synchronous - other)
