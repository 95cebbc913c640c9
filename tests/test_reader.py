"""The runtime's read: the SDK's data, every producer's series merged by scope and name, capped,
then every aggregator's series derived from it with the read's owner index."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import OwnerIndex, Telemetry, TelemetryConfig

SCOPE = InstrumentationScope("producer", "1", None, None)
DERIVED = InstrumentationScope("derived", "1", None, None)


def _counter(name: str, points: Iterable[tuple[dict[str, object], float]], time_unix_nano: int) -> Metric:
    data = Sum(
        [NumberDataPoint(a, 0, time_unix_nano, v) for a, v in points],  # type: ignore[arg-type]
        AggregationTemporality.CUMULATIVE,
        True,
    )
    return Metric(name=name, description="", unit="1", data=data)


class _Producer:
    def __init__(self, name: str, points: list[tuple[dict[str, object], float]]) -> None:
        self.name, self.points = name, points

    @property
    def scope(self) -> InstrumentationScope:
        return SCOPE

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        return [_counter(self.name, self.points, time_unix_nano)]


class _Totals:
    """An aggregator deriving, per service, the sum of its ``jobs`` series, from the owner index."""

    def __init__(self) -> None:
        self.indexes: list[OwnerIndex] = []

    @property
    def scope(self) -> InstrumentationScope:
        return DERIVED

    def aggregate(self, data: MetricsData, index: OwnerIndex) -> Iterable[Metric]:
        self.indexes.append(index)
        totals = [
            ({"service.name": name}, sum(p.value for g in groups if g.name == "jobs" for p in g.points))  # type: ignore[union-attr]
            for name, groups in index.services.items()
        ]
        return [_counter("jobs.total", totals, 1)]


def _values(data: MetricsData, scope: str, name: str) -> list[tuple[dict[str, object], float]]:
    return [
        (dict(point.attributes or {}), point.value)  # type: ignore[union-attr]
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == scope
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_producers_of_one_scope_merge_by_name_and_aggregators_read_the_index() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="reader"))
    try:
        telemetry.add_producer(_Producer("jobs", [({"service.name": "a"}, 2), ({"service.name": "b"}, 5)]))
        telemetry.add_producer(_Producer("jobs", [({"service.name": "a", "kind": "x"}, 3)]))
        totals = _Totals()
        telemetry.add_aggregator(totals)
        data = telemetry.read_metrics()
        assert sorted(_values(data, "producer", "jobs"), key=str) == sorted(
            [({"service.name": "a"}, 2), ({"service.name": "b"}, 5), ({"service.name": "a", "kind": "x"}, 3)],
            key=str,
        )
        assert sorted(_values(data, "derived", "jobs.total"), key=str) == [
            ({"service.name": "a"}, 5),
            ({"service.name": "b"}, 5),
        ]
        [index] = totals.indexes
        assert set(index.services) == {"a", "b"}
        assert "jobs.total" not in index.metric_names  # the index is of the read before aggregation
        telemetry.remove_aggregator(totals)
        assert _values(telemetry.read_metrics(), "derived", "jobs.total") == []
    finally:
        telemetry.shutdown()


def test_produced_series_beyond_the_cardinality_limit_fold_into_one_overflow_series() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="reader", cardinality_limit=3))
    try:
        telemetry.add_producer(_Producer("jobs", [({"job": index}, 1) for index in range(10)]))
        values = _values(telemetry.read_metrics(), "producer", "jobs")
        assert len(values) == 4
        assert ({"otel.metric.overflow": True}, 7) in values  # 3 kept, 7 folded
        assert sum(value for _, value in values) == 10
    finally:
        telemetry.shutdown()


def test_a_read_without_aggregates_leaves_the_derived_series_out() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="reader"))
    try:
        telemetry.add_producer(_Producer("jobs", [({"service.name": "a"}, 1)]))
        totals = _Totals()
        telemetry.add_aggregator(totals)
        assert _values(telemetry.read_metrics(aggregates=False), "derived", "jobs.total") == []
        assert totals.indexes == []
    finally:
        telemetry.shutdown()
