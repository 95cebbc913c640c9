"""``instrument_process``: the process and CPython runtime metrics of the conventions in one call."""

from __future__ import annotations

from telemetry_otel import Telemetry, current_telemetry

__all__ = ["instrument_process"]


def instrument_process(telemetry: Telemetry | None = None) -> bool:
    """Produce this process's metrics in every collection of ``telemetry`` (the shared runtime).

    ``process.cpu.time`` (per ``cpu.mode``), ``process.memory.usage``, ``process.memory.virtual``,
    ``process.thread.count``, ``process.open_file_descriptor.count``, ``process.context_switches``
    (per ``process.context_switch.type``) and ``cpython.gc.collections``/``collected_objects``/
    ``uncollectable_objects`` (per ``cpython.gc.generation``), read once per collection.
    ``setup_telemetry(process_metrics=True)`` (or ``TELEMETRY_OTEL_PROCESS_METRICS=true``) does the
    same. True when this call enabled them; False when they already were, or the SDK is disabled.
    """
    runtime = telemetry if telemetry is not None else current_telemetry()
    return runtime.enable_process_metrics()
