"""Push exporters export once per host, and workers that stop gracefully report their final counts.

Real servers with 4 workers (gunicorn with Uvicorn workers, with and without ``--preload``, and
``uvicorn --workers``) push OTLP/HTTP to a receiver on loopback. Workers report
only when they start and when they stop (a report interval of ten minutes), and the exporter's
interval is as long: every count the receiver gets travelled in a worker's final report, through
the host aggregator's one final export at shutdown. No worker exports on its own.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

pytestmark = pytest.mark.backend

LONG_MILLIS = "600000"


class _OtlpReceiver:
    """An OTLP/HTTP receiver: every request body, parsed with the OpenTelemetry protobuf classes."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                received.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_OtlpReceiver]:
    listening = _OtlpReceiver()
    yield listening
    listening.close()


def _instance(resource_metrics: Any) -> str:
    return next(
        a.value.string_value for a in resource_metrics.resource.attributes if a.key == "service.instance.id"
    )


def _requests(resource_metrics: Any) -> float:
    return sum(
        point.as_int or point.as_double
        for scope in resource_metrics.scope_metrics
        for metric in scope.metrics
        if metric.name == "service.requests"
        for point in metric.sum.data_points
    )


@pytest.mark.parametrize("kind", ["gunicorn", "gunicorn-preload", "uvicorn"])
def test_final_counts_of_graceful_workers_are_exported_once_for_the_host(
    kind: str, start_server: Callable[..., Any], receiver: _OtlpReceiver
) -> None:
    server = start_server(
        kind,
        TELEMETRY_OTEL_REPORT_INTERVAL_MILLIS=LONG_MILLIS,
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=f"http://127.0.0.1:{receiver.port}/v1/metrics",
        OTEL_METRIC_EXPORT_INTERVAL=LONG_MILLIS,
    )
    host_instance = server.host_document()
    served_by = set()
    for _ in range(200):
        status, body = _get(f"{server.url}/work")
        assert status == 200
        served_by.add(int(body))
    assert len(served_by) > 1
    assert receiver.requests == []  # nothing exported yet: the interval is ten minutes
    aggregator = int(host_instance["aggregator_pid"])
    # SIGTERM to the process group: the server stops its workers gracefully (uvicorn ends with the
    # signal re-raised, status -15); the aggregator hears it too (gunicorn's) and waits for them.
    assert server.stop() in (0, -signal.SIGTERM), server.tail()
    if kind == "uvicorn":  # the aggregator a worker started lives in a session of its own
        os.kill(aggregator, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{aggregator}") and _state(aggregator) != "Z":
        assert time.monotonic() < deadline, "the aggregator did not stop"
        time.sleep(0.05)

    assert len(receiver.requests) == 1, "one final export for the host, none per worker"
    [request] = receiver.requests
    [resource_metrics] = request.resource_metrics
    worker_ids = {worker["instance_id"] for worker in host_instance["workers"]}
    assert _instance(resource_metrics) not in worker_ids  # the host's identity, not a worker's
    assert _requests(resource_metrics) == 200


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _get(url: str) -> tuple[int, bytes]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()
