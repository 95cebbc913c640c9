"""Buses aggregate their providers' metrics exactly, through join and leave at run time."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricReader,
    MetricsData,
)

from telemetry_otel import Snapshot, Telemetry
from telemetry_otel.instrumentation import (
    LATENCY_BUCKETS,
    Bus,
    BusConfigurationError,
    GaugeRule,
    InstrumentedService,
    counter,
    gauge,
    instrument_service,
)

Series = dict[tuple[str, frozenset[tuple[str, Any]]], Any]


def _series(data: MetricsData, prefix: str = "bus.") -> Series:
    """(metric name, attributes) -> value or histogram point, for the bus's series."""
    found: Series = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not metric.name.startswith(prefix):
                    continue
                for point in metric.data.data_points:
                    key = (metric.name, frozenset((point.attributes or {}).items()))
                    assert key not in found, f"two writers for {key}"
                    found[key] = point if isinstance(point, HistogramDataPoint) else point.value
    return found


def _get(series: Series, name: str, **attributes: str) -> Any:
    return series[(name, frozenset({k.replace("__", "."): v for k, v in attributes.items()}.items()))]


def _record(service: InstrumentedService, latencies: list[float], errors: int) -> None:
    for index, seconds in enumerate(latencies):
        service.record_request(seconds, index < errors)


def test_sums_merged_buckets_counts_and_ratios_are_exact(telemetry: Telemetry) -> None:
    a = instrument_service("openai_primary", telemetry=telemetry)
    b = instrument_service("openai_fallback", telemetry=telemetry)
    bus = Bus("llm", telemetry=telemetry)
    bus.attach(a)
    bus.attach(b, "fallback")
    _record(a, [0.0002, 0.003, 0.3, 2.0], errors=1)
    _record(b, [0.003, 45.0], errors=2)
    a.report_health("pass")
    b.report_health("fail", "quota exhausted")
    series = _series(telemetry.read_metrics())
    assert _get(series, "bus.requests", bus__name="llm") == 6
    assert _get(series, "bus.failures", bus__name="llm") == 3
    assert _get(series, "bus.processed", bus__name="llm") == 3
    assert _get(series, "bus.provider.requests", bus__name="llm", bus__provider="openai_primary") == 4
    assert _get(series, "bus.provider.failures", bus__name="llm", bus__provider="fallback") == 2
    assert _get(series, "bus.provider.processed", bus__name="llm", bus__provider="fallback") == 0
    merged = _get(series, "bus.request.duration", bus__name="llm")
    expected = [0] * (len(LATENCY_BUCKETS) + 1)
    for seconds in [0.0002, 0.003, 0.3, 2.0, 0.003, 45.0]:
        expected[
            next((i for i, bound in enumerate(LATENCY_BUCKETS) if seconds <= bound), len(LATENCY_BUCKETS))
        ] += 1
    assert list(merged.bucket_counts) == expected
    assert (merged.count, merged.sum, merged.min, merged.max) == (6, pytest.approx(47.3062), 0.0002, 45.0)
    assert _get(series, "bus.providers", bus__name="llm") == 2
    assert _get(series, "bus.providers.healthy", bus__name="llm") == 1
    assert _get(series, "bus.providers.unknown", bus__name="llm") == 0


def test_a_provider_that_never_reported_health_is_unknown_not_healthy(telemetry: Telemetry) -> None:
    bus = Bus("wise", telemetry=telemetry)
    bus.attach(instrument_service("wise_authority", category="governance", telemetry=telemetry))
    series = _series(telemetry.read_metrics())
    assert (
        _get(series, "bus.providers.healthy", bus__name="wise"),
        _get(series, "bus.providers.unknown", bus__name="wise"),
    ) == (0, 1)


