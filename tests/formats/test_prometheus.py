"""Tests for the Prometheus text encoder, on ``MetricsData`` produced by a real SDK ``MeterProvider``."""

from __future__ import annotations

import itertools
import logging
import math
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence

import pytest
from _data import Record, collect, meter_provider, record_hostile, record_realistic
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.export import Histogram as HistogramData
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from telemetry_otel import Telemetry, TelemetryConfig
from telemetry_otel.formats import PROMETHEUS_TEXT_CONTENT_TYPE, encode_prometheus_text
from telemetry_otel.views import create_app

HOSTILE_VALUES: tuple[str, ...] = (
    "with space",
    "a,b,c",
    "k=v",
    'say "hi"',
    "back\\slash",
    "trailing backslash\\",
    '\\"',
    "\\n is not a newline",
    "line\nbreak",
    "\n",
    "tab\there\rcr",
    "ünïcødé ✓ 日本語 \u2028",
    "",
    "} {",
    "# not a comment",
)

_record_hostile = record_hostile(HOSTILE_VALUES)


def _encode(
    record: Record,
    *,
    resource: Resource | None = None,
    views: Sequence[View] = (),
    temporality: dict[type, AggregationTemporality] | None = None,
) -> str:
    return encode_prometheus_text(collect(record, resource=resource, views=views, temporality=temporality))


