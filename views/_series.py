"""A collection read by owner for the views: each service's and bus's numbers and histograms.

Read from the collection's owner index (built once per collection), never by walking the data again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from opentelemetry.sdk.metrics.export import HistogramDataPoint, NumberDataPoint

from telemetry_otel import Collection, OwnedMetric
from telemetry_otel.views._numbers import add, finite
from telemetry_otel.views._quantiles import Buckets, merge_buckets
from telemetry_otel.vocabulary import (
    BUS_NAME,
    PROCESS_CPU_TIME,
    PROCESS_MEMORY_USAGE,
    SERVICE_CATEGORY,
    SERVICE_NAME,
)

__all__ = [
    "IDENTITY",
    "Series",
    "metric_names",
    "process_cpu_seconds",
    "process_memory_bytes",
    "read_series",
]


IDENTITY = (SERVICE_NAME, SERVICE_CATEGORY)

Attributes: TypeAlias = tuple[tuple[str, Any], ...]


@dataclass
class Series:
    """The points of one owner (service or bus): metric name -> (own attributes, value)."""

    numbers: dict[str, list[tuple[Attributes, float]]] = field(default_factory=dict)
    histograms: dict[str, list[Buckets]] = field(default_factory=dict)

    def total(self, name: str) -> float | None:
        return add(value for _, value in self.numbers.get(name, ()))

    def largest(self, name: str) -> float | None:
        values = [value for _, value in self.numbers.get(name, ())]
        return max(values) if values else None

    def plain(self, name: str) -> float | None:
        """The value of the series without attributes of its own."""
        return add(value for attributes, value in self.numbers.get(name, ()) if not attributes)

    def state(self, name: str, key: str) -> str | None:
        """The ``key`` attribute of the series of state set ``name`` whose value is 1."""
        for attributes, value in self.numbers.get(name, ()):
            if value == 1:
                found = dict(attributes).get(key)
                if isinstance(found, str):
                    return found
        return None

    def latency(self, name: str) -> Buckets | None:
        return merge_buckets(self.histograms.get(name, ()))


def read_series(collection: Collection) -> tuple[dict[str, Series], dict[str, Series]]:
    """The collection's points by owner, from its owner index: services and buses.

    Per-provider bus points (``bus.provider``) are left out: each provider's own series say the same.
    """
    index = collection.index
    services = {name: _series(groups, IDENTITY) for name, groups in index.services.items()}
    buses = {name: _series(groups, (BUS_NAME,)) for name, groups in index.buses.items()}
    return services, buses


def process_cpu_seconds(collection: Collection) -> float | None:
    """CPU seconds the process has used (``process.cpu.time``, every mode), or None without it."""
    return _unowned_total(collection, PROCESS_CPU_TIME)


def process_memory_bytes(collection: Collection) -> float | None:
    """The process's resident memory (``process.memory.usage``), or None without it."""
    return _unowned_total(collection, PROCESS_MEMORY_USAGE)


def _unowned_total(collection: Collection, name: str) -> float | None:
    values = [
        point.value
        for owned in collection.index.unowned
        if owned.name == name
        for point in owned.points
        if isinstance(point, NumberDataPoint)
    ]
    return add(finite(value) for value in values) if values else None


def _series(groups: Iterable[OwnedMetric], owner_keys: tuple[str, ...]) -> Series:
    series = Series()
    for owned in groups:
        name = owned.name
        for point in owned.points:
            attributes = point.attributes or {}
            own = tuple(sorted((k, v) for k, v in attributes.items() if k not in owner_keys))
            if isinstance(point, NumberDataPoint):
                value = finite(point.value)
                if value is not None:
                    series.numbers.setdefault(name, []).append((own, value))
            elif isinstance(point, HistogramDataPoint):
                series.histograms.setdefault(name, []).append(
                    Buckets(tuple(point.explicit_bounds), tuple(point.bucket_counts), point.count, point.sum)
                )
    return series


def metric_names(collection: Collection) -> frozenset[str]:
    """Every metric name in the collection."""
    return collection.index.metric_names
