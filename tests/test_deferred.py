"""Meters taken before ``setup_telemetry``: every instrument kind binds to the runtime set up later,
and a measurement made before set-up sets the runtime up from the environment and is kept."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest
from opentelemetry.metrics import CallbackOptions, Counter, Meter, Observation, UpDownCounter, _Gauge
from opentelemetry.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)

from telemetry_otel import (
    ConfigurationError,
    Telemetry,
    current_telemetry,
    get_meter,
    setup_telemetry,
)

SCOPE = "early.module"
#: Early measurements kept for a replay (the README's "up to 10 000").
EARLY_MEASUREMENT_LIMIT = 10_000


def _scope_metrics(data: MetricsData, scope: str = SCOPE) -> dict[str, Metric]:
    """The metrics of instrumentation scope ``scope``, by name."""
    return {
        metric.name: metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == scope
        for metric in scope_metrics.metrics
    }


def _value(metric: Metric) -> tuple[str, float]:
    """(kind, value) of a metric with one number point: ``counter``, ``up-down`` or ``gauge``."""
    data = metric.data
    [point] = data.data_points
    assert isinstance(point, NumberDataPoint)
    if isinstance(data, Sum):
        return ("counter" if data.is_monotonic else "up-down"), point.value
    assert isinstance(data, Gauge)
    return "gauge", point.value


class _Callbacks:
    """Observable callbacks that count their calls."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def observe(self, name: str, value: float) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            self.calls[name] = self.calls.get(name, 0) + 1
            return [Observation(value, {"source": name})]

        return callback


@dataclass(frozen=True)
class _Synchronous:
    counter: Counter
    up_down: UpDownCounter
    histogram: HistogramInstrument
    gauge: _Gauge


def _create_all(meter: Meter, callbacks: _Callbacks) -> _Synchronous:
    """One instrument of every kind, with unit and description; the synchronous ones, to record."""
    meter.create_observable_counter(
        "early.bytes", [callbacks.observe("early.bytes", 11)], "By", "Bytes read."
    )
    meter.create_observable_up_down_counter(
        "early.queue", [callbacks.observe("early.queue", -4)], "{item}", "Queue change."
    )
    meter.create_observable_gauge("early.ratio", [callbacks.observe("early.ratio", 0.25)], "1", "Hit ratio.")
    return _Synchronous(
        counter=meter.create_counter("early.jobs", "{job}", "Jobs done."),
        up_down=meter.create_up_down_counter("early.active", "{job}", "Jobs running."),
        histogram=meter.create_histogram(
            "early.latency", "s", "Job latency.", explicit_bucket_boundaries_advisory=[1.0, 2.0]
        ),
        gauge=meter.create_gauge("early.temperature", "Cel", "Temperature."),
    )


def _record_all(instruments: _Synchronous) -> None:
    instruments.counter.add(2, {"job.kind": "import"})
    instruments.up_down.add(5)
    instruments.up_down.add(-2)
    instruments.histogram.record(1.5)
    instruments.gauge.set(7.5)


def _check_all(telemetry: Telemetry, callbacks: _Callbacks) -> None:
    metrics = _scope_metrics(telemetry.read_metrics())
    assert {name: _value(metrics[name]) for name in metrics if name != "early.latency"} == {
        "early.jobs": ("counter", 2),
        "early.active": ("up-down", 3),
        "early.temperature": ("gauge", 7.5),
        "early.bytes": ("counter", 11),
        "early.queue": ("up-down", -4),
        "early.ratio": ("gauge", 0.25),
    }
    assert {name: (metric.unit, metric.description) for name, metric in metrics.items()} == {
        "early.jobs": ("{job}", "Jobs done."),
        "early.active": ("{job}", "Jobs running."),
        "early.latency": ("s", "Job latency."),
        "early.temperature": ("Cel", "Temperature."),
        "early.bytes": ("By", "Bytes read."),
        "early.queue": ("{item}", "Queue change."),
        "early.ratio": ("1", "Hit ratio."),
    }
    assert metrics["early.jobs"].data.data_points[0].attributes == {"job.kind": "import"}
    assert metrics["early.ratio"].data.data_points[0].attributes == {"source": "early.ratio"}
    latency = metrics["early.latency"].data
    assert isinstance(latency, Histogram)
    [point] = latency.data_points
    assert isinstance(point, HistogramDataPoint)
    assert (point.count, point.sum, tuple(point.explicit_bounds), tuple(point.bucket_counts)) == (
        1,
        1.5,
        (1.0, 2.0),
        (0, 1, 0),
    )
    assert callbacks.calls == {"early.bytes": 1, "early.queue": 1, "early.ratio": 1}


def test_every_instrument_kind_taken_before_setup_reports_to_the_runtime_set_up_later(shared: None) -> None:
    meter = get_meter(SCOPE, "1.2.0", "https://opentelemetry.io/schemas/1.26.0")  # as at import time
    callbacks = _Callbacks()
    instruments = _create_all(meter, callbacks)
    # Creating instruments does not set the runtime up: the application's own set-up still can.
    telemetry = setup_telemetry(service_name="configured-later", set_global=False)
    assert telemetry.resource.attributes["service.name"] == "configured-later"
    assert callbacks.calls == {}
    _record_all(instruments)
    _check_all(telemetry, callbacks)
    [scope] = [
        scope_metrics.scope
        for resource_metrics in telemetry.read_metrics().resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == SCOPE
    ]
    assert (scope.version, scope.schema_url) == ("1.2.0", "https://opentelemetry.io/schemas/1.26.0")


