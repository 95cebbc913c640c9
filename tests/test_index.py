"""The owner index: every point of one read grouped by owner, in one pass, from plain data."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import Collection, OwnerIndex

SCOPE = InstrumentationScope("test", "1", None, None)
OTHER = InstrumentationScope("other", "1", None, None)


def _number(attributes: dict[str, object], value: float) -> NumberDataPoint:
    return NumberDataPoint(attributes=attributes, start_time_unix_nano=0, time_unix_nano=1, value=value)  # type: ignore[arg-type]


def _counter(name: str, *points: NumberDataPoint) -> Metric:
    data = Sum(list(points), AggregationTemporality.CUMULATIVE, True)
    return Metric(name=name, description="", unit="1", data=data)


def _data(*scopes: tuple[InstrumentationScope, list[Metric]]) -> MetricsData:
    scope_metrics = [ScopeMetrics(scope, metrics, "") for scope, metrics in scopes]
    return MetricsData([ResourceMetrics(Resource.create({"service.name": "agent"}), scope_metrics, "")])


def test_points_are_grouped_by_service_bus_and_bus_provider_in_read_order() -> None:
    requests = _counter(
        "service.requests",
        _number({"service.name": "a", "service.category": "graph"}, 3),
        _number({"service.name": "b"}, 4),
        _number({"service.name": "a", "route": "/x"}, 5),
        _number({}, 6),
    )
    bus = _counter(
        "bus.requests",
        _number({"bus.name": "llm"}, 7),
    )
    per_provider = _counter(
        "bus.provider.requests",
        _number({"bus.name": "llm", "bus.provider": "p1"}, 2),
        _number({"bus.name": "llm", "bus.provider": "p2"}, 5),
    )
    gauge = Metric("queue.depth", "", "1", Gauge([_number({"queue": "x"}, 1.5)]))
    index = OwnerIndex.of(_data((SCOPE, [requests, bus]), (OTHER, [per_provider, gauge])))

    [a] = index.service("a")
    assert (a.name, a.scope, a.position, [p.value for p in a.points]) == (
        "service.requests",
        SCOPE,
        0,
        [3, 5],
    )
    assert [p.value for p in index.service("b")[0].points] == [4]
    assert index.service("nobody") == ()
    [llm] = index.bus("llm")
    assert (llm.name, llm.position, [p.value for p in llm.points]) == ("bus.requests", 1, [7])
    assert {key: [p.value for g in groups for p in g.points] for key, groups in index.providers.items()} == {
        ("llm", "p1"): [2],
        ("llm", "p2"): [5],
    }
    assert [(g.name, g.position, [p.value for p in g.points]) for g in index.unowned] == [
        ("service.requests", 0, [6]),
        ("queue.depth", 3, [1.5]),
    ]
    assert index.metric_names == {"service.requests", "bus.requests", "bus.provider.requests", "queue.depth"}
    assert index.resource is not None
    assert index.resource.attributes["service.name"] == "agent"
    owned = sorted((kind, owner, group.name) for kind, owner, group in index.owned())
    assert owned == [
        ("bus", "llm", "bus.requests"),
        ("provider", "llm/p1", "bus.provider.requests"),
        ("provider", "llm/p2", "bus.provider.requests"),
        ("service", "a", "service.requests"),
        ("service", "b", "service.requests"),
    ]


def test_a_point_naming_a_service_belongs_to_it_whatever_else_it_carries() -> None:
    both = _counter("x", _number({"service.name": "a", "bus.name": "llm"}, 1))
    index = OwnerIndex.of(_data((SCOPE, [both])))
    assert [g.name for g in index.service("a")] == ["x"]
    assert index.bus("llm") == ()


def test_a_metric_of_nobody_is_one_unowned_group_and_histograms_are_indexed() -> None:
    many = _counter("items", *(_number({"item.id": i}, i) for i in range(100)))
    histogram = Metric(
        "service.request.duration",
        "",
        "s",
        Histogram(
            [
                HistogramDataPoint(
                    attributes={"service.name": "a"},
                    start_time_unix_nano=0,
                    time_unix_nano=1,
                    count=1,
                    sum=0.2,
                    bucket_counts=[0, 1],
                    explicit_bounds=[0.1],
                    min=0.2,
                    max=0.2,
                )
            ],
            AggregationTemporality.CUMULATIVE,
        ),
    )
    index = OwnerIndex.of(_data((SCOPE, [many, histogram])))
    [unowned] = index.unowned
    assert len(unowned.points) == 100
    [owned] = index.service("a")
    assert owned.points[0].count == 1  # type: ignore[union-attr]


def test_a_collection_builds_its_index_once_on_first_use() -> None:
    collection = Collection(
        _data((SCOPE, [_counter("x", _number({"service.name": "a"}, 1))])), {}, 1, 0.0, sdk_disabled=False
    )
    assert collection.index is collection.index
    assert [g.name for g in collection.index.service("a")] == ["x"]


def test_empty_data_has_an_empty_index() -> None:
    index = OwnerIndex.of(MetricsData(resource_metrics=[]))
    assert (dict(index.services), dict(index.buses), index.unowned, index.metric_names) == (
        {},
        {},
        (),
        frozenset(),
    )
    assert index.resource is None


def test_exponential_histograms_and_metrics_without_points_are_indexed() -> None:
    from opentelemetry.sdk.metrics._internal.point import (
        Buckets,
        ExponentialHistogram,
        ExponentialHistogramDataPoint,
    )

    point = ExponentialHistogramDataPoint(
        attributes={"service.name": "a"},
        start_time_unix_nano=0,
        time_unix_nano=1,
        count=1,
        sum=0.5,
        scale=0,
        zero_count=0,
        positive=Buckets(0, [1]),
        negative=Buckets(0, []),
        flags=0,
        min=0.5,
        max=0.5,
    )
    exponential = Metric("lat", "", "s", ExponentialHistogram([point], AggregationTemporality.CUMULATIVE))
    empty = _counter("nothing.yet")
    index = OwnerIndex.of(_data((SCOPE, [exponential, empty])))
    assert [g.name for g in index.service("a")] == ["lat"]
    assert [(g.name, len(g.points)) for g in index.unowned] == [("nothing.yet", 0)]
    assert index.metric_names == {"lat", "nothing.yet"}


def _items(attributes: list[dict[str, object]]) -> MetricsData:
    """A read of one counter ``app.items`` with a point per attributes object, in order."""
    return _data((SCOPE, [_counter("app.items", *(_number(a, 1) for a in attributes))]))


def test_a_memo_skips_only_the_unowned_points_it_has_seen_at_their_places() -> None:
    from telemetry_otel._index import IndexMemo

    # The SDK's cumulative storage hands out one attributes object per series, read after read.
    unowned = [{"item.id": index} for index in range(1000)]
    memo = IndexMemo()
    # The memo is used for the metrics its caller names append-only (a synchronous instrument's).
    trusted = {(SCOPE.name, SCOPE.version, SCOPE.schema_url, "app.items")}
    first = OwnerIndex.of(_items(unowned), memo, trusted)
    assert first.services == {}
    assert len(memo) == 1

    # A new owned series appended after the known ones is found.
    grown = [*(_number(a, 2) for a in unowned), _number({"service.name": "a"}, 5)]
    second = OwnerIndex.of(_data((SCOPE, [_counter("app.items", *grown)])), memo, trusted)
    [owned] = second.service("a")
    assert [point.value for point in owned.points] == [5]
    assert len(memo) == 0  # a metric with an owned point is not remembered

    # Relearn the unowned read, then hand over fresh objects (a producer's points, storage emptied
    # after a fork): the memo does not apply, and an owned point in their middle is found.
    OwnerIndex.of(_items(unowned), memo, trusted)
    fresh = [dict(a) for a in unowned]
    fresh[500] = {"service.name": "b"}
    third = OwnerIndex.of(_items(fresh), memo, trusted)
    assert [point.value for owned in third.service("b") for point in owned.points] == [1]

    # The same first object, then others (storage refilled in another order): indexed in full.
    OwnerIndex.of(_items(unowned), memo, trusted)
    refilled = [unowned[0], *(dict(a) for a in unowned[1:])]
    refilled[500] = {"service.name": "d"}
    again = OwnerIndex.of(_items(refilled), memo, trusted)
    assert len(again.service("d")) == 1

    # The same leading objects but fewer points than remembered: indexed in full.
    OwnerIndex.of(_items(unowned), memo, trusted)
    fewer = [*unowned[:10], {"service.name": "c"}]
    fourth = OwnerIndex.of(_items(fewer), memo, trusted)
    assert len(fourth.service("c")) == 1


def test_a_memo_forgets_metrics_the_latest_read_did_not_hold() -> None:
    from telemetry_otel._index import IndexMemo

    memo = IndexMemo()
    trusted = {
        (scope.name, scope.version, scope.schema_url, name)
        for scope in (SCOPE, OTHER)
        for name in ("a.items", "b.items")
    }
    data = _data((SCOPE, [_counter("a.items", _number({"k": 1}, 1)), _counter("b.items")]))
    OwnerIndex.of(data, memo, trusted)
    assert len(memo) == 1  # a metric without points has nothing to remember
    OwnerIndex.of(_data((OTHER, [_counter("a.items", _number({"k": 1}, 1))])), memo, trusted)
    assert len(memo) == 1  # another scope's metric of the same name is another entry; the old one went
    OwnerIndex.of(_data((SCOPE, [_counter("c.items", _number({"k": 1}, 1))])), memo, trusted)
    assert len(memo) == 0  # a metric not named append-only is never remembered
