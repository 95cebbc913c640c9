"""Hostile names, attributes and values, encoded by each encoder and read back from the REAL servers.

Attribute values carry spaces, commas, ``=``, quotes, backslashes, newlines, ``@``, dots, unicode and
empty strings; metric names dots and dashes; values NaN, +-Inf and huge integers (the SDK refuses
non-finite measurements, so the data is built from the SDK's point dataclasses, as a
``MetricProducer`` could deliver it). For every example:

* InfluxDB (strict) accepts the batch (204) and reads back every kept value exactly, with its type;
* carbon stores every tagged series under the documented normalised name with its value, and logs
  no unreadable line or name;
* promtool finds no parse error (lint findings are fine), and ``prometheus_client``'s parser reads
  back the exact label values and sample values.

The expectations apply the sanitisation each encoder documents, written here independently. Dropped
values must be absent from the server and logged by the encoder (logger ``telemetry_otel.formats``).
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import pickle
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import utils as prometheus_client_utils
from prometheus_client.parser import text_string_to_metric_families

from telemetry_otel.exporters import GraphiteExporter, InfluxExporter
from telemetry_otel.formats import encode_graphite, encode_influx, encode_prometheus_text

if TYPE_CHECKING:
    from _support import Carbon, InfluxDB, Prometheus, Promtool

pytestmark = pytest.mark.backend

SCOPE = "hostile"
SCOPE_TAG = "otel.scope.name"
FORMATS_LOGGER = "telemetry_otel.formats"
HOSTILE = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
CARBON_COMPLAINTS = ("invalid line received", "Error parsing metric")
INT64 = range(-(2**63), 2**63)
BEYOND_FLOAT = 10**400
END_OF_BATCH = "end_of_batch"  # generated names have no "_"
# prometheus_client's Go float formatting, as Prometheus writes bucket bounds.
GO_FLOAT: Callable[[float], str] = prometheus_client_utils.floatToGoString

# --- the data ------------------------------------------------------------------------------------

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class HistogramValue:
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float
    low: float  # +Inf when nothing was recorded (as the SDK leaves it)
    high: float  # -Inf when nothing was recorded

    @property
    def count(self) -> int:
        return sum(self.counts)


Value = int | float | HistogramValue
Attributes = dict[str, str]


@dataclass(frozen=True)
class Series:
    """One metric: its name, kind and data points (attributes, value), in order."""

    name: str
    kind: Kind
    points: tuple[tuple[Attributes, Value], ...]


HOSTILE_KEYS = (
    "service.name",
    "k",
    "host name",
    "a=b",
    "x,y",
    'q"uote',
    "semi;colon",
    "bang!",
    "caret^",
    "~tilde",
    "time",
    "_id",
    "__meta",
    "name",
    "le",
    "9lives",
    "ünï",
    SCOPE_TAG,
    "otel_scope_name",
    "value",
    "count",
    "",
    "line\nkey",
    "back\\slash\\",
)
HOSTILE_VALUES = (
    "with space",
    "a,b,c",
    "k=v",
    'say "hi"',
    "back\\slash",
    "trailing backslash\\",
    "\\",
    "\\,",
    "\\ ",
    "\\=",
    "C:\\dir\\file",
    "line\nbreak",
    "crlf\r\n",
    "tab\there",
    "user@example.com",
    "dotted.value.here",
    "ünïcødé ✓ 日本語 \u2028 nbsp\xa0end",
    "nul\x00and\x7fdel",
    "",
    " ",
    "=",
    ";",
    "~tilde",
    'ends"}',
    '{a="b"}',
    "# not a comment",
)
PUNCTUATION = ' ,="\\\n\r@.~;{}#\t'


def _keys() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_KEYS), st.text(max_size=6))


def _values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_VALUES),
        st.text(max_size=12),
        st.text(alphabet=PUNCTUATION + "ab€", max_size=8),
    )


def _attributes() -> st.SearchStrategy[Attributes]:
    return st.dictionaries(_keys(), _values(), max_size=4)


def _names() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z][a-z0-9]*([.-][a-z0-9]+){0,3}", fullmatch=True)


def _gauge_values(beyond_float: bool) -> st.SearchStrategy[Value]:
    values: list[st.SearchStrategy[Value]] = [
        st.floats(),  # NaN and +-Inf included
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, -0.0, 2**63, 2**63 - 1, -(2**63), 1e308, 5e-324]),
    ]
    if beyond_float:
        values.append(st.sampled_from([BEYOND_FLOAT, -BEYOND_FLOAT]))
    return st.one_of(values)


def _counter_values(integers: bool, beyond_float: bool) -> st.SearchStrategy[Value]:
    """One counter's values: all int64 ints, or all floats (NaN, +Inf) and ints beyond int64.

    InfluxDB fixes a field's type: a counter mixing the two is the documented type-conflict caveat.
    """
    if integers:
        return st.one_of(st.integers(0, 2**63 - 1), st.just(2**63 - 1))
    values: list[st.SearchStrategy[Value]] = [
        st.floats(min_value=0.0),
        st.sampled_from([math.nan, math.inf]),
        st.integers(2**63, 2**80),
    ]
    if beyond_float:
        values.append(st.just(BEYOND_FLOAT))
    return st.one_of(values)


@st.composite
def _histogram_values(draw: st.DrawFn) -> HistogramValue:
    bounds = draw(
        st.lists(
            st.one_of(st.floats(-1e9, 1e9), st.sampled_from([1e-05, 0.005, 1.0, 1e7, 1e20])),
            unique=True,
            max_size=4,
        )
    )
    counts = draw(st.lists(st.integers(0, 2**40), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    total = draw(st.one_of(st.floats(), st.floats(-1e12, 1e12)))
    if sum(counts) > 0 and draw(st.booleans()):
        low, high = sorted(draw(st.lists(st.floats(-1e12, 1e12), min_size=2, max_size=2)))
    else:
        low, high = math.inf, -math.inf
    return HistogramValue(tuple(sorted(bounds)), tuple(counts), total, low, high)


@st.composite
def _batches(draw: st.DrawFn, beyond_float: bool = False) -> list[Series]:
    names = draw(st.lists(_names(), min_size=1, max_size=3, unique=True))
    batch: list[Series] = []
    for name in names:
        kind: Kind = draw(st.sampled_from(["gauge", "counter", "histogram"]))
        if kind == "gauge":
            values = _gauge_values(beyond_float)
        elif kind == "counter":
            values = _counter_values(draw(st.booleans()), beyond_float)
        else:
            values = _histogram_values()
        points = draw(st.lists(st.tuples(_attributes(), values), min_size=1, max_size=3))
        batch.append(Series(name, kind, tuple(points)))
    return batch


def _metrics_data(batch: Sequence[Series], time_unix_nano: int) -> MetricsData:
    metrics: list[Metric] = []
    for series in batch:
        data: Gauge | Sum | Histogram
        if series.kind == "histogram":
            histogram_points = []
            for attributes, value in series.points:
                assert isinstance(value, HistogramValue)
                histogram_points.append(
                    HistogramDataPoint(
                        attributes=attributes,
                        start_time_unix_nano=time_unix_nano - 10**9,
                        time_unix_nano=time_unix_nano,
                        count=value.count,
                        sum=value.total,
                        bucket_counts=list(value.counts),
                        explicit_bounds=list(value.bounds),
                        min=value.low,
                        max=value.high,
                    )
                )
            data = Histogram(
                data_points=histogram_points, aggregation_temporality=AggregationTemporality.CUMULATIVE
            )
        else:
            number_points = []
            for attributes, value in series.points:
                assert not isinstance(value, HistogramValue)
                number_points.append(
                    NumberDataPoint(
                        attributes=attributes,
                        start_time_unix_nano=time_unix_nano - 10**9,
                        time_unix_nano=time_unix_nano,
                        value=value,
                    )
                )
            if series.kind == "gauge":
                data = Gauge(data_points=number_points)
            else:
                data = Sum(
                    data_points=number_points,
                    aggregation_temporality=AggregationTemporality.CUMULATIVE,
                    is_monotonic=True,
                )
        metrics.append(Metric(name=series.name, description="", unit="", data=data))
    scope = ScopeMetrics(scope=InstrumentationScope(SCOPE), metrics=metrics, schema_url="")
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(resource=Resource.get_empty(), scope_metrics=[scope], schema_url="")
        ]
    )


def _as_float(value: float) -> float | None:
    """``value`` as a finite float, None when it has none (NaN, +-Inf, an int beyond the float range)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _cumulative(value: HistogramValue) -> list[tuple[float | None, int]]:
    """(bound, cumulative count) of every bucket, None for the +Inf bucket."""
    return list(zip([*value.bounds, None], itertools.accumulate(value.counts), strict=True))


