"""Real resource use of this process, measured with psutil for the ``resource_monitor`` service."""

from __future__ import annotations

import contextlib
import threading
import time

import psutil

from telemetry_otel import SnapshotValue
from telemetry_otel.instrumentation import SnapshotMetric
from telemetry_otel.instrumentation.demo._metrics import (
    PROCESS_CPU,
    PROCESS_MEMORY,
    PROCESS_THREADS,
    PROCESS_VIRTUAL,
    SYSTEM_MEMORY,
)

__all__ = ["MIN_CPU_INTERVAL", "ProcessResources"]

#: Shortest interval (seconds) a CPU reading may cover; shorter ones are mostly clock-tick noise.
MIN_CPU_INTERVAL = 0.2


class ProcessResources:
    """Measures this process (not simulated) each time :meth:`sample` is called.

    ``process.cpu.utilization`` is ``psutil.Process().cpu_percent(None) / 100``: CPU time used
    since the previous reading divided by the wall time between them, as a fraction of ONE CPU, so
    it ranges from 0 to the number of CPUs (the OTel convention also divides by the CPU count;
    this one does not). CPU time advances in clock ticks, so over a very short interval that ratio
    is noise (readings of 10 CPUs on a 2-CPU host): a reading is only taken once at least
    ``MIN_CPU_INTERVAL`` seconds have passed since the previous one; before that the previous
    reading is repeated, and before any reading the average since the process started is used.
    The value is capped at the number of CPUs. A reading psutil cannot take is left out, never
    reported as 0.
    """

    metrics: tuple[SnapshotMetric, ...] = (
        PROCESS_CPU,
        PROCESS_MEMORY,
        PROCESS_VIRTUAL,
        PROCESS_THREADS,
        SYSTEM_MEMORY,
    )

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._cpus = psutil.cpu_count() or 1
        self._cpu: float | None = None
        self._process.cpu_percent(None)  # the baseline of the first interval
        self._cpu_read_at = time.monotonic()

    def sample(self) -> dict[str, SnapshotValue]:
        """Read CPU, memory and threads of this process and the host's memory use now."""
        values: dict[str, SnapshotValue] = {}
        with self._lock, contextlib.suppress(psutil.Error), self._process.oneshot():
            values[PROCESS_CPU.name] = self._cpu_utilization()
            memory = self._process.memory_info()
            values[PROCESS_MEMORY.name] = memory.rss
            values[PROCESS_VIRTUAL.name] = memory.vms
            values[PROCESS_THREADS.name] = self._process.num_threads()
        with contextlib.suppress(psutil.Error, OSError):
            values[SYSTEM_MEMORY.name] = psutil.virtual_memory().percent / 100
        return values

    def _cpu_utilization(self) -> float:
        now = time.monotonic()
        if now - self._cpu_read_at >= MIN_CPU_INTERVAL:
            self._cpu = self._process.cpu_percent(None) / 100
            self._cpu_read_at = now
        cpu = self._cpu
        if cpu is None:  # no interval long enough yet: the average over the process's life
            times = self._process.cpu_times()
            lifetime = max(time.time() - self._process.create_time(), MIN_CPU_INTERVAL)
            cpu = (times.user + times.system) / lifetime
        return min(max(cpu, 0.0), float(self._cpus))
