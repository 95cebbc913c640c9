from __future__ import annotations

import asyncio
import threading

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, MetricsData, NumberDataPoint, Sum

from telemetry_otel import Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import (
    LATENCY_BUCKETS,
    SCOPE_NAME,
    counter,
    gauge,
    instrument_service,
    updown_counter,
)


def _metrics(data: MetricsData) -> dict[str, Metric]:
    return {
        metric.name: metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == SCOPE_NAME
        for metric in scope_metrics.metrics
    }


def _by_service(metric: Metric) -> dict[object, list[object]]:
    grouped: dict[object, list[object]] = {}
    for point in metric.data.data_points:
        grouped.setdefault((point.attributes or {})["service.name"], []).append(point)
    return grouped


def test_standard_vitals_have_dotted_names_units_descriptions_and_identity_attributes(
    telemetry: Telemetry,
) -> None:
    service = instrument_service("memory", category="graph", telemetry=telemetry)
    service.record_request(0.002)
    service.record_request(0.3, True)
    service.report_health("warn", "slow disk")
    metrics = _metrics(telemetry.read_metrics())
    assert {name: (m.unit, bool(m.description)) for name, m in metrics.items()} == {
        "service.uptime": ("s", True),
        "service.health": ("{status}", True),
        "service.requests": ("{request}", True),
        "service.errors": ("{error}", True),
        "service.request.duration": ("s", True),
    }
    identity = {"service.name": "memory", "service.category": "graph"}
    requests = metrics["service.requests"].data.data_points[0]
    errors = metrics["service.errors"].data.data_points[0]
    assert isinstance(requests, NumberDataPoint)
    assert isinstance(errors, NumberDataPoint)
    assert (requests.value, errors.value, dict(requests.attributes or {})) == (2, 1, identity)
    latency = metrics["service.request.duration"].data.data_points[0]
    assert isinstance(latency, HistogramDataPoint)
    assert (latency.count, latency.sum, latency.min, latency.max) == (2, 0.302, 0.002, 0.3)
    assert tuple(latency.explicit_bounds) == LATENCY_BUCKETS
    health = {
        (point.attributes or {})["health.status"]: point.value
        for point in metrics["service.health"].data.data_points
        if isinstance(point, NumberDataPoint)
    }
    assert health == {"pass": 0, "warn": 1, "fail": 0}


def test_latency_buckets_span_sub_millisecond_to_tens_of_seconds() -> None:
    assert LATENCY_BUCKETS[0] <= 0.0001
    assert LATENCY_BUCKETS[-1] >= 30
    assert list(LATENCY_BUCKETS) == sorted(set(LATENCY_BUCKETS))


def test_unreported_health_is_absent_not_healthy(telemetry: Telemetry) -> None:
    instrument_service("quiet", category="graph", telemetry=telemetry)
    metrics = _metrics(telemetry.read_metrics())
    assert "service.health" not in metrics or not metrics["service.health"].data.data_points
    assert "service.request.duration" not in metrics  # no request yet: no latency distribution


def test_request_context_manager_counts_exceptions_as_errors(telemetry: Telemetry) -> None:
    service = instrument_service("llm", category="runtime", telemetry=telemetry)
    with service.request():
        pass
    with pytest.raises(KeyError), service.request():
        raise KeyError("boom")
    metrics = _metrics(telemetry.read_metrics())
    assert [
        p.value for p in metrics["service.requests"].data.data_points if isinstance(p, NumberDataPoint)
    ] == [2]
    assert [
        p.value for p in metrics["service.errors"].data.data_points if isinstance(p, NumberDataPoint)
    ] == [1]


def test_snapshot_metrics_sync_and_async_with_multiple_series(telemetry: Telemetry) -> None:
    async def llm_snapshot() -> Snapshot:
        return {
            "llm.tokens.input": 1200,
            "breaker.state": [({"state": "closed"}, 1), ({"state": "open"}, 0)],
        }

    instrument_service(
        "llm",
        category="runtime",
        snapshot=llm_snapshot,
        metrics=[
            counter("llm.tokens.input", "{token}", "Input tokens."),
            gauge("breaker.state", "{state}", "Breaker state."),
        ],
        telemetry=telemetry,
    )
    instrument_service(
        "memory",
        category="graph",
        snapshot=lambda: {"memory.items": 5},
        metrics=[updown_counter("memory.items", "{item}", "Items held.")],
        telemetry=telemetry,
    )
    collection = asyncio.run(telemetry.collect())
    metrics = _metrics(collection.metrics)
    tokens = metrics["llm.tokens.input"]
    assert isinstance(tokens.data, Sum)
    assert tokens.data.is_monotonic
    assert [p.value for p in tokens.data.data_points if isinstance(p, NumberDataPoint)] == [1200]
    breaker = {
        (p.attributes or {})["state"]: p.value
        for p in metrics["breaker.state"].data.data_points
        if isinstance(p, NumberDataPoint)
    }
    assert breaker == {"closed": 1, "open": 0}
    assert list(_by_service(metrics["memory.items"])) == ["memory"]


