"""telemetry-otel: OpenTelemetry-native telemetry for Python service runtimes.

Service code takes a meter from the one shared ``MeterProvider``::

    from telemetry_otel import get_meter
    meter = get_meter("my.service")

The application configures that provider once with :func:`setup_telemetry`.
"""

from __future__ import annotations

from telemetry_otel._cache import CachedCollection, CollectionCache
from telemetry_otel._collection import Collection, ComponentOutcome, Outcome
from telemetry_otel._components import (
    HEALTH_STATUSES,
    Component,
    ComponentRegistry,
    HealthReport,
    HealthStatus,
    Snapshot,
    SnapshotFunction,
    SnapshotValue,
)
from telemetry_otel._config import ConfigurationError, TelemetryConfig
from telemetry_otel._reader import MetricAggregator, MetricProducer
from telemetry_otel._runtime import (
    Telemetry,
    current_telemetry,
    get_meter,
    setup_telemetry,
    shutdown_telemetry,
)
from telemetry_otel._version import __version__

__all__ = [
    "HEALTH_STATUSES",
    "CachedCollection",
    "Collection",
    "CollectionCache",
    "Component",
    "ComponentOutcome",
    "ComponentRegistry",
    "ConfigurationError",
    "HealthReport",
    "HealthStatus",
    "MetricAggregator",
    "MetricProducer",
    "Outcome",
    "Snapshot",
    "SnapshotFunction",
    "SnapshotValue",
    "Telemetry",
    "TelemetryConfig",
    "__version__",
    "current_telemetry",
    "get_meter",
    "setup_telemetry",
    "shutdown_telemetry",
]
