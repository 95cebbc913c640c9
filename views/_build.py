"""Building the model from the view inputs: per-component state, the filter, the whole, the score.

Pure: no I/O and no clock (``now_unix_nano`` is an input). The rules are in ``docs/views.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

from telemetry_otel import Collection, ComponentRecord
from telemetry_otel.views._inputs import ViewInputs
from telemetry_otel.views._numbers import add, age, finite, largest
from telemetry_otel.views._process import process_alerts, process_cpu
from telemetry_otel.views._quantiles import merge_buckets
from telemetry_otel.views._series import Series, read_series
from telemetry_otel.views._state import (
    RANK,
    SCORE_WEIGHTS,
    STATUSES,
    BusState,
    CategoryState,
    ComponentState,
    Model,
    OverallStatus,
    ScoreInput,
    Status,
)
from telemetry_otel.views._thresholds import Alert, Thresholds
from telemetry_otel.vocabulary import (
    BUS_REQUEST_DURATION,
    BUS_REQUESTS,
    CIRCUIT_BREAKER_STATE,
    PROCESS_CPU_UTILIZATION,
    SERVICE_CIRCUIT_BREAKER_STATE,
    SERVICE_ERRORS,
    SERVICE_QUEUE_DEPTH,
    SERVICE_REQUEST_DURATION,
    SERVICE_REQUESTS,
    SERVICE_UPTIME,
    SYSTEM_MEMORY_UTILIZATION,
)

__all__ = ["build_model", "roll_up", "select", "status_counts"]


def build_model(inputs: ViewInputs) -> Model:
    """Read ``inputs`` into the model: per-component state, filter, runtime-wide numbers, score."""
    collection, thresholds, now = inputs.collection, inputs.thresholds, inputs.now_unix_nano
    series, bus_series = read_series(collection)
    previous_series, previous_buses = read_series(inputs.previous) if inputs.previous else ({}, {})
    interval = _interval(inputs)
    states = {
        component.name: _component_state(
            component,
            collection,
            series.get(component.name, Series()),
            previous_series.get(component.name) if inputs.previous else None,
            interval,
            thresholds,
            now,
        )
        for component in inputs.components
    }
    selected, selected_buses = select(inputs)
    services = tuple(state for name, state in states.items() if name in selected and state.is_service)
    buses = tuple(
        _bus_state(
            bus,
            inputs.buses[bus],
            states,
            bus_series.get(bus, Series()),
            previous_buses.get(bus) if inputs.previous else None,
            interval,
        )
        for bus in selected_buses
    )

    requests = add(state.requests for state in services)
    errors = add(state.errors for state in services)
    alerts = [alert for state in services for alert in state.alerts]
    if inputs.service is None:
        scope = "runtime" if inputs.category is None else f"category:{inputs.category}"
        scope_alert = thresholds.error_ratio_alert(scope, errors, requests)
        if scope_alert is not None:
            alerts.append(scope_alert)
    cpu_of_process = process_cpu(inputs, interval)
    if inputs.service is None and inputs.category is None:
        alerts.extend(process_alerts(inputs, cpu_of_process))
    alerts.sort(key=lambda alert: (alert.severity != "critical", alert.component, alert.rule))
    status, reason = _overall(services, alerts, inputs)
    latency = merge_buckets(state.latency for state in services if state.latency is not None)
    cpu = largest(state.cpu_utilization for state in services)
    if cpu is None:  # no service reports it: the process metrics, when enabled, do
        cpu = cpu_of_process
    memory = largest(state.memory_utilization for state in services)
    breakers = [state.circuit_breaker for state in services if state.circuit_breaker is not None]
    breakers_open = sum(state == "open" for state in breakers)
    rates = [state.request_rate for state in services if state.request_rate is not None]
    model = Model(
        inputs=inputs,
        services=services,
        buses=buses,
        categories=_categories(services),
        alerts=tuple(alerts),
        status=status,
        reason=reason,
        counts=status_counts(services),
        requests=requests,
        errors=errors,
        request_rate=math.fsum(rates) if rates and interval is not None else None,
        latency=latency,
        cpu_utilization=cpu,
        memory_utilization=memory,
        breakers_total=len(breakers),
        breakers_open=breakers_open,
        score=None,
        score_inputs=(),
        selected=selected,
    )
    score, score_inputs = _score(model)
    return dataclasses.replace(model, score=score, score_inputs=score_inputs)


def select(inputs: ViewInputs) -> tuple[frozenset[str], tuple[str, ...]]:
    """The components and buses the ``category``/``service`` filter selects.

    A component is selected when its category equals ``category`` and its name equals ``service``
    (an absent filter matches everything); a bus when there is no filter or one of its providers'
    components is selected.
    """
    selected = frozenset(
        component.name
        for component in inputs.components
        if (inputs.category is None or component.category == inputs.category)
        and (inputs.service is None or component.name == inputs.service)
    )
    unfiltered = inputs.category is None and inputs.service is None
    buses = tuple(
        bus
        for bus, providers in inputs.buses.items()
        if unfiltered or selected.intersection(providers.values())
    )
    return selected, buses


def _interval(inputs: ViewInputs) -> float | None:
    """Seconds between the previous collection and this one; None without a usable previous one."""
    if inputs.previous is None:
        return None
    seconds = (inputs.collection.time_unix_nano - inputs.previous.time_unix_nano) / 1e9
    return seconds if seconds > 0 else None


def _component_state(
    component: ComponentRecord,
    collection: Collection,
    series: Series,
    previous: Series | None,
    interval: float | None,
    thresholds: Thresholds,
    now: int,
) -> ComponentState:
    outcome = collection.outcomes.get(component.name)
    has_snapshot = component.has_snapshot or (outcome is not None and outcome.outcome != "none")
    last_success = None if outcome is None else outcome.last_success_unix_nano
    last_success_age = age(now, last_success) if has_snapshot else None
    report = component.health
    requests = series.plain(SERVICE_REQUESTS)
    errors = series.plain(SERVICE_ERRORS)
    cpu = series.largest(PROCESS_CPU_UTILIZATION)
    cpu_host = None if cpu is None else cpu / thresholds.cpu_count
    memory = series.largest(SYSTEM_MEMORY_UTILIZATION)
    breaker = series.state(SERVICE_CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_STATE)

    alerts: list[Alert] = []
    if component.category is not None:  # alerts are raised for runtime services only
        alerts.extend(thresholds.resource_alerts(component.name, cpu_host, memory))
        candidates = (
            thresholds.error_ratio_alert(component.name, errors, requests),
            thresholds.breaker_alert(component.name, breaker),
            thresholds.down_alert(
                component.name, report.status if report else None, report.reason if report else None
            ),
            thresholds.stale_alert(component.name, last_success_age),
        )
        alerts.extend(alert for alert in candidates if alert is not None)

    # Values the snapshot returned but that were dropped: the service works, its numbers are partial.
    problems = [f"snapshot problem: {problem}" for problem in (() if outcome is None else outcome.problems)]
    status: Status
    if outcome is not None and outcome.outcome in ("error", "timeout"):
        status = "unknown"
        when = "never" if last_success_age is None else f"{last_success_age:.0f} s ago"
        reason: str | None = f"snapshot {outcome.outcome}: {outcome.error}; last success {when}"
    elif outcome is None and has_snapshot:
        status, reason = "unknown", "not in this collection"
    elif report is None:
        status, reason = "unknown", "; ".join(["no health reported", *problems])
    else:
        status = report.status
        for alert in alerts:
            worse: Status = "fail" if alert.severity == "critical" else "warn"
            if RANK[worse] > RANK[status]:
                status = worse
        if problems and RANK[status] < RANK["warn"]:
            status = "warn"
        reasons = [report.reason] if report.reason else []
        # A reported fail raises ``service_down``, whose message repeats the reported reason.
        reasons += [alert.message for alert in alerts if not (alert.rule == "service_down" and report.reason)]
        reason = "; ".join([*reasons, *problems]) or None

    return ComponentState(
        name=component.name,
        category=component.category,
        outcome=None if outcome is None else outcome.outcome,
        snapshot_error=None if outcome is None else outcome.error,
        snapshot_duration_seconds=None if outcome is None or not has_snapshot else outcome.duration_seconds,
        problems=() if outcome is None else tuple(outcome.problems),
        has_snapshot=has_snapshot,
        last_success_age_seconds=last_success_age,
        reported_status=None if report is None else report.status,
        reported_reason=None if report is None else report.reason,
        reported_age_seconds=None if report is None else age(now, report.time_unix_nano),
        status=status,
        reason=reason,
        alerts=tuple(alerts),
        uptime_seconds=series.largest(SERVICE_UPTIME),
        requests=requests,
        errors=errors,
        request_rate=_rate(
            requests, None if previous is None else previous.plain(SERVICE_REQUESTS), interval
        ),
        latency=series.latency(SERVICE_REQUEST_DURATION),
        queue_depth=series.total(SERVICE_QUEUE_DEPTH),
        cpu_utilization=cpu_host,
        memory_usage_bytes=series.largest("process.memory.usage"),
        memory_utilization=memory,
        circuit_breaker=breaker,
        tokens_input=series.total("llm.tokens.input"),
        tokens_output=series.total("llm.tokens.output"),
        cost=series.total("llm.cost"),
        cache_hits=series.total("service.cache.hits"),
        cache_misses=series.total("service.cache.misses"),
    )


def _rate(current: float | None, previous: float | None, interval: float | None) -> float | None:
    """Counter increase per second; a counter that went down (restart) or is new counts its value."""
    if current is None or interval is None:
        return None
    increase = current if previous is None or current < previous else current - previous
    return increase / interval


def _bus_state(
    name: str,
    providers: Mapping[str, str],
    states: Mapping[str, ComponentState],
    series: Series,
    previous: Series | None,
    interval: float | None,
) -> BusState:
    provider_states = {provider: states.get(component) for provider, component in providers.items()}
    known = {provider: state for provider, state in provider_states.items() if state is not None}
    statuses = {provider: state.status for provider, state in known.items()}
    status: Status
    if not providers:
        status, reason = "fail", "no providers attached"
    elif not statuses or all(value == "unknown" for value in statuses.values()):
        status, reason = "unknown", "no provider has a known status"
    elif not any(value in ("pass", "warn") for value in statuses.values()):
        status, reason = "fail", "every provider with a known status is fail"
    elif all(value == "pass" for value in statuses.values()) and len(statuses) == len(providers):
        status, reason = "pass", None
    else:
        status = "warn"
        reason = "; ".join(
            f"{provider}: {statuses.get(provider, 'unknown')}"
            for provider in providers
            if statuses.get(provider) != "pass"
        )
    numbers = {
        metric.removeprefix("bus."): value
        for metric in series.numbers
        if (value := series.plain(metric)) is not None
    }
    requests = numbers.get("requests")
    return BusState(
        name=name,
        providers=dict(providers),
        provider_states=provider_states,
        status=status,
        reason=reason,
        numbers=numbers,
        latency=series.latency(BUS_REQUEST_DURATION),
        request_rate=_rate(requests, None if previous is None else previous.plain(BUS_REQUESTS), interval),
    )


def _overall(
    services: Sequence[ComponentState], alerts: Sequence[Alert], inputs: ViewInputs
) -> tuple[OverallStatus, str | None]:
    if not services:
        if inputs.category is None and inputs.service is None:
            return "fail", "no services registered"
        return "fail", f"no services match {_filter_text(inputs)}"
    by_status = {status: [state.name for state in services if state.status == status] for status in STATUSES}
    by_severity = {
        severity: sum(alert.severity == severity for alert in alerts) for severity in ("critical", "warning")
    }
    reasons: list[str] = []
    for status in ("fail", "warn", "unknown"):
        names = by_status[status]
        if names:
            reasons.append(f"{len(names)} {_plural(len(names), 'service')} {status}: {', '.join(names)}")
    for severity in ("critical", "warning"):
        if by_severity[severity]:
            reasons.append(f"{by_severity[severity]} {severity} {_plural(by_severity[severity], 'alert')}")
    overall: OverallStatus = "pass"
    if by_status["fail"] or by_severity["critical"]:
        overall = "fail"
    elif by_status["warn"] or by_status["unknown"] or by_severity["warning"]:
        overall = "warn"
    return overall, "; ".join(reasons) or None


def _filter_text(inputs: ViewInputs) -> str:
    pairs = (("category", inputs.category), ("service", inputs.service))
    return " and ".join(f"{key}={value!r}" for key, value in pairs if value is not None)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def status_counts(states: Iterable[ComponentState]) -> dict[str, int]:
    """total / healthy (pass) / degraded (warn) / down (fail) / unknown."""
    statuses = [state.status for state in states]
    return {
        "total": len(statuses),
        "healthy": statuses.count("pass"),
        "degraded": statuses.count("warn"),
        "down": statuses.count("fail"),
        "unknown": statuses.count("unknown"),
    }


def roll_up(statuses: Sequence[Status]) -> Status:
    """fail > warn > pass; all unknown (or none) is unknown, otherwise an unknown counts as warn."""
    if not statuses or all(status == "unknown" for status in statuses):
        return "unknown"
    worst = max(RANK["warn" if status == "unknown" else status] for status in statuses)
    return ("pass", "warn", "fail")[worst]


def _categories(services: Sequence[ComponentState]) -> tuple[CategoryState, ...]:
    members: dict[str, list[ComponentState]] = {}
    for state in services:
        if state.category is not None:
            members.setdefault(state.category, []).append(state)
    categories: list[CategoryState] = []
    for name, states in members.items():
        status = roll_up([state.status for state in states])
        reason = "; ".join(f"{state.name}: {state.status}" for state in states if state.status != "pass")
        categories.append(
            CategoryState(
                name, tuple(state.name for state in states), status, reason or None, status_counts(states)
            )
        )
    return tuple(categories)


def _score(model: Model) -> tuple[float | None, tuple[ScoreInput, ...]]:
    thresholds = model.inputs.thresholds
    values: dict[str, tuple[float | None, float | None]] = {}
    availability = model.availability
    values["availability"] = (availability, availability)
    error_ratio = model.error_ratio
    values["error_ratio"] = (
        error_ratio,
        None if error_ratio is None else max(0.0, 1 - error_ratio / thresholds.error_ratio_warn),
    )
    p95 = None if model.latency is None else model.latency.quantile(0.95)
    objective = thresholds.latency_objective_seconds
    values["latency"] = (p95, None if p95 is None else (1.0 if p95 <= objective else objective / p95))
    pressures = [
        _pressure(value, warn)
        for value, warn in (
            (model.cpu_utilization, thresholds.cpu_warn),
            (model.memory_utilization, thresholds.memory_warn),
        )
        if value is not None
    ]
    utilization = largest((model.cpu_utilization, model.memory_utilization))
    values["resource_pressure"] = (utilization, 1 - max(pressures) if pressures else None)
    open_fraction = model.breakers_open / model.breakers_total if model.breakers_total else None
    values["circuit_breakers"] = (open_fraction, None if open_fraction is None else 1 - open_fraction)
    inputs = tuple(
        ScoreInput(name, weight, finite(values[name][0]), finite(values[name][1]))
        for name, weight in SCORE_WEIGHTS.items()
    )
    present = [item for item in inputs if item.score is not None]
    if not present:
        return None, inputs
    weighted = math.fsum(item.weight * (item.score or 0.0) for item in present)
    return round(100 * weighted / sum(item.weight for item in present), 1), inputs


def _pressure(value: float, warn: float) -> float:
    return min(max((value - warn) / (1 - warn), 0.0), 1.0)
