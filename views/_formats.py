"""The formats the unified endpoint serves, their content types and encoders."""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.formats import (
    OPENMETRICS_CONTENT_TYPE,
    PROMETHEUS_TEXT_CONTENT_TYPE,
    encode_graphite,
    encode_influx,
    encode_openmetrics,
    encode_prometheus_text,
)

__all__ = ["ENCODERS", "FORMATS", "HEALTH_JSON"]

#: The formats every view is served in, and their content types.
FORMATS: dict[str, str] = {
    "json": "application/json",
    "prometheus": PROMETHEUS_TEXT_CONTENT_TYPE,
    "openmetrics": OPENMETRICS_CONTENT_TYPE,
    "graphite": "text/plain; charset=utf-8",
    "influxdb": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
#: The metric formats' encoders, over a view's series.
ENCODERS: dict[str, Callable[[MetricsData], str]] = {
    "prometheus": encode_prometheus_text,
    "openmetrics": encode_openmetrics,
    "graphite": encode_graphite,
    "influxdb": encode_influx,
}
#: Content type of the health route (draft-inadarei-api-health-check).
HEALTH_JSON = "application/health+json"
