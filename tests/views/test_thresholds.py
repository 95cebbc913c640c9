"""Alert thresholds: defaults, overrides, validation, and every rule firing on a real collection."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from telemetry_otel import Collection, Snapshot, SnapshotFunction, Telemetry
from telemetry_otel.instrumentation import gauge, instrument_service
from telemetry_otel.views._render import RenderedView
from telemetry_otel.views._thresholds import Alert, Thresholds

Render = Callable[..., RenderedView]
Collect = Callable[[Telemetry], Collection]

RESOURCES = [
    gauge("process.cpu.utilization", "1", "CPU, fraction of one CPU."),
    gauge("system.memory.utilization", "1", "Host memory in use."),
]
BREAKER = [gauge("service.circuit_breaker.state", "{state}", "Breaker state.")]


def _breaker(state: str) -> Snapshot:
    return {
        "service.circuit_breaker.state": [
            ({"circuit_breaker.state": name}, int(name == state)) for name in ("closed", "open", "half_open")
        ]
    }


def _resources(cpu: float, memory: float | None) -> SnapshotFunction:
    return lambda: {"process.cpu.utilization": cpu, "system.memory.utilization": memory}


def _breaker_snapshot(state: str) -> SnapshotFunction:
    return lambda: _breaker(state)


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


def test_cpu_and_memory_thresholds(telemetry: Telemetry, render: Render) -> None:
    readings = {"hot": (1.9, 0.95), "warm": (1.6, 0.8), "cool": (0.2, 0.3), "no_memory": (1.6, None)}
    for name, (cpu, memory) in readings.items():
        service = instrument_service(
            name,
            category="runtime",
            snapshot=_resources(cpu, memory),
            metrics=RESOURCES,
            telemetry=telemetry,
        )
        service.report_health("pass")
    view = render("operational", thresholds=Thresholds(cpu_count=2))
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
    relaxed = render("operational", thresholds=Thresholds(cpu_count=4))
    assert {a["rule"] for a in _alerts(relaxed) if a["rule"].startswith("cpu")} == set()


def test_error_ratio_needs_min_requests_and_is_also_checked_on_the_whole_runtime(
    telemetry: Telemetry, render: Render
) -> None:
    busy = instrument_service("busy", category="runtime", telemetry=telemetry)
    few = instrument_service("few", category="runtime", telemetry=telemetry)
    for index in range(30):
        busy.record_request(0.01, error=index < 4)  # 4/30 = 13.3 %
    for index in range(10):
        few.record_request(0.01, error=index < 5)  # 50 %, but only 10 requests
    for service in (busy, few):
        service.report_health("pass")
    alerts = _alerts(render("operational"))
    assert [(a["component"], a["rule"], a["threshold"]) for a in alerts] == [
        ("busy", "error_ratio_warn", 0.10),
        ("runtime", "error_ratio_warn", 0.10),  # 9/40 = 22.5 %
    ]
    assert alerts[0]["value"] == pytest.approx(4 / 30)
    assert alerts[1]["value"] == pytest.approx(9 / 40)
    lowered = _alerts(render("operational", thresholds=Thresholds.from_mapping({"min_requests": 5})))
    assert {a["component"] for a in lowered} == {"busy", "few", "runtime"}
    raised = _alerts(render("operational", thresholds=Thresholds.from_mapping({"error_ratio_warn": 0.5})))
    assert raised == []


def test_circuit_breaker_open_and_its_override(telemetry: Telemetry, render: Render) -> None:
    for name, state in (("tripped", "open"), ("probing", "half_open"), ("steady", "closed")):
        service = instrument_service(
            name,
            category="runtime",
            snapshot=_breaker_snapshot(state),
            metrics=BREAKER,
            telemetry=telemetry,
        )
        service.report_health("pass")
    view = render("operational")
    assert [(a["component"], a["rule"], a["severity"], a["threshold"]) for a in _alerts(view)] == [
        ("tripped", "circuit_breaker_open", "critical", "open")
    ]
    assert view.document["services"]["tripped"]["circuit_breaker"] == "open"
    assert view.document["services"]["probing"]["circuit_breaker"] == "half_open"
    assert view.document["services"]["tripped"]["status"] == "fail"
    warned = render("operational", thresholds=Thresholds(circuit_breaker_open="warning"))
    assert [a["severity"] for a in _alerts(warned)] == ["warning"]
    assert warned.document["services"]["tripped"]["status"] == "warn"
    assert _alerts(render("operational", thresholds=Thresholds(circuit_breaker_open="off"))) == []


def test_service_down(telemetry: Telemetry, render: Render) -> None:
    db = instrument_service("db", category="infra", telemetry=telemetry)
    db.report_health("fail", "connection refused")
    instrument_service("web", category="infra", telemetry=telemetry).report_health("pass")
    view = render("operational")
    assert _alerts(view) == [
        Alert("critical", "db", "service_down", None, "fail", "service down: connection refused").as_dict()
    ]
    assert view.document["status"] == "fail"
    assert _alerts(render("operational", thresholds=Thresholds(service_down="off"))) == []


def test_stale_data(telemetry: Telemetry, render: Render, collect: Collect) -> None:
    healthy = {"value": True}

    def snapshot() -> Snapshot:
        if not healthy["value"]:
            raise ConnectionError("store unreachable")
        return {"service.queue.depth": 3}

    service = instrument_service(
        "queue",
        category="runtime",
        snapshot=snapshot,
        metrics=[gauge("service.queue.depth", "{item}", "Waiting.")],
        telemetry=telemetry,
    )
    service.report_health("pass")
    first = collect(telemetry)
    last_success = first.outcomes["queue"].last_success_unix_nano
    assert last_success is not None
    healthy["value"] = False
    second = collect(telemetry)
    assert second.outcomes["queue"].last_success_unix_nano == last_success
    late = render("operational", second, now=last_success + 200 * 10**9)
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
    soon = render("operational", second, now=last_success + 60 * 10**9)
    assert _alerts(soon) == []
    longer = render(
        "operational", second, now=last_success + 200 * 10**9, thresholds=Thresholds(stale_after_seconds=300)
    )
    assert _alerts(longer) == []


def test_alerts_make_a_reported_status_worse_never_better(telemetry: Telemetry, render: Render) -> None:
    degraded = instrument_service(
        "degraded",
        category="runtime",
        snapshot=lambda: {"process.cpu.utilization": 3.2, "system.memory.utilization": 0.5},
        metrics=RESOURCES,
        telemetry=telemetry,
    )
    degraded.report_health("pass", "all good here")
    failing = instrument_service(
        "failing",
        category="runtime",
        snapshot=lambda: {"process.cpu.utilization": 3.2},
        metrics=RESOURCES,
        telemetry=telemetry,
    )
    failing.report_health("fail", "disk full")
    health = render("health").document["services"]
    assert health["degraded"]["status"] == "warn"  # 3.2 / 4 CPUs = 80 %: cpu_warn
    assert health["degraded"]["reported_status"] == "pass"
    assert health["degraded"]["reason"] == "all good here; CPU at 80% >= cpu_warn 75%"
    assert health["failing"]["status"] == "fail"  # a warning never lifts a reported fail
    # The reported reason once: the service_down alert it raised would only repeat it.
    assert health["failing"]["reason"] == "disk full; CPU at 80% >= cpu_warn 75%"