_example = itertools.count()


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        message
        for record in caplog.records
        if record.name.startswith(FORMATS_LOGGER) and text in (message := record.getMessage())
    ]


def _plan(
    attributes: Attributes, sanitise_key: Callable[[str], str], excluded: frozenset[str]
) -> dict[str, str]:
    """Tag key -> original key, as the Graphite and InfluxDB encoders document: keys with no valid
    tag key or an excluded one are dropped; keys colliding after sanitising keep the attribute whose
    original key sorts first."""
    chosen: dict[str, str] = {}
    for key in sorted(attributes):
        tag_key = sanitise_key(key)
        if tag_key and tag_key not in excluded and tag_key not in chosen:
            chosen[tag_key] = key
    return chosen


# --- InfluxDB ------------------------------------------------------------------------------------


def _influx_text(text: str) -> str:
    """Documented: newlines become ``_``; a backslash that ends the text or comes before a backslash,
    space, comma or ``=`` becomes ``_``. What InfluxDB reads back after unescaping."""
    chars = ["_" if char in "\n\r" else char for char in text]
    return "".join(
        "_" if char == "\\" and (index + 1 == len(chars) or chars[index + 1] in "\\ ,=") else char
        for index, char in enumerate(chars)
    )


def _influx_key(key: str) -> str:
    if not key:
        return ""
    if key == "time":
        key = "key_time"
    elif key.startswith("_"):
        key = "key" + key
    return _influx_text(key)


