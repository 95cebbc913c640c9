"""What the Prometheus text 0.0.4 and OpenMetrics 1.0 encoders share: names, labels, values, families.

Pure functions over OTel SDK ``MetricsData``: no registry, no ``prometheus_client`` objects, no state
kept between calls beyond bounded caches of name sanitisation. The mapping follows the OpenTelemetry
specification "Prometheus and OpenMetrics Compatibility" (OTLP metric points to Prometheus) and matches
what ``opentelemetry-exporter-prometheus`` (``PrometheusMetricReader``) exposes, except where noted:

* Names: characters outside ``[a-zA-Z0-9_:]`` become ``_``, runs of ``_`` collapse to one, a leading
  digit gets a ``_`` prefix (the reference exporter *replaces* the digit, losing it). The unit
  suffix (``s`` -> ``seconds``, ``By/s`` -> ``bytes_per_second``, ``{request}`` -> nothing) comes
  before ``_total`` and is not added when the name already ends with it.
* Unit ``1`` on an OTel ``Gauge`` adds ``_ratio`` (specification; the OpenTelemetry Collector does the
  same, for Gauges only). The reference exporter adds nothing. On Sums and Histograms ``1`` adds
  nothing: an up-down counter in ``1`` is a count, not a ratio.
* Label names: characters outside ``[a-zA-Z0-9_]`` become ``_`` with runs collapsed; a leading digit
  gets ``key_``; a key that would start with the reserved ``__`` prefix gets ``key_`` instead (so
  ``__x`` -> ``key_x``). Keys colliding after sanitisation have their values joined with ``;`` in
  the lexicographic order of the original keys (the reference exporter keeps only the last one).
  Attributes with an empty key are dropped (there is no valid label name for them).
* Every sample carries ``otel_scope_name``, ``otel_scope_version``, ``otel_scope_schema_url`` and the
  scope attributes as ``otel_scope_<key>``, like the reference exporter, but only when non-empty
  (Prometheus treats an empty label value as an absent label, so this is the same series).
  A data point attribute that maps to one of these label names wins over the scope label.
* On histograms an attribute that maps to ``le`` is dropped (it would clash with the bucket label).
* With ``agent_label`` every sample of a resource with a ``service.name`` also carries ``agent``, the
  output ``label_agent`` gives (``_agent.py``: a point's own different ``agent`` becomes
  ``exported_agent``), written by the encoder as one more label instead of a copy of every point.
* ``target_info`` (value 1, HELP "Target metadata") carries the sanitised resource attributes of all
  resources in the data, merged, and nothing else: like the reference exporter and the specification
  for SDK exporters, ``service.name``/``service.instance.id`` are *not* turned into ``job``/``instance``
  labels (that mapping is specified for the Collector's exporters only). It is skipped when the
  merged resource has no attributes.
* ``# HELP`` is omitted for an empty description instead of being emitted with an empty text.
* Exponential histograms are skipped (they map only to native histograms, which neither text format
  can carry), and so is delta-temporality data (Prometheus is cumulative; re-aggregating deltas
  needs state, which a pure encoder does not keep).

The differences between the two formats are switched by ``build_families(data, openmetrics)`` and
documented in ``_openmetrics.py``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Any, Final

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import Attributes

from telemetry_otel.formats._agent import agent_attributes, agent_of
from telemetry_otel.vocabulary import AGENT_LABEL

__all__ = [
    "COUNTER",
    "GAUGE",
    "HISTOGRAM",
    "INFO",
    "Family",
    "build_families",
    "prometheus_bucket_bound",
    "prometheus_label_name",
    "prometheus_metric_name",
]

_logger = logging.getLogger(__name__)

COUNTER: Final = "counter"
GAUGE: Final = "gauge"
HISTOGRAM: Final = "histogram"
INFO: Final = "info"
_CUMULATIVE: Final = AggregationTemporality.CUMULATIVE

_TARGET_INFO_NAME: Final = "target_info"
_TARGET_INFO_HELP: Final = "Target metadata"
_TARGET_FAMILY: Final = "target"  # OpenMetrics: the info family whose only sample is target_info

_INVALID_NAME_RUN = re.compile(r"[^a-zA-Z0-9:]+")  # "_" is in the class so "_" runs collapse too
_INVALID_LABEL_RUN = re.compile(r"[^a-zA-Z0-9]+")
_RESERVED_LABEL_PREFIX = re.compile(r"[^a-zA-Z0-9]{2}")  # would start with "__" before collapsing
_UNIT_ANNOTATION = re.compile(r"\{[^}]*\}")

# UCUM -> Prometheus unit words, as in opentelemetry-exporter-prometheus / the Collector translator.
_UNIT_WORDS: Final[Mapping[str, str]] = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tebibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
    "1": "",
}
# Denominators of "X/Y" units (singular), as in the reference exporter and the Collector.
_PER_UNIT_WORDS: Final[Mapping[str, str]] = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}
# OpenMetrics: the sample names a family of each type reserves (a later family using one is dropped).
_RESERVED_SUFFIXES: Final[Mapping[str, tuple[str, ...]]] = {
    COUNTER: ("", "_total", "_created"),
    GAUGE: ("",),
    HISTOGRAM: ("", "_bucket", "_count", "_sum", "_created"),
    INFO: ("", "_info"),
}

#: Text 0.0.4: a counter family's name already ends in ``_total``, and there are no ``_created`` samples.
_TEXT_RESERVED_SUFFIXES: Final[Mapping[str, tuple[str, ...]]] = {
    COUNTER: ("",),
    GAUGE: ("",),
    HISTOGRAM: ("", "_bucket", "_count", "_sum"),
    INFO: ("",),
}

_INF: Final = math.inf
_MAX_FLOAT_INT: Final = int(sys.float_info.max)
_NINF: Final = -math.inf
_NANOS: Final = 1_000_000_000

# A label plan for one tuple of attribute keys: (label prefix 'name="', indices of the attribute
# values whose values are joined with ";" for that label) in label-name order, and the rendered
# scope labels (with a leading comma) not overridden by an attribute.
_Plan = tuple[tuple[tuple[str, tuple[int, ...]], ...], str]
# Scope labels: (label name, rendered 'name="value"') pairs.
_ScopeLabels = tuple[tuple[str, str], ...]


class Family:
    """One metric family being built: type, escaped HELP text, unit (OpenMetrics) and sample lines."""

    __slots__ = ("help", "kind", "lines", "unit")

    def __init__(self, kind: str, help_text: str, unit: str, lines: list[str]) -> None:
        self.kind = kind
        self.help = help_text
        self.unit = unit
        self.lines = lines


def build_families(data: MetricsData, openmetrics: bool, *, agent_label: bool = False) -> dict[str, Family]:
    """The metric families of ``data`` by the name their metadata lines use, in output order.

    Families appear in first-seen order (``target_info`` first) and samples in data point order.
    Families with the same name from different scopes or ``Metric`` objects are merged (the first
    non-empty description and unit win); a later family whose type differs from the first one with
    that name is dropped with a logged warning, and so is, with ``openmetrics``, a later family that
    would reuse a sample name an earlier family reserves (``x_created`` of a counter ``x``, ...).

    ``openmetrics`` switches to OpenMetrics 1.0: counter families are named without ``_total``,
    ``target`` is an ``info`` family, units are kept, HELP escapes ``"``, counters and histograms get
    ``_created`` samples, and points OpenMetrics cannot carry are dropped or trimmed.

    ``agent_label`` labels every sample as ``encode(label_agent(data))`` would, at the cost of one
    more label (no data point is copied).
    """
    families: dict[str, Family] = {}  # insertion order is output order
    reserved: set[str] = set()  # every sample name the families so far may use
    escape_cache = _Escapes()
    label_cache: dict[str, str] = {}
    created: dict[int, str] = {}  # start time -> _created value text
    escape_help = _escape_label_value if openmetrics else _escape_help

    resource_attributes: dict[str, object] = {}
    for resource_metrics in data.resource_metrics:
        resource_attributes.update(resource_metrics.resource.attributes)
    if resource_attributes:
        target_plan = _make_plan(tuple(resource_attributes), (), False, label_cache)
        target_labels = _render_labels(target_plan, tuple(resource_attributes.values()), escape_cache)
        lines = [f"{_TARGET_INFO_NAME}{{{target_labels}}} 1\n"]
        if openmetrics:
            families[_TARGET_FAMILY] = Family(INFO, _TARGET_INFO_HELP, "", lines)
            reserved.update(_reserved_names(_TARGET_FAMILY, INFO, openmetrics))
        else:
            families[_TARGET_INFO_NAME] = Family(GAUGE, _TARGET_INFO_HELP, "", lines)

    for resource_metrics in data.resource_metrics:
        agent = agent_of(resource_metrics.resource) if agent_label else None
        for scope_metrics in resource_metrics.scope_metrics:
            scope_labels = _scope_labels(scope_metrics.scope)
            all_scope_labels = ",".join(rendered for _, rendered in scope_labels)
            for metric in scope_metrics.metrics:
                metric_data = metric.data
                if isinstance(metric_data, Sum):
                    if metric_data.aggregation_temporality != _CUMULATIVE:
                        continue
                    kind = COUNTER if metric_data.is_monotonic else GAUGE
                    ratio = False
                elif isinstance(metric_data, Gauge):
                    kind = GAUGE
                    ratio = True
                elif isinstance(metric_data, Histogram):
                    if metric_data.aggregation_temporality != _CUMULATIVE:
                        continue
                    kind = HISTOGRAM
                    ratio = False
                else:  # ExponentialHistogram (native histograms only) or unknown
                    continue
                if not metric_data.data_points:
                    continue

                unit = metric.unit or ""
                name = _family_name(metric.name, unit, kind, ratio)
                key, unit_word = _openmetrics_family(name, unit, kind, ratio) if openmetrics else (name, "")
                family = families.get(key)
                if family is None:
                    # A family may not reuse a sample name an earlier family owns (a gauge ``h_count``
                    # beside a histogram ``h``): parsers reject it, and Prometheus keeps one value.
                    names = _reserved_names(key, kind, openmetrics)
                    if not reserved.isdisjoint(names):
                        _logger.warning(
                            "Dropping metric %r: family %r (%s) reuses a sample name of an earlier family",
                            metric.name,
                            key,
                            kind,
                        )
                        continue
                    reserved.update(names)
                    family = families[key] = Family(kind, "", unit_word, [])
                elif family.kind != kind:
                    _logger.warning(
                        "Dropping metric %r: Prometheus family %r already has type %s, not %s",
                        metric.name,
                        key,
                        family.kind,
                        kind,
                    )
                    continue
                if not family.help and metric.description:
                    family.help = escape_help(metric.description)
                if not family.unit:
                    family.unit = unit_word
                labels = _Labels(
                    scope_labels, all_scope_labels, kind == HISTOGRAM, label_cache, escape_cache, agent
                )
                if isinstance(metric_data, Histogram):
                    _append_histograms(
                        family.lines, name, metric_data.data_points, labels, openmetrics, created
                    )
                elif openmetrics and kind == COUNTER:
                    dropped = _append_openmetrics_counters(
                        family.lines, name, key + "_created", metric_data.data_points, labels, created
                    )
                    if dropped:
                        _logger.warning(
                            "Dropped %d point(s) of counter %r: OpenMetrics totals are never negative or NaN",
                            dropped,
                            metric.name,
                        )
                else:
                    _append_numbers(family.lines, name, metric_data.data_points, labels)
    return families


class _Escapes(dict[object, str]):
    """Escaped label text by attribute value, filled on first use; only strings are kept.

    A non-string value is converted each time and never stored: ``True``, ``1`` and ``1.0`` are
    equal dictionary keys but different label texts.
    """

    __slots__ = ()

    def __missing__(self, value: object) -> str:
        if type(value) is str:
            escaped = self[value] = _escape_label_value(value)
            return escaped
        return _escape_label_value(_label_value(value))


# Writes the sample line of one point from its attributes and its formatted value: the labels of
# one attribute key set, spelled out once (see ``_writer``).
_Writer = Callable[[Any, str], str]


class _Labels:
    """Renders the labels (without braces) of the data points of one metric: attributes, then scope.

    With an ``agent`` every point also gets the ``agent`` attribute the way ``label_agent`` adds it.
    Points of one metric usually share their attribute keys: for up to three keys that each make
    one label, the labels are spelled out once per key set (a writer; the agent's label is part of
    its fixed text) and a point only fills in its escaped values.
    """

    __slots__ = (
        "_agent",
        "_escape_cache",
        "_histogram",
        "_label_cache",
        "_last",
        "_last_size",
        "_plans",
        "_renderers",
        "_scope",
        "_scope_only",
    )

    def __init__(
        self,
        scope_labels: _ScopeLabels,
        all_scope_labels: str,
        histogram: bool,
        label_cache: dict[str, str],
        escape_cache: _Escapes,
        agent: str | None = None,
    ) -> None:
        self._scope = scope_labels
        self._scope_only = all_scope_labels
        self._histogram = histogram
        self._label_cache = label_cache
        self._escape_cache = escape_cache
        self._agent = agent
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._renderers: dict[tuple[str, ...], tuple[int, _Renderer] | None] = {}
        self._last_size, self._last = -1, _no_renderer

    def render(self, attributes: Attributes) -> str:
        attributes = attributes or _NO_ATTRIBUTES
        # The renderer of the previous point is right when the point has as many keys and every
        # one it reads (then the key sets are equal).
        if len(attributes) == self._last_size:
            try:
                return self._last(attributes)
            except (KeyError, TypeError):  # other keys, or an unhashable value
                pass
        keys = tuple(attributes)
        found = self._renderers.get(keys, _UNSEEN)
        if found is _UNSEEN:
            layout = self._layout(keys)
            found = self._renderers[keys] = (
                None if layout is None else (len(keys), _renderer(*layout, self._escape_cache))
            )
        if found is not None:
            self._last_size, self._last = found
            try:
                return self._last(attributes)
            except TypeError:  # an unhashable attribute value
                pass
        return self._render_general(attributes)

    def _render_general(self, attributes: Attributes) -> str:
        agent = self._agent
        if agent is None:
            if not attributes:
                return self._scope_only
            keys = tuple(attributes)
            values = tuple(attributes.values())
        elif attributes and AGENT_LABEL in attributes:  # the point's own agent: as label_agent does
            labelled = agent_attributes(attributes, agent)
            keys = tuple(labelled)
            values = tuple(labelled.values())
        elif attributes:
            keys = (*attributes, AGENT_LABEL)
            values = (*attributes.values(), agent)
        else:
            keys, values = _AGENT_KEYS, (agent,)
        return _render_labels(self._plan(keys), values, self._escape_cache)

    def _plan(self, keys: tuple[str, ...]) -> _Plan:
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = _make_plan(keys, self._scope, self._histogram, self._label_cache)
        return plan

    def _layout(self, keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """The labels of attributes with exactly ``keys`` (any order) as the keys whose values they
        read, in label order, and the texts around those values (one more than the keys).

        None when the general path is needed: more than three attributes, not one label per
        attribute (colliding labels, a key that makes no label), or an own ``agent`` attribute.
        """
        agent = self._agent
        if agent is not None and AGENT_LABEL in keys:
            return None
        planned = keys if agent is None else (*keys, AGENT_LABEL)
        entries, scope_suffix = self._plan(planned)
        if len(entries) != len(planned) or len(keys) > 3 or any(len(indices) != 1 for _, indices in entries):
            return None
        if not entries:
            return (), (scope_suffix[1:],)
        # A label plan depends on the set of keys, not their order, so the layout fits any point
        # whose attributes have these keys and no other.
        ordered: list[str] = []
        texts: list[str] = []
        text = ""
        for position, (prefix, (index,)) in enumerate(entries):
            text += f",{prefix}" if position else prefix
            if index < len(keys):
                ordered.append(keys[index])
                texts.append(text)
                text = '"'
            else:  # the agent's label, whole
                text += f'{self._escape_cache[agent]}"'
        texts.append(text + scope_suffix)
        return tuple(ordered), tuple(texts)

    def writer(self, keys: tuple[str, ...], name: str) -> tuple[int, _Writer] | None:
        """How to write a sample line of ``name`` for attributes with exactly ``keys`` (any order);
        None when the general path is needed (see ``_layout``)."""
        layout = self._layout(keys)
        if layout is None:
            return None
        ordered, texts = layout
        if len(texts) == 1:
            head = f"{name}{{{texts[0]}}} " if texts[0] else f"{name} "
            return len(keys), _writer((), (head,), self._escape_cache)
        framed = (f"{name}{{{texts[0]}", *texts[1:-1], f"{texts[-1]}}} ")
        return len(keys), _writer(ordered, framed, self._escape_cache)


# Renders the labels of one point of a known key set (see ``_Labels``).
_Renderer = Callable[[Any], str]


def _no_renderer(attributes: Any) -> str:
    raise KeyError("no renderer yet")


def _renderer(keys: tuple[str, ...], texts: tuple[str, ...], escaped: Mapping[object, str]) -> _Renderer:
    """The labels of a point whose attributes have exactly ``keys``: ``texts`` around their values."""
    if len(keys) == 3:
        k0, k1, k2 = keys
        t0, t1, t2, end = texts
        return lambda a: f"{t0}{escaped[a[k0]]}{t1}{escaped[a[k1]]}{t2}{escaped[a[k2]]}{end}"
    if len(keys) == 2:
        k0, k1 = keys
        t0, t1, end = texts
        return lambda a: f"{t0}{escaped[a[k0]]}{t1}{escaped[a[k1]]}{end}"
    if len(keys) == 1:
        (k0,) = keys
        t0, end = texts
        return lambda a: f"{t0}{escaped[a[k0]]}{end}"
    (only,) = texts
    return lambda a: only


def _writer(keys: tuple[str, ...], texts: tuple[str, ...], escaped: Mapping[object, str]) -> _Writer:
    """A sample line writer for up to three labels: one f-string, values escaped through the cache."""
    if len(keys) == 3:
        k0, k1, k2 = keys
        t0, t1, t2, end = texts

        def write3(attributes: Any, value: str) -> str:
            v0, v1, v2 = escaped[attributes[k0]], escaped[attributes[k1]], escaped[attributes[k2]]
            return f"{t0}{v0}{t1}{v1}{t2}{v2}{end}{value}\n"

        return write3
    if len(keys) == 2:
        k0, k1 = keys
        t0, t1, end = texts

        def write2(attributes: Any, value: str) -> str:
            return f"{t0}{escaped[attributes[k0]]}{t1}{escaped[attributes[k1]]}{end}{value}\n"

        return write2
    if len(keys) == 1:
        (k0,) = keys
        t0, end = texts

        def write1(attributes: Any, value: str) -> str:
            return f"{t0}{escaped[attributes[k0]]}{end}{value}\n"

        return write1
    (head,) = texts

    def write0(attributes: Any, value: str) -> str:
        return f"{head}{value}\n"

    return write0


def _append_numbers(lines: list[str], name: str, points: Sequence[NumberDataPoint], labels: _Labels) -> None:
    # The hot loop of a scrape. Points of one metric usually share their attribute keys: the writer
    # of the previous point is tried first (right when the point has as many keys and every one the
    # writer reads), otherwise the writer of the point's keys is made or found. Colliding labels and
    # unhashable values take the general path.
    append = lines.append
    writers: dict[tuple[str, ...], tuple[int, _Writer] | None] = {}
    size, write = -1, _no_writer
    for point in points:
        value = point.value
        kind = type(value)
        # A finite float or an int in the float range is its repr; the rest as _format_number says.
        if (kind is float and value - value == 0) or (
            kind is int and -_MAX_FLOAT_INT <= value <= _MAX_FLOAT_INT
        ):
            text = repr(value)
        else:
            text = _format_number(value)
        attributes = point.attributes or _NO_ATTRIBUTES
        if len(attributes) == size:
            try:
                append(write(attributes, text))
                continue
            except (KeyError, TypeError):  # other keys, or an unhashable value
                pass
        keys = tuple(attributes)
        found = writers.get(keys, _UNSEEN)
        if found is _UNSEEN:
            found = writers[keys] = labels.writer(keys, name)
        if found is not None:
            size, write = found
            try:
                append(write(attributes, text))
                continue
            except TypeError:  # an unhashable attribute value
                pass
        rendered = labels.render(attributes)
        append(f"{name}{{{rendered}}} {text}\n" if rendered else f"{name} {text}\n")


def _no_writer(attributes: Any, value: str) -> str:
    raise KeyError("no writer yet")


_NO_ATTRIBUTES: Final[Mapping[str, Any]] = {}
_AGENT_KEYS: Final = (AGENT_LABEL,)
#: Marks an attribute key tuple not yet seen by ``_append_numbers``.
_UNSEEN: Final[Any] = object()


def _append_openmetrics_counters(
    lines: list[str],
    name: str,
    created_name: str,
    points: Sequence[NumberDataPoint],
    labels: _Labels,
    created: dict[int, str],
) -> int:
    """Append ``_total`` and ``_created`` samples; return how many points were dropped as invalid."""
    render = labels.render
    append = lines.append
    dropped = 0
    for point in points:
        value = point.value
        if value < 0 or value != value:  # an OpenMetrics Total is never negative or NaN
            dropped += 1
            continue
        rendered = render(point.attributes)
        tail = f"{{{rendered}}} " if rendered else " "
        # A finite float or an int in the float range is its repr; the rest as _format_number says.
        kind = type(value)
        if (kind is float and value - value == 0) or (kind is int and value <= _MAX_FLOAT_INT):
            text = repr(value)
        else:
            text = _format_number(value)
        if point.exemplars:
            text += _exemplar_text(max(point.exemplars, key=_exemplar_time))
        start = point.start_time_unix_nano
        if start > 0:  # one string per point: the total and its _created sample
            since = created.get(start) or _created(start, created)
            append(f"{name}{tail}{text}\n{created_name}{tail}{since}\n")
        else:
            append(f"{name}{tail}{text}\n")
    return dropped


def _append_histograms(
    lines: list[str],
    name: str,
    points: Sequence[HistogramDataPoint],
    labels: _Labels,
    openmetrics: bool,
    created: dict[int, str],
) -> None:
    render = labels.render
    bounds: Sequence[float] | None = None
    le_suffixes: tuple[str, ...] = ()
    negative_bound = False
    for point in points:
        if point.explicit_bounds is not bounds:
            bounds = point.explicit_bounds
            le_suffixes = _le_suffixes(tuple(bounds))
            negative_bound = any(bound < 0 for bound in bounds)
        if openmetrics:
            marks = _bucket_exemplars(point, bounds or ()) if point.exemplars else None
            _append_openmetrics_histogram(
                lines, name, render(point.attributes), le_suffixes, point, negative_bound, created, marks
            )
        else:
            _append_histogram(lines, name, render(point.attributes), le_suffixes, point)


def _append_histogram(
    lines: list[str], name: str, labels: str, le_suffixes: tuple[str, ...], point: HistogramDataPoint
) -> None:
    bucket_prefix = f'{name}_bucket{{{labels},le="' if labels else f'{name}_bucket{{le="'
    # One string per point (fewer objects held until the body is joined): buckets, sum, count.
    suffix = f"{{{labels}}} " if labels else " "
    lines.append(
        _bucket_lines(bucket_prefix, le_suffixes, point.bucket_counts)
        + f"{name}_sum{suffix}{_format_number(point.sum)}\n{name}_count{suffix}{point.count}\n"
    )


def _bucket_lines(bucket_prefix: str, le_suffixes: tuple[str, ...], counts: Sequence[int]) -> str:
    """The bucket lines of one point: ``<bucket_prefix><le suffix><cumulative count>`` each."""
    if len(counts) == len(le_suffixes):
        # The common case in C: the counts formatted into the bounds' template, then the prefix
        # put in each line's place (``replace`` does not rescan what it inserts).
        return (_bucket_template(le_suffixes) % tuple(accumulate(counts))).replace("\0", bucket_prefix)
    buckets = zip(le_suffixes, accumulate(counts), strict=False)  # counts and bounds disagree
    return "".join([f"{bucket_prefix}{le_suffix}{cumulative}\n" for le_suffix, cumulative in buckets])


@lru_cache(maxsize=256)
def _bucket_template(le_suffixes: tuple[str, ...]) -> str:
    r"""``\0<le suffix>%s\n`` per bucket: a point's bucket lines are ``template % counts`` with
    ``\0`` replaced by the point's prefix (no bound's text holds ``\0``; ``%`` is escaped)."""
    return "".join(f"\0{le_suffix.replace('%', '%%')}%s\n" for le_suffix in le_suffixes)


def _append_openmetrics_histogram(
    lines: list[str],
    name: str,
    labels: str,
    le_suffixes: tuple[str, ...],
    point: HistogramDataPoint,
    negative_bound: bool,
    created: dict[int, str],
    exemplars: dict[int, str] | None = None,
) -> None:
    """Buckets (with ``exemplars``, bucket index -> exemplar text), then ``_sum`` and ``_count``
    unless the sum is not a counter, then ``_created``.

    OpenMetrics (and the OTel specification) allow ``_sum`` only when it is monotonic: no negative
    bucket bound, never negative or NaN. ``_count`` goes with it (present if and only if ``_sum`` is);
    the count stays readable as the ``+Inf`` bucket.
    """
    bucket_prefix = f'{name}_bucket{{{labels},le="' if labels else f'{name}_bucket{{le="'
    cumulative = 0
    if exemplars:
        for index, (le_suffix, count) in enumerate(zip(le_suffixes, point.bucket_counts, strict=False)):
            cumulative += count
            lines.append(f"{bucket_prefix}{le_suffix}{cumulative}{exemplars.get(index, '')}\n")
    else:
        lines.append(_bucket_lines(bucket_prefix, le_suffixes, point.bucket_counts))
    suffix = f"{{{labels}}} " if labels else " "
    total = point.sum
    if not negative_bound and total >= 0:  # False for NaN too
        lines.append(f"{name}_sum{suffix}{_format_number(total)}\n")
        lines.append(f"{name}_count{suffix}{point.count}\n")
    start = point.start_time_unix_nano
    if start > 0:
        lines.append(f"{name}_created{suffix}{_created(start, created)}\n")


def _bucket_exemplars(point: HistogramDataPoint, bounds: Sequence[float]) -> dict[int, str]:
    """Bucket index -> the exemplar text of the latest exemplar whose value falls in that bucket."""
    latest: dict[int, Exemplar] = {}
    for exemplar in point.exemplars:
        value = float(exemplar.value)
        if value != value:  # NaN belongs to no bucket
            continue
        index = bisect_left(bounds, value)  # buckets are upper-inclusive: the first bound >= value
        known = latest.get(index)
        if known is None or exemplar.time_unix_nano >= known.time_unix_nano:
            latest[index] = exemplar
    return {index: _exemplar_text(exemplar) for index, exemplar in latest.items()}


def _exemplar_text(exemplar: Exemplar) -> str:
    """`` # {trace_id="..",span_id=".."} value timestamp``: an OpenMetrics exemplar (ids when known)."""
    labels = ""
    if exemplar.trace_id is not None and exemplar.span_id is not None:
        labels = f'trace_id="{exemplar.trace_id:032x}",span_id="{exemplar.span_id:016x}"'
    seconds, nanos = divmod(int(exemplar.time_unix_nano), _NANOS)
    timestamp = f"{seconds}.{nanos:09d}".rstrip("0").rstrip(".")
    return f" # {{{labels}}} {_format_number(exemplar.value)} {timestamp}"


