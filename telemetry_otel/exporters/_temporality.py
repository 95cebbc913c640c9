"""Cumulative to delta conversion, for an exporter whose temporality preference asks for delta.

The shared read is cumulative. For ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta`` (or
``lowmemory``) monotonic sums and histograms are sent as the change since the previous export;
up-down sums and gauges stay as they are, as the specification's ``delta`` preference says. The
first export of a stream carries its whole cumulative value from the stream's start. A stream whose
cumulative value went down (its source restarted) restarts from its new value.

A delta histogram's count, sum and buckets are exact. Its ``min``/``max`` are exact only when the
interval set a new lifetime extreme; otherwise the interval's own extreme was never measured and is
sent as NaN (unknown), not guessed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)

__all__ = ["DeltaConverter"]

_Key = tuple[str, str, str, frozenset[tuple[str, Any]]]


class DeltaConverter:
    """Turns successive cumulative ``MetricsData`` into delta data for monotonic sums and histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._previous: dict[_Key, NumberDataPoint | HistogramDataPoint] = {}

    def convert(self, data: MetricsData) -> MetricsData:
        """The delta form of ``data``, relative to the previous call."""
        with self._lock:
            return MetricsData(
                [
                    ResourceMetrics(
                        rm.resource,
                        [
                            ScopeMetrics(
                                sm.scope,
                                [self._metric(sm.scope.name, sm.scope.version or "", m) for m in sm.metrics],
                                sm.schema_url,
                            )
                            for sm in rm.scope_metrics
                        ],
                        rm.schema_url,
                    )
                    for rm in data.resource_metrics
                ]
            )

    def _metric(self, scope: str, version: str, metric: Metric) -> Metric:
        data = metric.data
        delta = AggregationTemporality.DELTA
        cumulative = AggregationTemporality.CUMULATIVE
        if isinstance(data, Sum) and data.is_monotonic and data.aggregation_temporality == cumulative:
            points = [self._sum_point((scope, version, metric.name, _attrs(p)), p) for p in data.data_points]
            return replace(metric, data=Sum(points, delta, is_monotonic=True))
        if isinstance(data, Histogram) and data.aggregation_temporality == cumulative:
            points_h = [
                self._histogram_point((scope, version, metric.name, _attrs(p)), p) for p in data.data_points
            ]
            return replace(metric, data=Histogram(points_h, delta))
        return metric

    def _sum_point(self, key: _Key, point: NumberDataPoint) -> NumberDataPoint:
        previous = self._previous.get(key)
        self._previous[key] = point
        if not isinstance(previous, NumberDataPoint) or point.value < previous.value:
            return point
        return replace(
            point, start_time_unix_nano=previous.time_unix_nano, value=point.value - previous.value
        )

    def _histogram_point(self, key: _Key, point: HistogramDataPoint) -> HistogramDataPoint:
        previous = self._previous.get(key)
        self._previous[key] = point
        if (
            not isinstance(previous, HistogramDataPoint)
            or point.count < previous.count
            or tuple(point.explicit_bounds) != tuple(previous.explicit_bounds)
        ):
            return point
        return replace(
            point,
            start_time_unix_nano=previous.time_unix_nano,
            count=point.count - previous.count,
            sum=point.sum - previous.sum,
            bucket_counts=tuple(
                a - b for a, b in zip(point.bucket_counts, previous.bucket_counts, strict=True)
            ),
            min=point.min if point.min < previous.min else math.nan,
            max=point.max if point.max > previous.max else math.nan,
            # Only the exemplars measured within this interval (a bucket keeps its latest one).
            exemplars=[e for e in point.exemplars if e.time_unix_nano > previous.time_unix_nano],
        )


def _attrs(point: NumberDataPoint | HistogramDataPoint) -> frozenset[tuple[str, Any]]:
    return frozenset((point.attributes or {}).items())
