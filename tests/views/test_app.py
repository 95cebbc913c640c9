from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterable

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from telemetry_otel import Snapshot, Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.views import create_app


def _populate(telemetry: Telemetry) -> None:
    memory = instrument_service(
        "memory",
        category="graph",
        snapshot=lambda: {"memory.graph.nodes": 42},
        metrics=[gauge("memory.graph.nodes", "{node}", "Nodes in the graph.")],
        telemetry=telemetry,
    )
    memory.record_request(0.004)
    memory.record_request(0.2, True)
    memory.report_health("pass")
    primary = instrument_service("openai_primary", telemetry=telemetry)
    fallback = instrument_service("openai_fallback", telemetry=telemetry)
    Bus("llm", telemetry=telemetry).attach(primary)
    Bus("llm_backup", telemetry=telemetry).attach(fallback)
    primary.record_request(1.5)
    primary.record_request(0.5, True)
    primary.record_request(0.25)
    telemetry.get_meter("my.own").create_counter("my.own.calls", "{call}", "Calls.").add(3)


@pytest.fixture
def client(telemetry: Telemetry) -> TestClient:
    _populate(telemetry)
    return TestClient(create_app(telemetry, agent="demo"))


def test_unified_endpoint_serves_the_collected_otel_data(client: TestClient) -> None:
    response = client.get("/api/demo/v1/telemetry?view=detailed")
    assert response.status_code == 200
    body = response.json()
    assert (body["agent"], body["view"], body["sdk_disabled"], body["cached"]) == (
        "demo",
        "detailed",
        False,
        False,
    )
    assert body["totals"] == {"services": 1, "providers": 2, "categories": 1, "buses": 2}
    memory = body["services"]["memory"]
    assert memory["health"] == {"status": "pass", "reason": None}
    assert memory["snapshot"]["outcome"] == "ok"
    metrics = {metric["name"]: metric for metric in memory["metrics"]}
    assert metrics["service.requests"]["points"] == [{"attributes": {}, "value": 2}]
    assert metrics["service.errors"]["points"][0]["value"] == 1
    assert metrics["memory.graph.nodes"]["points"][0]["value"] == 42
    latency = metrics["service.request.duration"]["points"][0]
    assert (latency["count"], latency["buckets"][-1]["le"]) == (2, "+Inf")
    assert sum(bucket["count"] for bucket in latency["buckets"]) == 2
    llm = body["buses"]["llm"]
    assert {key: llm[key] for key in ("providers_total", "providers_healthy", "providers_unknown")} == {
        "providers_total": 1,
        "providers_healthy": 0,
        "providers_unknown": 1,
    }
    assert (llm["requests"], llm["failures"], llm["processed"]) == (3, 1, 2)
    assert llm["failure_ratio"] == pytest.approx(1 / 3)
    assert llm["busiest_provider"] == "openai_primary"
    assert llm["latency"]["count"] == 3
    assert llm["providers"]["openai_primary"] == {
        "component": "openai_primary",
        "requests": 3,
        "failures": 1,
        "processed": 2,
        "failure_ratio": pytest.approx(1 / 3),
    }
    idle = body["buses"]["llm_backup"]
    assert (idle["requests"], idle["failure_ratio"], idle["busiest_provider"]) == (0, None, None)
    assert {metric["name"] for metric in llm["metrics"]} >= {"bus.requests", "bus.provider.requests"}
    other = [metric["name"] for metric in body["other_metrics"]]
    assert other == [
        "my.own.calls",
        "telemetry.collections",
        "telemetry.collection.duration",
        "telemetry.collection.timestamp",
    ]
    assert "telemetry.collection.up" in {metric["name"] for metric in memory["metrics"]}
    assert body["resource"]["service.name"] == "test-agent"


def test_second_request_is_served_from_cache(client: TestClient) -> None:
    client.get("/api/demo/v1/telemetry")
    again = client.get("/api/demo/v1/telemetry").json()
    assert again["cached"] is True
    assert again["age_seconds"] >= 0


def test_metrics_route_serves_prometheus_text_that_parses_and_passes_promtool(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    requests = families["service_requests"]
    assert requests.type == "counter"
    assert {sample.labels["service_name"]: sample.value for sample in requests.samples} == {
        "memory": 2.0,
        "openai_primary": 3.0,
        "openai_fallback": 0.0,
    }
    bus_requests = {sample.labels["bus_name"]: sample.value for sample in families["bus_requests"].samples}
    assert bus_requests == {"llm": 3.0, "llm_backup": 0.0}
    assert families["service_request_duration_seconds"].type == "histogram"
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=response.text, capture_output=True, text=True, check=False
    )
    assert (check.returncode, check.stdout + check.stderr) == (0, "")


@pytest.mark.parametrize(
    ("query", "status", "fragment", "allowed_key"),
    [
        ("?view=everything", 400, "view='everything' is not one of the allowed values", "allowed"),
        ("?format=xml", 400, "format='xml' is not one of the allowed values", "allowed"),
        ("?category=kitchen", 400, "category='kitchen' is not one of the allowed values", "allowed"),
        ("?service=nobody", 400, "service='nobody' is not one of the allowed values", "allowed"),
        ("?live=yes", 400, "live='yes' is not one of the allowed values", "allowed"),
        ("?colour=red", 400, "unknown query parameter 'colour'", "allowed"),
        ("?view=detailed&view=detailed", 400, "given 2 times", "allowed"),
    ],
)
def test_bad_query_is_a_400_naming_what_is_allowed(
    client: TestClient, query: str, status: int, fragment: str, allowed_key: str
) -> None:
    response = client.get(f"/api/demo/v1/telemetry{query}")
    assert response.status_code == status
    assert fragment in response.json()["error"]
    assert response.json()[allowed_key]