def _samples(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    return {
        family.name: [(sample.name, sample.labels, sample.value) for sample in family.samples]
        for family in text_string_to_metric_families(text)
    }


def _promtool() -> str:
    path = shutil.which("promtool") or shutil.which("/usr/bin/promtool")
    if path is None:
        pytest.fail("promtool is required for this test and was not found on PATH or at /usr/bin/promtool")
    return path


# --- 1. promtool ------------------------------------------------------------------------------


def _run_promtool(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_realistic_exposition() -> None:
    text = _encode(record_realistic)
    assert "service_requests_total{" in text
    assert "service_request_duration_seconds_bucket{" in text
    result = _run_promtool(text)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_promtool_accepts_hostile_exposition() -> None:
    result = _run_promtool(_encode(_record_hostile))
    # Exit code 3 is "lint problems" (1 would be a parse error). The only complaint is the
    # Prometheus naming advice against non-base units, which the OTel unit "ms" asks for.
    assert (result.returncode, result.stdout, result.stderr) == (
        3,
        "",
        'rpc_client_duration_milliseconds use base unit "seconds" instead of "milliseconds"\n',
    )


# --- 2. oracle: the reference exporter ----------------------------------------------------------

# Deliberate differences from opentelemetry-exporter-prometheus, normalised away below:
# * A Gauge in unit "1" gets the specification's "_ratio" suffix here; the reference adds nothing
#   (it has a TODO on exactly this rule).
_RATIO_RENAMES = {"system_cpu_utilization_ratio": "system_cpu_utilization"}


_Normalised = dict[str, tuple[str, str, list[tuple[str, list[tuple[str, str]], float]]]]


def _normalised(
    text: str, renames: Mapping[str, str] | None = None, *, agent: str | None = None
) -> _Normalised:
    """``text``'s families, comparable with the reference's; with ``agent``, every sample but
    ``target_info`` must carry that ``agent`` label (``/metrics`` names its agent, docs/fleet.md),
    which is then left out."""
    renames = renames or {}
    families: _Normalised = {}
    for family in text_string_to_metric_families(text):
        name = renames.get(family.name, family.name)
        samples = []
        for sample in family.samples:
            sample_name = sample.name
            for old, new in renames.items():
                if sample_name.startswith(old):
                    sample_name = new + sample_name[len(old) :]
            if agent is not None and sample.name != "target_info":  # the resource's own sample
                assert sample.labels.get("agent") == agent, sample
            labels = sorted(
                # * Empty label values: the reference always writes otel_scope_schema_url="" (and an
                #   empty otel_scope_version); this encoder omits empty scope labels. Prometheus treats
                #   an empty label value exactly like an absent label, so both are the same series.
                # * "le": the reference writes str(float) ("1000000000.0"), this encoder writes what
                #   prometheus_client's own histograms write (floatToGoString: "1e+09"); same number.
                (key, repr(float(value)) if key == "le" else value)
                for key, value in sample.labels.items()
                if value != "" and not (agent is not None and key == "agent")
            )
            samples.append((sample_name, labels, sample.value))
        assert name not in families, f"family {name} appears twice"
        families[name] = (family.type, family.documentation, sorted(samples))
    return families


def test_matches_reference_exporter() -> None:
    registry = CollectorRegistry()
    reference = PrometheusMetricReader(registry=registry)
    reader = InMemoryMetricReader()
    provider = meter_provider(reader, reference)
    try:
        _record_hostile(provider)
        data = reader.get_metrics_data()
        assert data is not None
        ours = encode_prometheus_text(data)
        theirs = generate_latest(registry).decode("utf-8")
    finally:
        provider.shutdown()

    ours_families = _normalised(ours, _RATIO_RENAMES)
    theirs_families = _normalised(theirs)
    assert list(ours_families) == list(theirs_families)
    for name, family in theirs_families.items():
        assert ours_families[name] == family, name
    # The reference run really exercised the interesting cases.
    assert {
        "target_info",
        "service_requests",
        "cache_hits",
        "net_io_sent_bytes",
        "disk_io_read_bytes",
    } <= set(ours_families)
    assert ours_families["rpc_client_duration_milliseconds"][0] == "histogram"
    assert ours_families["db_pool_connections"][0] == "gauge"
    assert ours_families["net_throughput_bytes_per_second"][0] == "counter"
    assert ours_families["events_rate_per_second"][0] == "counter"
    assert "system_cpu_utilization_ratio{" in ours


# --- 3. escaping round-trips ------------------------------------------------------------------


def _round_trip_label(value: str) -> str:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("escaping").create_counter("escaped", description="x").add(1, {"value": value})

    (sample,) = _samples(_encode(record))["escaped"]
    return sample[1]["value"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_label_values_round_trip(value: str) -> None:
    assert _round_trip_label(value) == value


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_arbitrary_label_values_round_trip(value: str) -> None:
    assert _round_trip_label(value) == value


def test_help_text_is_escaped() -> None:
    description = 'Back\\slash, "quotes", and\na newline.'

    def record(provider: MeterProvider) -> None:
        provider.get_meter("help").create_counter("documented", description=description).add(1)

    text = _encode(record)
    assert '# HELP documented_total Back\\\\slash, "quotes", and\\na newline.\n' in text
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == "documented"]
    assert family.documentation == description


# --- 4. histograms ----------------------------------------------------------------------------


def test_histogram_buckets_are_cumulative_with_inf_count_and_sum() -> None:
    values = (0.05, 0.1, 0.7, 3.0, 3.0, 42.0)

    def record(provider: MeterProvider) -> None:
        histogram = provider.get_meter("hist").create_histogram(
            "job.duration", unit="s", description="d", explicit_bucket_boundaries_advisory=[0.1, 1, 2.5, 10]
        )
        for value in values:
            histogram.record(value, {"queue": "default"})

    text = _encode(record)
    samples = _samples(text)["job_duration_seconds"]
    buckets = [(labels["le"], value) for name, labels, value in samples if name.endswith("_bucket")]
    assert buckets == [("0.1", 2), ("1.0", 3), ("2.5", 3), ("10.0", 5), ("+Inf", 6)]
    assert all(a <= b for (_, a), (_, b) in itertools.pairwise(buckets))
    (count,) = [value for name, _, value in samples if name == "job_duration_seconds_count"]
    (total,) = [value for name, _, value in samples if name == "job_duration_seconds_sum"]
    assert count == buckets[-1][1] == len(values)
    assert total == pytest.approx(sum(values))
    assert 'job_duration_seconds_bucket{queue="default",otel_scope_name="hist",le="+Inf"} 6\n' in text
    # Bucket, sum and count lines of one data point share one label set apart from "le".
    label_sets = {tuple(sorted((k, v) for k, v in labels.items() if k != "le")) for _, labels, _ in samples}
    assert len(label_sets) == 1


# --- 5. label keys ----------------------------------------------------------------------------


def test_label_key_collision_values_joined_in_original_key_order() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("collide").create_counter("collisions", description="c").add(
            1, {"a_b": "underscore", "a.b": "dot", "a-b": "dash", "a__b": 7, "other": "x"}
        )

    text = _encode(record)
    ((_, labels, value),) = _samples(text)["collisions"]
    # Sorted original keys: "a-b" < "a.b" < "a__b" < "a_b".
    assert labels == {"a_b": "dash;dot;7;underscore", "other": "x", "otel_scope_name": "collide"}
    assert value == 1
    assert text.count("a_b=") == 1


def test_label_key_sanitisation() -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("keys")
        meter.create_counter("keys", description="k").add(
            1, {"http.request.method": "GET", "1st": "a", "__meta": "b", "ünï.code": "c", "x--y..z": "d"}
        )
        meter.create_histogram("sized", description="s").record(1, {"le": "user", "kind": "k"})

    samples = _samples(_encode(record))
    ((_, labels, _),) = samples["keys"]
    assert labels == {
        "http_request_method": "GET",
        "key_1st": "a",
        "key_meta": "b",
        "_n_code": "c",
        "x_y_z": "d",
        "otel_scope_name": "keys",
    }
    # A histogram attribute mapping to "le" would clash with the bucket bound: it is dropped.
    for name, labels, _ in samples["sized"]:
        assert labels.get("kind") == "k"
        assert ("le" in labels) == name.endswith("_bucket")
        assert labels.get("le") != "user"


def test_attribute_value_types() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("types").create_counter("typed", description="t").add(
            1, {"b": True, "i": -3, "f": 0.1, "s": ("x", 'y"'), "n": (1, 2), "e": ()}
        )

    ((_, labels, _),) = _samples(_encode(record))["typed"]
    assert labels == {
        "b": "true",
        "i": "-3",
        "f": "0.1",
        "s": '["x", "y\\""]',
        "n": "[1, 2]",
        "e": "[]",
        "otel_scope_name": "types",
    }


# --- 6. families, TYPE lines, trailing newline -------------------------------------------------


def test_same_family_from_two_scopes_is_merged_under_one_type() -> None:
    def record(provider: MeterProvider) -> None:
        for scope in ("scope.a", "scope.b"):
            meter = provider.get_meter(scope, "1.0")
            meter.create_counter("jobs.done", description=f"Jobs done ({scope}).").add(1, {"queue": "q"})
            meter.create_histogram("jobs.duration", unit="s", description="Durations.").record(0.5)
        provider.get_meter("scope.c").create_gauge("jobs.last", description="Last.").set(1)

    text = _encode(record)
    assert text.endswith("\n")
    assert not text.endswith("\n\n")
    lines = text.splitlines()
    assert lines.count("# TYPE jobs_done_total counter") == 1
    assert lines.count("# TYPE jobs_duration_seconds histogram") == 1
    assert [line for line in lines if line.startswith("# HELP jobs_done_total")] == [
        "# HELP jobs_done_total Jobs done (scope.a)."
    ]
    type_lines = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert type_lines == ["target_info", "jobs_done_total", "jobs_duration_seconds", "jobs_last"]
    assert len(type_lines) == len(set(type_lines))
    # Families are never interleaved: every sample line follows its own family's TYPE line.
    current = ""
    for line in lines:
        if line.startswith("# TYPE "):
            current = line.split()[2]
        elif not line.startswith("#"):
            assert line.startswith(current), line
    counter = _samples(text)["jobs_done"]
    assert [labels["otel_scope_name"] for _, labels, _ in counter] == ["scope.a", "scope.b"]
    assert all(labels["otel_scope_version"] == "1.0" for _, labels, _ in counter)
    ((_, last_labels, _),) = _samples(text)["jobs_last"]
    assert "otel_scope_version" not in last_labels
    assert _run_promtool(text).returncode == 0


def test_conflicting_type_drops_the_later_family(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("first").create_counter("jobs", description="c").add(1)
        provider.get_meter("second").create_gauge("jobs_total", description="g").set(5)

    with caplog.at_level(logging.WARNING):
        text = _encode(record)
    assert text.count("# TYPE jobs_total ") == 1
    assert "# TYPE jobs_total counter\n" in text
    assert _samples(text)["jobs"] == [("jobs_total", {"otel_scope_name": "first"}, 1)]
    assert any("jobs_total" in entry.getMessage() for entry in caplog.records)


def test_first_non_empty_description_is_the_help() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("undocumented").create_counter("merged").add(1)
        provider.get_meter("documented").create_counter("merged", description="Documented.").add(1)
        provider.get_meter("other").create_counter("merged", description="Other.").add(1)

    text = _encode(record, resource=Resource.get_empty())
    assert text.startswith("# HELP merged_total Documented.\n# TYPE merged_total counter\n")
    assert text.count("# HELP") == 1
    assert len(_samples(text)["merged"]) == 3


def test_empty_data_is_empty_text() -> None:
    # The SDK returns None rather than an empty MetricsData when nothing was recorded.
    assert encode_prometheus_text(MetricsData(resource_metrics=[])) == ""


def test_target_info_first_with_resource_attributes_only() -> None:
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.namespace": "shop",
            "service.instance.id": "pod-1",
            "k8s.pod": 'p"1',
        }
    )

    def record(provider: MeterProvider) -> None:
        provider.get_meter("t").create_counter("c", description="c").add(1)

    text = _encode(record, resource=resource)
    assert text.startswith("# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{")
    ((_, labels, value),) = _samples(text)["target_info"]
    assert value == 1
    assert labels["service_name"] == "checkout"
    assert labels["service_namespace"] == "shop"
    assert labels["service_instance_id"] == "pod-1"
    assert labels["k8s_pod"] == 'p"1'
    # Like the reference SDK exporter: no job/instance (the spec reserves that for the Collector).
    assert "job" not in labels
    assert "instance" not in labels
    ((_, counter_labels, _),) = _samples(text)["c"]
    assert counter_labels == {"otel_scope_name": "t"}


def test_no_target_info_for_an_empty_resource() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("t").create_counter("c", description="c").add(1)

    text = _encode(record, resource=Resource.get_empty())
    assert text == '# HELP c_total c\n# TYPE c_total counter\nc_total{otel_scope_name="t"} 1\n'


# --- naming, types, skipped data ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "unit", "expected"),
    [
        ("counter", "service.requests", "{request}", "service_requests_total"),
        ("counter", "requests_total", "", "requests_total"),
        ("counter", "requests.total", "{request}", "requests_total"),
        ("counter", "io.sent", "By", "io_sent_bytes_total"),
        ("counter", "gc.time", "ms", "gc_time_milliseconds_total"),
        ("counter", "cpu.time_seconds", "s", "cpu_time_seconds_total"),
        ("counter", "jobs", "1", "jobs_total"),
        ("counter", "events", "1/s", "events_per_second_total"),
        ("counter", "odd-name..x/y", "packets", "odd_name_x_y_packets_total"),
        ("updown", "queue.size", "1", "queue_size"),
        ("updown", "net-io", "By/s", "net_io_bytes_per_second"),
        ("updown", "heap", "MiBy", "heap_mebibytes"),
        ("histogram", "http.server.request.duration", "s", "http_server_request_duration_seconds"),
        ("histogram", "rpc.duration", "us", "rpc_duration_microseconds"),
        ("histogram", "body.size", "KBy", "body_size_kilobytes"),
        ("gauge", "cpu.utilization", "1", "cpu_utilization_ratio"),
        ("gauge", "cpu.ratio", "1", "cpu_ratio"),
        ("gauge", "disk.used", "%", "disk_used_percent"),
        ("gauge", "room.temp", "Cel", "room_temp_celsius"),
        ("gauge", "uptime", "h", "uptime_hours"),
        ("gauge", "age", "d", "age_days"),
        ("gauge", "cpu.freq", "Hz", "cpu_freq_hertz"),
        ("gauge", "power", "W", "power_watts"),
        ("gauge", "latency_seconds", "s", "latency_seconds"),
        ("gauge", "mem", "GiBy", "mem_gibibytes"),
        ("gauge", "wait", "min", "wait_minutes"),
        ("gauge", "span", "m", "span_meters"),
        ("gauge", "tick", "ns", "tick_nanoseconds"),
        ("gauge", "rate", "{packet}/s", "rate_per_second"),
    ],
)
def test_metric_names(kind: str, name: str, unit: str, expected: str) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("names")
        if kind == "counter":
            meter.create_counter(name, unit=unit, description="x").add(1)
        elif kind == "updown":
            meter.create_up_down_counter(name, unit=unit, description="x").add(1)
        elif kind == "histogram":
            meter.create_histogram(name, unit=unit, description="x").record(1)
        else:
            meter.create_gauge(name, unit=unit, description="x").set(1)

    text = _encode(record, resource=Resource.get_empty())
    prom_type = {"counter": "counter", "updown": "gauge", "histogram": "histogram", "gauge": "gauge"}[kind]
    assert f"# TYPE {expected} {prom_type}\n" in text
    assert _run_promtool(text).returncode in (0, 3)  # parses; lint may dislike e.g. "_milliseconds"


