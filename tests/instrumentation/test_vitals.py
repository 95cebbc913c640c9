"""The vitals fast path produces exactly what the plain SDK produces for the same recordings."""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
)

from telemetry_otel import Collection, Telemetry, __version__
from telemetry_otel.formats import encode_graphite, encode_influx, encode_prometheus_text
from telemetry_otel.instrumentation import LATENCY_BUCKETS, SCOPE_NAME, instrument_service
from telemetry_otel.views import Thresholds, ViewInputs, render_view

_VITALS = ("service.requests", "service.errors", "service.request.duration")


def _without_timestamps(metric: Metric) -> Metric:
    points: list[Any] = []
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint | HistogramDataPoint)
        points.append(replace(point, start_time_unix_nano=0, time_unix_nano=0))
    normalised = replace(metric.data, data_points=sorted(points, key=lambda p: sorted(p.attributes.items())))
    return replace(metric, data=normalised)


def _record_both(telemetry: Telemetry) -> tuple[MetricsData, MetricsData]:
    """The same seeded recordings through the fast path and through plain SDK instruments.

    The plain meter has the vitals' scope name and version, so only the path differs.
    """
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=telemetry.resource, metric_readers=[reader])
    meter = provider.get_meter(SCOPE_NAME, __version__)
    requests = meter.create_counter("service.requests", "{request}", "Requests handled by the service.")
    errors = meter.create_counter("service.errors", "{error}", "Requests the service failed.")
    latency = meter.create_histogram(
        "service.request.duration",
        "s",
        "Time the service took to handle a request.",
        explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
    )
    services = {
        name: instrument_service(name, category=category, telemetry=telemetry)
        for name, category in [("llm", "runtime"), ("memory", "graph"), ("time", "infrastructure")]
    }
    for service in services.values():
        attributes = dict(service.component.attributes)
        requests.add(0, attributes)  # vitals start at a known zero when the service is instrumented
        errors.add(0, attributes)
    rng = random.Random(7)
    # on every boundary too, and values the SDK's histogram drops (negative, NaN, infinite)
    bounds_and_between = [*LATENCY_BUCKETS, 0.0, 1e-9, 0.0003, 0.7, 99.0, -0.5, math.nan, math.inf]
    for _ in range(5_000):
        name = rng.choice(list(services))
        seconds = rng.choice(bounds_and_between) if rng.random() < 0.3 else rng.lognormvariate(-4, 2)
        failed = rng.random() < 0.1
        services[name].record_request(seconds, failed)
        attributes = dict(services[name].component.attributes)
        requests.add(1, attributes)
        latency.record(seconds, attributes)
        if failed:
            errors.add(1, attributes)
    plain = reader.get_metrics_data()
    provider.shutdown()
    assert plain is not None
    return _only_vitals(telemetry.read_metrics()), _only_vitals(plain)


def _only_vitals(data: MetricsData) -> MetricsData:
    """The vitals metrics of ``data`` with every timestamp set to 1 s, in name order."""
    (resource_metrics,) = data.resource_metrics
    (scope_metrics,) = [sm for sm in resource_metrics.scope_metrics if sm.scope.name == SCOPE_NAME]
    metrics = sorted(
        (_with_timestamp(m) for m in scope_metrics.metrics if m.name in _VITALS), key=lambda m: m.name
    )
    return MetricsData(
        [ResourceMetrics(resource_metrics.resource, [replace(scope_metrics, metrics=metrics)], "")]
    )


def _with_timestamp(metric: Metric) -> Metric:
    normalised = _without_timestamps(metric)
    points = [
        replace(p, start_time_unix_nano=10**9, time_unix_nano=2 * 10**9) for p in normalised.data.data_points
    ]
    return replace(normalised, data=replace(normalised.data, data_points=points))


def test_fast_path_metrics_equal_the_plain_sdk_path(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # the SDK logs each latency it drops; the fast path does not
    fast, plain = _record_both(telemetry)
    assert [m.name for m in fast.resource_metrics[0].scope_metrics[0].metrics] == sorted(_VITALS)
    assert fast == plain


def test_every_encoding_of_the_fast_path_equals_the_plain_sdk_path(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)
    fast, plain = _record_both(telemetry)
    encoders: dict[str, Callable[[MetricsData], object]] = {
        "prometheus": encode_prometheus_text,
        "graphite tagged": encode_graphite,
        "graphite plain": lambda data: encode_graphite(data, tagged=False),
        "influx": encode_influx,
        "otlp protobuf": lambda data: encode_metrics(data).SerializeToString(),
        "json view": lambda data: json.dumps(
            render_view("detailed", _inputs(Collection(data, {}, 0, 0.0, sdk_disabled=False))).document,
            sort_keys=True,
        ),
    }
    for name, encode in encoders.items():
        encoded = encode(fast)
        assert encoded, name
        assert encoded == encode(plain), name


def _inputs(collection: Collection) -> ViewInputs:
    return ViewInputs(collection=collection, previous=None, thresholds=Thresholds(), now_unix_nano=0)
