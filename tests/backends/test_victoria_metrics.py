"""One ``MetricsData``, three ingestions into a real VictoriaMetrics, the same values out of each.

VictoriaMetrics stores Graphite plaintext (tagged: the tags become labels), Influx line protocol
(``<measurement>_<field>`` plus a ``db`` label) and Prometheus text under each protocol's own naming.
It accepts malformed input silently, so this is a value cross-check of the three encoders and of the
two push exporters, not a validation of their syntax (InfluxDB, carbon and promtool do that).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import ExportPipeline, GraphiteExporter, InfluxExporter
from telemetry_otel.formats import PROMETHEUS_TEXT_CONTENT_TYPE, encode_prometheus_text
from telemetry_otel.instrumentation import SCOPE_NAME, gauge, instrument_service

if TYPE_CHECKING:
    from _support import VictoriaMetrics

pytestmark = pytest.mark.backend

SERVICE = "vm-cross-check"
SCOPE_VERSION_LABEL = "otel_scope_version"


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name="victoria-metrics-cross-check"))
    yield runtime
    runtime.shutdown()


def _point(data: MetricsData, name: str) -> Any:
    [point] = [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        if (point.attributes or {}).get("service.name") == SERVICE
    ]
    return point


def _only(victoria_metrics: VictoriaMetrics, match: str) -> dict[str, Any]:
    [series] = victoria_metrics.wait_for_export(match)
    return series


def test_graphite_influx_and_prometheus_ingestion_agree(
    victoria_metrics: VictoriaMetrics, telemetry: Telemetry
) -> None:
    service = instrument_service(
        SERVICE,
        category="runtime",
        snapshot=lambda: {"vm.queue.depth": 17.5},
        metrics=[gauge("vm.queue.depth", "{item}", "Requests waiting.")],
        telemetry=telemetry,
    )
    for latency in (0.001, 0.01, 0.1, 1.0, 2.5):
        service.record_request(latency)
    data = asyncio.run(telemetry.collect()).metrics
    requests, depth = _point(data, "service.requests"), _point(data, "vm.queue.depth")
    assert (requests.value, depth.value) == (5, 17.5)

    # Graphite (tagged, TCP) and Influx (HTTP /write) through the real pipeline, with the same batch.
    # The same batch for each cycle; none at shutdown.
    pipeline = ExportPipeline(
        lambda demand: MetricsData(resource_metrics=[]) if demand.final else data,
        [
            GraphiteExporter(*victoria_metrics.graphite_address, tagged=True, resource_tags=()),
            InfluxExporter(victoria_metrics.influx_url, database="x", resource_tags=()),
        ],
    )
    try:
        pipeline.export_now()
        for stats in pipeline.stats():
            assert (stats.sent, stats.failed_attempts, stats.rejected, stats.last_error) == (1, 0, 0, None)
    finally:
        pipeline.shutdown()
    # Prometheus text, as /metrics serves it, through VictoriaMetrics' import API.
    response = httpx2.post(
        f"{victoria_metrics.http_url}/api/v1/import/prometheus",
        content=encode_prometheus_text(data).encode(),
        headers={"Content-Type": PROMETHEUS_TEXT_CONTENT_TYPE},
        timeout=10.0,
    )
    assert response.status_code == 204, response.text

    identity = {"service.name": SERVICE, "service.category": "runtime", "otel.scope.name": SCOPE_NAME}
    seconds = {
        name: point.time_unix_nano // 1_000_000_000 * 1000 for name, point in (("c", requests), ("g", depth))
    }

    graphite_counter = _only(victoria_metrics, f'{{__name__="service.requests",service.name="{SERVICE}"}}')
    assert graphite_counter["metric"] == {"__name__": "service.requests", **identity}
    assert (graphite_counter["values"], graphite_counter["timestamps"]) == ([5], [seconds["c"]])
    graphite_gauge = _only(victoria_metrics, f'{{__name__="vm.queue.depth",service.name="{SERVICE}"}}')
    assert graphite_gauge["metric"] == {"__name__": "vm.queue.depth", **identity}
    assert (graphite_gauge["values"], graphite_gauge["timestamps"]) == ([17.5], [seconds["g"]])

    influx_counter = _only(
        victoria_metrics, f'{{__name__="service.requests_value",service.name="{SERVICE}"}}'
    )
    assert influx_counter["metric"] == {"__name__": "service.requests_value", "db": "x", **identity}
    assert (influx_counter["values"], influx_counter["timestamps"]) == ([5], [seconds["c"]])
    influx_gauge = _only(victoria_metrics, f'{{__name__="vm.queue.depth_value",service.name="{SERVICE}"}}')
    assert influx_gauge["metric"] == {"__name__": "vm.queue.depth_value", "db": "x", **identity}
    assert (influx_gauge["values"], influx_gauge["timestamps"]) == ([17.5], [seconds["g"]])

    prometheus_identity = {
        "service_name": SERVICE,
        "service_category": "runtime",
        "otel_scope_name": SCOPE_NAME,
        SCOPE_VERSION_LABEL: _scope_version(data),
    }
    prometheus_counter = _only(victoria_metrics, f'service_requests_total{{service_name="{SERVICE}"}}')
    assert prometheus_counter["metric"] == {"__name__": "service_requests_total", **prometheus_identity}
    assert prometheus_counter["values"] == [5]
    prometheus_gauge = _only(victoria_metrics, f'vm_queue_depth{{service_name="{SERVICE}"}}')
    assert prometheus_gauge["metric"] == {"__name__": "vm_queue_depth", **prometheus_identity}
    assert prometheus_gauge["values"] == [17.5]

    # The query API agrees with the export API, under each naming.
    for promql, expected in (
        (f'service_requests_total{{service_name="{SERVICE}"}}', 5.0),
        (f'{{__name__="service.requests",service.name="{SERVICE}"}}', 5.0),
        (f'{{__name__="service.requests_value",db="x",service.name="{SERVICE}"}}', 5.0),
        (f'vm_queue_depth{{service_name="{SERVICE}"}}', 17.5),
        (f'{{__name__="vm.queue.depth",service.name="{SERVICE}"}}', 17.5),
        (f'{{__name__="vm.queue.depth_value",db="x",service.name="{SERVICE}"}}', 17.5),
    ):
        [sample] = victoria_metrics.wait_for_query(promql)
        assert float(sample["value"][1]) == expected, promql


def _scope_version(data: MetricsData) -> str:
    [version] = {
        scope_metrics.scope.version
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == SCOPE_NAME
    }
    assert version
    return version