def test_conflicting_declarations_and_bad_names_are_rejected(telemetry: Telemetry) -> None:
    instrument_service(
        "a",
        category="graph",
        snapshot=lambda: {},
        metrics=[gauge("x.depth", "{item}", "D.")],
        telemetry=telemetry,
    )
    with pytest.raises(ValueError, match="already declared as a gauge"):
        instrument_service(
            "b",
            category="graph",
            snapshot=lambda: {},
            metrics=[counter("x.depth", "{item}", "D.")],
            telemetry=telemetry,
        )
    assert telemetry.components.get("b") is None  # a rejected service leaves nothing registered
    with pytest.raises(ValueError, match="not a dotted OTel name"):
        gauge("Memory Nodes", "{node}", "Nodes.")
    with pytest.raises(ValueError, match="already registered"):
        instrument_service("a", category="graph", telemetry=telemetry)
    with pytest.raises(ValueError, match="no snapshot function"):
        instrument_service(
            "c", category="graph", metrics=[gauge("y.depth", "{item}", "D.")], telemetry=telemetry
        )


def test_closing_a_service_stops_its_series(telemetry: Telemetry) -> None:
    keep = instrument_service("keep", category="graph", telemetry=telemetry)
    gone = instrument_service("gone", category="graph", telemetry=telemetry)
    keep.record_request(0.01)
    gone.record_request(0.01)
    gone.close()
    metrics = _metrics(telemetry.read_metrics())
    assert list(_by_service(metrics["service.requests"])) == ["keep"]
    assert list(_by_service(metrics["service.uptime"])) == ["keep"]


def test_disabled_sdk_turns_vitals_into_no_ops() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="off", disabled=True))
    service = instrument_service("svc", category="graph", telemetry=telemetry)
    service.record_request(0.1, True)
    service.report_health("pass")
    assert telemetry.read_metrics().resource_metrics == []
    telemetry.shutdown()


def test_two_threads_recording_concurrently_lose_no_update(telemetry: Telemetry) -> None:
    service = instrument_service("hot", category="runtime", telemetry=telemetry)
    per_thread = 50_000
    start = threading.Barrier(2)

    def work() -> None:
        start.wait()
        for index in range(per_thread):
            service.record_request(0.001, index % 10 == 0)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics = _metrics(telemetry.read_metrics())
    requests = metrics["service.requests"].data.data_points[0]
    errors = metrics["service.errors"].data.data_points[0]
    latency = metrics["service.request.duration"].data.data_points[0]
    assert isinstance(requests, NumberDataPoint)
    assert isinstance(errors, NumberDataPoint)
    assert isinstance(latency, HistogramDataPoint)
    assert (requests.value, errors.value, latency.count, sum(latency.bucket_counts)) == (
        2 * per_thread,
        2 * per_thread // 10,
        2 * per_thread,
        2 * per_thread,
    )


def test_close_unregisters_the_name_even_with_the_sdk_disabled() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="off", disabled=True))
    service = instrument_service("svc", category="graph", telemetry=telemetry)
    service.close()
    service.close()
    assert telemetry.components.get("svc") is None
    instrument_service("svc", category="graph", telemetry=telemetry)  # the name is free again
    telemetry.shutdown()


def test_a_cancelled_request_is_not_recorded(telemetry: Telemetry) -> None:
    service = instrument_service("svc", category="runtime", telemetry=telemetry)

    async def cancelled() -> None:
        with service.request():
            await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    metrics = _metrics(telemetry.read_metrics())
    assert [
        p.value for p in metrics["service.requests"].data.data_points if isinstance(p, NumberDataPoint)
    ] == [0]