def _influx_tags(attributes: Attributes) -> dict[str, str]:
    tags = {SCOPE_TAG: SCOPE}
    for tag_key, key in _plan(attributes, _influx_key, frozenset()).items():
        text = _influx_text(attributes[key]) if attributes[key] else ""
        if text:
            tags[tag_key] = text
        elif tag_key == SCOPE_TAG:  # the attribute took the scope tag's place, and is dropped
            del tags[SCOPE_TAG]
    return tags


InfluxField = tuple[float, str]  # (value, InfluxDB field type)


def _influx_fields(kind: Kind, value: Value) -> dict[str, InfluxField]:
    if isinstance(value, HistogramValue):
        fields: dict[str, InfluxField] = {"count": (value.count, "integer")}
        for key, number in (("sum", value.total), ("min", value.low), ("max", value.high)):
            kept = _as_float(number)
            if kept is not None:
                fields[key] = (kept, "float")
        for bound, cumulative in _cumulative(value):
            fields["le_+Inf" if bound is None else f"le_{float(bound)!r}"] = (cumulative, "integer")
        return fields
    if kind == "counter" and type(value) is int and value in INT64:
        return {"value": (value, "integer")}
    kept = _as_float(value)
    return {} if kept is None else {"value": (kept, "float")}


def _influx_expected(
    batch: Sequence[Series],
) -> tuple[dict[str, dict[frozenset[tuple[str, str]], dict[str, InfluxField]]], int, int]:
    """Measurement -> series (tags) -> fields; the number of points and of sums the encoder drops.

    Points of one series at one timestamp are one point for InfluxDB: the later fields win.
    """
    expected: dict[str, dict[frozenset[tuple[str, str]], dict[str, InfluxField]]] = {}
    dropped_points = dropped_sums = 0
    for series in batch:
        for attributes, value in series.points:
            fields = _influx_fields(series.kind, value)
            if isinstance(value, HistogramValue) and "sum" not in fields:
                dropped_sums += 1
            if not fields:
                dropped_points += 1
                continue
            tags = frozenset(_influx_tags(attributes).items())
            known = expected.setdefault(series.name, {}).setdefault(tags, {})
            known.update(fields)
    return expected, dropped_points, dropped_sums