def test_unknown_agent_route_and_method_are_clear_json_errors(client: TestClient) -> None:
    agent = client.get("/api/other/v1/telemetry")
    assert (agent.status_code, agent.json()) == (404, {"error": "unknown agent 'other'", "agents": ["demo"]})
    route = client.get("/api/demo/v2/everything")
    assert route.status_code == 404
    assert "/metrics" in route.json()["routes"]
    method = client.post("/metrics")
    assert (method.status_code, method.json()["allowed"]) == (405, ["GET"])


def test_endpoint_says_when_the_sdk_is_disabled() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="off", disabled=True))
    instrument_service("memory", category="graph", telemetry=telemetry)
    with TestClient(create_app(telemetry, agent="demo")) as client:
        body = client.get("/api/demo/v1/telemetry?view=detailed").json()
        assert body["sdk_disabled"] is True
        assert body["services"]["memory"]["metrics"] == []
        assert client.get("/metrics").text == ""
    telemetry.shutdown()


def test_background_tasks_run_for_the_app_lifetime_and_shutdown_callbacks_run(telemetry: Telemetry) -> None:
    ticks: list[int] = []
    closed: list[bool] = []

    async def run() -> None:
        while True:
            ticks.append(1)
            await asyncio.sleep(0.01)

    def snapshot() -> Snapshot:
        return {}

    instrument_service(
        "svc",
        category="graph",
        snapshot=snapshot,
        metrics=[gauge("svc.depth", "{item}", "D.")],
        telemetry=telemetry,
    )
    app = create_app(telemetry, background=[run], on_shutdown=[lambda: closed.append(True)])
    with TestClient(app) as client:
        assert client.get("/api/demo/v1/telemetry").status_code == 200
    assert ticks
    assert closed == [True]


def test_non_finite_attribute_values_never_break_the_json(telemetry: Telemetry) -> None:
    instrument_service(
        "odd",
        category="graph",
        snapshot=lambda: {"odd.depth": [({"shard": float("nan"), "limits": (1.0, float("inf"))}, 1)]},
        metrics=[gauge("odd.depth", "{item}", "Depth.")],
        telemetry=telemetry,
    )
    telemetry.get_meter("own").create_counter("own.calls").add(1, {"ratio": float("-inf")})
    with TestClient(create_app(telemetry, agent="demo")) as client:
        response = client.get("/api/demo/v1/telemetry?view=detailed")
    assert response.status_code == 200
    body = response.json()
    (point,) = {m["name"]: m for m in body["services"]["odd"]["metrics"]}["odd.depth"]["points"]
    assert point["attributes"] == {"shard": "NaN", "limits": [1.0, "+Inf"]}
    assert body["other_metrics"][0]["points"][0]["attributes"] == {"ratio": "-Inf"}


def test_a_crashing_background_task_is_logged_and_shutdown_still_runs(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    closed: list[str] = []

    async def crashes() -> None:
        raise RuntimeError("simulation fell over")

    def failing_close() -> None:
        raise OSError("already closed")

    app = create_app(
        telemetry, background=[crashes], on_shutdown=[failing_close, lambda: closed.append("telemetry")]
    )
    with TestClient(app) as client:
        assert client.get("/api/demo/v1/telemetry").status_code == 200
    assert closed == ["telemetry"]
    messages = [record.getMessage() for record in caplog.records]
    assert "background task stopped: RuntimeError('simulation fell over')" in messages
    assert any(message.startswith("shutdown callback") for message in messages)


def test_a_failed_collection_is_a_503_naming_the_failure_never_a_partial_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The SDK read outlasts ``collection_timeout_millis`` (an observable gauge callback, which runs
    inside the read, blocks): every route serving metric data answers 503 JSON naming the failure,
    within the timeout, and answers again once a collection succeeds."""
    released = threading.Event()

    def blocks(options: CallbackOptions) -> Iterable[Observation]:
        released.wait(5)
        return [Observation(2.5)]

    telemetry = Telemetry(TelemetryConfig(service_name="slow-read", collection_timeout_millis=200))
    telemetry.get_meter("slow.reader").create_observable_gauge("slow.gauge", [blocks])
    instrument_service("memory", category="graph", telemetry=telemetry).report_health("pass")
    client = TestClient(create_app(telemetry, agent="demo"))  # no lifespan: no warm-up collection
    base = "/api/demo/v1/telemetry"
    try:
        for path in (base, f"{base}?view=health&format=prometheus", f"{base}/health", "/metrics"):
            started = time.monotonic()
            response = client.get(path)
            assert time.monotonic() - started < 2.0, path  # the 200 ms bound, not the 5 s read
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/json"
            assert response.json()["error"].startswith("collection failed: TimeoutError"), response.json()
        ready = client.get(f"{base}/health/ready")
        assert (ready.status_code, ready.json()["output"]) == (503, "no collection has completed yet")
        assert client.get(f"{base}/health/live").status_code == 200
        assert any(record.getMessage().startswith("collection failed") for record in caplog.records)
        released.set()
        deadline = time.monotonic() + 10
        while (answer := client.get(base, params={"view": "detailed"})).status_code == 503:
            assert time.monotonic() < deadline, answer.text  # reads queued behind the blocked one end
        assert answer.status_code == 200
        [gauge] = [metric for metric in answer.json()["other_metrics"] if metric["name"] == "slow.gauge"]
        assert gauge["points"][0]["value"] == 2.5
        assert client.get(f"{base}/health/ready").status_code == 200
    finally:
        released.set()
        client.close()
        telemetry.shutdown()
