"""The intermediate model every view renders from, built once per render from the view inputs.

It reads one collection (and the one before it, for rates) into per-component state: vitals,
snapshot outcome and age, reported health, alerts and the resulting status; then applies the
``category``/``service`` filter and derives the runtime-wide numbers over the selected services:
status, counts, totals, merged latency, resource use, breakers and the health score. The rules
are documented in ``docs/views.md``. Pure: no I/O and no clock (``now_unix_nano`` is an input).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from opentelemetry.sdk.metrics.export import Gauge, HistogramDataPoint, Metric, NumberDataPoint

from telemetry_otel import Collection, ComponentRecord, HealthStatus
from telemetry_otel.views._quantiles import Buckets, merge_buckets
from telemetry_otel.views._thresholds import Alert, Thresholds

__all__ = [
    "SCORE_WEIGHTS",
    "STATUSES",
    "BusState",
    "CategoryState",
    "ComponentState",
    "Model",
    "OverallStatus",
    "ScoreInput",
    "Status",
    "ViewInputs",
    "add",
    "age",
    "build_model",
    "finite",
    "gauge_metric",
    "header",
    "iso",
    "latency_section",
    "metric_names",
    "ratio",
    "roll_up",
    "scope_attributes",
    "select",
    "service_identity",
    "state_set_metric",
    "status_counts",
]

Status: TypeAlias = Literal["pass", "warn", "fail", "unknown"]
OverallStatus: TypeAlias = Literal["pass", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "unknown")
_RANK: Mapping[str, int] = {"pass": 0, "warn": 1, "fail": 2}

#: Health score weights, in the order the inputs are listed.
SCORE_WEIGHTS: Mapping[str, int] = {
    "availability": 40,
    "error_ratio": 20,
    "latency": 15,
    "resource_pressure": 15,
    "circuit_breakers": 10,
}

_IDENTITY = ("service.name", "service.category")
_BREAKER_STATE = "circuit_breaker.state"


@dataclass(frozen=True)
class ViewInputs:
    """Everything a view is rendered from: one collection, its predecessor, thresholds and a filter.

    The components and bus membership come from the collection itself, as they stood in its cycle.
    """

    collection: Collection
    previous: Collection | None
    thresholds: Thresholds
    now_unix_nano: int
    category: str | None = None
    service: str | None = None

    @property
    def components(self) -> Sequence[ComponentRecord]:
        """Every component of the collection's cycle, in registration order."""
        return self.collection.components

    @property
    def buses(self) -> Mapping[str, Mapping[str, str]]:
        """Bus name -> (provider name -> component name), as in the collection's cycle."""
        return self.collection.buses


@dataclass(frozen=True)
class ComponentState:
    """One component (runtime service or bus-only provider) as read from one collection."""

    name: str
    category: str | None
    #: ok | error | timeout | none (no snapshot function); None when the collection has no outcome for it.
    outcome: str | None
    snapshot_error: str | None
    snapshot_duration_seconds: float | None
    problems: tuple[str, ...]
    has_snapshot: bool
    #: Seconds since the last successful snapshot (None: no snapshot function, or never succeeded).
    last_success_age_seconds: float | None
    reported_status: HealthStatus | None
    reported_reason: str | None
    reported_age_seconds: float | None
    status: Status
    reason: str | None
    alerts: tuple[Alert, ...]
    uptime_seconds: float | None
    requests: float | None
    errors: float | None
    request_rate: float | None
    latency: Buckets | None
    queue_depth: float | None
    #: ``process.cpu.utilization`` divided by the CPU count: a fraction of the host.
    cpu_utilization: float | None
    memory_usage_bytes: float | None
    memory_utilization: float | None
    circuit_breaker: str | None
    tokens_input: float | None
    tokens_output: float | None
    cost: float | None
    cache_hits: float | None
    cache_misses: float | None

    @property
    def is_service(self) -> bool:
        """True for a runtime service (it has a category)."""
        return self.category is not None

    @property
    def error_ratio(self) -> float | None:
        """errors / requests; None before the first request."""
        return ratio(self.errors, self.requests)

    @property
    def cache_hit_ratio(self) -> float | None:
        """hits / (hits + misses); None before the first cache lookup."""
        if self.cache_hits is None or self.cache_misses is None:
            return None
        return ratio(self.cache_hits, self.cache_hits + self.cache_misses)

    @property
    def availability(self) -> float | None:
        """1 when the status is pass or warn, 0 when fail, None when unknown."""
        return None if self.status == "unknown" else float(self.status != "fail")

    @property
    def source(self) -> str:
        """``snapshot`` when a snapshot function supplies values, ``live`` when all are recorded live."""
        return "snapshot" if self.has_snapshot else "live"


