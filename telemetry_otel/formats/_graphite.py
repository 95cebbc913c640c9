"""Graphite plaintext protocol encoder over OTel SDK ``MetricsData``.

A pure function: no state kept between calls beyond bounded caches of name sanitisation. One line per
value, ``<path> <value> <timestamp>\\n``, the timestamp in integer seconds: the data point's
``time_unix_nano // 10**9``, or ``timestamp_seconds`` for every line when given.

* Layouts. Tagged (Graphite 1.1 tagged series, ``tagged=True``): ``[prefix.]<name>[.<field>];k=v;...``
  with the tags sorted by key. Hierarchical (``tagged=False``): ``[prefix.]<name>[.<key>.<value>]*[.<field>]``
  with the key/value node pairs sorted by key, then the field nodes.
* Names. The dots of the OTel name are the Graphite hierarchy (``http.server.request.duration``); in
  each node characters outside ``[A-Za-z0-9_-]`` become ``_`` and empty nodes are removed. There is
  no unit suffix and no ``_total`` (the Graphite convention, as in Micrometer's Graphite naming). The
  prefix is sanitised the same way. A metric whose name leaves no node is dropped with a warning.
* Fields. Sums and Gauges have none: the value line is the name itself. A histogram data point gives
  ``count``, ``sum``, ``min`` and ``max`` (only when finite, i.e. recorded) and one ``bucket`` line
  per bucket with the *cumulative* count, like Prometheus (the last bucket, bound ``+Inf``, equals
  ``count``). The bound is tag ``le=<bound>`` when tagged (``0.005``, ``1.0``, ``1e+20``, ``+Inf``:
  the shortest float ``repr``) and the nodes ``bucket.le_<bound>`` when hierarchical, with ``.`` ->
  ``_``, ``+`` removed and ``+Inf`` -> ``inf`` (``le_0_005``, ``le_1_0``, ``le_1e20``, ``le_inf``).
* Tags (tagged). Graphite: "Tag names must have a length >= 1 and may contain any ascii characters
  except ;!^=. Tag values must also have a length >= 1, they may contain any ascii characters except
  ; and the first character must not be ~". The line is split on whitespace (carbon:
  ``line.strip().split()``, any Unicode whitespace) and carbon stores the series in files named after
  it, so: in keys ``;!^=``, whitespace and control characters become ``_``, and ``name`` (Graphite's
  own tag for the metric name) becomes ``_name``; in values ``;``, whitespace and control characters
  become ``_``, a leading ``~`` becomes ``_``, and a final ``}`` after ``"`` becomes ``_`` (carbon
  parses a path ending in ``"}`` as OpenMetrics ``name{k="v"}``). Dots and other ASCII punctuation
  are kept. Non-ASCII text is kept too: carbon reads UTF-8, though Graphite calls it "not well
  tested". On histograms an attribute with tag key ``le`` is dropped (it would clash with the bucket
  tag). Every line carries ``otel.scope.name`` when the scope name is non-empty, so one metric from
  two scopes gives two series; a data point attribute with that key wins.
* Nodes (hierarchical). Keys and values become path nodes: every character outside ``[A-Za-z0-9_-]``,
  dots included, becomes ``_``. There is no scope node: the same metric and attributes from two scopes
  share one path.
* Both layouts. Attribute values become text as in the Prometheus encoder (strings as is, bools
  ``true``/``false``, sequences as JSON). Attributes with an empty key or an empty value are dropped
  (debug log). Keys that collide after sanitising keep the attribute whose original key sorts first;
  the others are dropped (debug log).
* Resource. Resource attributes are not added by default: here a data point's ``service.name`` names
  the internal service while the resource's ``service.name`` names the whole runtime. ``resource_tags``
  copies the named resource attributes as ``resource.<key>`` (same rules; a data point attribute with
  the same tag key wins).
* Values. Ints are written as ints, floats as their shortest ``repr``. NaN and +-Inf cannot be stored
  meaningfully (carbon itself drops NaN): those lines are dropped (debug log).
* Skipped. Delta temporality data (re-aggregating needs state, which a pure encoder does not keep) and
  exponential histograms, as in the Prometheus encoder.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Final

from opentelemetry.sdk.metrics.export import Histogram, HistogramDataPoint, MetricsData, NumberDataPoint
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

__all__ = ["encode_graphite"]

_SCOPE_TAG: Final = "otel.scope.name"

_NANOS_PER_SECOND: Final = 1_000_000_000
_MAX_FLOAT_INT: Final = int(sys.float_info.max)
_INVALID_NODE_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_INVALID_TAG_KEY_CHAR = re.compile(r"[;!^=\s\x00-\x1f\x7f-\x9f]")
_INVALID_TAG_VALUE_CHAR = re.compile(r"[;\s\x00-\x1f\x7f-\x9f]")
_NO_KEYS: Final[frozenset[str]] = frozenset()
_LE_KEY: Final = frozenset({"le"})

# A data point's tag plan split around the position of the "le" bucket tag (tagged histograms only).
_SplitPlan = tuple[tuple[Entry, ...], tuple[Entry, ...]]


def encode_graphite(
    data: MetricsData,
    *,
    timestamp_seconds: int | None = None,
    prefix: str | None = None,
    tagged: bool = True,
    resource_tags: Sequence[str] = (),
) -> str:
    """Encode ``data`` as Graphite plaintext protocol lines, tagged (Graphite 1.1+) or hierarchical.

    Lines appear in metric and data point order. ``timestamp_seconds`` replaces every point's own
    time; ``prefix`` is a dotted path put before every name; ``resource_tags`` names resource
    attributes copied as ``resource.<key>`` tags. Returns ``""`` when there is nothing to write,
    otherwise text ending in exactly one newline.
    """
    base = _metric_path(prefix) if prefix else ""
    if base:
        base += "."
    fixed_timestamp = None if timestamp_seconds is None else str(int(timestamp_seconds))
    value_cache: dict[str, str] = {}
    out: list[str] = []

    for resource, scope, metric, metric_data in supported_metrics(data):
        name = _metric_path(metric.name)
        if not name:
            LOGGER.warning("Dropping metric %r: no Graphite path node is left after sanitising", metric.name)
            continue
        path = base + name
        metric_name = metric.name
        fixed = _fixed_tags(resource, scope, resource_tags, tagged, metric_name)
        split_le = tagged and isinstance(metric_data, Histogram)
        tags = _Tags(metric_name, fixed, split_le, tagged, value_cache)
        if isinstance(metric_data, Histogram):
            bounds: Sequence[float] | None = None
            tails: tuple[str, ...] = ()
            for histogram_point in metric_data.data_points:
                if histogram_point.explicit_bounds is not bounds:
                    bounds = histogram_point.explicit_bounds
                    tails = _bucket_tails(tuple(bounds), tagged)
                before, after = tags.render(histogram_point.attributes)
                timestamp = fixed_timestamp or str(histogram_point.time_unix_nano // _NANOS_PER_SECOND)
                _append_histogram(
                    out, path, before, after, tails, histogram_point, timestamp, tagged, metric_name
                )
        else:
            for number_point in metric_data.data_points:
                value = _format_value(number_point.value)
                if value is None:
                    _log_non_finite(metric_name, "value", number_point)
                    continue
                before, after = tags.render(number_point.attributes)
                timestamp = fixed_timestamp or str(number_point.time_unix_nano // _NANOS_PER_SECOND)
                out.append(f"{path}{before}{after} {value} {timestamp}\n")
    return "".join(out)


class _Tags:
    """Renders the tags (tagged) or key/value nodes (hierarchical) of the data points of one metric."""

    __slots__ = (
        "excluded",
        "fixed",
        "metric_name",
        "plans",
        "render_key",
        "render_value",
        "sanitise_key",
        "split_le",
        "value_cache",
    )

    def __init__(
        self,
        metric_name: str,
        fixed: Mapping[str, str],
        split_le: bool,
        tagged: bool,
        value_cache: dict[str, str],
    ) -> None:
        self.metric_name = metric_name
        self.fixed = fixed
        self.excluded = _LE_KEY if split_le else _NO_KEYS
        self.split_le = split_le
        self.sanitise_key: Callable[[str], str] = _tag_key if tagged else _node_key
        self.render_key: Callable[[str], str] = _render_tag_key if tagged else _render_node_key
        self.render_value: Callable[[str], str] = _tag_value if tagged else _node
        self.value_cache = value_cache
        self.plans: dict[tuple[str, ...], _SplitPlan] = {}

    def render(self, attributes: Mapping[str, AttributeValue] | None) -> tuple[str, str]:
        """The rendered tags (or nodes) of a data point: on tagged histograms split around the ``le`` tag."""
        keys = tuple(attributes) if attributes else ()
        plan = self.plans.get(keys)
        if plan is None:
            entries = plan_tags(
                keys, self.sanitise_key, self.fixed, self.excluded, self.render_key, self.metric_name
            )
            split = sum(1 for entry in entries if entry[0] < "le") if self.split_le else len(entries)
            plan = self.plans[keys] = (entries[:split], entries[split:])
        before, after = plan
        if not attributes:
            return "".join(entry[2] for entry in before), "".join(entry[2] for entry in after)
        values = tuple(attributes.values())
        return (
            render_tags(before, values, self.render_value, self.value_cache, self.metric_name)
            if before
            else "",
            render_tags(after, values, self.render_value, self.value_cache, self.metric_name)
            if after
            else "",
        )


def _append_histogram(
    out: list[str],
    path: str,
    before: str,
    after: str,
    tails: tuple[str, ...],
    point: HistogramDataPoint,
    timestamp: str,
    tagged: bool,
    metric_name: str,
) -> None:
    """Append the count, sum, min, max and cumulative bucket lines of one histogram data point."""
    tags = before + after
    fields: list[tuple[str, str]] = [("count", str(point.count))]
    total = _format_value(point.sum)
    if total is None:
        _log_non_finite(metric_name, "sum", point)
    else:
        fields.append(("sum", total))
    for field, bound in (("min", point.min), ("max", point.max)):
        text = _format_value(bound)
        if text is not None:  # unrecorded min/max are +Inf/-Inf
            fields.append((field, text))
    for field, text in fields:
        line = f"{path}.{field}{tags}" if tagged else f"{path}{tags}.{field}"
        out.append(f"{line} {text} {timestamp}\n")
    head = f"{path}.bucket{before}" if tagged else f"{path}{tags}"
    cumulative = 0
    for tail, count in zip(tails, point.bucket_counts, strict=False):
        cumulative += count
        out.append(
            f"{head}{tail}{after} {cumulative} {timestamp}\n"
            if tagged
            else f"{head}{tail} {cumulative} {timestamp}\n"
        )


def _log_non_finite(metric_name: str, field: str, point: NumberDataPoint | HistogramDataPoint) -> None:
    LOGGER.debug(
        "Dropping %s of a data point of metric %r (attributes %r): Graphite cannot store NaN or +-Inf",
        field,
        metric_name,
        point.attributes,
    )


def _fixed_tags(
    resource: Resource,
    scope: InstrumentationScope,
    keys: Sequence[str],
    tagged: bool,
    metric_name: str,
) -> dict[str, str]:
    """The rendered scope (tagged only) and chosen resource tags of one metric, by sanitised key."""
    texts = resource_tag_texts(resource, keys) if keys else {}
    if tagged and scope.name:
        texts[_SCOPE_TAG] = scope.name
    fixed: dict[str, str] = {}
    sanitise_key: Callable[[str], str] = _tag_key if tagged else _node_key
    for key, text in texts.items():
        tag_key = sanitise_key(key)
        value = _tag_value(text) if tagged else _node(text)
        if not value:
            LOGGER.debug("Dropping tag %r of metric %r: empty value", key, metric_name)
        elif tagged:
            fixed[tag_key] = f";{tag_key}={value}"
        else:
            fixed[tag_key] = f".{tag_key}.{value}"
    return fixed


def _format_value(value: float) -> str | None:
    """Format a value: ints as ints, finite floats in shortest repr; ``None`` for NaN and +-Inf.

    An int beyond the float range is ``None`` too: carbon reads values as floats, so it would store
    an infinity.
    """
    kind = type(value)
    if kind is int:
        return repr(value) if -_MAX_FLOAT_INT <= value <= _MAX_FLOAT_INT else None
    if kind is float:
        return repr(value) if value - value == 0 else None  # inf - inf and nan - nan are nan
    if isinstance(value, int):  # bool and other int subclasses
        return _format_value(int(value))
    return _format_value(float(value))


@lru_cache(maxsize=256)
def _bucket_tails(bounds: tuple[float, ...], tagged: bool) -> tuple[str, ...]:
    """The bucket parts of the lines for ``bounds``, ending with the ``+Inf`` bucket."""
    texts = [format_bound(bound) for bound in bounds]
    if tagged:
        return (*(f";le={text}" for text in texts), ";le=+Inf")
    nodes = (text.replace(".", "_").replace("+", "").replace("Inf", "inf") for text in texts)
    return (*(f".bucket.le_{node}" for node in nodes), ".bucket.le_inf")


@lru_cache(maxsize=4096)
def _metric_path(name: str) -> str:
    """The sanitised dotted Graphite path of an OTel metric name or prefix ("" when no node is left)."""
    return ".".join(_INVALID_NODE_CHAR.sub("_", node) for node in name.split(".") if node)


@lru_cache(maxsize=4096)
def _tag_key(key: str) -> str:
    """Sanitise an attribute key into a Graphite tag name ("" when there is none)."""
    if not key:
        return ""
    tag = _INVALID_TAG_KEY_CHAR.sub("_", key)
    return "_name" if tag == "name" else tag


def _tag_value(text: str) -> str:
    """Sanitise attribute text into a Graphite tag value ("" for an empty value)."""
    if not text:
        return ""
    value = _INVALID_TAG_VALUE_CHAR.sub("_", text)
    if value[0] == "~":
        value = "_" + value[1:]
    if value[-2:] == '"}':
        value = value[:-1] + "_"
    return value


def _node(text: str) -> str:
    """Sanitise text into one hierarchical path node ("" for empty text)."""
    return _INVALID_NODE_CHAR.sub("_", text)


@lru_cache(maxsize=4096)
def _node_key(key: str) -> str:
    return _node(key)


def _render_tag_key(tag_key: str) -> str:
    return f";{tag_key}="


def _render_node_key(node: str) -> str:
    return f".{node}."
