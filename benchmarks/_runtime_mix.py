"""A runtime's worth of series, built the same way on our runtime and on a plain OTel SDK.

``series`` data points in all, services (each four points: ``service.requests``, ``service.errors``,
``service.request.duration`` and ``service.uptime``, with ``service.name`` and ``service.category``)
and ordinary SDK counter series (``bench.items``, one per ``item.id``): half and half in the
``runtime`` mix, services only in ``services``, counters only in ``counters``. Ours records the
services through ``instrument_service`` (the vitals fast path and the runtime's uptime); the plain
SDK through two counters, a histogram with the same buckets and an observable gauge, exactly as a
service author would without this package. Every service handles one request (every tenth an
error), so every series exists on both sides.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.instrumentation import LATENCY_BUCKETS, SCOPE_NAME, instrument_service

__all__ = ["MIXES", "SERIES_PER_SERVICE", "build_ours", "build_plain", "shape"]

SERIES_PER_SERVICE = 4
SEED = 20_240_601
COUNTER_SCOPE = "bench.mix"


#: Mixes: the share of the data points that are services' (the rest are ordinary counter series).
MIXES = {"runtime": 0.5, "services": 1.0, "counters": 0.0}


def shape(series: int, mix: str = "runtime") -> tuple[int, int]:
    """(services, counter series) of ``mix`` with ``series`` data points."""
    services = int(series * MIXES[mix]) // SERIES_PER_SERVICE
    return services, series - SERIES_PER_SERVICE * services


def _latencies(count: int) -> list[float]:
    rng = random.Random(SEED)
    mu = math.log(0.02)
    return [rng.lognormvariate(mu, 1.2) for _ in range(count)]


def _service_attributes(index: int) -> dict[str, str]:
    return {"service.name": f"svc-{index:06d}", "service.category": "runtime"}


def _item(index: int) -> dict[str, str]:
    return {"item.id": f"item-{index:07d}"}


def build_ours(series: int, mix: str = "runtime") -> Telemetry:
    """Our runtime holding the mix (its cardinality limit above every instrument's series)."""
    services, counters = shape(series, mix)
    telemetry = Telemetry(TelemetryConfig(service_name="bench-mix", cardinality_limit=series + 100))
    for index, latency in enumerate(_latencies(services)):
        attributes = _service_attributes(index)
        service = instrument_service(
            attributes["service.name"], category=attributes["service.category"], telemetry=telemetry
        )
        service.record_request(latency, index % 10 == 9)
    add = telemetry.get_meter(COUNTER_SCOPE).create_counter("bench.items", "{item}", "Items.").add
    for index in range(counters):
        add(1 + index % 5, _item(index))
    return telemetry


def build_plain(
    series: int, reader: MetricReader, resource: Resource | None = None, mix: str = "runtime"
) -> MeterProvider:
    """A plain SDK ``MeterProvider`` with ``reader`` holding the same mix through SDK instruments."""
    services, counters = shape(series, mix)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=resource if resource is not None else Resource.create({"service.name": "bench-mix"}),
        views=[View(instrument_name="*", aggregation_cardinality_limit=series + 100)],
    )
    meter = provider.get_meter(SCOPE_NAME)
    requests = meter.create_counter("service.requests", "{request}", "Requests handled by the service.")
    errors = meter.create_counter("service.errors", "{error}", "Requests the service failed.")
    latency_histogram = meter.create_histogram(
        "service.request.duration",
        "s",
        "Time the service took to handle a request.",
        explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
    )
    started: list[tuple[dict[str, str], int]] = []
    for index, latency in enumerate(_latencies(services)):
        attributes = _service_attributes(index)
        requests.add(1, attributes)
        errors.add(1 if index % 10 == 9 else 0, attributes)
        latency_histogram.record(latency, attributes)
        started.append((attributes, time.time_ns()))

    def uptime(options: CallbackOptions) -> Iterable[Observation]:
        now = time.time_ns()
        return [Observation((now - start) / 1e9, attributes) for attributes, start in started]

    meter.create_observable_gauge("service.uptime", [uptime], "s", "Time since the service was instrumented.")
    add = provider.get_meter(COUNTER_SCOPE).create_counter("bench.items", "{item}", "Items.").add
    for index in range(counters):
        add(1 + index % 5, _item(index))
    return provider
