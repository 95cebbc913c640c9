"""One periodic export loop for every push exporter, fed by the runtime's collection cycle."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel._config import DEFAULT_EXPORT_INTERVAL_MILLIS, DEFAULT_EXPORT_TIMEOUT_MILLIS
from telemetry_otel.exporters._retry import DeliveryStats, PushExporter, RetryingExporter, RetryPolicy

__all__ = ["ExportDemand", "ExportPipeline", "MetricsSource"]

_logger = logging.getLogger("telemetry_otel.exporters")
#: Share of the interval a periodic export accepts as the age of a collection.
_FRESH_SHARE = 0.9


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

    One thread, one collection per interval whatever the number of exporters, and no SDK reader
    added to the provider (so exporters cost the recording hot path nothing). The source is the
    runtime's collection cycle: an export reuses a collection that another consumer (a scrape, a
    view) started within the interval, and asks for a new one otherwise. Ticks are kept at a fixed
    rate. Export failures stay here: see :class:`RetryingExporter`.
    """

    def __init__(
        self,
        source: MetricsSource,
        exporters: Sequence[PushExporter],
        *,
        interval_millis: float = DEFAULT_EXPORT_INTERVAL_MILLIS,
        timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS,
        policy: RetryPolicy | None = None,
    ) -> None:
        if not interval_millis > 0 or not timeout_millis > 0:
            raise ValueError("interval_millis and timeout_millis must be positive")
        self._source = source
        self.interval_millis = interval_millis
        self.timeout_millis = timeout_millis
        self.exporters = [RetryingExporter(exporter, policy) for exporter in exporters]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut_down = False
        self._last_exported: MetricsData | None = None
        #: Periodic exports skipped because no collection newer than the last exported one was ready.
        self.skipped = 0

    def start(self) -> None:
        """Start the periodic thread (once; nothing to do without exporters)."""
        with self._lock:
            if self._thread is not None or self._shut_down or not self.exporters:
                return
            self._thread = threading.Thread(target=self._run, name="telemetry-export", daemon=True)
            self._thread.start()

    def export_now(self, *, final: bool = False) -> None:
        """Export now, from a collection made for it, to every exporter. Never raises.

        With ``final``, the collection comes from a cycle that starts now (the shutdown export).
        """
        self._export(0.0, final=final)

    def _export(self, max_age_seconds: float, *, final: bool = False) -> None:
        """One collection no older than ``max_age_seconds``, handed to every exporter."""
        timeout = self.timeout_millis / 1000
        wait = timeout if final or max_age_seconds == 0 else min(max_age_seconds, timeout)
        try:
            data = self._source(ExportDemand(max_age_seconds, wait, final))
        except Exception as exc:
            _logger.warning(
                "collection for export failed (%s: %s); nothing exported this cycle", type(exc).__name__, exc
            )
            return
        if data is self._last_exported and not final:
            # Late, and the newest collection is the one already sent: sending it again would
            # store a duplicate; the next tick sends what is new.
            self.skipped += 1
            _logger.debug("no collection newer than the last export yet; this tick sends nothing")
            return
        self._last_exported = data
        for exporter in self.exporters:
            exporter.submit(data, self.timeout_millis)

    def stats(self) -> list[DeliveryStats]:
        """Delivery counts of every exporter."""
        return [exporter.stats() for exporter in self.exporters]

    def shutdown(self, timeout_millis: float = DEFAULT_EXPORT_TIMEOUT_MILLIS, *, final: bool = True) -> None:
        """Stop the thread, export a final collection and flush within ``timeout_millis``; idempotent.

        Without ``final``, nothing more is exported (what was submitted is still flushed).
        """
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join(timeout_millis / 1000)
        if self.exporters:
            if final:
                self.export_now(final=True)
            share = timeout_millis / len(self.exporters)
            for exporter in self.exporters:
                exporter.flush(share)
                exporter.shutdown()

    def _run(self) -> None:
        interval = self.interval_millis / 1000
        next_tick = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            # A collection started within the interval, with a margin so that the one this
            # pipeline exported at the previous tick (a whole interval ago) never counts as new.
            self._export(interval * _FRESH_SHARE)
            next_tick += interval
            now = time.monotonic()
            if next_tick <= now:  # an export overran whole intervals: skip them, keep the phase
                next_tick += interval * (int((now - next_tick) // interval) + 1)
