"""OTLP push (gRPC or HTTP/protobuf) through the OpenTelemetry exporters and their variables."""

from __future__ import annotations

import functools
import os
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Literal

from opentelemetry.sdk.metrics import Counter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricsData,
)

from telemetry_otel.exporters._deadline import (
    Deadline,
    ExportDeadlineError,
    RetryableExportError,
    parse_retry_after,
    post,
)
from telemetry_otel.exporters._retry import PermanentExportError
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

    Batches are encoded once, when queued (``encode``: the ``ExportMetricsServiceRequest`` bytes,
    deltas computed then, so a resent batch keeps its timestamps and temporality), and each attempt
    (``send``) is ended by its deadline: over HTTP by this package's own client (the exporter's
    endpoint, headers, compression and certificates), over gRPC by the call's deadline and a
    cancellation when the deadline is moved earlier (shutdown). The OTLP exporter's own retry loop
    is not used: the queue retries, with ``Retry-After`` (HTTP) and ``RetryInfo`` (gRPC) honoured.
    """

    #: OTLP receivers get the collection's own series; derived view series are not added.
    derived_series = False

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
        self._options = dict(exporter_options)
        self._exporter: MetricExporter = self._make_exporter()
        self.name = f"otlp({self.protocol})"
        preferred = getattr(self._exporter, "_preferred_temporality", {}) or {}
        wants_delta = preferred.get(Counter) is AggregationTemporality.DELTA
        #: Set when the temporality preference asks for delta (see ``_temporality``).
        self.delta: DeltaConverter | None = DeltaConverter() if wants_delta else None
        #: Batches are deltas: a dropped one loses its change for good (counted apart).
        self.delta_batches = self.delta is not None
        self._tls: ssl.SSLContext | None = None

    def _make_exporter(self) -> MetricExporter:
        """The SDK's OTLP exporter of the protocol, with the options given (its channel or session)."""
        if self.protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

            return Grpc(**self._options)
        if self.protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

            return Http(**self._options)
        raise ValueError(f"OTLP protocol {self.protocol!r} is not one of {', '.join(_PROTOCOLS)}")

    def reset_after_fork(self) -> None:
        """A forked child gets a channel or session of its own (never the parent's connection) and,
        for deltas, starts from its own zero counts."""
        self._exporter = self._make_exporter()
        if self.delta is not None:
            self.delta = DeltaConverter()

    def encode(self, data: MetricsData) -> bytes:
        """The batch as ``ExportMetricsServiceRequest`` bytes (as deltas when preferred)."""
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        if self.delta is not None:
            data = self.delta.convert(data)
        return bytes(encode_metrics(data).SerializeToString())

    def send(self, payload: bytes, deadline: Deadline) -> None:
        """Send an encoded batch, ended by ``deadline``; raises on failure."""
        if self.protocol == "grpc":
            self._send_grpc(payload, deadline)
        else:
            self._send_http(payload, deadline)

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Encode and send ``data`` within ``timeout_millis``."""
        self.send(self.encode(data), Deadline(timeout_millis / 1000))

    def _send_http(self, payload: bytes, deadline: Deadline) -> None:
        client: Any = getattr(self._exporter, "_client")  # noqa: B009 - the exporter's resolved settings
        headers = {**dict(client._headers), "Content-Type": "application/x-protobuf"}
        body = client._compress(payload)
        answer = post(client._endpoint, body, headers, deadline, context=self._tls_context(client))
        if 200 <= answer.status < 300:
            return
        message = (
            f"HTTP {answer.status}: {answer.body[:200].decode('utf-8', 'replace').strip() or answer.reason}"
        )
        if answer.status in (429, 502, 503, 504):
            raise RetryableExportError(message, parse_retry_after(answer.headers.get("retry-after")))
        if 400 <= answer.status < 500:
            raise PermanentExportError(message)
        raise RetryableExportError(message)

    def _tls_context(self, client: Any) -> ssl.SSLContext | None:
        if not str(client._endpoint).startswith("https:"):
            return None
        if self._tls is None:
            session = getattr(getattr(client, "_transport", None), "_session", None)
            verify = getattr(session, "verify", True)
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            cert = getattr(session, "cert", None)
            if isinstance(cert, tuple):
                context.load_cert_chain(cert[0], cert[1])
            elif isinstance(cert, str):
                context.load_cert_chain(cert)
            self._tls = context
        return self._tls

    def _send_grpc(self, payload: bytes, deadline: Deadline) -> None:
        import grpc  # type: ignore[import-untyped]
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        exporter: Any = self._exporter
        request = ExportMetricsServiceRequest.FromString(payload)
        done = threading.Event()
        call = exporter._client.Export.future(
            request, metadata=exporter._headers, timeout=deadline.check("sending")
        )
        call.add_done_callback(lambda _: done.set())
        while not done.wait(min(0.05, max(0.001, deadline.remaining()))):
            if deadline.remaining() <= 0:  # the deadline moved earlier (shutdown): cancel the call
                call.cancel()
                raise ExportDeadlineError(f"{self.name}: no answer within the deadline")
        try:
            call.result()
        except grpc.RpcError as error:
            code = error.code()
            message = f"gRPC {code.name if code else 'error'}: {error.details()}"
            if (
                code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
                and deadline.remaining() <= 0.01
            ):
                raise ExportDeadlineError(message) from None
            if code in _grpc_retryable():
                raise RetryableExportError(message, _retry_info(error)) from None
            raise PermanentExportError(message) from None

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


@functools.cache
def _grpc_retryable() -> frozenset[Any]:
    """The gRPC status codes the OTLP specification says to retry."""
    import grpc

    codes = grpc.StatusCode
    return frozenset(
        {
            codes.CANCELLED,
            codes.DEADLINE_EXCEEDED,
            codes.RESOURCE_EXHAUSTED,
            codes.ABORTED,
            codes.OUT_OF_RANGE,
            codes.UNAVAILABLE,
            codes.DATA_LOSS,
        }
    )


def _retry_info(error: Any) -> float | None:
    """The ``RetryInfo`` delay of a gRPC error (seconds), when the server sent one."""
    try:
        from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]

        raw = dict(error.trailing_metadata() or ()).get("google.rpc.retryinfo-bin")
        if raw is None:
            return None
        info = RetryInfo()
        info.ParseFromString(raw)
        return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    except Exception:
        return None
