"""The views' derived series for the push exporters: status, health score and alerts.

The core never imports the views: ``create_app`` registers :func:`export_series` with the runtime
(``Telemetry.set_export_series``), and every collection pushed to Graphite or InfluxDB then carries
the summary view's derived series, exactly as ``?view=summary&format=prometheus`` serves them.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import Metric
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel import CachedCollection
from telemetry_otel._runtime import ExportSeries
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._render import DERIVED_SCOPE, render_view
from telemetry_otel.views._thresholds import Thresholds

__all__ = ["EXPORT_SERIES_KEY", "export_series"]

#: The key the views register their series under (one registration per runtime).
EXPORT_SERIES_KEY = "telemetry_otel.views"


def export_series(thresholds: Thresholds) -> ExportSeries:
    """The summary view's derived series of a served collection (``telemetry.status``,
    ``telemetry.health.score``, ``telemetry.alerts.active``, the p95 latency estimate)."""

    def series(served: CachedCollection) -> Sequence[tuple[InstrumentationScope, Sequence[Metric]]]:
        collection = served.collection
        inputs = ViewInputs(
            collection=collection,
            previous=served.previous,
            thresholds=thresholds,
            now_unix_nano=collection.time_unix_nano,
            category=None,
            service=None,
        )
        return [(DERIVED_SCOPE, render_view("summary", inputs).derived)]

    return series
