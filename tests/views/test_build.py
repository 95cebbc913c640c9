"""The model's rules on real collections: statuses, roll-ups, error ratio, rates and the health score."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import pytest

from telemetry_otel import Collection, HealthStatus, Snapshot, SnapshotFunction, Telemetry
from telemetry_otel.instrumentation import Bus, gauge, instrument_service
from telemetry_otel.views._build import build_model, roll_up
from telemetry_otel.views._render import RenderedView, ViewInputs
from telemetry_otel.views._thresholds import Thresholds

Render = Callable[..., RenderedView]
Collect = Callable[[Telemetry], Collection]
MakeInputs = Callable[..., ViewInputs]
SECOND = 10**9
DEPTH = [gauge("service.queue.depth", "{item}", "Waiting.")]


def _breaker(state: str) -> SnapshotFunction:
    series = [({"circuit_breaker.state": s}, int(s == state)) for s in ("closed", "open", "half_open")]
    return lambda: {"service.circuit_breaker.state": series}


def test_zero_services_is_fail_and_not_healthy(telemetry: Telemetry, render: Render) -> None:
    summary = render("summary").document
    assert (summary["status"], summary["reason"]) == ("fail", "no services registered")
    assert summary["services"] == {"total": 0, "healthy": 0, "degraded": 0, "down": 0, "unknown": 0}
    assert summary["health_score"]["score"] is None
    assert summary["health_score"]["missing_inputs"] == [
        "availability",
        "error_ratio",
        "latency",
        "resource_pressure",
        "circuit_breakers",
    ]
    assert summary["requests"] == {
        "total": None,
        "errors": None,
        "error_ratio": None,
        "rate_per_second": None,
    }
    health = render("health").document
    assert (health["status"], health["categories"], health["services"]) == ("fail", {}, {})


def test_bus_providers_alone_are_not_services(telemetry: Telemetry, render: Render) -> None:
    provider = instrument_service("openai", telemetry=telemetry)  # no category: a bus-only provider
    provider.report_health("pass")
    Bus("llm", telemetry=telemetry).attach(provider)
    health = render("health").document
    assert (health["status"], health["reason"], health["counts"]["total"]) == (
        "fail",
        "no services registered",
        0,
    )
    assert health["buses"]["llm"]["status"] == "pass"
    assert health["buses"]["llm"]["providers"] == {
        "openai": {"component": "openai", "status": "pass", "reason": None}
    }


def test_a_failing_snapshot_is_unknown_with_its_error_and_last_success(
    telemetry: Telemetry, render: Render, collect: Collect
) -> None:
    calls = {"count": 0}

    def flaky() -> Snapshot:
        calls["count"] += 1
        if calls["count"] > 1:
            raise RuntimeError("boom")
        return {"service.queue.depth": 7}

    def broken() -> Snapshot:
        raise ValueError("never worked")

    for name, snapshot in (
        ("flaky", flaky),
        ("broken", broken),
        ("steady", lambda: {"service.queue.depth": 2}),
    ):
        service = instrument_service(
            name, category="runtime", snapshot=snapshot, metrics=DEPTH, telemetry=telemetry
        )
        service.record_request(0.01)
        service.report_health("pass")
    first = collect(telemetry)
    last_success = first.outcomes["flaky"].last_success_unix_nano
    assert last_success is not None
    second = collect(telemetry)
    now = last_success + 42 * SECOND
    health = render("health", second, now=now).document
    assert health["services"]["flaky"] == {
        "category": "runtime",
        "status": "unknown",
        "reason": "snapshot error: RuntimeError: boom; last success 42 s ago",
        "reported_status": "pass",
        "reported_reason": None,
        "snapshot_outcome": "error",
        "snapshot_error": "RuntimeError: boom",
        "last_success_age_seconds": 42.0,
    }
    assert health["services"]["broken"]["status"] == "unknown"
    assert (
        health["services"]["broken"]["reason"]
        == "snapshot error: ValueError: never worked; last success never"
    )
    assert health["services"]["broken"]["last_success_age_seconds"] is None
    assert health["services"]["steady"]["status"] == "pass"
    assert (health["status"], health["counts"]["unknown"], health["counts"]["healthy"]) == ("warn", 2, 1)
    # The other services' numbers are intact; the failed one keeps its last good value, marked by its age.
    operational = render("operational", second, now=now).document["services"]
    assert operational["steady"]["queue_depth"] == 2
    assert operational["flaky"]["queue_depth"] == 7
    assert operational["broken"]["queue_depth"] is None  # never known: null, not 0
    assert operational["flaky"]["requests"] == 1
    reliability = render("reliability", second, now=now).document
    assert reliability["collection_failures"] == [
        {
            "component": "flaky",
            "outcome": "error",
            "error": "RuntimeError: boom",
            "last_success_age_seconds": 42.0,
        },
        {
            "component": "broken",
            "outcome": "error",
            "error": "ValueError: never worked",
            "last_success_age_seconds": None,
        },
    ]
    assert reliability["collection"]["snapshots"] == {"ok": 1, "error": 2, "timeout": 0, "none": 0}


def test_a_timed_out_snapshot_is_unknown(
    make_runtime: Callable[..., Telemetry], make_inputs: MakeInputs
) -> None:
    runtime = make_runtime(service_timeout_millis=50)

    async def slow() -> Snapshot:
        await asyncio.sleep(5)
        return {}

    instrument_service(
        "slow",
        category="runtime",
        snapshot=slow,
        metrics=[gauge("slow.depth", "{item}", "D.")],
        telemetry=runtime,
    ).report_health("pass")
    instrument_service("fast", category="runtime", telemetry=runtime).report_health("pass")
    model = build_model(make_inputs(runtime=runtime))
    slow_state, fast_state = model.services
    assert (slow_state.status, slow_state.outcome) == ("unknown", "timeout")
    assert slow_state.reason == "snapshot timeout: snapshot timed out after 50 ms; last success never"
    assert fast_state.status == "pass"


def test_no_reported_health_is_unknown(telemetry: Telemetry, render: Render) -> None:
    instrument_service("silent", category="runtime", telemetry=telemetry)
    services = render("health").document["services"]
    assert (services["silent"]["status"], services["silent"]["reason"]) == ("unknown", "no health reported")


def test_error_ratio_is_total_errors_over_total_requests(telemetry: Telemetry, render: Render) -> None:
    traffic = {"front": (100, 0), "search": (50, 10), "auth": (10, 0), "idle": (0, 0)}
    for name, (requests, errors) in traffic.items():
        service = instrument_service(name, category="runtime", telemetry=telemetry)
        for index in range(requests):
            service.record_request(0.01, error=index < errors)
        service.report_health("pass")
    summary = render("summary").document
    assert summary["requests"]["total"] == 160
    assert summary["requests"]["errors"] == 10
    assert summary["requests"]["error_ratio"] == pytest.approx(10 / 160)
    # The replaced system averaged the non-zero per-service rates: 10/50 = 0.2, three times too high.
    per_service = [errors / requests for requests, errors in traffic.values() if requests and errors]
    assert sum(per_service) / len(per_service) == pytest.approx(0.2)
    assert summary["requests"]["error_ratio"] != pytest.approx(0.2)
    idle = render("operational").document["services"]["idle"]
    assert (idle["requests"], idle["errors"], idle["error_ratio"]) == (0, 0, None)


def test_request_rate_needs_a_previous_collection(
    telemetry: Telemetry, render: Render, collect: Collect, make_runtime: Callable[..., Telemetry]
) -> None:
    api = instrument_service("api", category="runtime", telemetry=telemetry)
    for _ in range(10):
        api.record_request(0.01)
    before = collect(telemetry)
    for _ in range(20):
        api.record_request(0.01)
    after = collect(telemetry)
    previous = dataclasses.replace(before, time_unix_nano=after.time_unix_nano - 4 * SECOND)
    assert render("summary", after).document["requests"]["rate_per_second"] is None
    assert render("summary", after, previous=previous).document["requests"]["rate_per_second"] == 5.0
    operational = render("operational", after, previous=previous).document
    assert operational["services"]["api"]["request_rate_per_second"] == 5.0
    same_time = dataclasses.replace(before, time_unix_nano=after.time_unix_nano)
    assert render("summary", after, previous=same_time).document["requests"]["rate_per_second"] is None
    # A restart: the previous collection (another process) had counted more than the current one.
    old = make_runtime()
    old_api = instrument_service("api", category="runtime", telemetry=old)
    for _ in range(100):
        old_api.record_request(0.01)
    restarted = dataclasses.replace(collect(old), time_unix_nano=after.time_unix_nano - 10 * SECOND)
    assert render("summary", after, previous=restarted).document["requests"]["rate_per_second"] == 3.0


def test_overall_status_rules(telemetry: Telemetry, render: Render) -> None:
    first = instrument_service("a", category="x", telemetry=telemetry)
    second = instrument_service("b", category="x", telemetry=telemetry)
    first.report_health("pass")
    second.report_health("pass")
    assert (render("summary").document["status"], render("summary").document["reason"]) == ("pass", None)
    second.report_health("warn", "slow disk")
    assert render("summary").document["status"] == "warn"
    third = instrument_service("c", category="y", telemetry=telemetry)
    document = render("summary").document
    assert (document["status"], document["reason"]) == ("warn", "1 service warn: b; 1 service unknown: c")
    third.report_health("fail")
    document = render("summary").document
    assert document["status"] == "fail"
    assert document["reason"] == "1 service fail: c; 1 service warn: b; 1 critical alert"


def test_category_roll_up_keeps_unknown_distinct(telemetry: Telemetry, render: Render) -> None:
    layout: dict[str, list[tuple[str, HealthStatus | None]]] = {
        "ok": [("ok1", "pass"), ("ok2", "pass")],
        "partly_known": [("p1", "pass"), ("p2", None)],
        "dark": [("d1", None), ("d2", None)],
        "broken": [("b1", "fail"), ("b2", "pass"), ("b3", None)],
    }
    for category, members in layout.items():
        for name, status in members:
            service = instrument_service(name, category=category, telemetry=telemetry)
            if status is not None:
                service.report_health(status)
    categories = render("health").document["categories"]
    assert {name: section["status"] for name, section in categories.items()} == {
        "ok": "pass",
        "partly_known": "warn",
        "dark": "unknown",
        "broken": "fail",
    }
    assert categories["dark"]["counts"] == {"total": 2, "healthy": 0, "degraded": 0, "down": 0, "unknown": 2}
    assert categories["partly_known"]["reason"] == "p2: unknown"
    assert roll_up([]) == "unknown"
    assert roll_up(["pass", "unknown", "warn"]) == "warn"


def test_health_score_formula_with_missing_inputs(telemetry: Telemetry, render: Render) -> None:
    # Three services: two pass, one fail. 200 requests, 10 errors (5 %). All latencies 2 s.
    cases: tuple[tuple[str, HealthStatus, int], ...] = (("a", "pass", 10), ("b", "pass", 0), ("c", "fail", 0))
    for name, status, errors in cases:
        service = instrument_service(name, category="runtime", telemetry=telemetry)
        for index in range(100 if name != "c" else 0):
            service.record_request(2.0, error=index < errors)
        service.report_health(status)
    score = render("summary").document["health_score"]
    # p95 of 200 observations in (1, 2.5]: rank 190 -> 1 + 1.5 * 190/200 = 2.425 s; objective 1 s.
    p95 = 1 + 1.5 * 190 / 200
    assert score["inputs"] == {
        "availability": {"value": pytest.approx(2 / 3), "score": pytest.approx(2 / 3), "weight": 40},
        "error_ratio": {"value": 0.05, "score": pytest.approx(0.5), "weight": 20},
        "latency": {"value": pytest.approx(p95), "score": pytest.approx(1 / p95), "weight": 15},
        "resource_pressure": {"value": None, "score": None, "weight": 15},
        "circuit_breakers": {"value": None, "score": None, "weight": 10},
    }
    assert score["missing_inputs"] == ["resource_pressure", "circuit_breakers"]
    expected = round(100 * (40 * 2 / 3 + 20 * 0.5 + 15 / p95) / (40 + 20 + 15), 1)
    assert score["score"] == expected == 57.1


def test_resource_pressure_and_breakers_in_the_score(telemetry: Telemetry, render: Render) -> None:
    breaker = [gauge("service.circuit_breaker.state", "{state}", "Breaker.")]
    resources = [gauge("system.memory.utilization", "1", "Host memory.")]
    monitor = instrument_service(
        "monitor",
        category="infra",
        snapshot=lambda: {"system.memory.utilization": 0.825},
        metrics=resources,
        telemetry=telemetry,
    )
    monitor.report_health("pass")
    for name, state in (("open_one", "open"), ("closed_one", "closed")):
        service = instrument_service(
            name,
            category="infra",
            snapshot=_breaker(state),
            metrics=breaker,
            telemetry=telemetry,
        )
        service.report_health("pass")
    inputs = render("summary").document["health_score"]["inputs"]
    # Memory 82.5 %: (0.825 - 0.75) / (1 - 0.75) = 0.3 of the way to full pressure.
    assert inputs["resource_pressure"] == {"value": 0.825, "score": pytest.approx(0.7), "weight": 15}
    assert inputs["circuit_breakers"] == {"value": 0.5, "score": 0.5, "weight": 10}
    # The open breaker is a critical alert: open_one is fail, so availability is 2/3.
    assert inputs["availability"]["value"] == pytest.approx(2 / 3)


def test_bus_status_from_its_providers(telemetry: Telemetry, render: Render) -> None:
    up = instrument_service("up", telemetry=telemetry)
    down = instrument_service("down", telemetry=telemetry)
    silent = instrument_service("silent", telemetry=telemetry)
    up.report_health("pass")
    down.report_health("fail", "quota exhausted")
    for name, members in (("redundant", (up, down)), ("dead", (down,)), ("dark", (silent,)), ("fine", (up,))):
        bus = Bus(name, telemetry=telemetry)
        for member in members:
            bus.attach(member)
    Bus("empty", telemetry=telemetry)
    buses = render("health").document["buses"]
    assert {name: (bus["status"], bus["reason"]) for name, bus in buses.items()} == {
        "redundant": ("warn", "down: fail"),
        "dead": ("fail", "every provider with a known status is fail"),
        "dark": ("unknown", "no provider has a known status"),
        "fine": ("pass", None),
        "empty": ("fail", "no providers attached"),
    }


def test_unknown_values_are_null_when_the_sdk_is_disabled(
    make_runtime: Callable[..., Telemetry], make_inputs: MakeInputs
) -> None:
    runtime = make_runtime(disabled=True)
    service = instrument_service("api", category="runtime", telemetry=runtime)
    service.record_request(0.5)
    service.report_health("pass")
    model = build_model(make_inputs(runtime=runtime))
    assert model.inputs.collection.sdk_disabled
    (state,) = model.services
    assert (state.requests, state.errors, state.uptime_seconds, state.latency) == (None, None, None, None)
    assert (model.requests, model.error_ratio, model.latency) == (None, None, None)
    assert [item.name for item in model.score_inputs if item.score is None] == [
        "error_ratio",
        "latency",
        "resource_pressure",
        "circuit_breakers",
    ]
    assert model.score == 100.0  # availability alone: the one pass service


def test_thresholds_feed_the_score(telemetry: Telemetry, make_inputs: MakeInputs) -> None:
    service = instrument_service("api", category="runtime", telemetry=telemetry)
    for _ in range(10):
        service.record_request(2.0)
    service.report_health("pass")
    strict = build_model(make_inputs(thresholds=Thresholds(cpu_count=1, latency_objective_seconds=1.0)))
    relaxed = build_model(make_inputs(thresholds=Thresholds(cpu_count=1, latency_objective_seconds=5.0)))
    strict_latency = next(item for item in strict.score_inputs if item.name == "latency")
    relaxed_latency = next(item for item in relaxed.score_inputs if item.name == "latency")
    assert strict_latency.score == pytest.approx(1 / (1 + 1.5 * 9.5 / 10))
    assert relaxed_latency.score == 1.0


def test_process_cpu_time_feeds_resource_pressure(
    make_runtime: Callable[..., Telemetry], collect: Collect, make_inputs: MakeInputs
) -> None:
    runtime = make_runtime(process_metrics=True, live_min_interval_millis=0)
    service = instrument_service("worker", category="runtime", telemetry=runtime)
    service.report_health("pass")
    first = collect(runtime)
    deadline = time.process_time() + 0.4
    while time.process_time() < deadline:  # burn CPU between the two collections
        pass
    second = collect(runtime)
    model = build_model(
        make_inputs(second, runtime=runtime, previous=first, thresholds=Thresholds(cpu_count=1))
    )
    interval = (second.time_unix_nano - first.time_unix_nano) / 1e9
    assert model.cpu_utilization is not None
    # At least the CPU burnt over the interval, at most the whole interval on one CPU (plus a tick).
    assert 0.4 / interval - 0.02 <= model.cpu_utilization <= 1.02
    assert {item.name: item.value for item in model.score_inputs}[
        "resource_pressure"
    ] == model.cpu_utilization
    # Without a previous collection there is no interval: unknown, never 0.
    alone = build_model(make_inputs(second, runtime=runtime, thresholds=Thresholds(cpu_count=1)))
    assert alone.cpu_utilization is None
