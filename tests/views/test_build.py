"""The model's rules on collections written as plain data: statuses, roll-ups, error ratio, rates and
the health score."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from plain_data import SECOND, PlainCollection, plain_inputs

from telemetry_otel import Collection, HealthStatus, Telemetry
from telemetry_otel.instrumentation import instrument_service
from telemetry_otel.views._build import build_model, roll_up
from telemetry_otel.views._render import RenderedView, ViewInputs
from telemetry_otel.views._thresholds import Thresholds

Render = Callable[..., RenderedView]
Collect = Callable[[Telemetry], Collection]
MakeInputs = Callable[..., ViewInputs]
T0 = 1_800_000_000 * SECOND


def _breaker(state: str) -> list[tuple[dict[str, str], int]]:
    return [({"circuit_breaker.state": s}, int(s == state)) for s in ("closed", "open", "half_open")]


def _served(
    collection: PlainCollection,
    name: str,
    requests: int,
    errors: int = 0,
    seconds: float = 0.01,
    *,
    category: str = "runtime",
    health: HealthStatus | None = "pass",
) -> PlainCollection:
    """``name`` after ``requests`` requests of ``seconds`` each, ``errors`` of them failed."""
    return collection.service(
        name,
        category,
        health=health,
        requests=requests,
        errors=errors,
        durations=[seconds] * requests,
        outcome="none",
    )


def test_zero_services_is_fail_and_not_healthy(plain_render: Render) -> None:
    empty = PlainCollection().build()
    summary = plain_render("summary", empty).document
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
    health = plain_render("health", empty).document
    assert (health["status"], health["categories"], health["services"]) == ("fail", {}, {})


def test_bus_providers_alone_are_not_services(plain_render: Render) -> None:
    collection = (
        PlainCollection()
        .service("openai", None, requests=0, errors=0, outcome="none")  # no category: a bus-only provider
        .bus("llm", {"openai": "openai"}, requests=0, failures=0)
        .build()
    )
    health = plain_render("health", collection).document
    assert (health["status"], health["reason"], health["counts"]["total"]) == (
        "fail",
        "no services registered",
        0,
    )
    assert health["buses"]["llm"]["status"] == "pass"
    assert health["buses"]["llm"]["providers"] == {
        "openai": {"component": "openai", "status": "pass", "reason": None}
    }


def test_a_failing_snapshot_is_unknown_with_its_error_and_last_success(plain_render: Render) -> None:
    # The second collection: flaky's snapshot worked once (30 s before) and failed now, broken's never
    # worked; flaky keeps its last good queue depth.
    last_success = T0 - 30 * SECOND
    second = (
        PlainCollection(T0)
        .service(
            "flaky",
            requests=1,
            errors=0,
            durations=[0.01],
            gauges={"service.queue.depth": 7},
            outcome="error",
            error="RuntimeError: boom",
            last_success_unix_nano=last_success,
        )
        .service(
            "broken",
            requests=1,
            errors=0,
            durations=[0.01],
            outcome="error",
            error="ValueError: never worked",
        )
        .service(
            "steady", requests=1, errors=0, durations=[0.01], gauges={"service.queue.depth": 2}, outcome="ok"
        )
        .build()
    )
    now = last_success + 42 * SECOND
    health = plain_render("health", second, now=now).document
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
    operational = plain_render("operational", second, now=now).document["services"]
    assert operational["steady"]["queue_depth"] == 2
    assert operational["flaky"]["queue_depth"] == 7
    assert operational["broken"]["queue_depth"] is None  # never known: null, not 0
    assert operational["flaky"]["requests"] == 1
    reliability = plain_render("reliability", second, now=now).document
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


def test_a_timed_out_snapshot_is_unknown() -> None:
    collection = (
        PlainCollection()
        .service("slow", requests=0, errors=0, outcome="timeout", error="snapshot timed out after 50 ms")
        .service("fast", requests=0, errors=0, outcome="none")
        .build()
    )
    model = build_model(plain_inputs(collection))
    slow_state, fast_state = model.services
    assert (slow_state.status, slow_state.outcome) == ("unknown", "timeout")
    assert slow_state.reason == "snapshot timeout: snapshot timed out after 50 ms; last success never"
    assert fast_state.status == "pass"


def test_no_reported_health_is_unknown(plain_render: Render) -> None:
    collection = PlainCollection().service("silent", health=None, requests=0, errors=0, outcome="none")
    services = plain_render("health", collection.build()).document["services"]
    assert (services["silent"]["status"], services["silent"]["reason"]) == ("unknown", "no health reported")


def test_error_ratio_is_total_errors_over_total_requests(plain_render: Render) -> None:
    traffic = {"front": (100, 0), "search": (50, 10), "auth": (10, 0), "idle": (0, 0)}
    collection = PlainCollection()
    for name, (requests, errors) in traffic.items():
        _served(collection, name, requests, errors)
    summary = plain_render("summary", collection.build()).document
    assert summary["requests"]["total"] == 160
    assert summary["requests"]["errors"] == 10
    assert summary["requests"]["error_ratio"] == pytest.approx(10 / 160)
    # The replaced system averaged the non-zero per-service rates: 10/50 = 0.2, three times too high.
    per_service = [errors / requests for requests, errors in traffic.values() if requests and errors]
    assert sum(per_service) / len(per_service) == pytest.approx(0.2)
    assert summary["requests"]["error_ratio"] != pytest.approx(0.2)
    idle = plain_render("operational", collection.build()).document["services"]["idle"]
    assert (idle["requests"], idle["errors"], idle["error_ratio"]) == (0, 0, None)


def _api(time_unix_nano: int, requests: int) -> Collection:
    """A runtime whose one service ``api`` has served ``requests`` requests by ``time_unix_nano``."""
    return _served(PlainCollection(time_unix_nano), "api", requests, health=None).build()


def test_request_rate_needs_a_previous_collection(plain_render: Render) -> None:
    after = _api(T0, 30)
    previous = _api(T0 - 4 * SECOND, 10)
    assert plain_render("summary", after).document["requests"]["rate_per_second"] is None
    assert plain_render("summary", after, previous=previous).document["requests"]["rate_per_second"] == 5.0
    operational = plain_render("operational", after, previous=previous).document
    assert operational["services"]["api"]["request_rate_per_second"] == 5.0
    same_time = _api(T0, 10)
    assert plain_render("summary", after, previous=same_time).document["requests"]["rate_per_second"] is None
    # A restart: the previous collection (another process) had counted more than the current one.
    restarted = _api(T0 - 10 * SECOND, 100)
    assert plain_render("summary", after, previous=restarted).document["requests"]["rate_per_second"] == 3.0


def _statuses(*services: tuple[str, str, HealthStatus | None, str | None]) -> Collection:
    """Services without traffic: (name, category, reported status or None, reason)."""
    collection = PlainCollection()
    for name, category, status, reason in services:
        collection.service(name, category, health=status, reason=reason, requests=0, errors=0, outcome="none")
    return collection.build()


def test_overall_status_rules(plain_render: Render) -> None:
    both_pass = _statuses(("a", "x", "pass", None), ("b", "x", "pass", None))
    document = plain_render("summary", both_pass).document
    assert (document["status"], document["reason"]) == ("pass", None)
    slow = ("b", "x", "warn", "slow disk")
    assert plain_render("summary", _statuses(("a", "x", "pass", None), slow)).document["status"] == "warn"
    document = plain_render(
        "summary", _statuses(("a", "x", "pass", None), slow, ("c", "y", None, None))
    ).document
    assert (document["status"], document["reason"]) == ("warn", "1 service warn: b; 1 service unknown: c")
    document = plain_render(
        "summary", _statuses(("a", "x", "pass", None), slow, ("c", "y", "fail", None))
    ).document
    assert document["status"] == "fail"
    assert document["reason"] == "1 service fail: c; 1 service warn: b; 1 critical alert"


def test_category_roll_up_keeps_unknown_distinct(plain_render: Render) -> None:
    layout: dict[str, list[tuple[str, HealthStatus | None]]] = {
        "ok": [("ok1", "pass"), ("ok2", "pass")],
        "partly_known": [("p1", "pass"), ("p2", None)],
        "dark": [("d1", None), ("d2", None)],
        "broken": [("b1", "fail"), ("b2", "pass"), ("b3", None)],
    }
    collection = _statuses(
        *((name, category, status, None) for category, members in layout.items() for name, status in members)
    )
    categories = plain_render("health", collection).document["categories"]
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


def test_health_score_formula_with_missing_inputs(plain_render: Render) -> None:
    # Three services: two pass, one fail. 200 requests, 10 errors (5 %). All latencies 2 s.
    collection = PlainCollection()
    _served(collection, "a", 100, 10, 2.0)
    _served(collection, "b", 100, 0, 2.0)
    _served(collection, "c", 0, 0, 2.0, health="fail")
    score = plain_render("summary", collection.build()).document["health_score"]
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


def test_resource_pressure_and_breakers_in_the_score(plain_render: Render) -> None:
    collection = PlainCollection().service(
        "monitor", "infra", requests=0, errors=0, gauges={"system.memory.utilization": 0.825}, outcome="ok"
    )
    for name, state in (("open_one", "open"), ("closed_one", "closed")):
        collection.service(
            name,
            "infra",
            requests=0,
            errors=0,
            gauges={"service.circuit_breaker.state": _breaker(state)},
            outcome="ok",
        )
    inputs = plain_render("summary", collection.build()).document["health_score"]["inputs"]
    # Memory 82.5 %: (0.825 - 0.75) / (1 - 0.75) = 0.3 of the way to full pressure.
    assert inputs["resource_pressure"] == {"value": 0.825, "score": pytest.approx(0.7), "weight": 15}
    assert inputs["circuit_breakers"] == {"value": 0.5, "score": 0.5, "weight": 10}
    # The open breaker is a critical alert: open_one is fail, so availability is 2/3.
    assert inputs["availability"]["value"] == pytest.approx(2 / 3)


def test_bus_status_from_its_providers(plain_render: Render) -> None:
    collection = (
        PlainCollection()
        .service("up", None, requests=0, errors=0, outcome="none")
        .service("down", None, health="fail", reason="quota exhausted", requests=0, errors=0, outcome="none")
        .service("silent", None, health=None, requests=0, errors=0, outcome="none")
    )
    for name, members in (
        ("redundant", ("up", "down")),
        ("dead", ("down",)),
        ("dark", ("silent",)),
        ("fine", ("up",)),
        ("empty", ()),
    ):
        collection.bus(name, {member: member for member in members})
    buses = plain_render("health", collection.build()).document["buses"]
    assert {name: (bus["status"], bus["reason"]) for name, bus in buses.items()} == {
        "redundant": ("warn", "down: fail"),
        "dead": ("fail", "every provider with a known status is fail"),
        "dark": ("unknown", "no provider has a known status"),
        "fine": ("pass", None),
        "empty": ("fail", "no providers attached"),
    }


def test_unknown_values_are_null_when_the_sdk_is_disabled() -> None:
    # A disabled SDK collects no metric at all: only the services' records and health remain.
    collection = PlainCollection(sdk_disabled=True).service("api", outcome="none").build()
    model = build_model(plain_inputs(collection))
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


def test_thresholds_feed_the_score() -> None:
    collection = _served(PlainCollection(), "api", 10, 0, 2.0).build()
    strict = build_model(
        plain_inputs(collection, thresholds=Thresholds(cpu_count=1, latency_objective_seconds=1.0))
    )
    relaxed = build_model(
        plain_inputs(collection, thresholds=Thresholds(cpu_count=1, latency_objective_seconds=5.0))
    )
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
    # At least the CPU burnt over the interval, at most the whole interval on one CPU; each of the two
    # readings of process.cpu.time is exact to one clock tick (10 ms).
    assert (0.4 - 0.02) / interval <= model.cpu_utilization <= 1 + 0.02 / interval
    assert {item.name: item.value for item in model.score_inputs}[
        "resource_pressure"
    ] == model.cpu_utilization
    # Without a previous collection there is no interval: unknown, never 0.
    alone = build_model(make_inputs(second, runtime=runtime, thresholds=Thresholds(cpu_count=1)))
    assert alone.cpu_utilization is None
