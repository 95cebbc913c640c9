"""The summary view (the default): overall status, health score, service counts, traffic, p95, alerts."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import Metric

from telemetry_otel.views._parts import gauge_metric, header, scope_attributes, state_set_metric
from telemetry_otel.views._state import Model
from telemetry_otel.vocabulary import (
    SERVICE_ERRORS,
    SERVICE_HEALTH,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
)

__all__ = ["SUMMARY_SOURCES", "render_summary", "runtime_status_metrics"]

#: Every metric the summary reads: the statuses (alert inputs included), traffic and latency.
SUMMARY_SOURCES: frozenset[str] = frozenset(
    {
        SERVICE_HEALTH,
        SERVICE_REQUESTS,
        SERVICE_ERRORS,
        SERVICE_REQUEST_DURATION,
        "service.circuit_breaker.state",
        "process.cpu.utilization",
        "system.memory.utilization",
    }
)


def render_summary(model: Model) -> tuple[dict[str, Any], list[Metric]]:
    """The summary document and its derived series (status, score, active alerts, runtime p95)."""
    p95 = None if model.latency is None else model.latency.quantile(0.95)
    document = {
        **header(model, "summary"),
        "status": model.status,
        "reason": model.reason,
        "health_score": {
            "score": model.score,
            "inputs": {item.name: item.as_dict() for item in model.score_inputs},
            "missing_inputs": [item.name for item in model.score_inputs if item.score is None],
        },
        "services": dict(model.counts),
        "requests": {
            "total": model.requests,
            "errors": model.errors,
            "error_ratio": model.error_ratio,
            "rate_per_second": model.request_rate,
        },
        "latency_p95_seconds": p95,
        "alerts": model.alert_counts(),
    }
    now, scope = model.inputs.now_unix_nano, scope_attributes(model)
    derived = [
        *runtime_status_metrics(model),
        *gauge_metric(
            "telemetry.health.score",
            "{score}",
            "Health score of the runtime, 0 (worst) to 100 (best); absent when every input is missing.",
            [(scope, model.score)],
            now,
        ),
        *gauge_metric(
            "service.request.duration.estimate",
            "s",
            "Request latency quantile estimated from the merged duration histogram (linear interpolation).",
            [({**scope, "percentile": "95"}, p95)],
            now,
        ),
    ]
    return document, derived


def runtime_status_metrics(model: Model) -> list[Metric]:
    """``telemetry.status`` (state set pass/warn/fail) and ``telemetry.alerts.active`` per severity."""
    now, scope = model.inputs.now_unix_nano, scope_attributes(model)
    counts = model.alert_counts()
    return [
        *state_set_metric(
            "telemetry.status",
            "Overall status of the runtime: 1 for the current status, 0 for the others.",
            ("pass", "warn", "fail"),
            [(scope, model.status)],
            now,
        ),
        *gauge_metric(
            "telemetry.alerts.active",
            "{alert}",
            "Active alerts, by severity.",
            [({**scope, "severity": severity}, float(count)) for severity, count in counts.items()],
            now,
        ),
    ]
