"""The vitals fast path produces exactly what the plain SDK produces for the same recordings."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
)

from telemetry_otel import Telemetry
from telemetry_otel.instrumentation import LATENCY_BUCKETS, SCOPE_NAME, instrument_service

_VITALS = ("service.requests", "service.errors", "service.request.duration")


def _without_timestamps(metric: Metric) -> Metric:
    points: list[Any] = []
    for point in metric.data.data_points:
        assert isinstance(point, NumberDataPoint | HistogramDataPoint)
        points.append(replace(point, start_time_unix_nano=0, time_unix_nano=0))
    normalised = replace(metric.data, data_points=sorted(points, key=lambda p: sorted(p.attributes.items())))
    return replace(metric, data=normalised)


def _vitals(data: MetricsData, scope_name: str) -> dict[str, Metric]:
    return {
        metric.name: _without_timestamps(metric)
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == scope_name
        for metric in scope_metrics.metrics
        if metric.name in _VITALS
    }


def test_fast_path_metrics_equal_the_plain_sdk_path(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # the SDK logs each latency it drops; the fast path does not
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("plain")
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
    plain_data = reader.get_metrics_data()
    assert plain_data is not None
    plain = _vitals(plain_data, "plain")
    fast = _vitals(telemetry.read_metrics(), SCOPE_NAME)
    provider.shutdown()
    assert set(fast) == set(_VITALS)
    for name in _VITALS:
        assert fast[name] == plain[name], name
