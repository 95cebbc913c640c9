"""OTLP push (gRPC or HTTP/protobuf) through the OpenTelemetry exporters and their variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry.sdk.metrics import Counter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)

from telemetry_otel.exporters._temporality import DeltaConverter

__all__ = ["OTLPExporter", "otlp_protocol"]

Protocol = Literal["grpc", "http/protobuf"]
_PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")


def otlp_protocol(environ: Mapping[str, str] | None = None) -> Protocol:
    """The protocol from ``OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL``."""
    env = os.environ if environ is None else environ
    raw = env.get("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    value = raw.strip().lower()
    for protocol in _PROTOCOLS:
        if value == protocol:
            return protocol
    raise ValueError(f"OTLP protocol {raw!r} is not one of {', '.join(_PROTOCOLS)}")


class OTLPExporter:
    """Pushes batches with ``opentelemetry-exporter-otlp``'s metric exporter.

    Endpoint, headers, timeout, compression and certificates come from the standard
    ``OTEL_EXPORTER_OTLP_*`` variables unless given as keyword arguments (passed to the exporter).
    ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` is honoured: ``cumulative`` (default)
    sends the shared cumulative data; ``delta`` and ``lowmemory`` send monotonic sums and histograms
    as deltas (see ``_temporality``).
    """

    def __init__(self, protocol: Protocol | None = None, **exporter_options: Any) -> None:
        self.protocol = protocol or otlp_protocol()
        if self.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

            self._exporter: MetricExporter = Grpc(**exporter_options)
        elif self.protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

            self._exporter = Http(**exporter_options)
        else:
            raise ValueError(f"OTLP protocol {self.protocol!r} is not one of {', '.join(_PROTOCOLS)}")
        self.name = f"otlp({self.protocol})"
        preferred = getattr(self._exporter, "_preferred_temporality", {}) or {}
        wants_delta = preferred.get(Counter) is AggregationTemporality.DELTA
        #: Set when the temporality preference asks for delta (see ``_temporality``).
        self.delta: DeltaConverter | None = DeltaConverter() if wants_delta else None

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Send ``data`` (as deltas when preferred); raises when the exporter reports failure."""
        if self.delta is not None:
            data = self.delta.convert(data)
        result = self._exporter.export(data, timeout_millis=timeout_millis)
        if result is not MetricExportResult.SUCCESS:
            raise OSError(f"{self.name} export failed")

    def shutdown(self) -> None:
        """Shut the underlying exporter down."""
        self._exporter.shutdown()
