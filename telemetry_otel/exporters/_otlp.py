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
#: ``opentelemetry-exporter-otlp``'s own default bound on one export (``OTEL_EXPORTER_OTLP_TIMEOUT``).
OTLP_DEFAULT_TIMEOUT_SECONDS = 10.0
_TIMEOUT_VARIABLES = ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")


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

    Bound on one export: ``opentelemetry-exporter-otlp`` ignores the timeout given to each export
    and retries within its own ``timeout`` (10 s unless ``OTEL_EXPORTER_OTLP_TIMEOUT`` or
    ``OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`` says otherwise). When neither a ``timeout`` argument nor
    one of those variables is given, this exporter passes ``timeout`` = the export timeout
    (``export_timeout_millis``, else ``OTEL_METRIC_EXPORT_TIMEOUT``, 30 s by default) capped at
    those 10 s, so one export never outlives the export timeout and ``shutdown()`` stays bounded.
    ``environ`` is where those variables are read (default ``os.environ``).
    """

    def __init__(
        self,
        protocol: Protocol | None = None,
        *,
        export_timeout_millis: float | None = None,
        environ: Mapping[str, str] | None = None,
        **exporter_options: Any,
    ) -> None:
        env = os.environ if environ is None else environ
        self.protocol = protocol or otlp_protocol(env)
        if exporter_options.get("timeout") is None and not any(
            env.get(name, "").strip() for name in _TIMEOUT_VARIABLES
        ):
            exporter_options["timeout"] = _export_timeout_seconds(export_timeout_millis, env)
        #: The ``timeout`` (s) handed to the OTLP exporter: the caller's, or the bound computed here;
        #: None when an ``OTEL_EXPORTER_OTLP_*TIMEOUT`` variable sets it.
        self.timeout_seconds: float | None = exporter_options.get("timeout")
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


def _export_timeout_seconds(explicit_millis: float | None, env: Mapping[str, str]) -> float:
    """The export timeout in seconds, at most the OTLP exporter's own 10 s default."""
    if explicit_millis is None:
        raw = env.get("OTEL_METRIC_EXPORT_TIMEOUT", "").strip()
        try:
            explicit_millis = float(raw) if raw else 30_000.0
        except ValueError:
            raise ValueError(f"OTEL_METRIC_EXPORT_TIMEOUT={raw!r} is not a number of milliseconds") from None
    if not explicit_millis > 0:
        raise ValueError(
            f"the export timeout must be a positive number of milliseconds, got {explicit_millis!r}"
        )
    return min(explicit_millis / 1000, OTLP_DEFAULT_TIMEOUT_SECONDS)
