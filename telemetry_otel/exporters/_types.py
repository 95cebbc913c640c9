"""The exporters' shared types: the exporter protocol, the retry policy, delivery counts, a batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from opentelemetry.sdk.metrics.export import MetricsData

__all__ = ["DROP_REASONS", "Batch", "DeliveryStats", "PermanentExportError", "PushExporter", "RetryPolicy"]

#: Why a batch was dropped: ``age`` (older than ``max_buffer_seconds``), ``bytes`` (the memory cap),
#: ``count`` (``max_buffered_batches``), ``spool`` (the disk cap), ``rejected`` (the backend refused
#: it for good), ``encode`` (it could not be encoded), ``shutdown`` (unsent at shutdown, no spool).
DROP_REASONS = ("age", "bytes", "count", "spool", "rejected", "encode", "shutdown")
#: Bytes counted per data point of a batch kept as ``MetricsData`` (an exporter without ``encode``).
_LEGACY_POINT_BYTES = 64


class PermanentExportError(Exception):
    """The backend rejected a batch for a reason retrying cannot fix (bad data, unknown database)."""


class PushExporter(Protocol):
    """Sends one batch of cumulative metric data to a backend, raising on failure.

    The exporters of this package also have ``encode(data) -> bytes`` (run once, when the batch is
    queued) and ``send(payload, deadline)`` (every attempt, ended by the deadline whatever the
    server does); the queue uses those when present, and ``export`` otherwise.
    """

    name: str

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Send ``data``; raise :class:`PermanentExportError` or any other exception on failure."""
        ...

    def shutdown(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff, and the bounds on what is held for retries.

    Backoff: exponential with equal jitter from ``initial_backoff_seconds`` up to
    ``max_backoff_seconds``, and never longer than the export interval (a pipeline caps it), so
    delivery resumes within one interval of the backend's recovery; a ``Retry-After`` the backend
    sends is honoured up to ``max_retry_after_seconds``.

    Buffer: batches are held up to ``max_buffer_seconds`` old (15 minutes) and ``max_buffer_bytes``
    (64 MiB) in memory, and ``max_buffered_batches`` if set; whichever bound is hit first drops the
    oldest batch, counted. ``spool_directory``: also keep every pending batch on disk (capped at
    ``max_spool_bytes``, 256 MiB), so a restart sends what the previous process could not.
    """

    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_buffered_batches: int | None = None
    max_buffer_seconds: float = 900.0
    max_buffer_bytes: int = 64 * 1024 * 1024
    max_retry_after_seconds: float = 300.0
    spool_directory: str | None = None
    max_spool_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 < self.initial_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("backoff must satisfy 0 < initial_backoff_seconds <= max_backoff_seconds")
        if self.max_buffered_batches is not None and self.max_buffered_batches < 1:
            raise ValueError("max_buffered_batches must be at least 1")
        if not self.max_buffer_seconds > 0:
            raise ValueError("max_buffer_seconds must be positive")
        if self.max_buffer_bytes < 1 or self.max_spool_bytes < 1:
            raise ValueError("max_buffer_bytes and max_spool_bytes must be at least 1")
        if not self.max_retry_after_seconds >= 0:
            raise ValueError("max_retry_after_seconds must be zero or positive")


@dataclass(frozen=True)
class DeliveryStats:
    """What one exporter has done so far.

    ``sent``: batches delivered; ``failed_attempts``: attempts that failed (``late``: of those, the
    ones the deadline ended); ``retried``: attempts after a failure; ``dropped``: batches dropped by a
    bound or at shutdown, ``rejected``: refused by the backend for good (both also in
    ``dropped_by_reason``, with ``dropped_delta`` of them delta batches, whose change is lost for
    good); ``buffered``/``buffered_bytes``: what waits now (``spooled`` of it on disk);
    ``last_success_unix``: wall-clock time of the last delivery.
    """

    exporter: str
    sent: int
    failed_attempts: int
    dropped: int
    rejected: int
    buffered: int
    last_error: str | None
    retried: int = 0
    late: int = 0
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    dropped_delta: int = 0
    buffered_bytes: int = 0
    spooled: int = 0
    last_success_unix: float | None = None


class Batch:
    """One queued batch: the payload as sent (or the ``MetricsData`` itself), its size and age."""

    __slots__ = ("created_unix", "data", "delta", "payload", "size", "spool_path")

    def __init__(
        self,
        *,
        payload: bytes | None,
        data: MetricsData | None,
        size: int,
        created_unix: float,
        delta: bool,
        spool_path: Path | None = None,
    ) -> None:
        self.payload, self.data, self.size = payload, data, size
        self.created_unix, self.delta, self.spool_path = created_unix, delta, spool_path
