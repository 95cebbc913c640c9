"""Every snapshot metric the demo publishes: one definition per name, shared by all components.

Names and kinds are fixed here; units and descriptions come from the demo's catalog
(``catalog.yaml`` next to this module, see docs/catalog.md), so each metric is defined in one place.
The name says what is measured; which service, bus or provider measured it is carried by the
attributes the instrumentation adds (``service.name``, ``service.category``).
"""

from __future__ import annotations

from telemetry_otel.catalog import Catalog, demo_catalog
from telemetry_otel.instrumentation import SnapshotMetric, from_catalog
from telemetry_otel.vocabulary import SERVICE_QUEUE_DEPTH

__all__ = [
    "AUDIT_EVENTS",
    "BREAKER_STATE",
    "CACHE_HITS",
    "CACHE_MISSES",
    "CATALOG",
    "GRAPH_NODES",
    "INCIDENTS_ACTIVE",
    "LLM_COST",
    "LLM_TOKENS_INPUT",
    "LLM_TOKENS_OUTPUT",
    "PROCESS_CPU",
    "PROCESS_MEMORY",
    "PROCESS_THREADS",
    "PROCESS_VIRTUAL",
    "QUEUE_DEPTH",
    "SECRETS_ACCESSED",
    "SYSTEM_MEMORY",
    "TASKS_ACTIVE",
]

#: The demo's catalog, shipped in this package (``importlib.resources``).
CATALOG: Catalog = demo_catalog()

LLM_TOKENS_INPUT: SnapshotMetric = from_catalog(CATALOG, "llm.tokens.input")
LLM_TOKENS_OUTPUT: SnapshotMetric = from_catalog(CATALOG, "llm.tokens.output")
LLM_COST: SnapshotMetric = from_catalog(CATALOG, "llm.cost")
#: 1 for the current ``circuit_breaker.state``, 0 for the others.
BREAKER_STATE: SnapshotMetric = from_catalog(CATALOG, "service.circuit_breaker.state")
QUEUE_DEPTH: SnapshotMetric = from_catalog(CATALOG, SERVICE_QUEUE_DEPTH)
CACHE_HITS: SnapshotMetric = from_catalog(CATALOG, "service.cache.hits")
CACHE_MISSES: SnapshotMetric = from_catalog(CATALOG, "service.cache.misses")
GRAPH_NODES: SnapshotMetric = from_catalog(CATALOG, "memory.graph.nodes")
AUDIT_EVENTS: SnapshotMetric = from_catalog(CATALOG, "audit.events")
TASKS_ACTIVE: SnapshotMetric = from_catalog(CATALOG, "scheduler.tasks.active")
SECRETS_ACCESSED: SnapshotMetric = from_catalog(CATALOG, "secrets.accessed")
INCIDENTS_ACTIVE: SnapshotMetric = from_catalog(CATALOG, "incidents.active")
#: A fraction of ONE CPU (psutil cpu_percent / 100), so it may exceed 1 on several CPUs.
PROCESS_CPU: SnapshotMetric = from_catalog(CATALOG, "process.cpu.utilization")
PROCESS_MEMORY: SnapshotMetric = from_catalog(CATALOG, "process.memory.usage")
PROCESS_VIRTUAL: SnapshotMetric = from_catalog(CATALOG, "process.memory.virtual")
#: ``process.threads`` rather than the newer semconv ``process.thread.count``: Prometheus tools reject a
#: gauge whose exposed name ends in ``_count`` (promtool: 'non-histogram and non-summary metrics should
#: not have "_count" suffix'), and the server exposes these metrics in Prometheus text.
PROCESS_THREADS: SnapshotMetric = from_catalog(CATALOG, "process.threads")
SYSTEM_MEMORY: SnapshotMetric = from_catalog(CATALOG, "system.memory.utilization")
