from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable

import pytest
from opentelemetry.metrics import CallbackOptions, NoOpCounter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, Metric, MetricsData, NumberDataPoint, Sum

from telemetry_otel import (
    ConfigurationError,
    Telemetry,
    TelemetryConfig,
    current_telemetry,
    get_meter,
    setup_telemetry,
)


def _metrics(data: MetricsData) -> dict[str, Metric]:
    return {
        metric.name: metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


def test_get_meter_instruments_come_from_one_shared_provider(shared: None) -> None:
    handle = setup_telemetry(service_name="shared-test", set_global=False)
    get_meter("a.service").create_counter("a.calls", unit="{call}", description="Calls.").add(2, {"k": "v"})
    get_meter("b.service").create_counter("b.calls", unit="{call}", description="Calls.").add(3)
    metrics = _metrics(handle.read_metrics())
    assert isinstance(handle.meter_provider, MeterProvider)
    a_point = metrics["a.calls"].data.data_points[0]
    assert isinstance(a_point, NumberDataPoint)
    assert (a_point.value, dict(a_point.attributes or {})) == (2, {"k": "v"})
    assert metrics["b.calls"].data.data_points[0].attributes == {}
    assert handle.resource.attributes["service.name"] == "shared-test"


def test_setup_is_idempotent_and_refuses_a_different_configuration(shared: None) -> None:
    first = setup_telemetry(service_name="idem", set_global=False)
    assert setup_telemetry(service_name="idem", set_global=False) is first
    with pytest.raises(ConfigurationError, match="already set up with a different configuration"):
        setup_telemetry(service_name="other", set_global=False)
    first.shutdown()
    first.shutdown()  # a second shutdown is harmless
    second = setup_telemetry(service_name="other", set_global=False)
    assert second is not first
    assert current_telemetry() is second


def test_sdk_disabled_makes_instruments_no_ops(shared: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    handle = setup_telemetry(set_global=False)
    assert handle.disabled
    counter = get_meter("x").create_counter("x.calls")
    assert isinstance(counter, NoOpCounter)
    counter.add(1)
    collection = asyncio.run(handle.collect())
    assert collection.sdk_disabled
    assert collection.metrics.resource_metrics == []


def test_read_metrics_is_cumulative(telemetry: Telemetry) -> None:
    counter = telemetry.get_meter("t").create_counter("t.calls", unit="{call}", description="Calls.")
    counter.add(1)
    telemetry.read_metrics()
    counter.add(4)
    data = _metrics(telemetry.read_metrics())["t.calls"].data
    assert isinstance(data, Sum)
    assert data.is_monotonic
    assert data.data_points[0].value == 5


def test_meters_taken_before_setup_bind_to_the_runtime_set_up_later(shared: None) -> None:
    meter = get_meter("early.module")  # as at import time, before the application sets up
    early = meter.create_counter("early.calls", unit="{call}", description="Calls.")
    latency = meter.create_histogram(
        "early.latency", "s", "Latency.", explicit_bucket_boundaries_advisory=[1, 2]
    )
    meter.create_observable_gauge("early.depth", [lambda options: [Observation(4)]], "{item}", "Depth.")
    handle = setup_telemetry(service_name="configured-later", set_global=False)
    early.add(2)
    latency.record(1.5)
    metrics = _metrics(handle.read_metrics())
    assert handle.resource.attributes["service.name"] == "configured-later"
    assert [p.value for p in metrics["early.calls"].data.data_points if isinstance(p, NumberDataPoint)] == [2]
    assert [p.value for p in metrics["early.depth"].data.data_points if isinstance(p, NumberDataPoint)] == [4]
    histogram = metrics["early.latency"].data.data_points[0]
    assert isinstance(histogram, HistogramDataPoint)
    assert (histogram.count, tuple(histogram.explicit_bounds)) == (1, (1.0, 2.0))


def test_a_measurement_before_setup_sets_up_from_the_environment_and_is_kept(
    shared: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    counter = get_meter("eager.module").create_counter("eager.calls")
    counter.add(3)
    handle = current_telemetry()
    assert handle.resource.attributes["service.name"] == "from-env"
    assert [
        p.value
        for p in _metrics(handle.read_metrics())["eager.calls"].data.data_points
        if isinstance(p, NumberDataPoint)
    ] == [3]


class _SlowRead:
    """An observable gauge callback (it runs inside the SDK read) that blocks while ``hold`` is set:
    for ``seconds`` at most, or until ``release()``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.hold = threading.Event()
        self.hold.set()
        self._released = threading.Event()

    def __call__(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.hold.is_set():
            self._released.wait(self.seconds)
        return [Observation(1.5)]

    def release(self) -> None:
        self.hold.clear()
        self._released.set()


def test_a_collection_whose_sdk_read_outlasts_collection_timeout_millis_fails_within_it() -> None:
    slow = _SlowRead(seconds=5)
    telemetry = Telemetry(TelemetryConfig(service_name="slow-read", collection_timeout_millis=200))
    try:
        telemetry.get_meter("slow.reader").create_observable_gauge("slow.gauge", [slow])
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(telemetry.collect())
        elapsed = time.monotonic() - started
        assert 0.2 <= elapsed < 1.0, elapsed  # bounded by the timeout, not by the 5 s read
        slow.release()
        collection = asyncio.run(telemetry.collect())  # a read within the bound succeeds again
        point = _metrics(collection.metrics)["slow.gauge"].data.data_points[0]
        assert isinstance(point, NumberDataPoint)
        assert point.value == 1.5
    finally:
        slow.release()
        telemetry.shutdown()


def test_a_read_slower_than_the_default_would_allow_completes_under_a_longer_timeout() -> None:
    slow = _SlowRead(seconds=0.4)  # longer than 200 ms, well under 3 s
    telemetry = Telemetry(TelemetryConfig(service_name="slow-read", collection_timeout_millis=3_000))
    try:
        telemetry.get_meter("slow.reader").create_observable_gauge("slow.gauge", [slow])
        collection = asyncio.run(telemetry.collect())
        assert collection.duration_seconds >= 0.4
        point = _metrics(collection.metrics)["slow.gauge"].data.data_points[0]
        assert isinstance(point, NumberDataPoint)
        assert point.value == 1.5
    finally:
        slow.release()
        telemetry.shutdown()


def test_collection_timeout_millis_is_read_from_the_environment(
    shared: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMETRY_OTEL_COLLECTION_TIMEOUT_MILLIS", "200")
    slow = _SlowRead(seconds=5)
    telemetry = setup_telemetry(service_name="slow-read", set_global=False)
    try:
        assert telemetry.config.collection_timeout_millis == 200
        get_meter("slow.reader").create_observable_gauge("slow.gauge", [slow])
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            asyncio.run(telemetry.collect())
        assert time.monotonic() - started < 1.0
    finally:
        slow.release()