def _exemplar_time(exemplar: Exemplar) -> int:
    return exemplar.time_unix_nano


def _created(start_time_unix_nano: int, cache: dict[int, str]) -> str:
    """A start time as exact decimal seconds since the epoch (``1712345678.5``), cached per call."""
    text = cache.get(start_time_unix_nano)
    if text is None:
        digits = str(int(start_time_unix_nano))
        if len(digits) > 9:  # the seconds, then nine digits of nanoseconds: split the text
            nanos = digits[-9:].rstrip("0")
            text = f"{digits[:-9]}.{nanos or '0'}"
        else:
            seconds, remainder = divmod(int(start_time_unix_nano), _NANOS)
            text = f"{seconds}.{remainder:09d}".rstrip("0") if remainder else f"{seconds}.0"
        cache[start_time_unix_nano] = text
    return text


@lru_cache(maxsize=256)
def _le_suffixes(bounds: tuple[float, ...]) -> tuple[str, ...]:
    """The ``<le>"} `` tails of the bucket lines for ``bounds``, ending with ``+Inf``."""
    return (*(f'{_format_le(bound)}"}} ' for bound in bounds), '+Inf"} ')


def _format_le(bound: float) -> str:
    """Format a bucket bound like ``prometheus_client.utils.floatToGoString`` (``0.005``, ``1.0``)."""
    value = float(bound)
    if value == _INF:
        return "+Inf"
    if value == _NINF:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    text = repr(value)
    dot = text.find(".")
    if value > 0 and dot > 6:  # Go switches to exponent notation sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def _format_number(value: float) -> str:
    """Format a sample value: ints as ints, floats in shortest repr, ``NaN``, ``+Inf``, ``-Inf``.

    An int beyond the float range (only a ``MetricProducer`` can deliver one) is written as the
    infinity of its sign: Prometheus parses sample values as floats, and one unparsable value would
    fail the whole scrape.
    """
    kind = type(value)
    if kind is int:
        if -_MAX_FLOAT_INT <= value <= _MAX_FLOAT_INT:
            return repr(value)
        return "+Inf" if value > 0 else "-Inf"
    if kind is float:
        if value != value:
            return "NaN"
        if value == _INF:
            return "+Inf"
        if value == _NINF:
            return "-Inf"
        return repr(value)
    if isinstance(value, int):  # bool and other int subclasses
        return repr(int(value))
    return _format_number(float(value))


