"""Builders of ``MetricsData`` shared by the encoder tests under tests/formats.

Not a test module: ``conftest.py`` next to this file loads it by path as the module ``_data`` (the
tests directory is not a package and pytest runs with ``--import-mode=importlib``), so a test module
can ``from _data import ...``. Only helpers that are the same in several test modules live here;
the ones that differ, even slightly, stay in their test module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    Metric,
    MetricReader,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

Record = Callable[[MeterProvider], None]


def meter_provider(
    *readers: MetricReader,
    resource: Resource | None = None,
    views: Sequence[View] = (),
    service_name: str = "checkout",
) -> MeterProvider:
    """A provider with ``readers``; the resource is ``service.name=<service_name>`` unless given."""
    return MeterProvider(
        metric_readers=list(readers),
        resource=resource if resource is not None else Resource.create({"service.name": service_name}),
        views=list(views),
        shutdown_on_exit=False,
    )


def collect(
    record: Record,
    *,
    resource: Resource | None = None,
    views: Sequence[View] = (),
    temporality: dict[type, AggregationTemporality] | None = None,
    service_name: str = "checkout",
) -> MetricsData:
    """What ``record`` produces, read once by an ``InMemoryMetricReader`` of a fresh provider."""
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    provider = meter_provider(reader, resource=resource, views=views, service_name=service_name)
    try:
        record(provider)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    assert data is not None
    return data


def metrics_data(*metrics: Metric, scope: str = "producer", resource: Resource | None = None) -> MetricsData:
    """MetricsData built from the SDK's own classes: for points the SDK pipeline cannot produce."""
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource if resource is not None else Resource.get_empty(),
                scope_metrics=[
                    ScopeMetrics(scope=InstrumentationScope(scope), metrics=list(metrics), schema_url="")
                ],
                schema_url="",
            )
        ]
    )


# --- recordings of the Prometheus and OpenMetrics tests -----------------------------------------


def _memory(options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(123_456_789, {"process.memory.type": "rss"})
    yield Observation(987_654_321, {"process.memory.type": "vms"})


def _cpu(options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(0.25, {"cpu.mode": "user"})
    yield Observation(0.125, {"cpu.mode": "system"})


def record_realistic(provider: MeterProvider) -> None:
    meter = provider.get_meter("checkout.http", "2.1.0")
    requests = meter.create_counter("service.requests", unit="{request}", description="Requests handled.")
    duration = meter.create_histogram("service.request.duration", unit="s", description="Request latency.")
    active = meter.create_up_down_counter(
        "service.requests.active", unit="{request}", description="Requests in flight."
    )
    meter.create_observable_gauge(
        "process.memory.usage", callbacks=[_memory], unit="By", description="Process memory."
    )
    meter.create_observable_gauge(
        "process.cpu.utilization", callbacks=[_cpu], unit="1", description="CPU utilisation."
    )
    for method, route, status, seconds in (
        ("GET", "/cart", 200, 0.012),
        ("GET", "/cart", 200, 0.3),
        ("POST", "/cart/items", 201, 0.045),
        ("POST", "/checkout", 500, 2.7),
        ("GET", "/healthz", 200, 0.0004),
    ):
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "http.route": route,
            "http.response.status_code": status,
        }
        requests.add(1, attributes)
        duration.record(seconds, attributes)
    active.add(3, {"http.route": "/cart"})
    active.add(-1, {"http.route": "/cart"})


def _bytes_read(options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(4096, {"disk.device": "sda"})
    yield Observation(2**40, {"disk.device": "nvme0n1"})


def _queue_depth(options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(-7, {"queue-name": "jobs, urgent"})


def record_hostile(hostile_values: Sequence[str]) -> Record:
    """The recording of awkward names, units, scopes and label values, one label value per entry."""

    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("hostile.lib", "0.9.0-beta+1")
        other = provider.get_meter("other-lib")  # no version: the same families from a second scope
        for scope_meter in (meter, other):
            scope_meter.create_counter(
                "service.requests", unit="{request}", description='Requests, "quoted" \\ and\nmultiline.'
            ).add(2, {"http.request.method": "GET"})
        hits = meter.create_counter("cache-hits.total", description="Cache hits.")
        sent = meter.create_counter("net.io.sent", unit="By", description="Bytes sent.")
        for index, value in enumerate(hostile_values):
            attributes: dict[str, AttributeValue] = {
                "hostile.value": value,
                "http-method": "GET",
                "retry.count": index,
                "cache.hit": index % 2 == 0,
                "load.ratio": index / 8,
                "tags": ("a", 'b"', str(index)),
            }
            hits.add(index + 1, attributes)
            sent.add(1000 * index, attributes)
        rpc = meter.create_histogram(
            "rpc.client.duration",
            unit="ms",
            description="RPC latency.",
            explicit_bucket_boundaries_advisory=[0.5, 1, 2.5, 100, 1e9],
        )
        for millis in (0.1, 0.5, 0.75, 3.0, 250.0, 2e9):
            rpc.record(millis, {"rpc.service": "Cart", "rpc.method": "Add"})
        rpc.record(7.0, {"rpc.service": "Cart", "rpc.method": "Remove"})
        meter.create_histogram("payload.size", unit="By", description="Payload size.").record(512)
        meter.create_up_down_counter("db.pool.connections", unit="{connection}", description="Pool.").add(
            -3, {"pool.name": "primary"}
        )
        meter.create_gauge("room.temperature", unit="Cel", description="Temperature.").set(
            21.5, {"room": "lab"}
        )
        meter.create_observable_gauge(
            "process.memory.usage", callbacks=[_memory], unit="By", description="Mem."
        )
        meter.create_observable_gauge(
            "system.cpu.utilization", callbacks=[_cpu], unit="1", description="CPU."
        )
        meter.create_observable_counter(
            "disk.io.read", callbacks=[_bytes_read], unit="By", description="Read."
        )
        meter.create_observable_up_down_counter("queue.depth", callbacks=[_queue_depth], description="Depth.")
        meter.create_counter("net.throughput", unit="By/s", description="Throughput.").add(5)
        meter.create_counter("events.rate", unit="1/s", description="Rate.").add(1.5)

    return record