def test_join_and_leave_at_run_time_never_go_backwards_or_double_count(telemetry: Telemetry) -> None:
    first = instrument_service("memory", category="graph", telemetry=telemetry)
    late = instrument_service("memory_replica", telemetry=telemetry)
    bus = Bus("memory", telemetry=telemetry)
    bus.attach(first)
    _record(first, [0.01] * 5, errors=0)
    _record(late, [0.01] * 100, errors=10)  # history from before it joined: not the bus's
    assert _get(_series(telemetry.read_metrics()), "bus.requests", bus__name="memory") == 5

    bus.attach(late)  # joins at run time: counts from here on
    _record(late, [0.01] * 3, errors=1)
    series = _series(telemetry.read_metrics())
    assert _get(series, "bus.requests", bus__name="memory") == 8
    assert _get(series, "bus.failures", bus__name="memory") == 1
    assert _get(series, "bus.provider.requests", bus__name="memory", bus__provider="memory_replica") == 3

    _record(late, [0.01] * 2, errors=0)
    bus.detach("memory_replica")  # leaves: what it contributed stays
    _record(late, [0.01] * 50, errors=50)  # no longer the bus's
    series = _series(telemetry.read_metrics())
    assert _get(series, "bus.requests", bus__name="memory") == 10
    assert _get(series, "bus.failures", bus__name="memory") == 1
    assert (
        "bus.provider.requests",
        frozenset({("bus.name", "memory"), ("bus.provider", "memory_replica")}),
    ) not in series
    assert _get(series, "bus.providers", bus__name="memory") == 1
    assert _get(series, "bus.request.duration", bus__name="memory").count == 10

    bus.attach(late)  # rejoins: its history is not counted a second time
    _record(late, [0.01], errors=0)
    assert _get(_series(telemetry.read_metrics()), "bus.requests", bus__name="memory") == 11
    assert telemetry.components.buses()["memory"] == {"memory": "memory", "memory_replica": "memory_replica"}


def test_a_provider_counter_reset_keeps_the_bus_total_monotonic(telemetry: Telemetry) -> None:
    tokens = {"value": 100}

    def snapshot() -> Snapshot:
        return {"llm.tokens.input": tokens["value"]}

    provider = instrument_service(
        "openai_primary",
        snapshot=snapshot,
        metrics=[counter("llm.tokens.input", "{token}", "Tokens.")],
        telemetry=telemetry,
    )
    bus = Bus("llm", telemetry=telemetry)
    asyncio.run(telemetry.collect())
    bus.attach(provider)  # baseline 100
    observed = []
    for value in (130, 20, 50):  # grows by 30, restarts (counter reset to 20), grows by 30
        tokens["value"] = value
        collection = asyncio.run(telemetry.collect())
        observed.append(_get(_series(collection.metrics), "bus.llm.tokens.input", bus__name="llm"))
    assert observed == [30, 50, 80]


@pytest.mark.parametrize(
    ("rule", "expected"), [("sum", 9.0), ("min", 2.0), ("max", 7.0), ("mean", 4.5), ("last", 7.0)]
)
def test_gauges_follow_the_declared_rule(telemetry: Telemetry, rule: GaugeRule, expected: float) -> None:
    depth = gauge("service.queue.depth", "{item}", "Items waiting.")
    a = instrument_service(
        "a", snapshot=lambda: {"service.queue.depth": 2}, metrics=[depth], telemetry=telemetry
    )
    b = instrument_service(
        "b", snapshot=lambda: {"service.queue.depth": 7}, metrics=[depth], telemetry=telemetry
    )
    bus = Bus("communication", telemetry=telemetry, gauge_rules={"service.queue.depth": rule})
    bus.attach(a)
    bus.attach(b)
    series = _series(asyncio.run(telemetry.collect()).metrics)
    assert _get(series, "bus.queue.depth", bus__name="communication") == expected
    assert _get(series, "bus.provider.queue.depth", bus__name="communication", bus__provider="a") == 2


