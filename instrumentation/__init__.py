"""What services and buses use: the standard vitals and snapshot-backed metrics in one call.

Example::

    from telemetry_otel.instrumentation import gauge, instrument_service

    service = instrument_service(
        "memory", category="graph",
        snapshot=lambda: {"memory.nodes": store.size()},
        metrics=[gauge("memory.nodes", "{node}", "Nodes held in the graph.")],
    )
    with service.request():
        handle(message)

A metric declared in a catalog (docs/catalog.md) takes its unit and description from there:
``from_catalog(load_catalog("catalog.yaml"), "memory.nodes")``.

Any Starlette or FastAPI app gets the HTTP server metrics of the semantic conventions with
``app.add_middleware(HTTPMetricsMiddleware)``. The process's own metrics (CPU time, memory,
threads, descriptors, context switches, GC) come with ``instrument_process()`` or
``setup_telemetry(process_metrics=True)``.
"""

from __future__ import annotations

from telemetry_otel.instrumentation._aggregation import DEFAULT_GAUGE_RULE, GAUGE_RULES, GaugeRule
from telemetry_otel.instrumentation._asgi import DEFAULT_EXCLUDED_PATHS, HTTPMetricsMiddleware
from telemetry_otel.instrumentation._bus import BUS_SCOPE_NAME, Bus, BusConfigurationError
from telemetry_otel.instrumentation._catalog import from_catalog
from telemetry_otel.instrumentation._process import instrument_process
from telemetry_otel.instrumentation._service import SCOPE_NAME, InstrumentedService, instrument_service
from telemetry_otel.instrumentation._snapshots import (
    MetricKind,
    SnapshotMetric,
    counter,
    gauge,
    updown_counter,
)
from telemetry_otel.instrumentation._timer import RequestTimer
from telemetry_otel.instrumentation._vitals import LATENCY_BUCKETS

__all__ = [
    "BUS_SCOPE_NAME",
    "DEFAULT_EXCLUDED_PATHS",
    "DEFAULT_GAUGE_RULE",
    "GAUGE_RULES",
    "LATENCY_BUCKETS",
    "SCOPE_NAME",
    "Bus",
    "BusConfigurationError",
    "GaugeRule",
    "HTTPMetricsMiddleware",
    "InstrumentedService",
    "MetricKind",
    "RequestTimer",
    "SnapshotMetric",
    "counter",
    "from_catalog",
    "gauge",
    "instrument_process",
    "instrument_service",
    "updown_counter",
]
