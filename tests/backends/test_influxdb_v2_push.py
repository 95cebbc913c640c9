"""The InfluxDB v2 write path (``/api/v2/write`` with org, bucket and token).

Debian packages only InfluxDB 1.x; VictoriaMetrics implements the v2 write API, so it checks the
URL, precision and line protocol for real (it does not validate tokens: the header is checked
against a server this test owns).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

import pytest

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import ExportPipeline, InfluxExporter
from telemetry_otel.instrumentation import instrument_service

if TYPE_CHECKING:
    from _support import VictoriaMetrics


def test_v2_writes_reach_a_real_v2_write_api(victoria_metrics: VictoriaMetrics) -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="v2-agent"))
    try:
        service = instrument_service("ledger", category="graph", telemetry=telemetry)
        for _ in range(7):
            service.record_request(0.01)
        exporter = InfluxExporter(victoria_metrics.http_url, org="acme", bucket="telemetry", token="t0k")
        pipeline = ExportPipeline(telemetry.export_source, [exporter])
        pipeline.export_now()
        stats = pipeline.stats()[0]
        assert (stats.sent, stats.failed_attempts, stats.rejected) == (1, 0, 0), stats
        (series,) = victoria_metrics.wait_for_export('service.requests_value{service.name="ledger"}')
        assert series["values"][-1] == 7
        assert abs(series["timestamps"][-1] / 1000 - time.time()) < 60  # seconds precision, not 1970
        pipeline.shutdown(2_000)
    finally:
        telemetry.shutdown()


class _Capture(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.path, self.headers.get("Authorization", ""), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def capture() -> Iterator[str]:
    _Capture.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_v2_sends_org_bucket_precision_and_the_token(capture: str) -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="v2-agent"))
    try:
        instrument_service("ledger", category="graph", telemetry=telemetry).record_request(0.01)
        exporter = InfluxExporter(capture, org="acme corp", bucket="b1", token="s3cret", precision="ms")
        ExportPipeline(telemetry.export_source, [exporter]).export_now()
    finally:
        telemetry.shutdown()
    (path, authorization, body) = _Capture.seen[0]
    assert path == "/api/v2/write?org=acme+corp&bucket=b1&precision=ms"
    assert authorization == "Token s3cret"
    assert b"service.requests,otel.scope.name=telemetry_otel.instrumentation" in body
