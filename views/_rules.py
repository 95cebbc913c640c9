"""Prometheus alerting and recording rules generated from the views' :class:`Thresholds`.

One source of truth: every rule compares the same series the in-process alerts read with the same
threshold, in the same way (``>=`` for CPU and memory, a warning only below the critical threshold,
``>`` for the error ratio and stale data), so Prometheus and the view raise the same alerts for the
same values (``tests/views/test_rules_agreement.py`` proves it with ``promtool``). What differs:

* the rules carry ``for:`` (the in-process alerts have none: a view judges one collection), so an
  alert fires in Prometheus only once its condition has held that long;
* the process CPU is the ``rate()`` of ``process.cpu.time`` over ``rate_window`` in Prometheus, over
  the interval between two collections in the view.

Every expression keeps ``job`` and ``instance``: two runtimes scraped by one Prometheus never merge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from telemetry_otel.views._process import PROCESS_COMPONENT
from telemetry_otel.views._promql import (
    BREAKER_LABEL,
    BY_INSTANCE,
    BY_SERVICE,
    CATEGORY_LABEL,
    HEALTH_LABEL,
    SERVICE_LABEL,
    format_duration,
    series,
)
from telemetry_otel.views._thresholds import Thresholds
from telemetry_otel.vocabulary import (
    PROCESS_CPU_TIME,
    PROCESS_CPU_UTILIZATION,
    PROCESS_MEMORY_USAGE,
    SERVICE_CIRCUIT_BREAKER_STATE,
    SERVICE_ERRORS,
    SERVICE_HEALTH,
    SERVICE_REQUESTS,
    SERVICE_UPTIME,
    SYSTEM_MEMORY_UTILIZATION,
    TELEMETRY_COLLECTION_SNAPSHOT_AGE,
)

__all__ = [
    "ALERT_NAMES",
    "DEFAULT_FOR_SECONDS",
    "DEFAULT_RUNBOOK_URL",
    "RULE_PREFIX",
    "RuleOptions",
    "threshold_groups",
]

#: Prefix of every alert name.
RULE_PREFIX: Final = "TelemetryOtel"
#: Where the runbook links point by default: the alerts page of the docs (one section per alert).
DEFAULT_RUNBOOK_URL: Final = "docs/alerts.md"
#: How long each kind of condition must hold before its alert fires (overridden by ``--for``).
DEFAULT_FOR_SECONDS: Final[dict[str, float]] = {
    "resources": 300.0,
    "error_ratio": 300.0,
    "circuit_breaker_open": 60.0,
    "service_down": 60.0,
    "stale": 60.0,
}
#: The rate window of the process CPU and of the dashboards' error ratio.
DEFAULT_RATE_WINDOW_SECONDS: Final = 300.0
_RESOURCES = (("cpu", "Cpu", "CPU"), ("memory", "Memory", "memory"))
#: Every alert name :func:`threshold_groups` can generate (the docs have a section for each).
ALERT_NAMES: Final[tuple[str, ...]] = (
    *(f"{RULE_PREFIX}{scope}{kind}{level}" for scope in ("", "Process") for _, kind, _ in _RESOURCES
      for level in ("Warn", "Critical")),
    f"{RULE_PREFIX}ErrorRatio",
    f"{RULE_PREFIX}RuntimeErrorRatio",
    f"{RULE_PREFIX}CircuitBreakerOpen",
    f"{RULE_PREFIX}ServiceDown",
    f"{RULE_PREFIX}SnapshotStale",
)  # fmt: skip
_SERVICES: Final = f'{CATEGORY_LABEL}!=""'  # runtime services; bus-only providers raise no alerts


@dataclass(frozen=True)
class RuleOptions:
    """How the rules are written: ``for_seconds`` (None: :data:`DEFAULT_FOR_SECONDS`), the rate
    window, and the base URL of the runbook (the alerts page, to which ``#<alert>`` is added)."""

    for_seconds: float | None = None
    rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS
    runbook_url: str = DEFAULT_RUNBOOK_URL

    def hold(self, kind: str) -> str:
        return format_duration(DEFAULT_FOR_SECONDS[kind] if self.for_seconds is None else self.for_seconds)


# -- recording rules -----------------------------------------------------------------------------------
SERVICE_CPU: Final = "service:telemetry_otel_cpu_utilization:ratio"
SERVICE_MEMORY: Final = "service:telemetry_otel_memory_utilization:ratio"
SERVICE_REQUESTS_TOTAL: Final = "service:telemetry_otel_requests:total"
SERVICE_ERROR_RATIO: Final = "service:telemetry_otel_error_ratio:total"
RUNTIME_REQUESTS_TOTAL: Final = "instance:telemetry_otel_requests:total"
RUNTIME_ERROR_RATIO: Final = "instance:telemetry_otel_error_ratio:total"
PROCESS_CPU: Final = "instance:telemetry_otel_process_cpu_utilization:ratio_rate"
PROCESS_MEMORY: Final = "instance:telemetry_otel_process_memory_utilization:ratio"
SERVICE_ERROR_RATE_RATIO: Final = "service:telemetry_otel_error_ratio:ratio_rate"


def _recording(thresholds: Thresholds, options: RuleOptions) -> list[dict[str, Any]]:
    window = format_duration(options.rate_window_seconds)
    requests, errors = series(SERVICE_REQUESTS), series(SERVICE_ERRORS)
    return [
        {
            "record": SERVICE_CPU,
            "expr": f"max by ({BY_SERVICE}) ({series(PROCESS_CPU_UTILIZATION)}{{{_SERVICES}}})"
            f" / {thresholds.cpu_count}",
        },
        {
            "record": SERVICE_MEMORY,
            "expr": f"max by ({BY_SERVICE}) ({series(SYSTEM_MEMORY_UTILIZATION)}{{{_SERVICES}}})",
        },
        {"record": SERVICE_REQUESTS_TOTAL, "expr": f"sum by ({BY_SERVICE}) ({requests}{{{_SERVICES}}})"},
        {
            "record": SERVICE_ERROR_RATIO,
            "expr": f"sum by ({BY_SERVICE}) ({errors}{{{_SERVICES}}}) / {SERVICE_REQUESTS_TOTAL}",
        },
        {"record": RUNTIME_REQUESTS_TOTAL, "expr": f"sum by ({BY_INSTANCE}) ({requests}{{{_SERVICES}}})"},
        {
            "record": RUNTIME_ERROR_RATIO,
            "expr": f"sum by ({BY_INSTANCE}) ({errors}{{{_SERVICES}}}) / {RUNTIME_REQUESTS_TOTAL}",
        },
        {
            "record": PROCESS_CPU + window,
            "expr": f"sum by ({BY_INSTANCE}) (rate({series(PROCESS_CPU_TIME)}[{window}]))"
            f" / {thresholds.cpu_count}",
        },
        {
            "record": PROCESS_MEMORY,
            "expr": f"sum by ({BY_INSTANCE}) ({series(PROCESS_MEMORY_USAGE)})"
            f" / {thresholds.memory_limit_bytes}",
        },
        {  # for dashboards: the error ratio of the last window (the alert reads the cumulative one)
            "record": SERVICE_ERROR_RATE_RATIO + window,
            "expr": f"sum by ({BY_SERVICE}) (rate({errors}{{{_SERVICES}}}[{window}]))"
            f" / sum by ({BY_SERVICE}) (rate({requests}{{{_SERVICES}}}[{window}]))",
        },
    ]


# -- alerting rules ------------------------------------------------------------------------------------
def _alert(
    name: str,
    expr: str,
    hold: str,
    severity: str,
    rule: str,
    summary: str,
    description: str,
    options: RuleOptions,
    component: str | None = None,
) -> dict[str, Any]:
    labels = {"severity": severity, "rule": rule}
    if component is not None:
        labels["component"] = component
    return {
        "alert": name,
        "expr": expr,
        "for": hold,
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{options.runbook_url}#{name.lower()}",
        },
    }


