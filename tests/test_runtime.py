from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Metric, MetricsData, NumberDataPoint, Sum

from telemetry_otel import ConfigurationError, Telemetry, current_telemetry, get_meter, setup_telemetry


def _metrics(data: MetricsData) -> dict[str, Metric]:
    return {
        metric.name: metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }


@pytest.fixture
def shared() -> Iterator[None]:
    """Leave no process-wide runtime behind, whatever the test did."""
    yield
    with_current = current_telemetry()
    with_current.shutdown()


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
    get_meter("x").create_counter("x.calls").add(1)
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