def _influx_read(
    influxdb: InfluxDB, db: str, measurement: str
) -> dict[frozenset[tuple[str, str]], dict[str, InfluxField]]:
    escaped = measurement.replace("\\", "\\\\").replace('"', '\\"')
    result = influxdb.query(db, f'SELECT * FROM "{escaped}" GROUP BY *')["results"][0]
    assert "error" not in result, result
    types_result = influxdb.query(db, f'SHOW FIELD KEYS FROM "{escaped}"')["results"][0]
    types = {key: kind for series in types_result.get("series", []) for key, kind in series["values"]}
    found: dict[frozenset[tuple[str, str]], dict[str, InfluxField]] = {}
    for series in result.get("series", []):
        tags = frozenset((key, value) for key, value in series.get("tags", {}).items() if value != "")
        assert len(series["values"]) == 1, series
        row = dict(zip(series["columns"], series["values"][0], strict=True))
        row.pop("time")
        # JSON drops the type: InfluxDB writes 5.222993505872923e16 as 52229935058729230, the digits
        # of the same float, so float fields are compared as floats (their type is checked apart).
        found[tags] = {
            key: (float(value) if types[key] == "float" else value, types[key])
            for key, value in row.items()
            if value is not None
        }
    return found


@HOSTILE
@given(batch=_batches(beyond_float=True))
def test_influxdb_accepts_and_reads_back_hostile_data(
    influxdb: InfluxDB, caplog: pytest.LogCaptureFixture, batch: list[Series]
) -> None:
    caplog.clear()
    db = f"hostile_{next(_example)}"
    influxdb.create_database(db)
    data = _metrics_data(batch, time.time_ns())
    expected, dropped_points, dropped_sums = _influx_expected(batch)
    with caplog.at_level(logging.DEBUG, logger=FORMATS_LOGGER):
        # Raises PermanentExportError (with InfluxDB's reason) unless InfluxDB answers 2xx.
        InfluxExporter(influxdb.url, database=db).export(data, 10_000)
    for series in batch:
        assert _influx_read(influxdb, db, series.name) == expected.get(series.name, {}), (
            series.name,
            encode_influx(data, precision="s"),
        )
    assert len(_messages(caplog, "is not representable in line protocol")) == dropped_points
    assert len(_messages(caplog, "Dropping field sum")) == dropped_sums


# --- carbon --------------------------------------------------------------------------------------

_GRAPHITE_KEY_CHARS = re.compile(r"[;!^=\s\x00-\x1f\x7f-\x9f]")
_GRAPHITE_VALUE_CHARS = re.compile(r"[;\s\x00-\x1f\x7f-\x9f]")


def _graphite_key(key: str) -> str:
    if not key:
        return ""
    tag = _GRAPHITE_KEY_CHARS.sub("_", key)
    return "_name" if tag == "name" else tag


def _graphite_value(text: str) -> str:
    if not text:
        return ""
    value = _GRAPHITE_VALUE_CHARS.sub("_", text)
    if value[0] == "~":
        value = "_" + value[1:]
    if value.endswith('"}'):
        value = value[:-1] + "_"
    return value


def _graphite_tags(attributes: Attributes, histogram: bool) -> dict[str, str]:
    tags = {SCOPE_TAG: SCOPE}
    excluded = frozenset({"le"}) if histogram else frozenset()
    for tag_key, key in _plan(attributes, _graphite_key, excluded).items():
        value = _graphite_value(attributes[key])
        if value:
            tags[tag_key] = value
        elif tag_key == SCOPE_TAG:
            del tags[SCOPE_TAG]
    return tags


def _carbon_name(path: str, tags: dict[str, str]) -> str:
    """carbon's normal form of a tagged series: ``name`` then every ``;k=v`` sorted as strings."""
    return path + "".join(sorted(f";{key}={value}" for key, value in tags.items()))


