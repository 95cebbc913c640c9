"""The Graphite exporter against a real carbon-cache: tagged and hierarchical series, TCP and UDP.

The expected series names are written here from the encoder's documented layout, not produced by it:
tagged ``<name>[.<field>];k=v;...`` with the scope tag, hierarchical ``[prefix.]<name>.<key>.<value>...
[.<field>]`` with every node sanitised to ``[A-Za-z0-9_-]``. Each value is read back from carbon's
whisper files (the 1 s archive holds the value of each second exactly) at the point's collection second.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.exporters import ExportPipeline, GraphiteExporter
from telemetry_otel.exporters._graphite import UDP_DATAGRAM_BYTES
from telemetry_otel.formats import encode_graphite
from telemetry_otel.instrumentation import SCOPE_NAME, InstrumentedService, counter, gauge, instrument_service

if TYPE_CHECKING:
    from _support import Carbon

pytestmark = pytest.mark.backend

# What carbon logs when it cannot read a line or a tagged name (it then ignores the line or stores
# the series under its raw name).
CARBON_COMPLAINTS = ("invalid line received", "Error parsing metric")


@pytest.fixture
def telemetry(request: pytest.FixtureRequest) -> Iterator[Telemetry]:
    runtime = Telemetry(TelemetryConfig(service_name=f"carbon-{request.node.name}"[:60]))
    yield runtime
    runtime.shutdown()


def _service(telemetry: Telemetry, name: str, category: str) -> InstrumentedService:
    service = instrument_service(
        name,
        category=category,
        snapshot=lambda: {"carbon.queue.depth": 12.25, "carbon.cache.hits": 9},
        metrics=[
            gauge("carbon.queue.depth", "{item}", "Requests waiting."),
            counter("carbon.cache.hits", "{request}", "Cache hits since start."),
        ],
        telemetry=telemetry,
    )
    for seconds in (0.0004, 0.003, 0.02, 0.02, 0.2, 1.5, 75.0):
        service.record_request(seconds)
    service.record_request(0.05, error=True)
    return service


def _point(data: MetricsData, name: str, service: str) -> Any:
    [point] = [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        if (point.attributes or {}).get("service.name") == service
    ]
    return point


def _export_once(telemetry: Telemetry, exporter: GraphiteExporter) -> MetricsData:
    """Collect once and send that collection through a pipeline cycle; the data sent."""
    data = asyncio.run(telemetry.collect()).metrics
    # That collection for the cycle; none at shutdown.
    pipeline = ExportPipeline(
        lambda demand: MetricsData(resource_metrics=[]) if demand.final else data, [exporter]
    )
    try:
        pipeline.export_now()
        [stats] = pipeline.stats()
        assert (stats.sent, stats.failed_attempts, stats.buffered, stats.last_error) == (1, 0, 0, None), stats
    finally:
        pipeline.shutdown()
    return data


def _read_one(carbon: Carbon, name: str, point: Any) -> float:
    """The single value of series ``name``, stored at the second its data ``point`` was collected."""
    [(stamp, value)] = carbon.wait_for_series(name)
    assert stamp == point.time_unix_nano // 1_000_000_000, (name, stamp, point.time_unix_nano)
    return value


def _wait_for_points(carbon: Carbon, expected: dict[str, tuple[int, float]], timeout: float = 10.0) -> None:
    """Wait until every series holds its expected (second, value) point (runtime-wide series such as
    ``telemetry.collections`` are shared by the tests: older points of theirs may be there too)."""

    def missing() -> list[str]:
        absent = []
        for name, (stamp, value) in expected.items():
            if (stamp, value) not in carbon.read_series(name, since=stamp):
                absent.append(name)
        return absent

    deadline = time.monotonic() + timeout
    while absent := missing():
        assert time.monotonic() < deadline, f"{len(absent)} series without their point, such as {absent[:3]}"
        time.sleep(0.1)


def _cumulative(point: HistogramDataPoint) -> list[tuple[float | None, int]]:
    """(bound, cumulative count) of every bucket, ``None`` for the ``+Inf`` bucket."""
    bounds: list[float | None] = [*point.explicit_bounds, None]
    return list(zip(bounds, itertools.accumulate(point.bucket_counts), strict=True))


def _complaints(carbon: Carbon, offset: int) -> list[str]:
    with carbon.log_path.open(encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        return [line for line in log if any(marker in line for marker in CARBON_COMPLAINTS)]


def test_tagged_series_over_tcp(carbon: Carbon, telemetry: Telemetry) -> None:
    _service(telemetry, "carbon-tagged", "graph")
    offset = carbon.log_path.stat().st_size
    data = _export_once(telemetry, GraphiteExporter(*carbon.line_address, tagged=True, resource_tags=()))

    tags = f";otel.scope.name={SCOPE_NAME};service.category=graph;service.name=carbon-tagged"
    for metric, expected in (
        ("service.requests", 8),
        ("service.errors", 1),
        ("carbon.queue.depth", 12.25),
        ("carbon.cache.hits", 9),
    ):
        point = _point(data, metric, "carbon-tagged")
        assert point.value == expected, metric
        assert _read_one(carbon, f"{metric}{tags}", point) == expected, metric
    uptime = _point(data, "service.uptime", "carbon-tagged")
    assert _read_one(carbon, f"service.uptime{tags}", uptime) == uptime.value > 0

    latency: HistogramDataPoint = _point(data, "service.request.duration", "carbon-tagged")
    assert (latency.count, latency.min, latency.max) == (8, 0.0004, 75.0)
    for field, expected in (
        ("count", latency.count),
        ("sum", latency.sum),
        ("min", latency.min),
        ("max", latency.max),
    ):
        name = f"service.request.duration.{field}{tags}"
        assert _read_one(carbon, name, latency) == expected, field
    buckets = _cumulative(latency)
    assert buckets[-1] == (None, 8)
    assert buckets[-2][1] == 7  # 75 s is beyond the last bound (60 s)
    for bound, cumulative in buckets:
        le = "+Inf" if bound is None else repr(float(bound))
        name = f"service.request.duration.bucket;le={le}{tags}"
        assert _read_one(carbon, name, latency) == cumulative, name
    assert _complaints(carbon, offset) == []


def test_hierarchical_series_over_tcp_with_a_prefix(carbon: Carbon, telemetry: Telemetry) -> None:
    _service(telemetry, "carbon.plain@v2", "graph ops")
    offset = carbon.log_path.stat().st_size
    exporter = GraphiteExporter(*carbon.line_address, tagged=False, prefix="it.plain", resource_tags=())
    data = _export_once(telemetry, exporter)

    # Keys and values are nodes with every character outside [A-Za-z0-9_-] (dots too) made "_";
    # key/value pairs sorted by key, then the field; no scope node.
    path = "service_category.graph_ops.service_name.carbon_plain_v2"
    for metric, expected in (
        ("service.requests", 8),
        ("carbon.queue.depth", 12.25),
        ("carbon.cache.hits", 9),
    ):
        point = _point(data, metric, "carbon.plain@v2")
        assert point.value == expected, metric
        assert _read_one(carbon, f"it.plain.{metric}.{path}", point) == expected, metric
    latency: HistogramDataPoint = _point(data, "service.request.duration", "carbon.plain@v2")
    base = f"it.plain.service.request.duration.{path}"
    assert _read_one(carbon, f"{base}.count", latency) == latency.count
    assert _read_one(carbon, f"{base}.sum", latency) == latency.sum
    for bound, cumulative in _cumulative(latency):
        node = "le_inf" if bound is None else "le_" + repr(float(bound)).replace(".", "_").replace("+", "")
        assert _read_one(carbon, f"{base}.bucket.{node}", latency) == cumulative, node
    assert carbon.series_path(f"{base}.bucket.le_0_005") == carbon.whisper_dir.joinpath(
        *f"{base}.bucket.le_0_005".split(".")
    ).with_suffix(".wsp")
    assert _complaints(carbon, offset) == []


def test_tagged_series_over_udp_arrive_in_whole_line_datagrams(carbon: Carbon, telemetry: Telemetry) -> None:
    for index in range(3):
        _service(telemetry, f"carbon-udp-{index}", "runtime")
    offset = carbon.log_path.stat().st_size
    data = _export_once(
        telemetry, GraphiteExporter(*carbon.udp_address, protocol="udp", tagged=True, resource_tags=())
    )

    # Every line of the batch (the same data, encoded here again) is stored with its value and
    # second: datagrams carry whole lines only, and there are several of them.
    lines = encode_graphite(data).splitlines()
    assert len("\n".join(lines).encode()) > 3 * UDP_DATAGRAM_BYTES
    expected = {
        name: (int(stamp), float(value)) for name, value, stamp in (line.split(" ") for line in lines)
    }
    assert len(expected) == len(lines) > 80
    _wait_for_points(carbon, expected)
    tags = f";otel.scope.name={SCOPE_NAME};service.category=runtime;service.name=carbon-udp-2"
    requests = _point(data, "service.requests", "carbon-udp-2")
    assert _read_one(carbon, f"service.requests{tags}", requests) == 8
    assert _complaints(carbon, offset) == []
