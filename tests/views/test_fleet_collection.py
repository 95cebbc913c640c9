"""A collection rebuilt from ``/metrics`` as a TSDB stores it gives the views the same counts and health.

The samples are what a Prometheus-compatible TSDB holds after scraping: the real exposition of a
real demo runtime, parsed by ``prometheus_client``'s parser, labelled by the scrape (job, instance).
"""

from __future__ import annotations

import asyncio
import re

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import Collection, Snapshot, TelemetryConfig
from telemetry_otel import Telemetry as Runtime
from telemetry_otel.formats import encode_openmetrics, encode_prometheus_text, label_agent
from telemetry_otel.instrumentation import gauge, instrument_service
from telemetry_otel.instrumentation.demo import DemoRuntime
from telemetry_otel.views import Thresholds, ViewInputs, render_view
from telemetry_otel.views._fleet_collection import ONLY_ON_AGENT, agent_collection
from telemetry_otel.views._fleet_query import Sample


def _scraped(collection: Collection, openmetrics: bool = False) -> list[Sample]:
    """The samples a TSDB stores from one scrape (OpenMetrics: with the ``_created`` series)."""
    labelled = label_agent(collection.metrics)
    if openmetrics:
        families = openmetrics_families(encode_openmetrics(labelled))
    else:
        families = text_string_to_metric_families(encode_prometheus_text(labelled))
    scrape = {"job": "telemetry-otel", "instance": "127.0.0.1:9"}
    return [
        Sample({"__name__": sample.name, **sample.labels, **scrape}, float(sample.value))
        for family in families
        for sample in family.samples
    ]


@pytest.fixture
def demo_collection() -> Collection:
    runtime = Runtime(TelemetryConfig(service_name="fleet-a"))
    demo = DemoRuntime(runtime, seed=11)
    try:
        for _ in range(40):
            demo.step()
        return asyncio.run(runtime.collect())
    finally:
        demo.close()
        runtime.shutdown()


def _inputs(collection: Collection) -> ViewInputs:
    return ViewInputs(collection, None, Thresholds(cpu_count=4), collection.time_unix_nano)


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_counts_health_and_latency_of_every_view_survive_the_tsdb(
    demo_collection: Collection, openmetrics: bool
) -> None:
    rebuilt = agent_collection(_scraped(demo_collection, openmetrics))
    own_names = demo_collection.index.metric_names
    assert rebuilt.collection.index.metric_names <= own_names  # every name restored, nothing invented
    assert rebuilt.missing == ()
    assert rebuilt.collected_at is not None
    assert abs(rebuilt.collected_at - demo_collection.time_unix_nano / 1e9) < 5
    own, fleet = _inputs(demo_collection), _inputs(rebuilt.collection)
    summary, copy = render_view("summary", own).document, render_view("summary", fleet).document
    for key in ("status", "services", "requests", "latency_p95_seconds", "alerts"):
        assert copy[key] == summary[key], key
    operational = render_view("operational", own).document["services"]
    copied = render_view("operational", fleet).document["services"]
    assert set(copied) == set(operational)
    for name, state in operational.items():
        for key in ("status", "requests", "errors", "queue_depth", "circuit_breaker", "category"):
            assert copied[name][key] == state[key], (name, key)
    buses = render_view("detailed", own).document["buses"]
    copied_buses = render_view("detailed", fleet).document["buses"]
    assert set(copied_buses) == set(buses)
    for name, bus in buses.items():
        for key in ("requests", "failures", "processed", "providers_total", "providers_healthy"):
            assert copied_buses[name][key] == bus[key], (name, key)
    performance = render_view("performance", own).document
    copied_performance = render_view("performance", fleet).document
    assert copied_performance["llm"] == performance["llm"]
    assert copied_performance["cache"] == performance["cache"]
    assert copied_performance["latency"] == performance["latency"]


def test_an_agent_without_its_collector_series_says_which_are_missing(demo_collection: Collection) -> None:
    samples = [
        sample
        for sample in _scraped(demo_collection)
        if sample.labels["__name__"] not in ("telemetry_component_info", "telemetry_collection_outcome")
    ]
    rebuilt = agent_collection(samples)
    assert rebuilt.missing[0] == "telemetry_component_info"
    assert rebuilt.collection.components == ()
    summary = render_view("summary", _inputs(rebuilt.collection)).document
    assert summary["status"] == "fail"
    assert summary["reason"] == "no services registered"  # never "healthy" for what is not known


def _reasons(document: dict[str, object]) -> dict[str, object]:
    services = document["services"]
    assert isinstance(services, dict)
    return {
        "runtime": (document["status"], document["reason"]),
        **{name: (state["status"], state["reason"]) for name, state in services.items()},
    }


def test_the_fleet_shows_the_agents_own_statuses_and_reasons() -> None:
    runtime = Runtime(TelemetryConfig(service_name="fleet-a"))
    demo = DemoRuntime(runtime, seed=11, bad_values=["memory"])
    demo.fail("llm")
    try:
        for _ in range(20):
            demo.step()
        collection = asyncio.run(runtime.collect())
    finally:
        demo.close()
        runtime.shutdown()
    own = render_view("health", _inputs(collection)).document
    assert own["services"]["memory"]["status"] == "warn"
    assert own["services"]["llm"]["status"] == "fail"
    rebuilt = agent_collection(_scraped(collection)).collection
    assert _reasons(render_view("health", _inputs(rebuilt)).document) == _reasons(own)