def _resource_alerts(thresholds: Thresholds, options: RuleOptions) -> list[dict[str, Any]]:
    window = format_duration(options.rate_window_seconds)
    alerts = []
    where = {
        "cpu": (SERVICE_CPU, PROCESS_CPU + window),
        "memory": (SERVICE_MEMORY, PROCESS_MEMORY),
    }
    reads = {
        "cpu": (
            f"{PROCESS_CPU_UTILIZATION} / cpu_count {thresholds.cpu_count}",
            f"rate({PROCESS_CPU_TIME}[{window}]) / cpu_count {thresholds.cpu_count}",
        ),
        "memory": (
            SYSTEM_MEMORY_UTILIZATION,
            f"{PROCESS_MEMORY_USAGE} / memory_limit_bytes {thresholds.memory_limit_bytes}",
        ),
    }
    for kind, title, word in _RESOURCES:
        warn, critical = getattr(thresholds, f"{kind}_warn"), getattr(thresholds, f"{kind}_critical")
        for scope, record, read in (
            ("", where[kind][0], reads[kind][0]),
            ("Process", where[kind][1], reads[kind][1]),
        ):
            who = f"{{{{ $labels.{SERVICE_LABEL} }}}}" if not scope else "the process"
            component = PROCESS_COMPONENT if scope else None
            for level, severity, limit, expr in (
                # A warning only below the critical threshold, as in the view: one alert per value.
                ("Warn", "warning", warn, f"{record} >= {warn} < {critical}"),
                ("Critical", "critical", critical, f"{record} >= {critical}"),
            ):
                rule = f"{kind}_{level.lower()}"
                alerts.append(
                    _alert(
                        f"{RULE_PREFIX}{scope}{title}{level}",
                        expr,
                        options.hold("resources"),
                        severity,
                        rule,
                        f"{word} of {who} at {{{{ $value | humanizePercentage }}}} >= {rule} {limit:.0%}",
                        f"{word} ({read}) of {who} on {{{{ $labels.instance }}}} is at or above the "
                        f"{rule} threshold {limit:g} (set with --threshold {rule}=...).",
                        options,
                        component,
                    )
                )
    return alerts


