"""A real Prometheus scrapes the demo runtime served by the real app (``create_app`` under uvicorn).

What Prometheus stores and computes (a counter, a gauge, a histogram quantile) is compared with what
the app itself reports, at a moment when the demo no longer steps; ``promtool`` reads the same body.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2
import pytest
import uvicorn
from opentelemetry.sdk.metrics.export import HistogramDataPoint, MetricsData, NumberDataPoint
from starlette.applications import Starlette

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.formats import PROMETHEUS_TEXT_CONTENT_TYPE
from telemetry_otel.instrumentation.demo import BUSES, DemoRuntime
from telemetry_otel.views import create_app

if TYPE_CHECKING:
    from _support import Prometheus, Promtool

pytestmark = pytest.mark.backend

T = TypeVar("T")

CACHE_TTL_SECONDS = 0.5


def _wait(fetch: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Call ``fetch`` every 0.05 s until ``done`` accepts its result; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}: {result!r}"
        time.sleep(0.05)


@contextlib.contextmanager
def _serving(app: Starlette, port: int) -> Iterator[None]:
    """Run ``app`` with uvicorn on 127.0.0.1:``port`` in a thread; stop it and join the thread on exit."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test-app", daemon=True)
    thread.start()
    try:
        _wait(lambda: server.started or not thread.is_alive(), bool, 10.0, "uvicorn to start")
        assert server.started, "uvicorn exited before it started"
        yield
    finally:
        server.should_exit = True
        thread.join(10.0)
        assert not thread.is_alive(), "uvicorn did not stop"


def _number_point(data: MetricsData, name: str, **attributes: str) -> NumberDataPoint:
    found = [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
        and all((point.attributes or {}).get(key) == value for key, value in attributes.items())
    ]
    assert len(found) == 1, f"{len(found)} points of {name} {attributes}"
    return found[0]


def _histogram_point(data: MetricsData, name: str, **attributes: str) -> HistogramDataPoint:
    found = [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
        and all((point.attributes or {}).get(key) == value for key, value in attributes.items())
    ]
    assert len(found) == 1, f"{len(found)} points of {name} {attributes}"
    return found[0]


def _median_bucket(point: HistogramDataPoint) -> tuple[float, float]:
    """The (lower, upper) bounds within which Prometheus' ``histogram_quantile(0.5, ...)`` must fall.

    Prometheus picks the first bucket whose cumulative count reaches ``0.5 * count`` and interpolates
    inside it; the first bucket starts at 0 (positive bounds), and the ``+Inf`` bucket answers the
    highest finite bound.
    """
    bounds = list(point.explicit_bounds)
    rank = 0.5 * point.count
    cumulative = 0
    for index, count in enumerate(point.bucket_counts):
        cumulative += count
        if cumulative >= rank:
            if index == len(bounds):
                return bounds[-1], bounds[-1]
            return (bounds[index - 1] if index > 0 else 0.0), bounds[index]
    raise AssertionError(f"no bucket reaches the median of {point}")


def _json_value(body: dict[str, Any], service: str, metric: str) -> float:
    [entry] = [entry for entry in body["services"][service]["metrics"] if entry["name"] == metric]
    [point] = entry["points"]
    value: float = point["value"]
    return value


def _scalar(prometheus: Prometheus, promql: str) -> float:
    [sample] = prometheus.wait_for_query(promql)
    return float(sample["value"][1])


def test_prometheus_scrapes_the_demo_and_agrees_with_the_app(
    start_prometheus: Callable[..., Prometheus], free_port: Callable[..., int], promtool: Promtool
) -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="prometheus-scrape"))
    demo = DemoRuntime(telemetry, seed=7)
    try:
        for _ in range(3):
            demo.step()
        port = free_port()
        target = f"127.0.0.1:{port}"
        app = create_app(telemetry, agent="demo", cache_ttl_seconds=CACHE_TTL_SECONDS)
        with _serving(app, port), httpx2.Client(base_url=f"http://{target}", timeout=10.0) as client:
            prometheus = start_prometheus([target], scrape_interval="1s", job="demo")
            try:
                scraped = prometheus.wait_for_scrape(target)
                assert (scraped["health"], scraped["lastError"]) == ("up", ""), scraped
                assert scraped["scrapeUrl"] == f"http://{target}/metrics"
                assert scraped["labels"]["job"] == "demo"

                # The demo moves on while Prometheus scrapes, then stops: from here on every number
                # is fixed, and a scrape that starts once the cache has expired sees the final values.
                for _ in range(4):
                    demo.step()
                settled = time.time() + CACHE_TTL_SECONDS + 0.5
                _wait(
                    lambda: prometheus.query(f'timestamp(up{{instance="{target}"}}) > {settled}'),
                    bool,
                    15.0,
                    "a scrape after the demo stopped",
                )
                latest = prometheus.wait_for_scrape(target)
                assert (latest["health"], latest["lastError"]) == ("up", ""), latest

                data = telemetry.read_metrics()
                requests = _number_point(data, "service.requests", **{"service.name": "memory"}).value
                assert requests > 0
                response = client.get("/api/demo/v1/telemetry", params={"view": "detailed", "format": "json"})
                assert response.status_code == 200
                assert _json_value(response.json(), "memory", "service.requests") == requests
                scraped_requests = _scalar(
                    prometheus, f'service_requests_total{{service_name="memory",instance="{target}"}}'
                )
                assert scraped_requests == requests

                assert _number_point(data, "bus.providers", **{"bus.name": "llm"}).value == 2
                assert _scalar(prometheus, f'bus_providers{{bus_name="llm",instance="{target}"}}') == 2

                latency = _histogram_point(data, "service.request.duration", **{"service.name": "memory"})
                lower, upper = _median_bucket(latency)
                median = _scalar(
                    prometheus,
                    "histogram_quantile(0.5, sum by (le) "
                    f'(service_request_duration_seconds_bucket{{service_name="memory",instance="{target}"}}))',
                )
                assert lower <= median <= upper, (median, lower, upper, latency)
                assert (
                    _scalar(
                        prometheus,
                        f'service_request_duration_seconds_count{{service_name="memory",instance="{target}"}}',
                    )
                    == latency.count
                )

                buses = prometheus.wait_for_query(f'bus_requests_total{{instance="{target}"}}')
                assert {sample["metric"]["bus_name"] for sample in buses} == set(BUSES)
                assert all(float(sample["value"][1]) > 0 for sample in buses)

                body = client.get("/metrics")
                assert body.status_code == 200
                assert body.headers["content-type"] == PROMETHEUS_TEXT_CONTENT_TYPE
                assert promtool.check_metrics(body.text) == (0, "")
            finally:
                prometheus.stop()
    finally:
        demo.close()
        telemetry.shutdown()
