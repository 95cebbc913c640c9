"""The six views: exact key sets, filters, derived series and the detailed view on a collection written
as plain data, and a smoke test of every view over a real demo runtime."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from plain_data import PlainCollection, plain_inputs

from telemetry_otel import Collection, Telemetry
from telemetry_otel.formats import encode_prometheus_text
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views._render import (
    DERIVED_SCOPE,
    VIEWS,
    RenderedView,
    ViewInputs,
    render_view,
    view_metrics,
)

Render = Callable[..., RenderedView]
Collect = Callable[[Telemetry], Collection]
MakeInputs = Callable[..., ViewInputs]

HEADER = {"view", "timestamp", "age_seconds", "sdk_disabled", "filter"}
COUNTS = {"total", "healthy", "degraded", "down", "unknown"}
LATENCY = {"count", "mean_seconds", "p50_seconds", "p95_seconds", "p99_seconds"}
ALERT = {"severity", "component", "rule", "value", "threshold", "message"}
SCORE_INPUTS = {"availability", "error_ratio", "latency", "resource_pressure", "circuit_breakers"}
SERVICE_NAMES = {"memory", "llm", "resource_monitor", "broken"}


def _breaker(state: str) -> list[tuple[dict[str, str], int]]:
    return [({"circuit_breaker.state": name}, int(name == state)) for name in ("closed", "open", "half_open")]


def _populated() -> Collection:
    """Four services in three categories, a bus-only provider, two buses, one alert."""
    memory, llm, openai = [0.004] * 40, [0.8] * 40, [0.7] * 40
    return (
        PlainCollection()
        .service(
            "memory",
            "graph",
            requests=40,
            errors=0,
            durations=memory,
            gauges={"service.queue.depth": 4},
            counters={"service.cache.hits": 30, "service.cache.misses": 10},
            outcome="ok",
        )
        .service(
            "llm",
            "runtime",
            requests=40,
            errors=6,  # 15 %: an error_ratio_warn alert on llm
            durations=llm,
            gauges={"service.circuit_breaker.state": _breaker("closed")},
            counters={"llm.tokens.input": 1200, "llm.tokens.output": 300, "llm.cost": 0.25},
            outcome="ok",
        )
        .service(
            "resource_monitor",
            "infrastructure",
            requests=0,
            errors=0,
            gauges={
                "process.cpu.utilization": 0.4,
                "process.memory.usage": 50_000_000,
                "system.memory.utilization": 0.5,
            },
            outcome="ok",
        )
        .service("broken", "runtime", requests=0, errors=0, outcome="error", error="RuntimeError: store down")
        .service("openai", None, requests=40, errors=0, durations=openai, outcome="none")
        .bus("llm", {"openai": "openai", "llm": "llm"}, durations=openai + llm, requests=80, failures=6)
        .bus("memory", {"memory": "memory"}, durations=memory, requests=40, failures=0)
        .build()
    )


POPULATED = _populated()


def _keys(section: dict[str, Any]) -> set[str]:
    return set(section)


def test_views_are_named_and_unknown_names_rejected() -> None:
    assert VIEWS == ("summary", "health", "operational", "performance", "reliability", "detailed")
    with pytest.raises(ValueError, match="unknown view 'bogus'; views: summary, health"):
        render_view("bogus", plain_inputs(POPULATED))


def test_summary_key_set(plain_render: Render) -> None:
    document = plain_render("summary", POPULATED).document
    assert _keys(document) == HEADER | {
        "status",
        "reason",
        "health_score",
        "services",
        "requests",
        "latency_p95_seconds",
        "alerts",
    }
    assert _keys(document["filter"]) == {"category", "service"}
    assert _keys(document["health_score"]) == {"score", "inputs", "missing_inputs"}
    assert _keys(document["health_score"]["inputs"]) == SCORE_INPUTS
    for item in document["health_score"]["inputs"].values():
        assert _keys(item) == {"value", "score", "weight"}
    assert _keys(document["services"]) == COUNTS
    assert _keys(document["requests"]) == {"total", "errors", "error_ratio", "rate_per_second"}
    assert _keys(document["alerts"]) == {"critical", "warning"}
    assert document["view"] == "summary"
    assert document["services"] == {"total": 4, "healthy": 2, "degraded": 1, "down": 0, "unknown": 1}
    assert document["alerts"] == {"critical": 0, "warning": 1}
    assert document["status"] == "warn"


def test_health_key_set(plain_render: Render) -> None:
    document = plain_render("health", POPULATED).document
    assert _keys(document) == HEADER | {"status", "reason", "counts", "categories", "services", "buses"}
    assert _keys(document["counts"]) == COUNTS
    assert list(document["categories"]) == ["graph", "runtime", "infrastructure"]
    for category in document["categories"].values():
        assert _keys(category) == {"status", "reason", "counts", "services"}
    assert set(document["services"]) == SERVICE_NAMES
    for service in document["services"].values():
        assert _keys(service) == {
            "category",
            "status",
            "reason",
            "reported_status",
            "reported_reason",
            "snapshot_outcome",
            "snapshot_error",
            "last_success_age_seconds",
        }
    assert set(document["buses"]) == {"llm", "memory"}
    for bus in document["buses"].values():
        assert _keys(bus) == {"status", "reason", "providers"}
        for provider in bus["providers"].values():
            assert _keys(provider) == {"component", "status", "reason"}
    assert document["categories"]["runtime"]["status"] == "warn"  # llm warn (alert), broken unknown
    assert document["buses"]["llm"]["status"] == "warn"


def test_operational_key_set(plain_render: Render) -> None:
    document = plain_render("operational", POPULATED).document
    assert _keys(document) == HEADER | {
        "status",
        "reason",
        "cpu_count",
        "services",
        "buses",
        "alerts",
        "alert_counts",
        "thresholds",
    }
    for service in document["services"].values():
        assert _keys(service) == {
            "category",
            "status",
            "uptime_seconds",
            "requests",
            "errors",
            "error_ratio",
            "request_rate_per_second",
            "queue_depth",
            "cpu_utilization",
            "memory_usage_bytes",
            "memory_utilization",
            "circuit_breaker",
        }
    for bus in document["buses"].values():
        assert _keys(bus) == {
            "status",
            "providers_total",
            "providers_healthy",
            "providers_unknown",
            "requests",
            "failures",
            "processed",
            "failure_ratio",
            "request_rate_per_second",
            "queue_depth",
        }
    assert len(document["alerts"]) == 1
    assert _keys(document["alerts"][0]) == ALERT
    assert document["alerts"][0]["rule"] == "error_ratio_warn"
    assert _keys(document["alert_counts"]) == {"critical", "warning"}
    monitor = document["services"]["resource_monitor"]
    assert monitor["cpu_utilization"] == pytest.approx(0.1)  # 0.4 of one CPU on 4 CPUs
    assert (monitor["memory_usage_bytes"], monitor["memory_utilization"]) == (50_000_000, 0.5)
    assert document["services"]["memory"]["queue_depth"] == 4
    assert document["services"]["llm"]["circuit_breaker"] == "closed"
    assert document["services"]["memory"]["circuit_breaker"] is None


def test_performance_key_set(plain_render: Render) -> None:
    document = plain_render("performance", POPULATED).document
    assert _keys(document) == HEADER | {
        "latency",
        "throughput",
        "llm",
        "cache",
        "queue_depth",
        "services",
        "buses",
    }
    assert _keys(document["latency"]) == LATENCY
    assert _keys(document["throughput"]) == {"requests", "rate_per_second"}
    assert _keys(document["llm"]) == {"tokens_input", "tokens_output", "cost_usd"}
    assert _keys(document["cache"]) == {"hits", "misses", "hit_ratio"}
    for service in document["services"].values():
        assert _keys(service) == {
            "category",
            "latency",
            "requests",
            "request_rate_per_second",
            "tokens_input",
            "tokens_output",
            "cost_usd",
            "cache_hit_ratio",
            "queue_depth",
        }
        assert _keys(service["latency"]) == LATENCY
    for bus in document["buses"].values():
        assert _keys(bus) == {
            "latency",
            "requests",
            "request_rate_per_second",
            "tokens_input",
            "tokens_output",
            "cost_usd",
            "queue_depth",
        }
    assert document["llm"] == {"tokens_input": 1200, "tokens_output": 300, "cost_usd": 0.25}
    assert document["cache"] == {"hits": 30, "misses": 10, "hit_ratio": 0.75}
    assert document["services"]["llm"]["cache_hit_ratio"] is None
    assert document["buses"]["llm"]["latency"]["count"] == 80


def test_reliability_key_set(plain_render: Render) -> None:
    document = plain_render("reliability", POPULATED).document
    assert _keys(document) == HEADER | {
        "status",
        "reason",
        "availability",
        "error_ratio",
        "collection",
        "host",
        "collection_failures",
        "services",
        "exporters",
        "buses",
    }
    assert document["host"] is None  # one process: no host picture
    assert _keys(document["collection"]) == {"duration_seconds", "snapshots"}
    assert _keys(document["collection"]["snapshots"]) == {"ok", "error", "timeout", "none"}
    assert [_keys(failure) for failure in document["collection_failures"]] == [
        {"component", "outcome", "error", "last_success_age_seconds"}
    ]
    for service in document["services"].values():
        assert _keys(service) == {
            "category",
            "status",
            "uptime_seconds",
            "availability",
            "requests",
            "errors",
            "error_ratio",
            "circuit_breaker",
            "snapshot_outcome",
            "snapshot_error",
            "snapshot_duration_seconds",
            "problems",
            "values_source",
            "last_success_age_seconds",
            "stale",
        }
    for bus in document["buses"].values():
        assert _keys(bus) == {
            "status",
            "providers_total",
            "providers_healthy",
            "providers_unknown",
            "requests",
            "failures",
            "failure_ratio",
            "circuit_breakers",
        }
    services = document["services"]
    assert (services["broken"]["availability"], services["broken"]["stale"]) == (None, None)
    assert services["memory"]["values_source"] == "snapshot"
    assert document["availability"] == 1.0  # three known statuses, all pass or warn
    assert document["error_ratio"] == pytest.approx(6 / 80)  # openai is a provider, not a service
    assert document["buses"]["llm"]["circuit_breakers"] == {"openai": None, "llm": "closed"}


def test_live_values_have_no_staleness(plain_render: Render) -> None:
    live = PlainCollection().service("live", requests=0, errors=0, outcome="none").build()
    service = plain_render("reliability", live).document["services"]["live"]
    assert (service["values_source"], service["last_success_age_seconds"], service["stale"]) == (
        "live",
        None,
        False,
    )
    assert service["snapshot_outcome"] == "none"


def test_detailed_key_set_and_sources() -> None:
    inputs = plain_inputs(POPULATED)
    view = render_view("detailed", inputs)
    assert _keys(view.document) == {
        "timestamp",
        "view",
        "sdk_disabled",
        "collection_duration_seconds",
        "resource",
        "host",
        "totals",
        "categories",
        "services",
        "buses",
        "providers",
        "other_metrics",
        "filter",
    }
    assert view.derived == []
    names = {
        metric.name
        for resource_metrics in inputs.collection.metrics.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
    assert view.sources == names


def _service_names(name: str, document: dict[str, Any]) -> set[str] | int:
    if name == "summary":
        total: int = document["services"]["total"]
        return total
    return set(document["services"])


@pytest.mark.parametrize("name", VIEWS)
def test_category_filter_on_every_view(plain_render: Render, name: str) -> None:
    document = plain_render(name, POPULATED, category="graph").document
    assert document["filter"] == {"category": "graph", "service": None}
    assert _service_names(name, document) == (1 if name == "summary" else {"memory"})
    if name != "summary":
        assert set(document["buses"]) == {"memory"}
    runtime = plain_render(name, POPULATED, category="runtime").document
    assert _service_names(name, runtime) == (2 if name == "summary" else {"llm", "broken"})
    if name != "summary":
        assert set(runtime["buses"]) == {"llm"}


@pytest.mark.parametrize("name", VIEWS)
def test_service_filter_on_every_view(plain_render: Render, name: str) -> None:
    document = plain_render(name, POPULATED, service="llm").document
    assert document["filter"] == {"category": None, "service": "llm"}
    assert _service_names(name, document) == (1 if name == "summary" else {"llm"})
    if name != "summary":
        assert set(document["buses"]) == {"llm"}


@pytest.mark.parametrize("name", [view for view in VIEWS if view != "detailed"])
def test_a_filter_matching_nothing_is_fail(plain_render: Render, name: str) -> None:
    document = plain_render(name, POPULATED, category="nope").document
    if "status" in document:
        assert (document["status"], document["reason"]) == ("fail", "no services match category='nope'")
    assert _service_names(name, document) in (0, set())


def test_filtered_numbers_cover_the_selection_only(plain_render: Render) -> None:
    summary = plain_render("summary", POPULATED, category="runtime").document
    assert summary["requests"] == {"total": 40, "errors": 6, "error_ratio": 0.15, "rate_per_second": None}
    assert summary["alerts"] == {"critical": 0, "warning": 2}  # llm and the category:runtime scope
    operational = plain_render("operational", POPULATED, category="runtime").document
    assert [(a["component"], a["rule"]) for a in operational["alerts"]] == [
        ("category:runtime", "error_ratio_warn"),
        ("llm", "error_ratio_warn"),
    ]
    alone = plain_render("operational", POPULATED, service="llm").document
    assert [a["component"] for a in alone["alerts"]] == ["llm"]  # no scope alert repeating it


def test_detailed_view_filtered(plain_render: Render) -> None:
    graph = plain_render("detailed", POPULATED, category="graph").document
    assert set(graph["services"]) == {"memory"}
    assert graph["categories"] == {"graph": ["memory"]}
    assert (graph["providers"], graph["other_metrics"]) == ({}, [])
    assert set(graph["buses"]) == {"memory"}
    assert graph["totals"] == {"services": 1, "providers": 0, "categories": 1, "buses": 1}
    llm = plain_render("detailed", POPULATED, service="llm").document
    assert (set(llm["services"]), set(llm["providers"]), set(llm["buses"])) == ({"llm"}, {"openai"}, {"llm"})
    assert llm["other_metrics"] == []
    rendered = json.dumps(llm)
    for other in ("resource_monitor", "broken"):
        assert other not in rendered
    unfiltered = plain_render("detailed", POPULATED).document
    assert set(unfiltered["services"]) == SERVICE_NAMES
    assert unfiltered["filter"] == {"category": None, "service": None}


def _points(view: RenderedView, name: str) -> list[NumberDataPoint]:
    (metric,) = [metric for metric in view.derived if metric.name == name]
    assert isinstance(metric.data, Gauge)
    return list(metric.data.data_points)


def _by(points: list[NumberDataPoint], *keys: str) -> dict[tuple[Any, ...], float]:
    return {tuple((p.attributes or {}).get(key) for key in keys): p.value for p in points}


def test_summary_derived_series() -> None:
    inputs = plain_inputs(POPULATED)
    view = render_view("summary", inputs)
    document = view.document
    assert [metric.name for metric in view.derived] == [
        "telemetry.status",
        "telemetry.alerts.active",
        "telemetry.health.score",
        "service.request.duration.estimate",
    ]
    assert _by(_points(view, "telemetry.status"), "status") == {("pass",): 0, ("warn",): 1, ("fail",): 0}
    assert _by(_points(view, "telemetry.alerts.active"), "severity") == {("critical",): 0, ("warning",): 1}
    (score,) = _points(view, "telemetry.health.score")
    assert score.value == document["health_score"]["score"]
    assert score.time_unix_nano == inputs.now_unix_nano
    (p95,) = _points(view, "service.request.duration.estimate")
    assert (dict(p95.attributes or {}), p95.value) == ({"percentile": "95"}, document["latency_p95_seconds"])
    units = {metric.name: metric.unit for metric in view.derived}
    assert units == {
        "telemetry.status": "{status}",
        "telemetry.alerts.active": "{alert}",
        "telemetry.health.score": "{score}",
        "service.request.duration.estimate": "s",
    }
    filtered = render_view("summary", plain_inputs(POPULATED, category="graph"))
    (scoped,) = _points(filtered, "telemetry.health.score")
    assert dict(scoped.attributes or {}) == {"service.category": "graph"}


def test_health_derived_series(plain_render: Render) -> None:
    view = plain_render("health", POPULATED)
    statuses = _by(_points(view, "service.status"), "service.name", "status")
    assert statuses[("llm", "warn")] == 1
    assert statuses[("llm", "pass")] == 0
    assert statuses[("broken", "unknown")] == 1
    assert len(statuses) == 4 * 4  # four services, four states each
    categories = _by(_points(view, "telemetry.category.status"), "service.category", "status")
    assert categories[("runtime", "warn")] == 1
    buses = _by(_points(view, "bus.status"), "bus.name", "status")
    assert (buses[("memory", "pass")], buses[("llm", "warn")]) == (1, 1)


def test_performance_derived_series(plain_render: Render) -> None:
    view = plain_render("performance", POPULATED)
    document = view.document
    estimates = _by(_points(view, "service.request.duration.estimate"), "service.name", "percentile")
    for percentile in ("50", "95", "99"):
        assert estimates[(None, percentile)] == document["latency"][f"p{percentile}_seconds"]
        assert (
            estimates[("llm", percentile)] == document["services"]["llm"]["latency"][f"p{percentile}_seconds"]
        )
    assert ("broken", "50") not in estimates  # no request: no estimate, never 0
    bus = _by(_points(view, "bus.request.duration.estimate"), "bus.name", "percentile")
    assert bus[("llm", "95")] == document["buses"]["llm"]["latency"]["p95_seconds"]
    assert _by(_points(view, "service.cache.hit_ratio"), "service.name") == {("memory",): 0.75}


def test_reliability_derived_series(plain_render: Render) -> None:
    view = plain_render("reliability", POPULATED)
    availability = _by(_points(view, "service.availability"), "service.name")
    assert availability == {("memory",): 1.0, ("llm",): 1.0, ("resource_monitor",): 1.0}  # broken: unknown
    assert _by(_points(view, "service.error_ratio"), "service.name")[("llm",)] == pytest.approx(0.15)
    ages = _by(_points(view, "service.snapshot.age"), "service.name")
    assert set(ages) == {("memory",), ("llm",), ("resource_monitor",)}


def test_view_metrics_keep_the_sources_of_the_selection_and_the_derived() -> None:
    inputs = plain_inputs(POPULATED, category="graph")
    view = render_view("performance", inputs)
    data = view_metrics(inputs, view)
    owners: set[tuple[str, str]] = set()
    names: set[str] = set()
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                names.add(metric.name)
                if scope_metrics.scope == DERIVED_SCOPE:
                    continue
                assert metric.name in view.sources
                for point in metric.data.data_points:
                    attributes = point.attributes or {}
                    owners.add(
                        ("service", str(attributes["service.name"]))
                        if "service.name" in attributes
                        else ("bus", str(attributes["bus.name"]))
                    )
    assert owners == {("service", "memory"), ("bus", "memory")}
    assert {metric.name for metric in view.derived} <= names
    assert "service.request.duration" in names


def _promtool(text: str) -> None:
    """``promtool check metrics`` must accept ``text`` silently; a missing promtool fails the test."""
    result = subprocess.run(
        ["/usr/bin/promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def _derived_only(view: RenderedView) -> MetricsData:
    scope = ScopeMetrics(DERIVED_SCOPE, list(view.derived), "")
    return MetricsData([ResourceMetrics(Resource.create({"service.name": "t"}), [scope], "")])


@pytest.fixture
def demo(telemetry: Telemetry) -> Iterator[DemoRuntime]:
    runtime = DemoRuntime(telemetry, seed=4)
    yield runtime
    runtime.close()


@pytest.mark.parametrize("filters", [{}, {"category": "runtime"}, {"service": "llm"}])
def test_demo_smoke_every_view_is_json_and_passes_promtool(
    telemetry: Telemetry,
    demo: DemoRuntime,
    collect: Collect,
    make_inputs: MakeInputs,
    filters: dict[str, str],
) -> None:
    for _ in range(5):
        demo.step()
    previous = collect(telemetry)
    for _ in range(5):
        demo.step()
    inputs = make_inputs(previous=previous, **filters)
    derived: list[Metric] = []
    for name in VIEWS:
        view = render_view(name, inputs)
        text = json.dumps(view.document, allow_nan=False)
        assert json.loads(text)["view"] == name
        if name != "detailed":
            assert view.derived
        _promtool(encode_prometheus_text(view_metrics(inputs, view)))
        _promtool(encode_prometheus_text(_derived_only(view)))
        derived += view.derived
    assert {metric.name for metric in derived} >= {
        "telemetry.status",
        "telemetry.health.score",
        "telemetry.alerts.active",
        "service.status",
        "service.request.duration.estimate",
        "service.availability",
    }
    summary = render_view("summary", inputs).document
    assert summary["requests"]["rate_per_second"] is not None
    if not filters:
        assert summary["services"]["total"] == 21
        assert summary["health_score"]["score"] is not None
