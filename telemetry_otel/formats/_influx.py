"""InfluxDB line protocol encoder over OTel SDK ``MetricsData``.

A pure function: no state kept between calls beyond bounded caches of name escaping. One line per
data point, ``<measurement>[,<tag key>=<tag value>]* <field key>=<field value>[,...] <timestamp>\\n``.
The output is meant to read the same in InfluxDB 1.x and 2.x (the Go ``models`` parser), Telegraf,
VictoriaMetrics and parsers following the InfluxDB 3 line protocol specification: it avoids every
construct they read differently.

* Measurement: the OTel metric name as is, dots kept (``http.server.request.duration``), no unit suffix
  and no ``_total``. Commas and spaces are escaped with a backslash. A metric whose name is empty or
  starts with ``#`` (a comment line), whitespace or a control character (stripped by parsers) is
  dropped with a warning; instrument names cannot, view names can.
* Tags: the data point attributes, then ``otel.scope.name`` when the scope name is non-empty (one
  metric from two scopes gives two series; a data point attribute with that key wins), sorted by
  escaped key in code point order (Go ``bytes.Compare`` order of the UTF-8 bytes, which InfluxDB
  recommends). Commas, ``=`` and spaces in tag keys and values are escaped with a backslash.
  Attribute values become text as in the Prometheus encoder (strings as is, bools ``true``/``false``,
  sequences as JSON).
* Newlines: line protocol cannot carry ``\\n`` in a measurement or tag (there is no escape for it);
  ``\\n`` and ``\\r`` become ``_``.
* Backslashes: no parser can end a token with a backslash (it would escape the separator after it),
  and InfluxDB 1.x/2.x read ``\\\\`` as two backslashes where VictoriaMetrics and InfluxDB 3 read one.
  So a backslash is kept only where every parser reads it literally: one that ends the text or
  comes before a backslash, space, comma or ``=`` becomes ``_`` (``C:\\dir\\`` reads back as
  ``C:\\dir_``, ``a\\,b`` as ``a_,b``, ``a\\\\b`` as ``a_\\b``, while ``C:\\dir`` stays).
* Reserved tag keys: ``time`` and keys starting with ``_`` (InfluxDB 2 reserves the ``_`` namespace,
  ``_measurement``/``_field``/``time`` make it discard the point) get the prefix ``key``, like the
  Prometheus encoder's label names: ``time`` -> ``key_time``, ``_id`` -> ``key_id``.
* Dropped tags (debug log): empty keys and empty values (line protocol has no empty tag value;
  InfluxDB says to omit the tag). Keys that collide after renaming keep the attribute whose original
  key sorts first; the others are dropped.
* Resource: resource attributes are not added by default: here a data point's ``service.name`` names
  the internal service while the resource's ``service.name`` names the whole runtime.
  ``resource_tags`` copies the named resource attributes as ``resource.<key>`` tags (same rules; a
  data point attribute with the same key wins). No unit tag: the unit is part of the metric's meaning.
* Fields of monotonic Sums (counters): ``value``, an int as ``123i`` (a bool as ``0i``/``1i``), a float
  as its shortest ``repr``. Ints outside int64 (InfluxDB integers) are written as floats; ints too
  large for a float are dropped.
* Fields of Gauges and up-down Sums: ``value``, always a float (``3`` is written ``3.0``). InfluxDB
  fixes a field's type per measurement (and shard), and a gauge may report ``1`` and later ``1.5``:
  with ints kept, InfluxDB would reject the later points with "field type conflict".
* Fields of Histograms: ``count`` (int); ``sum``, ``min`` and ``max`` always as floats, so they never
  change type (``min``/``max`` only when recorded, i.e. finite); and one ``le_<bound>`` field per
  bucket holding the *cumulative* count, like Prometheus, with the bound as the shortest float
  ``repr`` (``le_0.005=3i``, ``le_1.0=5i``, ..., ``le_+Inf=<count>i``). Field keys are fixed ASCII
  and need no escaping; there are no string fields.
* NaN and +-Inf are not representable: such a field is dropped, and so is a line with no field left
  (debug log).
* Timestamp: the point's ``time_unix_nano`` floor-divided to ``precision``. The writer must send the
  same precision: ``precision=s|ms|us|ns`` on InfluxDB 2's ``/api/v2/write``; InfluxDB 1.x's
  ``/write`` spells microseconds ``u`` (``s``, ``ms``, ``u``, ``ns``).
* Skipped: delta temporality data (re-aggregating needs state, which a pure encoder does not keep)
  and exponential histograms, as in the Prometheus encoder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Final, Literal

from opentelemetry.sdk.metrics.export import Histogram, HistogramDataPoint, MetricsData, Sum
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

from telemetry_otel.formats._shared import (
    LOGGER,
    Entry,
    format_bound,
    plan_tags,
    render_tags,
    resource_tag_texts,
    supported_metrics,
)

__all__ = ["encode_influx"]

_Precision = Literal["s", "ms", "us", "ns"]

_SCOPE_TAG: Final = "otel.scope.name"
_NANOS_PER_UNIT: Final[Mapping[str, int]] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_NO_KEYS: Final[frozenset[str]] = frozenset()

_NEWLINE = re.compile(r"[\n\r]")
_AMBIGUOUS_BACKSLASH = re.compile(r"\\(?=[\\ ,=]|\Z)")


def encode_influx(
    data: MetricsData, *, precision: _Precision = "ns", resource_tags: Sequence[str] = ()
) -> str:
    """Encode ``data`` as InfluxDB line protocol with timestamps in ``precision`` units.

    One line per data point, in metric and data point order. ``resource_tags`` names resource
    attributes copied as ``resource.<key>`` tags. The writer must pass the same precision to the
    InfluxDB write API. Returns ``""`` when there is nothing to write, otherwise text ending in exactly
    one newline.
    """
    nanos_per_unit = _NANOS_PER_UNIT.get(precision)
    if nanos_per_unit is None:
        raise ValueError(f"precision must be one of {sorted(_NANOS_PER_UNIT)}, not {precision!r}")
    value_cache: dict[str, str] = {}
    out: list[str] = []

    for resource, scope, metric, metric_data in supported_metrics(data):
        metric_name = metric.name
        measurement = _measurement(metric_name)
        if not measurement:
            LOGGER.warning(
                "Dropping metric %r: not a usable InfluxDB measurement (empty, or starts with '#', "
                "whitespace or a control character)",
                metric_name,
            )
            continue
        fixed = _fixed_tags(resource, scope, resource_tags, metric_name)
        plans: dict[tuple[str, ...], tuple[Entry, ...]] = {}
        if isinstance(metric_data, Histogram):
            bounds: Sequence[float] | None = None
            keys: tuple[str, ...] = ()
            for histogram_point in metric_data.data_points:
                if histogram_point.explicit_bounds is not bounds:
                    bounds = histogram_point.explicit_bounds
                    keys = _bucket_keys(tuple(bounds))
                fields = _histogram_fields(histogram_point, keys, metric_name)
                tags = _point_tags(histogram_point.attributes, plans, fixed, value_cache, metric_name)
                out.append(
                    f"{measurement}{tags} {fields} {histogram_point.time_unix_nano // nanos_per_unit}\n"
                )
        else:
            # Only a monotonic sum keeps integers: a gauge may report 1 and later 1.5, and InfluxDB
            # rejects a field whose type changes, so gauges and up-down sums are always floats.
            render = (
                _field_value if isinstance(metric_data, Sum) and metric_data.is_monotonic else _float_text
            )
            for number_point in metric_data.data_points:
                value = render(number_point.value)
                if value is None:
                    LOGGER.debug(
                        "Dropping a data point of metric %r (attributes %r): its value %r is not "
                        "representable in line protocol",
                        metric_name,
                        number_point.attributes,
                        number_point.value,
                    )
                    continue
                tags = _point_tags(number_point.attributes, plans, fixed, value_cache, metric_name)
                out.append(
                    f"{measurement}{tags} value={value} {number_point.time_unix_nano // nanos_per_unit}\n"
                )
    return "".join(out)


def _point_tags(
    attributes: Mapping[str, AttributeValue] | None,
    plans: dict[tuple[str, ...], tuple[Entry, ...]],
    fixed: Mapping[str, str],
    value_cache: dict[str, str],
    metric_name: str,
) -> str:
    """The rendered tag set (each tag with a leading comma) of one data point."""
    keys = tuple(attributes) if attributes else ()
    plan = plans.get(keys)
    if plan is None:
        plan = plans[keys] = plan_tags(keys, _tag_key, fixed, _NO_KEYS, _render_tag_key, metric_name)
    if not attributes:
        return "".join(entry[2] for entry in plan)
    return render_tags(plan, tuple(attributes.values()), _tag_value, value_cache, metric_name)


def _histogram_fields(point: HistogramDataPoint, bucket_keys: tuple[str, ...], metric_name: str) -> str:
    """``count=..i,sum=..,min=..,max=..,le_<bound>=..i,...`` for one histogram data point."""
    fields = [f"count={point.count}i"]
    total = _float_text(point.sum)
    if total is None:
        LOGGER.debug(
            "Dropping field sum of a data point of metric %r (attributes %r): %r is not representable",
            metric_name,
            point.attributes,
            point.sum,
        )
    else:
        fields.append(f"sum={total}")
    for key, bound in (("min", point.min), ("max", point.max)):
        text = _float_text(bound)
        if text is not None:  # unrecorded min/max are +Inf/-Inf
            fields.append(f"{key}={text}")
    cumulative = 0
    for key, count in zip(bucket_keys, point.bucket_counts, strict=False):
        cumulative += count
        fields.append(f"{key}{cumulative}i")
    return ",".join(fields)


def _fixed_tags(
    resource: Resource, scope: InstrumentationScope, keys: Sequence[str], metric_name: str
) -> dict[str, str]:
    """The rendered scope and chosen resource tags of one metric, by escaped key."""
    texts = resource_tag_texts(resource, keys) if keys else {}
    if scope.name:
        texts[_SCOPE_TAG] = scope.name
    fixed: dict[str, str] = {}
    for key, text in texts.items():
        tag_key = _tag_key(key)
        value = _tag_value(text)
        if value:
            fixed[tag_key] = f",{tag_key}={value}"
        else:
            LOGGER.debug("Dropping tag %r of metric %r: empty value", key, metric_name)
    return fixed


def _field_value(value: float) -> str | None:
    """A ``value`` field: int64 ints as ``123i``, other numbers as floats; ``None`` when not finite."""
    kind = type(value)
    if kind is int:
        if _INT64_MIN <= value <= _INT64_MAX:
            return f"{value}i"
        return _float_text(value)
    if kind is float:
        return repr(value) if value - value == 0 else None  # inf - inf and nan - nan are nan
    if isinstance(value, int):  # bool and other int subclasses
        return _field_value(int(value))
    return _float_text(value)


def _float_text(value: float) -> str | None:
    """The shortest ``repr`` of ``value`` as a float, ``None`` when it is not a finite float."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return repr(number) if number - number == 0 else None


