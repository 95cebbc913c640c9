"""One periodic export loop for every push exporter, fed by one collection per interval."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics.export import MetricsData

from telemetry_otel.exporters._retry import DeliveryStats, PushExporter, RetryingExporter, RetryPolicy

if TYPE_CHECKING:
    from telemetry_otel._runtime import Telemetry

__all__ = ["DEFAULT_INTERVAL_MILLIS", "DEFAULT_TIMEOUT_MILLIS", "ExportPipeline", "MetricsSource"]

_logger = logging.getLogger("telemetry_otel.exporters")

#: ``OTEL_METRIC_EXPORT_INTERVAL`` default of the OpenTelemetry specification.
DEFAULT_INTERVAL_MILLIS = 60_000.0
#: ``OTEL_METRIC_EXPORT_TIMEOUT`` default of the OpenTelemetry specification.
DEFAULT_TIMEOUT_MILLIS = 30_000.0

#: Returns the metric data of one collection cycle, within the given milliseconds.
MetricsSource = Callable[[float], MetricsData]


class ExportPipeline:
    """Every ``interval_millis``, one collection, delivered to every exporter.

    One thread, one collection per interval whatever the number of exporters, and no SDK reader
    added to the provider (so exporters cost the recording hot path nothing). While a server runs,
    :meth:`use_source` points the pipeline at the server's collection cache, so exporters and
    views share collection cycles. Export failures stay here: see :class:`RetryingExporter`.
    """

    def __init__(
        self,
        telemetry: Telemetry,
        exporters: Sequence[PushExporter],
        *,
        interval_millis: float = DEFAULT_INTERVAL_MILLIS,
        timeout_millis: float = DEFAULT_TIMEOUT_MILLIS,
        policy: RetryPolicy | None = None,
    ) -> None:
        if not interval_millis > 0 or not timeout_millis > 0:
            raise ValueError("interval_millis and timeout_millis must be positive")
        self._telemetry = telemetry
        self.interval_millis = interval_millis
        self.timeout_millis = timeout_millis
        self.exporters = [RetryingExporter(exporter, policy) for exporter in exporters]
        self._source: MetricsSource = self._collect_own
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut_down = False

    def start(self) -> None:
        """Start the periodic thread (once; nothing to do without exporters)."""
        with self._lock:
            if self._thread is not None or self._shut_down or not self.exporters:
                return
            self._thread = threading.Thread(target=self._run, name="telemetry-export", daemon=True)
            self._thread.start()

    def use_source(self, source: MetricsSource | None) -> None:
        """Read collections from ``source`` (a server's cache); None returns to collecting here."""
        self._source = source if source is not None else self._collect_own

    def export_now(self) -> None:
        """Run one cycle now: collect once and hand the data to every exporter. Never raises."""
        try:
            data = self._source(self.timeout_millis)
        except Exception:
            _logger.exception("collection for export failed; nothing exported this cycle")
            return
        for exporter in self.exporters:
            exporter.submit(data, self.timeout_millis)

    def stats(self) -> list[DeliveryStats]:
        """Delivery counts of every exporter."""
        return [exporter.stats() for exporter in self.exporters]

    def shutdown(self, timeout_millis: float = DEFAULT_TIMEOUT_MILLIS) -> None:
        """Stop the thread, export a final collection and flush within ``timeout_millis``; idempotent."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            thread = self._thread
        self._stop.set()
        if thread is not None:
            thread.join(timeout_millis / 1000)
        if self.exporters:
            self.export_now()
            share = timeout_millis / len(self.exporters)
            for exporter in self.exporters:
                exporter.flush(share)
                exporter.shutdown()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_millis / 1000):
            self.export_now()

    def _collect_own(self, timeout_millis: float) -> MetricsData:
        async def cycle() -> MetricsData:
            collection = await asyncio.wait_for(self._telemetry.collect(), timeout_millis / 1000)
            return collection.metrics

        return asyncio.run(cycle())
