"""Exemplars: the sampled span's ids kept by the vitals and the HTTP metrics, per
``OTEL_METRICS_EXEMPLAR_FILTER``, carried by OpenMetrics (parsed by ``prometheus_client``) and OTLP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.propagate import inject
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from telemetry_otel import Collection, Telemetry, TelemetryConfig
from telemetry_otel.formats import encode_openmetrics, encode_prometheus_text
from telemetry_otel.instrumentation import HTTPMetricsMiddleware, instrument_service


@pytest.fixture(scope="module")
def tracer() -> trace.Tracer:
    """A tracer of the SDK ``TracerProvider`` installed through the API, as an application does."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    return trace.get_tracer("exemplar-test")


def runtime(exemplar_filter: str = "trace_based") -> Telemetry:
    return Telemetry(
        TelemetryConfig(service_name="ex", exemplar_filter=exemplar_filter, live_min_interval_millis=0)  # type: ignore[arg-type]
    )


@pytest.fixture
def make_runtime() -> Iterator[Callable[[str], Telemetry]]:
    made: list[Telemetry] = []

    def make(exemplar_filter: str = "trace_based") -> Telemetry:
        made.append(runtime(exemplar_filter))
        return made[-1]

    yield make
    for telemetry in made:
        telemetry.shutdown()


def histogram_points(telemetry: Telemetry, name: str) -> list[HistogramDataPoint]:
    return [
        point
        for resource_metrics in telemetry.read_metrics().resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, HistogramDataPoint)
    ]


def test_vitals_keep_the_sampled_span(make_runtime: Callable[[str], Telemetry], tracer: trace.Tracer) -> None:
    telemetry = make_runtime("trace_based")
    service = instrument_service("svc", telemetry=telemetry)
    service.record_request(0.3)  # no span: no exemplar
    with tracer.start_as_current_span("handle") as span:
        service.record_request(0.02)
        with service.request():
            pass
    ids = span.get_span_context()
    [point] = histogram_points(telemetry, "service.request.duration")
    assert point.count == 3
    assert [(e.trace_id, e.span_id) for e in point.exemplars] == [(ids.trace_id, ids.span_id)] * 2
    values = sorted(e.value for e in point.exemplars)
    assert values[1] == 0.02  # the recorded latency, in its own bucket
    assert values[0] < 0.0025  # the empty block


def test_an_unsampled_span_gives_no_exemplar(
    make_runtime: Callable[[str], Telemetry], tracer: trace.Tracer
) -> None:
    telemetry = make_runtime("trace_based")
    service = instrument_service("svc", telemetry=telemetry)
    unsampled = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(0)))
    with trace.use_span(unsampled):
        service.record_request(0.02)
    [point] = histogram_points(telemetry, "service.request.duration")
    assert (point.count, list(point.exemplars)) == (1, [])


def test_filters_always_off_and_always_on(
    make_runtime: Callable[[str], Telemetry], tracer: trace.Tracer
) -> None:
    off, on = make_runtime("always_off"), make_runtime("always_on")
    quiet, loud = instrument_service("a", telemetry=off), instrument_service("b", telemetry=on)
    with tracer.start_as_current_span("handle") as span:
        quiet.record_request(0.02)
        loud.record_request(0.02)
    loud.record_request(7.0)  # always_on: an exemplar without a span
    [quiet_point] = histogram_points(off, "service.request.duration")
    [loud_point] = histogram_points(on, "service.request.duration")
    assert list(quiet_point.exemplars) == []
    trace_id = span.get_span_context().trace_id
    assert sorted((e.value, e.trace_id) for e in loud_point.exemplars) == [(0.02, trace_id), (7.0, None)]


def test_the_filter_comes_from_the_environment() -> None:
    assert TelemetryConfig.resolve(environ={}).exemplar_filter == "trace_based"
    assert (
        TelemetryConfig.resolve(environ={"OTEL_METRICS_EXEMPLAR_FILTER": "always_off"}).exemplar_filter
        == "always_off"
    )
    with pytest.raises(ValueError, match="use one of trace_based, always_on, always_off"):
        TelemetryConfig.resolve(environ={"OTEL_METRICS_EXEMPLAR_FILTER": "sometimes"})


def _collection(telemetry: Telemetry) -> Collection:
    return asyncio.run(telemetry.collect())