@lru_cache(maxsize=256)
def _bucket_keys(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The ``le_<bound>=`` field key parts of the buckets for ``bounds``, ending with ``le_+Inf=``."""
    return (*(f"le_{format_bound(bound)}=" for bound in bounds), "le_+Inf=")


def _clean(text: str) -> str:
    """Replace what line protocol cannot carry: newlines and ambiguous backslashes become ``_``."""
    if "\n" in text or "\r" in text:
        text = _NEWLINE.sub("_", text)
    if "\\" in text:
        text = _AMBIGUOUS_BACKSLASH.sub("_", text)
    return text


@lru_cache(maxsize=4096)
def _measurement(name: str) -> str:
    """The escaped measurement for a metric name ("" when it cannot be one)."""
    if not name or name[0] == "#" or name[0].isspace() or name[0] < " " or "\x7f" <= name[0] <= "\x9f":
        return ""
    return _clean(name).replace(",", "\\,").replace(" ", "\\ ")


@lru_cache(maxsize=4096)
def _tag_key(key: str) -> str:
    """The escaped tag key for an attribute key ("" when there is none)."""
    if not key:
        return ""
    if key == "time":
        key = "key_time"
    elif key[0] == "_":
        key = "key" + key
    return _escape_tag(_clean(key))


def _tag_value(text: str) -> str:
    """The escaped tag value for attribute text ("" for an empty value)."""
    return _escape_tag(_clean(text)) if text else ""


def _escape_tag(text: str) -> str:
    return text.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _render_tag_key(tag_key: str) -> str:
    return f",{tag_key}="
