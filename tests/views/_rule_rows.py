"""Plain-data collections for the rule tests: one runtime (an ``instance``) per row of a table.

A row says what a runtime's services and process report; :func:`collections` builds the previous and
the current collection from it (the way a runtime would emit them), and :func:`input_series` turns
what our own encoder exposes for them into ``promtool`` input series, counters rising linearly from
the previous value to the current one, so Prometheus reads exactly what the view reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel import Collection, ComponentOutcome, ComponentRecord, HealthReport
from telemetry_otel.formats import encode_prometheus_text

VITALS = InstrumentationScope("telemetry_otel.instrumentation", "0.1.0", None, None)
PROCESS = InstrumentationScope("telemetry_otel.process", "0.1.0", None, None)
COLLECTOR = InstrumentationScope("telemetry_otel.collector", "0.1.0", None, None)
#: Seconds between the two collections of a row, and between two promtool samples.
INTERVAL = 60
STEP = 15
#: promtool evaluates at this time; the counters reach their current value there.
EVAL_SECONDS = 10 * STEP
NOW = 1_000_000 * 10**9


@dataclass
class Service:
    """What one service reports (None: it does not report that series)."""

    name: str
    category: str | None = "runtime"
    cpu: float | None = None  # process.cpu.utilization (fraction of one CPU)
    memory: float | None = None  # system.memory.utilization
    requests: int | None = None
    errors: int | None = None
    health: str = "pass"
    breaker: str | None = None
    snapshot_age: float | None = None  # seconds since its last good snapshot


@dataclass
class Row:
    """One runtime: its services and, with the process metrics, the process's CPU and memory."""

    services: list[Service] = field(default_factory=list)
    cpu_seconds_per_step: float | None = None  # process.cpu.time increase per STEP seconds
    memory_bytes: int | None = None  # process.memory.usage


def _point(attributes: dict[str, Any], value: float, start: int, now: int) -> NumberDataPoint:
    return NumberDataPoint(attributes, start, now, value)


def _metrics(row: Row, now: int, cpu_time: float | None) -> MetricsData:
    start = now - 3600 * 10**9

    def gauge(name: str, unit: str, points: list[tuple[dict[str, Any], float]]) -> Metric:
        return Metric(name, "", unit, Gauge([_point(a, v, now, now) for a, v in points]))

    def total(
        name: str, unit: str, points: list[tuple[dict[str, Any], float]], monotonic: bool = True
    ) -> Metric:
        data = Sum(
            [_point(a, v, start, now) for a, v in points], AggregationTemporality.CUMULATIVE, monotonic
        )
        return Metric(name, "", unit, data)

    vitals: list[Metric] = []
    collector: list[Metric] = []
    for service in row.services:
        who: dict[str, Any] = {"service.name": service.name}
        if service.category is not None:
            who["service.category"] = service.category
        vitals.append(gauge("service.uptime", "s", [(who, 3600.0)]))
        vitals.append(
            gauge(
                "service.health",
                "{status}",
                [({**who, "health.status": s}, int(s == service.health)) for s in ("pass", "warn", "fail")],
            )
        )
        if service.requests is not None:
            vitals.append(total("service.requests", "{request}", [(who, service.requests)]))
        if service.errors is not None:
            vitals.append(total("service.errors", "{error}", [(who, service.errors)]))
        if service.cpu is not None:
            vitals.append(gauge("process.cpu.utilization", "1", [(who, service.cpu)]))
        if service.memory is not None:
            vitals.append(gauge("system.memory.utilization", "1", [(who, service.memory)]))
        if service.breaker is not None:
            states = [
                ({**who, "circuit_breaker.state": s}, int(s == service.breaker))
                for s in ("closed", "open", "half_open")
            ]
            vitals.append(gauge("service.circuit_breaker.state", "{state}", states))
        if service.snapshot_age is not None:
            age = {"service.name": service.name}
            collector.append(gauge("telemetry.collection.snapshot.age", "s", [(age, service.snapshot_age)]))
    process: list[Metric] = []
    if cpu_time is not None:
        process.append(total("process.cpu.time", "s", [({"cpu.mode": "user"}, cpu_time)]))
    if row.memory_bytes is not None:
        process.append(total("process.memory.usage", "By", [({}, row.memory_bytes)], monotonic=False))
    scopes = [ScopeMetrics(scope, metrics, "") for scope, metrics in ((VITALS, vitals), (PROCESS, process),
              (COLLECTOR, collector)) if metrics]  # fmt: skip
    return MetricsData([ResourceMetrics(Resource.create({"service.name": "agent"}), scopes, "")])


#: The process's CPU seconds at the evaluation time (high enough that the ramp never goes below 0).
_CPU_AT_EVAL = 10_000.0


def collections(row: Row) -> tuple[Collection, Collection]:
    """The previous and the current collection of ``row``, ``INTERVAL`` seconds apart."""
    found = []
    for offset in (INTERVAL, 0):
        now = NOW - offset * 10**9
        cpu = None
        if row.cpu_seconds_per_step is not None:
            cpu = _CPU_AT_EVAL - row.cpu_seconds_per_step * offset / STEP
        components = tuple(
            ComponentRecord(
                s.name,
                s.category,
                {"service.name": s.name},
                has_snapshot=s.snapshot_age is not None,
                health=HealthReport(s.health, None if s.health == "pass" else "reported", now),  # type: ignore[arg-type]
            )
            for s in row.services
        )
        outcomes = {
            s.name: ComponentOutcome(s.name, "ok", None, 0.01, now - int(s.snapshot_age * 10**9))
            for s in row.services
            if s.snapshot_age is not None
        }
        found.append(Collection(_metrics(row, now, cpu), outcomes, now, 0.01, False, components))
    return found[0], found[1]


def input_series(row: Row, instance: str) -> list[dict[str, str]]:
    """promtool input series for ``row`` as scraped from ``instance``: what our encoder exposes for
    its current collection, counters rising by their increase since the previous collection."""
    previous, current = collections(row)
    before = _samples(previous)
    steps = EVAL_SECONDS // STEP
    found = []
    for (name, labels), value in _samples(current).items():
        old = before.get((name, labels), value)
        per_step = (value - old) * STEP / INTERVAL if name.endswith("_total") else 0.0
        values = " ".join(repr(value - per_step * (steps - k)) for k in range(steps + 1))
        rendered = ",".join(
            f'{key}="{val}"' for key, val in (*labels, ("job", "agent"), ("instance", instance))
        )
        found.append({"series": f"{name}{{{rendered}}}", "values": values})
    return found


def _samples(collection: Collection) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = encode_prometheus_text(collection.metrics)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
