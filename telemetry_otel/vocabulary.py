"""The package's vocabulary: every metric name, attribute key and scope name it emits or reads.

Each name is spelled here once; the core, the instrumentation, the views and the catalog import it.
Names follow the OpenTelemetry conventions (dotted, lower case); the encoders turn them into each
backend's form (``service_requests_total`` for Prometheus, for example), so PromQL and dashboards
use those forms.
"""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

__all__ = [
    "AGENT_LABEL",
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
    "CIRCUIT_BREAKER_STATE",
    "COLLECTION_OUTCOME",
    "COLLECTOR_SCOPE_NAME",
    "COMPONENT_KIND",
    "COMPONENT_SNAPSHOT",
    "CPU_MODE",
    "CPYTHON_GC_COLLECTED_OBJECTS",
    "CPYTHON_GC_COLLECTIONS",
    "CPYTHON_GC_GENERATION",
    "CPYTHON_GC_UNCOLLECTABLE_OBJECTS",
    "ERROR_TYPE",
    "HEALTH_STATUS",
    "HTTP_DURATION_BUCKETS",
    "HTTP_KNOWN_METHODS",
    "HTTP_OTHER_METHOD",
    "HTTP_REQUEST_METHOD",
    "HTTP_RESPONSE_STATUS_CODE",
    "HTTP_ROUTE",
    "HTTP_SCOPE_NAME",
    "HTTP_SERVER_ACTIVE_REQUESTS",
    "HTTP_SERVER_REQUEST_DURATION",
    "INSTRUMENT_KINDS",
    "OVERFLOW",
    "PROCESS_CONTEXT_SWITCHES",
    "PROCESS_CONTEXT_SWITCH_TYPE",
    "PROCESS_CPU_TIME",
    "PROCESS_CPU_UTILIZATION",
    "PROCESS_MEMORY_USAGE",
    "PROCESS_MEMORY_VIRTUAL",
    "PROCESS_OPEN_FILE_DESCRIPTOR_COUNT",
    "PROCESS_PID",
    "PROCESS_SCOPE_NAME",
    "PROCESS_THREAD_COUNT",
    "REASON_SOURCE",
    "REASON_TEXT",
    "REASON_TEXT_MAX_CHARS",
    "REQUEST_DURATION_BUCKETS",
    "SERVICE_CATEGORY",
    "SERVICE_CIRCUIT_BREAKER_STATE",
    "SERVICE_ERRORS",
    "SERVICE_HEALTH",
    "SERVICE_INSTANCE_ID",
    "SERVICE_NAME",
    "SERVICE_QUEUE_DEPTH",
    "SERVICE_REQUESTS",
    "SERVICE_REQUEST_DURATION",
    "SERVICE_UPTIME",
    "SYSTEM_MEMORY_UTILIZATION",
    "TELEMETRY_COLLECTIONS",
    "TELEMETRY_COLLECTION_DURATION",
    "TELEMETRY_COLLECTION_ERRORS",
    "TELEMETRY_COLLECTION_OUTCOME",
    "TELEMETRY_COLLECTION_PROBLEMS",
    "TELEMETRY_COLLECTION_SNAPSHOT_AGE",
    "TELEMETRY_COLLECTION_SNAPSHOT_DURATION",
    "TELEMETRY_COLLECTION_TIMEOUTS",
    "TELEMETRY_COLLECTION_TIMESTAMP",
    "TELEMETRY_COLLECTION_UP",
    "TELEMETRY_COMPONENT_BUS",
    "TELEMETRY_COMPONENT_HEALTH",
    "TELEMETRY_COMPONENT_HEALTH_TIMESTAMP",
    "TELEMETRY_COMPONENT_INFO",
    "TELEMETRY_COMPONENT_REASON_TIMESTAMP",
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
    "URL_SCHEME",
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
#: Resource attribute of a worker's report to the host: the worker's process id (OTel conventions).
PROCESS_PID: Final = "process.pid"
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

# -- metric names: the process (OpenTelemetry semantic conventions, process and CPython) ---------------
PROCESS_SCOPE_NAME: Final = "telemetry_otel.process"
PROCESS_CPU_TIME: Final = "process.cpu.time"
PROCESS_MEMORY_USAGE: Final = "process.memory.usage"
PROCESS_MEMORY_VIRTUAL: Final = "process.memory.virtual"
PROCESS_THREAD_COUNT: Final = "process.thread.count"
PROCESS_OPEN_FILE_DESCRIPTOR_COUNT: Final = "process.open_file_descriptor.count"
PROCESS_CONTEXT_SWITCHES: Final = "process.context_switches"
CPYTHON_GC_COLLECTIONS: Final = "cpython.gc.collections"
CPYTHON_GC_COLLECTED_OBJECTS: Final = "cpython.gc.collected_objects"
CPYTHON_GC_UNCOLLECTABLE_OBJECTS: Final = "cpython.gc.uncollectable_objects"
#: ``process.cpu.time``'s CPU mode (``user``, ``system``).
CPU_MODE: Final = "cpu.mode"
#: ``process.context_switches``' kind (``voluntary``, ``involuntary``).
PROCESS_CONTEXT_SWITCH_TYPE: Final = "process.context_switch.type"
#: The garbage collector generation (0, 1, 2) of the ``cpython.gc.*`` series.
CPYTHON_GC_GENERATION: Final = "cpython.gc.generation"

# -- metric names and attributes: HTTP server (OpenTelemetry semantic conventions, stable) -----------
HTTP_SCOPE_NAME: Final = "telemetry_otel.http"
HTTP_SERVER_REQUEST_DURATION: Final = "http.server.request.duration"
HTTP_SERVER_ACTIVE_REQUESTS: Final = "http.server.active_requests"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
ERROR_TYPE: Final = "error.type"
URL_SCHEME: Final = "url.scheme"
#: Bucket boundaries (s) the HTTP semantic conventions advise for ``http.server.request.duration``.
HTTP_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: The methods the HTTP conventions know; any other is recorded as ``_OTHER``.
HTTP_KNOWN_METHODS: Final = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
HTTP_OTHER_METHOD: Final = "_OTHER"

# -- names the views' alerts and the generated Prometheus rules read (issue 21) ------------------------
#: A service's CPU use as a fraction of one CPU (a snapshot gauge, unit ``1``).
PROCESS_CPU_UTILIZATION: Final = "process.cpu.utilization"
#: The host's memory in use as a fraction (a snapshot gauge, unit ``1``).
SYSTEM_MEMORY_UTILIZATION: Final = "system.memory.utilization"
#: A service's circuit breaker: one series per ``circuit_breaker.state``, 1 for the current state.
SERVICE_CIRCUIT_BREAKER_STATE: Final = "service.circuit_breaker.state"
CIRCUIT_BREAKER_STATE: Final = "circuit_breaker.state"
#: Bucket boundaries (s) of ``service.request.duration`` (and of the bus histograms merged from it).
REQUEST_DURATION_BUCKETS: Final[tuple[float, ...]] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
# -- what a fleet reads from /metrics alone (docs/fleet.md) -------------------------------------------
#: The label every ``/metrics`` sample carries: the runtime's (agent's) resource ``service.name``.
AGENT_LABEL: Final = "agent"
#: A component's kind: ``service`` (it has a category) or ``provider`` (a bus-only provider).
COMPONENT_KIND: Final = "component.kind"
#: Whether a component has a snapshot function: ``true`` or ``false``.
COMPONENT_SNAPSHOT: Final = "component.snapshot"
#: How a component's snapshot went in the collection: ``ok``, ``error`` or ``timeout``.
COLLECTION_OUTCOME: Final = "collection.outcome"
TELEMETRY_COMPONENT_INFO: Final = "telemetry.component.info"
TELEMETRY_COMPONENT_BUS: Final = "telemetry.component.bus"
TELEMETRY_COMPONENT_HEALTH: Final = "telemetry.component.health"
TELEMETRY_COMPONENT_HEALTH_TIMESTAMP: Final = "telemetry.component.health.timestamp"
TELEMETRY_COLLECTION_OUTCOME: Final = "telemetry.collection.outcome"
TELEMETRY_COLLECTION_SNAPSHOT_DURATION: Final = "telemetry.collection.snapshot.duration"
TELEMETRY_COLLECTION_TIMESTAMP: Final = "telemetry.collection.timestamp"
#: A component's reason texts, one series per source (info-style, the text a label).
TELEMETRY_COMPONENT_REASON_TIMESTAMP: Final = "telemetry.component.reason.timestamp"
#: Where a reason text comes from: ``health``, ``snapshot.error``, ``.problems``, ``.unknown``.
REASON_SOURCE: Final = "reason.source"
#: The reason text itself (at most ``REASON_TEXT_MAX_CHARS`` characters; a list is joined by newlines).
REASON_TEXT: Final = "reason.text"
#: The longest ``reason.text`` a series carries; a longer text is cut and ends with an ellipsis.
REASON_TEXT_MAX_CHARS: Final = 512

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
