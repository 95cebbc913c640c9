"""Every snapshot metric the demo publishes: one definition per name, shared by all components.

The name says what is measured; which service, bus or provider measured it is carried by the
attributes the instrumentation adds (``service.name``, ``service.category``).
"""

from __future__ import annotations

from telemetry_otel.instrumentation import SnapshotMetric, counter, gauge

__all__ = [
    "AUDIT_EVENTS",
    "BREAKER_STATE",
    "CACHE_HITS",
    "CACHE_MISSES",
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

LLM_TOKENS_INPUT: SnapshotMetric = counter(
    "llm.tokens.input", "{token}", "Prompt tokens sent to language models since start."
)
LLM_TOKENS_OUTPUT: SnapshotMetric = counter(
    "llm.tokens.output", "{token}", "Completion tokens received from language models since start."
)
LLM_COST: SnapshotMetric = counter(
    "llm.cost", "{USD}", "Estimated spend on language-model calls since start."
)
BREAKER_STATE: SnapshotMetric = gauge(
    "service.circuit_breaker.state",
    "{state}",
    "Circuit-breaker state: 1 for the current circuit_breaker.state, 0 for the others.",
)
QUEUE_DEPTH: SnapshotMetric = gauge("service.queue.depth", "{item}", "Items waiting in the service's queue.")
CACHE_HITS: SnapshotMetric = counter(
    "service.cache.hits", "{request}", "Requests answered from the service's cache since start."
)
CACHE_MISSES: SnapshotMetric = counter(
    "service.cache.misses", "{request}", "Requests the service's cache could not answer since start."
)
GRAPH_NODES: SnapshotMetric = gauge("memory.graph.nodes", "{node}", "Nodes held in the memory graph.")
AUDIT_EVENTS: SnapshotMetric = counter("audit.events", "{event}", "Audit events written since start.")
TASKS_ACTIVE: SnapshotMetric = gauge("scheduler.tasks.active", "{task}", "Scheduled tasks currently running.")
SECRETS_ACCESSED: SnapshotMetric = counter(
    "secrets.accessed", "{access}", "Secret reads served since start (a count only, never the secret)."
)
INCIDENTS_ACTIVE: SnapshotMetric = gauge(
    "incidents.active", "{incident}", "Open incidents: components whose health was fail at the last tick."
)
PROCESS_CPU: SnapshotMetric = gauge(
    "process.cpu.utilization",
    "1",
    "CPU used by this process since the previous reading, as a fraction of one CPU "
    "(psutil cpu_percent / 100, so it may exceed 1 on several CPUs).",
)
PROCESS_MEMORY: SnapshotMetric = gauge("process.memory.usage", "By", "Resident memory of this process (RSS).")
PROCESS_VIRTUAL: SnapshotMetric = gauge(
    "process.memory.virtual", "By", "Virtual memory committed by this process (VMS)."
)
#: ``process.threads`` rather than the newer semconv ``process.thread.count``: Prometheus tools reject a
#: gauge whose exposed name ends in ``_count`` (promtool: 'non-histogram and non-summary metrics should
#: not have "_count" suffix'), and the server exposes these metrics in Prometheus text.
PROCESS_THREADS: SnapshotMetric = gauge("process.threads", "{thread}", "Threads of this process.")
SYSTEM_MEMORY: SnapshotMetric = gauge(
    "system.memory.utilization", "1", "Fraction of the host's physical memory in use."
)