def test_default_gauge_rule_is_sum_and_bad_rules_are_rejected(telemetry: Telemetry) -> None:
    depth = gauge("service.queue.depth", "{item}", "Items waiting.")
    a = instrument_service(
        "a", snapshot=lambda: {"service.queue.depth": 2}, metrics=[depth], telemetry=telemetry
    )
    b = instrument_service(
        "b", snapshot=lambda: {"service.queue.depth": 7}, metrics=[depth], telemetry=telemetry
    )
    undeclared = Bus("undeclared", telemetry=telemetry)  # no rules at all
    other = Bus("other", telemetry=telemetry, gauge_rules={"llm.tokens.input": "max"})  # a rule elsewhere
    undeclared.attach(a)
    undeclared.attach(b)
    c = instrument_service(
        "c", snapshot=lambda: {"service.queue.depth": 2}, metrics=[depth], telemetry=telemetry
    )
    d = instrument_service(
        "d", snapshot=lambda: {"service.queue.depth": 7}, metrics=[depth], telemetry=telemetry
    )
    other.attach(c)
    other.attach(d)
    series = _series(asyncio.run(telemetry.collect()).metrics)
    # 2 and 7: the sum (9) is what no other rule gives (min 2, max 7, mean 4.5, last 7).
    assert _get(series, "bus.queue.depth", bus__name="undeclared") == 9
    assert _get(series, "bus.queue.depth", bus__name="other") == 9
    with pytest.raises(ValueError, match="gauge rule 'median' for x is not one of sum, min, max, mean, last"):
        Bus("x", telemetry=telemetry, gauge_rules=cast(Any, {"x": "median"}))


def test_differing_histogram_boundaries_are_a_configuration_error_at_attach(telemetry: Telemetry) -> None:
    meter = telemetry.get_meter("custom")
    histogram = meter.create_histogram(
        "work.size", "By", "Sizes.", explicit_bucket_boundaries_advisory=[1, 10]
    )
    other = meter.create_histogram("work.size.other", "By", "Sizes.", explicit_bucket_boundaries_advisory=[5])
    a = instrument_service("a", telemetry=telemetry)
    b = instrument_service("b", telemetry=telemetry)
    histogram.record(3, {"service.name": "a"})
    other.record(3, {"service.name": "b"})
    bus = Bus("tool", telemetry=telemetry)
    bus.attach(a)
    histogram.record(3, {"service.name": "b"})  # b's work.size now exists... with the same buckets: fine
    bus.attach(b)
    c = instrument_service("c", telemetry=telemetry)
    skewed = telemetry.get_meter("skewed").create_histogram(
        "work.size", "By", "Sizes.", explicit_bucket_boundaries_advisory=[2, 20]
    )
    skewed.record(3, {"service.name": "c"})
    with pytest.raises(
        BusConfigurationError,
        match=r"'c' reports 'work.size' as a histogram in 'By' with buckets \[2, 20\]; "
        r"bus 'tool' aggregates it as a histogram in 'By' with buckets \[1, 10\]",
    ):
        bus.attach(c)
    assert "c" not in bus.providers


def test_bus_honours_the_metric_reader_contract(telemetry: Telemetry) -> None:
    provider = instrument_service("runtime_control", category="runtime", telemetry=telemetry)
    bus = Bus("runtime_control", telemetry=telemetry)
    bus.attach(provider)
    provider.record_request(0.1)
    assert isinstance(bus, MetricReader)
    bus.collect()
    data = bus.get_metrics_data()
    assert data is not None
    (resource_metrics,) = data.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "test-agent"
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "telemetry_otel.bus"
    series = _series(data)
    assert _get(series, "bus.requests", bus__name="runtime_control") == 1
    assert (
        _get(series, "bus.provider.requests", bus__name="runtime_control", bus__provider="runtime_control")
        == 1
    )
    bus.shutdown()
    bus.shutdown()
    assert not [key for key in _series(telemetry.read_metrics()) if key[0].startswith("bus.")]


def test_each_snapshot_runs_once_per_cycle_however_many_buses_and_readers(telemetry: Telemetry) -> None:
    calls: dict[str, int] = {}
    depth = gauge("service.queue.depth", "{item}", "Items waiting.")

    def counting(name: str) -> Any:
        def snapshot() -> Snapshot:
            calls[name] = calls.get(name, 0) + 1
            return {"service.queue.depth": 1}

        return snapshot

    buses = [Bus(f"bus{index}", telemetry=telemetry) for index in range(6)]
    for index in range(12):
        service = instrument_service(
            f"svc{index}", snapshot=counting(f"svc{index}"), metrics=[depth], telemetry=telemetry
        )
        buses[index % 6].attach(service)

    async def one_cycle_read_by_everyone() -> None:
        await asyncio.gather(*(telemetry.cycle.get(30) for _ in range(5)))
        for bus in buses:
            assert bus.get_metrics_data() is not None
        telemetry.read_metrics()

    asyncio.run(one_cycle_read_by_everyone())
    assert calls == {f"svc{index}": 1 for index in range(12)}


