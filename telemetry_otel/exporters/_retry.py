"""Delivery with bounded retry: a backend that is down never blocks or raises into the application.

Each batch is encoded once, when it is queued, into the bytes its exporter sends (exporters with
``encode``/``send``; an exporter with only ``export`` keeps its ``MetricsData``). The queue is
bounded by age, bytes and optionally a count, whichever bound is hit first; with a spool directory
every queued batch is also on disk, so a restart sends it. Every drop is counted by reason.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters._deadline import Deadline, ExportDeadlineError, RetryableExportError
from telemetry_otel.exporters._spool import Spool
from telemetry_otel.exporters._types import (
    _LEGACY_POINT_BYTES,
    DROP_REASONS,
    Batch,
    DeliveryStats,
    PermanentExportError,
    PushExporter,
    RetryPolicy,
)

__all__ = [
    "DROP_REASONS",
    "Batch",
    "DeliveryStats",
    "PermanentExportError",
    "PushExporter",
    "RetryPolicy",
    "RetryingExporter",
]

_logger = logging.getLogger("telemetry_otel.exporters")
#: Seconds between two warnings of one exporter about failures and drops (the counts add up).
WARNING_INTERVAL_SECONDS = 60.0


class RetryingExporter:
    """Wraps a :class:`PushExporter`: buffers batches while the backend is down, retries with backoff.

    ``submit`` never raises. A batch the backend rejects permanently is dropped with a logged
    reason (retrying would fail the same way). Batches wait oldest first, so after recovery the
    backend receives every buffered point in time order. ``interval_seconds`` caps the backoff.
    """

    def __init__(
        self,
        exporter: PushExporter,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        interval_seconds: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.exporter = exporter
        self.policy = policy or RetryPolicy()
        self._clock, self._wall = clock, wall
        self._max_backoff = self.policy.max_backoff_seconds
        if interval_seconds is not None:
            self._max_backoff = max(min(self._max_backoff, interval_seconds), 1e-3)
        self._lock = threading.RLock()
        self._deliver_lock = threading.Lock()
        self._cutoff: float | None = None
        self._in_flight: Deadline | None = None
        self._pending: deque[Batch] = deque()
        self._pending_bytes = 0
        self._spool_bytes = 0
        self._backoff = 0.0
        self._next_attempt = 0.0
        self._failing = False
        self._sent = self._failed = self._retried = self._late = self._dropped_delta = 0
        self._drops: dict[str, int] = {}
        self._last_error: str | None = None
        self._last_success: float | None = None
        self._encodes = callable(getattr(exporter, "encode", None)) and callable(
            getattr(exporter, "send", None)
        )
        # Rate-limited warnings: counts since the last one.
        self._warned_at: float | None = None
        self._unreported_failures = 0
        self._unreported_drops: dict[str, int] = {}
        self._spool: Spool | None = None
        if self.policy.spool_directory is not None:
            if self._encodes:
                self._spool = Spool(self.policy.spool_directory, exporter.name, self.policy.max_spool_bytes)
                self._load_spool()
            else:
                _logger.warning(
                    "%s cannot be spooled (it has no encode/send): its batches are kept in memory only",
                    exporter.name,
                )

    # -- queueing ---------------------------------------------------------------------------

    def enqueue(self, data: MetricsData) -> None:
        """Encode ``data`` and queue it (oldest batches dropped, counted, past a bound); never raises."""
        batch = self._encode(data)
        with self._lock:
            if batch is None:
                self._drop_counted("encode", delta=bool(getattr(self.exporter, "delta_batches", False)))
                return
            if self._spool is not None and batch.payload is not None:
                try:
                    batch.spool_path = self._spool.write(batch.payload, batch.created_unix, delta=batch.delta)
                    self._spool_bytes += Spool.file_size(batch.size)
                except OSError as exc:
                    _logger.warning(
                        "%s: spool write failed (%s); the batch is held in memory", self.exporter.name, exc
                    )
            self._pending.append(batch)
            self._pending_bytes += batch.size
            self._enforce_bounds()

    def submit(self, data: MetricsData, timeout_millis: float) -> None:
        """Queue ``data`` and deliver what the backoff allows now; never raises."""
        self.enqueue(data)
        self.deliver(timeout_millis, force=False)

    def flush(self, timeout_millis: float) -> bool:
        """Try to deliver everything buffered now, ignoring the backoff; True when nothing is left."""
        self.deliver(timeout_millis, force=True)
        with self._lock:
            return not self._pending

    def due_in(self) -> float | None:
        """Seconds until the next attempt may start (0: now), or None when nothing waits."""
        with self._lock:
            if not self._pending:
                return None
            return max(0.0, self._next_attempt - self._clock())

    def stats(self) -> DeliveryStats:
        """Counts of sent, failed, dropped and rejected batches, and what is buffered."""
        with self._lock:
            rejected = self._drops.get("rejected", 0)
            return DeliveryStats(
                self.exporter.name,
                self._sent,
                self._failed,
                sum(self._drops.values()) - rejected,
                rejected,
                len(self._pending),
                self._last_error,
                retried=self._retried,
                late=self._late,
                dropped_by_reason=dict(self._drops),
                dropped_delta=self._dropped_delta,
                buffered_bytes=self._pending_bytes,
                spooled=sum(1 for batch in self._pending if batch.spool_path is not None),
                last_success_unix=self._last_success,
            )

    def abandon(self) -> None:
        """Shutdown: what is still pending is dropped (counted, logged), unless it is in the spool."""
        with self._lock:
            spooled = [batch for batch in self._pending if batch.spool_path is not None]
            lost = [batch for batch in self._pending if batch.spool_path is None]
            self._pending.clear()
            self._pending_bytes = 0
            for batch in lost:
                self._count_drop("shutdown", batch)
            if lost:
                _logger.warning(
                    "%s: %d batch(es) not delivered by shutdown were dropped", self.exporter.name, len(lost)
                )
            if spooled:
                _logger.info(
                    "%s: %d batch(es) not delivered by shutdown stay in the spool (%s) for the next start",
                    self.exporter.name,
                    len(spooled),
                    self._spool.directory if self._spool is not None else "",
                )

    def shutdown(self) -> None:
        """Release the exporter's connections (buffered batches stay where :meth:`abandon` left them)."""
        try:
            self.exporter.shutdown()
        except Exception:
            _logger.exception("exporter %s failed to shut down", self.exporter.name)

    # -- delivery ---------------------------------------------------------------------------

    def deliver(self, timeout_millis: float, *, force: bool) -> None:
        """Send what waits, oldest first, within ``timeout_millis`` in all, unless backing off.

        The state lock is not held while a batch is on the wire: ``stats()`` and ``enqueue()``
        never wait for a backend."""
        with self._deliver_lock:
            with self._lock:
                self._drop_aged()
                if not force and self._clock() < self._next_attempt:
                    return
                deadline = self._clock() + timeout_millis / 1000
                if self._cutoff is not None:
                    deadline = min(deadline, self._cutoff)
            while True:
                with self._lock:
                    remaining = deadline - self._clock()
                    if not self._pending or remaining <= 0:
                        break
                    batch = self._pending[0]
                    if self._failing:
                        self._retried += 1
                    attempt = Deadline(remaining)
                    self._in_flight = attempt
                try:
                    self._send(batch, attempt)
                except PermanentExportError as exc:
                    with self._lock:
                        self._in_flight = None
                        self._remove(batch)
                        self._last_error = str(exc)
                        self._count_drop("rejected", batch)
                    _logger.warning("%s rejected a batch, dropped: %s", self.exporter.name, exc)
                    continue
                except Exception as exc:  # any transport failure: keep the batch, back off
                    with self._lock:
                        self._in_flight = None
                        self._on_failure(exc)
                    break
                with self._lock:
                    self._in_flight = None
                    self._remove(batch)
                    self._sent += 1
                    self._last_success = self._wall()
                    self._backoff = 0.0
                    self._next_attempt = 0.0
                    self._failing = False
            with self._lock:
                self._report()

    def cut(self, at: float) -> None:
        """Shutdown: no attempt from now on outlives ``at`` (monotonic), the one in flight included."""
        with self._lock:
            self._cutoff = at if self._cutoff is None else min(self._cutoff, at)
            in_flight = self._in_flight
        if in_flight is not None:
            in_flight.tighten(at)

    def _send(self, batch: Batch, deadline: Deadline) -> None:
        if batch.payload is not None:
            self.exporter.send(batch.payload, deadline)  # type: ignore[attr-defined]
        else:
            assert batch.data is not None
            self.exporter.export(batch.data, deadline.remaining() * 1000)

    def _on_failure(self, exc: Exception) -> None:
        self._failed += 1
        self._failing = True
        if isinstance(exc, ExportDeadlineError):
            self._late += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._backoff = min(self._max_backoff, max(self.policy.initial_backoff_seconds, self._backoff * 2))
        # Equal jitter: at least half the backoff, so a dead backend is never hammered.
        wait = random.uniform(self._backoff / 2, self._backoff)
        retry_after = getattr(exc, "retry_after", None) if isinstance(exc, RetryableExportError) else None
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.policy.max_retry_after_seconds))
        self._next_attempt = self._clock() + wait
        self._unreported_failures += 1

    def _remove(self, batch: Batch) -> None:
        """Forget a batch that was sent or rejected (unless a bound dropped it meanwhile)."""
        if self._pending and self._pending[0] is batch:
            self._remove_head()

    def _remove_head(self) -> None:
        batch = self._pending.popleft()
        self._pending_bytes -= batch.size
        if batch.spool_path is not None:
            Spool.remove(batch.spool_path)
            self._spool_bytes -= Spool.file_size(batch.size)

    # -- bounds and counts ------------------------------------------------------------------

    def _enforce_bounds(self) -> None:
        self._drop_aged()
        policy = self.policy
        while len(self._pending) > 1 and self._pending_bytes > policy.max_buffer_bytes:
            self._drop_head("bytes")
        while policy.max_buffered_batches is not None and len(self._pending) > policy.max_buffered_batches:
            self._drop_head("count")
        while (
            len(self._pending) > 1 and self._spool is not None and self._spool_bytes > policy.max_spool_bytes
        ):
            self._drop_head("spool")

    def _drop_aged(self) -> None:
        oldest = self._wall() - self.policy.max_buffer_seconds
        while self._pending and self._pending[0].created_unix < oldest:
            self._drop_head("age")

    def _drop_head(self, reason: str) -> None:
        batch = self._pending[0]
        self._remove_head()
        self._count_drop(reason, batch)

    def _count_drop(self, reason: str, batch: Batch) -> None:
        self._drop_counted(reason, delta=batch.delta)

    def count_drop(self, reason: str) -> None:
        """Count a batch dropped before it was queued (a worker's inbox overflowing)."""
        with self._lock:
            self._drop_counted(reason, delta=bool(getattr(self.exporter, "delta_batches", False)))

    def _drop_counted(self, reason: str, *, delta: bool) -> None:
        self._drops[reason] = self._drops.get(reason, 0) + 1
        if delta:
            self._dropped_delta += 1
        self._unreported_drops[reason] = self._unreported_drops.get(reason, 0) + 1

    def _report(self) -> None:
        """One warning with the counts since the last, at most every ``WARNING_INTERVAL_SECONDS``."""
        if not self._unreported_failures and not self._unreported_drops:
            return
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < WARNING_INTERVAL_SECONDS:
            return
        self._warned_at = now
        drops = ", ".join(f"{count} {reason}" for reason, count in sorted(self._unreported_drops.items()))
        _logger.warning(
            "%s: %d failed attempt(s) and %d dropped batch(es)%s since the last report; last error: %s; "
            "%d batch(es) held, next try within %.1f s",
            self.exporter.name,
            self._unreported_failures,
            sum(self._unreported_drops.values()),
            f" ({drops})" if drops else "",
            self._last_error,
            len(self._pending),
            max(0.0, self._next_attempt - now),
        )
        self._unreported_failures = 0
        self._unreported_drops = {}

    # -- encoding and the spool -------------------------------------------------------------

    def _encode(self, data: MetricsData) -> Batch | None:
        created = self._wall()
        delta = bool(getattr(self.exporter, "delta_batches", False))
        if not self._encodes:
            points = sum(
                len(metric.data.data_points)
                for rm in data.resource_metrics
                for sm in rm.scope_metrics
                for metric in sm.metrics
            )
            return Batch(
                payload=None, data=data, size=points * _LEGACY_POINT_BYTES, created_unix=created, delta=delta
            )
        try:
            payload: bytes = self.exporter.encode(data)  # type: ignore[attr-defined]
        except Exception as exc:
            _logger.warning(
                "%s could not encode a batch, dropped: %s: %s", self.exporter.name, type(exc).__name__, exc
            )
            return None
        return Batch(payload=payload, data=None, size=len(payload), created_unix=created, delta=delta)

    def _load_spool(self) -> None:
        assert self._spool is not None
        loaded = self._spool.load()
        for spooled in loaded:
            batch = Batch(
                payload=spooled.payload,
                data=None,
                size=len(spooled.payload),
                created_unix=spooled.created_unix,
                delta=spooled.delta,
                spool_path=spooled.path,
            )
            self._pending.append(batch)
            self._pending_bytes += batch.size
            self._spool_bytes += Spool.file_size(batch.size)
        if loaded:
            _logger.info(
                "%s: %d batch(es) from the spool (%s) are sent first, oldest first",
                self.exporter.name,
                len(loaded),
                self._spool.directory,
            )
        self._enforce_bounds()
