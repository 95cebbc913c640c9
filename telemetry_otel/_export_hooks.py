"""What the runtime's push exporters are built from: the pipeline's settings, and derived series.

The views register a hook that turns a served collection into extra series (status, health score,
alerts) for the exporters that take them (Graphite, InfluxDB); the core calls it without importing
the views.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry.sdk.metrics.export import Metric, MetricsData, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._config import TelemetryConfig
from telemetry_otel._cycle import CachedCollection
from telemetry_otel.exporters import ExportDemand, ExportPipeline, PushExporter, RetryPolicy

__all__ = ["ExportSeries", "ExportSeriesHooks", "build_pipeline"]

_logger = logging.getLogger("telemetry_otel")

#: Derived series for push exporters: ``(scope, metrics)`` pairs from one served collection.
ExportSeries = Callable[[CachedCollection], Sequence[tuple[InstrumentationScope, Sequence[Metric]]]]


def build_pipeline(
    config: TelemetryConfig,
    source: Callable[[ExportDemand], MetricsData],
    exporters: Sequence[PushExporter],
    derive: Callable[[MetricsData], MetricsData | None] | None = None,
    *,
    spool: bool = True,
) -> ExportPipeline:
    """The export pipeline of ``exporters`` with the configured interval, deadline and retry policy;
    without ``spool`` undelivered batches stay in memory only (a forked child: the spool directory is
    its parent's)."""
    return ExportPipeline(
        source,
        exporters,
        interval_millis=config.export_interval_millis,
        timeout_millis=config.export_timeout_millis,
        policy=RetryPolicy(
            initial_backoff_seconds=config.export_retry_initial_millis / 1000,
            max_backoff_seconds=config.export_retry_max_millis / 1000,
            max_buffer_seconds=config.export_buffer_seconds,
            max_buffer_bytes=config.export_buffer_bytes,
            spool_directory=config.export_spool_dir if spool else None,
            max_spool_bytes=config.export_spool_bytes,
        ),
        derive=derive,
    )


class ExportSeriesHooks:
    """The registered :data:`ExportSeries` hooks and the newest collection handed to the exporters."""

    def __init__(self, resource: Callable[[], Resource]) -> None:
        self._resource = resource
        self._lock = threading.Lock()
        self._hooks: dict[str, ExportSeries] = {}
        self._served: dict[int, CachedCollection] = {}

    def set(self, key: str, series: ExportSeries | None) -> None:
        """Register ``series`` under ``key`` (replacing one there); None removes it."""
        with self._lock:
            if series is None:
                self._hooks.pop(key, None)
            else:
                self._hooks[key] = series

    def remember(self, served: CachedCollection) -> None:
        """``served`` is the newest collection handed to the exporters (only the newest is kept)."""
        if self._hooks:
            self._served = {id(served.collection.metrics): served}

    def derive(self, data: MetricsData) -> MetricsData | None:
        """Every hook's series for the collection whose metrics are ``data``; None when there are none."""
        served = self._served.get(id(data))
        with self._lock:
            hooks = list(self._hooks.values())
        if served is None or served.collection.metrics is not data or not hooks:
            return None
        produced: dict[InstrumentationScope, list[Metric]] = {}
        for hook in hooks:
            try:
                for scope, metrics in hook(served):
                    produced.setdefault(scope, []).extend(metrics)
            except Exception:
                _logger.exception("derived series for export failed; pushed without them")
        if not produced:
            return None
        scopes = [ScopeMetrics(scope, metrics, "") for scope, metrics in produced.items()]
        return MetricsData([ResourceMetrics(self._resource(), scopes, "")])

    def reset_after_fork(self) -> None:
        """A forked child: a lock of its own, no collection of the parent's."""
        self._lock = threading.Lock()
        self._served = {}
