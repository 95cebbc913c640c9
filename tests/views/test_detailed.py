"""The detailed view and its bus sections, from a collection built of plain data (no runtime)."""

from __future__ import annotations

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import Collection, ComponentOutcome, ComponentRecord, HealthReport
from telemetry_otel.views import Thresholds, ViewInputs, render_view

VITALS = InstrumentationScope("telemetry_otel.instrumentation", "1", None, None)
BUS = InstrumentationScope("telemetry_otel.bus", "1", None, None)
APP = InstrumentationScope("app", "1", None, None)


def _sum(name: str, *points: tuple[dict[str, object], float]) -> Metric:
    data = Sum(
        [NumberDataPoint(a, 0, 10, v) for a, v in points],  # type: ignore[arg-type]
        AggregationTemporality.CUMULATIVE,
        True,
    )
    return Metric(name=name, description=f"{name}.", unit="{request}", data=data)


def _collection() -> Collection:
    metrics = MetricsData(
        [
            ResourceMetrics(
                Resource.create({"service.name": "agent"}),
                [
                    ScopeMetrics(
                        VITALS,
                        [
                            _sum(
                                "service.requests",
                                ({"service.name": "planner", "service.category": "graph"}, 10),
                                ({"service.name": "openai", "service.category": "runtime"}, 7),
                                ({"service.name": "ghost"}, 1),
                                ({"route": "/x"}, 2),
                            )
                        ],
                        "",
                    ),
                    ScopeMetrics(
                        BUS,
                        [
                            _sum("bus.requests", ({"bus.name": "llm"}, 7)),
                            _sum("bus.failures", ({"bus.name": "llm"}, 1)),
                            _sum(
                                "bus.provider.requests",
                                ({"bus.name": "llm", "bus.provider": "primary"}, 5),
                                ({"bus.name": "llm", "bus.provider": "fallback"}, 2),
                            ),
                            _sum(
                                "bus.provider.failures",
                                ({"bus.name": "llm", "bus.provider": "primary"}, 1),
                                ({"bus.name": "llm", "bus.provider": "fallback"}, 0),
                            ),
                        ],
                        "",
                    ),
                    ScopeMetrics(APP, [_sum("app.jobs", ({"job.kind": "import"}, 3))], ""),
                ],
                "",
            )
        ]
    )
    return Collection(
        metrics=metrics,
        outcomes={"planner": ComponentOutcome("planner", "none", None, 0.0, None)},
        time_unix_nano=10,
        duration_seconds=0.01,
        sdk_disabled=False,
        components=(
            ComponentRecord("planner", "graph", health=HealthReport("pass", None, 5)),
            ComponentRecord("openai", None, buses=("llm",)),
        ),
        buses={"llm": {"primary": "openai", "fallback": "anthropic"}},
    )


def _detailed() -> dict[str, object]:
    collection = _collection()
    inputs = ViewInputs(collection=collection, previous=None, thresholds=Thresholds(), now_unix_nano=10)
    return render_view("detailed", inputs).document


def test_points_are_grouped_by_service_provider_and_bus_without_their_owner_attributes() -> None:
    document = _detailed()
    services, providers = document["services"], document["providers"]
    assert list(services) == ["planner"]  # type: ignore[call-overload]
    [planner] = services["planner"]["metrics"]  # type: ignore[index]
    assert planner == {
        "name": "service.requests",
        "unit": "{request}",
        "description": "service.requests.",
        "type": "counter",
        "scope": "telemetry_otel.instrumentation",
        "points": [{"attributes": {}, "value": 10}],
    }
    assert services["planner"]["health"] == {"status": "pass", "reason": None}  # type: ignore[index]
    assert services["planner"]["snapshot"]["outcome"] == "none"  # type: ignore[index]
    assert [m["points"] for m in providers["openai"]["metrics"]] == [[{"attributes": {}, "value": 7}]]  # type: ignore[index]


def test_a_bus_lists_its_aggregate_and_per_provider_series_in_read_order_each_metric_once() -> None:
    llm = _detailed()["buses"]["llm"]  # type: ignore[index]
    assert [(m["name"], m["points"]) for m in llm["metrics"]] == [
        ("bus.requests", [{"attributes": {}, "value": 7}]),
        ("bus.failures", [{"attributes": {}, "value": 1}]),
        (
            "bus.provider.requests",
            [
                {"attributes": {"bus.provider": "primary"}, "value": 5},
                {"attributes": {"bus.provider": "fallback"}, "value": 2},
            ],
        ),
        (
            "bus.provider.failures",
            [
                {"attributes": {"bus.provider": "primary"}, "value": 1},
                {"attributes": {"bus.provider": "fallback"}, "value": 0},
            ],
        ),
    ]
    assert (llm["requests"], llm["failures"], llm["failure_ratio"], llm["busiest_provider"]) == (
        7,
        1,
        1 / 7,
        "primary",
    )
    assert llm["providers"]["primary"] == {
        "component": "openai",
        "requests": 5,
        "failures": 1,
        "processed": None,
        "failure_ratio": 0.2,
    }
    assert llm["providers"]["fallback"]["component"] == "anthropic"
    assert llm["processed"] is None  # no series carries it: unknown, never 0


def test_points_of_no_known_component_are_other_metrics_in_read_order() -> None:
    others = _detailed()["other_metrics"]
    assert [(m["name"], m["points"]) for m in others] == [  # type: ignore[union-attr]
        (
            "service.requests",
            [
                {"attributes": {"service.name": "ghost"}, "value": 1},
                {"attributes": {"route": "/x"}, "value": 2},
            ],
        ),
        ("app.jobs", [{"attributes": {"job.kind": "import"}, "value": 3}]),
    ]


def test_totals_and_categories_come_from_the_collections_records() -> None:
    document = _detailed()
    assert document["totals"] == {"services": 1, "providers": 1, "categories": 1, "buses": 1}
    assert document["categories"] == {"graph": ["planner"]}
    assert document["resource"] == {**document["resource"], "service.name": "agent"}  # type: ignore[dict-item]