def test_no_two_writers_for_one_stream_in_the_shared_output(telemetry: Telemetry) -> None:
    services = [instrument_service(f"p{index}", telemetry=telemetry) for index in range(4)]
    first, second = Bus("one", telemetry=telemetry), Bus("two", telemetry=telemetry)
    first.attach(services[0])
    first.attach(services[1])
    second.attach(services[2])
    second.attach(services[3])
    for service in services:
        service.record_request(0.01)
    series = _series(telemetry.read_metrics())  # asserts one writer per (name, attributes)
    assert _get(series, "bus.requests", bus__name="one") == 2
    assert _get(series, "bus.requests", bus__name="two") == 2


def test_the_collectors_series_about_a_provider_are_not_aggregated_as_its_own(telemetry: Telemetry) -> None:
    depth = gauge("service.queue.depth", "{item}", "Items waiting.")
    provider = instrument_service(
        "p", snapshot=lambda: {"service.queue.depth": 1}, metrics=[depth], telemetry=telemetry
    )
    Bus("tool", telemetry=telemetry).attach(provider)
    data = asyncio.run(telemetry.collect()).metrics
    names = {key[0] for key in _series(data)}
    assert "bus.queue.depth" in names
    assert not [name for name in names if "collection" in name]


def test_a_provider_series_appearing_among_many_unowned_ones_is_aggregated(telemetry: Telemetry) -> None:
    # Reads remember which points belonged to nobody; a provider's point added to the same metric
    # later is still found and aggregated.
    provider = instrument_service("openai_primary", telemetry=telemetry)
    bus = Bus("llm", telemetry=telemetry)
    bus.attach(provider)
    items = telemetry.get_meter("app").create_counter("app.items", unit="{item}")
    for index in range(500):  # within the default cardinality limit
        items.add(1, {"item.id": index})
    assert not any(name == "bus.app.items" for name, _ in _series(telemetry.read_metrics()))
    items.add(7, {"service.name": "openai_primary", "kind": "batch"})
    for index in range(500, 600):
        items.add(1, {"item.id": index})
    series = _series(telemetry.read_metrics())
    assert _get(series, "bus.app.items", bus__name="llm", kind="batch") == 7
    items.add(3, {"service.name": "openai_primary", "kind": "batch"})
    assert _get(_series(telemetry.read_metrics()), "bus.app.items", bus__name="llm", kind="batch") == 10


def test_a_provider_series_an_observable_instrument_reports_again_is_aggregated(telemetry: Telemetry) -> None:
    # An observable instrument's read leaves out the series its callback did not report, so the
    # series between its first and last can change while those two stay: its points are never
    # skipped as already seen.
    from opentelemetry.metrics import CallbackOptions, Observation

    provider = instrument_service("openai_primary", telemetry=telemetry)
    bus = Bus("llm", telemetry=telemetry)
    bus.attach(provider)
    owned = {"service.name": "openai_primary", "queue": "main"}
    rounds = [
        [({"queue.id": "a"}, 1), (owned, 5), ({"queue.id": "b"}, 1), ({"queue.id": "c"}, 1)],
        [({"queue.id": "a"}, 1), ({"queue.id": "b"}, 1), ({"queue.id": "c"}, 1)],
        [({"queue.id": "a"}, 1), (owned, 9), ({"queue.id": "c"}, 1)],
    ]
    current: list[tuple[dict[str, str], int]] = []

    def observe(options: CallbackOptions) -> list[Observation]:
        return [Observation(value, attributes) for attributes, value in current]

    telemetry.get_meter("app").create_observable_gauge("app.queue.depth", [observe], unit="{item}")
    seen = []
    for reported in rounds:
        current[:] = reported
        series = _series(telemetry.read_metrics())
        key = ("bus.app.queue.depth", frozenset({"bus.name": "llm", "queue": "main"}.items()))
        seen.append(series.get(key))
    assert seen[0] == 5
    assert seen[2] == 9  # read again once reported again, between two series seen before
