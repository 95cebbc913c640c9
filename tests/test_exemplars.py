"""The runtime's quiet reservoirs give exactly the exemplars the SDK's own reservoirs give."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from telemetry_otel import Telemetry, TelemetryConfig

BOUNDS = (0.01, 0.1, 1.0)


def _sampled(trace_id: int) -> Context:
    span = NonRecordingSpan(SpanContext(trace_id, 0xA1, is_remote=False, trace_flags=TraceFlags(0x01)))
    return trace.set_span_in_context(span)


def _exemplars(data: MetricsData | None) -> dict[str, list[tuple[object, ...]]]:
    """Per metric, every point's exemplars as (point attributes, value, trace id, span id, attrs)."""
    assert data is not None
    found: dict[str, list[tuple[object, ...]]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            if scope_metrics.scope.name != "exemplar.test":
                continue
            for metric in scope_metrics.metrics:
                found[metric.name] = sorted(
                    (
                        tuple(sorted((point.attributes or {}).items())),
                        exemplar.value,
                        exemplar.trace_id,
                        exemplar.span_id,
                        tuple(sorted((exemplar.filtered_attributes or {}).items())),
                    )
                    for point in metric.data.data_points
                    for exemplar in point.exemplars
                )
    return found


@pytest.fixture
def sides() -> Iterator[tuple[Telemetry, MeterProvider, InMemoryMetricReader]]:
    telemetry = Telemetry(TelemetryConfig(service_name="exemplars"))
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield telemetry, provider, reader
    provider.shutdown()
    telemetry.shutdown()


def _record(meter_provider: object, round_number: int) -> None:
    meter = meter_provider.get_meter("exemplar.test")  # type: ignore[attr-defined]
    counter = meter.create_counter("jobs")
    histogram = meter.create_histogram("latency", "s", explicit_bucket_boundaries_advisory=BOUNDS)
    counter.add(1, {"queue": "a"})  # outside a trace: no exemplar
    histogram.record(0.5, {"queue": "a"})
    if round_number == 0:
        counter.add(2, {"queue": "a"}, context=_sampled(0xBEEF))
        counter.add(3, {"queue": "b"}, context=_sampled(0xCAFE))
        histogram.record(0.05, {"queue": "a"}, context=_sampled(0xF00D))
        histogram.record(5.0, {"queue": "a"}, context=_sampled(0xFEED))


def test_exemplars_are_the_sdks_collection_after_collection(
    sides: tuple[Telemetry, MeterProvider, InMemoryMetricReader],
) -> None:
    telemetry, provider, reader = sides
    for round_number in range(3):
        _record(telemetry.meter_provider, round_number)
        _record(provider, round_number)
        ours = _exemplars(telemetry.read_metrics())
        theirs = _exemplars(reader.get_metrics_data())
        assert ours == theirs
        if round_number == 0:  # sampled measurements became exemplars, on both
            assert {trace_id for _, _, trace_id, _, _ in ours["jobs"]} == {0xBEEF, 0xCAFE}
            assert {trace_id for _, _, trace_id, _, _ in ours["latency"]} == {0xF00D, 0xFEED}
        else:  # a collection resets the reservoirs: nothing new was sampled
            assert ours == {"jobs": [], "latency": []}
