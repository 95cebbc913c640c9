"""Parts every view document and metric set is built from: the header, latency, gauges, identity."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import Gauge, Metric, NumberDataPoint

from telemetry_otel import HostRecord
from telemetry_otel.views._numbers import finite, iso
from telemetry_otel.views._quantiles import Buckets
from telemetry_otel.views._state import ComponentState, Model
from telemetry_otel.vocabulary import SERVICE_CATEGORY, SERVICE_NAME

__all__ = [
    "gauge_metric",
    "header",
    "host_section",
    "latency_section",
    "scope_attributes",
    "service_identity",
    "state_set_metric",
]


def header(model: Model, view: str) -> dict[str, Any]:
    """The keys every computed view starts with."""
    inputs = model.inputs
    return {
        "view": view,
        "timestamp": iso(inputs.collection.time_unix_nano),
        "age_seconds": model.age_seconds,
        "sdk_disabled": inputs.collection.sdk_disabled,
        "filter": {"category": inputs.category, "service": inputs.service},
    }


def latency_section(latency: Buckets | None) -> dict[str, Any]:
    """count, mean and the estimated p50/p95/p99 (seconds) of a latency histogram; None where unknown."""
    if latency is None:
        return {
            "count": None,
            "mean_seconds": None,
            "p50_seconds": None,
            "p95_seconds": None,
            "p99_seconds": None,
        }
    return {
        "count": latency.count,
        "mean_seconds": finite(latency.mean),
        "p50_seconds": latency.quantile(0.5),
        "p95_seconds": latency.quantile(0.95),
        "p99_seconds": latency.quantile(0.99),
    }


def gauge_metric(
    name: str,
    unit: str,
    description: str,
    points: Iterable[tuple[Mapping[str, str], float | None]],
    now_unix_nano: int,
) -> list[Metric]:
    """A one-element list with the Gauge ``name`` of the known points, or ``[]`` when none is known."""
    data_points = [
        NumberDataPoint(
            attributes=dict(attributes), start_time_unix_nano=0, time_unix_nano=now_unix_nano, value=value
        )
        for attributes, value in points
        if value is not None and math.isfinite(value)
    ]
    if not data_points:
        return []
    return [Metric(name=name, description=description, unit=unit, data=Gauge(data_points=data_points))]


def state_set_metric(
    name: str,
    description: str,
    states: Sequence[str],
    current: Iterable[tuple[Mapping[str, str], str]],
    now_unix_nano: int,
) -> list[Metric]:
    """A state-set Gauge: per owner one point per state in ``states``, 1 for the current one, 0 else."""
    points = [
        ({**attributes, "status": state}, float(state == status))
        for attributes, status in current
        for state in states
    ]
    return gauge_metric(name, "{status}", description, points, now_unix_nano)


def scope_attributes(model: Model) -> dict[str, str]:
    """Attributes of a runtime-wide derived point: the filter it was computed under, if any."""
    attributes: dict[str, str] = {}
    if model.inputs.service is not None:
        attributes[SERVICE_NAME] = model.inputs.service
    if model.inputs.category is not None:
        attributes[SERVICE_CATEGORY] = model.inputs.category
    return attributes


def service_identity(state: ComponentState) -> dict[str, str]:
    """``service.name`` and (for runtime services) ``service.category`` of a component."""
    identity = {SERVICE_NAME: state.name}
    if state.category is not None:
        identity[SERVICE_CATEGORY] = state.category
    return identity


def host_section(host: HostRecord | None) -> dict[str, Any] | None:
    """A host picture's workers (None for one process): each live worker, and how many retired."""
    if host is None:
        return None
    return {
        "workers": [
            {
                "instance_id": worker.instance_id,
                "pid": worker.pid,
                "reports": worker.reports,
                "last_report": iso(worker.last_report_unix_nano),
                "counters": dict(worker.counters),
            }
            for worker in host.workers
        ],
        "retired_workers": host.retired_workers,
        "generation": host.generation,
        "aggregator_pid": host.aggregator_pid,
    }
