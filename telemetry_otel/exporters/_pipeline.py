"""One periodic collection for every push exporter, each exporter on a worker thread of its own.

The tick thread takes one collection per interval from the runtime's collection cycle and hands it
to every exporter's worker; a worker queues it (encoded once) and delivers oldest first. A slow or
dead backend holds up its own worker only: never another exporter, the tick, or the application.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._config import DEFAULT_EXPORT_INTERVAL_MILLIS, DEFAULT_EXPORT_TIMEOUT_MILLIS
from telemetry_otel.exporters._retry import DeliveryStats, PushExporter, RetryingExporter, RetryPolicy

#: Adds series to a collection's data for the exporters that take derived series (None: nothing).
DeriveHook = Callable[[MetricsData], MetricsData | None]

__all__ = ["DeriveHook", "ExportDemand", "ExportPipeline", "MetricsSource"]

_logger = logging.getLogger("telemetry_otel.exporters")
#: Share of the interval a periodic export accepts as the age of a collection.
_FRESH_SHARE = 0.9
#: Collections a worker holds before it queues them (only an exporter stuck inside an ``export()``
#: that ignores its deadline lets them pile up): past it the oldest is dropped, counted ``count``.
INBOX_LIMIT = 64


@dataclass(frozen=True)
class ExportDemand:
    """What the pipeline asks its source for.

    ``max_age_seconds``: the data's collection started at most this long ago (the export interval);
    ``timeout_seconds``: how long the source may wait for a fresh collection before it answers with
    the newest it has; ``final``: the shutdown export, from a collection that starts now.
    """

    max_age_seconds: float
    timeout_seconds: float
    final: bool = False


#: Returns the metric data for one export (a runtime's collection cycle, in practice).
MetricsSource = Callable[[ExportDemand], MetricsData]


class ExportPipeline:
    """Every ``interval_millis``, one collection from ``source``, delivered to every exporter.

    One tick thread and one collection per interval whatever the number of exporters, and no SDK
    reader added to the provider (so exporters cost the recording hot path nothing). The source is
    the runtime's collection cycle: an export reuses a collection that another consumer (a scrape, a
    view) started within the interval, and asks for a new one otherwise. Ticks keep a fixed rate.

    Each exporter has its own worker thread and queue (:class:`RetryingExporter`): every attempt
    ends by the export deadline (``timeout_millis``) whatever the server does, the backoff never
    exceeds the interval, and failures stay here. ``derive`` adds derived series (status, health
    score, alerts) to the data of the exporters that take them (``derived_series = True``).
    """

    def __init__(
        self,
        source: MetricsSource,
        exporters: Sequence[PushExporter],
        *,
        interval_millis: float = DEFAULT_EXPORT_INTERVAL_MILLIS,
        timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS,
        policy: RetryPolicy | None = None,
        derive: DeriveHook | None = None,
    ) -> None:
        if not interval_millis > 0 or not timeout_millis > 0:
            raise ValueError("interval_millis and timeout_millis must be positive")
        self._source = source
        self._derive = derive
        self.interval_millis = interval_millis
        self.timeout_millis = timeout_millis
        self.exporters = [
            RetryingExporter(exporter, policy, interval_seconds=interval_millis / 1000)
            for exporter in exporters
        ]
        self._workers = [_Worker(exporter, timeout_millis) for exporter in self.exporters]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut_down = False
        self._last_exported: MetricsData | None = None
        #: Periodic exports skipped because no collection newer than the last exported one was ready.
        self.skipped = 0

    def start(self) -> None:
        """Start the tick thread and the workers (once; nothing to do without exporters)."""
        with self._lock:
            if self._thread is not None or self._shut_down or not self.exporters:
                return
            for worker in self._workers:
                worker.start()
            self._thread = threading.Thread(target=self._run, name="telemetry-export", daemon=True)
            self._thread.start()

    def export_now(self, *, final: bool = False) -> None:
        """Export now, from a collection made for it, to every exporter, and wait (at most the export
        timeout) until each worker has tried to deliver it. Never raises.

        With ``final``, the collection comes from a cycle that starts now (the shutdown export).
        """
        with self._lock:
            if self._shut_down and not final:
                return
            if not self._shut_down:
                for worker in self._workers:
                    worker.start()
        tickets = self._export(0.0, final=final)
        deadline = time.monotonic() + self.timeout_millis / 1000 + 0.5
        for worker, ticket in tickets:
            worker.wait_done(ticket, deadline)

    def _export(
        self, max_age_seconds: float, *, final: bool = False, wait_seconds: float | None = None
    ) -> list[tuple[_Worker, int]]:
        """One collection no older than ``max_age_seconds``, handed to every worker."""
        timeout = self.timeout_millis / 1000 if wait_seconds is None else wait_seconds
        wait = timeout if final or max_age_seconds == 0 else min(max_age_seconds, timeout)
        try:
            data = self._source(ExportDemand(max_age_seconds, wait, final))
        except Exception as exc:
            _logger.warning(
                "collection for export failed (%s: %s); nothing exported this cycle", type(exc).__name__, exc
            )
            return []
        if data is self._last_exported and not final:
            # Late, and the newest collection is the one already sent: sending it again would
            # store a duplicate; the next tick sends what is new.
            self.skipped += 1
            _logger.debug("no collection newer than the last export yet; this tick sends nothing")
            return []
        self._last_exported = data
        with_derived = data
        if self._derive is not None and any(w.derived for w in self._workers):
            try:
                derived = self._derive(data)
            except Exception:
                _logger.exception("derived series for export failed; the collection is exported without them")
                derived = None
            if derived is not None and derived.resource_metrics:
                with_derived = MetricsData([*data.resource_metrics, *derived.resource_metrics])
        return [(worker, worker.offer(with_derived if worker.derived else data)) for worker in self._workers]

    def stats(self) -> list[DeliveryStats]:
        """Delivery counts of every exporter."""
        return [exporter.stats() for exporter in self.exporters]

    def shutdown(self, timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS, *, final: bool = True) -> None:
        """Stop, export a final collection to every exporter and flush, all within ``timeout_millis``.

        The final collection may take half of the bound; the exporters flush in parallel, each
        within its export deadline and what is left of the bound. What is still undelivered then is
        dropped (counted and logged) or, with a spool, kept on disk for the next start. Workers
        still inside an export that ignores its deadline (only an exporter without ``send`` can)
        are daemon threads left to end on their own. Idempotent. Without ``final``, nothing more is
        exported (what was queued is still flushed).
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            thread = self._thread
        started = time.monotonic()
        end = started + timeout_millis / 1000
        for exporter in self.exporters:  # no attempt from now on outlives the bound
            exporter.cut(end)
        self._stop.set()
        if thread is not None:
            thread.join(max(0.0, end - time.monotonic()))
        if not self.exporters:
            return
        if final:
            self._export(0.0, final=True, wait_seconds=max(0.001, (end - started) / 2))
        for worker in self._workers:
            worker.start()  # a pipeline never started flushes on its workers too, within the bound
            worker.stop(end)
        for worker in self._workers:
            worker.join(max(0.0, end - time.monotonic()))
        for worker in self._workers:
            if worker.is_alive():
                _logger.warning(
                    "%s was still exporting when the shutdown bound (%g ms) passed; left to end on its own",
                    worker.exporter.exporter.name,
                    timeout_millis,
                )
            worker.exporter.shutdown()

    def _run(self) -> None:
        interval = self.interval_millis / 1000
        next_tick = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            # A collection started within the interval, with a margin so that the one this
            # pipeline exported at the previous tick (a whole interval ago) never counts as new.
            self._export(interval * _FRESH_SHARE)
            next_tick += interval
            now = time.monotonic()
            if next_tick <= now:  # a collection overran whole intervals: skip them, keep the phase
                next_tick += interval * (int((now - next_tick) // interval) + 1)


class _Worker:
    """The thread of one exporter: queues what it is offered and delivers when the backoff allows."""

    def __init__(self, exporter: RetryingExporter, timeout_millis: float) -> None:
        self.exporter = exporter
        self.timeout_millis = timeout_millis
        self.derived = bool(getattr(exporter.exporter, "derived_series", False))
        self._cond = threading.Condition()
        self._inbox: list[tuple[int, MetricsData]] = []
        self._offered = 0
        self._done = 0
        self._stop_at: float | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is None and self._stop_at is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"telemetry-export-{self.exporter.exporter.name}", daemon=True
                )
                self._thread.start()

    def offer(self, data: MetricsData) -> int:
        """Queue ``data``; returns a ticket for :meth:`wait_done`."""
        with self._cond:
            self._offered += 1
            self._inbox.append((self._offered, data))
            if len(self._inbox) > INBOX_LIMIT:
                del self._inbox[0]
                self.exporter.count_drop("count")
            self._cond.notify_all()
            return self._offered

    def wait_done(self, ticket: int, deadline: float) -> bool:
        """Wait until the batch of ``ticket`` had its delivery attempt (or ``deadline`` passes)."""
        with self._cond:
            while self._done < ticket:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, at: float) -> None:
        """Deliver what is queued (ignoring the backoff) until ``at``, then end."""
        with self._cond:
            self._stop_at = at
            self._cond.notify_all()

    def join(self, seconds: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(seconds)

    def is_alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _drain(self) -> int:
        with self._cond:
            inbox, self._inbox = self._inbox, []
        for _, data in inbox:
            self.exporter.enqueue(data)
        return inbox[-1][0] if inbox else 0

    def _finish(self, at: float) -> None:
        left = (at - time.monotonic()) * 1000
        if left > 0:
            self.exporter.deliver(min(self.timeout_millis, left), force=True)
        self.exporter.abandon()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._inbox and self._stop_at is None:
                    due = self.exporter.due_in()
                    if due == 0:
                        break
                    self._cond.wait(due)
                stop_at = self._stop_at
            ticket = 0
            try:
                ticket = self._drain()
                if stop_at is not None:
                    self._finish(stop_at)
                    return
                self.exporter.deliver(self.timeout_millis, force=False)
            except Exception:  # a bug here must not end the worker: log it and go on
                _logger.exception("export worker of %s failed", self.exporter.exporter.name)
                time.sleep(0.1)
            finally:
                self._mark_done(ticket)

    def _mark_done(self, ticket: int) -> None:
        with self._cond:
            self._done = max(self._done, ticket)
            self._cond.notify_all()
