"""Small numeric and time helpers shared by the views: ratios, finite values, ages, sums."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime

__all__ = ["add", "age", "finite", "iso", "largest", "ratio"]


def ratio(part: float | None, whole: float | None) -> float | None:
    """``part / whole``; None when either is unknown or ``whole`` is 0."""
    if part is None or whole is None or whole == 0:
        return None
    return part / whole


def finite(value: float | None) -> float | None:
    """The value, or None when it is missing, NaN or infinite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def age(now_unix_nano: int, then_unix_nano: int | None) -> float | None:
    """Seconds from ``then`` to ``now`` (never negative), rounded to milliseconds; None without ``then``."""
    if then_unix_nano is None:
        return None
    return round(max(0, now_unix_nano - then_unix_nano) / 1e9, 3)


def iso(time_unix_nano: int) -> str:
    """RFC 3339 UTC time with a ``Z``."""
    return datetime.fromtimestamp(time_unix_nano / 1e9, UTC).isoformat().replace("+00:00", "Z")


def add(values: Iterable[float | None]) -> float | None:
    """The sum of the known values (an int when all are ints); None when none is known."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return sum(present) if all(isinstance(value, int) for value in present) else math.fsum(present)


def largest(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None
