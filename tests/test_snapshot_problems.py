"""Nothing a snapshot returns is dropped silently: every dropped value is a problem of the outcome,
counted, logged (rate-limited) and makes the service ``warn``; a declared metric that is not
returned is unknown (absent), never 0; a forgotten declaration is loud."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.sdk.metrics.export import MetricsData, NumberDataPoint

from telemetry_otel import ComponentOutcome, Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import counter, gauge, instrument_service
from telemetry_otel.views import create_app

BASE = "/api/demo/v1/telemetry"
TOKENS = counter("llm.tokens.input", "{token}", "Prompt tokens sent since start.")
DEPTH = gauge("service.queue.depth", "{item}", "Requests waiting.")


def _values(data: MetricsData, name: str) -> list[float]:
    return [
        point.value
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint) and (point.attributes or {}).get("service.name") == "llm"
    ]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


def _llm(telemetry: Telemetry, snapshot: Callable[[], Snapshot]) -> None:
    instrument_service(
        "llm", category="runtime", snapshot=snapshot, metrics=[TOKENS, DEPTH], telemetry=telemetry
    ).report_health("pass")


def test_a_negative_counter_and_an_undeclared_name_are_problems_logged_and_make_the_service_warn(
    telemetry: Telemetry, live_server: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    _llm(telemetry, lambda: {"llm.tokens.input": -5, "service.queue.depth": 2, "llm.tokens.output": 7})
    caplog.set_level(logging.WARNING)
    server = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=0))
    base = server.url
    health = httpx.get(f"{base}{BASE}", params={"view": "health"}, timeout=10).json()["services"]["llm"]
    problems = [
        "llm.tokens.input: a negative value is not a counter value",
        "llm.tokens.output: returned but not declared in the service's metrics",
    ]
    assert health["status"] == "warn"
    assert health["reason"] == "; ".join(f"snapshot problem: {problem}" for problem in problems)
    operational = httpx.get(f"{base}{BASE}", params={"view": "operational"}, timeout=10).json()
    assert operational["services"]["llm"]["status"] == "warn"
    assert operational["services"]["llm"]["queue_depth"] == 2  # the usable values are kept
    checks = httpx.get(f"{base}{BASE}/health", timeout=10).json()["checks"]["llm:health"]
    assert checks[0]["status"] == "warn"
    page = httpx.get(f"{base}{BASE}", params={"format": "html", "view": "health"}, timeout=10).text
    assert "snapshot problem: llm.tokens.input: a negative value is not a counter value" in page
    reliability = httpx.get(f"{base}{BASE}", params={"view": "reliability"}, timeout=10).json()
    assert reliability["services"]["llm"]["problems"] == problems
    scrape = httpx.get(f"{base}/metrics", timeout=10).text
    assert 'telemetry_collection_problems_total{agent="test-agent",service_name="llm",' in scrape
    assert "llm_tokens_input_total" not in scrape  # dropped, never published as 0 or -5
    assert "llm_tokens_output" not in scrape
    logged = _warnings(caplog)
    for problem in problems:
        assert f"service 'llm': snapshot value dropped: {problem}" in logged


def test_problems_are_counted_and_logged_at_most_once_a_minute(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    _llm(telemetry, lambda: {"llm.tokens.input": -1})
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        collection = asyncio.run(telemetry.collect())
    assert collection.outcomes["llm"].problems == (
        "llm.tokens.input: a negative value is not a counter value",
    )
    assert _values(collection.metrics, "telemetry.collection.problems") == [3]
    assert _warnings(caplog) == [
        "service 'llm': snapshot value dropped: llm.tokens.input: a negative value is not a counter value"
    ]


@pytest.fixture
def runtime() -> Iterator[Telemetry]:
    """A runtime whose snapshots time out after 50 ms."""
    telemetry = Telemetry(TelemetryConfig(service_name="t", service_timeout_millis=50))
    yield telemetry
    telemetry.shutdown()


def test_snapshot_timeouts_and_errors_are_logged(
    runtime: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:

    async def slow() -> Snapshot:
        await asyncio.sleep(5)
        return {}

    def broken() -> Snapshot:
        raise ConnectionError("graph store unreachable")

    instrument_service("slow", category="graph", snapshot=slow, metrics=[DEPTH], telemetry=runtime)
    instrument_service("broken", category="graph", snapshot=broken, metrics=[DEPTH], telemetry=runtime)
    caplog.set_level(logging.WARNING)
    asyncio.run(runtime.collect())
    asyncio.run(runtime.collect())
    suffix = "; its snapshot values are unknown in this collection"
    assert sorted(_warnings(caplog)) == [
        f"service 'broken': snapshot error: ConnectionError: graph store unreachable{suffix}",
        f"service 'slow': snapshot timeout: snapshot timed out after 50 ms{suffix}",
    ]


def test_a_declared_metric_not_returned_is_unknown_never_zero(
    telemetry: Telemetry, live_server: Callable[..., Any]
) -> None:
    _llm(telemetry, lambda: {"service.queue.depth": 4, "llm.tokens.input": None})
    server = live_server(create_app(telemetry, agent="demo", cache_ttl_seconds=0))
    base = server.url
    detailed = httpx.get(f"{base}{BASE}", params={"view": "detailed"}, timeout=10).json()
    snapshot = detailed["services"]["llm"]["snapshot"]
    assert (snapshot["problems"], snapshot["unknown"]) == ([], ["llm.tokens.input"])
    names = {metric["name"] for metric in detailed["services"]["llm"]["metrics"]}
    assert "llm.tokens.input" not in names
    performance = httpx.get(f"{base}{BASE}", params={"view": "performance"}, timeout=10).json()
    assert performance["services"]["llm"]["tokens_input"] is None  # unknown, not 0
    health = httpx.get(f"{base}{BASE}", params={"view": "health"}, timeout=10).json()["services"]["llm"]
    assert (health["status"], health["reason"]) == ("pass", None)  # not returning a value is allowed


def test_the_outcome_names_unknown_metrics(telemetry: Telemetry) -> None:
    _llm(telemetry, lambda: {"service.queue.depth": float("nan")})
    outcome = asyncio.run(telemetry.collect()).outcomes["llm"]
    assert outcome == ComponentOutcome(
        "llm",
        "ok",
        None,
        outcome.duration_seconds,
        outcome.last_success_unix_nano,
        ("service.queue.depth: nan is not a finite number",),
        ("llm.tokens.input", "service.queue.depth"),
    )


def test_a_negative_series_of_a_counter_is_dropped_and_the_others_kept(telemetry: Telemetry) -> None:
    def snapshot() -> Snapshot:
        return {"llm.tokens.input": [({"model": "a"}, 10), ({"model": "b"}, -2)]}

    _llm(telemetry, snapshot)
    collection = asyncio.run(telemetry.collect())
    assert collection.outcomes["llm"].problems == (
        "llm.tokens.input: 1 series have a negative value, not a counter value",
    )
    assert _values(collection.metrics, "llm.tokens.input") == [10]


def test_a_snapshot_without_declared_metrics_is_refused_at_registration(telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="has a snapshot function but declares no metrics"):
        instrument_service(
            "llm", category="runtime", snapshot=lambda: {"llm.tokens.input": 1}, telemetry=telemetry
        )
    with pytest.raises(ValueError, match=r"declares the snapshot metric 'llm\.tokens\.input' twice"):
        instrument_service(
            "llm", category="runtime", snapshot=dict, metrics=[TOKENS, TOKENS], telemetry=telemetry
        )
    assert len(telemetry.components) == 0  # nothing half-registered