def _carbon_expected(batch: Sequence[Series], prefix: str) -> tuple[dict[str, float], set[str], int]:
    """Series name -> value carbon must hold; names of dropped lines; how many value/sum lines drop."""
    kept: dict[str, float] = {}
    dropped: set[str] = set()
    logged = 0
    for series in batch:
        path = f"{prefix}.{series.name}"
        for attributes, value in series.points:
            tags = _graphite_tags(attributes, isinstance(value, HistogramValue))
            if isinstance(value, HistogramValue):
                lines: dict[str, float | None] = {
                    _carbon_name(f"{path}.count", tags): value.count,
                    _carbon_name(f"{path}.sum", tags): _as_float(value.total),
                }
                logged += lines[_carbon_name(f"{path}.sum", tags)] is None
                for field, bound in (("min", value.low), ("max", value.high)):
                    if _as_float(bound) is not None:
                        lines[_carbon_name(f"{path}.{field}", tags)] = bound
                for upper, cumulative in _cumulative(value):
                    le = "+Inf" if upper is None else repr(float(upper))
                    lines[_carbon_name(f"{path}.bucket", {**tags, "le": le})] = cumulative
            else:
                number = _as_float(value)
                logged += number is None
                lines = {_carbon_name(path, tags): number}
            for name, number in lines.items():
                if number is None:
                    dropped.add(name)
                else:
                    kept[name] = float(number)  # the same second: the last line wins
    return kept, dropped - set(kept), logged


class _DataOnly(pickle.Unpickler):
    """Unpickles plain data only (carbon answers dicts, lists, tuples, strings and numbers)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name}")


def _receive(connection: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = connection.recv(size - len(chunks))
        assert chunk, "carbon closed the cache query connection"
        chunks += chunk
    return bytes(chunks)


def _carbon_cache(carbon: Carbon, names: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """What carbon's cache holds for ``names`` (carbon's own cache query, as graphite-web asks it).

    carbon keys its cache by the normalised name (it stores a name it cannot parse as is), and
    writes the cache to whisper files about once a second: between the two, a point is in one of them.
    """
    request = pickle.dumps({"type": "cache-query-bulk", "metrics": list(names)}, protocol=2)
    with socket.create_connection(("127.0.0.1", carbon.query_port), timeout=5) as connection:
        connection.sendall(struct.pack("!L", len(request)) + request)
        (size,) = struct.unpack("!L", _receive(connection, 4))
        answer = _DataOnly(io.BytesIO(_receive(connection, size))).load()
    by_metric: dict[str, list[tuple[float, float]]] = answer["datapointsByMetric"]
    return by_metric


def _carbon_points(carbon: Carbon, names: Sequence[str], since: int) -> dict[str, dict[int, float]]:
    """Second -> value of every series in ``names``, from carbon's cache and its whisper files."""
    points: dict[str, dict[int, float]] = {name: {} for name in names}
    for name in names:
        points[name].update(carbon.read_series(name, since=since))
    for name, cached in _carbon_cache(carbon, names).items():
        points[name].update((int(stamp), value) for stamp, value in cached)
    return points


def _wait_for_carbon(
    carbon: Carbon, expected: dict[str, float], second: int, timeout: float
) -> dict[str, dict[int, float]]:
    deadline = time.monotonic() + timeout
    while True:
        points = _carbon_points(carbon, list(expected), second)
        missing = {
            name: points[name] for name, value in expected.items() if points[name].get(second) != value
        }
        if not missing:
            return points
        assert time.monotonic() < deadline, f"carbon lacks {len(missing)} series: {list(missing.items())[:3]}"
        time.sleep(0.02)


def _send_to_carbon(carbon: Carbon, data: MetricsData, prefix: str, second: int) -> None:
    """Send ``data`` through a tagged TCP exporter, then a last series on the same connection, and
    wait for that one: carbon reads a connection's lines in order and caches (or logs) each line as
    it reads it, so every line of ``data`` has then been stored or refused."""
    exporter = GraphiteExporter(*carbon.line_address, tagged=True, prefix=prefix)
    try:
        exporter.export(data, 10_000)
        exporter.export(_metrics_data([Series(END_OF_BATCH, "gauge", (({}, 1),))], second * 10**9), 10_000)
    finally:
        exporter.shutdown()
    _wait_for_carbon(carbon, {f"{prefix}.{END_OF_BATCH};{SCOPE_TAG}={SCOPE}": 1.0}, second, timeout=10)


def _carbon_complaints(carbon: Carbon, offset: int) -> list[str]:
    with carbon.log_path.open(encoding="utf-8", errors="replace") as log:
        log.seek(offset)
        return [line for line in log if any(marker in line for marker in CARBON_COMPLAINTS)]


