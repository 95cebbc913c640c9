"""The values the host fold adds: numbers, explicit-bucket and exponential histograms, gauge rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from opentelemetry.sdk.metrics.export import Buckets, ExponentialHistogramDataPoint, HistogramDataPoint

from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID

__all__ = [
    "Exp",
    "Hist",
    "HostGaugeRule",
    "Value",
    "add_value",
    "apply_gauge_rule",
    "copy_value",
    "dense",
    "value_of",
]

HostGaugeRule: TypeAlias = Literal["sum", "min", "max", "mean", "last", "worker"]


@dataclass
class Hist:
    count: int
    sum: float
    buckets: list[int]
    bounds: tuple[float, ...]
    min: float
    max: float

    def add(self, other: Hist) -> None:
        self.count += other.count
        self.sum += other.sum
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)


@dataclass
class Exp:
    count: int
    sum: float
    scale: int
    zero_count: int
    positive: dict[int, int]
    negative: dict[int, int]
    min: float
    max: float

    def add(self, other: Exp) -> None:
        scale = min(self.scale, other.scale)
        self.positive = _downscaled(self.positive, self.scale - scale)
        self.negative = _downscaled(self.negative, self.scale - scale)
        for mine, theirs in (
            (self.positive, _downscaled(other.positive, other.scale - scale)),
            (self.negative, _downscaled(other.negative, other.scale - scale)),
        ):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count
        self.scale = scale
        self.count += other.count
        self.sum += other.sum
        self.zero_count += other.zero_count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)


def _downscaled(buckets: dict[int, int], shift: int) -> dict[int, int]:
    if shift == 0:
        return dict(buckets)
    out: dict[int, int] = {}
    for index, count in buckets.items():
        out[index >> shift] = out.get(index >> shift, 0) + count
    return out


Value: TypeAlias = int | float | Hist | Exp


def value_of(point: Any) -> Value:
    if isinstance(point, HistogramDataPoint):
        return Hist(
            point.count,
            float(point.sum),
            list(point.bucket_counts),
            tuple(point.explicit_bounds),
            float(point.min) if point.count else math.inf,
            float(point.max) if point.count else -math.inf,
        )
    if isinstance(point, ExponentialHistogramDataPoint):
        return Exp(
            point.count,
            float(point.sum),
            point.scale,
            point.zero_count,
            _sparse(point.positive),
            _sparse(point.negative),
            float(point.min) if point.count else math.inf,
            float(point.max) if point.count else -math.inf,
        )
    value: int | float = point.value
    return value


def _sparse(buckets: Buckets) -> dict[int, int]:
    return {buckets.offset + i: c for i, c in enumerate(buckets.bucket_counts) if c}


def dense(buckets: dict[int, int]) -> Buckets:
    if not buckets:
        return Buckets(0, [])
    low, high = min(buckets), max(buckets)
    return Buckets(low, [buckets.get(i, 0) for i in range(low, high + 1)])


def copy_value(value: Value) -> Value:
    if isinstance(value, Hist):
        return Hist(value.count, value.sum, list(value.buckets), value.bounds, value.min, value.max)
    if isinstance(value, Exp):
        return Exp(
            value.count, value.sum, value.scale, value.zero_count, dict(value.positive),
            dict(value.negative), value.min, value.max,
        )  # fmt: skip
    return value


def add_value(total: Value, value: Value) -> Value:
    """``total`` plus ``value`` (histograms are added into ``total`` itself)."""
    if isinstance(total, int | float) and isinstance(value, int | float):
        return total + value
    if isinstance(total, Hist) and isinstance(value, Hist):
        total.add(value)
    if isinstance(total, Exp) and isinstance(value, Exp):
        total.add(value)
    return total


def apply_gauge_rule(
    rule: HostGaugeRule, attributes: dict[str, Any], values: list[tuple[Value, int, str]]
) -> list[tuple[dict[str, Any], int | float]]:
    numbers = [(v, t, i) for v, t, i in values if isinstance(v, int | float)]
    if not numbers:
        return []
    if rule == "worker":
        return [({**attributes, SERVICE_INSTANCE_ID: i}, v) for v, _, i in numbers]
    plain = [v for v, _, _ in numbers]
    if rule == "sum":
        return [(attributes, sum(plain))]
    if rule == "min":
        return [(attributes, min(plain))]
    if rule == "max":
        return [(attributes, max(plain))]
    if rule == "mean":
        return [(attributes, sum(plain) / len(plain))]
    return [(attributes, max(numbers, key=lambda n: n[1])[0])]  # last
