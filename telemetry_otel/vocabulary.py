"""The package's vocabulary: every metric name, attribute key and scope name it emits or reads.

Each name is spelled here once; the core, the instrumentation, the views and the catalog import it.
Names follow the OpenTelemetry conventions (dotted, lower case); the encoders turn them into each
backend's form (``service_requests_total`` for Prometheus, for example), so PromQL and dashboards
use those forms.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

__all__ = [
    "BUS_FAILURES",
    "BUS_NAME",
    "BUS_PREFIX",
    "BUS_PROCESSED",
    "BUS_PROVIDER",
    "BUS_PROVIDERS",
    "BUS_PROVIDERS_HEALTHY",
    "BUS_PROVIDERS_UNKNOWN",
    "BUS_PROVIDER_PREFIX",
    "BUS_REQUESTS",
    "BUS_REQUEST_DURATION",
    "BUS_SCOPE_NAME",
    "COLLECTOR_SCOPE_NAME",
    "HEALTH_STATUS",
    "INSTRUMENT_KINDS",
    "OVERFLOW",
    "SERVICE_CATEGORY",
    "SERVICE_ERRORS",
    "SERVICE_HEALTH",
    "SERVICE_INSTANCE_ID",
    "SERVICE_NAME",
    "SERVICE_QUEUE_DEPTH",
    "SERVICE_REQUESTS",
    "SERVICE_REQUEST_DURATION",
    "SERVICE_UPTIME",
    "TELEMETRY_COLLECTIONS",
    "TELEMETRY_COLLECTION_DURATION",
    "TELEMETRY_COLLECTION_ERRORS",
    "TELEMETRY_COLLECTION_PROBLEMS",
    "TELEMETRY_COLLECTION_SNAPSHOT_AGE",
    "TELEMETRY_COLLECTION_TIMEOUTS",
    "TELEMETRY_COLLECTION_UP",
    "TELEMETRY_EXPORTER",
    "TELEMETRY_EXPORT_DROPPED",
    "TELEMETRY_EXPORT_DROPPED_DELTA",
    "TELEMETRY_EXPORT_FAILED",
    "TELEMETRY_EXPORT_LAST_SUCCESS_AGE",
    "TELEMETRY_EXPORT_LATE",
    "TELEMETRY_EXPORT_QUEUE_BYTES",
    "TELEMETRY_EXPORT_QUEUE_LENGTH",
    "TELEMETRY_EXPORT_REASON",
    "TELEMETRY_EXPORT_RETRIED",
    "TELEMETRY_EXPORT_SENT",
    "VITALS_SCOPE_NAME",
    "InstrumentKind",
]

#: The kinds of instrument, spelled as the OpenTelemetry Weaver registry spells them.
InstrumentKind: TypeAlias = Literal["counter", "updowncounter", "gauge", "histogram"]
INSTRUMENT_KINDS: Final[tuple[InstrumentKind, ...]] = ("counter", "updowncounter", "gauge", "histogram")

# -- attribute keys ---------------------------------------------------------------------------------
#: The internal service a data point belongs to (on the resource: the runtime as a whole).
SERVICE_NAME: Final = "service.name"
#: The category of a runtime service (graph, infrastructure, governance, runtime in the demo).
SERVICE_CATEGORY: Final = "service.category"
#: Resource attribute identifying one process of a runtime (OTel resource conventions).
SERVICE_INSTANCE_ID: Final = "service.instance.id"
#: The bus a data point belongs to.
BUS_NAME: Final = "bus.name"
#: The provider of a bus a per-provider data point belongs to.
BUS_PROVIDER: Final = "bus.provider"
#: A service's reported health status (pass, warn, fail), on ``service.health``.
HEALTH_STATUS: Final = "health.status"
#: Marks the series into which attribute sets beyond the cardinality limit fold (OTel spec).
OVERFLOW: Final = "otel.metric.overflow"

# -- instrumentation scopes -------------------------------------------------------------------------
#: Scope of the standard service vitals.
VITALS_SCOPE_NAME: Final = "telemetry_otel.instrumentation"
#: Scope of the series buses derive.
BUS_SCOPE_NAME: Final = "telemetry_otel.bus"
#: Scope of the collector's own series.
COLLECTOR_SCOPE_NAME: Final = "telemetry_otel.collector"

# -- metric names: service vitals --------------------------------------------------------------------
SERVICE_UPTIME: Final = "service.uptime"
SERVICE_HEALTH: Final = "service.health"
SERVICE_REQUESTS: Final = "service.requests"
SERVICE_ERRORS: Final = "service.errors"
SERVICE_REQUEST_DURATION: Final = "service.request.duration"
SERVICE_QUEUE_DEPTH: Final = "service.queue.depth"

# -- metric names: buses (``bus.`` + a provider's metric name; ``bus.provider.`` per provider) -------
BUS_PREFIX: Final = "bus."
BUS_PROVIDER_PREFIX: Final = "bus.provider."
BUS_REQUESTS: Final = "bus.requests"
BUS_FAILURES: Final = "bus.failures"
BUS_PROCESSED: Final = "bus.processed"
BUS_REQUEST_DURATION: Final = "bus.request.duration"
BUS_PROVIDERS: Final = "bus.providers"
BUS_PROVIDERS_HEALTHY: Final = "bus.providers.healthy"
BUS_PROVIDERS_UNKNOWN: Final = "bus.providers.unknown"

# -- metric names: the collector ----------------------------------------------------------------------
TELEMETRY_COLLECTIONS: Final = "telemetry.collections"
TELEMETRY_COLLECTION_DURATION: Final = "telemetry.collection.duration"
TELEMETRY_COLLECTION_UP: Final = "telemetry.collection.up"
TELEMETRY_COLLECTION_ERRORS: Final = "telemetry.collection.errors"
TELEMETRY_COLLECTION_TIMEOUTS: Final = "telemetry.collection.timeouts"
TELEMETRY_COLLECTION_PROBLEMS: Final = "telemetry.collection.problems"
TELEMETRY_COLLECTION_SNAPSHOT_AGE: Final = "telemetry.collection.snapshot.age"

# -- metric names: the push exporters (one series per exporter, ``telemetry.exporter``) --------------
#: The exporter a ``telemetry.export.*`` point is about (its name: kind and destination).
TELEMETRY_EXPORTER: Final = "telemetry.exporter"
#: Why a batch was dropped (``age``, ``bytes``, ``count``, ``spool``, ``rejected``, ``encode``, ``shutdown``).
TELEMETRY_EXPORT_REASON: Final = "telemetry.export.reason"
TELEMETRY_EXPORT_SENT: Final = "telemetry.export.sent"
TELEMETRY_EXPORT_FAILED: Final = "telemetry.export.failed"
TELEMETRY_EXPORT_RETRIED: Final = "telemetry.export.retried"
TELEMETRY_EXPORT_LATE: Final = "telemetry.export.late"
TELEMETRY_EXPORT_DROPPED: Final = "telemetry.export.dropped"
TELEMETRY_EXPORT_DROPPED_DELTA: Final = "telemetry.export.dropped.delta"
TELEMETRY_EXPORT_QUEUE_LENGTH: Final = "telemetry.export.queue.length"
TELEMETRY_EXPORT_QUEUE_BYTES: Final = "telemetry.export.queue.bytes"
TELEMETRY_EXPORT_LAST_SUCCESS_AGE: Final = "telemetry.export.last_success.age"
