"""The one SDK reader on the shared provider, and the merge of producer metrics into its data.

Every consumer (the endpoint, ``/metrics``, buses, push exporters) reads through this single reader,
so the SDK keeps exactly one storage per instrument and a measurement costs the same however many
consumers there are. Metrics recorded outside the SDK (the vitals fast path) come in through
:class:`MetricProducer` objects and are merged into the same ``MetricsData``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol, cast

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
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["MetricAggregator", "MetricProducer", "PullReader", "merge_produced"]

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

    def aggregate(self, data: MetricsData) -> Iterable[Metric]:
        """The derived cumulative metrics for ``data``."""
        ...


class PullReader(MetricReader):
    """A cumulative reader collected on demand; the only reader on the shared provider."""

    def __init__(self) -> None:
        super().__init__(preferred_temporality=dict(_CUMULATIVE))
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
    merged: dict[str, Metric] = {}
    kept: list[Metric] = []
    for metric in metrics:
        first = merged.get(metric.name)
        if first is None:
            merged[metric.name] = metric
            kept.append(metric)
            continue
        if type(first.data) is not type(metric.data) or first.unit != metric.unit:
            kept.append(metric)  # a conflicting definition is left for the encoders to report
            continue
        combined = Metric(
            name=first.name,
            description=first.description,
            unit=first.unit,
            data=replace(
                cast(Any, first.data), data_points=[*first.data.data_points, *metric.data.data_points]
            ),
        )
        merged[metric.name] = combined
        kept[kept.index(first)] = combined
    return kept


def merge_produced(
    data: MetricsData | None,
    resource: Resource,
    produced: Sequence[tuple[InstrumentationScope, Sequence[Metric]]],
) -> MetricsData:
    """Return ``data`` with ``produced`` metrics added under their scopes (new scopes appended)."""
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
                    metrics=_merge_by_name([*existing.metrics, *metrics]),
                    schema_url=existing.schema_url,
                )
                break
        else:
            scopes.append(
                ScopeMetrics(scope=scope, metrics=_merge_by_name(metrics), schema_url=scope.schema_url or "")
            )
    merged = ResourceMetrics(
        resource=resource_metrics.resource,
        scope_metrics=scopes,
        schema_url=resource_metrics.schema_url,
    )
    rest = list(data.resource_metrics[1:]) if data is not None else []
    return MetricsData(resource_metrics=[merged, *rest])
