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
)

__all__ = ["RELIABILITY_SOURCES", "render_reliability"]

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