def test_renamed_metric_with_leading_digit_and_colon() -> None:
    # The SDK validates instrument names but not view names, so a view can produce these.
    view = View(instrument_name="renamed", name="2xx.responses:rate")

    def record(provider: MeterProvider) -> None:
        provider.get_meter("v").create_counter("renamed", description="r").add(1)

    text = _encode(record, views=[view], resource=Resource.get_empty())
    assert "# TYPE _2xx_responses:rate_total counter\n" in text


def test_delta_temporality_is_skipped() -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("delta")
        meter.create_counter("delta.counter", description="d").add(1)
        meter.create_histogram("delta.histogram", description="d").record(1)
        meter.create_up_down_counter("cumulative.updown", description="c").add(1)

    temporality: dict[type, AggregationTemporality] = {
        Counter: AggregationTemporality.DELTA,
        Histogram: AggregationTemporality.DELTA,
    }
    text = _encode(record, temporality=temporality, resource=Resource.get_empty())
    assert "delta" not in text.replace('otel_scope_name="delta"', "")
    assert "# TYPE cumulative_updown gauge\n" in text

    everything_delta: dict[type, AggregationTemporality] = {
        **temporality,
        UpDownCounter: AggregationTemporality.DELTA,
    }
    assert "cumulative_updown" not in _encode(record, temporality=everything_delta)