def test_openmetrics_carries_them_and_text_does_not(
    make_runtime: Callable[[str], Telemetry], tracer: trace.Tracer
) -> None:
    telemetry = make_runtime("trace_based")
    service = instrument_service("svc", telemetry=telemetry)
    counter = telemetry.get_meter("sdk").create_counter("jobs.done", "{job}")
    histogram = telemetry.get_meter("sdk").create_histogram("job.duration", "s")
    with tracer.start_as_current_span("handle") as span:
        service.record_request(0.02)
        counter.add(2)
        histogram.record(0.7)
    ids = span.get_span_context()
    metrics = _collection(telemetry).metrics
    body = encode_openmetrics(metrics)
    exemplars = {
        sample.name: (sample.labels, sample.exemplar)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.exemplar is not None
    }
    expected = {"trace_id": f"{ids.trace_id:032x}", "span_id": f"{ids.span_id:016x}"}
    vitals_labels, vitals = exemplars["service_request_duration_seconds_bucket"]
    assert (vitals_labels["le"], vitals.labels, vitals.value) == ("0.025", expected, 0.02)
    sdk_labels, sdk_histogram = exemplars["job_duration_seconds_bucket"]
    assert (sdk_labels["le"], sdk_histogram.labels, sdk_histogram.value) == (
        "5.0",
        expected,
        0.7,
    )  # the SDK's default buckets
    _, total = exemplars["jobs_done_total"]
    assert (total.labels, total.value) == (expected, 2)
    assert abs(float(vitals.timestamp) - span.end_time / 1e9) < 5  # type: ignore[operator]
    assert "# {" not in encode_prometheus_text(metrics)
    # OTLP carries the same ids.
    request = encode_metrics(metrics)
    otlp = [
        exemplar
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "service.request.duration"
        for point in metric.histogram.data_points
        for exemplar in point.exemplars
    ]
    assert [(e.trace_id.hex(), e.span_id.hex(), e.as_double) for e in otlp] == [
        (expected["trace_id"], expected["span_id"], 0.02)
    ]


def make_traced_app(telemetry: Telemetry) -> Any:
    async def item(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/items/{item_id}", item)])
    app.add_middleware(HTTPMetricsMiddleware, telemetry=telemetry)
    # The tracing middleware starts the server span from the request's traceparent, around ours.
    return OpenTelemetryMiddleware(app)


def test_http_metrics_keep_the_request_span(
    make_runtime: Callable[[str], Telemetry], tracer: trace.Tracer, live_server: Callable[..., Any]
) -> None:
    telemetry = make_runtime("trace_based")
    url = live_server(make_traced_app(telemetry)).url
    trace_ids: list[int] = []
    for item_id in range(3):
        with tracer.start_as_current_span("client") as span:
            headers: dict[str, str] = {}
            inject(headers)
            assert httpx.get(f"{url}/items/{item_id}", headers=headers).status_code == 200
        trace_ids.append(span.get_span_context().trace_id)
    deadline = time.monotonic() + 10
    while sum(p.count for p in histogram_points(telemetry, "http.server.request.duration")) < 3:
        assert time.monotonic() < deadline, "the requests were not recorded"
        time.sleep(0.01)
    [point] = histogram_points(telemetry, "http.server.request.duration")
    assert dict(point.attributes or {})["http.route"] == "/items/{item_id}"
    # Each bucket keeps its latest exemplar: the last request's, in the trace the test started.
    latest = max(point.exemplars, key=lambda e: e.time_unix_nano)
    assert latest.trace_id == trace_ids[-1]
    assert {e.trace_id for e in point.exemplars} <= set(trace_ids)


NO_PROVIDER = textwrap.dedent(
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from telemetry_otel import Telemetry, TelemetryConfig
    from telemetry_otel.instrumentation import instrument_service

    telemetry = Telemetry(TelemetryConfig(service_name="x"))
    service = instrument_service("svc", telemetry=telemetry)
    private = TracerProvider().get_tracer("private")  # sampled spans, but no provider installed
    with private.start_as_current_span("op"):
        service.record_request(0.02)
    def kept():
        data = telemetry.read_metrics()
        return sum(len(p.exemplars) for rm in data.resource_metrics for sm in rm.scope_metrics
                   for m in sm.metrics if m.name == "service.request.duration" for p in m.data.data_points)
    print(kept())
    trace.set_tracer_provider(TracerProvider())
    with private.start_as_current_span("op"):
        service.record_request(0.02)
    print(kept())
    telemetry.shutdown()
    """
)


def test_with_no_tracer_provider_installed_the_span_is_not_looked_at() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TELEMETRY_OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-c", NO_PROVIDER],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == ["0", "1"]


def test_each_bucket_shows_its_latest_exemplar_and_one_without_a_span_has_no_ids(
    make_runtime: Callable[[str], Telemetry],
) -> None:
    telemetry = make_runtime("always_on")
    service = instrument_service("svc", telemetry=telemetry)
    for latency in (0.011, 0.012, 0.3):  # two in the 0.025 bucket: the later one is shown
        service.record_request(latency)
        time.sleep(0.002)  # distinct timestamps
    body = encode_openmetrics(_collection(telemetry).metrics)
    shown = {
        sample.labels["le"]: sample.exemplar
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "service_request_duration_seconds_bucket" and sample.exemplar is not None
    }
    assert {le: (exemplar.value, exemplar.labels) for le, exemplar in shown.items()} == {
        "0.025": (0.012, {}),
        "0.5": (0.3, {}),
    }
