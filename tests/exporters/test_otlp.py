"""OTLP over gRPC and HTTP/protobuf reaches receivers built on opentelemetry-proto and decodes right."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any, ClassVar

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.trace import TracerProvider

from telemetry_otel import Telemetry, setup_telemetry, shutdown_telemetry
from telemetry_otel.exporters import ExportPipeline, OTLPExporter
from telemetry_otel.instrumentation import LATENCY_BUCKETS, SCOPE_NAME, Bus, instrument_service


class _GrpcReceiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.metadata: list[dict[str, str]] = []

    def Export(self, request: ExportMetricsServiceRequest, context: Any) -> Any:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[_GrpcReceiver, int]]:
    receiver = _GrpcReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(grace=None).wait(5)


class _HttpReceiver(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[ExportMetricsServiceRequest]] = []
    headers_seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).requests.append(ExportMetricsServiceRequest.FromString(body))
        type(self).headers_seen.append({key.lower(): value for key, value in self.headers.items()})
        payload = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_receiver() -> Iterator[tuple[type[_HttpReceiver], int]]:
    _HttpReceiver.requests = []
    _HttpReceiver.headers_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HttpReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _HttpReceiver, int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(5)


def _record(telemetry: Telemetry) -> None:
    llm = instrument_service("llm", category="runtime", telemetry=telemetry)
    bus = Bus("llm", telemetry=telemetry)
    bus.attach(llm)
    for seconds, failed in [(0.002, False), (0.4, True), (3.0, False)]:
        llm.record_request(seconds, failed)


def _metrics(request: ExportMetricsServiceRequest) -> dict[str, tuple[str, metrics_pb2.Metric]]:
    return {
        metric.name: (scope_metrics.scope.name, metric)
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


def _attributes(point: Any) -> dict[str, str]:
    return {attribute.key: attribute.value.string_value for attribute in point.attributes}


def _check_decoded(request: ExportMetricsServiceRequest, service_name: str) -> None:
    (resource_metrics,) = request.resource_metrics
    resource = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert resource["service.name"] == service_name
    metrics = _metrics(request)
    scope, requests = metrics["service.requests"]
    assert scope == SCOPE_NAME
    assert requests.unit == "{request}"
    assert requests.sum.is_monotonic
    assert requests.sum.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
    (point,) = requests.sum.data_points
    assert (point.as_int, _attributes(point)) == (3, {"service.name": "llm", "service.category": "runtime"})
    _, latency = metrics["service.request.duration"]
    (histogram,) = latency.histogram.data_points
    assert (histogram.count, histogram.sum, list(histogram.explicit_bounds)) == (
        3,
        3.402,
        list(LATENCY_BUCKETS),
    )
    assert sum(histogram.bucket_counts) == 3
    bus_scope, bus_requests = metrics["bus.requests"]
    assert bus_scope == "telemetry_otel.bus"
    assert [(p.as_int, _attributes(p)) for p in bus_requests.sum.data_points] == [(3, {"bus.name": "llm"})]


def test_otlp_over_grpc_decodes_to_the_expected_metrics_resource_and_scope(
    telemetry: Telemetry, grpc_receiver: tuple[_GrpcReceiver, int]
) -> None:
    receiver, port = grpc_receiver
    _record(telemetry)
    pipeline = ExportPipeline(
        telemetry.export_source,
        [OTLPExporter("grpc", endpoint=f"http://127.0.0.1:{port}", insecure=True)],
        timeout_millis=5_000,
    )
    pipeline.export_now()
    pipeline.shutdown(5_000)
    assert pipeline.stats()[0].sent == 2  # the cycle, and the final export at shutdown
    assert len(receiver.requests) == 2
    _check_decoded(receiver.requests[0], "test-agent")


def test_otlp_over_http_decodes_to_the_expected_metrics_resource_and_scope(
    telemetry: Telemetry, http_receiver: tuple[type[_HttpReceiver], int]
) -> None:
    receiver, port = http_receiver
    _record(telemetry)
    exporter = OTLPExporter("http/protobuf", endpoint=f"http://127.0.0.1:{port}/v1/metrics")
    pipeline = ExportPipeline(telemetry.export_source, [exporter], timeout_millis=5_000)
    pipeline.export_now()
    assert len(receiver.requests) == 1
    assert receiver.headers_seen[0]["content-type"] == "application/x-protobuf"
    _check_decoded(receiver.requests[0], "test-agent")
    pipeline.shutdown(5_000)


def test_standard_otlp_environment_variables_configure_the_push(
    monkeypatch: pytest.MonkeyPatch, http_receiver: tuple[type[_HttpReceiver], int]
) -> None:
    receiver, port = http_receiver
    for name, value in {
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cret",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
        "OTEL_METRIC_EXPORT_INTERVAL": "3600000",
        "OTEL_SERVICE_NAME": "env-agent",
    }.items():
        monkeypatch.setenv(name, value)
    shutdown_telemetry()
    telemetry = setup_telemetry(set_global=False)
    try:
        service = instrument_service("llm", category="runtime", telemetry=telemetry)
        service.record_request(0.1)
        service.record_request(0.2)
        telemetry.exports.export_now()
        service.record_request(0.3)
        telemetry.exports.export_now()
    finally:
        shutdown_telemetry()
    assert len(receiver.requests) == 3  # two cycles and the final export at shutdown
    assert receiver.headers_seen[0]["x-api-key"] == "s3cret"
    _check_delta(receiver.requests, "env-agent")


def _check_delta(requests: list[ExportMetricsServiceRequest], service_name: str) -> None:
    first, second = (_metrics(request) for request in requests[:2])
    resource = {a.key: a.value.string_value for a in requests[0].resource_metrics[0].resource.attributes}
    assert resource["service.name"] == service_name
    for decoded, expected_count in ((first, 2), (second, 1)):
        _, counter = decoded["service.requests"]
        assert counter.sum.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
        assert [p.as_int for p in counter.sum.data_points] == [expected_count]
        _, latency = decoded["service.request.duration"]
        assert latency.histogram.aggregation_temporality == metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
        assert [p.count for p in latency.histogram.data_points] == [expected_count]
    _, uptime = second["service.uptime"]  # gauges are never converted
    assert uptime.WhichOneof("data") == "gauge"
    second_point = second["service.request.duration"][1].histogram.data_points[0]
    assert (second_point.max, second_point.sum) == (0.3, pytest.approx(0.3))  # a new maximum: exact


def test_a_collector_that_is_down_never_reaches_the_application(telemetry: Telemetry) -> None:
    _record(telemetry)
    exporter = OTLPExporter("http/protobuf", endpoint="http://127.0.0.1:9/v1/metrics", timeout=1)
    pipeline = ExportPipeline(telemetry.export_source, [exporter], timeout_millis=2_000)
    pipeline.export_now()  # does not raise
    stats = pipeline.stats()[0]
    assert (stats.sent, stats.failed_attempts, stats.buffered) == (0, 1, 1)
    pipeline.shutdown(2_000)


def test_otlp_protocol_must_be_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="OTLP protocol 'http/json' is not one of grpc, http/protobuf"):
        OTLPExporter()


def test_exemplars_reach_the_receiver_with_the_span_ids(
    telemetry: Telemetry, grpc_receiver: tuple[_GrpcReceiver, int]
) -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    receiver, port = grpc_receiver
    service = instrument_service("llm", category="runtime", telemetry=telemetry)
    with trace.get_tracer("otlp-exemplars").start_as_current_span("call") as span:
        service.record_request(0.02)
    pipeline = ExportPipeline(
        telemetry.export_source,
        [OTLPExporter("grpc", endpoint=f"http://127.0.0.1:{port}", insecure=True)],
        timeout_millis=5_000,
    )
    pipeline.export_now()
    pipeline.shutdown(5_000)
    _, duration = _metrics(receiver.requests[0])["service.request.duration"]
    [point] = duration.histogram.data_points
    [exemplar] = point.exemplars
    ids = span.get_span_context()
    assert (exemplar.trace_id, exemplar.span_id, exemplar.as_double) == (
        ids.trace_id.to_bytes(16, "big"),
        ids.span_id.to_bytes(8, "big"),
        0.02,
    )