def test_instruments_created_on_an_early_meter_after_setup_record_at_once(shared: None) -> None:
    meter = get_meter(SCOPE)
    telemetry = setup_telemetry(service_name="configured-first", set_global=False)
    callbacks = _Callbacks()
    instruments = _create_all(meter, callbacks)  # the meter is bound by now
    _record_all(instruments)
    _check_all(telemetry, callbacks)


@pytest.mark.parametrize(
    ("create", "record", "expected"),
    [
        (
            lambda meter: meter.create_counter("eager.instrument"),
            lambda instrument: instrument.add(3),
            ("counter", 3),
        ),
        (
            lambda meter: meter.create_up_down_counter("eager.instrument"),
            lambda instrument: instrument.add(-3),
            ("up-down", -3),
        ),
        (
            lambda meter: meter.create_gauge("eager.instrument"),
            lambda instrument: instrument.set(3.5),
            ("gauge", 3.5),
        ),
    ],
    ids=["counter", "up-down counter", "gauge"],
)
def test_a_measurement_before_setup_is_kept_and_the_explicit_setup_still_wins(
    shared: None,
    monkeypatch: pytest.MonkeyPatch,
    create: Callable[[Meter], object],
    record: Callable[[object], None],
    expected: tuple[str, float],
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    meter = get_meter(SCOPE)
    instrument = create(meter)
    record(instrument)  # before any set-up: a provisional runtime, from the environment
    telemetry = setup_telemetry(service_name="explicit", set_global=False)  # the app's own set-up
    assert telemetry.resource.attributes["service.name"] == "explicit"
    assert current_telemetry() is telemetry
    record(instrument)  # later measurements go to the runtime set up explicitly
    kind, value = expected
    assert _value(_scope_metrics(telemetry.read_metrics())["eager.instrument"]) == (
        kind,
        value if kind == "gauge" else 2 * value,
    )


def test_an_early_histogram_measurement_is_replayed_exactly_into_the_explicit_setup(
    shared: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    histogram = get_meter(SCOPE).create_histogram(
        "eager.latency", "s", "Latency.", explicit_bucket_boundaries_advisory=[0.1, 1.0]
    )
    histogram.record(0.5, {"route": "/a"})
    late_meter = get_meter("late.module")  # taken while the runtime is the provisional one
    jobs = late_meter.create_counter("late.jobs")
    jobs.add(4)
    telemetry = setup_telemetry(service_name="explicit", set_global=False)
    histogram.record(2.0, {"route": "/a"})
    jobs.add(1)
    data = telemetry.read_metrics()
    latency = _scope_metrics(data)["eager.latency"].data
    assert isinstance(latency, Histogram)
    [point] = latency.data_points
    assert isinstance(point, HistogramDataPoint)
    assert (point.count, point.sum, tuple(point.bucket_counts), dict(point.attributes or {})) == (
        2,
        2.5,
        (0, 1, 1),
        {"route": "/a"},
    )
    assert point.min == 0.5
    assert _value(_scope_metrics(data, "late.module")["late.jobs"]) == ("counter", 5)


def test_setup_first_then_measurements_record_at_once(shared: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    telemetry = setup_telemetry(service_name="explicit", set_global=False)
    counter = get_meter(SCOPE).create_counter("eager.instrument")
    counter.add(2)
    assert telemetry.resource.attributes["service.name"] == "explicit"
    assert _value(_scope_metrics(telemetry.read_metrics())["eager.instrument"]) == ("counter", 2)


def test_a_runtime_handed_out_by_current_telemetry_is_final(
    shared: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    get_meter(SCOPE).create_counter("eager.instrument").add(1)
    runtime = current_telemetry()  # someone holds it now (a service registers on it): no replacing
    with pytest.raises(ConfigurationError, match=r"call setup_telemetry\(\.\.\.\) before anything registers"):
        setup_telemetry(service_name="too-late", set_global=False)
    assert current_telemetry() is runtime
    assert runtime.resource.attributes["service.name"] == "from-env"


def test_early_instruments_of_a_disabled_sdk_are_harmless_no_ops(
    shared: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    callbacks = _Callbacks()
    instruments = _create_all(get_meter(SCOPE), callbacks)
    telemetry = setup_telemetry(set_global=False)
    assert telemetry.disabled
    _record_all(instruments)  # nothing raises
    assert telemetry.read_metrics().resource_metrics == []
    assert callbacks.calls == {}


def test_early_measurements_beyond_the_replay_limit_are_counted_and_logged(
    shared: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    jobs = get_meter(SCOPE).create_counter("eager.jobs")
    for _ in range(EARLY_MEASUREMENT_LIMIT + 3):
        jobs.add(1)
    telemetry = setup_telemetry(service_name="explicit", set_global=False)
    # The first EARLY_MEASUREMENT_LIMIT are carried over; the 3 beyond are said to be lost.
    assert _value(_scope_metrics(telemetry.read_metrics())["eager.jobs"]) == (
        "counter",
        EARLY_MEASUREMENT_LIMIT,
    )
    [warning] = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert warning.startswith(
        f"3 measurements made before setup_telemetry() beyond the first {EARLY_MEASUREMENT_LIMIT}"
    )
