"""The health view: every service and bus with its status and reason, rolled up per category."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import Metric

from telemetry_otel.views._parts import header, service_identity, state_set_metric
from telemetry_otel.views._state import STATUSES, Model
from telemetry_otel.views._summary import SUMMARY_SOURCES, runtime_status_metrics
from telemetry_otel.vocabulary import BUS_NAME, SERVICE_CATEGORY, SERVICE_REQUEST_DURATION

__all__ = ["HEALTH_SOURCES", "render_health"]

#: The statuses read reported health and every alert input.
HEALTH_SOURCES: frozenset[str] = SUMMARY_SOURCES - {SERVICE_REQUEST_DURATION}


def render_health(model: Model) -> tuple[dict[str, Any], list[Metric]]:
    """The health document and its derived series: runtime, category, service and bus statuses."""
    document = {
        **header(model, "health"),
        "status": model.status,
        "reason": model.reason,
        "counts": dict(model.counts),
        "categories": {
            category.name: {
                "status": category.status,
                "reason": category.reason,
                "counts": dict(category.counts),
                "services": list(category.members),
            }
            for category in model.categories
        },
        "services": {
            state.name: {
                "category": state.category,
                "status": state.status,
                "reason": state.reason,
                "reported_status": state.reported_status,
                "reported_reason": state.reported_reason,
                "snapshot_outcome": state.outcome,
                "snapshot_error": state.snapshot_error,
                "last_success_age_seconds": state.last_success_age_seconds,
            }
            for state in model.services
        },
        "buses": {
            bus.name: {
                "status": bus.status,
                "reason": bus.reason,
                "providers": {
                    provider: {
                        "component": bus.providers[provider],
                        "status": "unknown" if state is None else state.status,
                        "reason": "not registered" if state is None else state.reason,
                    }
                    for provider, state in bus.provider_states.items()
                },
            }
            for bus in model.buses
        },
    }
    now = model.inputs.now_unix_nano
    derived = [
        *runtime_status_metrics(model),
        *state_set_metric(
            "telemetry.category.status",
            "Roll-up status of each category: 1 for the current status, 0 for the others.",
            STATUSES,
            [({SERVICE_CATEGORY: category.name}, category.status) for category in model.categories],
            now,
        ),
        *state_set_metric(
            "service.status",
            "Status of each service: 1 for the current status, 0 for the others.",
            STATUSES,
            [(service_identity(state), state.status) for state in model.services],
            now,
        ),
        *state_set_metric(
            "bus.status",
            "Status of each bus from its providers: 1 for the current status, 0 for the others.",
            STATUSES,
            [({BUS_NAME: bus.name}, bus.status) for bus in model.buses],
            now,
        ),
    ]
    return document, derived
