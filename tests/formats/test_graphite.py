"""Tests for the Graphite plaintext encoder, on ``MetricsData`` produced by a real SDK ``MeterProvider``.

Every output is read back by a strict parser written here from carbon's rules (a line is split on
whitespace into path, value and timestamp; a tagged path is ``name;k=v;...``), and the values that
come back are compared with the documented sanitisation, written here independently of the encoder.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import string
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial

import pytest
from _data import collect, metrics_data
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from telemetry_otel.formats import encode_graphite

HOSTILE_VALUES: tuple[str, ...] = (
    "with space",
    "a,b,c",
    "k=v",
    "semi;colon",
    'say "hi"',
    "back\\slash",
    "trailing backslash\\",
    "line\nbreak",
    "\n",
    "tab\there\rcr",
    "user@example.com",
    "dotted.value.here",
    "ünïcødé ✓ 日本語 \u2028 nbsp\xa0end",
    "~tilde first",
    "~",
    "mid~tilde",
    "!^=",
    'json {"a": "b"}',
    "nul\x00and\x7fdel",
    "",
    "} {",
    "# not a comment",
)

NODE_CHARS = frozenset(string.ascii_letters + string.digits + "_-")


# --- the strict parser ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    path: str  # the metric path: the whole name (hierarchical) or the part before the first ";"
    tags: dict[str, str]
    value: float
    timestamp: int
    raw_value: str


def _is_forbidden(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cc"


def parse_graphite(text: str, *, tagged: bool) -> list[Line]:
    """Parse plaintext protocol as carbon does, and fail on anything carbon would misread or refuse."""
    if text == "":
        return []
    assert text.endswith("\n"), "the text must end with a newline"
    lines: list[Line] = []
    for raw in text[:-1].split("\n"):
        fields = raw.split(" ")
        assert len(fields) == 3, f"not exactly three single-space separated fields: {raw!r}"
        assert fields == raw.split(), f"whitespace other than the two separators: {raw!r}"  # carbon splits so
        path, raw_value, raw_timestamp = fields
        assert re.fullmatch(r"-?\d+(\.\d+)?(e[+-]\d+)?", raw_value), raw_value
        value = float(raw_value)
        assert math.isfinite(value)
        assert re.fullmatch(r"\d+", raw_timestamp), raw_timestamp
        assert not any(unicodedata.category(char) == "Cc" for char in path), path
        tags: dict[str, str] = {}
        name, *segments = path.split(";")
        assert all(set(node) <= NODE_CHARS and node for node in name.split(".")), f"bad node in {name!r}"
        if tagged:
            # carbon parses a path ending in '"}' that contains '{' as OpenMetrics instead.
            assert not (path.endswith('"}') and "{" in path), path
            for segment in segments:
                key, equals, value_text = segment.partition("=")
                assert equals, f"tag segment without '=': {segment!r}"
                assert key, f"empty tag key in {path!r}"
                assert not set(key) & set(";!^="), key
                assert key != "name", "'name' is Graphite's own tag"
                assert value_text, f"empty value of tag {key!r}"
                assert not value_text.startswith("~"), value_text
                assert key not in tags, f"duplicate tag {key!r}"
                tags[key] = value_text
            assert list(tags) == sorted(tags), f"tags not sorted by key: {path!r}"
        else:
            assert not segments, f"';' in a hierarchical path: {path!r}"
        lines.append(Line(name, tags, value, int(raw_timestamp), raw_value))
    return lines


# --- the documented sanitisation, written independently ------------------------------------------


def expected_tag_value(text: str) -> str | None:
    """``None``: the tag is dropped."""
    if not text:
        return None
    value = "".join("_" if char == ";" or _is_forbidden(char) else char for char in text)
    if value.startswith("~"):
        value = "_" + value[1:]
    if value.endswith('"}'):
        value = value[:-1] + "_"
    return value


def expected_tag_key(key: str) -> str:
    tag = "".join("_" if char in ";!^=" or _is_forbidden(char) else char for char in key)
    return "_name" if tag == "name" else tag


def expected_node(text: str) -> str:
    return "".join(char if char in NODE_CHARS else "_" for char in text)


# --- recording helpers ---------------------------------------------------------------------------


_collect = partial(collect, service_name="agent")


def _round_trip(value: str, *, tagged: bool) -> list[Line]:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("escaping").create_counter("escaped").add(7, {"value": value, "k": "v"})

    lines = parse_graphite(encode_graphite(_collect(record), tagged=tagged), tagged=tagged)
    assert len(lines) == 1
    return lines


# --- layout --------------------------------------------------------------------------------------


def _memory(options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(123_456_789, {"process.memory.type": "rss"})
    yield Observation(0.5, {"process.memory.type": "share.ratio"})


def _record_realistic(provider: MeterProvider) -> None:
    meter = provider.get_meter("checkout.http", "2.1.0")
    requests = meter.create_counter("service.requests", unit="{request}")
    duration = meter.create_histogram(
        "service.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.005, 0.1, 1]
    )
    meter.create_observable_gauge("process.memory.usage", callbacks=[_memory], unit="By")
    for route, seconds in (("/cart", 0.05), ("/cart", 0.5), ("/cart", 7.0)):
        requests.add(1, {"http.route": route, "service.name": "cart"})
        duration.record(seconds, {"http.route": route, "service.name": "cart"})
    meter.create_up_down_counter("service.requests-active").add(-2)


def _timestamps(data: MetricsData) -> set[int]:
    return {
        point.time_unix_nano // 1_000_000_000
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric.data.data_points
    }


def test_tagged_layout() -> None:
    data = _collect(_record_realistic)
    (now,) = _timestamps(data)
    scope = "otel.scope.name=checkout.http"
    tags = f"http.route=/cart;{scope};service.name=cart"
    assert encode_graphite(data) == "".join(
        f"{line} {now}\n"
        for line in (
            f"service.requests;{tags} 3",
            f"service.request.duration.count;{tags} 3",
            f"service.request.duration.sum;{tags} 7.55",
            f"service.request.duration.min;{tags} 0.05",
            f"service.request.duration.max;{tags} 7.0",
            f"service.request.duration.bucket;http.route=/cart;le=0.005;{scope};service.name=cart 0",
            f"service.request.duration.bucket;http.route=/cart;le=0.1;{scope};service.name=cart 1",
            f"service.request.duration.bucket;http.route=/cart;le=1.0;{scope};service.name=cart 2",
            f"service.request.duration.bucket;http.route=/cart;le=+Inf;{scope};service.name=cart 3",
            f"service.requests-active;{scope} -2",
            f"process.memory.usage;{scope};process.memory.type=rss 123456789",
            f"process.memory.usage;{scope};process.memory.type=share.ratio 0.5",
        )
    )


def test_hierarchical_layout() -> None:
    data = _collect(_record_realistic)
    (now,) = _timestamps(data)
    nodes = "http_route._cart.service_name.cart"
    assert encode_graphite(data, tagged=False, prefix="prod.eu-1") == "".join(
        f"prod.eu-1.{line} {now}\n"
        for line in (
            f"service.requests.{nodes} 3",
            f"service.request.duration.{nodes}.count 3",
            f"service.request.duration.{nodes}.sum 7.55",
            f"service.request.duration.{nodes}.min 0.05",
            f"service.request.duration.{nodes}.max 7.0",
            f"service.request.duration.{nodes}.bucket.le_0_005 0",
            f"service.request.duration.{nodes}.bucket.le_0_1 1",
            f"service.request.duration.{nodes}.bucket.le_1_0 2",
            f"service.request.duration.{nodes}.bucket.le_inf 3",
            "service.requests-active -2",
            "process.memory.usage.process_memory_type.rss 123456789",
            "process.memory.usage.process_memory_type.share_ratio 0.5",
        )
    )


@pytest.mark.parametrize("tagged", [True, False])
def test_parser_accepts_realistic_output(tagged: bool) -> None:
    lines = parse_graphite(encode_graphite(_collect(_record_realistic), tagged=tagged), tagged=tagged)
    assert len(lines) == 12


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (None, "jobs.done"),
        ("", "jobs.done"),
        ("prod", "prod.jobs.done"),
        ("prod.eu-1.", "prod.eu-1.jobs.done"),
        (".a..b c.", "a.b_c.jobs.done"),
        ("...", "jobs.done"),
    ],
)
def test_prefix(prefix: str | None, expected: str) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("p").create_counter("jobs.done").add(1)

    (line,) = parse_graphite(encode_graphite(_collect(record), prefix=prefix), tagged=True)
    assert line.path == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("service.request.duration", "service.request.duration"),
        ("cache-hits.total", "cache-hits.total"),
        ("requests_total", "requests_total"),
        ("2xx.responses:rate", "2xx.responses_rate"),
        ("a..b.", "a.b"),
        ("ünï code/x", "_n__code_x"),
    ],
)
def test_metric_names(name: str, expected: str) -> None:
    # The SDK validates instrument names but not view names, so a view produces the odd ones.
    def record(provider: MeterProvider) -> None:
        provider.get_meter("n").create_counter("renamed", unit="s").add(1)

    data = _collect(record, views=[View(instrument_name="renamed", name=name)])
    for tagged in (True, False):
        (line,) = parse_graphite(encode_graphite(data, tagged=tagged), tagged=tagged)
        assert line.path == expected  # no unit suffix, no "_total"


def test_name_without_nodes_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("n")
        meter.create_counter("dots").add(1)
        meter.create_counter("kept").add(1)

    data = _collect(record, views=[View(instrument_name="dots", name="..")])
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.formats"):
        lines = parse_graphite(encode_graphite(data), tagged=True)
    assert [line.path for line in lines] == ["kept"]
    assert any("'..'" in record.getMessage() for record in caplog.records)


# --- attribute values ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_round_trip_tagged(value: str) -> None:
    (line,) = _round_trip(value, tagged=True)
    expected = expected_tag_value(value)
    assert line.tags.get("value") == expected
    assert line.tags["k"] == "v"
    assert line.value == 7


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_round_trip_hierarchical(value: str) -> None:
    (line,) = _round_trip(value, tagged=False)
    expected = f"escaped.k.v.value.{expected_node(value)}" if value else "escaped.k.v"
    assert line.path == expected


def test_sanitisation_examples() -> None:
    assert expected_tag_value("~x;y z") == "_x_y_z"
    for value, tagged_value, node in (
        ("dotted.value", "dotted.value", "dotted_value"),
        ("a b;c", "a_b_c", "a_b_c"),
        ("~home", "_home", "_home"),
        ("x~", "x~", "x_"),
        ('{"k": "v"}', '{"k":_"v"_', "__k____v__"),
        ("k=v!^", "k=v!^", "k_v__"),
    ):
        (tagged_line,) = _round_trip(value, tagged=True)
        (hierarchical_line,) = _round_trip(value, tagged=False)
        assert tagged_line.tags["value"] == tagged_value
        assert hierarchical_line.path == f"escaped.k.v.value.{node}"


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_arbitrary_values_round_trip(value: str) -> None:
    (tagged_line,) = _round_trip(value, tagged=True)
    assert tagged_line.tags.get("value") == expected_tag_value(value)
    (hierarchical_line,) = _round_trip(value, tagged=False)
    assert hierarchical_line.path == (f"escaped.k.v.value.{expected_node(value)}" if value else "escaped.k.v")


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1), value=st.text(min_size=1))
def test_arbitrary_keys_round_trip(key: str, value: str) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("keys").create_counter("keyed").add(1, {key: value})

    data = _collect(record)
    (line,) = parse_graphite(encode_graphite(data), tagged=True)
    tag_key = expected_tag_key(key)
    if tag_key == "otel.scope.name":
        assert line.tags == {tag_key: expected_tag_value(value)}
    else:
        assert line.tags == {tag_key: expected_tag_value(value), "otel.scope.name": "keys"}
    (node_line,) = parse_graphite(encode_graphite(data, tagged=False), tagged=False)
    assert node_line.path == f"keyed.{expected_node(key)}.{expected_node(value)}"


def test_empty_values_are_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("empty").create_counter("blank").add(1, {"empty": "", "full": "x"})

    data = _collect(record)
    for tagged in (True, False):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
            (line,) = parse_graphite(encode_graphite(data, tagged=tagged), tagged=tagged)
        if tagged:
            assert line.tags == {"full": "x", "otel.scope.name": "empty"}
        else:
            assert line.path == "blank.full.x"
        messages = [record.getMessage() for record in caplog.records]
        assert messages == ["Dropping attribute 'empty' of metric 'blank': empty value"]


def test_attribute_value_types() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("types").create_counter("typed").add(
            1, {"b": True, "i": -3, "f": 0.1, "s": ("x", "y z"), "n": (1, 2), "e": ()}
        )

    (line,) = parse_graphite(encode_graphite(_collect(record)), tagged=True)
    assert line.tags == {
        "b": "true",
        "e": "[]",
        "f": "0.1",
        "i": "-3",
        "n": "[1,_2]",
        "otel.scope.name": "types",
        "s": '["x",_"y_z"]',
    }


# --- tag keys ------------------------------------------------------------------------------------


def test_tag_key_sanitisation_and_collisions(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("keys")
        meter.create_counter("keys").add(
            1,
            {
                "http.route": "/a",
                "semi;colon": "1",
                "semi_colon": "2",
                "bang!": "3",
                "care^t": "4",
                "eq=ual": "5",
                "sp ace": "6",
                "name": "7",
                "~tilde": "8",
            },
        )
        meter.create_histogram("sized", explicit_bucket_boundaries_advisory=[1]).record(
            0.5, {"le": "user", "kind": "k"}
        )

    data = _collect(record)
    with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
        lines = parse_graphite(encode_graphite(data), tagged=True)
    keys_line = lines[0]
    # "semi;colon" sorts before "semi_colon": it keeps the key, the other is dropped.
    assert keys_line.tags == {
        "_name": "7",
        "bang_": "3",
        "care_t": "4",
        "eq_ual": "5",
        "http.route": "/a",
        "otel.scope.name": "keys",
        "semi_colon": "1",
        "sp_ace": "6",
        "~tilde": "8",
    }
    messages = [record.getMessage() for record in caplog.records]
    assert (
        "Dropping attribute 'semi_colon' of metric 'keys': tag key 'semi_colon' already taken by 'semi;colon'"
        in messages
    )
    # On histograms an "le" attribute would clash with the bucket bound: dropped, logged.
    for line in lines[1:]:
        assert line.tags.get("kind") == "k"
        assert ("le" in line.tags) == line.path.endswith(".bucket")
        assert line.tags.get("le") != "user"
    assert "Dropping attribute 'le' of metric 'sized': reserved tag key 'le'" in messages
    # Hierarchical paths have no "le" tag: the attribute stays there.
    hierarchical = parse_graphite(encode_graphite(data, tagged=False), tagged=False)
    assert hierarchical[-1].path == "sized.kind.k.le.user.bucket.le_inf"


# --- histograms ----------------------------------------------------------------------------------


def test_histogram_buckets_are_cumulative_with_inf_count_sum_min_max() -> None:
    values = (0.05, 0.1, 0.7, 3.0, 3.0, 42.0)

    def record(provider: MeterProvider) -> None:
        histogram = provider.get_meter("hist").create_histogram(
            "job.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1, 2.5, 10]
        )
        for value in values:
            histogram.record(value, {"queue": "default"})

    data = _collect(record)
    tagged = parse_graphite(encode_graphite(data), tagged=True)
    buckets = [(line.tags["le"], line.value) for line in tagged if line.path == "job.duration.bucket"]
    assert buckets == [("0.1", 2), ("1.0", 3), ("2.5", 3), ("10.0", 5), ("+Inf", 6)]
    assert all(a <= b for (_, a), (_, b) in itertools.pairwise(buckets))
    by_path = {line.path: line for line in tagged if line.path != "job.duration.bucket"}
    assert by_path["job.duration.count"].value == buckets[-1][1] == len(values)
    assert by_path["job.duration.sum"].value == pytest.approx(sum(values))
    assert by_path["job.duration.min"].value == 0.05
    assert by_path["job.duration.max"].value == 42.0
    # All lines of one data point share the tags apart from "le".
    assert len({tuple(sorted((k, v) for k, v in line.tags.items() if k != "le")) for line in tagged}) == 1

    hierarchical = parse_graphite(encode_graphite(data, tagged=False), tagged=False)
    assert [
        (line.path.rsplit(".", 1)[1], line.value) for line in hierarchical if ".bucket." in line.path
    ] == [
        ("le_0_1", 2),
        ("le_1_0", 3),
        ("le_2_5", 3),
        ("le_10_0", 5),
        ("le_inf", 6),
    ]


def test_histogram_bound_formats() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("b").create_histogram(
            "bounds", explicit_bucket_boundaries_advisory=[-5, 1e-7, 0.005, 1e9, 1e20]
        ).record(1)

    data = _collect(record)
    tagged = [
        line.tags["le"] for line in parse_graphite(encode_graphite(data), tagged=True) if "le" in line.tags
    ]
    assert tagged == ["-5.0", "1e-07", "0.005", "1000000000.0", "1e+20", "+Inf"]
    nodes = [
        line.path.rsplit(".", 1)[1]
        for line in parse_graphite(encode_graphite(data, tagged=False), tagged=False)
        if ".bucket." in line.path
    ]
    assert nodes == ["le_-5_0", "le_1e-07", "le_0_005", "le_1000000000_0", "le_1e20", "le_inf"]


def test_histogram_without_min_max() -> None:
    view = View(
        instrument_name="plain", aggregation=ExplicitBucketHistogramAggregation([1.0], record_min_max=False)
    )

    def record(provider: MeterProvider) -> None:
        provider.get_meter("h").create_histogram("plain").record(3)

    lines = parse_graphite(encode_graphite(_collect(record, views=[view])), tagged=True)
    assert [line.path for line in lines] == [
        "plain.count",
        "plain.sum",
        "plain.bucket",
        "plain.bucket",
    ]
    assert [line.raw_value for line in lines] == ["1", "3", "0", "1"]  # an int sum stays an int


# --- values and timestamps -----------------------------------------------------------------------


def test_values_ints_floats() -> None:
    def observe(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(2**70, {"v": "big"})
        yield Observation(0.1, {"v": "tenth"})
        yield Observation(1e-7, {"v": "tiny"})
        yield Observation(-2.5e21, {"v": "huge"})
        yield Observation(3.0, {"v": "integral"})
        yield Observation(-0, {"v": "zero"})

    def record(provider: MeterProvider) -> None:
        provider.get_meter("values").create_observable_gauge("values", callbacks=[observe])

    lines = parse_graphite(encode_graphite(_collect(record)), tagged=True)
    assert {line.tags["v"]: line.raw_value for line in lines} == {
        "big": "1180591620717411303424",
        "tenth": "0.1",
        "tiny": "1e-07",
        "huge": "-2.5e+21",
        "integral": "3.0",
        "zero": "0",
    }


def test_non_finite_values_are_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    # The SDK pipeline refuses non-finite measurements; a MetricProducer can still deliver them.
    points = [
        NumberDataPoint(
            attributes={"v": name}, start_time_unix_nano=0, time_unix_nano=5_000_000_000, value=value
        )
        for name, value in (("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf), ("ok", 1.5))
    ]
    histogram_point = HistogramDataPoint(
        attributes={"v": "hist"},
        start_time_unix_nano=0,
        time_unix_nano=5_000_000_000,
        count=2,
        sum=math.nan,
        bucket_counts=[1, 1],
        explicit_bounds=[1.0],
        min=math.nan,
        max=math.inf,
    )
    gauge = metrics_data(Metric(name="odd", description="", unit="", data=Gauge(data_points=points)))
    histogram = metrics_data(
        Metric(
            name="odd.hist",
            description="",
            unit="",
            data=Histogram(
                data_points=[histogram_point], aggregation_temporality=AggregationTemporality.CUMULATIVE
            ),
        )
    )
    with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
        gauge_lines = parse_graphite(encode_graphite(gauge), tagged=True)
        histogram_lines = parse_graphite(encode_graphite(histogram), tagged=True)
    assert [(line.tags["v"], line.value, line.timestamp) for line in gauge_lines] == [("ok", 1.5, 5)]
    assert [line.path for line in histogram_lines] == ["odd.hist.count", "odd.hist.bucket", "odd.hist.bucket"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("Graphite cannot store NaN or +-Inf" in message for message in messages) == 4
    assert any("Dropping sum of a data point of metric 'odd.hist'" in message for message in messages)


def test_timestamps_from_points_or_override() -> None:
    point = NumberDataPoint(
        attributes={}, start_time_unix_nano=0, time_unix_nano=1_700_000_000_999_999_999, value=1
    )
    data = metrics_data(Metric(name="t", description="", unit="", data=Gauge(data_points=[point])))
    assert encode_graphite(data) == "t;otel.scope.name=producer 1 1700000000\n"  # floor, not rounded
    assert encode_graphite(data, timestamp_seconds=42, tagged=False) == "t 1 42\n"

    collected = _collect(_record_realistic)
    lines = parse_graphite(encode_graphite(collected, timestamp_seconds=1_234_567_890), tagged=True)
    assert {line.timestamp for line in lines} == {1_234_567_890}
    assert {
        line.timestamp for line in parse_graphite(encode_graphite(collected), tagged=True)
    } == _timestamps(collected)


# --- scope, resource, skipped data ---------------------------------------------------------------


def test_scope_tag_separates_scopes_and_yields_to_attributes() -> None:
    def record(provider: MeterProvider) -> None:
        for scope in ("scope.a", "scope.b"):
            provider.get_meter(scope).create_counter("jobs.done").add(1, {"queue": "q"})
        provider.get_meter("scope.c").create_counter("jobs.done").add(1, {"otel.scope.name": "mine"})

    data = _collect(record)
    lines = parse_graphite(encode_graphite(data), tagged=True)
    assert [line.tags for line in lines] == [
        {"otel.scope.name": "scope.a", "queue": "q"},
        {"otel.scope.name": "scope.b", "queue": "q"},
        {"otel.scope.name": "mine"},
    ]
    # Hierarchical paths carry no scope: both scopes share one path.
    paths = [line.path for line in parse_graphite(encode_graphite(data, tagged=False), tagged=False)]
    assert paths == ["jobs.done.queue.q", "jobs.done.queue.q", "jobs.done.otel_scope_name.mine"]
    # An empty scope name adds no tag.
    point = NumberDataPoint(attributes={}, start_time_unix_nano=0, time_unix_nano=0, value=1)
    anonymous = metrics_data(Metric(name="anon", description="", unit="", data=Gauge([point])), scope="")
    assert encode_graphite(anonymous) == "anon 1 0\n"


def test_resource_attributes_only_on_request() -> None:
    resource = Resource.create({"service.name": "agent", "host.name": "node 1", "empty": ""})

    def record(provider: MeterProvider) -> None:
        provider.get_meter("r").create_counter("served").add(1, {"service.name": "cart"})

    data = _collect(record, resource=resource)
    (plain,) = parse_graphite(encode_graphite(data), tagged=True)
    assert plain.tags == {"otel.scope.name": "r", "service.name": "cart"}
    (tagged,) = parse_graphite(
        encode_graphite(data, resource_tags=["service.name", "host.name", "empty", "missing"]), tagged=True
    )
    assert tagged.tags == {
        "otel.scope.name": "r",
        "resource.host.name": "node_1",
        "resource.service.name": "agent",
        "service.name": "cart",
    }
    (hierarchical,) = parse_graphite(
        encode_graphite(data, tagged=False, resource_tags=["service.name", "host.name"]), tagged=False
    )
    assert (
        hierarchical.path == "served.resource_host_name.node_1.resource_service_name.agent.service_name.cart"
    )


def test_delta_temporality_and_exponential_histograms_are_skipped() -> None:
    view = View(instrument_name="exp.*", aggregation=ExponentialBucketHistogramAggregation())

    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("skip")
        meter.create_counter("delta.counter").add(1)
        meter.create_histogram("delta.histogram").record(1)
        meter.create_up_down_counter("cumulative.updown").add(1)
        meter.create_histogram("exp.latency").record(3)

    temporality: dict[type, AggregationTemporality] = {
        Counter: AggregationTemporality.DELTA,
        HistogramInstrument: AggregationTemporality.DELTA,
        UpDownCounter: AggregationTemporality.CUMULATIVE,
    }
    data = _collect(record, views=[view], temporality=temporality)
    for tagged in (True, False):
        lines = parse_graphite(encode_graphite(data, tagged=tagged), tagged=tagged)
        assert [line.path for line in lines] == ["cumulative.updown"]


def test_empty_data_is_empty_text() -> None:
    assert encode_graphite(MetricsData(resource_metrics=[])) == ""
    assert encode_graphite(MetricsData(resource_metrics=[]), tagged=False, prefix="p") == ""
