"""Pure pieces of bus aggregation: stream identity, naming and the per-kind merge of values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from opentelemetry.sdk.metrics.export import Gauge, Histogram, HistogramDataPoint, Metric, Sum

from telemetry_otel.vocabulary import (
    SERVICE_CATEGORY,
    SERVICE_ERRORS,
    SERVICE_HEALTH,
    SERVICE_NAME,
    SERVICE_UPTIME,
    InstrumentKind,
)

__all__ = [
    "DEFAULT_GAUGE_RULE",
    "GAUGE_RULES",
    "IDENTITY_KEYS",
    "NOT_AGGREGATED",
    "GaugeRule",
    "HistogramValue",
    "Kind",
    "StreamKey",
    "aggregated_name",
    "apply_gauge_rule",
    "kind_of",
    "per_provider_name",
    "stream_attributes",
]

GaugeRule: TypeAlias = Literal["sum", "min", "max", "mean", "last"]
GAUGE_RULES: tuple[GaugeRule, ...] = ("sum", "min", "max", "mean", "last")
#: How a gauge without a declared rule is aggregated across a bus's providers.
DEFAULT_GAUGE_RULE: GaugeRule = "sum"
#: Attributes that identify the component; a bus replaces them by ``bus.name`` (and ``bus.provider``).
IDENTITY_KEYS = frozenset({SERVICE_NAME, SERVICE_CATEGORY})
#: Provider metrics a bus does not re-aggregate: it reports provider counts by health instead.
NOT_AGGREGATED = frozenset({SERVICE_HEALTH, SERVICE_UPTIME})
_RENAMED = {SERVICE_ERRORS: "failures"}

Kind: TypeAlias = InstrumentKind
StreamKey: TypeAlias = tuple[str, frozenset[tuple[str, object]]]


@dataclass(frozen=True)
class HistogramValue:
    """The additive part of a cumulative explicit-bucket histogram point."""

    count: int
    sum: float
    buckets: tuple[int, ...]
    bounds: tuple[float, ...]
    min: float
    max: float

    @classmethod
    def of(cls, point: HistogramDataPoint) -> HistogramValue:
        """The value of an SDK histogram point."""
        return cls(
            point.count,
            float(point.sum),
            tuple(point.bucket_counts),
            tuple(point.explicit_bounds),
            point.min,
            point.max,
        )

    def minus(self, other: HistogramValue) -> HistogramValue:
        """What was recorded since ``other`` (same bounds); min/max stay the lifetime ones."""
        return HistogramValue(
            self.count - other.count,
            self.sum - other.sum,
            tuple(a - b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.bounds,
            self.min,
            self.max,
        )

    def plus(self, other: HistogramValue) -> HistogramValue:
        """Bucket-by-bucket merge (same bounds)."""
        return HistogramValue(
            self.count + other.count,
            self.sum + other.sum,
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.bounds,
            min(self.min, other.min),
            max(self.max, other.max),
        )

    @classmethod
    def empty(cls, bounds: Sequence[float]) -> HistogramValue:
        """No observation yet."""
        return cls(0, 0.0, (0,) * (len(bounds) + 1), tuple(bounds), float("inf"), float("-inf"))


def kind_of(metric: Metric) -> Kind | None:
    """The instrument kind of a metric as a bus aggregates it; None for kinds it leaves alone."""
    data = metric.data
    if isinstance(data, Sum):
        return "counter" if data.is_monotonic else "updowncounter"
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    return None


def _stem(name: str) -> str:
    if name in _RENAMED:
        return _RENAMED[name]
    return name.removeprefix("service.")


def aggregated_name(name: str) -> str:
    """Name of the bus-wide series of a provider metric (``service.requests`` -> ``bus.requests``)."""
    return f"bus.{_stem(name)}"


def per_provider_name(name: str) -> str:
    """Name of the per-provider series (``service.requests`` -> ``bus.provider.requests``)."""
    return f"bus.provider.{_stem(name)}"


def stream_attributes(attributes: Mapping[str, object] | None) -> frozenset[tuple[str, object]]:
    """The attributes that distinguish streams of one metric once the component identity is dropped."""
    if not attributes:
        return _NO_ATTRIBUTES
    return frozenset([item for item in attributes.items() if item[0] not in IDENTITY_KEYS])


_NO_ATTRIBUTES: frozenset[tuple[str, object]] = frozenset()


def apply_gauge_rule(rule: GaugeRule, values: Sequence[tuple[int, float | int]]) -> float | int:
    """Combine ``(time_unix_nano, value)`` readings of several providers by ``rule``.

    Integers stay integers (a queue depth of 3 and 3 is 6, not 6.0), except for ``mean``.
    """
    numbers = [value for _, value in values]
    if rule == "sum":
        return sum(numbers)
    if rule == "min":
        return min(numbers)
    if rule == "max":
        return max(numbers)
    if rule == "mean":
        return sum(numbers) / len(numbers)
    newest = values[0]
    for item in values[1:]:
        if item[0] >= newest[0]:  # a tie goes to the provider attached last
            newest = item
    return newest[1]
