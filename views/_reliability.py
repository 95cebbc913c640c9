"""The reliability view: uptime, availability, error ratios, breakers, collection failures, staleness."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import Metric

from telemetry_otel.views._numbers import ratio
from telemetry_otel.views._parts import gauge_metric, header, host_section, service_identity
from telemetry_otel.views._state import ComponentState, Model
from telemetry_otel.views._summary import SUMMARY_SOURCES, runtime_status_metrics
from telemetry_otel.vocabulary import (
    BUS_FAILURES,
    BUS_PROVIDERS,
    BUS_PROVIDERS_HEALTHY,
    BUS_PROVIDERS_UNKNOWN,
    BUS_REQUESTS,
    SERVICE_REQUEST_DURATION,
    SERVICE_UPTIME,
    TELEMETRY_EXPORT_DROPPED,
    TELEMETRY_EXPORT_DROPPED_DELTA,
    TELEMETRY_EXPORT_FAILED,
    TELEMETRY_EXPORT_LAST_SUCCESS_AGE,
    TELEMETRY_EXPORT_LATE,
    TELEMETRY_EXPORT_QUEUE_BYTES,
    TELEMETRY_EXPORT_QUEUE_LENGTH,
    TELEMETRY_EXPORT_REASON,
    TELEMETRY_EXPORT_RETRIED,
    TELEMETRY_EXPORT_SENT,
    TELEMETRY_EXPORTER,
)

__all__ = ["RELIABILITY_SOURCES", "exporter_health", "render_reliability"]

RELIABILITY_SOURCES: frozenset[str] = (SUMMARY_SOURCES - {SERVICE_REQUEST_DURATION}) | {
    SERVICE_UPTIME,
    BUS_REQUESTS,
    BUS_FAILURES,
    BUS_PROVIDERS,
    BUS_PROVIDERS_HEALTHY,
    BUS_PROVIDERS_UNKNOWN,
}

_OUTCOMES = ("ok", "error", "timeout", "none")


def render_reliability(model: Model) -> tuple[dict[str, Any], list[Metric]]:
    """The reliability document and its derived series (availability, error ratio, snapshot age)."""
    stale_after = model.inputs.thresholds.stale_after_seconds
    watched = _watched(model)
    document = {
        **header(model, "reliability"),
        "status": model.status,
        "reason": model.reason,
        "availability": model.availability,
        "error_ratio": model.error_ratio,
        "collection": {
            "duration_seconds": model.inputs.collection.duration_seconds,
            "snapshots": {
                outcome: sum(state.outcome == outcome for state in watched) for outcome in _OUTCOMES
            },
        },
        "host": host_section(model.inputs.collection.host),
        "collection_failures": [
            {
                "component": state.name,
                "outcome": state.outcome,
                "error": state.snapshot_error,
                "last_success_age_seconds": state.last_success_age_seconds,
            }
            for state in watched
            if state.outcome in ("error", "timeout")
        ],
        "services": {
            state.name: {
                "category": state.category,
                "status": state.status,
                "uptime_seconds": state.uptime_seconds,
                "availability": state.availability,
                "requests": state.requests,
                "errors": state.errors,
                "error_ratio": state.error_ratio,
                "circuit_breaker": state.circuit_breaker,
                "snapshot_outcome": state.outcome,
                "snapshot_error": state.snapshot_error,
                "snapshot_duration_seconds": state.snapshot_duration_seconds,
                "problems": list(state.problems),
                "values_source": state.source,
                "last_success_age_seconds": state.last_success_age_seconds,
                "stale": _stale(state, stale_after),
            }
            for state in model.services
        },
        "exporters": exporter_health(model),
        "buses": {
            bus.name: {
                "status": bus.status,
                "providers_total": bus.number("providers"),
                "providers_healthy": bus.number("providers.healthy"),
                "providers_unknown": bus.number("providers.unknown"),
                "requests": bus.number("requests"),
                "failures": bus.number("failures"),
                "failure_ratio": ratio(bus.number("failures"), bus.number("requests")),
                "circuit_breakers": {
                    provider: None if state is None else state.circuit_breaker
                    for provider, state in bus.provider_states.items()
                },
            }
            for bus in model.buses
        },
    }
    now = model.inputs.now_unix_nano
    derived = [
        *runtime_status_metrics(model),
        *gauge_metric(
            "service.availability",
            "1",
            "1 when the service's status is pass or warn, 0 when fail; absent when unknown.",
            [(service_identity(state), state.availability) for state in model.services],
            now,
        ),
        *gauge_metric(
            "service.error_ratio",
            "1",
            "Errors / requests since start; absent before the first request.",
            [(service_identity(state), state.error_ratio) for state in model.services],
            now,
        ),
        *gauge_metric(
            "service.snapshot.age",
            "s",
            "Seconds since the service's last successful snapshot; absent without a snapshot function.",
            [(service_identity(state), state.last_success_age_seconds) for state in model.services],
            now,
        ),
    ]
    return document, derived


#: ``telemetry.export.*`` series read into the ``exporters`` part of the document, by field.
_EXPORT_FIELDS = {
    TELEMETRY_EXPORT_SENT: "sent",
    TELEMETRY_EXPORT_FAILED: "failed",
    TELEMETRY_EXPORT_RETRIED: "retried",
    TELEMETRY_EXPORT_LATE: "late",
    TELEMETRY_EXPORT_DROPPED_DELTA: "dropped_delta",
    TELEMETRY_EXPORT_QUEUE_LENGTH: "queue_length",
    TELEMETRY_EXPORT_QUEUE_BYTES: "queue_bytes",
    TELEMETRY_EXPORT_LAST_SUCCESS_AGE: "last_success_age_seconds",
}


def exporter_health(model: Model) -> dict[str, dict[str, Any]]:
    """Each push exporter's delivery, from the collection's ``telemetry.export.*`` series.

    ``status``: ``fail`` when batches wait and nothing was delivered for longer than the staleness
    threshold (or ever), ``warn`` when batches wait or any was dropped, ``pass`` otherwise.
    """
    exporters: dict[str, dict[str, Any]] = {}
    for resource_metrics in model.inputs.collection.metrics.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not metric.name.startswith("telemetry.export."):
                    continue
                for point in metric.data.data_points:
                    attributes = point.attributes or {}
                    name = attributes.get(TELEMETRY_EXPORTER)
                    value = getattr(point, "value", None)
                    if not isinstance(name, str) or not isinstance(value, int | float):
                        continue
                    entry = exporters.setdefault(
                        name, {"dropped": 0, "dropped_by_reason": {}, "last_success_age_seconds": None}
                    )
                    if metric.name == TELEMETRY_EXPORT_DROPPED:
                        reason = str(attributes.get(TELEMETRY_EXPORT_REASON, "unknown"))
                        entry["dropped_by_reason"][reason] = value
                        entry["dropped"] += value
                    elif metric.name in _EXPORT_FIELDS:
                        entry[_EXPORT_FIELDS[metric.name]] = value
    stale_after = model.inputs.thresholds.stale_after_seconds
    for entry in exporters.values():
        waiting = entry.get("queue_length", 0) > 0
        age = entry["last_success_age_seconds"]
        if waiting and (age is None or age > stale_after):
            entry["status"] = "fail"
        elif waiting or entry["dropped"] > 0:
            entry["status"] = "warn"
        else:
            entry["status"] = "pass"
    return dict(sorted(exporters.items()))


def _watched(model: Model) -> list[ComponentState]:
    """The selected services, then the providers of the selected buses that are not among them."""
    watched = list(model.services)
    names = {state.name for state in watched}
    for bus in model.buses:
        for state in bus.provider_states.values():
            if state is not None and state.name not in names and not state.is_service:
                watched.append(state)
                names.add(state.name)
    return watched


def _stale(state: ComponentState, stale_after: float) -> bool | None:
    """Live values are never stale; a snapshot never taken is unknown (None)."""
    if not state.has_snapshot:
        return False
    if state.last_success_age_seconds is None:
        return None
    return state.last_success_age_seconds > stale_after