@dataclass(frozen=True)
class BusState:
    """One bus: its providers' statuses and its own ``bus.*`` series."""

    name: str
    providers: Mapping[str, str]
    provider_states: Mapping[str, ComponentState | None]
    status: Status
    reason: str | None
    numbers: Mapping[str, float]
    latency: Buckets | None
    request_rate: float | None

    def number(self, stem: str) -> float | None:
        """The value of the bus series ``bus.<stem>`` (None when absent)."""
        return self.numbers.get(stem)


@dataclass(frozen=True)
class CategoryState:
    """The roll-up of one category's selected services."""

    name: str
    members: tuple[str, ...]
    status: Status
    reason: str | None
    counts: Mapping[str, int]


@dataclass(frozen=True)
class ScoreInput:
    """One input of the health score: the measured value, its 0-1 score and its weight."""

    name: str
    weight: int
    value: float | None
    score: float | None

    def as_dict(self) -> dict[str, Any]:
        """The input as a JSON object."""
        return {"value": self.value, "score": self.score, "weight": self.weight}


@dataclass(frozen=True)
class Model:
    """The selected services and buses of one collection and everything derived from them."""

    inputs: ViewInputs
    services: tuple[ComponentState, ...]
    buses: tuple[BusState, ...]
    categories: tuple[CategoryState, ...]
    alerts: tuple[Alert, ...]
    status: OverallStatus
    reason: str | None
    counts: Mapping[str, int]
    requests: float | None
    errors: float | None
    request_rate: float | None
    latency: Buckets | None
    cpu_utilization: float | None
    memory_utilization: float | None
    breakers_total: int
    breakers_open: int
    score: float | None
    score_inputs: tuple[ScoreInput, ...]
    #: Names of the components the filter selected (services, and providers named by ``service``).
    selected: frozenset[str]

    @property
    def error_ratio(self) -> float | None:
        """Σ errors / Σ requests over the selected services; None without requests."""
        return ratio(self.errors, self.requests)

    @property
    def availability(self) -> float | None:
        """Fraction of selected services with a known status that are pass or warn."""
        known = [state.availability for state in self.services if state.availability is not None]
        return sum(known) / len(known) if known else None

    @property
    def age_seconds(self) -> float:
        """Seconds between the collection and ``now``."""
        return age(self.inputs.now_unix_nano, self.inputs.collection.time_unix_nano) or 0.0

    def alert_counts(self) -> dict[str, int]:
        """Active alerts per severity."""
        return {
            severity: sum(alert.severity == severity for alert in self.alerts)
            for severity in ("critical", "warning")
        }


# -- reading the collection --------------------------------------------------------------------------

Attributes: TypeAlias = tuple[tuple[str, Any], ...]


@dataclass
class _Series:
    """The points of one owner (service or bus): metric name -> (own attributes, value)."""

    numbers: dict[str, list[tuple[Attributes, float]]] = field(default_factory=dict)
    histograms: dict[str, list[Buckets]] = field(default_factory=dict)

    def total(self, name: str) -> float | None:
        return add(value for _, value in self.numbers.get(name, ()))

    def largest(self, name: str) -> float | None:
        values = [value for _, value in self.numbers.get(name, ())]
        return max(values) if values else None

    def plain(self, name: str) -> float | None:
        """The value of the series without attributes of its own."""
        return add(value for attributes, value in self.numbers.get(name, ()) if not attributes)

    def state(self, name: str, key: str) -> str | None:
        """The ``key`` attribute of the series of state set ``name`` whose value is 1."""
        for attributes, value in self.numbers.get(name, ()):
            if value == 1:
                found = dict(attributes).get(key)
                if isinstance(found, str):
                    return found
        return None

    def latency(self, name: str) -> Buckets | None:
        return merge_buckets(self.histograms.get(name, ()))


