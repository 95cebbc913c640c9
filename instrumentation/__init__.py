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
"""

from __future__ import annotations

from telemetry_otel.instrumentation._service import SCOPE_NAME, InstrumentedService, instrument_service
from telemetry_otel.instrumentation._snapshots import (
    MetricKind,
    SnapshotMetric,
    counter,
    gauge,
    updown_counter,
)
from telemetry_otel.instrumentation._vitals import LATENCY_BUCKETS

__all__ = [
    "LATENCY_BUCKETS",
    "SCOPE_NAME",
    "InstrumentedService",
    "MetricKind",
    "SnapshotMetric",
    "counter",
    "gauge",
    "instrument_service",
    "updown_counter",
]