@HOSTILE
@given(batch=_batches())
def test_carbon_stores_hostile_tagged_series_under_their_normalised_names(
    carbon: Carbon, caplog: pytest.LogCaptureFixture, batch: list[Series]
) -> None:
    caplog.clear()
    prefix = f"hostile.e{next(_example)}"
    second = int(time.time())
    data = _metrics_data(batch, second * 1_000_000_000 + 1)
    kept, dropped, logged = _carbon_expected(batch, prefix)
    offset = carbon.log_path.stat().st_size
    with caplog.at_level(logging.DEBUG, logger=FORMATS_LOGGER):
        _send_to_carbon(carbon, data, prefix, second)
    # Every line has been read: the kept values are stored (polled a little: the cache is written to
    # whisper meanwhile), what the encoder dropped is nowhere, and carbon could read everything.
    _wait_for_carbon(carbon, kept, second, timeout=3)
    absent = _carbon_points(carbon, sorted(dropped), second)
    assert all(not points for points in absent.values()), absent
    assert _carbon_complaints(carbon, offset) == [], encode_graphite(data, prefix=prefix)
    assert len(_messages(caplog, "Graphite cannot store NaN or +-Inf")) == logged


# --- Prometheus text -----------------------------------------------------------------------------


def _family_name(name: str, kind: Kind) -> str:
    base = re.sub(r"[^a-zA-Z0-9:]+", "_", name)
    if kind == "counter":
        return base.removesuffix("_total") + "_total"
    return base


def _label_name(key: str) -> str:
    if not key:
        return ""
    label = re.sub(r"[^a-zA-Z0-9]+", "_", key)
    if re.match(r"[^a-zA-Z0-9]{2}", key):
        return "key" + label
    if label[0].isdigit():
        return "key_" + label
    return label


def _prometheus_labels(attributes: Attributes, histogram: bool) -> dict[str, str]:
    """Documented: colliding keys join their values with ';' in the order of the original keys."""
    groups: dict[str, list[str]] = {}
    for key in sorted(attributes):
        label = _label_name(key)
        if label and not (histogram and label == "le"):
            groups.setdefault(label, []).append(attributes[key])
    labels = {label: ";".join(values) for label, values in groups.items()}
    labels.setdefault("otel_scope_name", SCOPE)
    return labels


Sample = tuple[str, tuple[tuple[str, str], ...], str]  # name, sorted labels, value as repr(float)


def _sample(name: str, labels: dict[str, str], value: float) -> Sample:
    return name, tuple(sorted(labels.items())), repr(float(value))


def _prometheus_expected(batch: Sequence[Series]) -> tuple[Counter[Sample], list[str]]:
    """The samples of the text, and the metrics dropped for a family type conflict (documented)."""
    kinds: dict[str, Kind] = {}
    samples: Counter[Sample] = Counter()
    dropped: list[str] = []
    for series in batch:
        family = _family_name(series.name, series.kind)
        if kinds.setdefault(family, series.kind) != series.kind:
            dropped.append(series.name)
            continue
        for attributes, value in series.points:
            if isinstance(value, HistogramValue):
                labels = _prometheus_labels(attributes, True)
                for upper, cumulative in _cumulative(value):
                    le = "+Inf" if upper is None else GO_FLOAT(upper)
                    samples[_sample(f"{family}_bucket", {**labels, "le": le}, cumulative)] += 1
                samples[_sample(f"{family}_sum", labels, value.total)] += 1
                samples[_sample(f"{family}_count", labels, value.count)] += 1
            else:
                samples[_sample(family, _prometheus_labels(attributes, False), value)] += 1
    return samples, dropped


def _histogram_names_collide(batch: Sequence[Series]) -> bool:
    """A family named like another histogram family's ``_count``/``_sum``/``_bucket`` samples: the
    encoder emits both and promtool cannot parse it (see the test for that bug below)."""
    families = {_family_name(series.name, series.kind) for series in batch}
    reserved = {
        _family_name(series.name, series.kind) + suffix
        for series in batch
        if series.kind == "histogram"
        for suffix in ("_count", "_sum", "_bucket")
    }
    return not families.isdisjoint(reserved)


