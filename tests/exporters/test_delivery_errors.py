"""How each exporter classifies a backend's answer (retry, retry after, drop for good), and the
odd paths of delivery: TLS settings, a gRPC status with ``RetryInfo``, bad URLs, a failing hook."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import ExportDemand, ExportPipeline, OTLPExporter, PermanentExportError
from telemetry_otel.exporters._deadline import (
    Deadline,
    ExportDeadlineError,
    RetryableExportError,
    parse_retry_after,
    post,
)
from telemetry_otel.views._reliability import exporter_health


def _empty() -> MetricsData:
    return MetricsData(resource_metrics=[])


@pytest.mark.parametrize(
    ("status", "retry_after", "error", "seconds"),
    [
        (429, "7", RetryableExportError, 7.0),
        (503, None, RetryableExportError, None),
        (500, None, RetryableExportError, None),
        (400, None, PermanentExportError, None),
    ],
)
def test_otlp_http_answers_are_retried_or_dropped_as_the_specification_says(
    hostile: Callable[..., Any], status: int, retry_after: str | None, error: type, seconds: float | None
) -> None:
    server = hostile("status", status=status, retry_after=retry_after)
    exporter = OTLPExporter("http/protobuf", endpoint=server.url + "/v1/metrics")
    try:
        with pytest.raises(error) as raised:
            exporter.export(_empty(), 2_000)
    finally:
        exporter.shutdown()
    if isinstance(raised.value, RetryableExportError):
        assert raised.value.retry_after == seconds


def test_an_https_endpoint_gets_a_verifying_tls_context_once() -> None:
    exporter = OTLPExporter("http/protobuf", endpoint="https://127.0.0.1:1/v1/metrics")
    try:
        client = exporter._exporter._client  # type: ignore[attr-defined]
        context = exporter._tls_context(client)
        assert context is not None
        assert context.check_hostname
        assert exporter._tls_context(client) is context
        session = client._transport._session
        session.verify = False
        exporter._tls = None
        assert not exporter._tls_context(client).check_hostname  # type: ignore[union-attr]
        with pytest.raises(ConnectionRefusedError):  # nobody listens on port 1: refused, fast
            exporter.send(b"", Deadline(1.0))
    finally:
        exporter.shutdown()


class _Refusing(metrics_service_pb2_grpc.MetricsServiceServicer):
    """Answers every export with ``code`` (and a ``RetryInfo`` of 2.5 s when ``retry``)."""

    def __init__(self, code: grpc.StatusCode, *, retry: bool = False) -> None:
        self.code, self.retry = code, retry

    def Export(self, request: Any, context: Any) -> Any:
        if self.retry:
            info = RetryInfo(retry_delay=Duration(seconds=2, nanos=500_000_000))
            context.set_trailing_metadata((("google.rpc.retryinfo-bin", info.SerializeToString()),))
        context.abort(self.code, "no")


@pytest.fixture
def grpc_refusing() -> Iterator[Callable[..., int]]:
    servers: list[Any] = []

    def start(code: grpc.StatusCode, *, retry: bool = False) -> int:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Refusing(code, retry=retry), server)
        port: int = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.stop(grace=None).wait(5)


def test_otlp_grpc_statuses_are_retried_with_retry_info_or_dropped(grpc_refusing: Callable[..., int]) -> None:
    cases = [
        (grpc.StatusCode.RESOURCE_EXHAUSTED, True, RetryableExportError, 2.5),
        (grpc.StatusCode.UNAVAILABLE, False, RetryableExportError, None),
        (grpc.StatusCode.INVALID_ARGUMENT, False, PermanentExportError, None),
    ]
    for code, retry, error, seconds in cases:
        port = grpc_refusing(code, retry=retry)
        exporter = OTLPExporter("grpc", endpoint=f"127.0.0.1:{port}", insecure=True)
        try:
            with pytest.raises(error) as raised:
                exporter.export(_empty(), 5_000)
        finally:
            exporter.shutdown()
        if isinstance(raised.value, RetryableExportError):
            assert raised.value.retry_after == seconds, code


def test_post_refuses_what_is_not_an_http_url_and_sends_the_query(hostile: Callable[..., Any]) -> None:
    with pytest.raises(ValueError, match="is not an http"):
        post("ftp://host/x", b"", {}, Deadline(1.0))
    server = hostile("status", status=204)
    answer = post(server.url + "/write?db=x&precision=ms", b"m v=1", {}, Deadline(2.0))
    assert answer.status == 204
    with pytest.raises(ExportDeadlineError):
        post(server.url, b"", {}, Deadline(0.0))


def test_connecting_to_a_name_tries_its_addresses() -> None:
    with pytest.raises(ConnectionRefusedError):  # localhost resolves; nobody listens on port 1
        post("http://localhost:1/", b"", {}, Deadline(2.0))


def test_retry_after_dates_that_do_not_parse_are_ignored() -> None:
    assert parse_retry_after("Someday, 99 Foo 1994") is None
    assert parse_retry_after("nan") is None


def test_a_failing_derived_series_hook_never_stops_the_export(caplog: pytest.LogCaptureFixture) -> None:
    received: list[MetricsData] = []

    class _Keep:
        name = "keep"
        derived_series = True

        def export(self, data: MetricsData, timeout_millis: float) -> None:
            received.append(data)

        def shutdown(self) -> None:
            pass

    def derive(data: MetricsData) -> MetricsData | None:
        raise RuntimeError("hook broke")

    pipeline = ExportPipeline(lambda demand: _empty(), [_Keep()], interval_millis=60_000, derive=derive)
    with caplog.at_level(logging.ERROR, logger="telemetry_otel.exporters"):
        pipeline.export_now()
    pipeline.shutdown(1_000)
    assert len(received) == 2
    assert "derived series for export failed" in caplog.text


def test_a_failing_views_hook_is_logged_and_the_collection_is_pushed_without_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    received: list[MetricsData] = []

    class _Keep:
        name = "keep"
        derived_series = True

        def export(self, data: MetricsData, timeout_millis: float) -> None:
            received.append(data)

        def shutdown(self) -> None:
            pass

    telemetry = Telemetry(TelemetryConfig(service_name="hooked", live_min_interval_millis=0), [_Keep()])

    def broken(served: Any) -> Any:
        raise RuntimeError("views broke")

    telemetry.set_export_series("broken", broken)
    try:
        with caplog.at_level(logging.ERROR, logger="telemetry_otel"):
            telemetry.exports.export_now()
        telemetry.set_export_series("broken", None)
        telemetry.exports.export_now()
    finally:
        telemetry.shutdown(1_000)
    assert len(received) == 3
    assert "derived series for export failed; pushed without them" in caplog.text


def test_the_reliability_view_reports_each_exporter(telemetry: Telemetry) -> None:
    from telemetry_otel.views._build import build_model
    from telemetry_otel.views._inputs import ViewInputs
    from telemetry_otel.views._thresholds import Thresholds

    gate = threading.Event()

    class _Down:
        name = "down"

        def export(self, data: MetricsData, timeout_millis: float) -> None:
            raise ConnectionRefusedError("down")

        def shutdown(self) -> None:
            gate.set()

    class _Up:
        name = "up"

        def export(self, data: MetricsData, timeout_millis: float) -> None:
            pass

        def shutdown(self) -> None:
            pass

    runtime = Telemetry(TelemetryConfig(service_name="health", live_min_interval_millis=0), [_Down(), _Up()])
    try:
        runtime.exports.export_now()
        served = runtime.cycle.get_blocking(0.0, 5.0)
        inputs = ViewInputs(
            collection=served.collection,
            previous=None,
            thresholds=Thresholds(),
            now_unix_nano=served.collection.time_unix_nano,
            category=None,
            service=None,
        )
        health = exporter_health(build_model(inputs))
    finally:
        runtime.shutdown(1_000)
    assert set(health) == {"down", "up"}
    assert health["up"]["status"] == "pass"
    assert health["up"]["sent"] == 1
    assert health["down"]["status"] in ("warn", "fail")
    assert health["down"]["queue_length"] == 1
    assert health["down"]["failed"] >= 1
    assert health["down"]["dropped_by_reason"]["shutdown"] == 0


def test_a_source_demand_is_passed_through(telemetry: Telemetry) -> None:
    seen: list[ExportDemand] = []

    def source(demand: ExportDemand) -> MetricsData:
        seen.append(demand)
        return _empty()

    pipeline = ExportPipeline(source, [], interval_millis=1_000)
    pipeline.export_now()
    pipeline.shutdown(100)
    assert seen == [ExportDemand(0.0, 30.0, False)]
