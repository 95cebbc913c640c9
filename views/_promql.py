"""What the generated Prometheus rules share: the names of the series they read, durations, labels.

Every series name comes from the encoders' own naming (``telemetry_otel.formats.prometheus_metric_name``)
applied to the vocabulary name, unit and instrument of the metric, so a rule reads exactly what
``/metrics`` exposes (``service.requests`` in ``{request}`` -> ``service_requests_total``).
"""

from __future__ import annotations

import math
import re
from typing import Final

from telemetry_otel.formats import prometheus_label_name, prometheus_metric_name
from telemetry_otel.vocabulary import (
    BUS_FAILURES,
    BUS_NAME,
    BUS_REQUEST_DURATION,
    BUS_REQUESTS,
    CIRCUIT_BREAKER_STATE,
    HEALTH_STATUS,
    PROCESS_CPU_TIME,
    PROCESS_CPU_UTILIZATION,
    PROCESS_MEMORY_USAGE,
    SERVICE_CATEGORY,
    SERVICE_CIRCUIT_BREAKER_STATE,
    SERVICE_ERRORS,
    SERVICE_HEALTH,
    SERVICE_NAME,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
    SERVICE_UPTIME,
    SYSTEM_MEMORY_UTILIZATION,
    TELEMETRY_COLLECTION_SNAPSHOT_AGE,
    InstrumentKind,
)

__all__ = [
    "BY_INSTANCE",
    "BY_SERVICE",
    "READS",
    "format_duration",
    "label",
    "parse_duration",
    "series",
]

#: Every metric the rules read: name -> (unit, instrument), as the runtime emits it.
READS: Final[dict[str, tuple[str, InstrumentKind]]] = {
    SERVICE_REQUESTS: ("{request}", "counter"),
    SERVICE_ERRORS: ("{error}", "counter"),
    SERVICE_REQUEST_DURATION: ("s", "histogram"),
    SERVICE_HEALTH: ("{status}", "gauge"),
    SERVICE_UPTIME: ("s", "gauge"),
    SERVICE_CIRCUIT_BREAKER_STATE: ("{state}", "gauge"),
    PROCESS_CPU_UTILIZATION: ("1", "gauge"),
    SYSTEM_MEMORY_UTILIZATION: ("1", "gauge"),
    TELEMETRY_COLLECTION_SNAPSHOT_AGE: ("s", "gauge"),
    PROCESS_CPU_TIME: ("s", "counter"),
    PROCESS_MEMORY_USAGE: ("By", "updowncounter"),
    BUS_REQUESTS: ("{request}", "counter"),
    BUS_FAILURES: ("{error}", "counter"),
    BUS_REQUEST_DURATION: ("s", "histogram"),
}


def series(name: str) -> str:
    """The Prometheus name of the metric ``name`` (one of :data:`READS`)."""
    unit, instrument = READS[name]
    return prometheus_metric_name(name, unit, instrument)


def label(key: str) -> str:
    """The Prometheus label name of the attribute ``key``."""
    return prometheus_label_name(key)


#: The labels that keep one runtime's alerts apart from another's: the scrape's job and instance.
BY_INSTANCE: Final = "job, instance"
#: ... and one service of that runtime.
BY_SERVICE: Final = f"job, instance, {label(SERVICE_NAME)}, {label(SERVICE_CATEGORY)}"
#: Label names used in selectors.
SERVICE_LABEL: Final = label(SERVICE_NAME)
CATEGORY_LABEL: Final = label(SERVICE_CATEGORY)
BUS_LABEL: Final = label(BUS_NAME)
HEALTH_LABEL: Final = label(HEALTH_STATUS)
BREAKER_LABEL: Final = label(CIRCUIT_BREAKER_STATE)

_UNITS: Final = (("w", 604800.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001))
_SECONDS: Final = {unit: seconds for unit, seconds in _UNITS} | {"y": 31536000.0}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration (``30s``, ``5m``, ``1h30m``, ``28d``); ValueError otherwise."""
    text = text.strip()
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position:
            break
        total += int(match.group(1)) * _SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise ValueError(
            f"{text!r} is not a duration (a number and a unit: ms, s, m, h, d, w, y; e.g. 5m, 1h30m)"
        )
    return total


def format_duration(seconds: float) -> str:
    """A Prometheus duration for ``seconds`` (rounded to the millisecond): ``300`` -> ``5m``."""
    millis = round(seconds * 1000)
    if millis <= 0 or not math.isfinite(seconds):
        return "0s"
    parts: list[str] = []
    for unit, size in _UNITS[1:]:  # days rather than weeks: 28d, as SLO periods are written
        count, millis = divmod(millis, round(size * 1000))
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
