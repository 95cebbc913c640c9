"""Snapshot-backed observable instruments: a service's own numbers, read at collection time.

A service declares the metrics its snapshot function returns; each distinct metric name becomes
one SDK observable instrument whose callback reads the latest snapshot of every component that
declared it. Nothing runs on the service's hot path.

Limits, so a snapshot that returns too much cannot make the telemetry grow without bound:

* **Cardinality.** Each metric (across every component that declares it) publishes at most
  ``cardinality_limit`` distinct attribute sets (``TelemetryConfig.cardinality_limit``, 2000 by
  default). Attribute sets are admitted first come, first served, and stay admitted, exactly like
  the SDK's own storage; the series of any further attribute set fold into one series whose only
  attribute is ``otel.metric.overflow=true``: summed for counters and up-down counters (so the
  total over all series stays exact), the last folded value for gauges.
* **Attribute values.** A string attribute value of a series is cut to its first
  ``attribute_value_length_limit`` characters (``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``, 256 by default
  here), the rule the OpenTelemetry SDK applies to span attributes; strings inside a sequence value
  are cut the same way. An attribute whose key is not a non-empty string, or whose value is not a
  string, bool, int, float or a sequence of those, is dropped (never turned into text).

A counter value below zero is not published (it is unknown, never 0): the collection drops it
first and reports it as a problem of the snapshot, like a name the service did not declare (see
``instrument_service``). A counter that goes down but stays at or above zero is published as it
is, and read as a reset (a restart), as Prometheus' ``rate()`` and the views' rates do.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.util.types import AttributeValue

from telemetry_otel import Component, TelemetryConfig
from telemetry_otel.vocabulary import OVERFLOW

__all__ = [
    "OVERFLOW_ATTRIBUTES",
    "MetricKind",
    "SnapshotMetric",
    "SnapshotMetrics",
    "clean_attributes",
    "counter",
    "gauge",
    "truncate",
    "updown_counter",
]

#: The attributes of the one series that holds what a metric publishes beyond its cardinality limit.
OVERFLOW_ATTRIBUTES: Mapping[str, AttributeValue] = {OVERFLOW: True}
_SCALARS = (str, bool, int, float)


def truncate(value: str, limit: int) -> str:
    """``value`` cut to its first ``limit`` characters (unchanged when it is not longer)."""
    return value if len(value) <= limit else value[:limit]


def clean_attributes(attributes: Mapping[Any, object], length_limit: int) -> dict[str, AttributeValue]:
    """Attributes fit for a series: string values cut to ``length_limit``, unusable ones dropped."""
    cleaned: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            continue
        if isinstance(value, str):
            cleaned[key] = truncate(value, length_limit)
        elif isinstance(value, bool | int | float):
            cleaned[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(item, _SCALARS) for item in value):
            items = [truncate(item, length_limit) if isinstance(item, str) else item for item in value]
            cleaned[key] = _sequence(items)
    return cleaned


def _sequence(items: list[str | bool | int | float]) -> AttributeValue:
    """A homogeneous tuple as the OTel API types it, or the items as text when they are mixed."""
    if all(isinstance(item, str) for item in items):
        return tuple(str(item) for item in items)
    if all(isinstance(item, bool) for item in items):
        return tuple(bool(item) for item in items)
    if all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        return tuple(int(item) for item in items)
    if all(isinstance(item, float) for item in items):
        return tuple(float(item) for item in items)
    return tuple(str(item) for item in items)


def _key(attributes: Mapping[str, AttributeValue]) -> Hashable:
    return tuple(sorted(attributes.items()))


MetricKind: TypeAlias = Literal["gauge", "counter", "updowncounter"]
_KINDS: tuple[MetricKind, ...] = ("gauge", "counter", "updowncounter")
_Callback: TypeAlias = Callable[[CallbackOptions], Iterable[Observation]]
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class SnapshotMetric:
    """A metric a snapshot function publishes: dotted OTel name, instrument kind, UCUM unit."""

    name: str
    kind: MetricKind
    unit: str
    description: str

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or len(self.name) > 255:
            raise ValueError(
                f"metric name {self.name!r} is not a dotted OTel name "
                "(lower-case words of [a-z0-9_] separated by dots, at most 255 characters)"
            )
        if self.kind not in _KINDS:
            raise ValueError(f"metric kind {self.kind!r} is not one of {', '.join(_KINDS)}")
        if not self.description.strip():
            raise ValueError(f"metric {self.name!r} needs a description")


def gauge(name: str, unit: str, description: str) -> SnapshotMetric:
    """A value that goes up and down and is read as is (queue depth, CPU use)."""
    return SnapshotMetric(name, "gauge", unit, description)


def counter(name: str, unit: str, description: str) -> SnapshotMetric:
    """A cumulative, monotonic total kept by the service (tokens used, cache hits)."""
    return SnapshotMetric(name, "counter", unit, description)


def updown_counter(name: str, unit: str, description: str) -> SnapshotMetric:
    """A cumulative total that may go down (items held, open connections)."""
    return SnapshotMetric(name, "updowncounter", unit, description)


class SnapshotMetrics:
    """One observable instrument per declared metric name, fed by the components that declared it.

    ``cardinality_limit`` and ``attribute_value_length_limit`` bound what each metric publishes
    (see the module documentation).
    """

    def __init__(
        self,
        meter: Meter,
        *,
        cardinality_limit: int = TelemetryConfig.cardinality_limit,
        attribute_value_length_limit: int = TelemetryConfig.attribute_value_length_limit,
    ) -> None:
        if cardinality_limit < 1 or attribute_value_length_limit < 1:
            raise ValueError("cardinality_limit and attribute_value_length_limit must be positive")
        self._meter = meter
        self.cardinality_limit = cardinality_limit
        self.attribute_value_length_limit = attribute_value_length_limit
        self._lock = threading.Lock()
        self._declared: dict[str, SnapshotMetric] = {}
        self._sources: dict[str, list[Component]] = {}
        #: Per metric, the attribute sets admitted so far (at most ``cardinality_limit``), in order.
        self._admitted: dict[str, dict[Hashable, None]] = {}

    def declare(self, component: Component, metrics: Iterable[SnapshotMetric]) -> None:
        """Publish ``metrics`` from ``component``'s snapshot; a conflicting redeclaration is an error."""
        metrics = list(metrics)
        with self._lock:
            for metric in metrics:
                known = self._declared.get(metric.name)
                if known is not None and (known.kind, known.unit) != (metric.kind, metric.unit):
                    raise ValueError(
                        f"metric {metric.name!r} is already declared as a {known.kind} in "
                        f"{known.unit!r}; {component.name!r} declares a {metric.kind} in {metric.unit!r}"
                    )
            for metric in metrics:
                if metric.name not in self._declared:
                    self._declared[metric.name] = metric
                    self._sources[metric.name] = []
                    self._create(metric)
                self._sources[metric.name].append(component)

    def withdraw(self, component: Component) -> None:
        """Stop publishing anything from ``component``."""
        with self._lock:
            for sources in self._sources.values():
                if component in sources:
                    sources.remove(component)

    def _create(self, metric: SnapshotMetric) -> None:
        callback = self._callback(metric.name)
        if metric.kind == "gauge":
            self._meter.create_observable_gauge(metric.name, [callback], metric.unit, metric.description)
        elif metric.kind == "counter":
            self._meter.create_observable_counter(metric.name, [callback], metric.unit, metric.description)
        else:
            self._meter.create_observable_up_down_counter(
                metric.name, [callback], metric.unit, metric.description
            )

    def _callback(self, name: str) -> _Callback:
        kind = self._declared[name].kind

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                sources = list(self._sources.get(name, ()))
                admitted = self._admitted.setdefault(name, {})
                return self._observe(name, sources, admitted, kind)

        return observe

    def _observe(
        self, name: str, sources: list[Component], admitted: dict[Hashable, None], kind: MetricKind
    ) -> list[Observation]:
        """The observations of ``name``: admitted series as they are, the rest in one overflow series."""
        limit, length = self.cardinality_limit, self.attribute_value_length_limit
        observations: list[Observation] = []
        overflow: list[float | int] = []
        for component in sources:
            snapshot = component.snapshot
            if snapshot is None or name not in snapshot:
                continue
            value = snapshot[name]
            own = dict(component.attributes)
            if isinstance(value, int | float):
                series: Iterable[tuple[Mapping[Any, object], float | int]] = [({}, value)]
            elif value is None:
                continue
            else:
                series = value
            for attributes, number in series:
                if kind == "counter" and number < 0:
                    continue  # a counter is never negative: unknown, not published
                merged = {**clean_attributes(attributes, length), **own} if attributes else own
                key = _key(merged)
                if key in admitted or len(admitted) < limit:
                    admitted[key] = None
                    observations.append(Observation(number, merged))
                else:
                    overflow.append(number)
        if overflow:
            folded = overflow[-1] if kind == "gauge" else sum(overflow)
            observations.append(Observation(folded, dict(OVERFLOW_ATTRIBUTES)))
        return observations