def _index(collection: Collection) -> tuple[dict[str, _Series], dict[str, _Series]]:
    """Every point of the collection by owner: services (``service.name``) and buses (``bus.name``).

    Per-provider bus points (``bus.provider``) are left out: each provider's own series say the same.
    """
    services: dict[str, _Series] = {}
    buses: dict[str, _Series] = {}
    for metric in _metrics(collection):
        for point in metric.data.data_points:
            attributes = dict(point.attributes or {})
            service = attributes.get("service.name")
            bus = attributes.get("bus.name")
            if isinstance(service, str):
                for key in _IDENTITY:
                    attributes.pop(key, None)
                series = services.setdefault(service, _Series())
            elif isinstance(bus, str) and "bus.provider" not in attributes:
                attributes.pop("bus.name")
                series = buses.setdefault(bus, _Series())
            else:
                continue
            own = tuple(sorted(attributes.items()))
            if isinstance(point, NumberDataPoint):
                value = finite(point.value)
                if value is not None:
                    series.numbers.setdefault(metric.name, []).append((own, value))
            elif isinstance(point, HistogramDataPoint):
                series.histograms.setdefault(metric.name, []).append(
                    Buckets(tuple(point.explicit_bounds), tuple(point.bucket_counts), point.count, point.sum)
                )
    return services, buses


def _metrics(collection: Collection) -> Iterable[Metric]:
    for resource_metrics in collection.metrics.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            yield from scope_metrics.metrics


def metric_names(collection: Collection) -> frozenset[str]:
    """Every metric name in the collection."""
    return frozenset(metric.name for metric in _metrics(collection))


# -- building ------------------------------------------------------------------------------------------


