"""The process itself, from the process metrics: its CPU use between two collections, its alerts.

The generated Prometheus rules read the same series (``process.cpu.time``, ``process.memory.usage``)
with the same thresholds, so both raise the same alerts (docs/alerts.md).
"""

from __future__ import annotations

from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._series import process_cpu_seconds, process_memory_bytes
from telemetry_otel.views._thresholds import Alert

__all__ = ["PROCESS_COMPONENT", "process_alerts", "process_cpu"]

#: The component name of the alerts about the process itself (its CPU and memory).
PROCESS_COMPONENT = "process"


def process_cpu(inputs: ViewInputs, interval: float | None) -> float | None:
    """The process's CPU use between the previous collection and this one, as a fraction of the host
    (``process.cpu.time`` over the interval and the CPU count); None without both readings."""
    if inputs.previous is None or interval is None:
        return None
    now, before = process_cpu_seconds(inputs.collection), process_cpu_seconds(inputs.previous)
    if now is None or before is None:
        return None
    return max(0.0, now - before) / interval / inputs.thresholds.cpu_count


def process_alerts(inputs: ViewInputs, cpu: float | None) -> list[Alert]:
    """CPU and memory alerts of the process (component ``process``): ``cpu`` from
    :func:`process_cpu`, memory as ``process.memory.usage`` over ``memory_limit_bytes``."""
    thresholds = inputs.thresholds
    memory = process_memory_bytes(inputs.collection)
    fraction = None if memory is None else memory / thresholds.memory_limit_bytes
    return thresholds.resource_alerts(PROCESS_COMPONENT, cpu, fraction)