@HOSTILE
@given(batch=_batches().filter(lambda batch: not _histogram_names_collide(batch)))
def test_promtool_and_prometheus_client_read_hostile_text(
    promtool: Promtool, caplog: pytest.LogCaptureFixture, batch: list[Series]
) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=FORMATS_LOGGER):
        text = encode_prometheus_text(_metrics_data(batch, time.time_ns()))
    code, output = promtool.check_metrics(text)
    assert code in (0, 3), f"promtool exit {code}: {output}\n{text}"  # 3: lint findings only
    expected, dropped = _prometheus_expected(batch)
    parsed: Counter[Sample] = Counter(
        _sample(sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    )
    assert parsed == expected, text
    assert len(_messages(caplog, "Dropping metric")) == len(dropped)
    for name in dropped:
        assert _messages(caplog, f"Dropping metric {name!r}"), name


# --- bugs found with the real servers ------------------------------------------------------------


def _one_gauge(name: str, *values: tuple[str, float]) -> MetricsData:
    batch = [Series(name, "gauge", tuple(({"v": key}, value) for key, value in values))]
    return _metrics_data(batch, time.time_ns())


def test_prometheus_text_with_an_int_beyond_the_float_range_is_still_scraped(
    promtool: Promtool, start_prometheus: Callable[..., Prometheus], serve_text: Callable[..., str]
) -> None:
    """Regression: ``10**400`` was written as 401 digits; Go's ParseFloat refuses it ("value out of range"),
    so promtool fails to parse the text and Prometheus marks the whole target down, losing every
    other series of the scrape. (The Influx encoder drops such ints; the SDK never records them, but a
    ``MetricProducer`` can deliver them.)"""
    text = encode_prometheus_text(_one_gauge("beyond.float", ("huge", BEYOND_FLOAT), ("fine", 1.5)))
    target = serve_text(text.encode())
    prometheus = start_prometheus([target])
    try:
        scraped = prometheus.wait_for_scrape(target)
        code, output = promtool.check_metrics(text)
        assert (scraped["health"], scraped["lastError"]) == ("up", ""), scraped
        assert code in (0, 3), output
        [fine] = prometheus.wait_for_query('beyond_float{v="fine"}')
        assert fine["value"][1] == "1.5"
    finally:
        prometheus.stop()


def test_prometheus_text_never_repeats_a_histogram_sample_name_as_a_family(promtool: Promtool) -> None:
    """Regression: a gauge ``h.count`` next to a histogram ``h`` gave two ``h_count`` samples with the same
    labels. promtool cannot parse it ("second TYPE line for metric name ...") and Prometheus keeps one
    of the two values (duplicate sample). The OpenMetrics encoder drops such a later family with a
    warning; the text 0.0.4 encoder does not."""
    histogram = HistogramValue((1.0,), (1, 1), 3.0, 1.0, 2.0)
    batch = [Series("h", "histogram", (({}, histogram),)), Series("h.count", "gauge", (({}, 5),))]
    text = encode_prometheus_text(_metrics_data(batch, time.time_ns()))
    code, output = promtool.check_metrics(text)
    samples = [
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]
    assert len(samples) == len(set(samples)), f"duplicate samples in:\n{text}"
    assert code in (0, 3), f"promtool exit {code}: {output}\n{text}"


def test_graphite_drops_an_int_beyond_the_float_range_like_an_infinity(
    carbon: Carbon, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: the Graphite encoder wrote ``10**400`` as its digits, carbon reads it with ``float()`` and
    stores +Inf, a value the encoder documents it never sends ("NaN and +-Inf cannot be stored
    meaningfully: those lines are dropped"). The Influx encoder drops such ints."""
    prefix = f"hostile.bug{next(_example)}"
    second = int(time.time())
    batch = [Series("beyond.float", "gauge", (({"v": "huge"}, BEYOND_FLOAT), ({"v": "fine"}, 2.5)))]
    data = _metrics_data(batch, second * 1_000_000_000)
    with caplog.at_level(logging.DEBUG, logger=FORMATS_LOGGER):
        _send_to_carbon(carbon, data, prefix, second)
    fine = _carbon_name(f"{prefix}.beyond.float", {SCOPE_TAG: SCOPE, "v": "fine"})
    huge = _carbon_name(f"{prefix}.beyond.float", {SCOPE_TAG: SCOPE, "v": "huge"})
    _wait_for_carbon(carbon, {fine: 2.5}, second, timeout=3)
    assert _carbon_points(carbon, [huge], second) == {huge: {}}, "carbon stored the huge int"
    assert _messages(caplog, "Graphite cannot store NaN or +-Inf")
