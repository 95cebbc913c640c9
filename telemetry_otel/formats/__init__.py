"""Encoders from OTel ``MetricsData`` to wire formats."""

from __future__ import annotations

from telemetry_otel.formats._agent import label_agent
from telemetry_otel.formats._graphite import encode_graphite
from telemetry_otel.formats._influx import encode_influx
from telemetry_otel.formats._negotiation import encode_exposition, negotiate_exposition, wants_gzip
from telemetry_otel.formats._openmetrics import OPENMETRICS_CONTENT_TYPE, encode_openmetrics
from telemetry_otel.formats._prometheus import PROMETHEUS_TEXT_CONTENT_TYPE, encode_prometheus_text
from telemetry_otel.formats._prometheus_core import (
    prometheus_bucket_bound,
    prometheus_label_name,
    prometheus_metric_name,
)

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_TEXT_CONTENT_TYPE",
    "encode_exposition",
    "encode_graphite",
    "encode_influx",
    "encode_openmetrics",
    "encode_prometheus_text",
    "label_agent",
    "negotiate_exposition",
    "prometheus_bucket_bound",
    "prometheus_label_name",
    "prometheus_metric_name",
    "wants_gzip",
]
