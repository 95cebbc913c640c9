"""Attribute-value explosions stay bounded: a per-instrument cardinality limit, and a length limit.

The OpenTelemetry SDK (1.45) keeps at most 2000 attribute sets per instrument and reader and folds
the rest into one series marked ``otel.metric.overflow=true``: checked here first, on the bare SDK.
This package makes the limit configurable (``TelemetryConfig.cardinality_limit``,
``TELEMETRY_OTEL_CARDINALITY_LIMIT``) and applies the same rule to what the SDK does not see: the
snapshot series of ``instrument_service`` and the metrics merged in by producers (the request
vitals). String attribute values this package records are cut to
``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` characters (256 by default): the SDK does not apply that
variable to metrics.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
    NumberDataPoint,
)

from telemetry_otel import ConfigurationError, Snapshot, Telemetry, TelemetryConfig
from telemetry_otel._reader import PullReader
from telemetry_otel.formats import encode_prometheus_text
from telemetry_otel.instrumentation import Bus, counter, gauge, instrument_service

OVERFLOW = {"otel.metric.overflow": True}
EXPLOSION = 100_000


def _points(data: MetricsData | None, name: str) -> list[Any]:
    assert data is not None
    return [
        point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def _overflow(points: list[Any]) -> Any:
    [point] = [point for point in points if dict(point.attributes or {}) == OVERFLOW]
    return point


def test_the_sdk_folds_attribute_sets_beyond_2000_into_one_overflow_series() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        jobs = provider.get_meter("explosion").create_counter("jobs")
        for index in range(5_000):
            jobs.add(1, {"job.id": f"job-{index}"})
        points = _points(reader.get_metrics_data(), "jobs")
    finally:
        provider.shutdown()
    assert len(points) == 2_001  # the first 2000 attribute sets, plus the overflow series
    assert _overflow(points).value == 3_000
    assert sum(point.value for point in points) == 5_000  # nothing lost, nothing counted twice


def test_the_limit_is_configurable_and_bounds_every_instrument_kind(telemetry_factory: Any) -> None:
    telemetry = telemetry_factory(cardinality_limit=50)
    meter = telemetry.get_meter("explosion")
    jobs = meter.create_counter("jobs")
    depth = meter.create_up_down_counter("depth")
    latency = meter.create_histogram("latency", unit="s")
    level = meter.create_gauge("level")
    values = [f"v{index}" for index in range(120)]
    meter.create_observable_gauge(
        "observed", [lambda options: [_observation(1.0, {"key": value}) for value in values]]
    )
    for value in values:
        jobs.add(2, {"key": value})
        depth.add(-1, {"key": value})
        latency.record(0.5, {"key": value})
        level.set(7, {"key": value})
    data = telemetry.read_metrics()
    for name in ("jobs", "depth", "latency", "level", "observed"):
        assert len(_points(data, name)) == 51, name
    assert _overflow(_points(data, "jobs")).value == 2 * 70
    assert _overflow(_points(data, "depth")).value == -70
    assert _overflow(_points(data, "latency")).count == 70
    assert _overflow(_points(data, "level")).value == 7
    assert 'otel_metric_overflow="true"' in encode_prometheus_text(data)


def _observation(value: float, attributes: dict[str, str]) -> Any:
    from opentelemetry.metrics import Observation

    return Observation(value, attributes)


@pytest.fixture
def telemetry_factory() -> Any:
    made: list[Telemetry] = []

    def make(**settings: Any) -> Telemetry:
        runtime = Telemetry(TelemetryConfig(service_name="cardinality", **settings))
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.shutdown()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (2_000, 256)),
        ({"TELEMETRY_OTEL_CARDINALITY_LIMIT": "75", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "16"}, (75, 16)),
        ({"TELEMETRY_OTEL_CARDINALITY_LIMIT": " 10 ", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": ""}, (10, 256)),
    ],
)
def test_the_limits_come_from_the_environment(environ: dict[str, str], expected: tuple[int, int]) -> None:
    config = TelemetryConfig.resolve(environ=environ)
    assert (config.cardinality_limit, config.attribute_value_length_limit) == expected
    explicit = TelemetryConfig.resolve(cardinality_limit=5, attribute_value_length_limit=3, environ=environ)
    assert (explicit.cardinality_limit, explicit.attribute_value_length_limit) == (5, 3)


@pytest.mark.parametrize(
    ("variable", "raw", "message"),
    [
        ("TELEMETRY_OTEL_CARDINALITY_LIMIT", "many", "'many' is not a whole number; use a positive integer"),
        ("TELEMETRY_OTEL_CARDINALITY_LIMIT", "0", "must be a positive integer, got 0"),
        ("TELEMETRY_OTEL_CARDINALITY_LIMIT", "1.5", "'1.5' is not a whole number"),
        ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1", "must be a positive integer, got -1"),
    ],
)
def test_a_bad_limit_names_what_is_allowed(variable: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TelemetryConfig.resolve(environ={variable: raw})
    with pytest.raises(ValueError, match="cardinality_limit must be a positive integer"):
        PullReader(cardinality_limit=0)


def test_snapshot_series_are_capped_per_metric_with_one_overflow_series(telemetry_factory: Any) -> None:
    telemetry = telemetry_factory(cardinality_limit=100)
    order = {"reverse": False}

    def explode() -> Snapshot:
        series = [({"user.id": f"u{index}"}, index) for index in range(EXPLOSION)]
        depth = [({"queue": f"q{index}"}, index) for index in range(300)]
        if order["reverse"]:
            series.reverse()
            depth.reverse()
        return {"users.seen": series, "queue.depth": depth}

    instrument_service(
        "exploding",
        category="c",
        snapshot=explode,
        metrics=[
            counter("users.seen", "{event}", "Events per user."),
            gauge("queue.depth", "{item}", "Depth per queue."),
        ],
        telemetry=telemetry,
    )
    # A second service publishing the same metric shares its limit: it is one instrument.
    instrument_service(
        "neighbour",
        category="c",
        snapshot=lambda: {"users.seen": [({"user.id": "n"}, 1)]},
        metrics=[counter("users.seen", "{event}", "Events per user.")],
        telemetry=telemetry,
    )
    first = asyncio.run(telemetry.collect()).metrics
    order["reverse"] = True  # the same series in the opposite order: the same ones stay admitted
    second = asyncio.run(telemetry.collect()).metrics
    for data in (first, second):
        users = _points(data, "users.seen")
        assert len(users) == 101
        kept = {point.attributes["user.id"] for point in users if "user.id" in point.attributes}
        assert kept == {f"u{index}" for index in range(100)}
        assert _overflow(users).value == sum(range(100, EXPLOSION)) + 1  # the rest, the neighbour's too
        assert sum(point.value for point in users) == sum(range(EXPLOSION)) + 1
    # A gauge's overflow keeps the last folded value (q100..q299 in order, then q299..q100).
    assert _overflow(_points(first, "queue.depth")).value == 299
    assert _overflow(_points(second, "queue.depth")).value == 100


def test_producer_metrics_respect_the_same_limit(telemetry_factory: Any) -> None:
    """The request vitals are merged in outside the SDK: more services than the limit fold too."""
    telemetry = telemetry_factory(cardinality_limit=20)
    for index in range(30):
        service = instrument_service(f"svc{index:02d}", category="c", telemetry=telemetry)
        for _ in range(index + 1):
            service.record_request(0.01 * (index + 1), error=index % 2 == 0)
    data = telemetry.read_metrics()
    requests = _points(data, "service.requests")
    assert len(requests) == 21
    assert [point.attributes["service.name"] for point in requests[:20]] == [f"svc{i:02d}" for i in range(20)]
    assert _overflow(requests).value == sum(range(21, 31))
    assert sum(point.value for point in requests) == sum(range(1, 31))
    latency = _points(data, "service.request.duration")
    folded = _overflow(latency)
    assert isinstance(folded, HistogramDataPoint)
    assert (folded.count, sum(folded.bucket_counts)) == (sum(range(21, 31)), sum(range(21, 31)))
    assert (folded.min, folded.max) == pytest.approx((0.21, 0.30))
    assert len(_points(data, "service.uptime")) == 21  # produced: capped like every produced metric
    assert all(isinstance(point, NumberDataPoint) for point in requests)


def _retained(build: Callable[[], object]) -> int:
    """Bytes still allocated (tracemalloc, after a collection of garbage) by what ``build`` returns."""
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        kept = build()
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        del kept
        return after - before
    finally:
        tracemalloc.stop()


def _recorded(distinct: int) -> Callable[[], object]:
    def build() -> object:
        reader = PullReader()  # the runtime's reader, default limit 2000
        provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        jobs = provider.get_meter("explosion").create_counter("jobs")
        for index in range(distinct):
            jobs.add(1, {"job.id": f"job-{index:06d}"})
        reader.read()
        return provider, reader, jobs

    return build


def test_memory_of_100k_distinct_values_stays_within_a_small_multiple_of_2000_series(report: Any) -> None:
    baseline = _retained(_recorded(2_000))
    exploded = _retained(_recorded(EXPLOSION))
    assert exploded < 1.5 * baseline, (exploded, baseline)
    report(
        "cardinality memory (limit 2000)",
        series_2000_kib=baseline // 1024,
        values_100k_kib=exploded // 1024,
        ratio=round(exploded / baseline, 2),
    )


def test_the_sdk_does_not_cut_metric_attribute_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        provider.get_meter("long").create_counter("jobs").add(1, {"job.kind": "x" * 1_000})
        [point] = _points(reader.get_metrics_data(), "jobs")
    finally:
        provider.shutdown()
    assert len(point.attributes["job.kind"]) == 1_000


def test_names_and_snapshot_attribute_values_are_cut_to_the_documented_limit(telemetry_factory: Any) -> None:
    telemetry = telemetry_factory(attribute_value_length_limit=16)
    long_name = "service-" + "n" * 1_000
    service = instrument_service(
        long_name,
        category="category-" + "c" * 1_000,
        snapshot=lambda: {
            "queue.depth": [
                (
                    {
                        "queue": "q" * 10_000,
                        "tags": ["t" * 100, "u"],
                        "weight": 0.5,
                        "ok": True,
                        "blob": b"bytes are not an attribute value here",
                        "object": object(),
                        "": "empty key",
                    },
                    3,
                )
            ]
        },
        metrics=[gauge("queue.depth", "{item}", "Depth per queue.")],
        telemetry=telemetry,
    )
    assert service.name == long_name[:16]
    assert telemetry.components.get(long_name[:16]) is service.component
    with pytest.raises(ValueError, match="already registered"):
        instrument_service(long_name + "-other", category="c", telemetry=telemetry)
    data = asyncio.run(telemetry.collect()).metrics
    [point] = _points(data, "queue.depth")
    assert dict(point.attributes) == {
        "queue": "q" * 16,
        "tags": ("t" * 16, "u"),
        "weight": 0.5,
        "ok": True,
        "service.name": long_name[:16],
        "service.category": "category-ccccccc",
    }
    [requests] = _points(data, "service.requests")
    assert requests.attributes["service.name"] == long_name[:16]


def test_the_default_length_limit_is_256_characters(telemetry_factory: Any) -> None:
    telemetry = telemetry_factory()
    service = instrument_service("s" * 300, category="c", telemetry=telemetry)
    assert len(service.name) == 256


def test_a_bus_name_is_cut_to_the_length_limit(telemetry_factory: Any) -> None:
    """``Bus(name)`` cuts ``bus.name`` to ``attribute_value_length_limit`` characters, like a service
    name (``Bus.name`` and the registry's bus key with it, so the views still find the bus)."""
    telemetry = telemetry_factory(attribute_value_length_limit=16)
    bus = Bus("bus-" + "b" * 1_000, telemetry=telemetry)
    bus.attach(instrument_service("provider", telemetry=telemetry))
    names = {point.attributes["bus.name"] for point in _points(telemetry.read_metrics(), "bus.providers")}
    assert names == {("bus-" + "b" * 1_000)[:16]}
    assert bus.name == names.pop()