def test_reason_texts_of_an_older_collection_are_not_the_agents_reasons(
    demo_collection: Collection,
) -> None:
    """``last_over_time`` keeps a text that is gone: its value (an older collection's time) says so."""
    samples = _scraped(demo_collection)
    collected = next(
        s.value for s in samples if s.labels["__name__"] == "telemetry_collection_timestamp_seconds"
    )
    older = Sample(
        {
            "__name__": "telemetry_component_reason_timestamp_seconds",
            "service_name": "memory",
            "reason_source": "health",
            "reason_text": "an old reason",
        },
        collected - 30,
    )
    rebuilt = agent_collection([*samples, older]).collection
    memory = rebuilt.component("memory")
    assert memory is not None
    assert memory.health is not None
    assert memory.health.reason != "an old reason"
    assert memory.health.reason == demo_collection.component("memory").health.reason  # type: ignore[union-attr]


def _reason_points(collection: Collection) -> set[tuple[tuple[str, object], ...]]:
    """The attributes of every ``telemetry.component.reason.timestamp`` point of ``collection``."""
    return {
        tuple(sorted(point.attributes.items()))
        for resource in collection.metrics.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "telemetry.component.reason.timestamp"
        for point in metric.data.data_points
    }


def test_reason_texts_of_an_older_collection_are_not_service_metrics(demo_collection: Collection) -> None:
    """The services' metrics carry the reason series the agent's own ``/metrics`` has: the newest
    collection's, with their dotted keys; a text ``last_over_time`` kept from before is not one."""
    samples = _scraped(demo_collection)
    collected = next(
        s.value for s in samples if s.labels["__name__"] == "telemetry_collection_timestamp_seconds"
    )
    older = Sample(
        {
            "__name__": "telemetry_component_reason_timestamp_seconds",
            "service_name": "memory",
            "reason_source": "health",
            "reason_text": "an old reason",
        },
        collected - 30,
    )
    own = _reason_points(demo_collection)
    assert own  # the demo's health reports are there, each with its (possibly empty) text
    rebuilt = agent_collection([*samples, older]).collection
    assert _reason_points(rebuilt) == own


def test_an_agent_without_reason_series_keeps_a_reason_for_warn_and_fail() -> None:
    """An agent from before the reason series: the fleet says where its reason is, never none.
    (A snapshot's dropped values are only in those series: such an agent's are not seen.)"""
    runtime = Runtime(TelemetryConfig(service_name="fleet-a"))
    demo = DemoRuntime(runtime, seed=11)
    demo.fail("llm")
    try:
        for _ in range(20):
            demo.step()
        collection = asyncio.run(runtime.collect())
    finally:
        demo.close()
        runtime.shutdown()
    samples = [
        sample
        for sample in _scraped(collection)
        if sample.labels["__name__"] != "telemetry_component_reason_timestamp_seconds"
    ]
    rebuilt = agent_collection(samples).collection
    own = _reasons(render_view("health", _inputs(collection)).document)
    fleet = _reasons(render_view("health", _inputs(rebuilt)).document)
    assert {name: status for name, (status, _) in fleet.items()} == {
        name: status for name, (status, _) in own.items()
    }
    assert fleet["llm"][0] == "fail"
    for name, (status, reason) in fleet.items():
        if name != "runtime" and status in ("warn", "fail"):
            assert ONLY_ON_AGENT in str(reason), name
        elif name != "runtime":
            assert reason is None, name


def test_the_fleet_shows_an_errors_reason_with_its_addresses_and_ids_masked() -> None:
    """A text that names a memory address or an id is masked in ``/metrics`` (one series, not one per
    collection); the fleet shows the agent's status and that masked text."""

    class Handle:
        pass

    def broken() -> Snapshot:
        raise RuntimeError(f"request 4711042 failed on {Handle()!r}")

    runtime = Runtime(TelemetryConfig(service_name="fleet-a"))
    try:
        depth = gauge("work.queue.depth", "{item}", "Items waiting.")
        instrument_service("store", category="graph", snapshot=broken, metrics=[depth], telemetry=runtime)
        instrument_service("llm", category="runtime", telemetry=runtime).report_health("pass")
        collection = asyncio.run(runtime.collect())
    finally:
        runtime.shutdown()
    own = _reasons(render_view("health", _inputs(collection)).document)
    rebuilt = agent_collection(_scraped(collection)).collection
    fleet = _reasons(render_view("health", _inputs(rebuilt)).document)
    entry = own["store"]
    assert isinstance(entry, tuple)
    status, reason = entry
    assert " object at 0x" in reason
    masked = re.sub(r"[0-9]{5,}", "\u2026", re.sub(r"0x[0-9a-fA-F]+", "0x\u2026", reason))
    assert masked != reason
    assert fleet["store"] == (status, masked)
    assert fleet["runtime"] == (own["runtime"][0], fleet["runtime"][1])  # type: ignore[index]