def _escape_help(text: str) -> str:
    """Escape a HELP text for text format 0.0.4 (which leaves ``"`` as is)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label_value(text: str) -> str:
    """Escape a label value (both formats) or an OpenMetrics HELP text."""
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_value(value: object) -> str:
    """The string form of an attribute value: strings as is, everything else as JSON."""
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        value = list(value)
    return json.dumps(value, default=str)


def _render_labels(plan: _Plan, values: tuple[object, ...], escape_cache: dict[object, str]) -> str:
    entries, scope_suffix = plan
    parts: list[str] = []
    for prefix, indices in entries:
        if len(indices) == 1:
            raw = values[indices[0]]
            text = raw if type(raw) is str else _label_value(raw)
        else:
            text = ";".join([_label_value(values[index]) for index in indices])
        escaped = escape_cache.get(text)
        if escaped is None:
            escaped = escape_cache[text] = _escape_label_value(text)
        parts.append(f'{prefix}{escaped}"')
    if not parts:
        return scope_suffix[1:]
    return ",".join(parts) + scope_suffix


def _make_plan(
    keys: tuple[str, ...], scope_labels: _ScopeLabels, is_histogram: bool, label_cache: dict[str, str]
) -> _Plan:
    """Work out, once per attribute key tuple, which label each attribute value goes to."""
    groups: dict[str, list[int]] = {}
    for index, key in enumerate(keys):
        label = label_cache.get(key)
        if label is None:
            label = label_cache[key] = _label_name(key)
        if not label or (is_histogram and label == "le"):
            continue
        groups.setdefault(label, []).append(index)
    entries = tuple(
        (f'{label}="', tuple(sorted(indices, key=keys.__getitem__)))
        for label, indices in sorted(groups.items())
    )
    scope_suffix = "".join("," + rendered for label, rendered in scope_labels if label not in groups)
    return entries, scope_suffix


def _scope_labels(scope: InstrumentationScope) -> _ScopeLabels:
    """The non-empty ``otel_scope_*`` labels of ``scope`` as (label name, rendered label) pairs."""
    pairs: dict[str, str] = {}
    if scope.attributes:
        for key in sorted(scope.attributes):
            label = _label_name("otel_scope_" + key)
            text = _label_value(scope.attributes[key])
            if text:
                pairs[label] = f"{pairs[label]};{text}" if label in pairs else text
    for label, optional_text in (
        ("otel_scope_name", scope.name),
        ("otel_scope_version", scope.version),
        ("otel_scope_schema_url", scope.schema_url),
    ):
        if optional_text:
            pairs[label] = optional_text
    return tuple((label, f'{label}="{_escape_label_value(text)}"') for label, text in sorted(pairs.items()))


@lru_cache(maxsize=4096)
def _label_name(key: str) -> str:
    """Sanitise an attribute key into a Prometheus label name ("" when there is none)."""
    if not key:
        return ""
    label = _INVALID_LABEL_RUN.sub("_", key)
    if _RESERVED_LABEL_PREFIX.match(key):
        return "key" + label  # label starts with "_" here
    if label[0].isdigit():
        return "key_" + label
    return label


@lru_cache(maxsize=4096)
def _family_name(name: str, unit: str, kind: str, gauge_ratio: bool) -> str:
    """The text format 0.0.4 family name (as in ``# TYPE``) for an OTel metric name, unit and type."""
    base = _INVALID_NAME_RUN.sub("_", name)
    if base[:1].isdigit():
        base = "_" + base
    if kind == COUNTER and base.endswith("_total"):
        base = base[:-6]
    suffix = _unit_suffix(unit, gauge_ratio)
    if suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if kind == COUNTER:
        base += "_total"
    return _INVALID_NAME_RUN.sub("_", base)  # collapses "__" left by a name ending in "_"


@lru_cache(maxsize=4096)
def _openmetrics_family(name: str, unit: str, kind: str, gauge_ratio: bool) -> tuple[str, str]:
    """The OpenMetrics family name and ``# UNIT`` ("" for none) for a text format family ``name``.

    A counter family is named without ``_total`` (only its samples carry it). The unit is the
    Prometheus unit word, given only when the family name ends with it, as OpenMetrics requires.
    """
    family = name[:-6] if kind == COUNTER and name.endswith("_total") else name
    word = _unit_suffix(unit, gauge_ratio)
    return family, word if word and family.endswith("_" + word) else ""


def _reserved_names(family: str, kind: str, openmetrics: bool) -> tuple[str, ...]:
    suffixes = _RESERVED_SUFFIXES if openmetrics else _TEXT_RESERVED_SUFFIXES
    return tuple(family + suffix for suffix in suffixes[kind])


@lru_cache(maxsize=1024)
def _unit_suffix(unit: str, gauge_ratio: bool) -> str:
    """Map a UCUM unit to its Prometheus name suffix ("" for none)."""
    unit = _UNIT_ANNOTATION.sub("", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if gauge_ratio else ""
    word = _UNIT_WORDS.get(unit)
    if word is not None:
        return word
    top, slash, bottom = unit.partition("/")
    if slash:
        per = _PER_UNIT_WORDS.get(bottom) or _sanitize_unit(bottom)
        if not per:
            return _unit_suffix(top, gauge_ratio)
        top_word = _UNIT_WORDS.get(top)
        numerator = top_word if top_word is not None else _sanitize_unit(top)
        return f"{numerator}_per_{per}" if numerator else f"per_{per}"
    return _sanitize_unit(unit)


def _sanitize_unit(unit: str) -> str:
    return _INVALID_NAME_RUN.sub("_", unit).strip("_")


# -- names for PromQL (rule files, dashboards): the same mapping the encoders apply ---------------------

#: OTel instrument kind -> (encoder family kind, whether unit ``1`` means ``_ratio``), as ``build_families``
#: maps the SDK's point types (a monotonic Sum is a counter, a non-monotonic one a gauge without ``_ratio``).
_INSTRUMENT_FAMILIES: Final[Mapping[str, tuple[str, bool]]] = {
    "counter": (COUNTER, False),
    "updowncounter": (GAUGE, False),
    "gauge": (GAUGE, True),
    "histogram": (HISTOGRAM, False),
}


def prometheus_metric_name(name: str, unit: str, instrument: str) -> str:
    """The Prometheus text name an OTel metric is exposed under (a histogram's family name, to which
    PromQL appends ``_bucket``, ``_sum`` and ``_count``); ``instrument`` is a Weaver instrument kind."""
    try:
        kind, ratio = _INSTRUMENT_FAMILIES[instrument]
    except KeyError:
        allowed = ", ".join(_INSTRUMENT_FAMILIES)
        raise ValueError(f"unknown instrument {instrument!r}; allowed: {allowed}") from None
    return _family_name(name, unit, kind, ratio)


def prometheus_label_name(key: str) -> str:
    """The Prometheus label name an attribute key is exposed under."""
    return _label_name(key)


def prometheus_bucket_bound(bound: float) -> str:
    """The ``le`` label value of a histogram bucket bound, exactly as the encoders write it."""
    return _format_le(bound)