def test_exponential_histogram_is_skipped() -> None:
    view = View(instrument_name="exp.*", aggregation=ExponentialBucketHistogramAggregation())

    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("exp")
        meter.create_histogram("exp.latency", description="e").record(3)
        meter.create_histogram("plain.latency", description="p").record(3)

    text = _encode(record, views=[view], resource=Resource.get_empty())
    assert "exp_latency" not in text
    assert "# TYPE plain_latency histogram\n" in text


# --- values -----------------------------------------------------------------------------------


def test_values_ints_floats() -> None:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(2**60, {"v": "big"})
        yield Observation(0.1, {"v": "tenth"})
        yield Observation(1e-7, {"v": "tiny"})
        yield Observation(-2.5e21, {"v": "huge"})
        yield Observation(3.0, {"v": "integral"})

    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("values")
        meter.create_observable_gauge("values", callbacks=[observe], description="v")
        meter.create_counter("ints", description="i").add(5)

    text = _encode(record, resource=Resource.get_empty())
    assert 'values{v="big",otel_scope_name="values"} 1152921504606846976\n' in text
    assert 'values{v="tenth",otel_scope_name="values"} 0.1\n' in text
    assert 'values{v="tiny",otel_scope_name="values"} 1e-07\n' in text
    assert 'values{v="huge",otel_scope_name="values"} -2.5e+21\n' in text
    assert 'values{v="integral",otel_scope_name="values"} 3.0\n' in text
    assert 'ints_total{otel_scope_name="values"} 5\n' in text


