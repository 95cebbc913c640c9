"""Quantiles estimated from explicit-bucket histograms, the way Prometheus' ``histogram_quantile`` does.

OTel explicit buckets are upper-inclusive, like Prometheus' ``le`` buckets: bucket ``i`` counts the
observations in ``(bounds[i-1], bounds[i]]``, the first bucket starts at 0 and the last one is
``(bounds[-1], +Inf)``. The estimate interpolates linearly inside the bucket that holds the rank
``q * count``. When that is the ``+Inf`` bucket there is no upper bound to interpolate to, and the
largest finite bound is returned (a lower bound on the true quantile). No observation: ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Buckets", "histogram_quantile", "merge_buckets"]


@dataclass(frozen=True)
class Buckets:
    """One explicit-bucket histogram: upper bounds, per-bucket counts (one more than bounds), total, sum."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    sum: float

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds) + 1:
            raise ValueError(f"{len(self.bounds)} bounds need {len(self.bounds) + 1} bucket counts")

    def quantile(self, q: float) -> float | None:
        """The ``q``-quantile of this histogram (see :func:`histogram_quantile`)."""
        return histogram_quantile(q, self.bounds, self.counts)

    @property
    def mean(self) -> float | None:
        """``sum / count``, or None without observations."""
        if self.count <= 0 or not math.isfinite(self.sum):
            return None
        return self.sum / self.count


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[int]) -> float | None:
    """Estimate the ``q``-quantile (``0 < q <= 1``) from bucket upper ``bounds`` and per-bucket ``counts``.

    ``counts`` has one entry per bound plus the ``+Inf`` bucket. The rank ``q * total`` is located in
    the first bucket whose cumulative count reaches it, and the value is interpolated linearly
    between that bucket's lower bound (0 for the first bucket, else the previous bound) and its
    upper bound. A rank in the ``+Inf`` bucket returns the largest finite bound; a first bucket
    whose upper bound is not positive returns that bound. ``None`` when there is no observation
    or no finite bound.

    Example: bounds ``(1, 2, 4)``, counts ``(2, 2, 4, 0)``: the median has rank 4, reached in
    bucket ``(1, 2]`` (cumulative 2 -> 4), so it is ``1 + (2 - 1) * (4 - 2) / 2 = 2.0``.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile {q!r} is not in (0, 1]")
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"{len(bounds)} bounds need {len(bounds) + 1} bucket counts")
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(counts):
        below = cumulative
        cumulative += count
        if cumulative < rank:
            continue
        if index == len(bounds):  # the +Inf bucket: no upper bound to interpolate to
            return float(bounds[-1])
        upper = float(bounds[index])
        if index == 0 and upper <= 0:
            return upper
        lower = 0.0 if index == 0 else float(bounds[index - 1])
        return lower + (upper - lower) * (rank - below) / count
    return float(bounds[-1])  # unreachable: the cumulative count reaches the total


def merge_buckets(histograms: Iterable[Buckets]) -> Buckets | None:
    """Add histograms bucket by bucket; ``None`` when there are none or their bounds differ.

    Different bounds cannot be added without inventing where observations fell, so no merged
    histogram (and no runtime-wide quantile) is reported then.
    """
    merged: Buckets | None = None
    for histogram in histograms:
        if merged is None:
            merged = histogram
            continue
        if histogram.bounds != merged.bounds:
            return None
        merged = Buckets(
            merged.bounds,
            tuple(a + b for a, b in zip(merged.counts, histogram.counts, strict=True)),
            merged.count + histogram.count,
            merged.sum + histogram.sum,
        )
    return merged
