"""Delivery with bounded retry: a backend that is down never blocks or raises into the application."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from opentelemetry.sdk.metrics.export import MetricsData

__all__ = ["DeliveryStats", "PermanentExportError", "PushExporter", "RetryPolicy", "RetryingExporter"]

_logger = logging.getLogger("telemetry_otel.exporters")


class PermanentExportError(Exception):
    """The backend rejected a batch for a reason retrying cannot fix (bad data, unknown database)."""


class PushExporter(Protocol):
    """Sends one batch of cumulative metric data to a backend, raising on failure."""

    name: str

    def export(self, data: MetricsData, timeout_millis: float) -> None:
        """Send ``data``; raise :class:`PermanentExportError` or any other exception on failure."""
        ...

    def shutdown(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, and a bound on what is held for retries.

    Defaults: first retry after 1 s, doubling up to 60 s; at most 16 batches held (the oldest is
    dropped first, and counted).
    """

    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    max_buffered_batches: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.initial_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("backoff must satisfy 0 < initial_backoff_seconds <= max_backoff_seconds")
        if self.max_buffered_batches < 1:
            raise ValueError("max_buffered_batches must be at least 1")


@dataclass(frozen=True)
class DeliveryStats:
    """What one exporter has done so far."""

    exporter: str
    sent: int
    failed_attempts: int
    dropped: int
    rejected: int
    buffered: int
    last_error: str | None


class RetryingExporter:
    """Wraps a :class:`PushExporter`: buffers batches while the backend is down, retries with backoff.

    ``submit`` never raises. A batch the backend rejects permanently is dropped with a logged
    reason (retrying would fail the same way). Batches wait oldest first, so after recovery the
    backend receives every buffered point in time order.
    """

    def __init__(
        self,
        exporter: PushExporter,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.exporter = exporter
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: deque[MetricsData] = deque()
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._sent = self._failed = self._dropped = self._rejected = 0
        self._last_error: str | None = None

    def submit(self, data: MetricsData, timeout_millis: float) -> None:
        """Queue ``data`` and deliver what the backoff allows now; never raises."""
        with self._lock:
            self._pending.append(data)
            while len(self._pending) > self.policy.max_buffered_batches:
                self._pending.popleft()
                self._dropped += 1
            self._deliver(timeout_millis, force=False)

    def flush(self, timeout_millis: float) -> bool:
        """Try to deliver everything buffered now, ignoring the backoff; True when nothing is left."""
        with self._lock:
            self._deliver(timeout_millis, force=True)
            return not self._pending

    def stats(self) -> DeliveryStats:
        """Counts of sent, failed, dropped and rejected batches, and what is buffered."""
        with self._lock:
            return DeliveryStats(
                self.exporter.name,
                self._sent,
                self._failed,
                self._dropped,
                self._rejected,
                len(self._pending),
                self._last_error,
            )

    def shutdown(self) -> None:
        """Release the exporter's connections (buffered batches are discarded)."""
        try:
            self.exporter.shutdown()
        except Exception:
            _logger.exception("exporter %s failed to shut down", self.exporter.name)

    def _deliver(self, timeout_millis: float, *, force: bool) -> None:
        if not force and self._clock() < self._next_attempt:
            return
        deadline = self._clock() + timeout_millis / 1000
        while self._pending:
            remaining = (deadline - self._clock()) * 1000
            if remaining <= 0:
                return
            batch = self._pending[0]
            try:
                self.exporter.export(batch, remaining)
            except PermanentExportError as exc:
                self._pending.popleft()
                self._rejected += 1
                self._last_error = str(exc)
                _logger.warning("%s rejected a batch, dropped: %s", self.exporter.name, exc)
                continue
            except Exception as exc:  # any transport failure: keep the batch, back off
                self._failed += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                self._backoff = min(
                    self.policy.max_backoff_seconds,
                    max(self.policy.initial_backoff_seconds, self._backoff * 2),
                )
                # Equal jitter: at least half the backoff, so a dead backend is never hammered.
                self._next_attempt = self._clock() + random.uniform(self._backoff / 2, self._backoff)
                _logger.warning(
                    "%s export failed (%s); %d batch(es) held, next try within %.1f s",
                    self.exporter.name,
                    self._last_error,
                    len(self._pending),
                    self._backoff,
                )
                return
            self._pending.popleft()
            self._sent += 1
            self._backoff = 0.0
            self._next_attempt = 0.0
