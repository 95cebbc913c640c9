"""What the Graphite and InfluxDB encoders share: which metrics they take, attribute text, bucket
bounds, resource tags and tag plans.

The Prometheus core (``_prometheus_core.py``) has rules of its own where the exposition formats
differ: label values are JSON (an infinite float is ``Infinity``, not ``inf``), bucket bounds follow
Go's float formatting, and non-finite sample values are written (``NaN``, ``+Inf``) where Graphite
and InfluxDB drop them. Those differences are each format's, proven by its parser and server tests.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Final

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    Metric,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

__all__ = [
    "LOGGER",
    "RESOURCE_TAG_PREFIX",
    "Entry",
    "attribute_text",
    "format_bound",
    "plan_tags",
    "render_tags",
    "resource_tag_texts",
    "supported_metrics",
]

LOGGER: Final = logging.getLogger("telemetry_otel.formats")

RESOURCE_TAG_PREFIX: Final = "resource."

_CUMULATIVE: Final = AggregationTemporality.CUMULATIVE
_INF: Final = math.inf
_NINF: Final = -math.inf

# One tag of a tag plan, in output order: (sort key, index of the attribute value or -1 for a fixed
# tag, rendered text before the value (for a fixed tag: the whole rendered tag), original key).
Entry = tuple[str, int, str, str]


def supported_metrics(
    data: MetricsData,
) -> Iterator[tuple[Resource, InstrumentationScope, Metric, Sum | Gauge | Histogram]]:
    """Yield cumulative Sums, Gauges and cumulative explicit-bucket Histograms with data points.

    Delta temporality (re-aggregating needs state) and exponential histograms (no bucket layout in
    these formats) are skipped with a debug log, as the Prometheus encoder skips them.
    """
    for resource_metrics in data.resource_metrics:
        resource = resource_metrics.resource
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            for metric in scope_metrics.metrics:
                metric_data = metric.data
                if isinstance(metric_data, Sum | Histogram):
                    if metric_data.aggregation_temporality != _CUMULATIVE:
                        LOGGER.debug("Skipping metric %r: delta temporality", metric.name)
                        continue
                elif not isinstance(metric_data, Gauge):
                    LOGGER.debug("Skipping metric %r: %s", metric.name, type(metric_data).__name__)
                    continue
                if metric_data.data_points:
                    yield resource, scope, metric, metric_data


def attribute_text(value: object) -> str:
    """The string form of an attribute value: strings as is, bools lower case, sequences as JSON."""
    if isinstance(value, str):
        return value
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return repr(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes | bytearray):
        value = list(value)
    return json.dumps(value, default=str)


def format_bound(bound: float) -> str:
    """A bucket bound as the shortest ``repr`` of the float (``0.005``, ``1.0``, ``1e+20``) or ``+Inf``."""
    value = float(bound)
    if value == _INF:
        return "+Inf"
    if value == _NINF:
        return "-Inf"
    return repr(value)


def resource_tag_texts(resource: Resource, keys: Sequence[str]) -> dict[str, str]:
    """``resource.<key>`` -> attribute text for the chosen resource attributes the resource has."""
    attributes = resource.attributes
    return {RESOURCE_TAG_PREFIX + key: attribute_text(attributes[key]) for key in keys if key in attributes}


def plan_tags(
    keys: tuple[str, ...],
    sanitise_key: Callable[[str], str],
    fixed: Mapping[str, str],
    excluded: frozenset[str],
    render_key: Callable[[str], str],
    metric_name: str,
) -> tuple[Entry, ...]:
    """Work out, once per attribute key tuple, which tag each attribute value becomes, in output order.

    ``sanitise_key`` maps an attribute key to its tag key (``""``: no valid key, dropped). Keys that
    collide after sanitising keep the attribute whose original key sorts first. Tag keys in
    ``excluded`` are dropped. ``fixed`` maps further tag keys to their whole rendered tag; an attribute
    with the same tag key replaces it. ``render_key`` renders the text that precedes a value.
    """
    chosen: dict[str, int] = {}
    for index in sorted(range(len(keys)), key=keys.__getitem__):
        key = keys[index]
        tag_key = sanitise_key(key)
        if not tag_key:
            LOGGER.debug("Dropping attribute %r of metric %r: no valid tag key", key, metric_name)
        elif tag_key in excluded:
            LOGGER.debug("Dropping attribute %r of metric %r: reserved tag key %r", key, metric_name, tag_key)
        elif tag_key in chosen:
            LOGGER.debug(
                "Dropping attribute %r of metric %r: tag key %r already taken by %r",
                key,
                metric_name,
                tag_key,
                keys[chosen[tag_key]],
            )
        else:
            chosen[tag_key] = index
    entries = [(tag_key, index, render_key(tag_key), keys[index]) for tag_key, index in chosen.items()]
    entries.extend(
        (tag_key, -1, rendered, tag_key) for tag_key, rendered in fixed.items() if tag_key not in chosen
    )
    entries.sort()
    return tuple(entries)


def render_tags(
    plan: tuple[Entry, ...],
    values: tuple[AttributeValue, ...],
    render_value: Callable[[str], str],
    cache: dict[str, str],
    metric_name: str,
) -> str:
    """Render the tags of one data point; a value that renders to ``""`` (empty) drops its tag."""
    parts: list[str] = []
    for _, index, prefix, key in plan:
        if index < 0:
            parts.append(prefix)
            continue
        raw = values[index]
        text = raw if type(raw) is str else attribute_text(raw)
        rendered = cache.get(text)
        if rendered is None:
            rendered = cache[text] = render_value(text)
        if rendered:
            parts.append(prefix + rendered)
        else:
            LOGGER.debug("Dropping attribute %r of metric %r: empty value", key, metric_name)
    return "".join(parts)
