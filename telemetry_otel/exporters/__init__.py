"""Push exporters: OTLP, Graphite plaintext and InfluxDB line protocol, each on a worker of its own.

Enable them with ``OTEL_METRICS_EXPORTER`` (``otlp``, ``graphite``, ``influxdb``, comma-separated)
or pass exporter objects to ``setup_telemetry(exporters=[...])``.
"""

from __future__ import annotations

from telemetry_otel.exporters._env import EXPORTER_NAMES, exporters_from_env
from telemetry_otel.exporters._graphite import GraphiteExporter
from telemetry_otel.exporters._influx import InfluxExporter
from telemetry_otel.exporters._otlp import OTLPExporter
from telemetry_otel.exporters._pipeline import ExportDemand, ExportPipeline, MetricsSource
from telemetry_otel.exporters._retry import (
    DeliveryStats,
    PermanentExportError,
    PushExporter,
    RetryPolicy,
)

__all__ = [
    "EXPORTER_NAMES",
    "DeliveryStats",
    "ExportDemand",
    "ExportPipeline",
    "GraphiteExporter",
    "InfluxExporter",
    "MetricsSource",
    "OTLPExporter",
    "PermanentExportError",
    "PushExporter",
    "RetryPolicy",
    "exporters_from_env",
]
