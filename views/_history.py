"""A bounded in-memory history of the runtime's traffic, for the status page's trend lines."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from telemetry_otel.views._build import build_model
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._state import Model

__all__ = ["DEFAULT_HISTORY_POINTS", "HistoryPoint", "StatusHistory"]

#: Points kept by default: 120 collections (an hour at the default 30 s cache window).
DEFAULT_HISTORY_POINTS = 120


@dataclass(frozen=True)
class HistoryPoint:
    """One collection's runtime-wide traffic, from its unfiltered model.

    ``None`` is unknown (no previous collection for a rate, no request for a ratio), never 0.
    """

    time_unix_nano: int
    request_rate: float | None
    error_ratio: float | None
    latency_p95_seconds: float | None


class StatusHistory:
    """The last ``max_points`` collections' :class:`HistoryPoint`, oldest first.

    A point is appended once per *new* collection (a collection time later than the last point's),
    not per request: the same cached collection served twice adds nothing. The oldest points are
    dropped first (a ``collections.deque`` with ``maxlen``), so memory stays bounded however long
    the process runs.
    """

    def __init__(self, max_points: int = DEFAULT_HISTORY_POINTS) -> None:
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 2:
            raise ValueError(f"max_points must be an integer >= 2, not {max_points!r}")
        self._points: deque[HistoryPoint] = deque(maxlen=max_points)

    @property
    def max_points(self) -> int:
        """How many points are kept at most."""
        maxlen = self._points.maxlen
        assert maxlen is not None
        return maxlen

    def is_new(self, time_unix_nano: int) -> bool:
        """Whether a collection taken at ``time_unix_nano`` would add a point."""
        return not self._points or time_unix_nano > self._points[-1].time_unix_nano

    def record(self, inputs: ViewInputs) -> bool:
        """Append the point of ``inputs``' collection (its model is built only for a new collection).

        Returns whether a point was added (False for a collection already recorded, or older).
        """
        if not self.is_new(inputs.collection.time_unix_nano):
            return False
        return self.record_model(build_model(inputs))

    def record_model(self, model: Model) -> bool:
        """:meth:`record` from a model already built (the app shares one model per collection)."""
        p95 = None if model.latency is None else model.latency.quantile(0.95)
        return self._append(
            model.inputs.collection.time_unix_nano, model.request_rate, model.error_ratio, p95
        )

    def _append(
        self, time_unix_nano: int, rate: float | None, error_ratio: float | None, p95: float | None
    ) -> bool:
        if not self.is_new(time_unix_nano):
            return False
        self._points.append(HistoryPoint(time_unix_nano, _number(rate), _number(error_ratio), _number(p95)))
        return True

    def points(self) -> tuple[HistoryPoint, ...]:
        """Every point kept, oldest first."""
        return tuple(self._points)

    def __len__(self) -> int:
        return len(self._points)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