def build_model(inputs: ViewInputs) -> Model:
    """Read ``inputs`` into the model: per-component state, filter, runtime-wide numbers, score."""
    collection, thresholds, now = inputs.collection, inputs.thresholds, inputs.now_unix_nano
    series, bus_series = _index(collection)
    previous_series, previous_buses = _index(inputs.previous) if inputs.previous else ({}, {})
    interval = _interval(inputs)
    states = {
        component.name: _component_state(
            component,
            collection,
            series.get(component.name, _Series()),
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
            bus_series.get(bus, _Series()),
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
    alerts.sort(key=lambda alert: (alert.severity != "critical", alert.component, alert.rule))
    status, reason = _overall(services, alerts, inputs)
    latency = merge_buckets(state.latency for state in services if state.latency is not None)
    cpu = _largest(state.cpu_utilization for state in services)
    memory = _largest(state.memory_utilization for state in services)
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
    series: _Series,
    previous: _Series | None,
    interval: float | None,
    thresholds: Thresholds,
    now: int,
) -> ComponentState:
    outcome = collection.outcomes.get(component.name)
    has_snapshot = component.has_snapshot or (outcome is not None and outcome.outcome != "none")
    last_success = None if outcome is None else outcome.last_success_unix_nano
    last_success_age = age(now, last_success) if has_snapshot else None
    report = component.health
    requests = series.plain("service.requests")
    errors = series.plain("service.errors")
    cpu = series.largest("process.cpu.utilization")
    cpu_host = None if cpu is None else cpu / thresholds.cpu_count
    memory = series.largest("system.memory.utilization")
    breaker = series.state("service.circuit_breaker.state", _BREAKER_STATE)

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
            if _RANK[worse] > _RANK[status]:
                status = worse
        if problems and _RANK[status] < _RANK["warn"]:
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
        uptime_seconds=series.largest("service.uptime"),
        requests=requests,
        errors=errors,
        request_rate=_rate(
            requests, None if previous is None else previous.plain("service.requests"), interval
        ),
        latency=series.latency("service.request.duration"),
        queue_depth=series.total("service.queue.depth"),
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
    series: _Series,
    previous: _Series | None,
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
        latency=series.latency("bus.request.duration"),
        request_rate=_rate(requests, None if previous is None else previous.plain("bus.requests"), interval),
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
    worst = max(_RANK["warn" if status == "unknown" else status] for status in statuses)
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
    utilization = _largest((model.cpu_utilization, model.memory_utilization))
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


# -- shared helpers for the views --------------------------------------------------------------------


def ratio(part: float | None, whole: float | None) -> float | None:
    """``part / whole``; None when either is unknown or ``whole`` is 0."""
    if part is None or whole is None or whole == 0:
        return None
    return part / whole


def finite(value: float | None) -> float | None:
    """The value, or None when it is missing, NaN or infinite (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return value


def age(now_unix_nano: int, then_unix_nano: int | None) -> float | None:
    """Seconds from ``then`` to ``now`` (never negative), rounded to milliseconds; None without ``then``."""
    if then_unix_nano is None:
        return None
    return round(max(0, now_unix_nano - then_unix_nano) / 1e9, 3)


def iso(time_unix_nano: int) -> str:
    """RFC 3339 UTC time with a ``Z``."""
    return datetime.fromtimestamp(time_unix_nano / 1e9, UTC).isoformat().replace("+00:00", "Z")


def add(values: Iterable[float | None]) -> float | None:
    """The sum of the known values (an int when all are ints); None when none is known."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    return sum(present) if all(isinstance(value, int) for value in present) else math.fsum(present)


def _largest(values: Iterable[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def header(model: Model, view: str) -> dict[str, Any]:
    """The keys every computed view starts with."""
    inputs = model.inputs
    return {
        "view": view,
        "timestamp": iso(inputs.collection.time_unix_nano),
        "age_seconds": model.age_seconds,
        "sdk_disabled": inputs.collection.sdk_disabled,
        "filter": {"category": inputs.category, "service": inputs.service},
    }


def latency_section(latency: Buckets | None) -> dict[str, Any]:
    """count, mean and the estimated p50/p95/p99 (seconds) of a latency histogram; None where unknown."""
    if latency is None:
        return {
            "count": None,
            "mean_seconds": None,
            "p50_seconds": None,
            "p95_seconds": None,
            "p99_seconds": None,
        }
    return {
        "count": latency.count,
        "mean_seconds": finite(latency.mean),
        "p50_seconds": latency.quantile(0.5),
        "p95_seconds": latency.quantile(0.95),
        "p99_seconds": latency.quantile(0.99),
    }


def gauge_metric(
    name: str,
    unit: str,
    description: str,
    points: Iterable[tuple[Mapping[str, str], float | None]],
    now_unix_nano: int,
) -> list[Metric]:
    """A one-element list with the Gauge ``name`` of the known points, or ``[]`` when none is known."""
    data_points = [
        NumberDataPoint(
            attributes=dict(attributes), start_time_unix_nano=0, time_unix_nano=now_unix_nano, value=value
        )
        for attributes, value in points
        if value is not None and math.isfinite(value)
    ]
    if not data_points:
        return []
    return [Metric(name=name, description=description, unit=unit, data=Gauge(data_points=data_points))]


def state_set_metric(
    name: str,
    description: str,
    states: Sequence[str],
    current: Iterable[tuple[Mapping[str, str], str]],
    now_unix_nano: int,
) -> list[Metric]:
    """A state-set Gauge: per owner one point per state in ``states``, 1 for the current one, 0 else."""
    points = [
        ({**attributes, "status": state}, float(state == status))
        for attributes, status in current
        for state in states
    ]
    return gauge_metric(name, "{status}", description, points, now_unix_nano)


def scope_attributes(model: Model) -> dict[str, str]:
    """Attributes of a runtime-wide derived point: the filter it was computed under, if any."""
    attributes: dict[str, str] = {}
    if model.inputs.service is not None:
        attributes["service.name"] = model.inputs.service
    if model.inputs.category is not None:
        attributes["service.category"] = model.inputs.category
    return attributes


def service_identity(state: ComponentState) -> dict[str, str]:
    """``service.name`` and (for runtime services) ``service.category`` of a component."""
    identity = {"service.name": state.name}
    if state.category is not None:
        identity["service.category"] = state.category
    return identity
