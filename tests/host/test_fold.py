"""The host fold from plain data: what adds, what follows a gauge rule, what a retired worker leaves."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
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

from telemetry_otel import SERVICE_INSTANCE_ID
from telemetry_otel.host import HostFold, parse_gauge_rules

SCOPE = InstrumentationScope("fold.test", "1", None, None)
CUMULATIVE = AggregationTemporality.CUMULATIVE
BOUNDS = (0.1, 1.0)


def _report(instance: str, metrics: list[Metric]) -> MetricsData:
    resource = Resource({SERVICE_INSTANCE_ID: instance, "service.name": "agent"})
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(SCOPE, metrics, "")], "")])


def _counter(
    name: str, value: float, attributes: dict[str, Any] | None = None, *, monotonic: bool = True
) -> Metric:
    point = NumberDataPoint(attributes or {}, 1, 2, value)
    return Metric(name, "", "1", Sum([point], CUMULATIVE, monotonic))


def _gauge(name: str, value: float, time: int = 2) -> Metric:
    return Metric(name, "", "1", Gauge([NumberDataPoint({}, 0, time, value)]))


def _histogram(buckets: list[int], bounds: tuple[float, ...] = BOUNDS) -> Metric:
    point = HistogramDataPoint({}, 1, 2, sum(buckets), float(sum(buckets)), buckets, list(bounds), 0.05, 5.0)
    return Metric("latency", "", "s", Histogram([point], CUMULATIVE))


def _fold(**rules: Any) -> HostFold:
    return HostFold(instance_id="host", start_unix_nano=7, gauge_rules=rules or None)


def _points(fold: HostFold, now: int = 100) -> dict[str, list[Any]]:
    data = fold.picture(now)
    [resource_metrics] = data.resource_metrics
    return {
        metric.name: list(metric.data.data_points)
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


def _value(fold: HostFold, name: str) -> Any:
    [point] = _points(fold)[name]
    return point.value


def test_counters_up_down_counters_and_histograms_add_over_workers() -> None:
    fold = _fold()
    fold.report(
        _report(
            "a", [_counter("requests", 3), _counter("inflight", 2, monotonic=False), _histogram([1, 2, 0])]
        ),
        pid=None,
        now_unix_nano=1,
    )
    fold.report(
        _report(
            "b", [_counter("requests", 4), _counter("inflight", 1, monotonic=False), _histogram([0, 1, 5])]
        ),
        pid=None,
        now_unix_nano=1,
    )
    points = _points(fold)
    assert _value(fold, "requests") == 7
    assert _value(fold, "inflight") == 3
    [latency] = points["latency"]
    assert (latency.count, list(latency.bucket_counts), latency.min, latency.max) == (9, [1, 3, 5], 0.05, 5.0)
    # One host series, started when the fold began (no false start on a respawn), the host's identity.
    assert latency.start_time_unix_nano == 7
    assert fold.picture(100).resource_metrics[0].resource.attributes[SERVICE_INSTANCE_ID] == "host"


def test_histograms_with_different_boundaries_are_an_error_naming_both() -> None:
    fold = _fold()
    fold.report(_report("a", [_histogram([1, 1, 1])]), pid=None, now_unix_nano=1)
    problems = fold.report(_report("b", [_histogram([5, 5, 5], (0.5, 2.0))]), pid=None, now_unix_nano=1)
    assert len(problems) == 1
    assert "[0.5, 2.0]" in problems[0]
    assert "[0.1, 1.0]" in problems[0]
    assert "worker b" in problems[0]
    [latency] = _points(fold)["latency"]
    assert latency.count == 3  # b's series is left out, never mixed in
    assert fold.problems == 1


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("sum", [9.0]), ("min", [2.0]), ("max", [4.0]), ("mean", [3.0]), ("last", [3.0])],
)
def test_gauges_follow_their_declared_host_rule(rule: str, expected: list[float]) -> None:
    fold = _fold(queue=rule)
    for instance, value, time in (("a", 4.0, 5), ("b", 2.0, 6), ("c", 3.0, 9)):
        fold.report(_report(instance, [_gauge("queue", value, time)]), pid=None, now_unix_nano=1)
    assert [point.value for point in _points(fold)["queue"]] == expected


def test_a_gauge_may_be_kept_per_worker_labelled_by_instance() -> None:
    fold = _fold(queue="worker")
    fold.report(_report("a", [_gauge("queue", 4.0)]), pid=None, now_unix_nano=1)
    fold.report(_report("b", [_gauge("queue", 2.0)]), pid=None, now_unix_nano=1)
    by_worker = {point.attributes[SERVICE_INSTANCE_ID]: point.value for point in _points(fold)["queue"]}
    assert by_worker == {"a": 4.0, "b": 2.0}


def test_an_undeclared_gauge_sums_like_on_a_bus() -> None:
    fold = _fold()
    fold.report(_report("a", [_gauge("queue", 4.0)]), pid=None, now_unix_nano=1)
    fold.report(_report("b", [_gauge("queue", 2.0)]), pid=None, now_unix_nano=1)
    assert _value(fold, "queue") == 6.0


@pytest.mark.parametrize(
    "name",
    [
        "telemetry.component.info",
        "telemetry.component.bus",
        "telemetry.component.health",
        "telemetry.collection.outcome",
        "telemetry.collection.timestamp",
    ],
)
def test_the_series_describing_a_collection_are_never_added_over_workers(name: str) -> None:
    """Every worker says the same of its components: one worker's 1 stays 1, a time stays a time."""
    fold = _fold()
    first, second = (1_700_000_000.0, 1_700_000_001.0) if name.endswith("timestamp") else (1.0, 1.0)
    fold.report(_report("a", [_gauge(name, first)]), pid=None, now_unix_nano=1)
    fold.report(_report("b", [_gauge(name, second)]), pid=None, now_unix_nano=1)
    assert _value(fold, name) == second


