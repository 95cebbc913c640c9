"""Snapshot-backed observable instruments: a service's own numbers, read at collection time.

A service declares the metrics its snapshot function returns; each distinct metric name becomes
one SDK observable instrument whose callback reads the latest snapshot of every component that
declared it. Nothing runs on the service's hot path.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from telemetry_otel import Component

__all__ = ["MetricKind", "SnapshotMetric", "SnapshotMetrics", "counter", "gauge", "updown_counter"]

MetricKind: TypeAlias = Literal["gauge", "counter", "updown_counter"]
_KINDS: tuple[MetricKind, ...] = ("gauge", "counter", "updown_counter")
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
    return SnapshotMetric(name, "updown_counter", unit, description)


class SnapshotMetrics:
    """One observable instrument per declared metric name, fed by the components that declared it."""

    def __init__(self, meter: Meter) -> None:
        self._meter = meter
        self._lock = threading.Lock()
        self._declared: dict[str, SnapshotMetric] = {}
        self._sources: dict[str, list[Component]] = {}

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
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                sources = list(self._sources.get(name, ()))
            observations: list[Observation] = []
            for component in sources:
                snapshot = component.snapshot
                if snapshot is None or name not in snapshot:
                    continue
                value = snapshot[name]
                if isinstance(value, int | float):
                    observations.append(Observation(value, dict(component.attributes)))
                elif value is not None:
                    for attributes, number in value:
                        observations.append(Observation(number, {**attributes, **component.attributes}))
            return observations

        return observe
