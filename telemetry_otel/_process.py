"""Process and CPython runtime metrics of the OpenTelemetry semantic conventions, read once per collection.

A :class:`ProcessMetrics` producer reads this process (``psutil``, in one ``oneshot``) and the
garbage collector (``gc.get_stats()``) when a collection reads the SDK, and produces:

- ``process.cpu.time`` (counter, ``s``, per ``cpu.mode``: user, system)
- ``process.memory.usage`` (updowncounter, ``By``: the resident set size)
- ``process.memory.virtual`` (updowncounter, ``By``)
- ``process.thread.count`` (updowncounter, ``{thread}``)
- ``process.open_file_descriptor.count`` (updowncounter, ``{file_descriptor}``)
- ``process.context_switches`` (counter, ``{context_switch}``, per ``process.context_switch.type``)
- ``cpython.gc.collections`` (counter, ``{collection}``), ``cpython.gc.collected_objects`` and
  ``cpython.gc.uncollectable_objects`` (counters, ``{object}``), each per ``cpython.gc.generation``

Counters are cumulative from the process's start (their start time is the process's creation
time). A reading the platform cannot give (no file descriptors on Windows, a ``psutil`` error) is
left out of that collection and logged once: unknown, never 0.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psutil
from opentelemetry.sdk.metrics.export import AggregationTemporality, Metric, NumberDataPoint, Sum
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from telemetry_otel._version import __version__
from telemetry_otel.vocabulary import (
    CPU_MODE,
    CPYTHON_GC_COLLECTED_OBJECTS,
    CPYTHON_GC_COLLECTIONS,
    CPYTHON_GC_GENERATION,
    CPYTHON_GC_UNCOLLECTABLE_OBJECTS,
    PROCESS_CONTEXT_SWITCH_TYPE,
    PROCESS_CONTEXT_SWITCHES,
    PROCESS_CPU_TIME,
    PROCESS_MEMORY_USAGE,
    PROCESS_MEMORY_VIRTUAL,
    PROCESS_OPEN_FILE_DESCRIPTOR_COUNT,
    PROCESS_SCOPE_NAME,
    PROCESS_THREAD_COUNT,
)

__all__ = ["PROCESS_METRICS", "ProcessMetrics"]

_logger = logging.getLogger("telemetry_otel")

#: name -> (unit, description, monotonic): every metric :class:`ProcessMetrics` produces.
PROCESS_METRICS: dict[str, tuple[str, str, bool]] = {
    PROCESS_CPU_TIME: ("s", "Total CPU seconds broken down by CPU mode.", True),
    PROCESS_MEMORY_USAGE: ("By", "The amount of physical memory in use (resident set size).", False),
    PROCESS_MEMORY_VIRTUAL: ("By", "The amount of committed virtual memory.", False),
    PROCESS_THREAD_COUNT: ("{thread}", "Process threads count.", False),
    PROCESS_OPEN_FILE_DESCRIPTOR_COUNT: ("{file_descriptor}", "Number of file descriptors in use.", False),
    PROCESS_CONTEXT_SWITCHES: (
        "{context_switch}",
        "Number of times the process has been context switched.",
        True,
    ),
    CPYTHON_GC_COLLECTIONS: (
        "{collection}",
        "The number of times a generation was collected since interpreter start.",
        True,
    ),
    CPYTHON_GC_COLLECTED_OBJECTS: (
        "{object}",
        "The total number of objects collected inside a generation since interpreter start.",
        True,
    ),
    CPYTHON_GC_UNCOLLECTABLE_OBJECTS: (
        "{object}",
        "The total number of objects found uncollectable inside a generation since interpreter start.",
        True,
    ),
}

_Values = list[tuple[dict[str, Any], float]]


class ProcessMetrics:
    """A metric producer of this process's CPU, memory, threads, descriptors, switches and GC."""

    def __init__(self) -> None:
        self._scope = InstrumentationScope(PROCESS_SCOPE_NAME, __version__, None, None)
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self._start_unix_nano = int(self._process.create_time() * 1e9)
        self._failed: set[str] = set()  # readings that failed once: logged once each

    @property
    def scope(self) -> InstrumentationScope:
        """The instrumentation scope of the produced metrics."""
        return self._scope

    def reset_after_fork(self) -> None:
        """A forked child measures itself, not its parent: its own process, start time and lock."""
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self._start_unix_nano = int(self._process.create_time() * 1e9)
        self._failed = set()

    def read(self) -> dict[str, _Values]:
        """This process now: metric name -> (attributes, value) for every reading it could take."""
        values: dict[str, _Values] = {}
        process = self._process
        with self._lock, process.oneshot():
            self._take(values, PROCESS_CPU_TIME, lambda: _cpu(process.cpu_times()))
            self._take(values, PROCESS_MEMORY_USAGE, lambda: [({}, float(process.memory_info().rss))])
            self._take(values, PROCESS_MEMORY_VIRTUAL, lambda: [({}, float(process.memory_info().vms))])
            self._take(values, PROCESS_THREAD_COUNT, lambda: [({}, float(process.num_threads()))])
            self._take(values, PROCESS_OPEN_FILE_DESCRIPTOR_COUNT, lambda: [({}, float(process.num_fds()))])
            self._take(values, PROCESS_CONTEXT_SWITCHES, lambda: _switches(process.num_ctx_switches()))
        stats = gc.get_stats()
        for name, key in (
            (CPYTHON_GC_COLLECTIONS, "collections"),
            (CPYTHON_GC_COLLECTED_OBJECTS, "collected"),
            (CPYTHON_GC_UNCOLLECTABLE_OBJECTS, "uncollectable"),
        ):
            values[name] = [
                ({CPYTHON_GC_GENERATION: generation}, float(stat[key]))
                for generation, stat in enumerate(stats)
            ]
        return values

    def _take(self, values: dict[str, _Values], name: str, reading: Callable[[], _Values]) -> None:
        try:
            values[name] = reading()
        except (psutil.Error, OSError, AttributeError) as error:  # AttributeError: num_fds on Windows
            if name not in self._failed:
                self._failed.add(name)
                _logger.warning("process metric %s cannot be read here, left out: %s", name, error)

    def produce(self, time_unix_nano: int) -> Iterable[Metric]:
        """The process metrics as cumulative SDK ``Sum`` metrics, read now."""
        metrics: list[Metric] = []
        for name, readings in self.read().items():
            unit, description, monotonic = PROCESS_METRICS[name]
            points = [
                NumberDataPoint(attributes, self._start_unix_nano, time_unix_nano, _number(value, name))
                for attributes, value in readings
            ]
            data = Sum(points, AggregationTemporality.CUMULATIVE, is_monotonic=monotonic)
            metrics.append(Metric(name=name, description=description, unit=unit, data=data))
        return metrics


def _number(value: float, name: str) -> float | int:
    """Seconds stay floats; counts are integers, as the SDK would record them."""
    return value if name == PROCESS_CPU_TIME else int(value)


def _cpu(times: Any) -> _Values:
    return [({CPU_MODE: "user"}, float(times.user)), ({CPU_MODE: "system"}, float(times.system))]


def _switches(switches: Sequence[int]) -> _Values:
    voluntary, involuntary = switches[0], switches[1]
    return [
        ({PROCESS_CONTEXT_SWITCH_TYPE: "voluntary"}, float(voluntary)),
        ({PROCESS_CONTEXT_SWITCH_TYPE: "involuntary"}, float(involuntary)),
    ]
