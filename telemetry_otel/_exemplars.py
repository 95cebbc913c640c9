"""The SDK's exemplar reservoirs, skipped at collection when nothing was offered since the last one.

The SDK gives every series an exemplar reservoir and collects it with every data point: a lock, a
sort of its buckets and a reset, even when no measurement was ever sampled (the default filter
samples only measurements made inside a sampled trace). That was a third of a read of counters.
These reservoirs are the SDK's own (the same sampling, the same exemplars), with one flag: ``offer``
sets it after storing, ``collect`` returns an empty sequence at once while it is clear, as the
SDK's would (one shared empty tuple: a data point per series per read need not carry a list).

The flag is set after the stored offer and cleared before the SDK's collect, so an offer racing a
collection is never lost: at worst the next collection runs the SDK's collect and finds nothing.
"""

from __future__ import annotations

from typing import Any, cast

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import (
    AlignedHistogramBucketExemplarReservoir,
    Exemplar,
    ExemplarReservoir,
    SimpleFixedSizeExemplarReservoir,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.util.types import Attributes

__all__ = ["read_view"]


#: What a quiet reservoir collects: one shared, immutable empty sequence, not a new list per point
#: (a data point only iterates its exemplars).
_NONE = cast(list[Exemplar], ())


class _QuietSimple(SimpleFixedSizeExemplarReservoir):
    """``SimpleFixedSizeExemplarReservoir`` whose collection is free until something is offered."""

    def __init__(self, size: int = 1, **kwargs: Any) -> None:
        super().__init__(size, **kwargs)
        self._offered = False

    def offer(self, value: float, time_unix_nano: int, attributes: Attributes, context: Context) -> None:
        super().offer(value, time_unix_nano, attributes, context)
        self._offered = True

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        if not self._offered:
            return _NONE
        self._offered = False
        return super().collect(point_attributes)


class _QuietAligned(AlignedHistogramBucketExemplarReservoir):
    """``AlignedHistogramBucketExemplarReservoir`` whose collection is free until something is offered."""

    def __init__(self, boundaries: Any, **kwargs: Any) -> None:
        super().__init__(boundaries, **kwargs)
        self._offered = False

    def offer(self, value: float, time_unix_nano: int, attributes: Attributes, context: Context) -> None:
        super().offer(value, time_unix_nano, attributes, context)
        self._offered = True

    def collect(self, point_attributes: Attributes) -> list[Exemplar]:
        if not self._offered:
            return _NONE
        self._offered = False
        return super().collect(point_attributes)


def _reservoir(**kwargs: Any) -> ExemplarReservoir:
    # The SDK's default choice: explicit-bucket histograms (built with their ``boundaries``) keep
    # one exemplar per bucket, everything else a fixed-size sample.
    if "boundaries" in kwargs:
        return _QuietAligned(**kwargs)
    return _QuietSimple(**kwargs)


def _factory(aggregation_type: type[Any]) -> Any:
    return _reservoir


def read_view() -> View:
    """A view of every instrument that changes nothing but the reservoirs (the SDK's, made quiet)."""
    return View(instrument_name="*", exemplar_reservoir_factory=_factory)