def test_non_finite_values() -> None:
    # The SDK pipeline refuses non-finite measurements, so these points are built from the SDK's
    # own data classes: the only way such values can reach the encoder is a MetricProducer.
    points = [
        NumberDataPoint(attributes={"v": name}, start_time_unix_nano=0, time_unix_nano=1, value=value)
        for name, value in (("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf))
    ]
    data = MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource.get_empty(),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope("producer"),
                        metrics=[
                            Metric(name="odd", description="o", unit="", data=Gauge(data_points=points))
                        ],
                        schema_url="",
                    )
                ],
                schema_url="",
            )
        ]
    )
    text = encode_prometheus_text(data)
    assert 'odd{v="nan",otel_scope_name="producer"} NaN\n' in text
    assert 'odd{v="inf",otel_scope_name="producer"} +Inf\n' in text
    assert 'odd{v="ninf",otel_scope_name="producer"} -Inf\n' in text
    parsed = {labels["v"]: value for _, labels, value in _samples(text)["odd"]}
    assert math.isnan(parsed["nan"])
    assert parsed["inf"] == math.inf
    assert parsed["ninf"] == -math.inf


def test_content_type() -> None:
    assert PROMETHEUS_TEXT_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


# --- 10. one metric, points of many shapes (the per-key-set writers and the general path) -------


