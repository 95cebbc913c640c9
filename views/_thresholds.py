"""Declarative alert thresholds, the alerts they raise, and the rules that compare values to them.

Every rule is named after the :class:`Thresholds` field that fires it, so an alert always says which
threshold it crossed (``rule="cpu_critical"``, ``threshold=0.9``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import psutil

__all__ = ["SEVERITIES", "Alert", "RuleSeverity", "Severity", "Thresholds"]

Severity: TypeAlias = Literal["warning", "critical"]
#: The severity a state rule (circuit breaker open, service down) raises; ``off`` disables it.
RuleSeverity: TypeAlias = Literal["warning", "critical", "off"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning")
_RULE_SEVERITIES: tuple[RuleSeverity, ...] = ("warning", "critical", "off")


def _host_cpus() -> int:
    return os.cpu_count() or 1


def _host_memory_bytes() -> int:
    return int(psutil.virtual_memory().total)


@dataclass(frozen=True)
class Alert:
    """One active alert: which component crossed which threshold, with the value that crossed it."""

    severity: Severity
    component: str
    rule: str
    value: float | None
    threshold: float | str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The alert as a JSON object."""
        return {
            "severity": self.severity,
            "component": self.component,
            "rule": self.rule,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
        }


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds and score objectives; every field can be overridden.

    Utilizations are fractions (0.75 = 75 %). A service's CPU is its ``process.cpu.utilization`` (a
    fraction of one CPU) divided by ``cpu_count`` (default: ``os.cpu_count()`` when the object is
    built), its memory ``system.memory.utilization``. The process's own CPU (component ``process``,
    with the process metrics enabled) is the rate of ``process.cpu.time`` divided by ``cpu_count``,
    its memory ``process.memory.usage`` divided by ``memory_limit_bytes`` (default: the host's
    physical memory when the object is built). The generated Prometheus rules read the same series
    with the same numbers (``telemetry-otel rules``, docs/alerts.md).
    """

    cpu_warn: float = 0.75
    cpu_critical: float = 0.90
    memory_warn: float = 0.75
    memory_critical: float = 0.90
    error_ratio_warn: float = 0.10
    min_requests: int = 20
    circuit_breaker_open: RuleSeverity = "critical"
    service_down: RuleSeverity = "critical"
    stale_after_seconds: float = 120.0
    latency_objective_seconds: float = 1.0
    cpu_count: int = field(default_factory=_host_cpus)
    memory_limit_bytes: int = field(default_factory=_host_memory_bytes)

    def __post_init__(self) -> None:
        for kind in ("cpu", "memory"):
            warn, critical = getattr(self, f"{kind}_warn"), getattr(self, f"{kind}_critical")
            _require(_is_number(warn) and 0 < warn < 1, f"{kind}_warn", "a number in (0, 1)", warn)
            _require(
                _is_number(critical) and warn <= critical <= 1,
                f"{kind}_critical",
                f"a number in [{kind}_warn, 1]",
                critical,
            )
        ratio = self.error_ratio_warn
        _require(_is_number(ratio) and 0 < ratio <= 1, "error_ratio_warn", "a number in (0, 1]", ratio)
        for key in ("stale_after_seconds", "latency_objective_seconds"):
            value = getattr(self, key)
            _require(_is_number(value) and value > 0, key, "a positive number", value)
        _require(
            _is_int(self.min_requests) and self.min_requests >= 0,
            "min_requests",
            "an integer >= 0",
            self.min_requests,
        )
        _require(
            _is_int(self.cpu_count) and self.cpu_count >= 1, "cpu_count", "an integer >= 1", self.cpu_count
        )
        _require(
            _is_int(self.memory_limit_bytes) and self.memory_limit_bytes >= 1,
            "memory_limit_bytes",
            "an integer >= 1",
            self.memory_limit_bytes,
        )
        for key in ("circuit_breaker_open", "service_down"):
            value = getattr(self, key)
            _require(value in _RULE_SEVERITIES, key, " | ".join(_RULE_SEVERITIES), value)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The names of every threshold, in declaration order."""
        return tuple(item.name for item in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> Thresholds:
        """Defaults overridden by ``values``; an unknown key or a bad value is a ``ValueError``."""
        allowed = cls.names()
        unknown = sorted(str(key) for key in values if key not in allowed)
        if unknown:
            names = ", ".join(map(repr, unknown))
            raise ValueError(f"unknown threshold key(s) {names}; allowed keys: {', '.join(allowed)}")
        arguments: dict[str, Any] = dict(values)
        return cls(**arguments)

    def as_dict(self) -> dict[str, float | int | str]:
        """Every threshold by name, as JSON can carry it."""
        return {key: getattr(self, key) for key in self.names()}

    # -- rules -------------------------------------------------------------------------------------

    def resource_alerts(self, component: str, cpu: float | None, memory: float | None) -> list[Alert]:
        """CPU (a fraction of the host) and memory at or above their warn/critical thresholds."""
        alerts: list[Alert] = []
        for kind, label, value in (("cpu", "CPU", cpu), ("memory", "memory", memory)):
            if value is None:
                continue
            warn, critical = getattr(self, f"{kind}_warn"), getattr(self, f"{kind}_critical")
            if value >= critical:
                severity: Severity = "critical"
                rule, threshold = f"{kind}_critical", critical
            elif value >= warn:
                severity, rule, threshold = "warning", f"{kind}_warn", warn
            else:
                continue
            message = f"{label} at {value:.0%} >= {rule} {threshold:.0%}"
            alerts.append(Alert(severity, component, rule, value, threshold, message))
        return alerts

    def error_ratio_alert(self, component: str, errors: float | None, requests: float | None) -> Alert | None:
        """A warning when ``errors / requests`` is above ``error_ratio_warn`` with enough requests."""
        if errors is None or requests is None or requests <= 0 or requests < self.min_requests:
            return None
        ratio = errors / requests
        if ratio <= self.error_ratio_warn:
            return None
        limit = self.error_ratio_warn
        message = f"error ratio {ratio:.1%} ({errors:g}/{requests:g}) > error_ratio_warn {limit:.0%}"
        return Alert("warning", component, "error_ratio_warn", ratio, self.error_ratio_warn, message)

    def breaker_alert(self, component: str, state: str | None) -> Alert | None:
        """An alert of severity ``circuit_breaker_open`` when the breaker is open."""
        severity = self.circuit_breaker_open
        if state != "open" or severity == "off":
            return None
        return Alert(severity, component, "circuit_breaker_open", None, "open", "circuit breaker open")

    def down_alert(self, component: str, reported: str | None, reason: str | None) -> Alert | None:
        """An alert of severity ``service_down`` when the service reports ``fail``."""
        severity = self.service_down
        if reported != "fail" or severity == "off":
            return None
        message = "service down" + (f": {reason}" if reason else "")
        return Alert(severity, component, "service_down", None, "fail", message)

    def stale_alert(self, component: str, age_seconds: float | None) -> Alert | None:
        """A warning when the last successful snapshot is older than ``stale_after_seconds``."""
        if age_seconds is None or age_seconds <= self.stale_after_seconds:
            return None
        limit = self.stale_after_seconds
        message = f"data stale: last good snapshot {age_seconds:.0f} s ago > stale_after_seconds {limit:g}"
        return Alert(
            "warning", component, "stale_after_seconds", age_seconds, self.stale_after_seconds, message
        )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require(ok: bool, key: str, expected: str, value: object) -> None:
    if not ok:
        raise ValueError(f"threshold {key}={value!r} is invalid: expected {expected}")
