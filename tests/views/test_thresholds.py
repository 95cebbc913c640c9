"""Alert thresholds: defaults, overrides, validation, and every rule firing on a collection written as
plain data."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from plain_data import SECOND, PlainCollection

from telemetry_otel import HealthStatus
from telemetry_otel.views._render import RenderedView
from telemetry_otel.views._thresholds import Alert, Thresholds

Render = Callable[..., RenderedView]
T0 = 1_800_000_000 * SECOND


def _breaker(state: str) -> list[tuple[dict[str, str], int]]:
    return [({"circuit_breaker.state": name}, int(name == state)) for name in ("closed", "open", "half_open")]


def _alerts(view: RenderedView) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = view.document["alerts"]
    return alerts


def test_documented_defaults() -> None:
    defaults = Thresholds(cpu_count=8, memory_limit_bytes=2**30).as_dict()
    assert defaults == {
        "cpu_warn": 0.75,
        "cpu_critical": 0.90,
        "memory_warn": 0.75,
        "memory_critical": 0.90,
        "error_ratio_warn": 0.10,
        "min_requests": 20,
        "circuit_breaker_open": "critical",
        "service_down": "critical",
        "stale_after_seconds": 120.0,
        "latency_objective_seconds": 1.0,
        "cpu_count": 8,
        "memory_limit_bytes": 2**30,
    }
    assert Thresholds().cpu_count >= 1
    assert Thresholds().memory_limit_bytes == psutil.virtual_memory().total


def test_from_mapping_overrides_and_keeps_the_other_defaults() -> None:
    thresholds = Thresholds.from_mapping({"cpu_warn": 0.5, "circuit_breaker_open": "warning", "cpu_count": 2})
    assert thresholds == dataclasses.replace(
        Thresholds(cpu_count=2), cpu_warn=0.5, circuit_breaker_open="warning"
    )
    assert Thresholds.from_mapping({}) == Thresholds()


def test_unknown_keys_are_rejected_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown threshold key") as raised:
        Thresholds.from_mapping({"cpu_warning": 0.5})
    message = str(raised.value)
    assert "'cpu_warning'" in message
    for key in Thresholds.names():
        assert key in message


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"cpu_warn": "0.5"}, "cpu_warn"),
        ({"cpu_warn": True}, "cpu_warn"),
        ({"cpu_warn": 1.0}, "cpu_warn"),
        ({"cpu_warn": 0.95}, "cpu_critical"),  # above the default critical 0.9
        ({"memory_critical": 1.5}, "memory_critical"),
        ({"error_ratio_warn": 0}, "error_ratio_warn"),
        ({"error_ratio_warn": float("nan")}, "error_ratio_warn"),
        ({"min_requests": -1}, "min_requests"),
        ({"min_requests": 2.5}, "min_requests"),
        ({"stale_after_seconds": 0}, "stale_after_seconds"),
        ({"latency_objective_seconds": -1}, "latency_objective_seconds"),
        ({"circuit_breaker_open": "loud"}, "circuit_breaker_open"),
        ({"service_down": None}, "service_down"),
        ({"cpu_count": 0}, "cpu_count"),
        ({"memory_limit_bytes": 0}, "memory_limit_bytes"),
        ({"memory_limit_bytes": 1.5}, "memory_limit_bytes"),
    ],
)
def test_bad_values_are_rejected_naming_the_key(values: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=f"threshold {key}="):
        Thresholds.from_mapping(values)


def test_cpu_and_memory_thresholds(plain_render: Render) -> None:
    readings = {"hot": (1.9, 0.95), "warm": (1.6, 0.8), "cool": (0.2, 0.3), "no_memory": (1.6, None)}
    collection = PlainCollection()
    for name, (cpu, memory) in readings.items():
        gauges = {"process.cpu.utilization": cpu}
        if memory is not None:  # a value the snapshot left out is not recorded
            gauges["system.memory.utilization"] = memory
        collection.service(name, requests=0, errors=0, gauges=gauges, outcome="ok")
    resources = collection.build()
    view = plain_render("operational", resources, thresholds=Thresholds(cpu_count=2))
    fired = {(a["component"], a["rule"]): (a["severity"], a["value"], a["threshold"]) for a in _alerts(view)}
    assert fired == {
        ("hot", "cpu_critical"): ("critical", pytest.approx(0.95), 0.90),  # 1.9 of 2 CPUs
        ("hot", "memory_critical"): ("critical", 0.95, 0.90),
        ("warm", "cpu_warn"): ("warning", pytest.approx(0.8), 0.75),
        ("warm", "memory_warn"): ("warning", 0.8, 0.75),
        ("no_memory", "cpu_warn"): ("warning", pytest.approx(0.8), 0.75),
    }
    services = view.document["services"]
    assert services["hot"]["cpu_utilization"] == pytest.approx(0.95)
    assert services["no_memory"]["memory_utilization"] is None
    assert (services["hot"]["status"], services["warm"]["status"], services["cool"]["status"]) == (
        "fail",
        "warn",
        "pass",
    )
    assert view.document["status"] == "fail"
    assert "cpu_critical" in next(a["message"] for a in _alerts(view) if a["rule"] == "cpu_critical")
    # Overridden: with 4 CPUs the same readings are below every CPU threshold.
    relaxed = plain_render("operational", resources, thresholds=Thresholds(cpu_count=4))
    assert {a["rule"] for a in _alerts(relaxed) if a["rule"].startswith("cpu")} == set()


def test_error_ratio_needs_min_requests_and_is_also_checked_on_the_whole_runtime(
    plain_render: Render,
) -> None:
    collection = (
        PlainCollection()
        .service("busy", requests=30, errors=4, durations=[0.01] * 30, outcome="none")  # 4/30 = 13.3 %
        .service("few", requests=10, errors=5, durations=[0.01] * 10, outcome="none")  # 50 %, only 10
        .build()
    )
    alerts = _alerts(plain_render("operational", collection))
    assert [(a["component"], a["rule"], a["threshold"]) for a in alerts] == [
        ("busy", "error_ratio_warn", 0.10),
        ("runtime", "error_ratio_warn", 0.10),  # 9/40 = 22.5 %
    ]
    assert alerts[0]["value"] == pytest.approx(4 / 30)
    assert alerts[1]["value"] == pytest.approx(9 / 40)
    lowered = _alerts(
        plain_render("operational", collection, thresholds=Thresholds.from_mapping({"min_requests": 5}))
    )
    assert {a["component"] for a in lowered} == {"busy", "few", "runtime"}
    raised = _alerts(
        plain_render("operational", collection, thresholds=Thresholds.from_mapping({"error_ratio_warn": 0.5}))
    )
    assert raised == []


def test_circuit_breaker_open_and_its_override(plain_render: Render) -> None:
    collection = PlainCollection()
    for name, state in (("tripped", "open"), ("probing", "half_open"), ("steady", "closed")):
        collection.service(
            name,
            requests=0,
            errors=0,
            gauges={"service.circuit_breaker.state": _breaker(state)},
            outcome="ok",
        )
    breakers = collection.build()
    view = plain_render("operational", breakers)
    assert [(a["component"], a["rule"], a["severity"], a["threshold"]) for a in _alerts(view)] == [
        ("tripped", "circuit_breaker_open", "critical", "open")
    ]
    assert view.document["services"]["tripped"]["circuit_breaker"] == "open"
    assert view.document["services"]["probing"]["circuit_breaker"] == "half_open"
    assert view.document["services"]["tripped"]["status"] == "fail"
    warned = plain_render("operational", breakers, thresholds=Thresholds(circuit_breaker_open="warning"))
    assert [a["severity"] for a in _alerts(warned)] == ["warning"]
    assert warned.document["services"]["tripped"]["status"] == "warn"
    assert (
        _alerts(plain_render("operational", breakers, thresholds=Thresholds(circuit_breaker_open="off")))
        == []
    )


def test_service_down(plain_render: Render) -> None:
    collection = (
        PlainCollection()
        .service(
            "db", "infra", health="fail", reason="connection refused", requests=0, errors=0, outcome="none"
        )
        .service("web", "infra", requests=0, errors=0, outcome="none")
        .build()
    )
    view = plain_render("operational", collection)
    assert _alerts(view) == [
        Alert("critical", "db", "service_down", None, "fail", "service down: connection refused").as_dict()
    ]
    assert view.document["status"] == "fail"
    assert _alerts(plain_render("operational", collection, thresholds=Thresholds(service_down="off"))) == []


def test_stale_data(plain_render: Render) -> None:
    # The second collection: the snapshot worked once, then failed; its last good value is kept (that
    # a runtime keeps it is tests/test_collection.py's claim).
    last_success = T0 - 30 * SECOND
    second = (
        PlainCollection(T0)
        .service(
            "queue",
            requests=0,
            errors=0,
            gauges={"service.queue.depth": 3},
            outcome="error",
            error="ConnectionError: store unreachable",
            last_success_unix_nano=last_success,
        )
        .build()
    )
    late = plain_render("operational", second, now=last_success + 200 * SECOND)
    assert _alerts(late) == [
        Alert(
            "warning",
            "queue",
            "stale_after_seconds",
            200.0,
            120.0,
            "data stale: last good snapshot 200 s ago > stale_after_seconds 120",
        ).as_dict()
    ]
    assert late.document["services"]["queue"]["status"] == "unknown"
    assert late.document["status"] == "warn"
    soon = plain_render("operational", second, now=last_success + 60 * SECOND)
    assert _alerts(soon) == []
    longer = plain_render(
        "operational",
        second,
        now=last_success + 200 * SECOND,
        thresholds=Thresholds(stale_after_seconds=300),
    )
    assert _alerts(longer) == []


def test_alerts_make_a_reported_status_worse_never_better(plain_render: Render) -> None:
    reported: tuple[tuple[str, HealthStatus, str, dict[str, float]], ...] = (
        (
            "degraded",
            "pass",
            "all good here",
            {"process.cpu.utilization": 3.2, "system.memory.utilization": 0.5},
        ),
        ("failing", "fail", "disk full", {"process.cpu.utilization": 3.2}),
    )
    collection = PlainCollection()
    for name, status, reason, gauges in reported:
        collection.service(
            name, health=status, reason=reason, requests=0, errors=0, gauges=gauges, outcome="ok"
        )
    health = plain_render("health", collection.build()).document["services"]
    assert health["degraded"]["status"] == "warn"  # 3.2 / 4 CPUs = 80 %: cpu_warn
    assert health["degraded"]["reported_status"] == "pass"
    assert health["degraded"]["reason"] == "all good here; CPU at 80% >= cpu_warn 75%"
    assert health["failing"]["status"] == "fail"  # a warning never lifts a reported fail
    # The reported reason once: the service_down alert it raised would only repeat it.
    assert health["failing"]["reason"] == "disk full; CPU at 80% >= cpu_warn 75%"