def test_points_of_one_metric_with_different_attribute_shapes_each_get_their_own_labels() -> None:
    shapes: list[dict[str, object]] = [
        {"a": "1", "b": "2"},
        {"b": "3", "a": "4"},  # the same keys in another order
        {"a": "5", "c": "6"},  # as many keys, another one
        {"a": "7"},
        {},
        {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"},
        {"a": True, "b": 1, "c": 1.0},  # equal as keys, different as label text
        {"a": 1, "b": True, "c": 1.5},
        {"a": ["x", "y"], "b": "list"},  # an unhashable value (a producer may hand one over)
        {"a": "1", "b": "2", "c": "3", "d": "4"},  # more keys than the fast writers take
        {"x.y": "dotted", "x_y": "underscored"},  # colliding labels
        {"a": "8", "b": "9"},
        {"": "no label", "a": "10"},  # an empty key makes no label
        {"a": "11", "b": "12"},  # as many keys as the one before, one of them another
    ]
    points = [
        NumberDataPoint(attributes=shape, start_time_unix_nano=1, time_unix_nano=2, value=index)  # type: ignore[arg-type]
        for index, shape in enumerate(shapes)
    ]
    data = MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource({}),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope("shapes", "1.0"),
                        metrics=[
                            Metric(
                                name="shaped",
                                description="",
                                unit="",
                                data=Gauge(data_points=points),
                            )
                        ],
                        schema_url="",
                    )
                ],
                schema_url="",
            )
        ]
    )
    samples = {value: labels for _, labels, value in _samples(encode_prometheus_text(data))["shaped"]}
    scope = {"otel_scope_name": "shapes", "otel_scope_version": "1.0"}
    assert samples == {
        0: {"a": "1", "b": "2", **scope},
        1: {"a": "4", "b": "3", **scope},
        2: {"a": "5", "c": "6", **scope},
        3: {"a": "7", **scope},
        4: scope,
        5: {"a": 'q"uote', "b": "back\\slash", "c": "new\nline", **scope},
        6: {"a": "true", "b": "1", "c": "1.0", **scope},
        7: {"a": "1", "b": "true", "c": "1.5", **scope},
        8: {"a": '["x", "y"]', "b": "list", **scope},
        9: {"a": "1", "b": "2", "c": "3", "d": "4", **scope},
        10: {"x_y": "dotted;underscored", **scope},
        11: {"a": "8", "b": "9", **scope},
        12: {"a": "10", **scope},
        13: {"a": "11", "b": "12", **scope},
    }