def test_a_retired_worker_keeps_its_counts_and_costs_no_memory_per_respawn() -> None:
    fold = _fold()
    fold.report(
        _report("steady", [_counter("requests", 10), _gauge("queue", 1.0)]), pid=None, now_unix_nano=1
    )
    for respawn in range(5000):
        instance = f"respawn-{respawn}"
        metrics = [
            _counter("requests", 2),
            _counter("inflight", 1, monotonic=False),
            _gauge("queue", 5.0),
            _histogram([1, 0, 0]),
        ]
        fold.report(_report(instance, metrics), pid=None, now_unix_nano=1)
        assert fold.retire(instance)
    assert _value(fold, "requests") == 10 + 2 * 5000  # never backwards: every retired count stays
    assert _value(fold, "queue") == 1.0  # a gone worker's gauge is gone
    assert "inflight" not in _points(fold)  # and so is what it held
    assert _points(fold)["latency"][0].count == 5000
    assert fold.retired_workers == 5000
    assert [worker.instance_id for worker in fold.workers] == ["steady"]
    assert len(fold._retired) == 2  # one retired total per series, whatever the respawns
    assert len(fold._gone) == 4096  # the ids remembered against late reports are bounded


def test_a_counter_that_goes_back_under_one_identity_never_makes_the_host_go_back() -> None:
    fold = _fold()
    fold.report(_report("a", [_counter("requests", 8)]), pid=None, now_unix_nano=1)
    fold.report(_report("a", [_counter("requests", 3)]), pid=None, now_unix_nano=2)  # it restarted
    assert _value(fold, "requests") == 11


def test_exponential_histograms_add_at_the_smaller_scale() -> None:
    def exp(scale: int, offset: int, counts: list[int]) -> Metric:
        point = ExponentialHistogramDataPoint(
            {}, 1, 2, sum(counts), 1.0, scale, 0, Buckets(offset, counts), Buckets(0, []), 0, 0.1, 9.0
        )
        return Metric("exp", "", "s", ExponentialHistogram([point], CUMULATIVE))

    fold = _fold()
    fold.report(_report("a", [exp(2, 4, [1, 1, 1, 1])]), pid=None, now_unix_nano=1)  # indexes 4..7 at scale 2
    fold.report(_report("b", [exp(1, 2, [3])]), pid=None, now_unix_nano=1)  # index 2 at scale 1
    [point] = _points(fold)["exp"]
    assert point.scale == 1
    assert point.count == 7
    assert (point.positive.offset, list(point.positive.bucket_counts)) == (2, [5, 2])


def test_delta_points_and_a_changed_kind_are_problems() -> None:
    fold = _fold()
    delta = Metric("d", "", "1", Sum([NumberDataPoint({}, 1, 2, 1)], AggregationTemporality.DELTA, True))
    problems = fold.report(_report("a", [delta, _counter("k", 1)]), pid=None, now_unix_nano=1)
    problems += fold.report(_report("b", [_gauge("k", 1.0)]), pid=None, now_unix_nano=1)
    assert [problem.split(":")[0] for problem in problems] == ["d", "k"]


def test_gauge_rules_are_parsed_and_refused_with_what_is_allowed() -> None:
    assert parse_gauge_rules("a=max, b=worker,") == {"a": "max", "b": "worker"}
    with pytest.raises(ValueError, match="is not one of sum, min, max, mean, last, worker"):
        parse_gauge_rules("a=median")
    with pytest.raises(ValueError, match=r"metric\.name=rule"):
        parse_gauge_rules("justaname")
    with pytest.raises(ValueError, match="is not one of"):
        HostFold(instance_id="h", start_unix_nano=0, gauge_rules={"a": "median"})  # type: ignore[dict-item]


def test_each_live_worker_lists_its_own_counters_for_the_per_worker_breakdown() -> None:
    fold = _fold()
    fold.report(
        _report("a", [_counter("requests", 3, {"r": "x"}), _counter("requests", 2, {"r": "y"})]),
        pid=7,
        now_unix_nano=1,
    )
    fold.report(_report("b", [_counter("requests", 4), _gauge("queue", 1.0)]), pid=8, now_unix_nano=2)
    assert [(w.instance_id, w.pid, dict(w.counters)) for w in fold.workers] == [
        ("a", 7, {"requests": 5}),
        ("b", 8, {"requests": 4}),
    ]


def test_a_series_a_live_worker_stops_reporting_keeps_its_count() -> None:
    fold = _fold()
    fold.report(
        _report("a", [_counter("requests", 6, {"svc": "gone"}), _counter("requests", 2, {"svc": "kept"})]),
        pid=None,
        now_unix_nano=1,
    )
    fold.report(_report("a", [_counter("requests", 3, {"svc": "kept"})]), pid=None, now_unix_nano=2)
    by_service = {point.attributes["svc"]: point.value for point in _points(fold)["requests"]}
    assert by_service == {"gone": 6, "kept": 3}


def test_a_late_report_of_a_retired_worker_is_not_counted_twice() -> None:
    fold = _fold()
    fold.report(_report("a", [_counter("requests", 5)]), pid=None, now_unix_nano=1)
    fold.retire("a")
    problems = fold.report(_report("a", [_counter("requests", 5)]), pid=None, now_unix_nano=2)
    assert problems == ["a report of retired worker a was left out (its counts are retired)"]
    assert _value(fold, "requests") == 5
