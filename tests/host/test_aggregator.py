"""The host aggregator over real HTTP: it takes standard OTLP (the OpenTelemetry SDK's own OTLP/HTTP
exporter), refuses what is not, answers the host picture (304 while unchanged), and retires a
worker whose process is gone with its counts kept."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from telemetry_otel.host import HostAggregator, decode_request


@pytest.fixture
def aggregator() -> Iterator[HostAggregator]:
    running = HostAggregator.start("127.0.0.1", 0)
    yield running
    running.close()


def _url(aggregator: HostAggregator, path: str) -> str:
    host, port = aggregator.address
    return f"http://{host}:{port}{path}"


def _request(
    url: str, body: bytes | None = None, content_type: str = "application/x-protobuf"
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _requests_in_picture(aggregator: HostAggregator) -> float:
    status, body = _request(_url(aggregator, "/v1/host"))
    assert status == 200
    document = json.loads(body)
    import base64

    data = decode_request(base64.b64decode(document["metrics"]))
    return sum(
        point.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "requests"
        for point in metric.data.data_points
    )


def test_the_sdk_s_own_otlp_exporter_reports_to_the_aggregator(aggregator: HostAggregator) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource({"service.instance.id": "sdk-sender"})
    )
    provider.get_meter("sender").create_counter("requests").add(5)
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(endpoint=_url(aggregator, "/v1/metrics"))
    assert exporter.export(data).name == "SUCCESS"
    exporter.shutdown()
    provider.shutdown()
    assert _requests_in_picture(aggregator) == 5
    assert [worker.instance_id for worker in aggregator.fold.workers] == ["sdk-sender"]


def test_what_is_not_a_report_is_refused_with_what_is_allowed(aggregator: HostAggregator) -> None:
    status, body = _request(_url(aggregator, "/v1/metrics"), b"{}", "application/json")
    assert status == 415
    assert json.loads(body)["allowed"] == ["application/x-protobuf"]
    status, body = _request(_url(aggregator, "/v1/metrics"), b"\xff\xfe garbage")
    assert status == 400
    assert "not an OTLP" in json.loads(body)["error"]
    status, body = _request(_url(aggregator, "/v1/state"), b'{"no": "id"}', "application/json")
    assert status == 400
    status, body = _request(_url(aggregator, "/elsewhere"))
    assert status == 404
    assert json.loads(body)["routes"] == ["/v1/metrics", "/v1/state", "/v1/host"]
    assert aggregator.refused == 2


def test_an_unchanged_picture_is_answered_304(aggregator: HostAggregator) -> None:
    status, body = _request(_url(aggregator, "/v1/host"))
    generation = json.loads(body)["generation"]
    status, body = _request(_url(aggregator, f"/v1/host?generation={generation}"))
    assert (status, body) == (304, b"")


def test_a_worker_whose_process_is_gone_is_retired_with_its_counts(aggregator: HostAggregator) -> None:
    host, port = aggregator.address
    script = textwrap.dedent(
        f"""
        import time
        from telemetry_otel import setup_telemetry
        telemetry = setup_telemetry(service_name="retire-test", host_endpoint="{host}:{port}",
                                    report_interval_millis=100)
        telemetry.get_meter("w").create_counter("requests").add(4)
        time.sleep(0.5)
        """
    )
    # cwd "/": "-c" puts the working directory first on sys.path, and the test is of the installed package.
    worker = subprocess.run(
        [sys.executable, "-c", script], timeout=60, capture_output=True, check=False, cwd="/"
    )
    assert worker.returncode == 0, worker.stderr.decode()
    deadline = time.monotonic() + 10
    while aggregator.fold.retired_workers < 1:
        assert time.monotonic() < deadline, "the exited worker was not retired"
        time.sleep(0.05)
    assert aggregator.fold.workers == []
    assert _requests_in_picture(aggregator) == 4


def test_a_gzip_report_is_taken_and_a_broken_one_refused(aggregator: HostAggregator) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression

    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource({"service.instance.id": "gzip-sender"})
    )
    provider.get_meter("sender").create_counter("requests").add(2)
    data = reader.get_metrics_data()
    assert data is not None
    exporter = OTLPMetricExporter(endpoint=_url(aggregator, "/v1/metrics"), compression=Compression.Gzip)
    assert exporter.export(data).name == "SUCCESS"
    exporter.shutdown()
    provider.shutdown()
    assert _requests_in_picture(aggregator) == 2
    request = urllib.request.Request(
        _url(aggregator, "/v1/metrics"),
        data=b"not gzip",
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 400


def test_a_report_with_problems_is_taken_and_its_problems_logged(
    aggregator: HostAggregator, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from telemetry_otel.host import encode_request

    delta = Metric("d", "", "1", Sum([NumberDataPoint({}, 1, 2, 1)], AggregationTemporality.DELTA, True))
    scope = ScopeMetrics(InstrumentationScope("s"), [delta], "")
    body = encode_request(MetricsData([ResourceMetrics(Resource({"service.instance.id": "w"}), [scope], "")]))
    generation = aggregator.generation
    status, _ = _request(_url(aggregator, "/v1/metrics"), body)
    assert status == 200
    assert aggregator.generation == generation + 1
    assert "d: delta points are not folded" in caplog.text
    assert aggregator.fold.problems == 1


def test_an_aggregator_nobody_reports_to_stops_by_itself() -> None:
    idle = HostAggregator.start("127.0.0.1", 0, idle_exit_seconds=0.3)
    try:
        assert idle.wait(10), "the idle aggregator did not stop"
    finally:
        idle.close()


def test_a_process_is_alive_until_it_exits() -> None:
    from telemetry_otel.host import process_alive

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid)
        assert not process_alive(child.pid, start_ticks=1)  # another process under a reused pid
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("https://127.0.0.1:4319", "speaks plain HTTP"),
        ("127.0.0.1", "is not host:port"),
        (":80", "is not host:port"),
    ],
)
def test_a_bad_host_endpoint_names_what_is_allowed(text: str, message: str) -> None:
    from telemetry_otel.host import parse_endpoint

    with pytest.raises(ValueError, match=message):
        parse_endpoint(text)
    assert parse_endpoint("http://[::1]:4319/") == ("::1", 4319)