# --- 11. oracle on the real route: GET /metrics of a runtime against the reference exporter -----


def test_metrics_route_matches_reference_exporter() -> None:
    telemetry = Telemetry(TelemetryConfig(service_name="checkout"))
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], resource=telemetry.resource
    )
    try:
        _record_hostile(telemetry.meter_provider)  # type: ignore[arg-type]
        _record_hostile(provider)
        with TestClient(create_app(telemetry, cache_ttl_seconds=0)) as client:
            response = client.get("/metrics", headers={"Accept-Encoding": "identity"})
        theirs = generate_latest(registry).decode("utf-8")
    finally:
        provider.shutdown()
        telemetry.shutdown()

    ours_families = _normalised(response.text, _RATIO_RENAMES, agent="checkout")
    theirs_families = _normalised(theirs)
    runtime_own = {name for name, (_, _, samples) in ours_families.items() if name not in theirs_families}
    # The only families the reference lacks are the runtime's own collector series.
    assert runtime_own
    for name in runtime_own:
        assert all(
            dict(labels)["otel_scope_name"] == "telemetry_otel.collector"
            for _, labels, _ in ours_families[name][2]
        ), name
    assert [name for name in ours_families if name not in runtime_own] == list(theirs_families)
    for name, family in theirs_families.items():
        assert ours_families[name] == family, name


def _histogram_text(counts: list[int], bounds: list[float], attributes: dict[str, str]) -> str:
    point = HistogramDataPoint(attributes, 1, 2, sum(counts), 1.5, counts, bounds, 0.1, 2.0, None)
    metric = Metric("wait", "", "s", HistogramData([point], AggregationTemporality.CUMULATIVE))
    scope = InstrumentationScope("s")
    return encode_prometheus_text(
        MetricsData([ResourceMetrics(Resource.get_empty(), [ScopeMetrics(scope, [metric], "")], "")])
    )


def test_histogram_bucket_lines_carry_exact_cumulative_counts() -> None:
    huge = 2**70  # beyond a float's exact integers: written digit for digit
    text = _histogram_text([1, huge, 0], [0.5, 1.0], {"a": 'x"%s\0'})
    assert 'wait_seconds_bucket{a="x\\"%s\0",otel_scope_name="s",le="0.5"} 1\n' in text
    assert f'wait_seconds_bucket{{a="x\\"%s\0",otel_scope_name="s",le="1.0"}} {huge + 1}\n' in text
    assert f'wait_seconds_bucket{{a="x\\"%s\0",otel_scope_name="s",le="+Inf"}} {huge + 1}\n' in text


def test_histogram_with_fewer_counts_than_buckets_writes_the_buckets_it_has() -> None:
    text = _histogram_text([2, 3], [0.5, 1.0, 2.0], {})
    buckets = [line for line in text.splitlines() if line.startswith("wait_seconds_bucket")]
    assert buckets == [
        'wait_seconds_bucket{otel_scope_name="s",le="0.5"} 2',
        'wait_seconds_bucket{otel_scope_name="s",le="1.0"} 5',
    ]
