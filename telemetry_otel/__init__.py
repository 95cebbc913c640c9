"""telemetry-otel: OpenTelemetry-native telemetry for Python service runtimes.

Service code takes a meter from the one shared ``MeterProvider``::

    from telemetry_otel import get_meter
    meter = get_meter("my.service")

The application configures that provider once with :func:`setup_telemetry`.
"""

from __future__ import annotations

from telemetry_otel._collection import (
    Collection,
    ComponentKind,
    ComponentOutcome,
    ComponentRecord,
    HostRecord,
    Outcome,
    WorkerRecord,
)
from telemetry_otel._components import (
    HEALTH_STATUSES,
    Component,
    HealthReport,
    HealthStatus,
    Snapshot,
    SnapshotFunction,
    SnapshotValue,
)
from telemetry_otel._config import (
    DEFAULT_CACHE_TTL_SECONDS,
    DEFAULT_FLEET_CACHE_TTL_SECONDS,
    ConfigurationError,
    TelemetryConfig,
)
from telemetry_otel._cycle import CachedCollection, CollectionCycle, CycleStats
from telemetry_otel._index import DataPoint, OwnedMetric, OwnerIndex
from telemetry_otel._reader import MetricAggregator, MetricProducer
from telemetry_otel._runtime import Telemetry
from telemetry_otel._setup import (
    current_telemetry,
    get_meter,
    setup_telemetry,
    shutdown_telemetry,
)
from telemetry_otel._version import __version__
from telemetry_otel.vocabulary import SERVICE_INSTANCE_ID

__all__ = [
    "DEFAULT_CACHE_TTL_SECONDS",
    "DEFAULT_FLEET_CACHE_TTL_SECONDS",
    "HEALTH_STATUSES",
    "SERVICE_INSTANCE_ID",
    "CachedCollection",
    "Collection",
    "CollectionCycle",
    "Component",
    "ComponentKind",
    "ComponentOutcome",
    "ComponentRecord",
    "ConfigurationError",
    "CycleStats",
    "DataPoint",
    "HealthReport",
    "HealthStatus",
    "HostRecord",
    "MetricAggregator",
    "MetricProducer",
    "Outcome",
    "OwnedMetric",
    "OwnerIndex",
    "Snapshot",
    "SnapshotFunction",
    "SnapshotValue",
    "Telemetry",
    "TelemetryConfig",
    "WorkerRecord",
    "__version__",
    "current_telemetry",
    "get_meter",
    "setup_telemetry",
    "shutdown_telemetry",
]
