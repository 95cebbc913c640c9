"""Tests for the InfluxDB line protocol encoder, on ``MetricsData`` produced by a real SDK ``MeterProvider``.

Every output is read back by two strict parsers written here: one with the scanning and unescaping
rules of InfluxDB 1.x/2.x (the Go ``models`` package: a byte after a backslash is escaped, only
``\\,``, ``\\ `` and ``\\=`` are unescaped, ``\\\\`` stays two backslashes) and one with those of the line
protocol specification followed by InfluxDB 3 and VictoriaMetrics (``\\\\`` is one backslash). Both
must read the same thing, and what they read is compared with the documented sanitisation, written
here independently of the encoder.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, cast

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
    Sum,
)
from opentelemetry.sdk.metrics.view import (
    ExplicitBucketHistogramAggregation,
    ExponentialBucketHistogramAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from telemetry_otel.formats import encode_influx

HOSTILE_VALUES: tuple[str, ...] = (
    "with space",
    "a,b,c",
    "k=v",
    'say "hi"',
    "back\\slash",
    "trailing backslash\\",
    "two trailing\\\\",
    "\\",
    "\\,",
    "\\ ",
    "\\=",
    "\\\\n",
    '\\"',
    "C:\\dir\\file",
    "line\nbreak",
    "\n",
    "crlf\r\n",
    "tab\there",
    "user@example.com",
    "dotted.value.here",
    "ünïcødé ✓ 日本語 \u2028 nbsp\xa0end",
    "nul\x00and\x7fdel",
    "",
    " ",
    "=",
    ",",
    "# not a comment",
    "} {",
)

_INT64 = range(-(2**63), 2**63)
_GO_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


# --- the strict parsers --------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, int | float]
    raw_fields: dict[str, str]
    timestamp: int


def _scan_go(text: str, start: int, stops: str) -> int:
    """Go ``models``: the first stop character at ``i >= start`` whose previous byte is no backslash."""
    i = start
    while i < len(text):
        if text[i] in stops and (i == 0 or text[i - 1] != "\\"):
            return i
        i += 1
    return i


def _split_go(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    start = 0
    while True:
        end = _scan_go(text, start, separator)
        parts.append(text[start:end])
        if end >= len(text):
            return parts
        start = end + 1


def _unescape_go_tag(text: str) -> str:
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")


def _unescape_go_measurement(text: str) -> str:
    return text.replace("\\,", ",").replace("\\ ", " ")


def _tokens_spec(text: str) -> list[str]:
    """Line protocol spec: a backslash and the character after it form one token."""
    tokens: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            assert i + 1 < len(text), f"text ends in a backslash: {text!r}"
            tokens.append(text[i : i + 2])
            i += 2
        else:
            tokens.append(text[i])
            i += 1
    return tokens


def _split_spec(text: str, separator: str) -> list[str]:
    parts = [""]
    for token in _tokens_spec(text):
        if token == separator:
            parts.append("")
        else:
            parts[-1] += token
    return parts


def _unescape_spec(text: str, escapable: str) -> str:
    return "".join(
        token[1] if len(token) == 2 and token[1] in escapable else token for token in _tokens_spec(text)
    )


def _parse_line(
    line: str,
    split: Callable[[str, str], list[str]],
    unescape_measurement: Callable[[str], str],
    unescape_tag: Callable[[str], str],
) -> Point:
    sections = split(line, " ")
    assert len(sections) == 3, f"not three space separated sections: {line!r}"
    key, fields_text, timestamp_text = sections
    measurement_text, *tag_texts = split(key, ",")
    assert measurement_text, f"missing measurement: {line!r}"
    assert measurement_text[0] != "#", measurement_text
    assert not measurement_text[0].isspace(), measurement_text
    tags: dict[str, str] = {}
    escaped_keys: list[str] = []
    for tag_text in tag_texts:
        pair = split(tag_text, "=")
        assert len(pair) == 2, f"not one unescaped '=' in tag {tag_text!r}"
        escaped_key, escaped_value = pair
        assert escaped_key, f"empty tag key in {line!r}"
        assert escaped_value, f"empty tag value in {line!r}"
        tag_key = unescape_tag(escaped_key)
        assert tag_key not in tags, f"duplicate tag {tag_key!r}"
        tags[tag_key] = unescape_tag(escaped_value)
        escaped_keys.append(escaped_key)
    assert escaped_keys == sorted(escaped_keys, key=lambda text: text.encode()), "tags not in bytes order"
    assert '"' not in fields_text, "no string fields are expected"
    fields: dict[str, int | float] = {}
    raw_fields: dict[str, str] = {}
    for field_text in split(fields_text, ","):
        field_key, equals, value_text = field_text.partition("=")
        assert field_key, field_text
        assert equals, field_text
        assert value_text, field_text
        assert field_key not in fields, f"duplicate field {field_key!r}"
        if value_text.endswith("i"):
            assert re.fullmatch(r"-?\d+i", value_text), value_text
            number: int | float = int(value_text[:-1])
            assert number in _INT64, value_text
        else:
            assert _GO_FLOAT.fullmatch(value_text), value_text
            number = float(value_text)
            assert math.isfinite(number), value_text
        fields[field_key] = number
        raw_fields[field_key] = value_text
    assert fields, f"a point needs a field: {line!r}"
    assert re.fullmatch(r"-?\d+", timestamp_text), timestamp_text
    return Point(unescape_measurement(measurement_text), tags, fields, raw_fields, int(timestamp_text))


def parse_influx(text: str) -> list[Point]:
    """Parse line protocol with both parsers; they must agree."""
    if text == "":
        return []
    assert text.endswith("\n"), "the text must end with a newline"
    points: list[Point] = []
    for line in text[:-1].split("\n"):
        assert "\r" not in line, line
        go = _parse_line(line, _split_go, _unescape_go_measurement, _unescape_go_tag)
        spec = _parse_line(
            line,
            _split_spec,
            lambda text: _unescape_spec(text, "\\, "),
            lambda text: _unescape_spec(text, "\\, ="),
        )
        assert go == spec, f"parsers disagree on {line!r}: {go} != {spec}"
        points.append(go)
    return points


# --- the documented sanitisation, written independently ------------------------------------------


def expected_text(text: str) -> str:
    chars = ["_" if char in "\n\r" else char for char in text]
    return "".join(
        "_" if char == "\\" and (index + 1 == len(chars) or chars[index + 1] in "\\ ,=") else char
        for index, char in enumerate(chars)
    )


def expected_key(key: str) -> str:
    if key == "time":
        key = "key_time"
    elif key.startswith("_"):
        key = "key" + key
    return expected_text(key)


# --- recording helpers ---------------------------------------------------------------------------


_collect = partial(collect, service_name="agent")


def _gauge(name: str, *values: tuple[str, float], time_unix_nano: int = 1_000_000_000) -> Metric:
    points = [
        NumberDataPoint(
            attributes={"v": key}, start_time_unix_nano=0, time_unix_nano=time_unix_nano, value=value
        )
        for key, value in values
    ]
    return Metric(name=name, description="", unit="", data=Gauge(data_points=points))


def _counter(name: str, *values: tuple[str, float], time_unix_nano: int = 1_000_000_000) -> Metric:
    points = [
        NumberDataPoint(
            attributes={"v": key}, start_time_unix_nano=0, time_unix_nano=time_unix_nano, value=value
        )
        for key, value in values
    ]
    return Metric(
        name=name,
        description="",
        unit="",
        data=Sum(
            data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True
        ),
    )


def test_gauges_and_up_down_sums_are_always_floats_so_a_field_never_changes_type() -> None:
    points = parse_influx(
        encode_influx(metrics_data(_gauge("g", ("int", 3), ("float", 3.5), ("bool", True))))
    )
    assert {point.tags["v"]: point.raw_fields["value"] for point in points} == {
        "int": "3.0",
        "float": "3.5",
        "bool": "1.0",
    }


def _round_trip(value: str) -> Point:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("escaping").create_counter("escaped").add(7, {"value": value, "k": "v"})

    (point,) = parse_influx(encode_influx(_collect(record)))
    return point


# --- layout --------------------------------------------------------------------------------------


def _memory(options: CallbackOptions) -> Iterable[Observation]:
    yield Observation(123_456_789, {"process.memory.type": "rss"})
    yield Observation(0.5, {"process.memory.type": "share ratio"})


def _record_realistic(provider: MeterProvider) -> None:
    meter = provider.get_meter("checkout.http", "2.1.0")
    requests = meter.create_counter("service.requests", unit="{request}")
    duration = meter.create_histogram(
        "service.request.duration", unit="s", explicit_bucket_boundaries_advisory=[0.005, 0.1, 1]
    )
    meter.create_observable_gauge("process.memory.usage", callbacks=[_memory], unit="By")
    for seconds in (0.05, 0.5, 7.0):
        requests.add(1, {"http.route": "/cart", "service.name": "cart"})
        duration.record(seconds, {"http.route": "/cart", "service.name": "cart"})
    meter.create_up_down_counter("service.requests-active").add(-2)


def _times(data: MetricsData) -> set[int]:
    return {
        point.time_unix_nano
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric.data.data_points
    }


def test_layout() -> None:
    data = _collect(_record_realistic)
    (now,) = _times(data)
    tags = "http.route=/cart,otel.scope.name=checkout.http,service.name=cart"
    buckets = "le_0.005=0i,le_0.1=1i,le_1.0=2i,le_+Inf=3i"
    assert encode_influx(data) == "".join(
        f"{line} {now}\n"
        for line in (
            f"service.requests,{tags} value=3i",
            f"service.request.duration,{tags} count=3i,sum=7.55,min=0.05,max=7.0,{buckets}",
            "service.requests-active,otel.scope.name=checkout.http value=-2.0",  # not a counter: a float
            "process.memory.usage,otel.scope.name=checkout.http,process.memory.type=rss value=123456789.0",
            "process.memory.usage,otel.scope.name=checkout.http,process.memory.type=share\\ ratio value=0.5",
        )
    )
    assert len(parse_influx(encode_influx(data))) == 5


@pytest.mark.parametrize(
    ("name", "expected_line"),
    [
        ("service.request.duration", "service.request.duration value=1i"),
        ("cache-hits.total", "cache-hits.total value=1i"),
        ("with space,comma=eq", "with\\ space\\,comma=eq value=1i"),
        ("trailing\\", "trailing_ value=1i"),
        ("new\nline", "new_line value=1i"),
        ("ünï/code", "ünï/code value=1i"),
    ],
)
def test_measurement_names(name: str, expected_line: str) -> None:
    # The SDK validates instrument names but not view names, so a view produces the odd ones.
    def record(provider: MeterProvider) -> None:
        provider.get_meter("m").create_counter("renamed", unit="s").add(1)

    data = _collect(record, views=[View(instrument_name="renamed", name=name)])
    (line,) = encode_influx(data, precision="s").splitlines()
    measurement, fields = expected_line.split(" value=")
    assert line.rsplit(" ", 1)[0] == f"{measurement},otel.scope.name=m value={fields}"  # no unit, no "_total"
    (point,) = parse_influx(encode_influx(data))
    assert point.measurement == expected_text(name)


@pytest.mark.parametrize("name", ["#comment", " leading space", "\tleading tab", "\x00nul"])
def test_unusable_measurement_names_are_dropped(name: str, caplog: pytest.LogCaptureFixture) -> None:
    data = metrics_data(_gauge(name, ("a", 1)), _gauge("kept", ("a", 2)))
    with caplog.at_level(logging.WARNING, logger="telemetry_otel.formats"):
        points = parse_influx(encode_influx(data))
    assert [point.measurement for point in points] == ["kept"]
    assert any(repr(name) in record.getMessage() for record in caplog.records)


# --- tag values ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_hostile_values_round_trip(value: str) -> None:
    point = _round_trip(value)
    if value:
        assert point.tags["value"] == expected_text(value)
    else:
        assert "value" not in point.tags
    assert point.tags["k"] == "v"
    assert point.fields == {"value": 7}


def test_backslash_and_newline_examples() -> None:
    for value, expected in (
        ("C:\\dir\\", "C:\\dir_"),
        ("C:\\dir", "C:\\dir"),
        ("a\\,b", "a_,b"),
        ("a\\\\b", "a_\\b"),
        ("\\\\", "__"),
        ('\\"', '\\"'),
        ("one\ntwo\r\n", "one_two__"),
    ):
        assert _round_trip(value).tags["value"] == expected
    assert ",value=a_\\,b " in encode_influx(
        _collect(lambda provider: provider.get_meter("x").create_counter("c").add(1, {"value": "a\\,b"}))
    )


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_arbitrary_values_round_trip(value: str) -> None:
    point = _round_trip(value)
    assert point.tags.get("value") == (expected_text(value) if value else None)


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=1), value=st.text(min_size=1))
def test_arbitrary_keys_round_trip(key: str, value: str) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("keys").create_counter("keyed").add(1, {key: value})

    (point,) = parse_influx(encode_influx(_collect(record)))
    tag_key = expected_key(key)
    expected = {tag_key: expected_text(value)}
    if tag_key != "otel.scope.name":
        expected["otel.scope.name"] = "keys"
    assert point.tags == expected


def test_empty_values_are_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("empty").create_counter("blank").add(1, {"empty": "", "full": "x"})

    with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
        (point,) = parse_influx(encode_influx(_collect(record)))
    assert point.tags == {"full": "x", "otel.scope.name": "empty"}
    assert [record.getMessage() for record in caplog.records] == [
        "Dropping attribute 'empty' of metric 'blank': empty value"
    ]


def test_attribute_value_types() -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("types").create_counter("typed").add(
            1, {"b": True, "i": -3, "f": 0.1, "s": ("x", "y z"), "n": (1, 2), "e": ()}
        )

    (point,) = parse_influx(encode_influx(_collect(record)))
    assert point.tags == {
        "b": "true",
        "e": "[]",
        "f": "0.1",
        "i": "-3",
        "n": "[1, 2]",
        "otel.scope.name": "types",
        "s": '["x", "y z"]',
    }


# --- tag keys ------------------------------------------------------------------------------------


def test_tag_keys_reserved_escaped_sorted(caplog: pytest.LogCaptureFixture) -> None:
    def record(provider: MeterProvider) -> None:
        provider.get_meter("keys").create_counter("keys").add(
            1,
            {
                "zeta": "z",
                "time": "t",
                "_field": "f",
                "_measurement": "m",
                "key_field": "collides",
                "with space": "1",
                "comma,key": "2",
                "eq=key": "3",
                "Upper": "4",
                "ünï": "5",
                "le": "6",
            },
        )

    with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
        text = encode_influx(_collect(record))
    (point,) = parse_influx(text)
    # "_field" sorts before "key_field": it keeps the key "key_field", the other is dropped.
    assert point.tags == {
        "Upper": "4",
        "comma,key": "2",
        "eq=key": "3",
        "key_field": "f",
        "key_measurement": "m",
        "key_time": "t",
        "le": "6",
        "otel.scope.name": "keys",
        "with space": "1",
        "zeta": "z",
        "ünï": "5",
    }
    assert text.startswith(
        "keys,Upper=4,comma\\,key=2,eq\\=key=3,key_field=f,key_measurement=m,key_time=t,le=6,"
        "otel.scope.name=keys,with\\ space=1,zeta=z,ünï=5 value=1i "
    )
    assert (
        "Dropping attribute 'key_field' of metric 'keys': tag key 'key_field' already taken by '_field'"
        in [record.getMessage() for record in caplog.records]
    )


# --- histograms ----------------------------------------------------------------------------------


def test_histogram_fields_are_cumulative_with_inf_count_sum_min_max() -> None:
    values = (0.05, 0.1, 0.7, 3.0, 3.0, 42.0)

    def record(provider: MeterProvider) -> None:
        histogram = provider.get_meter("hist").create_histogram(
            "job.duration", unit="s", explicit_bucket_boundaries_advisory=[0.1, 1, 2.5, 10]
        )
        for value in values:
            histogram.record(value, {"queue": "default"})

    (point,) = parse_influx(encode_influx(_collect(record)))
    assert point.measurement == "job.duration"
    assert point.tags == {"otel.scope.name": "hist", "queue": "default"}
    buckets = [(key, value) for key, value in point.fields.items() if key.startswith("le_")]
    assert buckets == [("le_0.1", 2), ("le_1.0", 3), ("le_2.5", 3), ("le_10.0", 5), ("le_+Inf", 6)]
    assert all(a <= b for (_, a), (_, b) in itertools.pairwise(buckets))
    assert point.fields["count"] == buckets[-1][1] == len(values)
    assert point.fields["sum"] == pytest.approx(sum(values))
    assert (point.fields["min"], point.fields["max"]) == (0.05, 42.0)
    assert list(point.fields) == ["count", "sum", "min", "max", *(key for key, _ in buckets)]


def test_histogram_sum_min_max_are_always_floats() -> None:
    def record(provider: MeterProvider) -> None:
        histogram = provider.get_meter("h").create_histogram(
            "sizes", explicit_bucket_boundaries_advisory=[10]
        )
        for value in (1, 2, 30):
            histogram.record(value)

    (point,) = parse_influx(encode_influx(_collect(record)))
    assert point.raw_fields == {
        "count": "3i",
        "sum": "33.0",
        "min": "1.0",
        "max": "30.0",
        "le_10.0": "2i",
        "le_+Inf": "3i",
    }


def test_histogram_without_min_max_and_bound_formats() -> None:
    view = View(
        instrument_name="plain",
        aggregation=ExplicitBucketHistogramAggregation([-5, 1e-7, 0.005, 1e9, 1e20], record_min_max=False),
    )

    def record(provider: MeterProvider) -> None:
        provider.get_meter("h").create_histogram("plain").record(3)

    (point,) = parse_influx(encode_influx(_collect(record, views=[view])))
    assert list(point.fields) == [
        "count",
        "sum",
        "le_-5.0",
        "le_1e-07",
        "le_0.005",
        "le_1000000000.0",
        "le_1e+20",
        "le_+Inf",
    ]


# --- values --------------------------------------------------------------------------------------


def test_counter_values_ints_floats_and_int64_range(caplog: pytest.LogCaptureFixture) -> None:
    data = metrics_data(
        _counter(
            "values",
            ("max", 2**63 - 1),
            ("min", -(2**63)),
            ("over", 2**63),
            ("under", -(2**63) - 1),
            ("beyond.float", 10**400),
            ("tenth", 0.1),
            ("tiny", 1e-7),
            ("huge", -2.5e21),
            ("integral", 3.0),
            ("bool", True),
            ("zero", 0),
        )
    )
    with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
        points = parse_influx(encode_influx(data))
    assert {point.tags["v"]: point.raw_fields["value"] for point in points} == {
        "max": "9223372036854775807i",
        "min": "-9223372036854775808i",
        "over": "9.223372036854776e+18",
        "under": "-9.223372036854776e+18",
        "tenth": "0.1",
        "tiny": "1e-07",
        "huge": "-2.5e+21",
        "integral": "3.0",
        "bool": "1i",
        "zero": "0i",
    }
    assert any("'beyond.float'" in record.getMessage() for record in caplog.records)


def test_non_finite_values_are_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    # The SDK pipeline refuses non-finite measurements; a MetricProducer can still deliver them.
    histogram_point = HistogramDataPoint(
        attributes={"v": "hist"},
        start_time_unix_nano=0,
        time_unix_nano=1_000_000_000,
        count=2,
        sum=math.nan,
        bucket_counts=[1, 1],
        explicit_bounds=[1.0],
        min=math.nan,
        max=math.inf,
    )
    histogram = Metric(
        name="odd.hist",
        description="",
        unit="",
        data=Histogram(
            data_points=[histogram_point], aggregation_temporality=AggregationTemporality.CUMULATIVE
        ),
    )
    data = metrics_data(
        _gauge("odd", ("nan", math.nan), ("inf", math.inf), ("ninf", -math.inf), ("ok", 1.5)), histogram
    )
    with caplog.at_level(logging.DEBUG, logger="telemetry_otel.formats"):
        points = parse_influx(encode_influx(data))
    assert [(point.measurement, point.tags["v"]) for point in points] == [("odd", "ok"), ("odd.hist", "hist")]
    assert points[1].raw_fields == {"count": "2i", "le_1.0": "1i", "le_+Inf": "2i"}
    messages = [record.getMessage() for record in caplog.records]
    assert sum("is not representable in line protocol" in message for message in messages) == 3
    assert any("Dropping field sum of a data point of metric 'odd.hist'" in message for message in messages)


# --- timestamps ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("precision", "expected"),
    [
        ("ns", 1_700_000_000_123_456_789),
        ("us", 1_700_000_000_123_456),
        ("ms", 1_700_000_000_123),
        ("s", 1_700_000_000),
    ],
)
def test_precision(precision: Literal["s", "ms", "us", "ns"], expected: int) -> None:
    data = metrics_data(_counter("t", ("a", 1), time_unix_nano=1_700_000_000_123_456_789))
    assert encode_influx(data, precision=precision) == f"t,otel.scope.name=producer,v=a value=1i {expected}\n"


def test_timestamps_are_the_points_own() -> None:
    data = _collect(_record_realistic)
    assert {point.timestamp for point in parse_influx(encode_influx(data))} == _times(data)
    assert {point.timestamp for point in parse_influx(encode_influx(data, precision="s"))} == {
        time // 1_000_000_000 for time in _times(data)
    }


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        encode_influx(MetricsData(resource_metrics=[]), precision=cast(Any, "u"))


# --- scope, resource, skipped data ---------------------------------------------------------------


def test_scope_tag_separates_scopes_and_yields_to_attributes() -> None:
    def record(provider: MeterProvider) -> None:
        for scope in ("scope.a", "scope.b"):
            provider.get_meter(scope).create_counter("jobs.done").add(1, {"queue": "q"})
        provider.get_meter("scope.c").create_counter("jobs.done").add(1, {"otel.scope.name": "mine"})

    points = parse_influx(encode_influx(_collect(record)))
    assert [point.tags for point in points] == [
        {"otel.scope.name": "scope.a", "queue": "q"},
        {"otel.scope.name": "scope.b", "queue": "q"},
        {"otel.scope.name": "mine"},
    ]
    assert (
        encode_influx(metrics_data(_gauge("anon", ("a", 1)), scope="")) == "anon,v=a value=1.0 1000000000\n"
    )


def test_resource_attributes_only_on_request() -> None:
    resource = Resource.create({"service.name": "agent", "host.name": "node 1", "empty": ""})

    def record(provider: MeterProvider) -> None:
        provider.get_meter("r").create_counter("served").add(1, {"service.name": "cart"})

    data = _collect(record, resource=resource)
    (plain,) = parse_influx(encode_influx(data))
    assert plain.tags == {"otel.scope.name": "r", "service.name": "cart"}
    (tagged,) = parse_influx(
        encode_influx(data, resource_tags=["service.name", "host.name", "empty", "missing"])
    )
    assert tagged.tags == {
        "otel.scope.name": "r",
        "resource.host.name": "node 1",
        "resource.service.name": "agent",
        "service.name": "cart",
    }


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
    points = parse_influx(encode_influx(_collect(record, views=[view], temporality=temporality)))
    assert [point.measurement for point in points] == ["cumulative.updown"]


def test_empty_data_is_empty_text() -> None:
    assert encode_influx(MetricsData(resource_metrics=[])) == ""