def _other_alerts(thresholds: Thresholds, options: RuleOptions) -> list[dict[str, Any]]:
    limit, least = thresholds.error_ratio_warn, thresholds.min_requests
    who = f"{{{{ $labels.{SERVICE_LABEL} }}}}"
    alerts = [
        _alert(
            f"{RULE_PREFIX}ErrorRatio",
            f"{SERVICE_ERROR_RATIO} > {limit} and {SERVICE_REQUESTS_TOTAL} >= {least} > 0",
            options.hold("error_ratio"),
            "warning",
            "error_ratio_warn",
            f"error ratio of {who} at {{{{ $value | humanizePercentage }}}} > error_ratio_warn {limit:.0%}",
            f"{SERVICE_ERRORS} / {SERVICE_REQUESTS} of {who} since it started is above error_ratio_warn "
            f"{limit:g}, with at least min_requests {least} requests.",
            options,
        ),
        _alert(
            f"{RULE_PREFIX}RuntimeErrorRatio",
            f"{RUNTIME_ERROR_RATIO} > {limit} and {RUNTIME_REQUESTS_TOTAL} >= {least} > 0",
            options.hold("error_ratio"),
            "warning",
            "error_ratio_warn",
            f"error ratio of the runtime at {{{{ $value | humanizePercentage }}}}"
            f" > error_ratio_warn {limit:.0%}",
            f"All services' {SERVICE_ERRORS} / {SERVICE_REQUESTS} on {{{{ $labels.instance }}}} is above "
            f"error_ratio_warn {limit:g}, with at least min_requests {least} requests.",
            options,
            "runtime",
        ),
    ]
    if thresholds.circuit_breaker_open != "off":
        alerts.append(
            _alert(
                f"{RULE_PREFIX}CircuitBreakerOpen",
                f"max by ({BY_SERVICE}) "
                f'({series(SERVICE_CIRCUIT_BREAKER_STATE)}{{{_SERVICES},{BREAKER_LABEL}="open"}}) == 1',
                options.hold("circuit_breaker_open"),
                thresholds.circuit_breaker_open,
                "circuit_breaker_open",
                f"circuit breaker of {who} open (circuit_breaker_open)",
                f"The circuit breaker of {who} is open: it rejects requests (circuit_breaker_open).",
                options,
            )
        )
    if thresholds.service_down != "off":
        alerts.append(
            _alert(
                f"{RULE_PREFIX}ServiceDown",
                f'max by ({BY_SERVICE}) ({series(SERVICE_HEALTH)}{{{_SERVICES},{HEALTH_LABEL}="fail"}}) == 1',
                options.hold("service_down"),
                thresholds.service_down,
                "service_down",
                f"{who} reports fail (service_down)",
                f"{who} reports its health as fail (service_down); its reason is in the views.",
                options,
            )
        )
    stale = thresholds.stale_after_seconds
    uptime = f"{series(SERVICE_UPTIME)}{{{_SERVICES}}}"
    alerts.append(
        _alert(
            f"{RULE_PREFIX}SnapshotStale",
            f"max by (job, instance, {SERVICE_LABEL}) ({series(TELEMETRY_COLLECTION_SNAPSHOT_AGE)}) > {stale}"
            f" and on (job, instance, {SERVICE_LABEL}) {uptime}",
            options.hold("stale"),
            "warning",
            "stale_after_seconds",
            f"data of {who} stale for {{{{ $value | humanizeDuration }}}} > stale_after_seconds {stale:g}",
            f"The last good snapshot of {who} is older than stale_after_seconds {stale:g} s: its snapshot "
            "function fails or times out.",
            options,
        )
    )
    return alerts


def threshold_groups(thresholds: Thresholds, options: RuleOptions | None = None) -> list[dict[str, Any]]:
    """The rule groups of ``thresholds``: recording rules first, then the alerts that read them."""
    options = options or RuleOptions()
    rules = _recording(thresholds, options) + _resource_alerts(thresholds, options)
    rules += _other_alerts(thresholds, options)
    return [{"name": "telemetry-otel.thresholds", "rules": rules}]
