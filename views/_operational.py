"""The operational view: per service uptime, traffic, queues, resources and breakers, plus the alerts."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import Metric

from telemetry_otel.views._numbers import ratio
from telemetry_otel.views._parts import header
from telemetry_otel.views._state import BusState, Model
from telemetry_otel.views._summary import SUMMARY_SOURCES, runtime_status_metrics
from telemetry_otel.vocabulary import (
    BUS_FAILURES,
    BUS_PROCESSED,
    BUS_PROVIDERS,
    BUS_PROVIDERS_HEALTHY,
    BUS_PROVIDERS_UNKNOWN,
    BUS_REQUESTS,
    SERVICE_QUEUE_DEPTH,
    SERVICE_REQUEST_DURATION,
    SERVICE_UPTIME,
)

__all__ = ["OPERATIONAL_SOURCES", "render_operational"]

OPERATIONAL_SOURCES: frozenset[str] = (SUMMARY_SOURCES - {SERVICE_REQUEST_DURATION}) | {
    SERVICE_UPTIME,
    SERVICE_QUEUE_DEPTH,
    "process.memory.usage",
    BUS_REQUESTS,
    BUS_FAILURES,
    BUS_PROCESSED,
    "bus.queue.depth",
    BUS_PROVIDERS,
    BUS_PROVIDERS_HEALTHY,
    BUS_PROVIDERS_UNKNOWN,
}


def render_operational(model: Model) -> tuple[dict[str, Any], list[Metric]]:
    """The operational document and its derived series (status, active alerts)."""
    document = {
        **header(model, "operational"),
        "status": model.status,
        "reason": model.reason,
        "cpu_count": model.inputs.thresholds.cpu_count,
        "services": {
            state.name: {
                "category": state.category,
                "status": state.status,
                "uptime_seconds": state.uptime_seconds,
                "requests": state.requests,
                "errors": state.errors,
                "error_ratio": state.error_ratio,
                "request_rate_per_second": state.request_rate,
                "queue_depth": state.queue_depth,
                "cpu_utilization": state.cpu_utilization,
                "memory_usage_bytes": state.memory_usage_bytes,
                "memory_utilization": state.memory_utilization,
                "circuit_breaker": state.circuit_breaker,
            }
            for state in model.services
        },
        "buses": {bus.name: _bus(bus) for bus in model.buses},
        "alerts": [alert.as_dict() for alert in model.alerts],
        "alert_counts": model.alert_counts(),
        "thresholds": model.inputs.thresholds.as_dict(),
    }
    return document, runtime_status_metrics(model)


def _bus(bus: BusState) -> dict[str, Any]:
    requests, failures = bus.number("requests"), bus.number("failures")
    return {
        "status": bus.status,
        "providers_total": bus.number("providers"),
        "providers_healthy": bus.number("providers.healthy"),
        "providers_unknown": bus.number("providers.unknown"),
        "requests": requests,
        "failures": failures,
        "processed": bus.number("processed"),
        "failure_ratio": ratio(failures, requests),
        "request_rate_per_second": bus.request_rate,
        "queue_depth": bus.number("queue.depth"),
    }
